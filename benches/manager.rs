//! `NonceManager` against its baselines, in the same groups:
//! - `uncontended`: a bare `SystemClock` / `CoarseClock` / `SystemTime::now()`
//!   read, a `parking_lot::Mutex<u64>` generator with the same formula on each, and our
//!   `next()` / `reserve(1000)`, and `next()` with a 64-entry debug history.
//! - `contended/{2,4,8}`: the mutex generator and `next()` hammered by N
//!   threads; throughput is aggregate nonces per second.
//!
//! - printed before `contended`: the latency of single calls under 8 threads
//!   (every 8th call timed; p50 / p99 / p99.9) for the mutex generator and
//!   `next()`, both on `SystemClock`: a lock-free call never waits for a
//!   descheduled lock holder.
//! - `persist`: `next()` without `persist` (the baseline) and with it, and
//!   the cost of one durable mark write.
//!
//! `cargo bench --bench manager`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use monotonic_nonce::{clock::CoarseClock, Clock, NonceManager, Strategy, SystemClock};
use parking_lot::Mutex;
use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// `SystemTime::now()` in ms: what a hand-written generator reads.
#[derive(Debug, Clone, Copy)]
struct StdSystemTime;

impl Clock for StdSystemTime {
    fn now_ms(&self) -> Result<u64, monotonic_nonce::clock::ClockError> {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| monotonic_nonce::clock::ClockError::BeforeUnixEpoch)?;
        u64::try_from(d.as_millis()).map_err(|_| monotonic_nonce::clock::ClockError::OutOfRange)
    }
}

/// The baseline a careful hand-written generator would use: the same formula
/// `max(now, last + 1)` under a mutex.
struct MutexGenerator<C: Clock> {
    last: Mutex<u64>,
    clock: C,
}

impl<C: Clock> MutexGenerator<C> {
    fn new(clock: C) -> Self {
        Self { last: Mutex::new(0), clock }
    }

    fn next(&self) -> u64 {
        let now = self.clock.now_ms().unwrap_or(0);
        let mut last = self.last.lock();
        let n = now.max(*last + 1);
        *last = n;
        n
    }
}

fn uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("uncontended");
    g.throughput(Throughput::Elements(1));
    g.bench_function("baseline/system_clock_read", |b| b.iter(|| black_box(SystemClock.now_ms())));
    g.bench_function("baseline/std_system_time_read", |b| b.iter(|| black_box(StdSystemTime.now_ms())));
    let mutex_std = MutexGenerator::new(StdSystemTime);
    g.bench_function("baseline/mutex_next_std_system_time", |b| b.iter(|| black_box(mutex_std.next())));
    g.bench_function("baseline/coarse_clock_read", |b| b.iter(|| black_box(CoarseClock.now_ms())));
    let mutex_sys = MutexGenerator::new(SystemClock);
    g.bench_function("baseline/mutex_next_system", |b| b.iter(|| black_box(mutex_sys.next())));
    let mutex_coarse = MutexGenerator::new(CoarseClock);
    g.bench_function("baseline/mutex_next_coarse", |b| b.iter(|| black_box(mutex_coarse.next())));
    let sys = NonceManager::new();
    g.bench_function("next_system", |b| b.iter(|| black_box(sys.next())));
    let coarse = NonceManager::builder().clock(CoarseClock).build().expect("valid");
    g.bench_function("next_coarse", |b| b.iter(|| black_box(coarse.next())));
    let batch = NonceManager::new();
    g.bench_function("reserve_1000_system", |b| b.iter(|| black_box(batch.reserve(1_000))));
    // the debug history's cost when it is on (its cost when off is `next_system` itself)
    let history = NonceManager::builder().history(64).build().expect("valid");
    g.bench_function("next_system_history_64", |b| b.iter(|| black_box(history.next())));
    g.finish();
}

/// Runs `op` `iters` times on each of `threads` threads at once and returns the
/// wall time of the slowest thread (so throughput is aggregate).
fn run_threads(threads: usize, iters: u64, op: &(dyn Fn() + Sync)) -> Duration {
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                barrier.wait();
                for _ in 0..iters {
                    op();
                }
                barrier.wait();
            });
        }
        barrier.wait();
        let start = Instant::now();
        barrier.wait();
        start.elapsed()
    })
}

/// p50 / p99 / p99.9 of single calls of `op` while 8 threads call it, every 8th call timed.
fn latency_8_threads(name: &str, op: &(dyn Fn() + Sync)) {
    const CALLS: usize = 200_000;
    let barrier = Barrier::new(8);
    let mut samples: Vec<u64> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let mut out = Vec::with_capacity(CALLS / 8);
                    for i in 0..CALLS {
                        if i % 8 == 0 {
                            let t = Instant::now();
                            op();
                            out.push(t.elapsed().as_nanos() as u64);
                        } else {
                            op();
                        }
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q) as usize];
    println!("latency, 8 threads, {name:<28} p50 {:>6} ns  p99 {:>8} ns  p99.9 {:>9} ns", at(0.5), at(0.99), at(0.999));
}

fn contended(c: &mut Criterion) {
    let mutex_std = MutexGenerator::new(StdSystemTime);
    latency_8_threads("baseline/mutex_next_std_system_time", &|| {
        black_box(mutex_std.next());
    });
    let sys = NonceManager::new();
    latency_8_threads("next_system", &|| {
        black_box(sys.next().ok());
    });
    let mut g = c.benchmark_group("contended");
    for threads in [2usize, 4, 8] {
        // one "iteration" = one nonce on each thread: time/iter is per round,
        // elements/s is the aggregate rate.
        g.throughput(Throughput::Elements(threads as u64));
        let mutex_sys = MutexGenerator::new(SystemClock);
        g.bench_with_input(BenchmarkId::new("baseline/mutex_next_system", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                run_threads(t, iters, &|| {
                    black_box(mutex_sys.next());
                })
            })
        });
        let mutex_std = MutexGenerator::new(StdSystemTime);
        g.bench_with_input(BenchmarkId::new("baseline/mutex_next_std_system_time", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                run_threads(t, iters, &|| {
                    black_box(mutex_std.next());
                })
            })
        });
        let mutex_coarse = MutexGenerator::new(CoarseClock);
        g.bench_with_input(BenchmarkId::new("baseline/mutex_next_coarse", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                run_threads(t, iters, &|| {
                    black_box(mutex_coarse.next());
                })
            })
        });
        let sys = NonceManager::new();
        g.bench_with_input(BenchmarkId::new("next_system", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                run_threads(t, iters, &|| {
                    black_box(sys.next().ok());
                })
            })
        });
        let coarse = NonceManager::builder().clock(CoarseClock).build().expect("valid");
        g.bench_with_input(BenchmarkId::new("next_coarse", threads), &threads, |b, &t| {
            b.iter_custom(|iters| {
                run_threads(t, iters, &|| {
                    black_box(coarse.next().ok());
                })
            })
        });
    }
    g.finish();
}

fn persist(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("monotonic-nonce-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut g = c.benchmark_group("persist");
    g.throughput(Throughput::Elements(1));
    let plain = NonceManager::new();
    g.bench_function("baseline/next_system", |b| b.iter(|| black_box(plain.next())));
    // Millis in a tight loop runs ahead of the clock by one nonce per call, so the
    // default 10 s mark_ahead (10 000 units) is crossed every 10 000 calls: one write each time.
    let millis = NonceManager::builder().persist(dir.join("millis.mark")).build().expect("valid");
    g.bench_function("next_system_persist_millis", |b| b.iter(|| black_box(millis.next())));
    // Hft { 3 }: the same 10 s mark_ahead is 10 000 000 units, crossed every 10^7 calls
    // or when the clock passes the mark: the write rate a real bot sees.
    let hft_plain = NonceManager::builder().strategy(Strategy::Hft { counter_digits: 3 }).build().expect("valid");
    g.bench_function("baseline/next_system_hft3", |b| b.iter(|| black_box(hft_plain.next())));
    let hft = NonceManager::builder()
        .strategy(Strategy::Hft { counter_digits: 3 })
        .persist(dir.join("hft.mark"))
        .build()
        .expect("valid");
    g.bench_function("next_system_persist_hft3", |b| b.iter(|| black_box(hft.next())));
    // reserve(2) with a one-unit mark_ahead crosses the mark on every call: one mark write each.
    let every = NonceManager::builder()
        .persist(dir.join("every.mark"))
        .mark_ahead(Duration::from_millis(1))
        .build()
        .expect("valid");
    g.bench_function("mark_write", |b| b.iter(|| black_box(every.reserve(2))));
    g.finish();
    drop((millis, hft, every));
    let _ = std::fs::remove_dir_all(&dir);
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! { name = benches; config = config(); targets = uncontended, contended, persist }
criterion_main!(benches);
