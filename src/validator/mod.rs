//! [`NonceValidator`]: per-account policy state in cache-padded, mutex-guarded
//! shards, with the time bounds checked first and a floor that makes eviction
//! safe. The builder is in `builder.rs`, a shard (table + LRU) in `shard.rs`,
//! the state each policy keeps per account in `state.rs` (`HighestK`'s in
//! `highest.rs`; which type a policy uses in `table.rs`), snapshot and restore
//! in `snapshot.rs`, the stateless checks in `bounds.rs`.

mod as_async;
mod builder;
mod capacity;
#[cfg(feature = "serde")]
mod file;
mod highest;
mod lru;
mod restore;
mod shard;
mod snapshot;
mod state;
mod table;
pub(crate) mod window;

pub use builder::NonceValidatorBuilder;
pub use snapshot::{AccountSnapshot, StateSnapshot, ValidatorSnapshot, SNAPSHOT_VERSION};

#[cfg(feature = "serde")]
pub use crate::error::SnapshotError;

use crate::clock::{Clock, SystemClock};
use crate::error::Rejection;
use crate::protocol::{ErrorBody, JsonNumbers};
use crate::rules::{Limits, Policy, Stats};
use crate::sync::{AtomicBool, AtomicU64, Mutex, Ordering};
use crate::telemetry::Verdicts;
use crossbeam_utils::CachePadded;
use shard::Admitted;
use std::borrow::Borrow;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use table::Table;

/// The most shards a validator may have ([`NonceValidatorBuilder::shards`]).
///
/// ```
/// use monotonic_nonce::{NonceValidator, Policy, validator::MAX_SHARDS};
/// assert!(NonceValidator::<u8>::builder(Policy::Strict).shards(MAX_SHARDS + 1).build().is_err());
/// ```
pub const MAX_SHARDS: usize = 1 << 16;

/// The hasher validators use unless told otherwise (see
/// [`NonceValidatorBuilder::hasher`]): foldhash's `quality` variant, seeded
/// at random per validator.
///
/// Why `quality`, not `fast`: one hash chooses both the shard (from its
/// middle bits) and the bucket (low bits, and the top 7 as hashbrown's tag).
/// `fast` hashes an integer key with one folded multiply by the process's
/// seed, so keys that differ only in their low bits (sequential account ids)
/// differ in the middle and top bits only when the seed's low bits are large
/// enough, so sequential ids can all land in one shard. `quality` adds one more
/// folded multiply at the end, which spreads every input bit over every output bit.
///
/// HashDoS stance: the keys a validator hashes are the accounts of requests
/// whose signature was already checked, so an attacker needs many valid API
/// keys before it can choose colliding ones; foldhash's random seed still
/// keeps the collisions unknown to it. It is not a cryptographic hash: a
/// validator that hashes unauthenticated keys should pass
/// `std::collections::hash_map::RandomState` (SipHash) to
/// [`hasher`](NonceValidatorBuilder::hasher).
///
/// ```
/// use monotonic_nonce::{NonceValidator, Policy, validator::DefaultHashBuilder};
/// let v: NonceValidator<u64> = NonceValidator::builder(Policy::Strict).hasher(DefaultHashBuilder::default()).build()?;
/// assert!(v.validate(&1, 1).is_ok());
/// # Ok::<(), monotonic_nonce::BuildError>(())
/// ```
#[derive(Clone, Default)]
pub struct DefaultHashBuilder(foldhash::quality::RandomState);

impl fmt::Debug for DefaultHashBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DefaultHashBuilder")
    }
}

impl BuildHasher for DefaultHashBuilder {
    type Hasher = DefaultHasher;
    #[inline]
    fn build_hasher(&self) -> DefaultHasher {
        DefaultHasher(self.0.build_hasher())
    }
}

/// The hasher [`DefaultHashBuilder`] builds (opaque: which hash function is
/// behind it is not part of the API).
///
/// ```
/// use monotonic_nonce::validator::DefaultHashBuilder;
/// use std::hash::BuildHasher;
/// let b = DefaultHashBuilder::default();
/// assert_eq!(b.hash_one(42u64), b.hash_one(42u64)); // one builder, one seed
/// ```
#[derive(Clone)]
pub struct DefaultHasher(foldhash::quality::FoldHasher<'static>);

impl fmt::Debug for DefaultHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DefaultHasher")
    }
}

impl std::hash::Hasher for DefaultHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0.finish()
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.0.write_u8(i);
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.0.write_u16(i);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.0.write_u32(i);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0.write_u64(i);
    }
    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.0.write_u128(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.0.write_usize(i);
    }
}

/// A shard with its verdict counters, under one lock.
struct Locked<K, S> {
    table: Table<K, S>,
    stats: Stats,
}

/// One cache-padded, locked shard.
type Slot<K, S> = CachePadded<Mutex<Locked<K, S>>>;

/// Accepts each `(account, nonce)` at most once, under a [`Policy`], from any
/// number of threads.
///
/// `validate` is linearizable per account: when N threads validate the same
/// `(account, nonce)` at once, exactly one gets `Ok`. Accounts are spread over
/// cache-padded, mutex-guarded shards, so different accounts rarely contend.
/// A rejected nonce, and every `check`, changes nothing.
///
/// # Guarantees
/// | promise | how it is tested |
/// |---|---|
/// | each policy decides exactly as its rule is written, including huge jumps, values near `u64::MAX` / `I64_MAX`, `0`, and both ceilings | property test `tests/it/validator_props.rs`: 3 000 random operation sequences (validate, check, last_nonce over 3 accounts) against a BTree reference model that keeps every nonce; fuzz target `validator_ops` against the same model; fuzz target `window` (the ring alone against a `BTreeSet`) |
/// | edges: the window at exactly `w` and `w + 1` behind, a jump past the ring, duplicates after the window moved, HighestK below/at/above its minimum, time bounds at ±1 ms, `0`, `u64::MAX`, `I64_MAX` | `tests/it/validator.rs` |
/// | exactly once under concurrency: N threads validating the same `(account, nonce)` get exactly one `Ok` | loom models `tests/loom_validator.rs` (3 threads, overlapping nonces, each policy; the final state equals a sequential replay of the accepted ones); `tests/it/validator_stress.rs` (8 threads x 100 000 validations, 4 accounts: `Ok`s = distinct pairs) |
/// | a rejection and every `check` change nothing | `rejections_and_check_change_nothing`, the property test (`check` interleaved with `validate`) |
/// | the lock-out attack (`u64::MAX`, `I64_MAX`) is refused when a future bound is set, and the account keeps working | `lock_out_attack_is_refused_and_the_account_still_works` |
/// | eviction never reopens a replay, and no single account can raise the floor out of honest clients' reach | `eviction_folds_the_highest_into_a_floor`; property test `eviction_never_reopens_a_replay`; `validator_ops` with `max_accounts`; `one_account_cannot_lock_new_accounts_out` |
/// | a failing clock with time bounds set fails closed (`ClockUnavailable`, HTTP 500 body), never open | `failing_clock_with_bounds_fails_closed` |
///
/// Snapshots and restarts ([`snapshot`](Self::snapshot), [`NonceValidatorBuilder::restore`]):
///
/// | promise | how it is tested |
/// |---|---|
/// | `NonceValidator::snapshot()` copies each account whole under its shard's lock while requests flow; after `restore`, every `(account, nonce)` accepted before the snapshot is still refused | `snapshot_under_8_threads_then_restore_refuses_every_pair_accepted_before_it` (each policy) |
/// | cold-start guard: requests accepted after the snapshot are not in it, so with `max_future` set (now or when the snapshot was taken) `restore` raises every account's floor and the eviction floor to the largest nonce standing for `now + max_future`, using the larger of the snapshot's and the restorer's bound; a replay of such a request is refused. The price: honest clients are refused as `TooLow` for at most that `max_future` after the restart | `cold_start_guard_refuses_a_replay_of_a_request_accepted_after_the_snapshot`, `the_guard_uses_the_larger_max_future_of_the_snapshot_and_the_restorer` |
/// | a clean snapshot file is restored clean once: `load` rewrites it as not clean before returning it, so a process that restores it and crashes before its next save leaves a file the next start must guard | `a_clean_snapshot_file_is_restored_clean_only_once` |
/// | without a future bound there is no safe guard: restoring a snapshot not taken after `close()` (which works through `&self`, so an `Arc`-shared validator can be shut down: later `validate` calls fail closed as `Unavailable`) is `BuildError::Restore` unless the caller calls `accept_unclean_restore()` and takes the risk | `unclean_snapshot_without_a_future_bound_is_refused_unless_the_risk_is_accepted`, `clean_shutdown_snapshot_restores_exactly_without_a_guard`, `close_through_an_arc_makes_the_snapshot_clean` |
/// | a snapshot's size follows the live state (a window: its highest nonce and either the in-order run or the ring's words; HighestK: the kept values), and `restore` allocates no more than the target policy allows | `a_dense_window_snapshot_is_two_numbers`, `restore_allocates_within_the_policy` |
/// | a snapshot records its policy (with `k` / `w`), time scale and `max_future`; one from another policy, a narrower one, another time scale, another format version, or one no validator could have produced (a nonce or floor above the ceiling, values out of order) is refused; `HighestK(k)` / `Window(w)` restore into a wider `k` / `w`, each account's floor raised to what the narrower policy refused by its bound (the k-th highest, `highest - w - 1`); a truncated file is `SnapshotError::Format`, a missing one `load_if_exists` → `None` | `restore_refuses_a_mismatched_policy_and_impossible_states`, `restore_refuses_states_above_the_ceiling`, `restore_widens_but_never_narrows`, `widening_on_restore_keeps_what_the_narrower_bound_refused`, `a_snapshot_from_another_time_scale_is_refused`, `save_and_load_round_trip_and_corruption_is_a_clear_error` |
///
/// # Example
/// ```
/// use monotonic_nonce::{NonceValidator, Policy, Rejection};
/// use std::time::Duration;
///
/// let v = NonceValidator::<String>::builder(Policy::Window(1024))
///     .max_future(Duration::from_secs(30))
///     .max_accounts(100_000)
///     .build()?;
/// let now = monotonic_nonce::Clock::now_ms(&monotonic_nonce::SystemClock)?;
/// assert_eq!(v.validate("alice", now + 2), Ok(())); // a &str for a String key: no allocation once tracked
/// assert_eq!(v.validate("alice", now + 1), Ok(())); // out of order: fine
/// assert!(matches!(v.validate("alice", now + 1), Err(Rejection::AlreadyUsed { .. })));
/// // the lock-out attack: refused by the future bound, nothing recorded
/// assert!(matches!(v.validate("alice", u64::MAX), Err(Rejection::AboveCeiling { .. })));
/// assert!(matches!(v.validate("alice", 1 << 62), Err(Rejection::TooFarInFuture { .. })));
/// assert_eq!(v.validate("alice", now + 3), Ok(()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct NonceValidator<K, C: Clock = SystemClock, S = DefaultHashBuilder> {
    shards: Box<[Slot<K, S>]>,
    hasher: S,
    policy: Policy,
    clock: C,
    limits: Limits,
    json_numbers: JsonNumbers,
    /// Highest nonce of any evicted account: an untracked account's nonce must exceed it.
    floor: CachePadded<AtomicU64>,
    /// Set by [`close`](Self::close): every later `validate` fails closed.
    closed: AtomicBool,
    /// Verdicts given before any shard was locked (the stateless checks).
    early: Mutex<Stats>,
    /// Its metrics' handles (nothing without the `metrics` feature).
    telemetry: Verdicts,
}

impl<K: Hash + Eq + Clone + Send + Sync> NonceValidator<K, SystemClock> {
    /// A validator with `policy`, no time bounds, unbounded accounts, the default shards.
    ///
    /// # Panics
    /// If the policy's parameter is invalid (`HighestK(0)`, `Window(0)`, or
    /// above [`MAX_HIGHEST_K`](crate::rules::MAX_HIGHEST_K) / [`MAX_WINDOW`](crate::rules::MAX_WINDOW)). Use [`builder`](Self::builder)
    /// to get an error instead.
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy};
    /// let v = NonceValidator::new(Policy::Strict);
    /// assert!(v.validate(&"k", 5).is_ok());
    /// assert!(v.validate(&"k", 5).is_err());
    /// ```
    pub fn new(policy: Policy) -> Self {
        match Self::builder(policy).build() {
            Ok(v) => v,
            Err(e) => panic!("NonceValidator::new({policy:?}): {e}"),
        }
    }

    /// A builder for `policy` on the [`SystemClock`].
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy};
    /// let v = NonceValidator::<u64>::builder(Policy::Strict).build()?;
    /// assert!(v.validate(&1, 1).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn builder(policy: Policy) -> NonceValidatorBuilder<K, SystemClock> {
        NonceValidatorBuilder::new(policy)
    }
}

impl<K: Hash + Eq + Clone + Send + Sync, C: Clock, S: BuildHasher + Clone> NonceValidator<K, C, S> {
    /// Checks `nonce` for `account` and records it if accepted, atomically.
    /// `account` may be any borrowed form of the key (`&str` for `String`
    /// keys); the key is allocated only for a new account.
    ///
    /// Order of checks: `0` is [`Rejection::NotPositive`]; above the ceiling is
    /// [`Rejection::AboveCeiling`]; then the time bounds; then the eviction
    /// floor (untracked accounts) and the policy. A rejection changes nothing.
    ///
    /// # Errors
    /// The [`Rejection`] saying why, with the numbers a client needs to
    /// resynchronise; [`Rejection::Unavailable`] after [`close`](Self::close).
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy, Rejection};
    /// let v = NonceValidator::new(Policy::Strict);
    /// v.validate(&"bot", 101)?;
    /// assert_eq!(v.validate(&"bot", 101), Err(Rejection::AlreadyUsed { last_nonce: 101, attempted_nonce: 101 }));
    /// assert_eq!(v.validate(&"bot", 0), Err(Rejection::NotPositive));
    /// # Ok::<(), Rejection>(())
    /// ```
    pub fn validate<Q>(&self, account: &Q, nonce: u64) -> Result<(), Rejection>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Err(r) = self.precheck(nonce) {
            return Err(self.count_early(r));
        }
        let hash = self.hasher.hash_one(account);
        let mut locked = self.shard(hash).lock();
        // Relaxed: `close()` stores before it takes each shard's lock to snapshot it;
        // this load is under a shard lock, so it is ordered by that lock.
        let verdict = if self.closed.load(Ordering::Relaxed) {
            Err(closed())
        } else {
            // Relaxed: the floor is raised under the lock of the shard that evicted the
            // account, which is this shard (same key, same shard); holding that lock
            // orders the raise before this load.
            let floor = self.floor.load(Ordering::Relaxed);
            match locked.table.validate(hash, account, nonce, floor) {
                Ok(Admitted::Known) => Ok(()),
                Ok(Admitted::New(None)) => {
                    self.telemetry.tracked(1.0);
                    Ok(())
                }
                Ok(Admitted::New(Some(evicted))) => {
                    // Relaxed: ordered by this shard's lock for the evicted key (see above).
                    let before = self.floor.fetch_max(evicted, Ordering::Relaxed);
                    self.telemetry.floor(before.max(evicted));
                    Ok(())
                }
                Err(r) => Err(r),
            }
        };
        locked.stats.count(verdict.as_ref().map(|_| ()));
        self.telemetry.verdict(verdict.as_ref().map(|_| ()));
        verdict
    }

    /// Stops accepting: every later `validate` is refused as
    /// [`Rejection::Unavailable`] (fail closed),
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

    /// The verdict `validate` would give now, without recording anything.
    ///
    /// # Errors
    /// The [`Rejection`] `validate` would return.
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy};
    /// let v = NonceValidator::<&str>::new(Policy::Strict);
    /// assert!(v.check(&"bot", 7).is_ok());
    /// assert!(v.check(&"bot", 7).is_ok()); // nothing was recorded
    /// assert_eq!(v.last_nonce(&"bot"), None);
    /// ```
    pub fn check<Q>(&self, account: &Q, nonce: u64) -> Result<(), Rejection>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let verdict = self.check_quietly(account, nonce);
        self.telemetry.check(verdict.as_ref().map(|_| ()));
        verdict
    }

    /// `check`, uncounted.
    fn check_quietly<Q>(&self, account: &Q, nonce: u64) -> Result<(), Rejection>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.precheck(nonce)?;
        let hash = self.hasher.hash_one(account);
        let locked = self.shard(hash).lock();
        // Relaxed: read under the shard lock, as in `validate`.
        if self.closed.load(Ordering::Relaxed) {
            return Err(closed());
        }
        // Relaxed: read under the shard lock, as in `validate`.
        locked.table.check(hash, account, nonce, self.floor.load(Ordering::Relaxed))
    }

    /// The highest nonce accepted for `account`, if it is tracked.
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy};
    /// let v = NonceValidator::new(Policy::HighestK(4));
    /// v.validate(&1u8, 9)?;
    /// v.validate(&1u8, 5)?;
    /// assert_eq!(v.last_nonce(&1u8), Some(9));
    /// # Ok::<(), monotonic_nonce::Rejection>(())
    /// ```
    pub fn last_nonce<Q>(&self, account: &Q) -> Option<u64>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hasher.hash_one(account);
        self.shard(hash).lock().table.highest(hash, account)
    }

    /// How many accounts are tracked (locks each shard in turn).
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy};
    /// let v = NonceValidator::new(Policy::Strict);
    /// v.validate(&"a", 1)?;
    /// v.validate(&"b", 1)?;
    /// assert_eq!(v.len(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().table.len()).sum()
    }

    /// Whether no account is tracked.
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy};
    /// let v = NonceValidator::<u8>::new(Policy::Strict);
    /// assert!(v.is_empty());
    /// v.check(&1, 5)?; // check records nothing
    /// assert!(v.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The verdicts given so far, by kind (locks each shard in turn).
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy};
    /// let v = NonceValidator::<u8>::new(Policy::Strict);
    /// let _ = v.validate(&1, 0);
    /// assert_eq!(v.stats().invalid, 1);
    /// ```
    pub fn stats(&self) -> Stats {
        let mut total = *self.early.lock();
        for s in self.shards.iter() {
            total.add(&s.lock().stats);
        }
        total
    }

    /// The number of shards (see [`NonceValidatorBuilder::shards`]).
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy};
    /// assert_eq!(NonceValidator::<u8>::builder(Policy::Strict).shards(8).build()?.shard_count(), 8);
    /// # Ok::<(), monotonic_nonce::BuildError>(())
    /// ```
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The policy.
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy};
    /// assert_eq!(NonceValidator::<u8>::new(Policy::Window(64)).policy(), Policy::Window(64));
    /// ```
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// The eviction floor: every untracked account's nonce must be above it (0 until an eviction).
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy};
    /// assert_eq!(NonceValidator::<u8>::new(Policy::Strict).eviction_floor(), 0);
    /// ```
    pub fn eviction_floor(&self) -> u64 {
        // Relaxed: a snapshot for reporting; decisions read it under a shard lock.
        self.floor.load(Ordering::Relaxed)
    }

    /// Bytes of heap this validator holds for its accounts: the tables (keys
    /// and states inline, by their allocation), LRU nodes, and what states hold
    /// beyond their buckets (HighestK values above 40 or spread over more than
    /// `u32::MAX`, rings of windows wider than 64). Locks each shard in turn.
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy};
    /// let v = NonceValidator::<u64>::new(Policy::Window(8128));
    /// v.validate(&1, 10)?;
    /// let table = v.heap_bytes();
    /// v.validate(&1, 9)?; // one below the run: it grows, no ring
    /// assert_eq!(v.heap_bytes(), table);
    /// v.validate(&1, 7)?; // further below: the ring is allocated
    /// let header = 2 * std::mem::size_of::<usize>(); // its length and capacity
    /// assert_eq!(v.heap_bytes(), table + header + 128 * 8);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn heap_bytes(&self) -> usize {
        self.shards.iter().map(|s| s.lock().table.heap_bytes()).sum()
    }

    /// `rejection`'s JSON body, nonces written as
    /// [`json_numbers`](NonceValidatorBuilder::json_numbers) says, with
    /// `lastNonce` filled in from the account when the variant does not carry
    /// it, so a client can always resynchronise.
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy};
    /// let v = NonceValidator::new(Policy::Strict);
    /// v.validate(&"bot", 42)?;
    /// let rejection = v.validate(&"bot", 0).unwrap_err();
    /// assert_eq!(v.error_body(&"bot", &rejection).error.details.last_nonce, Some(42));
    /// # Ok::<(), monotonic_nonce::Rejection>(())
    /// ```
    pub fn error_body<Q>(&self, account: &Q, rejection: &Rejection) -> ErrorBody
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        crate::rules::error_body(rejection, self.last_nonce(account), self.json_numbers)
    }

    /// The shard for a key whose hash is `hash`.
    fn shard(&self, hash: u64) -> &Mutex<Locked<K, S>> {
        &self.shards[shard_index(hash, self.shards.len())]
    }

    /// The checks that need no account state, against this validator's clock.
    fn precheck(&self, nonce: u64) -> Result<(), Rejection> {
        self.limits.precheck(nonce, || self.clock.now_ms())
    }

    #[cold]
    fn count_early(&self, r: Rejection) -> Rejection {
        self.early.lock().count(Err(&r));
        self.telemetry.verdict(Err(&r));
        r
    }
}

/// The rejection after `close()`: out of line, so that building its message
/// does not weigh on the hot path's code.
#[cold]
#[inline(never)]
fn closed() -> Rejection {
    Rejection::Unavailable { reason: "the validator was closed".to_owned() }
}

/// The shard (of `shards`) for a key whose hash is `hash`: the high half of
/// bits 24..56 times `shards`, so any shard count spreads evenly, and the bits a
/// shard's table uses (the low ones for the bucket, the top 7 for its tag) stay
/// independent of the choice.
fn shard_index(hash: u64, shards: usize) -> usize {
    let mid = (hash >> 24) & 0xFFFF_FFFF;
    // < shards: `mid < 2^32`, so `mid * shards >> 32 < shards`
    ((mid * shards as u64) >> 32) as usize
}

impl<K, C: Clock, S> fmt::Debug for NonceValidator<K, C, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceValidator")
            .field("policy", &self.policy)
            .field("shards", &self.shards.len())
            .field("limits", &self.limits)
            // Relaxed: reporting only.
            .field("eviction_floor", &self.floor.load(Ordering::Relaxed))
            .finish()
    }
}
