//! The per-account state of each policy, one type per policy (and per size
//! class), behind the [`State`] trait: a shard is generic over it, so an
//! account's state sits in the shard's table bucket at the size its policy
//! needs (8 bytes for `Strict`), with no enum tag and no second allocation
//! for `HighestK(k <= 38)` (unless its values span more than `u32::MAX`) or
//! `Window(w <= 64)`.

use super::snapshot::StateSnapshot;
use super::window::{Boxed, Inline, Ring, Window, WindowVerdict};
use std::collections::VecDeque;
use std::marker::PhantomData;

/// Why an account's state refuses a nonce (the validator adds the numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    AlreadyUsed,
    TooLow,
}

/// One account's memory of what it accepted under one policy. `param` is the
/// policy's parameter (`k` or `w`; unused by `Strict`), kept once per shard
/// rather than once per account.
pub(crate) trait State: Sized + Send + Sync + 'static {
    /// The alignment of this state's table bucket (one of the `Align*` types).
    type Align: Alignment;
    /// An empty state: nothing accepted yet.
    fn fresh(param: u64) -> Self;
    /// The highest accepted nonce.
    fn highest(&self) -> Option<u64>;
    /// The verdict for the positive nonce `n`; changes nothing.
    fn check(&self, n: u64, param: u64) -> Result<(), Refusal>;
    /// Records `n`, which `check(n, param)` accepted.
    fn record(&mut self, n: u64, param: u64);
    /// `check`, then `record` if it accepted: the validator's hot path, one
    /// call, so a state can find `n`'s place once for both.
    fn admit(&mut self, n: u64, param: u64) -> Result<(), Refusal> {
        self.check(n, param)?;
        self.record(n, param);
        Ok(())
    }
    /// Heap bytes this state holds beyond its table bucket.
    fn heap_bytes(&self) -> usize;
    /// The state as data; `None` while nothing was accepted.
    fn snapshot(&self, param: u64) -> Option<StateSnapshot>;
    /// A window state rebuilt as it was (same width); `None` for other kinds.
    fn from_window(_win: &Window, _w: u64) -> Option<Self> {
        None
    }
}

/// `Strict`: the last accepted nonce (0: none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Strict(u64);

impl State for Strict {
    type Align = Align32;
    fn fresh(_: u64) -> Self {
        Strict(0)
    }
    fn highest(&self) -> Option<u64> {
        (self.0 != 0).then_some(self.0)
    }
    fn check(&self, n: u64, _: u64) -> Result<(), Refusal> {
        match n.cmp(&self.0) {
            std::cmp::Ordering::Greater => Ok(()),
            std::cmp::Ordering::Equal => Err(Refusal::AlreadyUsed),
            std::cmp::Ordering::Less => Err(Refusal::TooLow),
        }
    }
    fn record(&mut self, n: u64, _: u64) {
        self.0 = n;
    }
    fn heap_bytes(&self) -> usize {
        0
    }
    fn snapshot(&self, _: u64) -> Option<StateSnapshot> {
        self.highest().map(|last| StateSnapshot::Strict { last })
    }
}

/// Where `n` is in the ascending `values`: `Ok(i)` if `values[i] == n`, else
/// `Err(i)`, where it would go. Looks at the top four first, one cache line:
/// most nonces are a new highest or arrive a few places late, and at a
/// million accounts each line a binary search touches is a cache miss.
fn locate<V: Ord + Copy>(values: &[V], n: V) -> Result<usize, usize> {
    let near = values.len().saturating_sub(4);
    for (i, &v) in values.iter().enumerate().skip(near).rev() {
        if v == n {
            return Ok(i);
        }
        if v < n {
            return Err(i + 1);
        }
    }
    values[..near].binary_search(&n)
}

/// The verdict of [`locate`] on the live slots: present is `AlreadyUsed`,
/// below the first slot (the minimum; an empty slot, 0, is below any nonce)
/// is `TooLow`, anywhere else is fresh.
fn verdict(place: Result<usize, usize>) -> Result<(), Refusal> {
    match place {
        Ok(_) => Err(Refusal::AlreadyUsed),
        Err(0) => Err(Refusal::TooLow),
        Err(_) => Ok(()),
    }
}

/// Puts `n` into the ascending live `slots` (the first, the minimum or empty,
/// drops out as the values below `n` move down one); `n` must be one that
/// [`verdict`] accepted, else nothing changes.
fn insert<V: Ord + Copy>(slots: &mut [V], n: V) {
    let Err(pos @ 1..) = locate(slots, n) else {
        return; // unreachable after a fresh verdict; recording nothing keeps the state sound
    };
    shift_in(slots, pos, n);
}

/// Puts `n` at `pos - 1` of the ascending `slots` (`pos >= 1`, where
/// [`locate`] placed it), the values below it moving down one and the first
/// dropping out.
fn shift_in<V: Copy>(slots: &mut [V], pos: usize, n: V) {
    slots.copy_within(1..pos, 0);
    slots[pos - 1] = n;
}

/// Zero-sized field types that set a table bucket's alignment (see the
/// shard's `Entry`): a bucket of 64 or 128 bytes aligned to its size sits in
/// one line or one adjacent pair of lines (which the CPU fetches together).
pub(crate) trait Alignment: std::fmt::Debug + Default + Send + Sync + 'static {}
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

/// `HighestK(k)` for `k <= N`: the `k` highest accepted nonces, ascending, in
/// the last `k` of `N` inline slots, each a 32-bit offset above `base` (half
/// the bytes of full values, so `HighestK(20)` fits a 128-byte bucket with
/// its key). An empty slot is 0 (never an offset: `base` is below every
/// value), so empties sort first and the state needs no length.
///
/// `base` stays put while values climb (a new highest only shifts offsets),
/// and moves to just below the minimum when a value does not fit above it.
/// When the values themselves span more than `u32::MAX` (nonces in
/// nanoseconds, or far jumps), they go whole to the heap (`wide`) until they
/// fit again: exact in every case, compact in the common one.
#[derive(Debug, Clone, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct Highest<const N: usize, A> {
    /// Slot `i` holds `base + offs[i]` (0: empty); all 0 while `wide`.
    offs: [u32; N],
    /// Below every value held.
    base: u64,
    /// Every slot as a full value when the offsets cannot hold them. Last,
    /// with `base` beside the top offsets and the key that follows: a check
    /// of a nonce at or near the top reads one cache line.
    wide: Option<Box<[u64; N]>>,
    /// The bucket alignment of this size class (the state itself stays 8-aligned).
    _align: PhantomData<A>,
}

/// The inline size classes: with a `u64` key, buckets of 64, 96, 128, 160
/// and 192 bytes.
pub(crate) type Highest6 = Highest<6, Align64>;
pub(crate) type Highest14 = Highest<14, Align32>;
pub(crate) type Highest22 = Highest<22, Align128>;
pub(crate) type Highest30 = Highest<30, Align32>;
pub(crate) type Highest38 = Highest<38, Align64>;

impl<const N: usize, A> Highest<N, A> {
    /// Where the live slots start: the last `k` are live (`k <= N`, as the
    /// shard's type was chosen).
    fn first_live(k: u64) -> usize {
        N.saturating_sub(usize::try_from(k).unwrap_or(usize::MAX))
    }

    /// The value in slot `i` (0: empty).
    fn value(&self, i: usize) -> u64 {
        match &self.wide {
            Some(values) => values[i],
            // base + an offset is the value it was taken from: never above u64::MAX
            None => match self.offs[i] {
                0 => 0,
                off => self.base.saturating_add(u64::from(off)),
            },
        }
    }

    /// Every slot as a full value, ascending (0: empty).
    fn values(&self) -> [u64; N] {
        std::array::from_fn(|i| self.value(i))
    }

    /// Stores `values` (ascending, empties first): as offsets above just below
    /// the minimum when the highest fits, whole on the heap otherwise.
    fn store(&mut self, values: &[u64; N]) {
        let min = values.iter().copied().find(|&v| v != 0).unwrap_or(1);
        let base = min - 1; // min >= 1: a nonce is positive
        let fits = values.iter().all(|&v| v == 0 || v - base <= u64::from(u32::MAX));
        if fits {
            self.wide = None;
            self.base = base;
            for (off, &v) in self.offs.iter_mut().zip(values) {
                // fits: v - base <= u32::MAX
                *off = if v == 0 { 0 } else { u32::try_from(v - base).unwrap_or(u32::MAX) };
            }
        } else {
            self.wide = Some(Box::new(*values));
            self.base = 0;
            self.offs = [0; N];
        }
    }
}

impl<const N: usize, A: Alignment> State for Highest<N, A> {
    type Align = A;
    fn fresh(_: u64) -> Self {
        Highest { wide: None, offs: [0; N], base: 0, _align: PhantomData }
    }
    fn highest(&self) -> Option<u64> {
        N.checked_sub(1).map(|top| self.value(top)).filter(|&n| n != 0)
    }
    fn check(&self, n: u64, k: u64) -> Result<(), Refusal> {
        let live = Self::first_live(k);
        if let Some(values) = &self.wide {
            return verdict(locate(&values[live..], n));
        }
        let offs = &self.offs[live..];
        if n <= self.base {
            // below every value held: too low once all k slots hold one
            return match offs.first() {
                Some(&off) if off != 0 => Err(Refusal::TooLow),
                _ => Ok(()),
            };
        }
        match u32::try_from(n - self.base) {
            Ok(off) => verdict(locate(offs, off)),
            Err(_) => Ok(()), // above every value held
        }
    }
    fn admit(&mut self, n: u64, k: u64) -> Result<(), Refusal> {
        if self.wide.is_none() && n > self.base {
            if let Ok(off) = u32::try_from(n - self.base) {
                // the common case, as `check` then `record` take it, locating `off` once
                let slots = &mut self.offs[Self::first_live(k)..];
                let place = locate(slots, off);
                verdict(place)?;
                if let Err(pos @ 1..) = place {
                    shift_in(slots, pos, off);
                }
                return Ok(());
            }
        }
        self.check(n, k)?;
        self.record(n, k);
        Ok(())
    }
    fn record(&mut self, n: u64, k: u64) {
        let live = Self::first_live(k);
        if self.wide.is_none() && n > self.base {
            if let Ok(off) = u32::try_from(n - self.base) {
                // the common case: the offsets shift, base stays below every value
                insert(&mut self.offs[live..], off);
                return;
            }
        }
        let mut values = self.values();
        insert(&mut values[live..], n);
        self.store(&values);
    }
    fn heap_bytes(&self) -> usize {
        self.wide.as_ref().map_or(0, |_| std::mem::size_of::<[u64; N]>())
    }
    fn snapshot(&self, _: u64) -> Option<StateSnapshot> {
        let values: Vec<u64> = self.values().into_iter().filter(|&n| n != 0).collect();
        (!values.is_empty()).then_some(StateSnapshot::HighestK { values })
    }
}

/// `HighestK(k)` for `k` above the inline sizes: the values on the heap,
/// ascending, at most `k` (grown as they come, not allocated up front).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HighestDeque(VecDeque<u64>);

impl State for HighestDeque {
    type Align = Align32;
    fn fresh(_: u64) -> Self {
        HighestDeque(VecDeque::new())
    }
    fn highest(&self) -> Option<u64> {
        self.0.back().copied()
    }
    fn check(&self, n: u64, k: u64) -> Result<(), Refusal> {
        if self.0.binary_search(&n).is_ok() {
            Err(Refusal::AlreadyUsed)
        } else if self.0.len() as u64 >= k && self.0.front().is_some_and(|&min| n < min) {
            Err(Refusal::TooLow)
        } else {
            Ok(())
        }
    }
    fn record(&mut self, n: u64, k: u64) {
        let values = &mut self.0;
        if values.capacity() == 0 {
            values.reserve_exact(usize::try_from(k).unwrap_or(usize::MAX).min(1024));
        }
        let pos = values.partition_point(|&v| v < n);
        if values.len() as u64 >= k {
            if pos == 0 {
                return; // unreachable after `check`; recording nothing keeps the state sound
            }
            // n is above the minimum (check said so): evict it first, then insert.
            values.pop_front();
            values.insert(pos - 1, n);
        } else {
            values.insert(pos, n);
        }
    }
    fn heap_bytes(&self) -> usize {
        self.0.capacity() * 8
    }
    fn snapshot(&self, _: u64) -> Option<StateSnapshot> {
        (!self.0.is_empty()).then(|| StateSnapshot::HighestK { values: self.0.iter().copied().collect() })
    }
}

/// The bucket alignment for a window kept in each ring storage.
pub(crate) trait RingAlign {
    type Align: Alignment;
}
impl RingAlign for Boxed {
    // the heap window's 64-byte bucket in one cache line, not half of them across two
    type Align = Align64;
}
impl<const N: usize> RingAlign for Inline<N> {
    // `Window(64)`'s 48-byte bucket: 16-aligned (32 would pad it to 64 bytes)
    type Align = Align16;
}

impl<R: Ring + RingAlign + Send + Sync + 'static> State for Window<R> {
    type Align = R::Align;
    fn fresh(_: u64) -> Self {
        Window::new()
    }
    fn highest(&self) -> Option<u64> {
        Window::highest(self)
    }
    fn check(&self, n: u64, w: u64) -> Result<(), Refusal> {
        Window::check(self, n, w).map_err(|v| match v {
            WindowVerdict::TooLow => Refusal::TooLow,
            WindowVerdict::Seen => Refusal::AlreadyUsed,
        })
    }
    fn record(&mut self, n: u64, w: u64) {
        Window::record(self, n, w);
    }
    fn heap_bytes(&self) -> usize {
        Window::heap_bytes(self)
    }
    fn snapshot(&self, w: u64) -> Option<StateSnapshot> {
        let (highest, low, ring) = self.parts(w);
        (highest != 0).then(|| StateSnapshot::Window { highest, low, ring: ring.unwrap_or_default() })
    }
    fn from_window(win: &Window, w: u64) -> Option<Self> {
        let (highest, low, ring) = win.parts(w);
        Window::from_parts(highest, low, ring.as_deref(), w)
    }
}

/// `Window(w)` for `w <= 64` (a ring of 2 words, inline), and the rest.
pub(crate) type SmallWindow = Window<Inline<2>>;
pub(crate) type BigWindow = Window<Boxed>;

#[cfg(test)]
mod tests {
    use super::*;

    /// Nonces for the HighestK rule test: `spread` apart at most, above `low`.
    struct Draws {
        x: u64,
        low: u64,
        step: u64,
    }

    impl Draws {
        fn next(&mut self) -> u64 {
            self.x ^= self.x << 13;
            self.x ^= self.x >> 7;
            self.x ^= self.x << 17;
            // 200 distinct values `step` apart, from `low` up (saturating: the top ones repeat)
            self.low.saturating_add((self.x % 200).saturating_mul(self.step))
        }
    }

    /// HighestK against the rule, for an inline and a heap store, on nonces
    /// 1..=200 apart by `step` from `low`.
    fn highest_k_agrees_with_the_rule<T: State + PartialEq + std::fmt::Debug>(k: u64, low: u64, step: u64) {
        let mut state = T::fresh(k);
        let mut admitted = T::fresh(k); // the same nonces through `admit`: the same verdicts and states
        let mut kept: Vec<u64> = Vec::new(); // the k highest accepted, ascending
        let mut draws = Draws { x: 0x9E37_79B9_7F4A_7C15 ^ low ^ step, low, step };
        for _ in 0..5_000 {
            let n = draws.next();
            let expected = if kept.contains(&n) {
                Err(Refusal::AlreadyUsed)
            } else if kept.len() as u64 == k && n < kept[0] {
                Err(Refusal::TooLow)
            } else {
                Ok(())
            };
            assert_eq!(state.check(n, k), expected, "k {k} n {n} kept {kept:?}");
            assert_eq!(admitted.admit(n, k), expected, "admit: k {k} n {n} kept {kept:?}");
            if expected.is_ok() {
                state.record(n, k);
                kept.insert(kept.partition_point(|&v| v < n), n);
                if kept.len() as u64 > k {
                    kept.remove(0);
                }
            }
            assert_eq!(admitted, state, "admit and check + record keep the same state");
            assert_eq!(state.highest(), kept.last().copied());
            let values = state.snapshot(k).map(|snap| snap.remembered());
            assert_eq!(values.unwrap_or_default(), kept, "k {k}: the snapshot lists the kept values, ascending");
        }
    }

    /// Every inline size at each of its edges, and the heap store, on close
    /// nonces (offsets), nonces spread over more than `u32::MAX` (whole values
    /// on the heap, back and forth) and nonces up to `u64::MAX`.
    #[test]
    fn highest_k_inline_and_boxed_follow_the_rule() {
        for (low, step) in
            [(1, 1), (1, 1 << 25), (1 << 40, 1 << 27), (u64::MAX - 5_000, 13), (u64::MAX - (199 << 30), 1 << 30)]
        {
            for k in [1, 2, 5, 6] {
                highest_k_agrees_with_the_rule::<Highest6>(k, low, step);
            }
            for k in [7, 14] {
                highest_k_agrees_with_the_rule::<Highest14>(k, low, step);
            }
            for k in [15, 20, 22] {
                highest_k_agrees_with_the_rule::<Highest22>(k, low, step);
            }
            for k in [23, 30] {
                highest_k_agrees_with_the_rule::<Highest30>(k, low, step);
            }
            for k in [31, 38] {
                highest_k_agrees_with_the_rule::<Highest38>(k, low, step);
            }
            for k in [1, 20, 39, 100] {
                highest_k_agrees_with_the_rule::<HighestDeque>(k, low, step);
            }
        }
    }

    /// Values that span more than `u32::MAX` live on the heap, and come back
    /// inline once they fit again.
    #[test]
    fn highest_k_goes_wide_only_while_it_must() {
        let mut state = Highest6::fresh(2);
        for n in [10, 11] {
            state.record(n, 2);
        }
        assert_eq!(state.heap_bytes(), 0);
        let far = 11 + u64::from(u32::MAX) + 1;
        state.record(far, 2); // keeps 11 and far: 2^32 apart
        assert_eq!(state.heap_bytes(), 6 * 8, "too far apart for offsets");
        assert_eq!(state.check(11, 2), Err(Refusal::AlreadyUsed));
        assert_eq!(state.check(10, 2), Err(Refusal::TooLow));
        state.record(far + 1, 2); // 11 drops out
        assert_eq!(state.heap_bytes(), 0, "inline again");
        assert_eq!(state.snapshot(2).map(|s| s.remembered()), Some(vec![far, far + 1]));
        assert_eq!(state.check(far, 2), Err(Refusal::AlreadyUsed));
        assert_eq!(state.check(far - 1, 2), Err(Refusal::TooLow));
        assert_eq!(state.check(u64::MAX, 2), Ok(()));
    }

    #[test]
    fn states_are_as_small_as_their_policy_needs() {
        assert_eq!(std::mem::size_of::<Strict>(), 8);
        assert_eq!(std::mem::size_of::<Highest22>(), 8 + 22 * 4 + 8);
        assert_eq!(std::mem::size_of::<SmallWindow>(), 24); // the highest and two ring words
        assert!(std::mem::size_of::<BigWindow>() <= 40, "{}", std::mem::size_of::<BigWindow>());
    }
}
