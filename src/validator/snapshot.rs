//! [`ValidatorSnapshot`]: what a [`NonceValidator`] remembers, copied out one
//! shard at a time, and put back by
//! [`NonceValidatorBuilder::restore`](crate::NonceValidatorBuilder::restore),
//! with the cold-start guard. A snapshot's size is proportional to the live
//! state: the highest nonce and the ring's words for a window, the kept
//! values for HighestK, one number for Strict.

use super::state::State;
use super::window::{ring_words, Window};
use super::{NonceValidator, Policy};
use crate::clock::Clock;
use crate::error::BuildError;
use crate::strategy::TimeScale;
use crate::sync::Ordering;
use std::hash::{BuildHasher, Hash};

/// The snapshot format version this build writes and reads.
///
/// ```
/// let v = monotonic_nonce::NonceValidator::<u8>::new(monotonic_nonce::Policy::Strict);
/// assert_eq!(v.snapshot().version, monotonic_nonce::SNAPSHOT_VERSION);
/// ```
pub const SNAPSHOT_VERSION: u32 = 3;

/// The state of a [`NonceValidator`]: its policy, the eviction floor, and
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
    /// Whether the validator was closed first ([`NonceValidator::close`]):
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
/// use monotonic_nonce::{NonceValidator, Policy, StateSnapshot};
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
/// use monotonic_nonce::{NonceValidator, Policy, StateSnapshot};
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
    /// by [`NonceValidator::snapshot`]).
    ///
    /// ```
    /// use monotonic_nonce::StateSnapshot;
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

    /// Rebuilds the state as a `T`, the state type of the target policy,
    /// whose parameter is `param`, keeping in `side` what it keeps there; the
    /// target is the snapshot's `policy` or a wider one of the same kind.
    /// Refuses anything no validator could have produced (before it records
    /// anything, so a refusal leaves `side` as it was); allocates no more than
    /// the target allows.
    pub(super) fn rebuild<T: State>(
        &self,
        policy: Policy,
        param: u64,
        ceiling: u64,
        side: &mut T::Side,
    ) -> Result<T, String> {
        let mut state = T::fresh(param);
        match (self, policy) {
            (Self::Strict { last }, Policy::Strict) => {
                if *last == 0 || *last > ceiling {
                    return Err(format!("a last nonce of {last} is outside 1..={ceiling}"));
                }
                state.record(*last, param, side);
            }
            (Self::HighestK { values }, Policy::HighestK(k)) => {
                if values.is_empty() || values.len() > k {
                    return Err(format!("{} nonces for HighestK({k})", values.len()));
                }
                if values[0] == 0 || values.windows(2).any(|p| p[0] >= p[1]) || values[values.len() - 1] > ceiling {
                    return Err(format!("nonces must be positive, strictly ascending and at most {ceiling}"));
                }
                // ascending and at most k <= param: each is a new highest, so each is accepted
                for &n in values {
                    state.record(n, param, side);
                }
            }
            (Self::Window { highest, low, ring }, Policy::Window(w)) => {
                if *highest > ceiling {
                    return Err(format!("a highest nonce of {highest} is above the ceiling {ceiling}"));
                }
                if !ring.is_empty() && ring.len() != ring_words(w) {
                    return Err(format!("a ring of {} words for Window({w})", ring.len()));
                }
                let ring = (!ring.is_empty()).then_some(&ring[..]);
                let win = Window::from_parts(*highest, *low, ring, w)
                    .ok_or_else(|| "a window no validator could have produced".to_owned())?;
                // the same width: taken as it is; widened: replay what the old window
                // still refuses (ascending, each a new highest) into the new one
                match (param == w).then(|| T::from_window(&win, w)).flatten() {
                    Some(same) => state = same,
                    None => {
                        for n in win.seen(w) {
                            state.record(n, param, side);
                        }
                    }
                }
            }
            _ => return Err(format!("its state does not match the policy {policy:?}")),
        }
        Ok(state)
    }
}

/// The highest nonce `policy` refused for an account in `state` by its bound
/// alone (below the k-th highest, behind the window), not by remembering it:
/// the floor that keeps it refused under a wider policy.
fn bound_floor(state: &StateSnapshot, policy: Policy) -> u64 {
    match (state, policy) {
        (StateSnapshot::HighestK { values }, Policy::HighestK(k)) if values.len() >= k => values[0],
        (StateSnapshot::Window { highest, .. }, Policy::Window(w)) => highest.saturating_sub(w.saturating_add(1)),
        _ => 0,
    }
}

/// Whether a snapshot taken under `from` can be restored into `to`.
fn widens(from: Policy, to: Policy) -> bool {
    match (from, to) {
        (Policy::Strict, Policy::Strict) => true,
        (Policy::HighestK(a), Policy::HighestK(b)) => a <= b,
        (Policy::Window(a), Policy::Window(b)) => a <= b,
        _ => false,
    }
}

impl<K: Hash + Eq + Clone + Send + Sync, C: Clock, S: BuildHasher + Clone> NonceValidator<K, C, S> {
    /// A copy of everything this validator remembers, taken one shard at a
    /// time while requests keep flowing (each account is copied whole, under
    /// its shard's lock). Marked as a clean shutdown only after
    /// [`close`](Self::close); otherwise restoring it needs a future bound or
    /// [`NonceValidatorBuilder::accept_unclean_restore`](crate::NonceValidatorBuilder::accept_unclean_restore).
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy};
    /// let v = NonceValidator::new(Policy::Window(64));
    /// v.validate(&"k", 10)?;
    /// v.validate(&"k", 8)?;
    /// let snap = v.snapshot();
    /// assert_eq!(snap.accounts[0].state.remembered(), vec![8, 10]);
    /// assert!(!snap.clean_shutdown);
    /// # Ok::<(), monotonic_nonce::Rejection>(())
    /// ```
    pub fn snapshot(&self) -> ValidatorSnapshot<K> {
        // Relaxed: `close()` stored it before locking any shard; if this load sees
        // `true`, every shard copied below was locked after that store.
        let clean_shutdown = self.closed.load(Ordering::Relaxed);
        let mut accounts = Vec::new();
        for locked in self.shards.iter() {
            let locked = locked.lock();
            // Relaxed: read under the shard lock, as in `validate` (the accounts that
            // share it read it there)
            locked.table.snapshot_into(&mut accounts, self.floor.load(Ordering::Relaxed));
        }
        ValidatorSnapshot {
            version: SNAPSHOT_VERSION,
            policy: self.policy,
            time_scale: self.limits.scale,
            max_future_ms: self.limits.max_future_ms(),
            // Relaxed: read after every shard was copied; a floor raised meanwhile
            // only makes the snapshot stricter.
            eviction_floor: self.floor.load(Ordering::Relaxed),
            clean_shutdown,
            accounts,
        }
    }

    /// Stops accepting: every later `validate` is refused as
    /// [`Rejection::Unavailable`](crate::Rejection::Unavailable) (fail closed),
    /// so a [`snapshot`](Self::snapshot) taken after it holds everything ever
    /// accepted and is marked as a clean shutdown. Works through a shared
    /// reference, so a validator behind `Arc` can be shut down.
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy};
    /// let v = std::sync::Arc::new(NonceValidator::<u8>::new(Policy::Strict));
    /// v.validate(&1, 5)?;
    /// v.close();
    /// assert!(v.validate(&1, 6).is_err());
    /// assert!(v.snapshot().clean_shutdown);
    /// # Ok::<(), monotonic_nonce::Rejection>(())
    /// ```
    pub fn close(&self) {
        // Relaxed: every `validate` reads it under a shard lock, and `snapshot`
        // takes each shard lock after this store: the locks order them.
        self.closed.store(true, Ordering::Relaxed);
        // Pass through every shard once: a validate that read `false` under a
        // lock has finished when its lock is released.
        for locked in self.shards.iter() {
            drop(locked.lock());
        }
    }

    /// Whether [`close`](Self::close) was called.
    ///
    /// ```
    /// let v = monotonic_nonce::NonceValidator::<u8>::new(monotonic_nonce::Policy::Strict);
    /// assert!(!v.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        // Relaxed: a report.
        self.closed.load(Ordering::Relaxed)
    }

    /// [`close`](Self::close), then the final [`snapshot`](Self::snapshot).
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy};
    /// let v = NonceValidator::<u8>::new(Policy::Strict);
    /// v.validate(&1, 5)?;
    /// assert!(v.into_snapshot().clean_shutdown);
    /// # Ok::<(), monotonic_nonce::Rejection>(())
    /// ```
    pub fn into_snapshot(self) -> ValidatorSnapshot<K> {
        self.close();
        self.snapshot()
    }

    /// Puts `snapshot` into this freshly built validator (see
    /// [`NonceValidatorBuilder::restore`](crate::NonceValidatorBuilder::restore)).
    pub(super) fn load_snapshot(&self, snapshot: ValidatorSnapshot<K>, accept_unclean: bool) -> Result<(), BuildError> {
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(BuildError::restore(format!(
                "snapshot format version {}, this build reads version {SNAPSHOT_VERSION}",
                snapshot.version
            )));
        }
        if !widens(snapshot.policy, self.policy) {
            return Err(BuildError::restore(format!(
                "the snapshot was taken under {:?}, this validator uses {:?}; only the same policy or a wider one of its kind",
                snapshot.policy, self.policy
            )));
        }
        let ceiling = self.limits.ceiling;
        if snapshot.eviction_floor > ceiling {
            return Err(BuildError::restore(format!(
                "an eviction floor of {} is above the ceiling {ceiling}; it would refuse every new account",
                snapshot.eviction_floor
            )));
        }
        if snapshot.time_scale != self.limits.scale {
            return Err(BuildError::restore(format!(
                "the snapshot was taken under the time scale of {} nonce units per ms, this validator uses {}; its nonces would stand for other times",
                snapshot.time_scale.units_per_ms(),
                self.limits.scale.units_per_ms()
            )));
        }
        // what the old validator could have accepted reached as far as its own future
        // bound: the guard covers the larger of the two
        let future = match (snapshot.max_future_ms, self.limits.max_future_ms()) {
            (Some(old), Some(new)) => Some(old.max(new)),
            (old, new) => old.or(new),
        };
        let guard = match (snapshot.clean_shutdown, future) {
            (true, _) => 0,
            (false, Some(future)) => {
                // the largest nonce an honest client could have had accepted before the restart
                self.limits.reachable_within(self.clock.now_ms()?, future).unwrap_or(0)
            }
            (false, None) if accept_unclean => 0,
            (false, None) => {
                return Err(BuildError::restore(
                    "the snapshot was not taken after close() and there is no max_future, so requests accepted after it could be replayed; set max_future, or call accept_unclean_restore()",
                ))
            }
        };
        // Relaxed: the validator is not shared yet (`build()` owns it).
        self.floor.store(snapshot.eviction_floor.max(guard), Ordering::Relaxed);
        for (i, account) in snapshot.accounts.into_iter().enumerate() {
            if account.floor > ceiling {
                return Err(BuildError::restore(format!("account #{i}: a floor above the ceiling {ceiling}")));
            }
            // widened: what the old policy refused by its bound alone stays refused
            let bound = if snapshot.policy == self.policy { 0 } else { bound_floor(&account.state, snapshot.policy) };
            let hash = self.hasher.hash_one(&account.account);
            let restored = self.shard(hash).lock().table.restore(
                hash,
                account.account,
                &account.state,
                snapshot.policy,
                account.floor.max(guard).max(bound),
                ceiling,
            );
            let evicted =
                restored.map_err(|why| BuildError::restore(format!("account #{i} of the snapshot: {why}")))?;
            if let Some(evicted) = evicted {
                // Relaxed: not shared yet.
                self.floor.fetch_max(evicted, Ordering::Relaxed);
            }
        }
        Ok(())
    }
}

#[cfg(feature = "serde")]
mod file {
    use super::{ValidatorSnapshot, SNAPSHOT_VERSION};
    use crate::error::SnapshotError;
    use std::path::Path;

    impl<K: serde::Serialize> ValidatorSnapshot<K> {
        /// Writes the snapshot to `path` as JSON, atomically (temp file, `fsync`,
        /// rename, `fsync` of the directory): a crash leaves the old or the new file.
        ///
        /// # Errors
        /// [`SnapshotError::Io`] naming the file.
        ///
        /// ```
        /// use monotonic_nonce::{NonceValidator, Policy, ValidatorSnapshot};
        /// let path = std::env::temp_dir().join(format!("mn-doc-snap-{}.json", std::process::id()));
        /// let v = NonceValidator::<String>::new(Policy::Strict);
        /// v.validate("k", 9)?;
        /// v.into_snapshot().save(&path)?;
        /// let back = ValidatorSnapshot::<String>::load(&path)?;
        /// assert_eq!(back.accounts[0].state.remembered(), vec![9]);
        /// # std::fs::remove_file(&path)?;
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        #[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
        pub fn save(&self, path: impl AsRef<Path>) -> Result<(), SnapshotError> {
            let path = path.as_ref();
            let bytes =
                serde_json::to_vec(self).map_err(|source| SnapshotError::Format { path: path.to_owned(), source })?;
            crate::persist::replace_file(path, &bytes).map_err(|e| SnapshotError::Io {
                path: path.to_owned(),
                doing: "write",
                source: std::io::Error::new(e.kind().unwrap_or(std::io::ErrorKind::Other), e.to_string()),
            })
        }
    }

    impl<K: serde::de::DeserializeOwned> ValidatorSnapshot<K> {
        /// Reads a snapshot written by [`save`](Self::save), to restore it.
        ///
        /// A clean snapshot (taken after [`close`](crate::NonceValidator::close))
        /// is returned clean once: before returning, `load` rewrites the file
        /// as not clean (atomically, synced), so a process that restores it,
        /// accepts requests and crashes before its next save cannot have the
        /// same file restored without a guard again. The next start then needs
        /// `max_future` (the restart guard) or
        /// [`accept_unclean_restore`](crate::NonceValidatorBuilder::accept_unclean_restore).
        ///
        /// # Errors
        /// [`SnapshotError::Io`] when it cannot be read (a missing file
        /// included: see [`load_if_exists`](Self::load_if_exists)) or a clean
        /// one cannot be marked as used (nothing is returned then: fail closed);
        /// [`SnapshotError::Format`] when it is not a complete snapshot;
        /// [`SnapshotError::Version`] when another format version wrote it.
        ///
        /// ```
        /// use monotonic_nonce::{SnapshotError, ValidatorSnapshot};
        /// let r = ValidatorSnapshot::<String>::load("/nonexistent/snapshot.json");
        /// assert!(matches!(r, Err(SnapshotError::Io { .. })));
        /// ```
        #[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
        pub fn load(path: impl AsRef<Path>) -> Result<Self, SnapshotError> {
            let path = path.as_ref();
            let bytes = std::fs::read(path).map_err(|source| SnapshotError::Io {
                path: path.to_owned(),
                doing: "read",
                source,
            })?;
            let version: Versioned = serde_json::from_slice(&bytes)
                .map_err(|source| SnapshotError::Format { path: path.to_owned(), source })?;
            if version.version != SNAPSHOT_VERSION {
                return Err(SnapshotError::Version {
                    path: path.to_owned(),
                    found: version.version,
                    expected: SNAPSHOT_VERSION,
                });
            }
            let snapshot: Self = serde_json::from_slice(&bytes)
                .map_err(|source| SnapshotError::Format { path: path.to_owned(), source })?;
            if snapshot.clean_shutdown {
                // this load is the one clean restore the file allows: mark it used
                // (durably) before anyone can act on it
                let mut used: serde_json::Value = serde_json::from_slice(&bytes)
                    .map_err(|source| SnapshotError::Format { path: path.to_owned(), source })?;
                used["clean_shutdown"] = serde_json::Value::Bool(false);
                let used = serde_json::to_vec(&used)
                    .map_err(|source| SnapshotError::Format { path: path.to_owned(), source })?;
                crate::persist::replace_file(path, &used).map_err(|e| SnapshotError::Io {
                    path: path.to_owned(),
                    doing: "mark as used",
                    source: std::io::Error::new(e.kind().unwrap_or(std::io::ErrorKind::Other), e.to_string()),
                })?;
            }
            Ok(snapshot)
        }

        /// [`load`](Self::load), with a missing file as `Ok(None)`: the first start.
        ///
        /// # Errors
        /// As [`load`](Self::load), except for a missing file.
        ///
        /// ```
        /// use monotonic_nonce::ValidatorSnapshot;
        /// assert_eq!(ValidatorSnapshot::<String>::load_if_exists("/nonexistent/snapshot.json")?, None);
        /// # Ok::<(), monotonic_nonce::SnapshotError>(())
        /// ```
        #[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
        pub fn load_if_exists(path: impl AsRef<Path>) -> Result<Option<Self>, SnapshotError> {
            match Self::load(path) {
                Ok(s) => Ok(Some(s)),
                Err(SnapshotError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            }
        }
    }

    /// The one field read before the rest, so another version is a clear error.
    #[derive(serde::Deserialize)]
    struct Versioned {
        #[serde(default)]
        version: u32,
    }
}
