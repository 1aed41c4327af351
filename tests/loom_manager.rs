//! Loom models of `NonceManager`: every interleaving of 2–3 threads mixing
//! `next`, `reserve` and `advance_past` while a `ManualClock` stands still or
//! steps back. Run with
//! `RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release --test loom_manager`.
#![cfg(loom)]

use loom::sync::atomic::{AtomicU64, Ordering};
use loom::sync::Arc;
use loom::thread;
use monotonic_nonce::{clock::ManualClock, NonceManager, Strategy};

const T0: u64 = 1_000;

/// Checks what one model run handed out: no duplicate, increasing per thread,
/// and `last()` equal to the highest value handed out (or the advance floor).
fn check(per_thread: Vec<Vec<u64>>, last: u64, floor: u64) {
    let mut all = Vec::new();
    for mine in &per_thread {
        assert!(mine.windows(2).all(|w| w[0] < w[1]), "not increasing within a thread: {mine:?}");
        all.extend_from_slice(mine);
    }
    let max = all.iter().copied().max().unwrap_or(0);
    assert_eq!(last, max.max(floor), "last() is not the highest value handed out: {per_thread:?}");
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), n, "duplicate nonce: {per_thread:?}");
}

fn model(strategy: Strategy, clock_back: bool) {
    loom::model(move || {
        let clock = ManualClock::new(T0);
        let m = Arc::new(NonceManager::builder().strategy(strategy).clock(clock.clone()).build().unwrap());

        let a = {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                // one batch: `reserve` and `next` share the same compare-exchange loop
                m.reserve(2).unwrap().into_iter().collect::<Vec<_>>()
            })
        };
        let b = {
            let m = Arc::clone(&m);
            let clock = clock.clone();
            thread::spawn(move || {
                let first = m.next().unwrap();
                if clock_back {
                    clock.set(T0 - 500);
                }
                vec![first, m.next().unwrap()]
            })
        };
        // main thread: a server's resync report, racing with both
        let floor = T0 * strategy.units_per_ms() + 3;
        m.advance_past(floor).unwrap();
        let mine = vec![m.next().unwrap()];

        let per_thread = vec![a.join().unwrap(), b.join().unwrap(), mine];
        if let Strategy::Distributed { system_id, total_systems } = strategy {
            assert!(per_thread.iter().flatten().all(|n| n % total_systems == system_id));
        }
        check(per_thread, m.last(), floor);
    });
}

#[test]
fn millis_three_threads_clock_standing_still() {
    model(Strategy::Millis, false);
}

#[test]
fn millis_three_threads_clock_stepping_back() {
    model(Strategy::Millis, true);
}

#[test]
fn distributed_three_threads_clock_stepping_back() {
    model(Strategy::Distributed { system_id: 1, total_systems: 3 }, true);
}

#[test]
fn hft_three_threads_clock_stepping_back() {
    model(Strategy::Hft { counter_digits: 1 }, true);
}

/// The classic hand-written generator: read `last`, compute, store. Not a
/// read-modify-write, so two threads can read the same `last`.
struct LoadThenStore {
    last: AtomicU64,
    clock: ManualClock,
}

impl LoadThenStore {
    fn next(&self) -> u64 {
        let now = monotonic_nonce::Clock::now_ms(&self.clock).unwrap();
        let last = self.last.load(Ordering::SeqCst);
        let n = now.max(last + 1);
        self.last.store(n, Ordering::SeqCst);
        n
    }
}

/// The same checks catch the broken version: this test passes only because
/// loom finds the interleaving that hands out a duplicate.
#[test]
#[should_panic(expected = "duplicate nonce")]
fn model_catches_a_load_then_store_generator() {
    loom::model(|| {
        let g = Arc::new(LoadThenStore { last: AtomicU64::new(0), clock: ManualClock::new(T0) });
        let g2 = Arc::clone(&g);
        let t = thread::spawn(move || vec![g2.next()]);
        let mine = vec![g.next()];
        let last = g.last.load(Ordering::SeqCst);
        check(vec![t.join().unwrap(), mine], last, 0);
    });
}
