//! Which counters were redeemed: the RFC 6479 idea (a ring of bit words,
//! reset a whole word at a time as the counters move on) made lock-free.
//! Each word carries the block of counters it stands for in its high 48 bits
//! and one bit per counter of that block in its low 16, so a redemption is
//! one compare-exchange on one word and needs no shared "highest".
//!
//! Consecutive counters go to different lanes (`counter % 8`), each lane its
//! own run of words, so threads redeeming the nonces they were just issued
//! (consecutive counters) mostly touch different cache lines.

use crate::sync::{AtomicU64, Ordering};

/// Counters per word.
const PER_WORD: u64 = 16;
/// Lanes: counter `c` belongs to lane `c % LANES`.
const LANES: u64 = 8;
/// The block tag's width: it wraps after 2^48 blocks (2^52 counters).
const TAG_BITS: u32 = 48;
const TAG_MASK: u64 = (1 << TAG_BITS) - 1;

/// Why a counter cannot be redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Spent {
    /// Redeemed before.
    AlreadyUsed,
    /// Its word was taken over by a later block: it is outside the window.
    Evicted,
}

/// The redeemed counters of the last `window` (at least), in about
/// `window / 16 + 8` words: `window / 2` bytes.
pub(super) struct Ledger {
    words: Box<[AtomicU64]>,
    /// Words per lane.
    per_lane: u64,
}

impl Ledger {
    /// Room for any `window` consecutive counters: in each lane they are at
    /// most `ceil(window / 8)` consecutive ones, spanning at most
    /// `ceil(ceil(window / 8) / 16) + 1` blocks, so no two share a word.
    pub(super) fn new(window: u64) -> Self {
        let per_lane = window.div_ceil(LANES).div_ceil(PER_WORD) + 1;
        Self { words: (0..LANES * per_lane).map(|_| AtomicU64::new(0)).collect(), per_lane }
    }

    /// Marks `counter` redeemed, once. The caller has checked that it lies in
    /// the window of the latest issued counter.
    pub(super) fn redeem(&self, counter: u64) -> Result<(), Spent> {
        let (lane, step) = (counter % LANES, counter / LANES);
        let block = step / PER_WORD;
        let tag = block & TAG_MASK;
        let bit = 1u64 << (step % PER_WORD);
        // below LANES * per_lane, the number of words (a usize)
        let word = &self.words[(lane * self.per_lane + block % self.per_lane) as usize];
        // Relaxed: a redemption is decided by this one word's modification
        // order (every change to it is a compare-exchange from the value read);
        // no other memory is published or read through it.
        let mut current = word.load(Ordering::Relaxed);
        loop {
            let held = current >> PER_WORD;
            // how far this block is ahead of the one the word holds (mod 2^48, signed)
            let ahead = tag.wrapping_sub(held) & TAG_MASK;
            let next = if ahead == 0 {
                if current & bit != 0 {
                    return Err(Spent::AlreadyUsed);
                }
                current | bit
            } else if ahead < 1 << (TAG_BITS - 1) {
                // the word holds an older block, out of every window now: start it afresh
                (tag << PER_WORD) | bit
            } else {
                return Err(Spent::Evicted);
            };
            // Relaxed (both): as the load above.
            match word.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Ok(()),
                Err(now) => current = now,
            }
        }
    }

    /// Heap bytes: the words, allocated once.
    pub(super) fn heap_bytes(&self) -> usize {
        self.words.len() * 8
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn each_counter_once_and_old_blocks_give_way() {
        // window 256: 32 counters per lane, 2 blocks of 16, 3 words per lane
        let ledger = Ledger::new(256);
        assert_eq!(ledger.heap_bytes(), 8 * 3 * 8);
        for c in 1..=2_000 {
            assert_eq!(ledger.redeem(c), Ok(()), "{c}");
            assert_eq!(ledger.redeem(c), Err(Spent::AlreadyUsed), "{c}");
        }
        // every counter of the last window is still remembered
        for c in 2_000 - 255..=2_000 {
            assert_eq!(ledger.redeem(c), Err(Spent::AlreadyUsed), "{c}");
        }
        // 2 000 is step 250 of lane 0, block 15; block 12 of lane 0 (counters
        // 1 536..1 664) shares its word and was taken over
        assert_eq!(ledger.redeem(1_600), Err(Spent::Evicted));
        // a block older than the word's is refused even when its bit is clear
        assert_eq!(ledger.redeem(8), Err(Spent::Evicted));
    }

    #[test]
    fn the_tag_wraps_without_reopening_anything() {
        let ledger = Ledger::new(16);
        let c = (TAG_MASK + 1) * PER_WORD * LANES * 3 + 5; // a block whose tag wrapped to 0 (mod 2^48)
        assert_eq!(ledger.redeem(c), Ok(()));
        assert_eq!(ledger.redeem(c), Err(Spent::AlreadyUsed));
        assert_eq!(ledger.redeem(c + PER_WORD * LANES), Ok(()));
    }
}
