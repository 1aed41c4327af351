//! The per-account state of each policy, one type per policy (and per size
//! class), behind the [`State`] trait: a shard is generic over it, so an
//! account's state sits in the shard's table bucket at the size its policy
//! needs (8 bytes for `Strict`), with no enum tag and no second allocation
//! for `HighestK(k <= 32)` or `Window(w <= 64)`.

use super::snapshot::StateSnapshot;
use super::window::{Boxed, Inline, Ring, Window, WindowVerdict};
use std::collections::VecDeque;

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
    /// An empty state: nothing accepted yet.
    fn fresh(param: u64) -> Self;
    /// The highest accepted nonce.
    fn highest(&self) -> Option<u64>;
    /// The verdict for the positive nonce `n`; changes nothing.
    fn check(&self, n: u64, param: u64) -> Result<(), Refusal>;
    /// Records `n`, which `check(n, param)` accepted.
    fn record(&mut self, n: u64, param: u64);
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
fn locate(values: &[u64], n: u64) -> Result<usize, usize> {
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

/// `HighestK(k)` for `k <= N`: the `k` highest accepted nonces, ascending, in
/// the last `k` of `N` inline slots; an empty slot is 0 (never a valid nonce),
/// so empties sort first and the state needs no length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Highest<const N: usize>([u64; N]);

impl<const N: usize> Highest<N> {
    /// Where the live slots start: the last `k` are live (`k <= N`, as the
    /// shard's type was chosen).
    fn first_live(k: u64) -> usize {
        N.saturating_sub(usize::try_from(k).unwrap_or(usize::MAX))
    }
}

impl<const N: usize> State for Highest<N> {
    fn fresh(_: u64) -> Self {
        Highest([0; N])
    }
    fn highest(&self) -> Option<u64> {
        self.0.last().copied().filter(|&n| n != 0)
    }
    fn check(&self, n: u64, k: u64) -> Result<(), Refusal> {
        match locate(&self.0[Self::first_live(k)..], n) {
            Ok(_) => Err(Refusal::AlreadyUsed),
            // below every slot: the first slot holds the minimum (empty slots, 0, sort below any n)
            Err(0) => Err(Refusal::TooLow),
            Err(_) => Ok(()),
        }
    }
    fn record(&mut self, n: u64, k: u64) {
        let values = &mut self.0[Self::first_live(k)..];
        // `check` accepted n: it goes above the first slot (empty or the minimum),
        // which drops out as the values below n move down one
        let Err(pos @ 1..) = locate(values, n) else {
            return; // unreachable after `check`; recording nothing keeps the state sound
        };
        values.copy_within(1..pos, 0);
        values[pos - 1] = n;
    }
    fn heap_bytes(&self) -> usize {
        0
    }
    fn snapshot(&self, _: u64) -> Option<StateSnapshot> {
        let values: Vec<u64> = self.0.iter().copied().filter(|&n| n != 0).collect();
        (!values.is_empty()).then_some(StateSnapshot::HighestK { values })
    }
}

/// `HighestK(k)` for `k` above the inline sizes: the values on the heap,
/// ascending, at most `k` (grown as they come, not allocated up front).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HighestDeque(VecDeque<u64>);

impl State for HighestDeque {
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

impl<R: Ring + Send + Sync + 'static> State for Window<R> {
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

    /// HighestK against the rule, for an inline and a heap store.
    fn highest_k_agrees_with_the_rule<T: State>(k: u64) {
        let mut state = T::fresh(k);
        let mut kept: Vec<u64> = Vec::new(); // the k highest accepted, ascending
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..5_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let n = 1 + x % 200;
            let expected = if kept.contains(&n) {
                Err(Refusal::AlreadyUsed)
            } else if kept.len() as u64 == k && n < kept[0] {
                Err(Refusal::TooLow)
            } else {
                Ok(())
            };
            assert_eq!(state.check(n, k), expected, "k {k} n {n} kept {kept:?}");
            if expected.is_ok() {
                state.record(n, k);
                kept.insert(kept.partition_point(|&v| v < n), n);
                if kept.len() as u64 > k {
                    kept.remove(0);
                }
            }
            assert_eq!(state.highest(), kept.last().copied());
            let values = state.snapshot(k).map(|snap| snap.remembered());
            assert_eq!(values.unwrap_or_default(), kept, "k {k}: the snapshot lists the kept values, ascending");
        }
    }

    #[test]
    fn highest_k_inline_and_boxed_follow_the_rule() {
        for k in [1, 2, 7, 8] {
            highest_k_agrees_with_the_rule::<Highest<8>>(k);
        }
        for k in [9, 16] {
            highest_k_agrees_with_the_rule::<Highest<16>>(k);
        }
        for k in [17, 20, 24] {
            highest_k_agrees_with_the_rule::<Highest<24>>(k);
        }
        for k in [25, 32] {
            highest_k_agrees_with_the_rule::<Highest<32>>(k);
        }
        for k in [1, 20, 33, 100] {
            highest_k_agrees_with_the_rule::<HighestDeque>(k);
        }
    }

    #[test]
    fn states_are_as_small_as_their_policy_needs() {
        assert_eq!(std::mem::size_of::<Strict>(), 8);
        assert_eq!(std::mem::size_of::<Highest<16>>(), 128);
        assert!(std::mem::size_of::<SmallWindow>() <= 40, "{}", std::mem::size_of::<SmallWindow>());
        assert!(std::mem::size_of::<BigWindow>() <= 40, "{}", std::mem::size_of::<BigWindow>());
    }
}
