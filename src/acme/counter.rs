//! Where a nonce's counter comes from: one shared high-water mark, `latest`,
//! the highest counter handed out. With a small window every issue takes the
//! next counter from it (one `fetch_add`, exact). With a window of 2 048 or
//! more, it hands out runs of counters (2 to 64, at most `window / 1 024`) to
//! stripes, and a thread issues from its stripe's run with one
//! compare-and-swap on that stripe's own cache line: threads issuing at once
//! do not pass one cache line back and forth on every nonce.
//!
//! The price is that `latest` is ahead of the counters issued by the runs'
//! unissued rest (at most 8 runs) and by runs given up (a stripe drops a run
//! that fell `16 × run` counters behind `latest`, and a thread that waited in
//! vain for another thread's refill of its stripe keeps only the first
//! counter of a run of its own), so a nonce can turn `TooOld` before `window`
//! more nonces were issued after it, never after. The window's bound on what is redeemable is unchanged: a
//! counter `window` or more behind `latest` is refused.
//!
//! How much earlier: one thread refills a stripe whose run is used up while
//! the stripe's other threads wait for it (a few instructions; a thread that
//! waits 128 rounds, its refiller descheduled, takes a run of its own and
//! keeps one counter of it, so `issue` stays lock-free); a stripe whose
//! thread issues far more slowly than the others drops its run every 16 runs
//! of the others' progress (at most 8 stripes x 63 counters per 16 runs, so
//! at worst about half the window in that pattern). Both only shorten the
//! window in nonces issued. Measured on the 2-core VM (2 000 000 counters
//! from 2, 8, 16, 32 and 64 threads on the default window, before the
//! refill claim): 0.0 to 0.1% of the counters handed out were never issued.

use crate::sync::{AtomicU64, Ordering};
use crossbeam_utils::CachePadded;

/// Stripes: threads are spread over them by [`crate::sync::thread_slot`].
const STRIPES: usize = 8;
/// The largest run.
const MAX_RUN: u64 = 64;
/// Windows below this issue one counter at a time.
const RUNS_FROM: u64 = 2_048;
/// A stripe while one of its threads takes the next run. Never a counter a
/// stripe holds: that would take 2^64 counters (the run that wraps).
const REFILLING: u64 = u64::MAX;
/// A stripe's run is stale, and given up, once `latest` is this many runs past it.
const STALE_RUNS: u64 = 16;
/// How long a thread waits for another's refill before taking its own run
/// (spins, then yields: see [`crate::sync::wait_a_little`]).
const REFILL_WAITS: u32 = 128;

/// Counters per run for `window`: 1 below [`RUNS_FROM`], else the power
/// of two at most `window / 1 024`, capped at [`MAX_RUN`]. A power of two
/// that divides 448, so the ledger's groups hold whole runs.
pub(super) fn run_for(window: u64) -> u64 {
    if window < RUNS_FROM {
        return 1;
    }
    1 << (window / 1_024).min(MAX_RUN).ilog2() // window / 1 024 >= 2 here
}

/// The issuer's counters.
pub(super) struct Counters {
    /// The highest counter handed out (0: none): every counter issued is at
    /// most this, and `redeem` counts the window back from it. In run mode
    /// always a multiple of `run`, so a run is `(base, base + run]`.
    latest: CachePadded<AtomicU64>,
    /// Per stripe, the last counter issued from its run (0: none; a
    /// multiple of `run`: the run is used up). Empty when `run` is 1.
    stripes: Box<[CachePadded<AtomicU64>]>,
    /// Counters per run (a power of two, 1 to 64).
    run: u64,
    /// Counters handed out in runs and given up unissued (for `issued`).
    given_up: AtomicU64,
}

impl Counters {
    pub(super) fn new(window: u64) -> Self {
        let run = run_for(window);
        let stripes = if run == 1 { 0 } else { STRIPES };
        Counters {
            latest: CachePadded::new(AtomicU64::new(0)),
            stripes: (0..stripes).map(|_| CachePadded::new(AtomicU64::new(0))).collect(),
            run,
            given_up: AtomicU64::new(0),
        }
    }

    /// Counters per run (1: none).
    pub(super) fn run(&self) -> u64 {
        self.run
    }

    /// A counter never returned before (the first is 1; unique, not ordered:
    /// a thread's counters need not increase). Lock-free: one
    /// `fetch_add` on `latest`, or in run mode one compare-and-swap on the
    /// stripe (retried only when another thread of the same stripe won it),
    /// plus, once per run, a claim of the stripe (`REFILLING`), a `fetch_add`
    /// on `latest` and a swap installing the run. A thread that finds its
    /// stripe being refilled waits a bounded time, then takes a run alone.
    ///
    /// Unique because each run is handed out once (`fetch_add` on `latest`)
    /// and installed on at most one stripe, by the one thread that claimed
    /// the refill; a stripe's counters only grow (a new run starts above
    /// every counter handed out before it; `REFILLING` in between is no
    /// counter), so no value comes back and each step `c -> c + 1` inside a
    /// run succeeds once.
    ///
    /// Orderings: all Relaxed. Uniqueness rests on each RMW's atomicity alone
    /// (the modification order of `latest` and of each stripe); `redeem`
    /// reads `latest` only as a bound, and the nonce that reaches it carries
    /// its own happens-before from this call.
    pub(super) fn next(&self) -> u64 {
        self.next_on(crate::sync::thread_slot())
    }

    /// [`next`](Self::next) on stripe `slot % 8` (the loom models pick the stripe).
    fn next_on(&self, slot: usize) -> u64 {
        let Some(stripe) = self.stripes.get(slot % STRIPES) else {
            // Relaxed: see the function's doc.
            return self.latest.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        };
        // Relaxed: see the function's doc; the CAS below decides.
        let mut held = stripe.load(Ordering::Relaxed);
        let mut waits = 0u32;
        loop {
            if held == REFILLING {
                if waits < REFILL_WAITS {
                    // another thread of this stripe is taking its next run: a few instructions
                    crate::sync::wait_a_little(&mut waits);
                    // Relaxed: see the function's doc.
                    held = stripe.load(Ordering::Relaxed);
                    continue;
                }
                // it was descheduled meanwhile: take a run of this thread's own, and
                // keep its first counter (so `issue` never waits on another thread for long)
                return self.take_run(self.run - 1);
            }
            // Relaxed: only a staleness hint (a late value can only keep an old run a little longer).
            let latest = self.latest.load(Ordering::Relaxed);
            if self.rest(held) != 0 && latest.saturating_sub(held) < STALE_RUNS * self.run {
                // held + 1 is in the run too (held < u64::MAX: that is REFILLING)
                // Relaxed: see the function's doc.
                match stripe.compare_exchange_weak(held, held + 1, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => return held + 1,
                    Err(now) => held = now,
                }
                continue;
            }
            // used up or stale: claim the refill, so the stripe's other threads wait
            // for this run instead of each taking one and keeping a single counter
            // Relaxed: see the function's doc.
            match stripe.compare_exchange(held, REFILLING, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => {
                    let first = self.take_run(self.rest(held));
                    // A swap, not a store: the same on this hardware, and loom (0.7) lets a
                    // plain store slip into a concurrent RMW (tokio-rs/loom#254).
                    // Relaxed: see the function's doc.
                    stripe.swap(first, Ordering::Relaxed);
                    return first;
                }
                Err(now) => held = now,
            }
        }
    }

    /// Takes the next run from `latest` and returns its first counter;
    /// `dropped` counters (of this run or of the stripe's stale one) are
    /// counted as given up.
    fn take_run(&self, dropped: u64) -> u64 {
        // a new run, (base, base + run]; wraps after 2^64 counters, as the
        // one-at-a-time path does (counter 0, which `redeem` refuses)
        // Relaxed: see `next`'s doc.
        let base = self.latest.fetch_add(self.run, Ordering::Relaxed);
        if dropped > 0 {
            // Relaxed: a count for `issued`, ordering nothing.
            self.given_up.fetch_add(dropped, Ordering::Relaxed);
        }
        base.wrapping_add(1)
    }

    /// Counters of `held`'s run not yet issued (0: used up, no run, or being refilled).
    fn rest(&self, held: u64) -> u64 {
        if held == REFILLING {
            return 0;
        }
        // run is a power of two: a mask, not a division (`%` by a field is a `div` on every issue)
        match held & (self.run - 1) {
            0 => 0,
            used => self.run - used,
        }
    }

    /// The highest counter handed out.
    pub(super) fn latest(&self) -> u64 {
        // Relaxed: a bound; see `next`.
        self.latest.load(Ordering::Relaxed)
    }

    /// Counters issued so far: exact when no `next` runs at the same time.
    pub(super) fn issued(&self) -> u64 {
        // Relaxed (all three): a report.
        let held: u64 = self.stripes.iter().map(|s| self.rest(s.load(Ordering::Relaxed))).sum();
        self.latest().saturating_sub(self.given_up.load(Ordering::Relaxed)).saturating_sub(held)
    }

    /// Heap bytes: the stripes.
    pub(super) fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.stripes)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn run_sizes_follow_the_window() {
        for (window, run) in [(1, 1), (2_047, 1), (2_048, 2), (4_095, 2), (16_384, 16), (65_536, 64), (1 << 30, 64)] {
            assert_eq!(run_for(window), run, "window {window}");
            assert_eq!(448 % run, 0, "a run divides the ledger's group");
        }
    }

    #[test]
    fn one_thread_issues_consecutive_counters_in_either_mode() {
        for window in [16, 65_536] {
            let c = Counters::new(window);
            for want in 1..=1_000 {
                assert_eq!(c.next(), want, "window {window}");
                assert_eq!(c.issued(), want);
            }
            // latest is the end of the run in use
            assert_eq!(c.latest(), 1_000u64.div_ceil(c.run()) * c.run());
        }
    }

    #[test]
    fn a_stale_run_is_given_up() {
        let c = Counters::new(65_536); // runs of 64, stale 1 024 behind
        let slot = crate::sync::thread_slot() % STRIPES;
        assert_eq!(c.next(), 1);
        // other stripes take 16 runs meanwhile
        c.latest.fetch_add(STALE_RUNS * 64, Ordering::Relaxed);
        assert_eq!(c.next(), 64 + 16 * 64 + 1, "a fresh run, not counter 2");
        assert_eq!(c.stripes[slot].load(Ordering::Relaxed), 64 + 16 * 64 + 1);
        assert_eq!(c.given_up.load(Ordering::Relaxed), 63);
        // 1 issued + 1 now; the 16 runs taken by hand count as issued elsewhere
        assert_eq!(c.issued(), 2 + 16 * 64);
    }

    #[test]
    fn a_refill_left_hanging_is_waited_for_only_so_long() {
        let c = Counters::new(65_536);
        let slot = crate::sync::thread_slot() % STRIPES;
        assert_eq!(c.next(), 1);
        // another thread claimed the refill and was descheduled before installing
        c.stripes[slot].store(REFILLING, Ordering::Relaxed);
        assert_eq!(c.next(), 65, "a run of this thread's own, after a bounded wait");
        assert_eq!(c.given_up.load(Ordering::Relaxed), 63);
        // the refiller comes back, takes the next run and installs it: the stripe goes on from there
        assert_eq!(c.latest.fetch_add(64, Ordering::Relaxed), 128);
        c.stripes[slot].store(129, Ordering::Relaxed);
        assert_eq!(c.next(), 130);
    }

    #[test]
    fn threads_never_share_a_counter() {
        for window in [16, 65_536] {
            let c = Counters::new(window);
            let all: Vec<Vec<u64>> = std::thread::scope(|s| {
                let handles: Vec<_> =
                    (0..12).map(|_| s.spawn(|| (0..5_000).map(|_| c.next()).collect::<Vec<u64>>())).collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let mut seen = HashSet::new();
            for counters in &all {
                assert!(counters.iter().all(|&n| n >= 1 && n <= c.latest() && seen.insert(n)), "window {window}");
            }
            assert_eq!(c.issued(), 12 * 5_000, "window {window}");
        }
    }
}

/// Loom models of the counters in run mode (runs of 2), with the stripe
/// chosen by the model. `RUSTFLAGS="--cfg loom" cargo test --release --lib counter`.
#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// Two threads on one stripe race to use up its run and to refill it (one
    /// claims the refill; the other waits for it, or after its bounded wait
    /// takes a run of its own and keeps one counter), while a third issues on
    /// another stripe: every counter is distinct and handed out, and `issued`
    /// counts exactly the five.
    #[test]
    fn threads_racing_on_one_stripe_and_across_stripes() {
        loom::model(|| {
            let c = Arc::new(Counters::new(2_048));
            assert_eq!(c.run(), 2);
            let same: Vec<_> = (0..2)
                .map(|_| {
                    let c = Arc::clone(&c);
                    thread::spawn(move || [c.next_on(0), c.next_on(0)])
                })
                .collect();
            let other = c.next_on(1);
            let mut all = vec![other];
            for h in same {
                // not always increasing: a thread that waited in vain took a newer
                // run of its own, then goes on in the older one its stripe got
                all.extend(h.join().unwrap());
            }
            let latest = c.latest();
            assert!(all.iter().all(|&n| n >= 1 && n <= latest), "{all:?} latest {latest}");
            all.sort_unstable();
            all.dedup();
            assert_eq!(all.len(), 5, "distinct: {all:?}");
            assert_eq!(c.issued(), 5);
        });
    }
}
