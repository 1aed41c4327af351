//! [`ValidatorSnapshot`]: what a [`NonceValidator`](crate::NonceValidator)
//! remembers, copied out one shard at a time, and put back by
//! [`NonceValidatorBuilder::restore`](crate::NonceValidatorBuilder::restore).

use super::policy::AccountState;
use super::Policy;
use crate::error::NonceError;

/// The state of a [`NonceValidator`](crate::NonceValidator): its policy, the
/// eviction floor, and for every tracked account the nonces its policy still
/// remembers. Serializable with the `serde` feature; see
/// [`save`](Self::save) / [`load`](Self::load).
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
/// let snap = v.into_snapshot(); // clean shutdown: restorable without a guard
/// assert_eq!(snap.accounts[0].remembered, vec![99, 100]);
/// let v = NonceValidator::builder(Policy::HighestK(4)).restore(snap).build().unwrap();
/// assert!(matches!(v.validate(&7, 100), Err(Rejection::AlreadyUsed { .. })));
/// # Ok::<(), Rejection>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ValidatorSnapshot<K> {
    /// The policy the state was built under; `restore` requires the same one.
    pub policy: Policy,
    /// The highest nonce of any evicted account.
    pub eviction_floor: u64,
    /// Whether the validator was stopped first
    /// ([`NonceValidator::into_snapshot`](crate::NonceValidator::into_snapshot)):
    /// then nothing can have been accepted after it.
    pub clean_shutdown: bool,
    /// Every tracked account.
    pub accounts: Vec<AccountSnapshot<K>>,
}

/// One account in a [`ValidatorSnapshot`].
///
/// ```
/// use monotonic_nonce::{NonceValidator, Policy};
/// let v = NonceValidator::<u8>::new(Policy::Strict);
/// v.validate(&3, 42)?;
/// let a = &v.snapshot().accounts[0];
/// assert_eq!((a.account, a.floor, a.remembered.clone()), (3, 0, vec![42]));
/// # Ok::<(), monotonic_nonce::Rejection>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AccountSnapshot<K> {
    /// The account's key.
    pub account: K,
    /// Every nonce at or below this is refused (the eviction floor when the account appeared).
    pub floor: u64,
    /// The accepted nonces the policy still remembers, ascending (Strict: the
    /// last; HighestK: up to `k`; Window: the seen nonces inside the window).
    pub remembered: Vec<u64>,
}

/// Rebuilds an account's state from its snapshot, refusing anything that no
/// validator under `policy` could have produced.
pub(super) fn rebuild(policy: Policy, index: usize, remembered: &[u64]) -> Result<AccountState, NonceError> {
    let bad = |why: &str| NonceError::config("restore", format!("account #{index} of the snapshot: {why}"));
    if remembered.is_empty() {
        return Err(bad("remembers no nonce"));
    }
    if remembered[0] == 0 || remembered.windows(2).any(|p| p[0] >= p[1]) {
        return Err(bad("nonces must be positive and strictly ascending"));
    }
    let (low, high) = (remembered[0], remembered[remembered.len() - 1]);
    match policy {
        Policy::Strict if remembered.len() > 1 => return Err(bad("Strict remembers one nonce")),
        Policy::HighestK(k) if remembered.len() > k => return Err(bad("more nonces than HighestK(k) keeps")),
        Policy::Window(w) if high - low > w => return Err(bad("nonces span more than the window")),
        _ => {}
    }
    let mut state = AccountState::new(policy);
    for &n in remembered {
        state.record(n, policy);
    }
    Ok(state)
}

#[cfg(feature = "serde")]
impl<K: serde::Serialize> ValidatorSnapshot<K> {
    /// Writes the snapshot to `path` as JSON, atomically (temp file, `fsync`,
    /// rename, `fsync` of the directory): a crash leaves the old or the new file.
    ///
    /// # Errors
    /// [`NonceError::Persist`] naming the file.
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy, ValidatorSnapshot};
    /// let path = std::env::temp_dir().join(format!("mn-doc-snap-{}.json", std::process::id()));
    /// let v = NonceValidator::<String>::new(Policy::Strict);
    /// v.validate(&"k".into(), 9)?;
    /// v.into_snapshot().save(&path)?;
    /// let back = ValidatorSnapshot::<String>::load(&path)?;
    /// assert_eq!(back.accounts[0].remembered, vec![9]);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<(), NonceError> {
        let path = path.as_ref();
        let bytes = serde_json::to_vec(self)
            .map_err(|e| crate::persist::persist_error(path, None, format!("cannot encode the snapshot: {e}")))?;
        crate::persist::replace_file(path, &bytes)
    }
}

#[cfg(feature = "serde")]
impl<K: serde::de::DeserializeOwned> ValidatorSnapshot<K> {
    /// Reads a snapshot written by [`save`](Self::save).
    ///
    /// # Errors
    /// [`NonceError::Persist`] naming the file when it cannot be read or is
    /// not a complete snapshot (truncated, corrupt, another format).
    ///
    /// ```
    /// use monotonic_nonce::{NonceError, ValidatorSnapshot};
    /// let r = ValidatorSnapshot::<String>::load("/nonexistent/snapshot.json");
    /// assert!(matches!(r, Err(NonceError::Persist(_))));
    /// ```
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Self, NonceError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| {
            crate::persist::persist_error(path, Some(e.kind()), format!("cannot read the snapshot: {e}"))
        })?;
        serde_json::from_slice(&bytes).map_err(|e| {
            crate::persist::persist_error(
                path,
                None,
                format!("not a complete validator snapshot (truncated or corrupt?): {e}; restore an older snapshot or start with a max_future guard"),
            )
        })
    }
}
