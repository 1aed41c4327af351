//! The public [`Policy`] and its checks; the per-account state each policy
//! keeps is in `state.rs`.

use super::{MAX_HIGHEST_K, MAX_WINDOW};
use crate::error::BuildError;

/// Which nonces a [`NonceValidator`](crate::NonceValidator) accepts for an account.
///
/// | policy | accepts `n` iff | memory per account |
/// |---|---|---|
/// | `Strict` | `n > last` | one `u64` |
/// | `HighestK(k)` | `n` is not among the `k` highest accepted and, once `k` are stored, `n >` the smallest of them | `k` 32-bit offsets above a base, inline for `k <= 40` (whole `u64`s in a per-shard store while the `k` values span more than `u32::MAX`) |
/// | `Window(w)` | `n` was not seen and `highest - n <= w` | two words inline for `w <= 64`; for wider windows a 64-bit bitmap while reordering stays within 64, else a ring of `w / 64 + 1` words |
///
/// Besides its state, each account costs its key and a floor, and an LRU
/// index when `max_accounts` bounds the validator, in one hash-table bucket
/// (32 bytes for `Strict` with a `u64` key, 88 for `HighestK(16)`).
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
