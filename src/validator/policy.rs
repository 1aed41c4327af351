//! Per-account state for each policy, as plain data with `&mut self` methods.

use super::window::{Window, WindowVerdict};
use std::collections::VecDeque;

/// Which nonces a [`NonceValidator`](crate::NonceValidator) accepts for an account.
///
/// | policy | accepts `n` iff | memory per account |
/// |---|---|---|
/// | `Strict` | `n > last` | one `u64` |
/// | `HighestK(k)` | `n` is not among the `k` highest accepted and, once `k` are stored, `n >` the smallest of them | up to `k` `u64`s |
/// | `Window(w)` | `n` was not seen and `highest - n <= w` | `w / 64 + 2` words (none while traffic is dense and in order) |
///
/// # Example
/// ```
/// use monotonic_nonce::{NonceValidator, Policy};
/// let v = NonceValidator::new(Policy::HighestK(20));
/// v.validate(&"alice", 102)?;
/// v.validate(&"alice", 101)?; // arrived late: still accepted
/// assert!(v.validate(&"alice", 101).is_err()); // a replay is not
/// # Ok::<(), monotonic_nonce::Rejection>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Policy {
    /// Accept only `nonce > last` (the common REST exchange rule).
    Strict,
    /// Keep the `k` highest accepted nonces (Hyperliquid's rule): tolerates
    /// reordering among the last `k` requests, whatever the gaps.
    HighestK(usize),
    /// The IPsec/WireGuard anti-replay window (RFC 6479) of width `w`: suits dense counters.
    Window(u64),
}

/// Why an account's state refuses a nonce (the validator adds the numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    AlreadyUsed,
    TooLow,
}

/// One account's memory of what it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AccountState {
    Strict {
        last: u64,
    },
    /// Ascending; at most `k` values.
    HighestK(VecDeque<u64>),
    Window(Window),
}

impl AccountState {
    pub(crate) fn new(policy: Policy) -> Self {
        match policy {
            Policy::Strict => Self::Strict { last: 0 },
            Policy::HighestK(_) => Self::HighestK(VecDeque::new()),
            Policy::Window(_) => Self::Window(Window::new()),
        }
    }

    /// The highest accepted nonce.
    pub(crate) fn highest(&self) -> Option<u64> {
        match self {
            Self::Strict { last } => (*last != 0).then_some(*last),
            Self::HighestK(values) => values.back().copied(),
            Self::Window(win) => win.highest(),
        }
    }

    /// The verdict for the positive nonce `n`; changes nothing.
    pub(crate) fn check(&self, n: u64, policy: Policy) -> Result<(), Refusal> {
        match (self, policy) {
            (Self::Strict { last }, _) => match n.cmp(last) {
                std::cmp::Ordering::Greater => Ok(()),
                std::cmp::Ordering::Equal => Err(Refusal::AlreadyUsed),
                std::cmp::Ordering::Less => Err(Refusal::TooLow),
            },
            (Self::HighestK(values), Policy::HighestK(k)) => {
                if values.binary_search(&n).is_ok() {
                    Err(Refusal::AlreadyUsed)
                } else if values.len() >= k && values.front().is_some_and(|&min| n < min) {
                    Err(Refusal::TooLow)
                } else {
                    Ok(())
                }
            }
            (Self::Window(win), Policy::Window(w)) => win.check(n, w).map_err(|v| match v {
                WindowVerdict::TooLow => Refusal::TooLow,
                WindowVerdict::Seen => Refusal::AlreadyUsed,
            }),
            // The validator builds every state from its own policy, so these never meet.
            _ => Err(Refusal::TooLow),
        }
    }

    /// Records `n`, which `check(n, policy)` accepted.
    pub(crate) fn record(&mut self, n: u64, policy: Policy) {
        match (self, policy) {
            (Self::Strict { last }, _) => *last = n,
            (Self::HighestK(values), Policy::HighestK(k)) => {
                if values.capacity() == 0 {
                    values.reserve_exact(k.min(1024));
                }
                let pos = values.partition_point(|&v| v < n);
                if values.len() >= k {
                    // n is above the minimum (check said so): evict it first, then insert.
                    values.pop_front();
                    values.insert(pos - 1, n);
                } else {
                    values.insert(pos, n);
                }
            }
            (Self::Window(win), Policy::Window(w)) => win.record(n, w),
            _ => {}
        }
    }

    /// The accepted nonces this state still remembers, ascending: recording them
    /// in order into a fresh state rebuilds the same verdicts.
    pub(crate) fn remembered(&self, policy: Policy) -> Vec<u64> {
        match (self, policy) {
            (Self::Strict { .. }, _) => self.highest().into_iter().collect(),
            (Self::HighestK(values), _) => values.iter().copied().collect(),
            (Self::Window(win), Policy::Window(w)) => win.seen(w),
            (Self::Window(win), _) => win.highest().into_iter().collect(),
        }
    }

    /// Heap bytes this state holds (memory accounting).
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Self::Strict { .. } => 0,
            Self::HighestK(values) => values.capacity() * 8,
            Self::Window(win) => win.ring_len() * 8,
        }
    }
}
