//! The public [`Policy`] and its checks; the per-account state each policy
//! keeps is in `state.rs`.

use crate::error::BuildError;

/// The widest `Window(w)` accepted (2^20: a 16 KiB ring per account).
///
/// ```
/// use monotonic_nonce::{NonceValidator, Policy, rules::MAX_WINDOW};
/// assert!(NonceValidator::<u8>::builder(Policy::Window(MAX_WINDOW)).build().is_ok());
/// ```
pub const MAX_WINDOW: u64 = 1 << 20;
/// The largest `HighestK(k)` accepted.
///
/// ```
/// use monotonic_nonce::{NonceValidator, Policy, rules::MAX_HIGHEST_K};
/// assert!(NonceValidator::<u8>::builder(Policy::HighestK(MAX_HIGHEST_K + 1)).build().is_err());
/// ```
pub const MAX_HIGHEST_K: usize = 1 << 16;

/// Which nonces a [`NonceValidator`](crate::NonceValidator) accepts for an account.
///
/// | policy | accepts `n` iff | tolerates | state per account (besides the key) | suits | in the wild |
/// |---|---|---|---|---|---|
/// | `Strict` | `n > last` | no reordering at all | one `u64` | one sender per key, strictly serial requests (the common REST rule) | most REST exchange APIs ("nonce must be greater than the last") |
/// | `HighestK(k)` | `n` is not among the `k` highest accepted, and (once `k` are stored) `n >` the smallest of them; accepting evicts the smallest | reordering among the last `k` requests, whatever the gaps | `k` 32-bit offsets above a base, inline in the table (8, 16, 24, 32 or 40 slots, the smallest that holds `k`: buckets of 64 to 192 B, 80 B for `k` 9 to 16); while the `k` values span more than `u32::MAX` (nanosecond nonces, far jumps) they sit whole in a store beside the shard's table; above 40, up to `k` `u64`s on the heap | millisecond nonces from several threads | Hyperliquid (the highest nonces per signer, within a time bound) |
/// | `Window(w)` | `n` was not seen and `highest - n <= w`; a new highest is always accepted | reordering up to `w` nonces back | `w <= 64`: the highest and a two-word ring, inline (24 bytes); `w > 64`: the run `[low, highest]` while traffic is contiguous, a 64-bit bitmap for values up to 64 above the run, and a ring of `w/64 + 1` words on the heap only for reordering beyond that, dropped again on a jump past the window; either way 24 bytes inline (the highest, and the run or the ring's one-word pointer), a 32-byte bucket with a `u64` key | dense counters; O(1) per check whatever `w` | IPsec and WireGuard anti-replay (RFC 6479) |
///
/// Every policy also refuses `0` (`NotPositive`), anything above the ceiling (`AboveCeiling`, default `I64_MAX`),
/// and, when time bounds are set, nonces standing for a time more than `max_future` ahead of or `max_past` behind the
/// validator's clock (`TooFarInFuture`, `TooOld`).
///
/// Each account's bucket holds its key and its state inline: with a `u64` key 16 bytes for `Strict`, 80 for
/// `HighestK(16)`, 32 for any `Window(w)`. A validator with `max_accounts`, or one restored from a snapshot, also
/// keeps each account's floor there (32, 96 and 48 bytes), and a bounded one an LRU node beside the table.
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
    /// values above [`MAX_HIGHEST_K`](crate::rules::MAX_HIGHEST_K) / [`MAX_WINDOW`](crate::rules::MAX_WINDOW) are refused.
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
