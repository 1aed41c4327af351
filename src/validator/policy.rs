//! Per-account state for each policy, as plain data with `&mut self` methods.

use super::window::{Window, WindowVerdict};
use super::{MAX_HIGHEST_K, MAX_WINDOW};
use crate::error::BuildError;
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

impl Policy {
    /// The policy's parameter, checked: `HighestK(0)`, `Window(0)`, and
    /// values above [`MAX_HIGHEST_K`](crate::MAX_HIGHEST_K) / [`MAX_WINDOW`](crate::MAX_WINDOW) are refused.
    pub(crate) fn check(self) -> Result<Self, BuildError> {
        match self {
            Policy::HighestK(0) => Err(BuildError::config("policy", "HighestK(0) remembers nothing; use k >= 1")),
            Policy::HighestK(k) if k > MAX_HIGHEST_K => {
                Err(BuildError::config("policy", format!("HighestK({k}) is above {MAX_HIGHEST_K}")))
            }
            Policy::Window(0) => Err(BuildError::config("policy", "Window(0) is Strict; use Policy::Strict or w >= 1")),
            Policy::Window(w) if w > MAX_WINDOW => {
                Err(BuildError::config("policy", format!("Window({w}) is above the limit {MAX_WINDOW} (2^20)")))
            }
            p => Ok(p),
        }
    }
}

/// Why an account's state refuses a nonce (the validator adds the numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    AlreadyUsed,
    TooLow,
}

/// One account's memory of what it accepted, carrying its policy's parameter,
/// so a state and a policy can never disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AccountState {
    Strict {
        last: u64,
    },
    HighestK {
        /// `k` as a `u32` (it is at most `MAX_HIGHEST_K`): keeps the state 8 bytes smaller.
        k: u32,
        /// Ascending; at most `k` values.
        values: VecDeque<u64>,
    },
    Window {
        /// `w` as a `u32` (it is at most `MAX_WINDOW`).
        w: u32,
        win: Window,
    },
}

impl AccountState {
    /// An empty state for `policy` (already checked by [`Policy::check`]).
    pub(crate) fn new(policy: Policy) -> Self {
        match policy {
            Policy::Strict => Self::Strict { last: 0 },
            // `Policy::check` bounded both below u32::MAX; saturating keeps that true regardless
            Policy::HighestK(k) => Self::HighestK { k: u32::try_from(k).unwrap_or(u32::MAX), values: VecDeque::new() },
            Policy::Window(w) => Self::Window { w: u32::try_from(w).unwrap_or(u32::MAX), win: Window::new() },
        }
    }

    /// The highest accepted nonce.
    pub(crate) fn highest(&self) -> Option<u64> {
        match self {
            Self::Strict { last } => (*last != 0).then_some(*last),
            Self::HighestK { values, .. } => values.back().copied(),
            Self::Window { win, .. } => win.highest(),
        }
    }

    /// The verdict for the positive nonce `n`; changes nothing.
    pub(crate) fn check(&self, n: u64) -> Result<(), Refusal> {
        match self {
            Self::Strict { last } => match n.cmp(last) {
                std::cmp::Ordering::Greater => Ok(()),
                std::cmp::Ordering::Equal => Err(Refusal::AlreadyUsed),
                std::cmp::Ordering::Less => Err(Refusal::TooLow),
            },
            Self::HighestK { k, values } => {
                if values.binary_search(&n).is_ok() {
                    Err(Refusal::AlreadyUsed)
                } else if values.len() >= *k as usize && values.front().is_some_and(|&min| n < min) {
                    Err(Refusal::TooLow)
                } else {
                    Ok(())
                }
            }
            Self::Window { w, win } => win.check(n, u64::from(*w)).map_err(|v| match v {
                WindowVerdict::TooLow => Refusal::TooLow,
                WindowVerdict::Seen => Refusal::AlreadyUsed,
            }),
        }
    }

    /// Records `n`, which `check(n)` accepted.
    pub(crate) fn record(&mut self, n: u64) {
        match self {
            Self::Strict { last } => *last = n,
            Self::HighestK { k, values } => {
                let k = *k as usize;
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
            Self::Window { w, win } => win.record(n, u64::from(*w)),
        }
    }

    /// Heap bytes this state holds (memory accounting).
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Self::Strict { .. } => 0,
            Self::HighestK { values, .. } => values.capacity() * 8,
            Self::Window { win, .. } => win.ring_len() * 8,
        }
    }
}
