//! Which counters were redeemed: the RFC 6479 ring (one bit per counter,
//! reset a block at a time as the counters move on), shared without a lock.
//!
//! The ring is cut into groups of one cache line each: a generation word
//! naming which block of counters the group holds, then seven bit words, 448
//! counters. A redemption reads the generation, sets its bit with one
//! `fetch_or` and reads the generation again; a redemption for a newer block
//! first takes the group over (claims it, zeroes the bits, then names the new
//! block). Generations only grow, so a bit cleared by a takeover belongs to a
//! block that is gone for good, and a redemption that raced with a takeover
//! sees the generation change and is refused (it may leave a stray bit in
//! the newer block: a false `AlreadyUsed` later, never a second acceptance).
//!
//! The issuer hands out counters in runs (1 to 64 counters, see `counter`);
//! consecutive runs go to different lanes (run `r` to lane `r % 8`), each lane
//! its own row of groups, so threads redeeming the nonces they were just
//! issued mostly touch different cache lines: with runs of 1 (the issuer's
//! small windows) consecutive counters differ in lane; with runs of 64, each
//! thread's run is one bit word of its own lane.

use crate::sync::{AtomicU64, Ordering};

/// Lanes: run `r` (counters `r * run ..`) belongs to lane `r % LANES`.
const LANES: u64 = 8;
/// Bit words per group (with the generation word: 64 bytes, one cache line).
const WORDS: u64 = 7;
/// Steps of a lane per group.
const PER_GROUP: u64 = WORDS * 64;
/// A generation word while its group is being taken over (generations are
/// step / 448, far below it).
const TAKING_OVER: u64 = u64::MAX;

/// Why a counter cannot be redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Spent {
    /// Redeemed before.
    AlreadyUsed,
    /// Its group was taken over by a later block: it is outside the window.
    Evicted,
}

/// The redeemed counters of the last `window` (at least), in
/// `8 * (ceil(window / 3 584) + 1)` groups of 64 bytes: about `window / 7`
/// bytes for large windows.
pub(super) struct Ledger {
    /// Group `g` is `words[8 g]` (its generation) and `words[8 g + 1 ..= 8 g + 7]`.
    words: Box<[AtomicU64]>,
    /// Groups per lane.
    per_lane: u64,
    /// log2 of the counters per run (a power of two dividing 448).
    shift: u32,
}

impl Ledger {
    /// Room for any `window` consecutive counters, in runs of `run` counters
    /// (a power of two dividing 448): they touch at most
    /// `n = (window + run - 2) / run + 1` runs, at most `ceil(n / 8)` of each
    /// lane, which follow each other in the lane: at most `ceil(n / 8) * run`
    /// consecutive steps, spanning at most `ceil(steps / 448) + 1` blocks of
    /// 448 steps, so no two share a group. (With runs of 1: `ceil(window / 8)`
    /// steps.)
    pub(super) fn new(window: u64, run: u64) -> Self {
        debug_assert!(run.is_power_of_two() && PER_GROUP.is_multiple_of(run));
        let runs = (window + run - 2) / run + 1; // window >= 1, run >= 1: no underflow
        let per_lane = (runs.div_ceil(LANES) * run).div_ceil(PER_GROUP) + 1;
        // group i of a lane starts out holding block i, empty
        let words = (0..LANES * per_lane)
            .flat_map(|g| std::iter::once(g % per_lane).chain(std::iter::repeat_n(0, WORDS as usize)))
            .map(AtomicU64::new)
            .collect();
        Self { words, per_lane, shift: run.trailing_zeros() }
    }

    /// Marks `counter` redeemed, once. The caller has checked that it lies in
    /// the window of the latest issued counter.
    ///
    /// Orderings: SeqCst on the generation and bit operations, so that they
    /// fall in one total order: a redemption's second generation read comes
    /// after its `fetch_or`, so if that `fetch_or` saw a takeover's zeroing,
    /// the read sees the takeover's claim or its new generation.
    pub(super) fn redeem(&self, counter: u64) -> Result<(), Spent> {
        let r = counter >> self.shift;
        // the lane's runs, one after another: (r / LANES) * run, plus the offset in the run
        let (lane, step) = (r % LANES, ((r / LANES) << self.shift) | (counter & ((1 << self.shift) - 1)));
        let block = step / PER_GROUP;
        let (word, bit) = ((step % PER_GROUP) / 64, 1u64 << (step % 64));
        // below LANES * per_lane groups of WORDS + 1 words (a usize: allocated)
        let base = ((lane * self.per_lane + block % self.per_lane) * (WORDS + 1)) as usize;
        let (Some(generation), Some(bits)) = (self.words.get(base), self.words.get(base + 1 + word as usize)) else {
            return Err(Spent::Evicted); // unreachable: base is a group's first word
        };
        let mut waits = 0u32;
        loop {
            // SeqCst: see the function's doc.
            let held = generation.load(Ordering::SeqCst);
            if held == TAKING_OVER {
                // another redemption is zeroing the group's seven words
                crate::sync::wait_a_little(&mut waits);
                continue;
            }
            if held > block {
                return Err(Spent::Evicted);
            }
            if held < block {
                // an older block, out of every window now: take the group over
                // SeqCst (both): see the function's doc.
                if generation.compare_exchange(held, TAKING_OVER, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                    // Swaps, not stores: the same on this hardware, and loom
                    // (0.7) lets a plain store slip between the read and the
                    // write of a concurrent RMW (tokio-rs/loom#254), which
                    // fails the models below spuriously. Once per 448 counters.
                    for w in self.words.iter().skip(base + 1).take(WORDS as usize) {
                        // SeqCst: see the function's doc.
                        w.swap(0, Ordering::SeqCst);
                    }
                    // SeqCst: see the function's doc.
                    generation.swap(block, Ordering::SeqCst);
                }
                continue;
            }
            // SeqCst: see the function's doc.
            let before = bits.fetch_or(bit, Ordering::SeqCst);
            // SeqCst: see the function's doc.
            if generation.load(Ordering::SeqCst) != block {
                return Err(Spent::Evicted); // taken over meanwhile: this counter left the window
            }
            return if before & bit != 0 { Err(Spent::AlreadyUsed) } else { Ok(()) };
        }
    }

    /// Heap bytes: the groups, allocated once.
    pub(super) fn heap_bytes(&self) -> usize {
        self.words.len() * 8
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn each_counter_once_and_old_blocks_give_way() {
        // window 4 096: 512 steps per lane, 2 blocks of 448, 3 groups per lane
        let ledger = Ledger::new(4_096, 1);
        assert_eq!(ledger.heap_bytes(), 8 * 3 * 64);
        for c in 1..=20_000 {
            assert_eq!(ledger.redeem(c), Ok(()), "{c}");
            assert_eq!(ledger.redeem(c), Err(Spent::AlreadyUsed), "{c}");
        }
        // every counter of the last window is still remembered
        for c in 20_000 - 4_095..=20_000 {
            assert_eq!(ledger.redeem(c), Err(Spent::AlreadyUsed), "{c}");
        }
        // 20 000 is step 2 500 of lane 0, block 5 (steps 2 240..2 688), group 2 of
        // the lane; block 2 (steps 896..1 344, counters 7 168..10 752) had that group
        assert_eq!(ledger.redeem(8_000), Err(Spent::Evicted));
        // a block older than the group's is refused even when its bit is clear
        assert_eq!(ledger.redeem(8), Err(Spent::Evicted));
    }

    #[test]
    fn a_takeover_clears_exactly_the_old_block() {
        let ledger = Ledger::new(1, 1);
        // window 1: one step per lane, 2 groups per lane
        assert_eq!(ledger.heap_bytes(), 8 * 2 * 64);
        let lane0 = |step: u64| step * LANES;
        for step in [0, 1, 447] {
            assert_eq!(ledger.redeem(lane0(step)), Ok(()));
        }
        // block 2 takes over group 0 from block 0: its counters are new there
        for step in [896, 897, 896 + 447] {
            assert_eq!(ledger.redeem(lane0(step)), Ok(()), "{step}");
            assert_eq!(ledger.redeem(lane0(step)), Err(Spent::AlreadyUsed), "{step}");
        }
        assert_eq!(ledger.redeem(lane0(898)), Ok(()), "a bit block 0 never set");
        assert_eq!(ledger.redeem(lane0(1)), Err(Spent::Evicted), "block 0 is gone");
        // other lanes are untouched
        assert_eq!(ledger.redeem(1), Ok(()));
    }

    #[test]
    fn random_redemptions_inside_the_window_match_a_set() {
        // the caller's contract: only counters inside the window of the latest
        // issued reach the ledger; then Ok exactly when not redeemed before
        for (window, run) in [(1u64, 1), (7, 1), (100, 1), (3_584, 1), (5_000, 1), (2_048, 2), (5_000, 4), (65_536, 64)]
        {
            let ledger = Ledger::new(window, run);
            let mut redeemed = std::collections::HashSet::new();
            let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ window;
            for latest in 1..=60_000u64 {
                for _ in 0..2 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let back = x % window.min(latest);
                    let c = latest - back;
                    let expected = if redeemed.insert(c) { Ok(()) } else { Err(Spent::AlreadyUsed) };
                    assert_eq!(ledger.redeem(c), expected, "window {window}, run {run}, latest {latest}, counter {c}");
                }
            }
            // and a counter that left the window is never accepted again
            assert!(redeemed.iter().all(|&c| ledger.redeem(c).is_err()));
        }
    }

    #[test]
    fn memory_is_a_bit_per_counter_plus_a_line_per_lane() {
        for window in [1u64, 64, 4_096, 65_536, 1 << 20] {
            for run in [1, 2, 64] {
                let bytes = Ledger::new(window, run).heap_bytes() as u64;
                // 64 bytes per 448 steps of each lane, plus one spare group per lane
                assert!(bytes <= window.div_ceil(7) + 2 * LANES * 64, "{window}, run {run}: {bytes}");
            }
        }
        assert_eq!(Ledger::new(65_536, 1).heap_bytes(), 8 * 20 * 64); // 10 240 B: window / 6.4
        assert_eq!(Ledger::new(65_536, 64).heap_bytes(), 8 * 20 * 64); // the same in runs of 64
    }
}

/// Loom models of the ledger itself (the issuer-level model, in
/// `tests/loom_issuer.rs`, never reaches a takeover: that needs thousands of
/// counters). `RUSTFLAGS="--cfg loom" cargo test --release --lib ledger`.
#[cfg(all(test, loom))]
mod loom_models {
    use super::*;
    use loom::sync::Arc;
    use loom::thread;

    /// A model with room for the takeover's waits (each wait is a branch).
    fn model(f: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        builder.max_branches = 20_000;
        builder.check(f);
    }

    /// Lane 0 of `Ledger::new(1, 1)` has two groups; block `b` starts at counter `8 * 448 * b`.
    fn block(b: u64) -> u64 {
        LANES * PER_GROUP * b
    }

    /// A replay of a counter of block 0 racing the redemption of a counter of
    /// block 2, which takes its group over: the replay is refused; the new
    /// counter is accepted at most once, and exactly once unless the replay's
    /// bit landed in the new block (the replay then says `Evicted`: the
    /// fail-closed case).
    #[test]
    fn a_replay_racing_a_takeover() {
        model(|| {
            let ledger = Arc::new(Ledger::new(1, 1));
            assert_eq!(ledger.redeem(block(0)), Ok(()));
            let replay = {
                let ledger = Arc::clone(&ledger);
                thread::spawn(move || ledger.redeem(block(0)))
            };
            let fresh = ledger.redeem(block(2));
            let replay = replay.join().unwrap();
            assert_ne!(replay, Ok(()));
            if replay == Err(Spent::AlreadyUsed) {
                assert_eq!(fresh, Ok(()), "the replay came before the takeover");
            }
            assert_ne!(ledger.redeem(block(2)), Ok(()), "{fresh:?} {replay:?}");
        });
    }

    /// A second redemption of a block-2 counter racing a takeover by block 4,
    /// whose zeroing clears that counter's bit: it is never accepted again.
    #[test]
    fn a_second_redemption_racing_the_next_takeover() {
        model(|| {
            let ledger = Arc::new(Ledger::new(1, 1));
            assert_eq!(ledger.redeem(block(2)), Ok(()));
            let again = {
                let ledger = Arc::clone(&ledger);
                thread::spawn(move || ledger.redeem(block(2)))
            };
            let newer = ledger.redeem(block(4) + LANES);
            assert_ne!(again.join().unwrap(), Ok(()));
            assert_ne!(newer, Err(Spent::Evicted));
            assert_ne!(ledger.redeem(block(2)), Ok(()));
        });
    }
}
