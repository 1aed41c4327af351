//! `RedisValidator` against the physical limit of the same Redis server, in
//! the same groups. The bench starts its own `redis-server` (free port, temp
//! dir, AOF with `appendfsync everysec`), like the tests.
//!
//! - `redis_latency`: one `validate` per iteration beside one `PING` round
//!   trip (a second connection to the same server), and a minimal
//!   check-and-set script (`GET`, compare, `SET`): the floor for any atomic
//!   rule on Redis. p50 / p99 of 20 000 sampled calls of each are printed first.
//! - `redis_throughput/{1,16,64}`: `validate_many` of N fresh nonces beside the
//!   same minimal script pipelined N deep, and the per-nonce-key approach of
//!   gateway replay plugins (`SET key NX PX`), pipelined N deep.
//!
//! `cargo bench --features redis --bench redis`

#[path = "../tests/common/redis_server.rs"]
mod redis_server;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use monotonic_nonce::{Policy, RedisValidator};
use redis_server::RedisServer;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const T0: u64 = 1_704_067_200_000;
const ACCOUNTS: u64 = 10_000;

/// The minimal check-and-set: accept a nonce above the stored one.
const CAS: &str = "local v = redis.call('GET', KEYS[1]) \
    if v and tonumber(v) >= tonumber(ARGV[1]) then return 0 end \
    redis.call('SET', KEYS[1], ARGV[1]) return 1";

struct Rig {
    _server: RedisServer,
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
        Self { _server: server, rt, validator, plain, cas, next: AtomicU64::new(0) }
    }

    /// A fresh (account, nonce): nonces rise, so every one is accepted.
    fn pair(&self) -> (String, u64) {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        (format!("acct-{}", i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % ACCOUNTS), T0 + i)
    }

    async fn ping(&self) {
        let mut c = self.plain.clone();
        let _: String = redis::cmd("PING").query_async(&mut c).await.unwrap();
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
}

fn percentiles(name: &str, mut samples: Vec<Duration>) {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    println!("{name:<28} p50 {:>7.1} us   p99 {:>7.1} us   (n = {})", at(0.5), at(0.99), samples.len());
}

fn latency(c: &mut Criterion) {
    let rig = Rig::new();
    let sample = |f: &dyn Fn()| {
        (0..20_000)
            .map(|_| {
                let t = Instant::now();
                f();
                t.elapsed()
            })
            .collect::<Vec<_>>()
    };
    let (ping, cas, validate) = (
        sample(&|| rig.rt.block_on(rig.ping())),
        sample(&|| rig.rt.block_on(rig.cas_many(1))),
        sample(&|| {
            let (a, n) = rig.pair();
            rig.rt.block_on(rig.validator.validate(&a, n)).unwrap();
        }),
    );
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
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(30);
    targets = latency, throughput
}
criterion_main!(benches);
