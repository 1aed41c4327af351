//! The RFC 6479 anti-replay window as a plain single-threaded data structure.
//!
//! `Window(w)` accepts `n` iff `n` was not seen and `highest - n <= w` (a new
//! highest is always accepted). Seen values live in a ring of 64-bit words
//! with one spare word, so moving the window clears whole words and never
//! shifts bits: O(1) per check whatever `w`.
//!
//! The ring is allocated lazily. While the accepted nonces form a contiguous
//! run `[low, base]` (growing at either end) plus a few above it (within 64 of `base`: the dense
//! counters this policy is for, with the local reordering of a few requests
//! in flight), the seen set is that run and a 64-bit bitmap of the pending
//! values above it, and no ring exists (heap rings only: an inline ring costs
//! nothing to build, so an inline ring always exists and keeps no run). The
//! heap ring is built when a nonce lands more than 64 past the run or below
//! its start, and dropped again when a jump moves the whole window past
//! everything seen.
//!
//! The items are `pub` only so `--cfg fuzzing` (set by cargo-fuzz) can
//! re-export them to the fuzz crate; the module itself is private.
#![cfg_attr(not(fuzzing), allow(unreachable_pub))]

use std::num::NonZeroU64;
use thin_vec::{thin_vec, ThinVec};

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

/// The seen set of a window without a ring: every value in `[low, base]`
/// was seen, and bit `i` of `pending` stands for `base + 1 + i` (`base` is
/// the highest less what is pending above it; see [`Window`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// The run's start; never 0 (nonces are positive), which gives
    /// [`Boxed`]'s two forms a niche to tell them apart in.
    low: NonZeroU64,
    pending: u64,
}

impl Run {
    /// The run of `low` alone.
    fn starting_at(low: u64) -> Self {
        Self { low: start(low), pending: 0 }
    }

    /// The run's end (`base`), given the window's highest: the highest less
    /// what is pending above it (the bitmap's top bit stands for the highest).
    fn end(&self, highest: u64) -> u64 {
        if self.pending == 0 {
            highest
        } else {
            // highest = base + 1 + top bit index = base + 64 - leading zeros
            highest - (64 - u64::from(self.pending.leading_zeros()))
        }
    }

    /// Sets `n` (above the run's end `base`, within 64 of it) in the bitmap,
    /// then folds the bitmap's run of set low bits into the run.
    fn set_above(&mut self, base: u64, n: u64) {
        let bits = self.pending | (1u64 << (n - base - 1));
        self.pending = bits.checked_shr(bits.trailing_ones()).unwrap_or(0);
    }
}

/// A run's start: a run starts at a nonce, never 0 (were it 0, 1 is the same run).
fn start(low: u64) -> NonZeroU64 {
    NonZeroU64::new(low).unwrap_or(NonZeroU64::MIN)
}

/// A window's storage as it is now: the ring, or the run kept until one is built.
#[derive(Debug)]
pub enum Storage<'a> {
    /// The ring's words.
    Ring(&'a [u64]),
    /// The run (heap storage before its ring is built).
    Run(&'a Run),
}

/// [`Storage`], mutably.
#[derive(Debug)]
pub enum StorageMut<'a> {
    /// The ring's words.
    Ring(&'a mut [u64]),
    /// The run (heap storage before its ring is built).
    Run(&'a mut Run),
}

/// Where a window keeps its ring: on the heap ([`Boxed`], any width) or
/// inline ([`Inline`], for widths whose ring has exactly `N` words).
pub trait Ring: Default + Clone + PartialEq + Eq + std::fmt::Debug {
    /// Storage holding the run of `low` alone instead of a ring; `None` for
    /// storage that is always a ring.
    fn run_of(low: u64) -> Option<Self>;
    /// The ring, or the run kept until it is built (an inline ring always is).
    fn storage(&self) -> Storage<'_>;
    /// The same, mutably.
    fn storage_mut(&mut self) -> StorageMut<'_>;
    /// Builds a zeroed ring of `len` words (`len` is `ring_words(w)`).
    fn build(&mut self, len: usize);
    /// Heap bytes the ring holds.
    fn heap_bytes(&self) -> usize;

    /// The ring's words, if it is built.
    #[inline]
    fn words(&self) -> Option<&[u64]> {
        match self.storage() {
            Storage::Ring(ring) => Some(ring),
            Storage::Run(_) => None,
        }
    }
    /// The ring's words, mutably, if it is built.
    #[inline]
    fn words_mut(&mut self) -> Option<&mut [u64]> {
        match self.storage_mut() {
            StorageMut::Ring(ring) => Some(ring),
            StorageMut::Run(_) => None,
        }
    }
}

/// A ring on the heap, allocated when first needed, and until then the
/// run's start and the bitmap of values pending above the run: one or the
/// other, in 16 bytes, so a heap window's state is 24 bytes and its table
/// bucket 32 with a `u64` key (half a cache line, as `Window(64)`'s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boxed(Heap);

/// [`Boxed`]'s two forms. The compiler keeps which form it is in the run's
/// start (never 0): no separate tag, so telling the two apart is one comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Heap {
    /// Without a ring.
    Run(Run),
    /// The ring, behind a one-word pointer (its length and capacity head
    /// the allocation); a `Box<[u64]>` is two words and would double the bucket.
    Ring(ThinVec<u64>),
}

impl Default for Boxed {
    fn default() -> Self {
        // the start is read only once something was accepted, and then set
        Self(Heap::Run(Run::starting_at(1)))
    }
}

impl Ring for Boxed {
    fn run_of(low: u64) -> Option<Self> {
        Some(Self(Heap::Run(Run::starting_at(low))))
    }
    #[inline]
    fn storage(&self) -> Storage<'_> {
        match &self.0 {
            Heap::Ring(ring) => Storage::Ring(ring),
            Heap::Run(run) => Storage::Run(run),
        }
    }
    #[inline]
    fn storage_mut(&mut self) -> StorageMut<'_> {
        match &mut self.0 {
            Heap::Ring(ring) => StorageMut::Ring(ring),
            Heap::Run(run) => StorageMut::Run(run),
        }
    }
    fn build(&mut self, len: usize) {
        self.0 = Heap::Ring(thin_vec![0; len]);
    }
    fn heap_bytes(&self) -> usize {
        match &self.0 {
            // the words, and the length and capacity before them (two `usize`s:
            // thin-vec's header unless its `gecko-ffi` feature makes them `u32`s)
            Heap::Ring(ring) => ring.capacity() * 8 + 2 * std::mem::size_of::<usize>(),
            Heap::Run(_) => 0,
        }
    }
}

/// A ring of `N` words kept inline (no allocation): for every `w` with
/// `ring_words(w) == N` (`N = 2`: `1 <= w <= 64`). Always built: the window
/// keeps no run beside it, so the state is the highest and `N` words
/// (`Window(64)`'s table bucket is 32 bytes with its key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inline<const N: usize> {
    words: [u64; N],
}

impl<const N: usize> Default for Inline<N> {
    fn default() -> Self {
        Self { words: [0; N] }
    }
}

impl<const N: usize> Ring for Inline<N> {
    fn run_of(_: u64) -> Option<Self> {
        None
    }
    fn storage(&self) -> Storage<'_> {
        Storage::Ring(&self.words[..])
    }
    fn storage_mut(&mut self) -> StorageMut<'_> {
        StorageMut::Ring(&mut self.words[..])
    }
    fn build(&mut self, len: usize) {
        // the state type is chosen by width, so `len == N`; a shorter ring would
        // still be correct (the words past it stay 0 and unused)
        debug_assert_eq!(len, N);
        self.words = [0; N];
    }
    fn heap_bytes(&self) -> usize {
        0
    }
}

/// The seen set of one account under `Window(w)`; `w` is passed to each call.
/// `R` says where the ring lives (heap by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window<R = Boxed> {
    /// The highest accepted nonce; 0 while nothing was accepted (0 is never valid).
    highest: u64,
    /// With a ring: bit `n % 64` of word `(n / 64) % len` says whether `n` was seen,
    /// for every `n` in the window. Without one (heap storage only): the
    /// [`Run`] and the values pending above it, nothing else in the window.
    ring: R,
}

impl<R: Ring> Default for Window<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: Ring> Window<R> {
    /// An empty window: nothing accepted yet.
    pub fn new() -> Self {
        Self { highest: 0, ring: R::default() }
    }

    /// A window whose only value is `n` (the first, or after a jump past
    /// everything seen).
    fn only(n: u64) -> Self {
        let mut win = Self { highest: n, ring: R::run_of(n).unwrap_or_default() };
        if let Some(ring) = win.ring.words_mut() {
            ring[slot(n, ring.len())] |= bit(n);
        }
        win
    }

    /// The highest accepted nonce, if any.
    pub fn highest(&self) -> Option<u64> {
        (self.highest != 0).then_some(self.highest)
    }

    /// The ring's length in words, 0 while there is none (for tests).
    #[cfg(any(test, fuzzing))]
    pub fn ring_len(&self) -> usize {
        self.ring.words().map_or(0, <[u64]>::len)
    }

    /// Heap bytes the ring holds.
    pub fn heap_bytes(&self) -> usize {
        self.ring.heap_bytes()
    }

    /// The verdict for `n` (positive) under window `w`; changes nothing.
    pub fn check(&self, n: u64, w: u64) -> Result<(), WindowVerdict> {
        if self.highest == 0 || n > self.highest {
            return Ok(());
        }
        if self.highest - n > w {
            return Err(WindowVerdict::TooLow);
        }
        let seen = match self.ring.storage() {
            Storage::Run(run) => {
                let base = run.end(self.highest);
                if n <= base {
                    n >= run.low.get()
                } else {
                    // n <= highest <= base + 64, so the bit index is below 64
                    run.pending & (1u64 << ((n - base - 1) & 63)) != 0
                }
            }
            Storage::Ring(ring) => ring[slot(n, ring.len())] & bit(n) != 0,
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
            *self = Self::only(n);
            return;
        }
        if let StorageMut::Run(run) = self.ring.storage_mut() {
            let base = run.end(self.highest);
            if n > base && n - base <= 64 {
                run.set_above(base, n);
                self.highest = self.highest.max(n);
                return;
            }
            if n.checked_add(1) == Some(run.low.get()) {
                run.low = start(n); // the run grows downwards (the first of a swapped pair came second)
                return;
            }
            // further below the run's start, or too far above it for the bitmap
            self.build_ring(w);
        }
        let highest = self.highest;
        if let Some(ring) = self.ring.words_mut() {
            if n > highest {
                clear_blocks_after(ring, highest, n);
                self.highest = n;
            }
            ring[slot(n, ring.len())] |= bit(n);
        }
    }

    /// [`check`](Self::check), then [`record`](Self::record) if it accepted:
    /// the validator's hot path. The common cases are decided and recorded
    /// here, inlined: with a ring, a nonce inside the window and at most one
    /// block above the highest's; without one (heap storage), a nonce in the
    /// bitmap just above the run. The rest is out of line.
    #[inline]
    pub fn admit(&mut self, n: u64, w: u64) -> Result<(), WindowVerdict> {
        if let Some(verdict) = self.admit_near(n, w) {
            return verdict;
        }
        if let Some(verdict) = self.admit_dense(n, w) {
            return verdict;
        }
        self.admit_sparse(n, w)
    }

    /// The common case of a window with its ring built: `Some` of the
    /// verdict when `n` is inside the window and at most one block above the
    /// highest's (set in the ring if fresh); `None`, changing nothing,
    /// otherwise. Whether `n` is above or below the highest (which alternates
    /// under swapped pairs) only selects values here, it is not a branch.
    #[inline]
    fn admit_near(&mut self, n: u64, w: u64) -> Option<Result<(), WindowVerdict>> {
        let highest = self.highest;
        let ring = self.ring.words_mut()?;
        let inside = n.abs_diff(highest) <= w;
        let (block, top_block) = (n / 64, highest / 64);
        // highest / 64 < 2^58: the addition cannot overflow
        if highest == 0 || !inside || block > top_block + 1 {
            return None;
        }
        let (at, mask) = (slot(n, ring.len()), bit(n));
        // entering the next block: its word still holds the block a ring's length back
        let word = if block > top_block { 0 } else { ring[at] };
        // no bit above the highest is ever set, so a set bit is a value seen
        if word & mask != 0 {
            return Some(Err(WindowVerdict::Seen));
        }
        ring[at] = word | mask;
        self.highest = highest.max(n);
        Some(Ok(()))
    }

    /// The dense case of [`admit`](Self::admit): `Some` of the verdict when
    /// the window has no ring and `n` is inside it and within 64 above the
    /// run (set in the bitmap if fresh); `None`, changing nothing, otherwise.
    #[inline]
    fn admit_dense(&mut self, n: u64, w: u64) -> Option<Result<(), WindowVerdict>> {
        let highest = self.highest;
        let StorageMut::Run(run) = self.ring.storage_mut() else { return None };
        if highest == 0 {
            return None;
        }
        let inside = n.abs_diff(highest) <= w;
        let base = run.end(highest);
        if !inside || n <= base || n - base > 64 {
            return None;
        }
        // n - base - 1 < 64; the bitmap's bits stop at the highest, so a set bit is seen
        if run.pending & (1u64 << (n - base - 1)) != 0 {
            return Some(Err(WindowVerdict::Seen));
        }
        run.set_above(base, n);
        self.highest = highest.max(n);
        Some(Ok(()))
    }

    /// [`admit`](Self::admit) off its two common cases (near the ring's top, dense
    /// above the run), out of line.
    #[inline(never)]
    fn admit_sparse(&mut self, n: u64, w: u64) -> Result<(), WindowVerdict> {
        self.check(n, w)?;
        self.record(n, w);
        Ok(())
    }

    /// The seen nonces still inside the window (what the window can still refuse), ascending.
    pub fn seen(&self, w: u64) -> Vec<u64> {
        if self.highest == 0 {
            return Vec::new();
        }
        let from = self.highest.saturating_sub(w).max(1);
        match self.ring.storage() {
            Storage::Run(run) => {
                let base = run.end(self.highest);
                (run.low.get().max(from)..=base).chain(above(base, run.pending).filter(|&n| n >= from)).collect()
            }
            Storage::Ring(ring) => (from..=self.highest).filter(|&n| ring[slot(n, ring.len())] & bit(n) != 0).collect(),
        }
    }

    /// The state as data: `(highest, low, ring)`; without a ring every value
    /// in `[low, highest]` was seen (and nothing else in the window); with one
    /// `low` is 0 (unused). Values pending above the run are written into a
    /// ring first (an owned copy).
    pub fn parts(&self, w: u64) -> (u64, u64, Option<Vec<u64>>) {
        match self.ring.storage() {
            Storage::Run(run) if run.pending != 0 => {
                let mut ringed = self.clone();
                ringed.build_ring(w);
                (ringed.highest, 0, ringed.ring.words().map(<[u64]>::to_vec))
            }
            Storage::Run(run) => (self.highest, run.low.get(), None),
            Storage::Ring(ring) => (self.highest, 0, Some(ring.to_vec())),
        }
    }

    /// A window rebuilt from [`parts`](Self::parts) taken under the same `w`;
    /// `None` for parts no window of width `w` can have.
    pub fn from_parts(highest: u64, low: u64, ring: Option<&[u64]>, w: u64) -> Option<Self> {
        if highest == 0 {
            return None;
        }
        match ring {
            None if low == 0 || low > highest => None,
            None => {
                let mut win = Self { highest, ring: R::run_of(low).unwrap_or_default() };
                if let Some(ring) = win.ring.words_mut() {
                    // storage that is always a ring: the run's part inside the window, as bits
                    fill_run(ring, low.max(highest.saturating_sub(w)), highest);
                }
                Some(win)
            }
            Some(r) if r.len() != ring_words(w) || r[slot(highest, r.len())] & bit(highest) == 0 => None,
            Some(r) => {
                let mut win = Self { highest, ring: R::default() };
                win.ring.build(r.len());
                if let Some(words) = win.ring.words_mut() {
                    if words.len() != r.len() {
                        return None; // an inline ring of another size
                    }
                    words.copy_from_slice(r);
                }
                Some(win)
            }
        }
    }

    /// Turns the run `[low, base]` and the values pending above it into ring
    /// bits (the part inside the window).
    fn build_ring(&mut self, w: u64) {
        let Storage::Run(&run) = self.ring.storage() else { return }; // built already
        let (from, base) = (self.highest.saturating_sub(w), run.end(self.highest));
        self.ring.build(ring_words(w));
        let Some(ring) = self.ring.words_mut() else { return };
        let len = ring.len();
        for n in above(base, run.pending).filter(|&n| n >= from) {
            ring[slot(n, len)] |= bit(n);
        }
        fill_run(ring, run.low.get().max(from), base);
    }
}

/// Sets the ring bits of every value in `[from, to]` (a run inside the window).
fn fill_run(ring: &mut [u64], from: u64, to: u64) {
    let len = ring.len();
    let mut v = from;
    while v <= to {
        let offset = v % 64;
        let run = (64 - offset).min(to - v + 1);
        let mask = if run == 64 { u64::MAX } else { ((1u64 << run) - 1) << offset };
        ring[slot(v, len)] |= mask;
        match v.checked_add(run) {
            Some(next) => v = next,
            None => break,
        }
    }
}

/// The values a ring-less window's bitmap holds above the run ending at `base`.
fn above(base: u64, pending: u64) -> impl Iterator<Item = u64> {
    (0..64u64).filter(move |i| pending & (1u64 << i) != 0).map(move |i| base + 1 + i)
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
        let mut win = Window::<Boxed>::new();
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
        // a heap ring: built by a nonce more than 64 past the run, dropped by a jump past the window
        let w = 1_000;
        let mut win = Window::<Boxed>::new();
        for n in [100, 101, 300] {
            win.record(n, w);
        }
        assert_eq!(win.ring_len(), ring_words(w));
        assert_eq!(win.check(102, w), Ok(()));
        assert_eq!(win.check(101, w), Err(WindowVerdict::Seen));
        win.record(10_000, w);
        assert_eq!(win.ring_len(), 0);
        assert_eq!(win.check(9_999, w), Ok(()));
        assert_eq!(win.check(10_000, w), Err(WindowVerdict::Seen));
        // an inline ring always exists; a jump clears it but for the new highest
        let mut win = Window::<Inline<2>>::new();
        for n in [100, 101, 103] {
            win.record(n, 64);
        }
        assert_eq!((win.check(102, 64), win.check(101, 64)), (Ok(()), Err(WindowVerdict::Seen)));
        win.record(1_000, 64);
        assert_eq!(win.ring_len(), ring_words(64));
        assert_eq!(win.seen(64), vec![1_000]);
        assert_eq!(win.check(999, 64), Ok(()));
    }

    #[test]
    fn parts_round_trip_for_both_storages() {
        let w = 64;
        let (mut boxed, mut inline) = (Window::<Boxed>::new(), Window::<Inline<2>>::new());
        for n in [10, 11, 12, 13] {
            boxed.record(n, w);
            inline.record(n, w);
        }
        // a ring-less heap window is its run; an inline one is always its ring
        assert_eq!(boxed.parts(w), (13, 10, None));
        let (highest, low, ring) = inline.parts(w);
        assert_eq!((highest, low, ring.as_ref().map(Vec::len)), (13, 0, Some(2)));
        // either form rebuilds into either storage with the same seen set
        for (h, l, r) in [boxed.parts(w), inline.parts(w)] {
            let b = Window::<Boxed>::from_parts(h, l, r.as_deref(), w).expect("valid parts");
            let i = Window::<Inline<2>>::from_parts(h, l, r.as_deref(), w).expect("valid parts");
            assert_eq!(b.seen(w), vec![10, 11, 12, 13]);
            assert_eq!(i.seen(w), vec![10, 11, 12, 13]);
        }
        // a run reaching below the window keeps only its part inside it
        let i = Window::<Inline<2>>::from_parts(1_000, 1, None, w).expect("valid parts");
        assert_eq!(i.seen(w), (1_000 - w..=1_000).collect::<Vec<_>>());
        assert_eq!(i.check(1_000 - w - 1, w), Err(WindowVerdict::TooLow));
    }

    #[test]
    fn a_heap_window_keeps_local_reordering_in_its_bitmap() {
        let w = 8_128;
        let mut win = Window::<Boxed>::new();
        // swapped pairs and a few requests in flight: no ring
        for n in [2, 1, 4, 3, 6, 5, 9, 8, 7, 70, 10] {
            assert_eq!(win.check(n, w), Ok(()), "{n}");
            win.record(n, w);
        }
        assert_eq!(win.ring_len(), 0);
        assert_eq!(win.seen(w), (1..=10).chain([70]).collect::<Vec<_>>());
        for n in [1, 5, 10, 70] {
            assert_eq!(win.check(n, w), Err(WindowVerdict::Seen), "{n}");
        }
        assert_eq!(win.check(11, w), Ok(()));
        // more than 64 past the run: the ring
        win.record(200, w);
        assert_eq!(win.ring_len(), ring_words(w));
        assert_eq!(win.seen(w), (1..=10).chain([70, 200]).collect::<Vec<_>>());
        // just below the run's start: the run grows; further below: the ring
        let mut win = Window::<Boxed>::new();
        win.record(100, w);
        win.record(99, w);
        assert_eq!(win.ring_len(), 0);
        win.record(97, w);
        assert_eq!(win.ring_len(), ring_words(w));
        assert_eq!(win.seen(w), vec![97, 99, 100]);
    }

    /// `admit` is `check`, then `record` on acceptance, for both storages, on
    /// traffic that takes every path: the bitmap, the run growing down, the
    /// ring built, jumps past the window, repeats and nonces below it.
    #[test]
    fn admit_is_check_then_record() {
        for w in [1, 3, 64, 100, 8_128] {
            let (mut boxed, mut admitted) = (Window::<Boxed>::new(), Window::<Boxed>::new());
            let (mut inline, mut inline_admitted) = (Window::<Inline<2>>::new(), Window::<Inline<2>>::new());
            let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ w;
            let mut next = 1_000u64;
            for _ in 0..20_000 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // mostly swapped pairs just above the highest; some repeats, gaps, far jumps
                let n = match x % 16 {
                    0 => next.saturating_sub(x >> 8 & 0xFF).max(1),
                    1 => next + 70 + (x >> 8) % 200,
                    2 => next + w + 1 + (x >> 8) % 3,
                    _ => next ^ 1,
                };
                next += (x >> 60 & 1) + 1;
                let verdict = boxed.check(n, w);
                assert_eq!(admitted.admit(n, w), verdict, "w {w} n {n}");
                if verdict.is_ok() {
                    boxed.record(n, w);
                }
                assert_eq!(admitted, boxed, "w {w} n {n}");
                if w <= 64 {
                    let verdict = inline.check(n, w);
                    assert_eq!(inline_admitted.admit(n, w), verdict, "inline: w {w} n {n}");
                    if verdict.is_ok() {
                        inline.record(n, w);
                    }
                    assert_eq!(inline_admitted, inline, "inline: w {w} n {n}");
                }
            }
        }
    }

    #[test]
    fn an_inline_ring_agrees_with_a_boxed_one() {
        let (mut boxed, mut inline) = (Window::<Boxed>::new(), Window::<Inline<2>>::new());
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = 1_000 + x % 300 + (x >> 40) % 3 * 100; // jumps, reordering, repeats
            assert_eq!(boxed.check(n, 64), inline.check(n, 64), "{n}");
            if boxed.check(n, 64).is_ok() {
                boxed.record(n, 64);
                inline.record(n, 64);
            }
            assert_eq!(boxed.highest(), inline.highest());
            assert_eq!(boxed.seen(64), inline.seen(64));
        }
        assert_eq!(inline.heap_bytes(), 0);
    }
}
