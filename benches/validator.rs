//! `NonceValidator` against the naive baseline, in the same groups.
//!
//! The baseline is what a careful first version looks like: one
//! `Mutex<HashMap<u64, BTreeSet<u64>>>` that keeps every nonce ever accepted.
//!
//! Traffic: each account's nonces arrive as swapped pairs, `2, 1, 4, 3, ...`
//! (two threads of one bot racing), on accounts picked at random, so every
//! window policy really builds its ring and the 1M-account groups really miss
//! the cache. `in_order` sends `1, 2, 3, ...` instead. Every structure is
//! primed with two nonces per account before it is timed.
//! - `single/{1k,1M}`: one thread; naive, a bare `HashMap<u64, u64>` (the floor of
//!   any hashed table), the same get-and-update on 128-byte buckets (the floor
//!   for a table of `HighestK(20)`'s bucket size), Strict, HighestK(20),
//!   Window(64), Window(8128).
//! - `single/1M_in_order`: the same without reordering.
//! - `spaced_1M`: as `single/1M`, but each request waits for a fixed chunk of
//!   register-only work (`other_work`, ~0.2 µs), as a server's parsing and
//!   signature check sit between two validations; `baseline/work_alone` is that
//!   work with no table. Back to back, a table's cache misses overlap with the
//!   next call's; spaced, each call pays its own.
//! - `single/1M_half_refused`: in order, every other call a replay of the
//!   account's last nonce (refused by every target).
//! - `threads_1M/{1,2,4}` (all accepted: in order) and `threads_1M_half_refused/{1,2,4}`:
//!   N threads on disjoint accounts; throughput is aggregate (neither
//!   Window(8128) nor the 128-byte bare map). `MN_BENCH_THREADS=1,2,4,8,16`
//!   sets the thread counts.
//!
//! Besides the bare map, `baseline/dashmap` is `DashMap<u64, u64>` with the
//! crate's hasher and the validator's shard count (4 x cores): one `entry`
//! (get, compare, update) per call, what a gateway written by hand would do.
//!
//! `cargo bench --bench validator`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use monotonic_nonce::{NonceValidator, Policy};
use parking_lot::Mutex;
use std::collections::{BTreeSet, HashMap};
use std::hash::BuildHasher;
use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// The baseline: every nonce of every account, forever.
#[derive(Default)]
struct Naive {
    seen: Mutex<HashMap<u64, BTreeSet<u64>>>,
}

impl Naive {
    fn validate(&self, account: u64, nonce: u64) -> bool {
        self.seen.lock().entry(account).or_default().insert(nonce)
    }
}

/// Anything the benchmark can feed `(account, nonce)` to.
trait Target: Sync {
    fn feed(&self, account: u64, nonce: u64) -> bool;
}

impl Target for Naive {
    fn feed(&self, account: u64, nonce: u64) -> bool {
        self.validate(account, nonce)
    }
}

/// The floor for any hashed table: a bare map from account to its last nonce,
/// get-and-update, with the crate's default hasher, under one uncontended lock.
#[derive(Default)]
struct BareMap {
    last: Mutex<HashMap<u64, u64, monotonic_nonce::validator::DefaultHashBuilder>>,
}

impl Target for BareMap {
    fn feed(&self, account: u64, nonce: u64) -> bool {
        let mut map = self.last.lock();
        let last = map.entry(account).or_insert(0);
        let fresh = nonce > *last;
        if fresh {
            *last = nonce;
        }
        fresh
    }
}

/// One bucket of [`BareWideMap`]: the account and its last nonce, padded to
/// the size and alignment of `HighestK(20)`'s bucket (128 bytes).
#[repr(C, align(128))]
struct WideSlot {
    account: u64,
    last: u64,
}

// the bucket this baseline stands for: `HighestK(20)`'s, 128 bytes (the crate's layout test asserts that one)
const _: () = assert!(std::mem::size_of::<WideSlot>() == 128 && std::mem::align_of::<WideSlot>() == 128);

/// The bare map's get-and-update on buckets as large as `HighestK(20)`'s, the
/// two fields in one cache line: what a table of 128 bytes per account costs
/// by itself, before any policy's work (at 1M accounts, 256 MB of table
/// against the bare map's 32 MB).
#[derive(Default)]
struct BareWideMap {
    table: Mutex<hashbrown::HashTable<WideSlot>>,
    hasher: monotonic_nonce::validator::DefaultHashBuilder,
}

impl Target for BareWideMap {
    fn feed(&self, account: u64, nonce: u64) -> bool {
        let hasher = &self.hasher;
        let mut table = self.table.lock();
        let slot = table
            .entry(hasher.hash_one(account), |s| s.account == account, |s| hasher.hash_one(s.account))
            .or_insert(WideSlot { account, last: 0 })
            .into_mut();
        let fresh = nonce > slot.last;
        if fresh {
            slot.last = nonce;
        }
        fresh
    }
}

/// `DashMap<u64, u64>`: the account's last nonce, get-compare-update under
/// the shard's write lock, with the crate's hasher and the validator's shard count.
struct DashMapLast {
    map: dashmap::DashMap<u64, u64, monotonic_nonce::validator::DefaultHashBuilder>,
}

impl DashMapLast {
    fn new(accounts: usize) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let shards = (4 * cores).next_power_of_two().max(2);
        Self { map: dashmap::DashMap::with_capacity_and_hasher_and_shard_amount(accounts, Default::default(), shards) }
    }
}

impl Target for DashMapLast {
    fn feed(&self, account: u64, nonce: u64) -> bool {
        let mut last = self.map.entry(account).or_insert(0);
        let fresh = nonce > *last;
        if fresh {
            *last = nonce;
        }
        fresh
    }
}

impl Target for NonceValidator<u64> {
    fn feed(&self, account: u64, nonce: u64) -> bool {
        self.validate(&account, nonce).is_ok()
    }
}

/// No table: `spaced_1M`'s measure of the work and the traffic alone.
struct NoTable;

impl Target for NoTable {
    fn feed(&self, _: u64, _: u64) -> bool {
        true
    }
}

/// Multiply-xor rounds of `other_work`: ~500 cycles of one dependent chain,
/// several times what the CPU can hold in flight, so one request's lookup
/// cannot overlap with the next one's.
const WORK_ROUNDS: u32 = 128;

/// Register-only work standing for a server's per-request work (parsing, the
/// signature check): a dependent chain whose result, 0 here, the request's
/// account then depends on.
fn other_work(seed: u64, zero: u64) -> u64 {
    let mut x = seed;
    for _ in 0..WORK_ROUNDS {
        x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (x >> 29);
    }
    x & zero
}

/// The order of each account's nonces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Swapped pairs: `2, 1, 4, 3, ...`.
    Reordered,
    /// `1, 2, 3, ...`: every call accepted.
    InOrder,
    /// In order, every other call a replay of the account's last nonce.
    HalfReplayed,
}

/// One thread's stream of requests over the accounts `first, first + stride, ...`.
struct Traffic {
    first: u64,
    stride: u64,
    sent: Vec<u64>,
    rng: u64,
    reordered: bool,
    /// Every other call replays (with `Shape::HalfReplayed`); flips each call.
    replay: Option<bool>,
}

impl Traffic {
    fn new(first: u64, stride: u64, accounts: usize, shape: Shape) -> Self {
        Self {
            first,
            stride,
            sent: vec![0; accounts],
            rng: 0x9E37_79B9_7F4A_7C15 ^ first,
            reordered: shape == Shape::Reordered,
            replay: (shape == Shape::HalfReplayed).then_some(false),
        }
    }

    /// The `k`-th nonce an account sends (from 0): swapped pairs, or in order.
    fn nonce(&self, k: u64) -> u64 {
        if self.reordered {
            (k ^ 1) + 1
        } else {
            k + 1
        }
    }

    /// The next request: a random account of this stream and its next nonce.
    fn next(&mut self) -> (u64, u64) {
        // xorshift64: cheap, and the same sequence for every target
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let i = (self.rng % self.sent.len() as u64) as usize;
        let k = self.sent[i];
        let account = self.first + self.stride * i as u64;
        if let Some(replay) = &mut self.replay {
            *replay = !*replay;
            if *replay && k > 0 {
                return (account, self.nonce(k - 1)); // the last nonce again: refused
            }
        }
        self.sent[i] = k + 1;
        (account, self.nonce(k))
    }

    /// Two requests for every account, in order of account: every state exists.
    fn prime(&mut self, target: &dyn Target) {
        for i in 0..self.sent.len() {
            for _ in 0..2 {
                let k = self.sent[i];
                self.sent[i] = k + 1;
                target.feed(self.first + self.stride * i as u64, self.nonce(k));
            }
        }
    }
}

fn validator(policy: Policy, accounts: usize) -> NonceValidator<u64> {
    NonceValidator::builder(policy).expected_accounts(accounts).build().expect("valid policy")
}

/// The targets of every group, baselines first; each is pre-sized for `accounts`.
type Maker = fn(usize) -> Box<dyn Target>;

fn targets() -> [(&'static str, Maker); 8] {
    [
        ("baseline/naive_btreeset", |_| Box::new(Naive::default())),
        ("baseline/dashmap", |n| Box::new(DashMapLast::new(n))),
        ("baseline/bare_hashmap", |n| {
            let map = BareMap::default();
            map.last.lock().reserve(n);
            Box::new(map)
        }),
        ("baseline/bare_hashmap_128B", |n| {
            let map = BareWideMap::default();
            map.table.lock().reserve(n, |s| map.hasher.hash_one(s.account));
            Box::new(map)
        }),
        ("strict", |n| Box::new(validator(Policy::Strict, n))),
        ("highest_k_20", |n| Box::new(validator(Policy::HighestK(20), n))),
        ("window_64", |n| Box::new(validator(Policy::Window(64), n))),
        ("window_8128", |n| Box::new(validator(Policy::Window(8128), n))),
    ]
}

/// A target for `accounts` accounts and one thread's traffic over them, the
/// target primed with two nonces per account.
fn prime(make: Maker, accounts: usize, shape: Shape) -> (Box<dyn Target>, Traffic) {
    let target = make(accounts);
    let mut traffic = Traffic::new(1, 1, accounts, shape);
    traffic.prime(&*target);
    (target, traffic)
}

fn single(c: &mut Criterion) {
    for (group, accounts, shape) in [
        ("single/1k", 1_000usize, Shape::Reordered),
        ("single/1M", 1_000_000, Shape::Reordered),
        ("single/1M_in_order", 1_000_000, Shape::InOrder),
        ("single/1M_half_refused", 1_000_000, Shape::HalfReplayed),
    ] {
        let mut g = c.benchmark_group(group);
        g.throughput(Throughput::Elements(1));
        for (name, make) in targets() {
            // built and primed on first use: criterion calls the closure only for
            // benchmarks its filter selects (several times, hence once-only)
            let mut primed: Option<(Box<dyn Target>, Traffic)> = None;
            g.bench_function(name, |b| {
                let (target, traffic) = primed.get_or_insert_with(|| prime(make, accounts, shape));
                b.iter(|| {
                    let (account, nonce) = traffic.next();
                    black_box(target.feed(account, nonce))
                })
            });
        }
        g.finish();
    }
}

fn spaced(c: &mut Criterion) {
    const ACCOUNTS: usize = 1_000_000;
    let mut g = c.benchmark_group("spaced_1M");
    g.throughput(Throughput::Elements(1));
    let work_alone: (&str, Maker) = ("baseline/work_alone", |_| Box::new(NoTable));
    for (name, make) in std::iter::once(work_alone).chain(targets()) {
        // built and primed on first use, as in `single`
        let mut primed: Option<(Box<dyn Target>, Traffic)> = None;
        g.bench_function(name, |b| {
            let (target, traffic) = primed.get_or_insert_with(|| prime(make, ACCOUNTS, Shape::Reordered));
            let zero = black_box(0); // not known to the compiler: the account waits for the work
            b.iter(|| {
                let (account, nonce) = traffic.next();
                let account = account | other_work(nonce, zero);
                black_box(target.feed(account, nonce))
            })
        });
    }
    g.finish();
}

/// Runs `iters` requests on each thread at once, each from its own stream,
/// and returns the wall time (so throughput is aggregate).
fn run_threads(target: &dyn Target, streams: &[Mutex<Traffic>], iters: u64) -> Duration {
    let barrier = Barrier::new(streams.len() + 1);
    std::thread::scope(|s| {
        for stream in streams {
            let barrier = &barrier;
            s.spawn(move || {
                let mut traffic = stream.lock();
                barrier.wait();
                for _ in 0..iters {
                    let (account, nonce) = traffic.next();
                    black_box(target.feed(account, nonce));
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

/// One stream per thread, each locked by its thread for a whole run.
type Streams = Vec<Mutex<Traffic>>;

/// The thread counts of the `threads` groups: `MN_BENCH_THREADS=1,2,4,8,16`, or 1, 2 and 4.
fn thread_counts() -> Vec<usize> {
    std::env::var("MN_BENCH_THREADS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).filter(|&n| n > 0).collect::<Vec<usize>>())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| vec![1, 2, 4])
}

fn threads(c: &mut Criterion) {
    const ACCOUNTS: usize = 1_000_000;
    for (group, shape) in [("threads_1M", Shape::InOrder), ("threads_1M_half_refused", Shape::HalfReplayed)] {
        let mut g = c.benchmark_group(group);
        for threads in thread_counts() {
            // one iteration = one request on each thread
            g.throughput(Throughput::Elements(threads as u64));
            for (name, make) in
                targets().into_iter().filter(|(name, _)| !matches!(*name, "window_8128" | "baseline/bare_hashmap_128B"))
            {
                // built and primed on first use, as in `single`
                let mut primed: Option<(Box<dyn Target>, Streams)> = None;
                g.bench_function(BenchmarkId::new(name, threads), |b| {
                    let (target, streams) = primed.get_or_insert_with(|| {
                        let target = make(ACCOUNTS);
                        let streams: Streams = (0..threads)
                            .map(|t| Mutex::new(Traffic::new(1 + t as u64, threads as u64, ACCOUNTS / threads, shape)))
                            .collect();
                        for stream in &streams {
                            stream.lock().prime(&*target);
                        }
                        (target, streams)
                    });
                    b.iter_custom(|iters| run_threads(&**target, streams, iters))
                });
            }
        }
        g.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! { name = benches; config = config(); targets = single, spaced, threads }
criterion_main!(benches);
