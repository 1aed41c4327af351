//! The RFC 6479 anti-replay window as a plain single-threaded data structure.
//!
//! `Window(w)` accepts `n` iff `n` was not seen and `highest - n <= w` (a new
//! highest is always accepted). Seen values live in a ring of 64-bit words
//! with one spare word, so moving the window clears whole words and never
//! shifts bits: O(1) per check whatever `w`.
//!
//! The ring is allocated lazily. While every accepted nonce extended a
//! contiguous run (`n == highest + 1`, the dense counters this policy is for),
//! the seen set is exactly `[low, highest]` and two words describe it; the
//! ring is built only when a nonce leaves a gap or arrives out of order, and
//! dropped again when a jump moves the whole window past everything seen.
//!
//! The items are `pub` only so `--cfg fuzzing` (set by cargo-fuzz) can
//! re-export them to the fuzz crate; the module itself is private.
#![cfg_attr(not(fuzzing), allow(unreachable_pub))]

/// Words in the ring for a window of `w`: enough for `w + 1` positions at any
/// alignment, plus the spare word RFC 6479 uses so no bit is ever shifted.
pub fn ring_words(w: u64) -> usize {
    usize::try_from(w.div_ceil(64) + 1).unwrap_or(usize::MAX)
}

/// Why a nonce is refused by the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowVerdict {
    /// More than `w` below the highest: outside the window.
    TooLow,
    /// Inside the window and already seen.
    Seen,
}

/// The seen set of one account under `Window(w)`; `w` is passed to each call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// The highest accepted nonce; 0 while nothing was accepted (0 is never valid).
    highest: u64,
    /// Without a ring: every value in `[low, highest]` was seen, nothing else in the window.
    low: u64,
    /// With a ring: bit `n % 64` of word `(n / 64) % len` says whether `n` was seen,
    /// for every `n` in the window.
    ring: Option<Box<[u64]>>,
}

impl Default for Window {
    fn default() -> Self {
        Self::new()
    }
}

impl Window {
    /// An empty window: nothing accepted yet.
    pub const fn new() -> Self {
        Self { highest: 0, low: 0, ring: None }
    }

    /// The highest accepted nonce, if any.
    pub fn highest(&self) -> Option<u64> {
        (self.highest != 0).then_some(self.highest)
    }

    /// Whether the ring has been allocated (for memory accounting and tests).
    pub fn ring_len(&self) -> usize {
        self.ring.as_ref().map_or(0, |r| r.len())
    }

    /// The verdict for `n` (positive) under window `w`; changes nothing.
    pub fn check(&self, n: u64, w: u64) -> Result<(), WindowVerdict> {
        if self.highest == 0 || n > self.highest {
            return Ok(());
        }
        if self.highest - n > w {
            return Err(WindowVerdict::TooLow);
        }
        let seen = match &self.ring {
            None => n >= self.low,
            Some(ring) => ring[slot(n, ring.len())] & bit(n) != 0,
        };
        if seen {
            Err(WindowVerdict::Seen)
        } else {
            Ok(())
        }
    }

    /// Records `n`, which `check(n, w)` accepted.
    pub fn record(&mut self, n: u64, w: u64) {
        if self.highest == 0 || (n > self.highest && n - self.highest > w) {
            // First nonce, or a jump past the whole window: everything seen falls out.
            *self = Self { highest: n, low: n, ring: None };
            return;
        }
        if self.ring.is_none() {
            if self.highest.checked_add(1) == Some(n) {
                self.highest = n; // the run grows: no ring needed
                return;
            }
            self.build_ring(w);
        }
        if let Some(ring) = self.ring.as_deref_mut() {
            if n > self.highest {
                clear_blocks_after(ring, self.highest, n);
                self.highest = n;
            }
            ring[slot(n, ring.len())] |= bit(n);
        }
    }

    /// The seen nonces still inside the window (what the window can still refuse), ascending.
    pub fn seen(&self, w: u64) -> Vec<u64> {
        if self.highest == 0 {
            return Vec::new();
        }
        let from = self.highest.saturating_sub(w).max(1);
        match &self.ring {
            None => (self.low.max(from)..=self.highest).collect(),
            Some(ring) => (from..=self.highest).filter(|&n| ring[slot(n, ring.len())] & bit(n) != 0).collect(),
        }
    }

    /// The state as data: `(highest, low, ring)`; without a ring every value
    /// in `[low, highest]` was seen (and nothing else in the window).
    pub fn parts(&self) -> (u64, u64, Option<&[u64]>) {
        (self.highest, self.low, self.ring.as_deref())
    }

    /// A window rebuilt from [`parts`](Self::parts) taken under the same `w`;
    /// `None` for parts no window of width `w` can have.
    pub fn from_parts(highest: u64, low: u64, ring: Option<Vec<u64>>, w: u64) -> Option<Self> {
        if highest == 0 {
            return None;
        }
        match ring {
            None if low == 0 || low > highest => None,
            None => Some(Self { highest, low, ring: None }),
            Some(r) if r.len() != ring_words(w) || r[slot(highest, r.len())] & bit(highest) == 0 => None,
            Some(r) => Some(Self { highest, low: 0, ring: Some(r.into_boxed_slice()) }),
        }
    }

    /// Turns the run `[low, highest]` into ring bits (the part inside the window).
    fn build_ring(&mut self, w: u64) {
        let mut ring = vec![0u64; ring_words(w)].into_boxed_slice();
        let len = ring.len();
        let mut v = self.low.max(self.highest.saturating_sub(w));
        let hi = self.highest;
        while v <= hi {
            let offset = v % 64;
            let run = (64 - offset).min(hi - v + 1);
            let mask = if run == 64 { u64::MAX } else { ((1u64 << run) - 1) << offset };
            ring[slot(v, len)] |= mask;
            match v.checked_add(run) {
                Some(next) => v = next,
                None => break,
            }
        }
        self.ring = Some(ring);
    }
}

fn slot(n: u64, len: usize) -> usize {
    // the modulus is below `len`, a usize, so the cast cannot truncate
    ((n / 64) % len as u64) as usize
}

fn bit(n: u64) -> u64 {
    1u64 << (n % 64)
}

/// Clears the ring words of the blocks `(block(old), block(new)]`, which the window
/// moves into: at most the whole ring, whatever the jump.
fn clear_blocks_after(ring: &mut [u64], old: u64, new: u64) {
    let len = ring.len() as u64;
    let (from, to) = (old / 64, new / 64);
    if to - from >= len {
        ring.fill(0);
    } else {
        for block in from + 1..=to {
            ring[(block % len) as usize] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_has_one_spare_word() {
        assert_eq!(ring_words(64), 2);
        assert_eq!(ring_words(8128), 128);
        assert_eq!(ring_words(65), 3);
    }

    #[test]
    fn dense_traffic_needs_no_ring() {
        let mut win = Window::new();
        for n in 1..=10_000 {
            assert_eq!(win.check(n, 64), Ok(()));
            win.record(n, 64);
        }
        assert_eq!(win.ring_len(), 0);
        assert_eq!(win.check(10_000 - 64, 64), Err(WindowVerdict::Seen));
        assert_eq!(win.check(10_000 - 65, 64), Err(WindowVerdict::TooLow));
    }

    #[test]
    fn a_gap_builds_the_ring_and_a_long_jump_drops_it() {
        let mut win = Window::new();
        for n in [100, 101, 103] {
            win.record(n, 64);
        }
        assert_eq!(win.ring_len(), ring_words(64));
        assert_eq!(win.check(102, 64), Ok(()));
        assert_eq!(win.check(101, 64), Err(WindowVerdict::Seen));
        win.record(1_000, 64);
        assert_eq!(win.ring_len(), 0);
        assert_eq!(win.check(999, 64), Ok(()));
    }
}
