//! The snapshot types: what a [`NonceValidator`](crate::NonceValidator)(crate::NonceValidator)
//! remembers, as data. A snapshot's size is proportional to the live state:
//! the highest nonce and the ring's words for a window, the kept values for
//! HighestK, one number for Strict. Taking and restoring one is in
//! `restore.rs`, the JSON file in `file.rs`.

use super::Policy;
use crate::strategy::TimeScale;

/// The snapshot format version this build writes and reads.
///
/// ```
/// let v = monotonic_nonce::NonceValidator::<u8>::new(monotonic_nonce::Policy::Strict);
/// assert_eq!(v.snapshot().version, monotonic_nonce::validator::SNAPSHOT_VERSION);
/// ```
pub const SNAPSHOT_VERSION: u32 = 3;

/// The state of a [`NonceValidator`](crate::NonceValidator): its policy, the eviction floor, and
/// every tracked account's state. Serializable with the `serde` feature,
/// which also adds `save`, `load` and `load_if_exists` (JSON files, written atomically).
///
/// Each account is copied under its shard's lock, so no account is ever
/// half-copied; accounts in different shards are copied at slightly
/// different moments while requests flow.
///
/// ```
/// use monotonic_nonce::{NonceValidator, Policy, Rejection};
/// let v = NonceValidator::<u32>::new(Policy::HighestK(4));
/// v.validate(&7, 100)?;
/// v.validate(&7, 99)?;
/// v.close(); // clean shutdown: the snapshot is restorable without a guard
/// let snap = v.snapshot();
/// assert_eq!(snap.accounts[0].state.remembered(), vec![99, 100]);
/// let v = NonceValidator::builder(Policy::HighestK(4)).restore(snap).build().unwrap();
/// assert!(matches!(v.validate(&7, 100), Err(Rejection::AlreadyUsed { .. })));
/// # Ok::<(), Rejection>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct ValidatorSnapshot<K> {
    /// The format version ([`SNAPSHOT_VERSION`] when taken by this build).
    pub version: u32,
    /// The policy the state was built under, with its `k` or `w`.
    pub policy: Policy,
    /// The time scale of the nonces (the clients' strategy): a snapshot is
    /// restored only under the same scale.
    pub time_scale: TimeScale,
    /// The future bound in force when it was taken, in ms: what the restart
    /// guard must cover of what the old validator could have accepted.
    pub max_future_ms: Option<u64>,
    /// The highest nonce of any evicted account.
    pub eviction_floor: u64,
    /// Whether the validator was closed first ([`NonceValidator::close`](crate::NonceValidator::close)):
    /// then nothing can have been accepted after it. A clean snapshot is
    /// restored without a guard; `load` marks its file as no longer clean, so
    /// the same file is never restored clean twice.
    pub clean_shutdown: bool,
    /// Every tracked account.
    pub accounts: Vec<AccountSnapshot<K>>,
}

/// One account in a [`ValidatorSnapshot`].
///
/// ```
/// use monotonic_nonce::{NonceValidator, Policy, validator::StateSnapshot};
/// let v = NonceValidator::<u8>::new(Policy::Strict);
/// v.validate(&3, 42)?;
/// let a = &v.snapshot().accounts[0];
/// assert_eq!((a.account, a.floor, &a.state), (3, 0, &StateSnapshot::Strict { last: 42 }));
/// # Ok::<(), monotonic_nonce::Rejection>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct AccountSnapshot<K> {
    /// The account's key.
    pub account: K,
    /// Every nonce at or below this is refused (the floor when the account appeared).
    pub floor: u64,
    /// What the policy remembers.
    pub state: StateSnapshot,
}

/// What one account's policy remembers, in a form proportional to its memory.
///
/// ```
/// use monotonic_nonce::{NonceValidator, Policy, validator::StateSnapshot};
/// let v = NonceValidator::<u8>::new(Policy::Window(1 << 20));
/// for n in 1..=100_000 {
///     v.validate(&1, n)?; // a dense in-order counter
/// }
/// // two numbers, not 100 000
/// assert_eq!(v.snapshot().accounts[0].state, StateSnapshot::Window { highest: 100_000, low: 1, ring: vec![] });
/// # Ok::<(), monotonic_nonce::Rejection>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum StateSnapshot {
    /// The last accepted nonce.
    Strict {
        /// The last accepted nonce.
        last: u64,
    },
    /// The `k` (or fewer) highest accepted nonces, ascending.
    HighestK {
        /// The kept nonces, ascending.
        values: Vec<u64>,
    },
    /// The window: its highest nonce, and either the run `[low, highest]`
    /// (empty `ring`) or the RFC 6479 ring's words (`low` unused).
    Window {
        /// The highest accepted nonce.
        highest: u64,
        /// Without a ring: every nonce in `[low, highest]` was seen.
        low: u64,
        /// The ring's words (`w / 64 + 2` of them), or empty.
        ring: Vec<u64>,
    },
}

impl StateSnapshot {
    /// The accepted nonces this state remembers, ascending (for a window,
    /// every seen nonce inside it: at most `w + 1` values in a snapshot taken
    /// by [`NonceValidator::snapshot`](crate::NonceValidator::snapshot)).
    ///
    /// ```
    /// use monotonic_nonce::validator::StateSnapshot;
    /// assert_eq!(StateSnapshot::Strict { last: 9 }.remembered(), vec![9]);
    /// ```
    pub fn remembered(&self) -> Vec<u64> {
        match self {
            Self::Strict { last } => vec![*last],
            Self::HighestK { values } => values.clone(),
            Self::Window { highest, low, ring } if ring.is_empty() => (*low..=*highest).collect(),
            Self::Window { highest, ring, .. } => {
                // bit n % 64 of word (n / 64) % len, for the last `len` blocks up to `highest`
                let len = ring.len() as u64;
                let first = (highest / 64).saturating_sub(len - 1).saturating_mul(64).max(1);
                (first..=*highest).filter(|&n| ring[((n / 64) % len) as usize] & (1u64 << (n % 64)) != 0).collect()
            }
        }
    }
}
