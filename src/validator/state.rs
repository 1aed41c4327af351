//! The per-account state of each policy, one type per policy (and per size
//! class), behind the [`State`] trait: a shard is generic over it, so an
//! account's state sits in the shard's table bucket at the size its policy
//! needs (8 bytes for `Strict`), with no enum tag and no second allocation
//! for `HighestK(k <= 40)` or `Window(w <= 64)`. What a few accounts need
//! and most do not (`HighestK`'s values when they span more than
//! `u32::MAX`) lives in the shard's [`State::Side`], not in every bucket.
//! `Strict` and the window's adapter are here, `HighestK` in `highest.rs`.

use super::snapshot::StateSnapshot;
use super::window::{Boxed, Inline, Ring, Window, WindowVerdict};

/// Why an account's state refuses a nonce (the validator adds the numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    AlreadyUsed,
    TooLow,
}

/// One account's memory of what it accepted under one policy. `param` is the
/// policy's parameter (`k` or `w`; unused by `Strict`), kept once per shard
/// rather than once per account; so is `side`, the shard's store for what
/// does not fit a bucket (one per shard, shared by its accounts).
pub(crate) trait State: Sized + Send + Sync + 'static {
    /// The alignment of this state's table bucket (one of the `Align*` types).
    type Align: Alignment;
    /// The same for a bucket that also keeps the account's own floor and LRU
    /// node (12 bytes more: see the shard's `Extra`).
    type OwnAlign: Alignment;
    /// The shard's store shared by its states (`()` when they need none).
    type Side: Default + std::fmt::Debug + Send + Sync + 'static;
    /// An empty state: nothing accepted yet.
    fn fresh(param: u64) -> Self;
    /// The highest accepted nonce.
    fn highest(&self, side: &Self::Side) -> Option<u64>;
    /// The verdict for the positive nonce `n`; changes nothing.
    fn check(&self, n: u64, param: u64, side: &Self::Side) -> Result<(), Refusal>;
    /// Records `n`, which `check(n, param, side)` accepted.
    fn record(&mut self, n: u64, param: u64, side: &mut Self::Side);
    /// `check`, then `record` if it accepted: the validator's hot path, one
    /// call, so a state can find `n`'s place once for both.
    fn admit(&mut self, n: u64, param: u64, side: &mut Self::Side) -> Result<(), Refusal> {
        self.check(n, param, side)?;
        self.record(n, param, side);
        Ok(())
    }
    /// Gives back what this state held in `side`: the account is dropped.
    fn release(self, _side: &mut Self::Side) {}
    /// Heap bytes this state holds beyond its table bucket (not counting `side`).
    fn heap_bytes(&self) -> usize;
    /// Heap bytes a shard's `side` holds.
    fn side_bytes(_side: &Self::Side) -> usize {
        0
    }
    /// The state as data; `None` while nothing was accepted.
    fn snapshot(&self, param: u64, side: &Self::Side) -> Option<StateSnapshot>;
    /// A window state rebuilt as it was (same width); `None` for other kinds.
    fn from_window(_win: &Window, _w: u64) -> Option<Self> {
        None
    }
}

/// `Strict`: the last accepted nonce (0: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Strict(u64);

impl State for Strict {
    // 16 bytes with the key, 32 with an own floor: each in one cache line
    type Align = Align16;
    type OwnAlign = Align32;
    type Side = ();
    fn fresh(_: u64) -> Self {
        Strict(0)
    }
    fn highest(&self, (): &()) -> Option<u64> {
        (self.0 != 0).then_some(self.0)
    }
    fn check(&self, n: u64, _: u64, (): &()) -> Result<(), Refusal> {
        match n.cmp(&self.0) {
            std::cmp::Ordering::Greater => Ok(()),
            std::cmp::Ordering::Equal => Err(Refusal::AlreadyUsed),
            std::cmp::Ordering::Less => Err(Refusal::TooLow),
        }
    }
    fn record(&mut self, n: u64, _: u64, (): &mut ()) {
        self.0 = n;
    }
    fn heap_bytes(&self) -> usize {
        0
    }
    fn snapshot(&self, _: u64, (): &()) -> Option<StateSnapshot> {
        self.highest(&()).map(|last| StateSnapshot::Strict { last })
    }
}

/// Zero-sized field types that set a table bucket's alignment (see the
/// shard's `Entry`): a bucket of 64 or 128 bytes aligned to its size sits in
/// one line or one adjacent pair of lines (which the CPU fetches together).
pub(crate) trait Alignment: std::fmt::Debug + Default + Send + Sync + 'static {}
/// No more than the fields ask for (8 with a `u64` key): the smallest bucket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(align(8))]
pub(crate) struct Align8;
impl Alignment for Align8 {}
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(align(16))]
pub(crate) struct Align16;
impl Alignment for Align16 {}
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(align(32))]
pub(crate) struct Align32;
impl Alignment for Align32 {}
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(align(64))]
pub(crate) struct Align64;
impl Alignment for Align64 {}
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(align(128))]
pub(crate) struct Align128;
impl Alignment for Align128 {}

impl<R: Ring + Send + Sync + 'static> State for Window<R> {
    // Either storage's state is 24 bytes (the highest, and two ring words, or
    // the run or the heap ring's pointer): a 32-byte bucket in one cache line;
    // with an own floor 48 bytes, 16-aligned (32 would pad it to 64 bytes).
    type Align = Align32;
    type OwnAlign = Align16;
    type Side = ();
    fn fresh(_: u64) -> Self {
        Window::new()
    }
    fn highest(&self, (): &()) -> Option<u64> {
        Window::highest(self)
    }
    fn check(&self, n: u64, w: u64, (): &()) -> Result<(), Refusal> {
        Window::check(self, n, w).map_err(refusal)
    }
    fn record(&mut self, n: u64, w: u64, (): &mut ()) {
        Window::record(self, n, w);
    }
    #[inline]
    fn admit(&mut self, n: u64, w: u64, (): &mut ()) -> Result<(), Refusal> {
        Window::admit(self, n, w).map_err(refusal)
    }
    fn heap_bytes(&self) -> usize {
        Window::heap_bytes(self)
    }
    fn snapshot(&self, w: u64, (): &()) -> Option<StateSnapshot> {
        let (highest, low, ring) = self.parts(w);
        // a run reaching below the window is refused there by the bound, not by memory:
        // only its part inside the window is kept (at most w + 1 values)
        let low = if ring.is_none() { low.max(highest.saturating_sub(w)) } else { low };
        (highest != 0).then(|| StateSnapshot::Window { highest, low, ring: ring.unwrap_or_default() })
    }
    fn from_window(win: &Window, w: u64) -> Option<Self> {
        let (highest, low, ring) = win.parts(w);
        Window::from_parts(highest, low, ring.as_deref(), w)
    }
}

/// The window's verdict as a state's refusal.
fn refusal(verdict: WindowVerdict) -> Refusal {
    match verdict {
        WindowVerdict::TooLow => Refusal::TooLow,
        WindowVerdict::Seen => Refusal::AlreadyUsed,
    }
}

/// `Window(w)` for `w <= 64` (a ring of 2 words, inline), and the rest.
pub(crate) type SmallWindow = Window<Inline<2>>;
pub(crate) type BigWindow = Window<Boxed>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validator::highest::{Highest16, Highest24};

    #[test]
    fn states_are_as_small_as_their_policy_needs() {
        assert_eq!(std::mem::size_of::<Strict>(), 8);
        assert_eq!(std::mem::size_of::<Highest24>(), 24 * 4 + 8);
        assert_eq!(std::mem::size_of::<Highest16>(), 16 * 4 + 8);
        // the highest, and two ring words; or the run (its start and bitmap) or the ring's thin pointer
        assert_eq!(std::mem::size_of::<SmallWindow>(), 24);
        assert_eq!(std::mem::size_of::<BigWindow>(), 24);
    }
}
