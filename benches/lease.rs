//! `NonceManager` with a `SlotLease` against the same manager without one, in
//! the same groups (a `redis-server` the bench starts on a free port):
//! - `lease_next`: `next()` on `Distributed { 0, 8 }` without a lease (the
//!   baseline) and with one (the gate's deadline read on every call; the
//!   Redis mark set an hour ahead, so the row is the hot path alone);
//! - `lease_mark_write`: one crossing of the mark per call (`reserve(2)` with
//!   a 1 ms `mark_ahead`), on disk (`persist`: temp file, `fsync`, rename) and
//!   in Redis (one fenced script call over loopback).
//!
//! `cargo bench --bench lease --features redis` (needs `redis-server`, as the Redis tests do)

#[path = "../tests/common/redis_server.rs"]
#[allow(unreachable_pub)]
mod redis_server;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use monotonic_nonce::client::SlotLease;
use monotonic_nonce::{NonceManager, Strategy};
use std::hint::black_box;
use std::time::Duration;

fn lease(c: &mut Criterion) {
    let server = redis_server::RedisServer::start(&["--appendfsync", "always"]);
    let leased = |space: &str| SlotLease::builder(server.url(), space, 8).build().expect("the lease's settings");
    let mut g = c.benchmark_group("lease_next");
    g.throughput(Throughput::Elements(1));
    let plain = NonceManager::builder()
        .strategy(Strategy::Distributed { system_id: 0, total_systems: 8 })
        .build()
        .expect("valid");
    g.bench_function("baseline/next_distributed_8", |b| b.iter(|| black_box(plain.next())));
    // a tight loop runs 1 ms ahead per call (one nonce per ms is what Distributed gives each system), so the
    // default 10 s mark_ahead would be crossed every 10 000 calls, a Redis round trip each (~13 ns a call):
    // an hour's mark_ahead leaves the hot path alone, which is what this row measures
    let with = NonceManager::builder()
        .lease(leased("bench-next"))
        .mark_ahead(Duration::from_secs(3_600))
        .build()
        .expect("a slot");
    g.bench_function("next_leased_8", |b| b.iter(|| black_box(with.next())));
    g.finish();

    let dir = std::env::temp_dir().join(format!("monotonic-nonce-bench-lease-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut g = c.benchmark_group("lease_mark_write");
    g.throughput(Throughput::Elements(1));
    let file = NonceManager::builder()
        .strategy(Strategy::Distributed { system_id: 0, total_systems: 8 })
        .persist(dir.join("every.mark"))
        .mark_ahead(Duration::from_millis(1))
        .build()
        .expect("valid");
    g.bench_function("baseline/mark_write_file", |b| b.iter(|| black_box(file.reserve(2))));
    let redis = NonceManager::builder()
        .lease(leased("bench-mark"))
        .mark_ahead(Duration::from_millis(1))
        .build()
        .expect("a slot");
    g.bench_function("mark_write_redis", |b| b.iter(|| black_box(redis.reserve(2))));
    g.finish();
    drop((file, redis, with));
    let _ = std::fs::remove_dir_all(&dir);
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! { name = benches; config = config(); targets = lease }
criterion_main!(benches);
