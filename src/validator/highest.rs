//! `HighestK`'s per-account state: the `k` highest accepted nonces as 32-bit
//! offsets above a base, inline in the bucket for `k <= 40` (size classes of
//! 8, 16, 24, 32 and 40 slots); whole values in the shard's side store while
//! they span more than `u32::MAX`; a heap deque above 40.

use super::snapshot::StateSnapshot;
use super::state::{Align128, Align32, Align64, Align8, Alignment, Refusal, State};
use std::collections::VecDeque;
use std::marker::PhantomData;

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

/// `HighestK(k)` for `k <= N`: the `k` highest accepted nonces, ascending, in
/// the last `k` of `N` inline slots, each a 32-bit offset above `base` (half
/// the bytes of full values, so `HighestK(16)` fits an 80-byte bucket with its
/// key, 96 with an own floor). An empty slot is 0 (never an offset: `base` is
/// below every value), so empties sort first and the state needs no length.
/// The `N - k` slots before the live ones are dead: the common insert moves
/// the whole array, so they hold values that dropped out, and nothing reads
/// them.
///
/// `base` stays put while values climb (a new highest only shifts offsets),
/// and moves to just below the minimum when a value does not fit above it.
/// When the values themselves span more than `u32::MAX` (nonces in
/// nanoseconds, or far jumps), they go whole to the shard's [`WideValues`]
/// until they fit again: `base` is then [`WIDE`] (never a base: a base is
/// below a nonce) and the first two offsets hold the index of their slot.
/// Exact in every case, compact in the common one: no bucket carries a
/// pointer for the rare one. Neither `Clone` nor `PartialEq`: a wide state
/// owns its slot (a copy would share it, and comparing two would compare slot
/// numbers, not values).
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Highest<const N: usize, A> {
    /// Slot `i` holds `base + offs[i]` (0: empty); while wide, `offs[0]` and
    /// `offs[1]` are the low and high halves of the index in [`WideValues`].
    offs: [u32; N],
    /// Below every value held, or [`WIDE`]. Last, beside the top offsets and
    /// the key that follows in the bucket: a check of a nonce at or near the
    /// top reads one cache line.
    base: u64,
    /// The bucket alignment of this size class (the state itself stays 8-aligned).
    _align: PhantomData<A>,
}

/// `Highest::base` while the values are whole in the shard's [`WideValues`].
const WIDE: u64 = u64::MAX;

/// A shard's store of `HighestK` values that span more than `u32::MAX`: one
/// slot of `N` whole values per such account, reused once it goes back to
/// offsets (or is dropped).
#[derive(Debug, Default)]
pub(crate) struct WideValues<const N: usize> {
    slots: Vec<[u64; N]>,
    /// Slots no account uses.
    free: Vec<usize>,
}

impl<const N: usize> WideValues<N> {
    /// Slots held, and of those in use.
    #[cfg(test)]
    pub(super) fn slots(&self) -> (usize, usize) {
        (self.slots.len(), self.slots.len() - self.free.len())
    }

    /// A slot holding `values`: a free one, or a new one.
    fn put(&mut self, values: [u64; N]) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.slots[i] = values;
                i
            }
            None => {
                self.slots.push(values);
                self.slots.len() - 1
            }
        }
    }
}

/// The inline size classes: with a `u64` key, buckets of 64, 80, 128, 160
/// and 192 bytes (64, 96, 128, 160, 192 with an own floor and LRU link).
pub(crate) type Highest8 = Highest<8, Align64>;
pub(crate) type Highest16 = Highest<16, Align8>;
pub(crate) type Highest24 = Highest<24, Align128>;
pub(crate) type Highest32 = Highest<32, Align32>;
pub(crate) type Highest40 = Highest<40, Align64>;

impl<const N: usize, A> Highest<N, A> {
    /// Where the live slots start: the last `k` are live (`k <= N`, as the
    /// shard's type was chosen).
    fn first_live(k: u64) -> usize {
        N.saturating_sub(usize::try_from(k).unwrap_or(usize::MAX))
    }

    /// [`State::admit`] for a nonce that is not a new highest or the one
    /// just below it, or that does not fit an offset (out of line: its
    /// binary search and `memmove` stay off the common path).
    #[inline(never)]
    fn admit_below_top(&mut self, n: u64, k: u64, side: &mut WideValues<N>) -> Result<(), Refusal>
    where
        A: Alignment,
    {
        if n > self.base {
            if let Ok(off) = u32::try_from(n - self.base) {
                // as `check` then `record` take it, locating `off` once
                let slots = &mut self.offs[Self::first_live(k)..];
                let place = locate(slots, off);
                verdict(place)?;
                if let Err(pos @ 1..) = place {
                    shift_in(slots, pos, off);
                }
                return Ok(());
            }
        }
        self.check(n, k, side)?;
        self.record(n, k, side);
        Ok(())
    }

    /// The index of this state's slot in the shard's [`WideValues`], if wide.
    fn wide_slot(&self) -> Option<usize> {
        (self.base == WIDE).then(|| {
            let index = u64::from(self.offs[0]) | u64::from(self.offs[1]) << 32;
            usize::try_from(index).unwrap_or(usize::MAX) // it came from a usize
        })
    }

    /// The value in slot `i` (0: empty).
    fn value(&self, i: usize, side: &WideValues<N>) -> u64 {
        match self.wide_slot() {
            // a wide state's slot exists: only `store` and `release` change it
            Some(slot) => side.slots.get(slot).map_or(0, |values| values[i]),
            // base + an offset is the value it was taken from: never above u64::MAX
            None => match self.offs[i] {
                0 => 0,
                off => self.base.saturating_add(u64::from(off)),
            },
        }
    }

    /// Every slot as a full value, ascending (0: empty, and the slots before
    /// the live ones for `k`, whatever they hold).
    fn values(&self, k: u64, side: &WideValues<N>) -> [u64; N] {
        let live = Self::first_live(k);
        std::array::from_fn(|i| if i < live { 0 } else { self.value(i, side) })
    }

    /// A new highest `off` (above the top slot) or one just below it (above
    /// the next): the slots below it move down one and `off` takes its place.
    /// The whole array moves, dead slots before the live ones too (they are
    /// never read: [`values`](Self::values) reads them as empty), so the
    /// move's length is a constant and compiles to a few vector moves, not a
    /// `memmove` call. Both cases are one path: after the move the top two
    /// slots are the lower and the higher of `off` and the old top, selected,
    /// not branched on (swapped pairs alternate between the two cases, so a
    /// branch on which one it is mispredicts half the time). `false`, changing
    /// nothing, anywhere else.
    #[inline]
    fn shift_near_top(&mut self, off: u32, live: usize) -> bool {
        let (Some(top), Some(next)) = (N.checked_sub(1), N.checked_sub(2)) else { return false };
        let (high, second) = (self.offs[top], self.offs[next]);
        if next < live {
            // `k == 1`: the top slot is the only live one, and a new highest replaces it
            if off > high {
                self.offs[top] = off;
                return true;
            }
            return false;
        }
        // above the second highest (or an empty slot, 0) and not the highest itself
        if off > second && off != high {
            self.offs.copy_within(1.., 0);
            self.offs[next] = off.min(high);
            self.offs[top] = off.max(high);
            return true;
        }
        false
    }

    /// Stores `values` (ascending, empties first): as offsets above just below
    /// the minimum when the highest fits, whole in `side` otherwise.
    fn store(&mut self, values: &[u64; N], side: &mut WideValues<N>) {
        let min = values.iter().copied().find(|&v| v != 0).unwrap_or(1);
        let base = min - 1; // min >= 1: a nonce is positive; so base < WIDE
        let fits = values.iter().all(|&v| v == 0 || v - base <= u64::from(u32::MAX));
        let slot = self.wide_slot();
        if fits {
            if let Some(slot) = slot {
                side.free.push(slot);
            }
            self.base = base;
            for (off, &v) in self.offs.iter_mut().zip(values) {
                // fits: v - base <= u32::MAX
                *off = if v == 0 { 0 } else { u32::try_from(v - base).unwrap_or(u32::MAX) };
            }
        } else {
            let slot = match slot {
                Some(slot) => {
                    side.slots[slot] = *values;
                    slot
                }
                None => side.put(*values),
            };
            let index = slot as u64; // a usize: at most 64 bits
            self.offs = [0; N];
            self.offs[0] = index as u32; // the low half, by truncation
            self.offs[1] = (index >> 32) as u32;
            self.base = WIDE;
        }
    }
}

impl<const N: usize, A: Alignment> State for Highest<N, A> {
    type Align = A;
    type OwnAlign = A;
    type Side = WideValues<N>;
    fn fresh(_: u64) -> Self {
        Highest { offs: [0; N], base: 0, _align: PhantomData }
    }
    fn highest(&self, side: &WideValues<N>) -> Option<u64> {
        N.checked_sub(1).map(|top| self.value(top, side)).filter(|&n| n != 0)
    }
    fn check(&self, n: u64, k: u64, side: &WideValues<N>) -> Result<(), Refusal> {
        let live = Self::first_live(k);
        if self.base == WIDE {
            return verdict(locate(&self.values(k, side)[live..], n));
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
    /// Inlined into the validator's hot path with its common case (a nonce
    /// at or next to the top); everything else is out of line.
    #[inline]
    fn admit(&mut self, n: u64, k: u64, side: &mut WideValues<N>) -> Result<(), Refusal> {
        // n > base: not wide (WIDE is u64::MAX), and above every value's base
        if n > self.base {
            if let Ok(off) = u32::try_from(n - self.base) {
                if self.shift_near_top(off, Self::first_live(k)) {
                    return Ok(());
                }
            }
        }
        self.admit_below_top(n, k, side)
    }
    fn record(&mut self, n: u64, k: u64, side: &mut WideValues<N>) {
        let live = Self::first_live(k);
        if n > self.base {
            if let Ok(off) = u32::try_from(n - self.base) {
                // the common case: the offsets shift, base stays below every value
                insert(&mut self.offs[live..], off);
                return;
            }
        }
        let mut values = self.values(k, side);
        insert(&mut values[live..], n);
        self.store(&values, side);
    }
    fn release(self, side: &mut WideValues<N>) {
        if let Some(slot) = self.wide_slot() {
            side.free.push(slot);
        }
    }
    fn heap_bytes(&self) -> usize {
        0
    }
    fn side_bytes(side: &WideValues<N>) -> usize {
        side.slots.capacity() * std::mem::size_of::<[u64; N]>() + side.free.capacity() * std::mem::size_of::<usize>()
    }
    fn snapshot(&self, k: u64, side: &WideValues<N>) -> Option<StateSnapshot> {
        let values: Vec<u64> = self.values(k, side).into_iter().filter(|&n| n != 0).collect();
        (!values.is_empty()).then_some(StateSnapshot::HighestK { values })
    }
}

/// `HighestK(k)` for `k` above the inline sizes: the values on the heap,
/// ascending, at most `k` (grown as they come, not allocated up front).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HighestDeque(VecDeque<u64>);

impl State for HighestDeque {
    type Align = Align32;
    type OwnAlign = Align32;
    type Side = ();
    fn fresh(_: u64) -> Self {
        HighestDeque(VecDeque::new())
    }
    fn highest(&self, (): &()) -> Option<u64> {
        self.0.back().copied()
    }
    fn check(&self, n: u64, k: u64, (): &()) -> Result<(), Refusal> {
        if self.0.binary_search(&n).is_ok() {
            Err(Refusal::AlreadyUsed)
        } else if self.0.len() as u64 >= k && self.0.front().is_some_and(|&min| n < min) {
            Err(Refusal::TooLow)
        } else {
            Ok(())
        }
    }
    fn record(&mut self, n: u64, k: u64, (): &mut ()) {
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
    fn snapshot(&self, _: u64, (): &()) -> Option<StateSnapshot> {
        (!self.0.is_empty()).then(|| StateSnapshot::HighestK { values: self.0.iter().copied().collect() })
    }
}

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
    /// 1..=200 apart by `step` from `low`. Two states share one side store, as
    /// a shard's accounts do: one takes each nonce by `check` then `record`,
    /// the other by `admit`; both must agree with the rule and each other.
    fn highest_k_agrees_with_the_rule<T: State>(k: u64, low: u64, step: u64) {
        let mut side = T::Side::default();
        let mut state = T::fresh(k);
        let mut admitted = T::fresh(k);
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
            assert_eq!(state.check(n, k, &side), expected, "k {k} n {n} kept {kept:?}");
            assert_eq!(admitted.admit(n, k, &mut side), expected, "admit: k {k} n {n} kept {kept:?}");
            if expected.is_ok() {
                state.record(n, k, &mut side);
                kept.insert(kept.partition_point(|&v| v < n), n);
                if kept.len() as u64 > k {
                    kept.remove(0);
                }
            }
            for (name, s) in [("check + record", &state), ("admit", &admitted)] {
                assert_eq!(s.highest(&side), kept.last().copied(), "{name}");
                let values = s.snapshot(k, &side).map(|snap| snap.remembered());
                assert_eq!(values.unwrap_or_default(), kept, "{name}, k {k}: the snapshot lists the kept values");
            }
        }
        state.release(&mut side);
        admitted.release(&mut side);
    }

    /// Every inline size at each of its edges, and the heap store, on close
    /// nonces (offsets), nonces spread over more than `u32::MAX` (whole values
    /// in the side store, back and forth) and nonces up to `u64::MAX`.
    #[test]
    fn highest_k_inline_and_boxed_follow_the_rule() {
        for (low, step) in
            [(1, 1), (1, 1 << 25), (1 << 40, 1 << 27), (u64::MAX - 5_000, 13), (u64::MAX - (199 << 30), 1 << 30)]
        {
            for k in [1, 2, 7, 8] {
                highest_k_agrees_with_the_rule::<Highest8>(k, low, step);
            }
            for k in [9, 16] {
                highest_k_agrees_with_the_rule::<Highest16>(k, low, step);
            }
            for k in [17, 20, 24] {
                highest_k_agrees_with_the_rule::<Highest24>(k, low, step);
            }
            for k in [25, 32] {
                highest_k_agrees_with_the_rule::<Highest32>(k, low, step);
            }
            for k in [33, 40] {
                highest_k_agrees_with_the_rule::<Highest40>(k, low, step);
            }
            for k in [1, 20, 41, 100] {
                highest_k_agrees_with_the_rule::<HighestDeque>(k, low, step);
            }
        }
    }

    /// Values that span more than `u32::MAX` live in the shard's side store,
    /// and come back inline once they fit again, freeing their slot for the
    /// next account that needs one.
    #[test]
    fn highest_k_goes_wide_only_while_it_must() {
        let mut side = WideValues::default();
        let mut state = Highest8::fresh(2);
        for n in [10, 11] {
            state.record(n, 2, &mut side);
        }
        assert_eq!((side.slots.len(), side.free.len()), (0, 0));
        let far = 11 + u64::from(u32::MAX) + 1;
        state.record(far, 2, &mut side); // keeps 11 and far: 2^32 apart
        assert_eq!((side.slots.len(), side.free.len()), (1, 0), "too far apart for offsets");
        assert_eq!(state.check(11, 2, &side), Err(Refusal::AlreadyUsed));
        assert_eq!(state.check(10, 2, &side), Err(Refusal::TooLow));
        assert_eq!(state.highest(&side), Some(far));
        state.record(far + 1, 2, &mut side); // 11 drops out
        assert_eq!((side.slots.len(), side.free.len()), (1, 1), "inline again, its slot free");
        assert_eq!(state.snapshot(2, &side).map(|s| s.remembered()), Some(vec![far, far + 1]));
        assert_eq!(state.check(far, 2, &side), Err(Refusal::AlreadyUsed));
        assert_eq!(state.check(far - 1, 2, &side), Err(Refusal::TooLow));
        assert_eq!(state.check(u64::MAX, 2, &side), Ok(()));
        // a second account going wide takes the free slot; dropping it frees the slot again
        let mut other = Highest8::fresh(2);
        for n in [5, 5 + (1 << 33)] {
            other.record(n, 2, &mut side);
        }
        assert_eq!((side.slots.len(), side.free.len()), (1, 0), "the free slot reused");
        assert_eq!(other.snapshot(2, &side).map(|s| s.remembered()), Some(vec![5, 5 + (1 << 33)]));
        other.release(&mut side);
        assert_eq!(side.free, vec![0]);
    }
}
