//! Taking a [`ValidatorSnapshot`] (one shard at a time, each account whole)
//! and putting one back into a freshly built validator
//! ([`NonceValidatorBuilder::restore`](crate::validator::NonceValidatorBuilder::restore)):
//! the settings it was taken under checked, each account's state rebuilt
//! under this validator's policy, and the cold-start guard.

use super::snapshot::{StateSnapshot, ValidatorSnapshot, SNAPSHOT_VERSION};
use super::state::State;
use super::window::{ring_words, Window};
use super::{NonceValidator, Policy};
use crate::clock::Clock;
use crate::error::BuildError;
use crate::sync::Ordering;
use std::hash::{BuildHasher, Hash};

impl StateSnapshot {
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
    /// [`NonceValidatorBuilder::accept_unclean_restore`](crate::validator::NonceValidatorBuilder::accept_unclean_restore).
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

    /// Puts `snapshot` into this freshly built validator (see
    /// [`NonceValidatorBuilder::restore`](crate::validator::NonceValidatorBuilder::restore)).
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
        // Relaxed: not shared yet.
        self.telemetry.floor(self.floor.load(Ordering::Relaxed));
        self.telemetry.tracked(self.len() as f64);
        Ok(())
    }
}
