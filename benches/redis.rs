//! `RedisValidator` against the physical limit of the same Redis server, in
//! the same groups. The bench starts its own `redis-server` (free port, temp
//! dir, AOF with `appendfsync everysec`), like the tests.
//!
//! - `redis_latency`: one `validate` per iteration beside one `PING` round
//!   trip on the validator's own connection (`RedisValidator::ping`), and a minimal
//!   check-and-set script (`GET`, compare, `SET`): the floor for any atomic
//!   rule on Redis. p50 / p99 of 20 000 sampled calls of each (interleaved,
//!   one of each in turn) are printed first.
//! - `redis_throughput/{1,16,64}`: `validate_many` of N fresh nonces beside the
//!   same minimal script pipelined N deep, and the per-nonce-key approach of
//!   gateway replay plugins (`SET key NX PX`), pipelined N deep; one caller at
//!   a time, so every batch waits a full round trip.
//! - `redis_throughput_50_callers/{1,16,64}`: the same three with 50 callers
//!   at once on the validator's one connection (redis-benchmark's default
//!   `-c 50`), so the server always has work queued: throughput, not latency.
//! - Before the groups, the physical limit: `redis-benchmark -P N` (C, 50
//!   connections) running the minimal script on the bench's server, three
//!   rounds per depth, each beside a timed run of `validate_many` with 50
//!   callers (same server, same process, minutes apart at most: this VM's
//!   speed moves 2x over an hour). Two redis-benchmark workloads: fresh keys
//!   (`-r 10^9`: every call checks and sets, as every validation here
//!   accepts), and 10 000 keys with random values (most calls only check:
//!   the share that set is printed), each beside `validate_many` on the same
//!   kind of traffic (rising nonces; 10 000 accounts with random nonces).
//!
//! `cargo bench --features redis --bench redis` (needs `redis-server` and
//! `redis-benchmark`: `apt-get install -y redis-server`)

#[path = "../tests/common/redis_server.rs"]
mod redis_server;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use monotonic_nonce::{Policy, RedisValidator, Rejection};
use redis_server::RedisServer;
use std::cell::Cell;
use std::future::Future;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const T0: u64 = 1_704_067_200_000;
const ACCOUNTS: u64 = 10_000;
/// Concurrent callers in the throughput runs: redis-benchmark's default `-c`.
const CALLERS: usize = 50;

/// The minimal check-and-set: accept a nonce above the stored one.
const CAS: &str = "local v = redis.call('GET', KEYS[1]) \
    if v and tonumber(v) >= tonumber(ARGV[1]) then return 0 end \
    redis.call('SET', KEYS[1], ARGV[1]) return 1";

struct Rig {
    server: RedisServer,
    rt: tokio::runtime::Runtime,
    validator: RedisValidator,
    plain: redis::aio::ConnectionManager,
    cas: redis::Script,
    next: AtomicU64,
}

impl Rig {
    fn new() -> Self {
        let server = RedisServer::start(&["--appendfsync", "everysec"]);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let validator = rt
            .block_on(
                RedisValidator::builder(Policy::Strict)
                    .url(&server.url())
                    .response_timeout(Duration::from_secs(2))
                    .accept_durability_risk() // the bench measures speed, not restarts
                    .build(),
            )
            .unwrap();
        let plain = rt.block_on(redis::Client::open(server.url()).unwrap().get_connection_manager()).unwrap();
        let cas = redis::Script::new(CAS);
        let mut c = plain.clone();
        rt.block_on(cas.prepare_invoke().load_async(&mut c)).unwrap(); // pipelines do not load it
        Self { server, rt, validator, plain, cas, next: AtomicU64::new(0) }
    }

    /// A fresh (account, nonce): nonces rise, so every one is accepted.
    fn pair(&self) -> (String, u64) {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        (format!("acct-{}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % ACCOUNTS), T0 + i)
    }

    /// Like redis-benchmark's `-r 10000`: a random account of 10 000 and a
    /// random nonce in 1..=10 000, so most are refused once the keys fill up.
    fn random_pair(&self) -> (String, u64) {
        let mut x = self.next.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        x ^= x >> 31;
        x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        x ^= x >> 29;
        (format!("acct-{}", x % ACCOUNTS), (x >> 32) % 10_000 + 1)
    }

    async fn ping(&self) {
        self.validator.ping().await.unwrap();
    }

    async fn cas_many(&self, n: usize) {
        let mut pipe = redis::pipe();
        for _ in 0..n {
            let (account, nonce) = self.pair();
            pipe.invoke_script(self.cas.key(format!("cas:{account}")).arg(nonce));
        }
        let mut c = self.plain.clone();
        let _: Vec<i64> = pipe.query_async(&mut c).await.unwrap();
    }

    async fn set_nx_many(&self, n: usize) {
        let mut pipe = redis::pipe();
        for _ in 0..n {
            let (account, nonce) = self.pair();
            pipe.cmd("SET").arg(format!("nx:{account}:{nonce}")).arg(1).arg("NX").arg("PX").arg(900_000);
        }
        let mut c = self.plain.clone();
        let _: Vec<redis::Value> = pipe.query_async(&mut c).await.unwrap();
    }

    async fn validate_many(&self, n: usize) {
        let batch: Vec<(String, u64)> = (0..n).map(|_| self.pair()).collect();
        for r in self.validator.validate_many(&batch).await {
            r.unwrap();
        }
    }

    /// `validate_many` of random pairs; refusals expected, an unavailable store not.
    async fn validate_many_random(&self, n: usize) {
        let batch: Vec<(String, u64)> = (0..n).map(|_| self.random_pair()).collect();
        for r in self.validator.validate_many(&batch).await {
            if let Err(e) = r {
                assert!(!matches!(e, Rejection::Unavailable { .. }), "{e}");
            }
        }
    }

    /// `batches` calls of `one`, made by `CALLERS` callers at once; the time taken.
    fn callers<F: Future<Output = ()>>(&self, batches: u64, one: impl Fn() -> F) -> Duration {
        let left = Cell::new(batches);
        let caller = || async {
            while left.get() > 0 {
                left.set(left.get() - 1);
                one().await;
            }
        };
        let start = Instant::now();
        self.rt.block_on(futures_util::future::join_all((0..CALLERS).map(|_| caller())));
        start.elapsed()
    }

    /// Every key but the validator's prefix record: a `FLUSHALL` would read to the
    /// validator as a store that lost its state (and, without `max_future`, fail it closed).
    fn clear(&self) {
        let keep = "for _, k in ipairs(redis.call('KEYS', '*')) do if k ~= ARGV[1] then redis.call('DEL', k) end end";
        self.server.cli(&["EVAL", keep, "0", "{nonce}:meta"]);
    }

    /// `redis-benchmark -P depth` of the minimal script: (calls/s, share of calls that set).
    fn redis_benchmark(&self, depth: usize, calls: u64, key_range: u64) -> (f64, f64) {
        self.clear();
        self.server.cli(&["CONFIG", "RESETSTAT"]);
        let sha = self.server.cli(&["SCRIPT", "LOAD", CAS]).trim().to_owned();
        let port = self.server.port.to_string();
        let (depth, calls, range) = (depth.to_string(), calls.to_string(), key_range.to_string());
        let out = Command::new("redis-benchmark")
            .args(["-p", &port, "-n", &calls, "-r", &range, "-P", &depth, "--csv"])
            .args(["evalsha", &sha, "1", "cas:__rand_int__", "__rand_int__"])
            .output()
            .expect("redis-benchmark not found: apt-get install -y redis-server (it brings redis-tools)");
        let csv = String::from_utf8_lossy(&out.stdout);
        let rate = csv
            .lines()
            .nth(1)
            .and_then(|row| row.split("\",\"").nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("unexpected redis-benchmark output: {csv}"));
        let stats = self.server.cli(&["INFO", "commandstats"]);
        let count = |cmd: &str| -> f64 {
            stats
                .lines()
                .find_map(|l| l.strip_prefix(&format!("cmdstat_{cmd}:calls=")))
                .and_then(|rest| rest.split(',').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0.0)
        };
        (rate, count("set") / count("evalsha").max(1.0))
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `validate_many` with 50 callers beside `redis-benchmark` at the same
/// depth, interleaved, three rounds; the medians and their ratios.
fn physical_limit() {
    let rig = Rig::new();
    println!("validate_many (50 callers, one connection) beside redis-benchmark (50 connections), minimal script:");
    for depth in [1usize, 16, 64] {
        let calls: u64 = if depth == 1 { 100_000 } else { 300_000 };
        let (mut ours, mut fresh, mut mixed, mut set_share) = (vec![], vec![], vec![], vec![]);
        let (mut ours_mixed, mut accepted_share) = (vec![], vec![]);
        for _ in 0..3 {
            fresh.push(rig.redis_benchmark(depth, calls, 1_000_000_000).0);
            rig.clear();
            let took = rig.callers(calls / depth as u64, || rig.validate_many(depth));
            ours.push(calls as f64 / took.as_secs_f64());
            let (rate, share) = rig.redis_benchmark(depth, calls, 10_000);
            mixed.push(rate);
            set_share.push(share);
            rig.clear();
            let before = rig.validator.stats();
            let took = rig.callers(calls / depth as u64, || rig.validate_many_random(depth));
            let after = rig.validator.stats();
            ours_mixed.push(calls as f64 / took.as_secs_f64());
            accepted_share.push((after.accepted - before.accepted) as f64 / calls as f64);
        }
        let (ours, fresh, mixed, ours_mixed) = (median(ours), median(fresh), median(mixed), median(ours_mixed));
        println!(
            "  depth {depth:>2}: every call sets: validate_many {:>6.1} k/s, redis-benchmark {:>6.1} k/s: {:.2}x | 10 000 keys, random values: validate_many {:>6.1} k/s ({:.0}% accepted), redis-benchmark {:>6.1} k/s ({:.0}% set): {:.2}x",
            ours / 1e3,
            fresh / 1e3,
            ours / fresh,
            ours_mixed / 1e3,
            median(accepted_share) * 100.0,
            mixed / 1e3,
            median(set_share) * 100.0,
            ours_mixed / mixed
        );
    }
}

fn percentiles(name: &str, mut samples: Vec<Duration>) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    println!("{name:<28} p50 {:>7.1} us   p99 {:>7.1} us   (n = {})", at(0.5), at(0.99), samples.len());
}

fn latency(c: &mut Criterion) {
    let rig = Rig::new();
    // interleaved, one call of each in turn, so a change of the VM's speed
    // during the sampling falls on all three alike
    let (mut ping, mut cas, mut validate) = (vec![], vec![], vec![]);
    let timed = |f: &dyn Fn()| {
        let t = Instant::now();
        f();
        t.elapsed()
    };
    for _ in 0..20_000 {
        ping.push(timed(&|| rig.rt.block_on(rig.ping())));
        cas.push(timed(&|| rig.rt.block_on(rig.cas_many(1))));
        validate.push(timed(&|| {
            let (a, n) = rig.pair();
            rig.rt.block_on(rig.validator.validate(&a, n)).unwrap();
        }));
    }
    percentiles("PING", ping);
    percentiles("minimal CAS script", cas);
    percentiles("RedisValidator::validate", validate);
    let mut g = c.benchmark_group("redis_latency");
    g.bench_function("ping", |b| b.iter(|| rig.rt.block_on(rig.ping())));
    g.bench_function("minimal_cas_script", |b| b.iter(|| rig.rt.block_on(rig.cas_many(1))));
    g.bench_function("validate", |b| {
        b.iter(|| {
            let (a, n) = rig.pair();
            rig.rt.block_on(rig.validator.validate(&a, n)).unwrap()
        })
    });
    g.finish();
}

fn throughput(c: &mut Criterion) {
    physical_limit();
    let rig = Rig::new();
    let mut g = c.benchmark_group("redis_throughput");
    for n in [1usize, 16, 64] {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("validate_many", n), &n, |b, &n| {
            b.iter(|| rig.rt.block_on(rig.validate_many(n)))
        });
        g.bench_with_input(BenchmarkId::new("minimal_cas_script", n), &n, |b, &n| {
            b.iter(|| rig.rt.block_on(rig.cas_many(n)))
        });
        g.bench_with_input(BenchmarkId::new("set_nx_px_per_nonce", n), &n, |b, &n| {
            b.iter(|| rig.rt.block_on(rig.set_nx_many(n)))
        });
    }
    g.finish();
    let mut g = c.benchmark_group("redis_throughput_50_callers");
    for n in [1usize, 16, 64] {
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("validate_many", n), &n, |b, &n| {
            b.iter_custom(|iters| rig.callers(iters, || rig.validate_many(n)))
        });
        g.bench_with_input(BenchmarkId::new("minimal_cas_script", n), &n, |b, &n| {
            b.iter_custom(|iters| rig.callers(iters, || rig.cas_many(n)))
        });
        g.bench_with_input(BenchmarkId::new("set_nx_px_per_nonce", n), &n, |b, &n| {
            b.iter_custom(|iters| rig.callers(iters, || rig.set_nx_many(n)))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(30);
    targets = latency, throughput
}
criterion_main!(benches);
