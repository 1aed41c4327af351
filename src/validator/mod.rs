//! [`NonceValidator`]: per-account policy state in cache-padded, mutex-guarded
//! shards, with time bounds checked first and a floor that makes eviction safe.

mod policy;
mod snapshot;
pub(crate) mod window;

pub use policy::Policy;
pub use snapshot::{AccountSnapshot, ValidatorSnapshot};

use crate::clock::{Clock, SystemClock};
use crate::error::{ErrorBody, NonceError, Rejection};
use crate::strategy::I64_MAX;
use crate::sync::{AtomicU64, Mutex, Ordering};
use crossbeam_utils::CachePadded;
use policy::{AccountState, Refusal};
use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hash};
use std::time::Duration;

/// The widest `Window(w)` accepted (2^20: a 16 KiB ring per account).
///
/// ```
/// use monotonic_nonce::{NonceValidator, Policy, MAX_WINDOW};
/// assert!(NonceValidator::<u8>::builder(Policy::Window(MAX_WINDOW)).build().is_ok());
/// ```
pub const MAX_WINDOW: u64 = 1 << 20;
/// The largest `HighestK(k)` accepted.
///
/// ```
/// use monotonic_nonce::{NonceValidator, Policy, MAX_HIGHEST_K};
/// assert!(NonceValidator::<u8>::builder(Policy::HighestK(MAX_HIGHEST_K + 1)).build().is_err());
/// ```
pub const MAX_HIGHEST_K: usize = 1 << 16;

const NIL: u32 = u32::MAX;

/// One tracked account's state, stored inline in the shard's map so that a
/// lookup touches one bucket (plus a HighestK or window allocation, if any).
#[derive(Debug)]
struct Entry {
    state: AccountState,
    /// The eviction floor when this account (re)appeared: its state knows nothing
    /// at or below it, so everything there is refused.
    floor: u64,
    /// Its node in the shard's LRU list (`NIL` when accounts are unbounded).
    node: u32,
}

/// An LRU list node: which key it stands for and its neighbours.
#[derive(Debug)]
struct Node<K> {
    key: K,
    /// Towards the most recently active (`NIL` at the head).
    prev: u32,
    /// Towards the least recently active (`NIL` at the tail).
    next: u32,
}

/// The accounts whose keys hash to one shard: a map from key to its state and,
/// only when `max_accounts` is set, an intrusive LRU list in a slab of nodes.
#[derive(Debug)]
struct Shard<K> {
    index: HashMap<K, Entry>,
    lru: Vec<Node<K>>,
    head: u32,
    tail: u32,
    /// Accounts this shard may track; `None`: unbounded, and no LRU bookkeeping.
    capacity: Option<usize>,
}

impl<K: Hash + Eq + Clone> Shard<K> {
    fn new(capacity: Option<usize>) -> Self {
        Self { index: HashMap::new(), lru: Vec::new(), head: NIL, tail: NIL, capacity }
    }

    /// The verdict for `nonce` on `account`, recorded if `record` and accepted.
    /// `floor` is the validator's eviction floor.
    fn validate(
        &mut self,
        account: &K,
        nonce: u64,
        policy: Policy,
        floor: &AtomicU64,
        record: bool,
    ) -> Result<(), Rejection> {
        if let Some(entry) = self.index.get_mut(account) {
            let verdict = if nonce <= entry.floor { Err(Refusal::TooLow) } else { entry.state.check(nonce, policy) };
            if let Err(refusal) = verdict {
                let last_nonce = entry.state.highest().unwrap_or(entry.floor);
                return Err(match refusal {
                    Refusal::AlreadyUsed => Rejection::AlreadyUsed { last_nonce, attempted_nonce: nonce },
                    Refusal::TooLow => Rejection::TooLow { last_nonce, attempted_nonce: nonce },
                });
            }
            if record {
                entry.state.record(nonce, policy);
                let node = entry.node;
                if node != NIL {
                    self.touch(node);
                }
            }
            return Ok(());
        }
        // Relaxed: the floor is raised under the lock of the shard that evicted the
        // account, which is this shard (same key, same shard); holding that lock
        // orders the raise before this load.
        let min = floor.load(Ordering::Relaxed);
        if nonce <= min {
            return Err(Rejection::TooLow { last_nonce: min, attempted_nonce: nonce });
        }
        if record {
            let mut state = AccountState::new(policy);
            state.record(nonce, policy);
            self.insert(account.clone(), Entry { state, floor: min, node: NIL }, floor);
        }
        Ok(())
    }

    fn highest(&self, account: &K) -> Option<u64> {
        self.index.get(account).and_then(|e| e.state.highest())
    }

    /// Tracks a new account, evicting the least recently active one when full.
    fn insert(&mut self, key: K, mut entry: Entry, floor: &AtomicU64) {
        let Some(capacity) = self.capacity else {
            self.index.insert(key, entry);
            return;
        };
        let limit = capacity.min(NIL as usize - 1);
        let node = if self.index.len() >= limit && self.tail != NIL {
            let victim = self.tail;
            let old_key = std::mem::replace(&mut self.lru[victim as usize].key, key.clone());
            if let Some(highest) = self.index.remove(&old_key).and_then(|old| old.state.highest()) {
                // Relaxed: ordered by this shard's lock for the evicted key (see `validate`).
                floor.fetch_max(highest, Ordering::Relaxed);
            }
            self.touch(victim);
            victim
        } else {
            let i = self.lru.len() as u32; // < NIL: bounded by `limit` above
            self.lru.push(Node { key: key.clone(), prev: NIL, next: NIL });
            self.push_front(i);
            i
        };
        entry.node = node;
        self.index.insert(key, entry);
    }

    fn touch(&mut self, i: u32) {
        if self.head != i {
            self.unlink(i);
            self.push_front(i);
        }
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = (self.lru[i as usize].prev, self.lru[i as usize].next);
        match prev {
            NIL => self.head = next,
            p => self.lru[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.lru[n as usize].prev = prev,
        }
    }

    fn push_front(&mut self, i: u32) {
        let old = self.head;
        self.lru[i as usize].prev = NIL;
        self.lru[i as usize].next = old;
        match old {
            NIL => self.tail = i,
            h => self.lru[h as usize].prev = i,
        }
        self.head = i;
    }

    fn heap_bytes(&self) -> usize {
        // hashbrown: one control byte plus one (K, Entry) per bucket
        let index = self.index.capacity() * (std::mem::size_of::<(K, Entry)>() + 1);
        let lru = self.lru.capacity() * std::mem::size_of::<Node<K>>();
        let states: usize = self.index.values().map(|e| e.state.heap_bytes()).sum();
        index + lru + states
    }
}

/// The time bounds, in milliseconds, and the units that turn a nonce into time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TimeBounds {
    units_per_ms: u64,
    max_past_ms: Option<u64>,
    max_future_ms: Option<u64>,
}

impl TimeBounds {
    /// The largest nonce that stands for millisecond `ms` (saturating at `u64::MAX`).
    fn last_nonce_at(&self, ms: u64) -> u64 {
        ms.saturating_add(1).saturating_mul(self.units_per_ms).saturating_sub(1)
    }
}

/// Accepts each `(account, nonce)` at most once, under a [`Policy`], from any
/// number of threads.
///
/// `validate` is linearizable per account: when N threads validate the same
/// `(account, nonce)` at once, exactly one gets `Ok`. Accounts are spread over
/// cache-padded, mutex-guarded shards (a power of two), so different accounts
/// rarely contend. A rejected nonce, and every `check`, changes nothing.
///
/// # Example
/// ```
/// use monotonic_nonce::{NonceValidator, Policy, Rejection};
/// use std::time::Duration;
///
/// let v = NonceValidator::<&str>::builder(Policy::Window(1024))
///     .max_future(Duration::from_secs(30))
///     .max_accounts(100_000)
///     .build()?;
/// let now = monotonic_nonce::Clock::now_ms(&monotonic_nonce::SystemClock)?;
/// assert_eq!(v.validate(&"alice", now + 2), Ok(()));
/// assert_eq!(v.validate(&"alice", now + 1), Ok(())); // out of order: fine
/// assert!(matches!(v.validate(&"alice", now + 1), Err(Rejection::AlreadyUsed { .. })));
/// // the lock-out attack: refused by the future bound, nothing recorded
/// assert!(matches!(v.validate(&"alice", u64::MAX), Err(Rejection::AboveCeiling { .. })));
/// assert!(matches!(v.validate(&"alice", 1 << 62), Err(Rejection::TooFarInFuture { .. })));
/// assert_eq!(v.validate(&"alice", now + 3), Ok(()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct NonceValidator<K, C: Clock = SystemClock> {
    shards: Box<[CachePadded<Mutex<Shard<K>>>]>,
    hasher: RandomState,
    policy: Policy,
    clock: C,
    bounds: Option<TimeBounds>,
    ceiling: u64,
    max_accounts: Option<usize>,
    /// Highest nonce of any evicted account: an untracked account's nonce must exceed it.
    floor: CachePadded<AtomicU64>,
}

/// Configures a [`NonceValidator`]; [`build`](Self::build) refuses every invalid combination.
///
/// # Example
/// ```
/// use monotonic_nonce::{ManualClock, NonceValidator, Policy, Strategy};
/// use std::time::Duration;
///
/// let clock = ManualClock::new(1_704_067_200_000);
/// let v = NonceValidator::<u64>::builder(Policy::HighestK(20))
///     .clock(clock.clone())
///     .units_per_ms(Strategy::Hft { counter_digits: 3 }.units_per_ms())
///     .max_past(Duration::from_secs(60))
///     .max_future(Duration::from_secs(5))
///     .shards(16)
///     .build()?;
/// assert!(v.validate(&7, 1_704_067_200_000_123).is_ok());
/// # Ok::<(), monotonic_nonce::NonceError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until .build()"]
pub struct NonceValidatorBuilder<K, C: Clock = SystemClock> {
    policy: Policy,
    clock: C,
    units_per_ms: u64,
    max_past: Option<Duration>,
    max_future: Option<Duration>,
    ceiling: u64,
    max_accounts: Option<usize>,
    shards: Option<usize>,
    restore: Option<ValidatorSnapshot<K>>,
    accept_unclean_restore: bool,
}

impl<K: Hash + Eq + Clone + Send + Sync> NonceValidator<K, SystemClock> {
    /// A validator with `policy`, no time bounds, unbounded accounts, the default shards.
    ///
    /// # Panics
    /// If the policy's parameter is invalid (`HighestK(0)`, `Window(0)`, or
    /// above [`MAX_HIGHEST_K`] / [`MAX_WINDOW`]). Use [`builder`](Self::builder)
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
        NonceValidatorBuilder {
            policy,
            clock: SystemClock,
            units_per_ms: 1,
            max_past: None,
            max_future: None,
            ceiling: I64_MAX,
            max_accounts: None,
            shards: None,
            restore: None,
            accept_unclean_restore: false,
        }
    }
}

fn default_shards() -> usize {
    let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
    (cores * 4).next_power_of_two().clamp(4, 256)
}

impl<K: Hash + Eq + Clone + Send + Sync, C: Clock> NonceValidatorBuilder<K, C> {
    /// The clock the time bounds are checked against (default [`SystemClock`]).
    ///
    /// ```
    /// use monotonic_nonce::{ManualClock, NonceValidator, Policy};
    /// use std::time::Duration;
    /// let v = NonceValidator::<u8>::builder(Policy::Strict).clock(ManualClock::new(1_000)).max_future(Duration::from_millis(10)).build()?;
    /// assert!(v.validate(&1, 1_010).is_ok());
    /// assert!(v.validate(&1, 1_011).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clock<D: Clock>(self, clock: D) -> NonceValidatorBuilder<K, D> {
        NonceValidatorBuilder {
            policy: self.policy,
            clock,
            units_per_ms: self.units_per_ms,
            max_past: self.max_past,
            max_future: self.max_future,
            ceiling: self.ceiling,
            max_accounts: self.max_accounts,
            shards: self.shards,
            restore: self.restore,
            accept_unclean_restore: self.accept_unclean_restore,
        }
    }

    /// Nonce units per millisecond (default 1): a nonce `n` stands for time
    /// `n / units_per_ms` ms. Use the client strategy's [`Strategy::units_per_ms`](crate::Strategy::units_per_ms).
    ///
    /// ```
    /// use monotonic_nonce::{ManualClock, NonceValidator, Policy, Strategy};
    /// use std::time::Duration;
    /// let v = NonceValidator::<u8>::builder(Policy::Strict)
    ///     .clock(ManualClock::new(1_000))
    ///     .units_per_ms(Strategy::Hft { counter_digits: 3 }.units_per_ms())
    ///     .max_future(Duration::ZERO)
    ///     .build()?;
    /// assert!(v.validate(&1, 1_000_999).is_ok()); // stands for 1 000 ms
    /// assert!(v.validate(&1, 1_001_000).is_err()); // 1 001 ms: in the future
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn units_per_ms(mut self, units: u64) -> Self {
        self.units_per_ms = units;
        self
    }

    /// Refuse nonces standing for a time more than `d` behind the clock (off by default).
    ///
    /// ```
    /// use monotonic_nonce::{ManualClock, NonceValidator, Policy, Rejection};
    /// use std::time::Duration;
    /// let v = NonceValidator::<u8>::builder(Policy::HighestK(8)).clock(ManualClock::new(10_000)).max_past(Duration::from_secs(5)).build()?;
    /// assert!(matches!(v.validate(&1, 4_999), Err(Rejection::TooOld { min_nonce: 5_000, .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_past(mut self, d: Duration) -> Self {
        self.max_past = Some(d);
        self
    }

    /// Refuse nonces standing for a time more than `d` ahead of the clock (off
    /// by default). This is what stops a single huge nonce from locking an account.
    ///
    /// ```
    /// use monotonic_nonce::{ManualClock, NonceValidator, Policy, Rejection};
    /// use std::time::Duration;
    /// let v = NonceValidator::<u8>::builder(Policy::Strict).clock(ManualClock::new(10_000)).max_future(Duration::from_secs(1)).build()?;
    /// assert!(matches!(v.validate(&1, 1 << 62), Err(Rejection::TooFarInFuture { max_nonce: 11_000, .. })));
    /// assert!(v.validate(&1, 10_500).is_ok()); // the account was not locked
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_future(mut self, d: Duration) -> Self {
        self.max_future = Some(d);
        self
    }

    /// The highest nonce accepted (default [`I64_MAX`]).
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy, Rejection, JS_SAFE_MAX};
    /// let v = NonceValidator::<u8>::builder(Policy::Strict).ceiling(JS_SAFE_MAX).build()?;
    /// assert!(matches!(v.validate(&1, JS_SAFE_MAX + 1), Err(Rejection::AboveCeiling { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ceiling(mut self, ceiling: u64) -> Self {
        self.ceiling = ceiling;
        self
    }

    /// Track at most `n` accounts; past it the least recently active account
    /// (per shard) is evicted and its highest nonce raises a floor that every
    /// untracked account's nonce must exceed, so eviction never reopens a
    /// replay. The price: a new or returning account whose first nonce is
    /// below the floor is refused as `TooLow` and must move past it.
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy};
    /// let v = NonceValidator::<u8>::builder(Policy::Strict).max_accounts(1).shards(1).build()?;
    /// v.validate(&1, 100)?;
    /// v.validate(&2, 50)?; // evicts account 1: the floor is now 100
    /// assert_eq!((v.len(), v.eviction_floor()), (1, 100));
    /// assert!(v.validate(&1, 100).is_err()); // no replay reopened
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_accounts(mut self, n: usize) -> Self {
        self.max_accounts = Some(n);
        self
    }

    /// The number of shards: a power of two (default: 4 per core, rounded up
    /// to a power of two, between 4 and 256).
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy};
    /// assert!(NonceValidator::<u8>::builder(Policy::Strict).shards(64).build().is_ok());
    /// assert!(NonceValidator::<u8>::builder(Policy::Strict).shards(3).build().is_err());
    /// ```
    pub fn shards(mut self, n: usize) -> Self {
        self.shards = Some(n);
        self
    }

    /// Starts from `snapshot` (see [`NonceValidator::snapshot`]): every nonce
    /// the snapshot's accounts remember stays refused, and so does everything
    /// at or below its eviction floor for accounts it does not hold.
    ///
    /// Requests accepted after the snapshot was taken are not in it. If it was
    /// not taken at a clean shutdown ([`NonceValidator::into_snapshot`]):
    /// - with [`max_future`](Self::max_future) set, `build()` applies the
    ///   restart guard: it reads the clock (`now`) and raises every account's
    ///   floor, and the eviction floor, to the largest nonce standing for
    ///   `now + max_future`, past anything that could have been accepted before
    ///   the restart. The price: honest clients are refused as `TooLow` for at
    ///   most `max_future` after the restart.
    /// - without it there is no safe guard, and `build()` refuses the snapshot
    ///   unless [`accept_unclean_restore`](Self::accept_unclean_restore) says
    ///   the caller takes the replay risk.
    ///
    /// ```
    /// use monotonic_nonce::{ManualClock, NonceValidator, Policy};
    /// use std::time::Duration;
    /// let clock = ManualClock::new(10_000);
    /// let v = NonceValidator::<u8>::builder(Policy::Strict).clock(clock.clone()).max_future(Duration::from_secs(1)).build()?;
    /// v.validate(&1, 10_000)?;
    /// let snap = v.snapshot(); // taken while running: not a clean shutdown
    /// let v = NonceValidator::builder(Policy::Strict).clock(clock).max_future(Duration::from_secs(1)).restore(snap).build()?;
    /// assert!(v.validate(&1, 11_000).is_err()); // guard: up to now + max_future is refused
    /// assert!(v.validate(&2, 11_000).is_err()); // for new accounts too
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn restore(mut self, snapshot: ValidatorSnapshot<K>) -> Self {
        self.restore = Some(snapshot);
        self
    }

    /// Accept a snapshot that was not taken at a clean shutdown even without a
    /// future bound: any request accepted between the snapshot and the restart
    /// can then be replayed once. Only for deployments that accept that risk.
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy};
    /// let v = NonceValidator::<u8>::new(Policy::Strict);
    /// v.validate(&1, 7)?;
    /// let snap = v.snapshot();
    /// assert!(NonceValidator::<u8>::builder(Policy::Strict).restore(snap.clone()).build().is_err());
    /// let v = NonceValidator::builder(Policy::Strict).restore(snap).accept_unclean_restore().build()?;
    /// assert!(v.validate(&1, 7).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn accept_unclean_restore(mut self) -> Self {
        self.accept_unclean_restore = true;
        self
    }

    /// Checks the configuration and builds the validator.
    ///
    /// # Errors
    /// [`NonceError::InvalidConfig`] naming the field: `HighestK(0)`, `Window(0)`,
    /// a `k` above [`MAX_HIGHEST_K`] or a window above [`MAX_WINDOW`],
    /// `units_per_ms(0)`, `ceiling(0)`, `shards` zero or not a power of two,
    /// `max_accounts(0)`, or `max_accounts` below an explicit `shards`.
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy, MAX_WINDOW};
    /// assert!(NonceValidator::<u8>::builder(Policy::Window(MAX_WINDOW + 1)).build().is_err());
    /// assert!(NonceValidator::<u8>::builder(Policy::HighestK(0)).build().is_err());
    /// ```
    pub fn build(self) -> Result<NonceValidator<K, C>, NonceError> {
        match self.policy {
            Policy::HighestK(0) => {
                return Err(NonceError::config("policy", "HighestK(0) remembers nothing; use k >= 1"))
            }
            Policy::HighestK(k) if k > MAX_HIGHEST_K => {
                return Err(NonceError::config("policy", format!("HighestK({k}) is above {MAX_HIGHEST_K}")))
            }
            Policy::Window(0) => {
                return Err(NonceError::config("policy", "Window(0) is Strict; use Policy::Strict or w >= 1"))
            }
            Policy::Window(w) if w > MAX_WINDOW => {
                return Err(NonceError::config("policy", format!("Window({w}) is above the limit {MAX_WINDOW} (2^20)")))
            }
            _ => {}
        }
        if self.units_per_ms == 0 {
            return Err(NonceError::config("units_per_ms", "must be at least 1"));
        }
        if self.ceiling == 0 {
            return Err(NonceError::config("ceiling", "0 accepts no nonce; use I64_MAX or JS_SAFE_MAX"));
        }
        if self.max_accounts == Some(0) {
            return Err(NonceError::config("max_accounts", "must be at least 1"));
        }
        let shards = match self.shards {
            Some(n) if n == 0 || !n.is_power_of_two() => {
                return Err(NonceError::config("shards", format!("{n} is not a power of two >= 1")))
            }
            Some(n) if self.max_accounts.is_some_and(|m| m < n) => {
                return Err(NonceError::config(
                    "max_accounts",
                    format!("below shards({n}): each shard needs one account"),
                ))
            }
            Some(n) => n,
            None => {
                let d = default_shards();
                // shrink the default to a power of two <= max_accounts
                self.max_accounts.map_or(d, |m| d.min(1 << m.ilog2()))
            }
        };
        let bounds = (self.max_past.is_some() || self.max_future.is_some())
            .then(|| -> Result<TimeBounds, NonceError> {
                Ok(TimeBounds {
                    units_per_ms: self.units_per_ms,
                    max_past_ms: self.max_past.map(|d| NonceError::duration_ms("max_past", d)).transpose()?,
                    max_future_ms: self.max_future.map(|d| NonceError::duration_ms("max_future", d)).transpose()?,
                })
            })
            .transpose()?;
        let per_shard = self.max_accounts.map(|m| m / shards);
        let validator = NonceValidator {
            shards: (0..shards).map(|_| CachePadded::new(Mutex::new(Shard::new(per_shard)))).collect(),
            hasher: RandomState::new(),
            policy: self.policy,
            clock: self.clock,
            bounds,
            ceiling: self.ceiling,
            max_accounts: self.max_accounts,
            floor: CachePadded::new(AtomicU64::new(0)),
        };
        if let Some(snapshot) = self.restore {
            validator.load_snapshot(snapshot, self.accept_unclean_restore)?;
        }
        Ok(validator)
    }
}

impl<K: Hash + Eq + Clone + Send + Sync, C: Clock> NonceValidator<K, C> {
    /// Checks `nonce` for `account` and records it if accepted, atomically.
    ///
    /// Order of checks: `0` is [`Rejection::NotPositive`]; above the ceiling is
    /// [`Rejection::AboveCeiling`]; then the time bounds; then the eviction
    /// floor (untracked accounts) and the policy. A rejection changes nothing.
    ///
    /// # Errors
    /// The [`Rejection`] saying why, with the numbers a client needs to resynchronise.
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy, Rejection};
    /// let v = NonceValidator::new(Policy::Strict);
    /// v.validate(&"bot", 101)?;
    /// assert_eq!(v.validate(&"bot", 101), Err(Rejection::AlreadyUsed { last_nonce: 101, attempted_nonce: 101 }));
    /// assert_eq!(v.validate(&"bot", 0), Err(Rejection::NotPositive));
    /// # Ok::<(), Rejection>(())
    /// ```
    pub fn validate(&self, account: &K, nonce: u64) -> Result<(), Rejection> {
        self.precheck(nonce)?;
        self.shard(account).lock().validate(account, nonce, self.policy, &self.floor, true)
    }

    /// The verdict `validate` would give now, without recording anything.
    ///
    /// # Errors
    /// The [`Rejection`] `validate` would return.
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy};
    /// let v = NonceValidator::new(Policy::Strict);
    /// assert!(v.check(&"bot", 7).is_ok());
    /// assert!(v.check(&"bot", 7).is_ok()); // nothing was recorded
    /// assert_eq!(v.last_nonce(&"bot"), None);
    /// ```
    pub fn check(&self, account: &K, nonce: u64) -> Result<(), Rejection> {
        self.precheck(nonce)?;
        self.shard(account).lock().validate(account, nonce, self.policy, &self.floor, false)
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
    pub fn last_nonce(&self, account: &K) -> Option<u64> {
        self.shard(account).lock().highest(account)
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
        self.shards.iter().map(|s| s.lock().index.len()).sum()
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

    /// Bytes of heap this validator holds for its accounts: slab slots,
    /// per-account allocations (HighestK values, Window rings) and the key
    /// index (estimated from its capacity). Locks each shard in turn.
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy};
    /// let v = NonceValidator::<u64>::new(Policy::Window(8128));
    /// v.validate(&1, 10)?;
    /// v.validate(&1, 9)?; // out of order: the ring is allocated
    /// assert!(v.heap_bytes() >= 128 * 8);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn heap_bytes(&self) -> usize {
        self.shards.iter().map(|s| s.lock().heap_bytes()).sum()
    }

    /// `rejection`'s JSON body with `lastNonce` filled in from the account when
    /// the variant does not carry it, so a client can always resynchronise.
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy};
    /// let v = NonceValidator::new(Policy::Strict);
    /// v.validate(&"bot", 42)?;
    /// let rejection = v.validate(&"bot", 0).unwrap_err();
    /// assert_eq!(v.error_body(&"bot", &rejection).error.details.last_nonce, Some(42));
    /// # Ok::<(), monotonic_nonce::Rejection>(())
    /// ```
    pub fn error_body(&self, account: &K, rejection: &Rejection) -> ErrorBody {
        let mut body = rejection.error_body();
        if body.error.details.last_nonce.is_none() {
            body.error.details.last_nonce = self.last_nonce(account);
        }
        body
    }

    /// A copy of everything this validator remembers, taken one shard at a
    /// time while requests keep flowing (each account is copied whole, under
    /// its shard's lock). Not marked as a clean shutdown: restoring it needs
    /// a future bound or [`NonceValidatorBuilder::accept_unclean_restore`].
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy};
    /// let v = NonceValidator::new(Policy::Window(64));
    /// v.validate(&"k", 10)?;
    /// v.validate(&"k", 8)?;
    /// let snap = v.snapshot();
    /// assert_eq!(snap.accounts[0].remembered, vec![8, 10]);
    /// assert!(!snap.clean_shutdown);
    /// # Ok::<(), monotonic_nonce::Rejection>(())
    /// ```
    pub fn snapshot(&self) -> ValidatorSnapshot<K> {
        let mut accounts = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.lock();
            accounts.extend(shard.index.iter().map(|(key, e)| AccountSnapshot {
                account: key.clone(),
                floor: e.floor,
                remembered: e.state.remembered(self.policy),
            }));
        }
        ValidatorSnapshot {
            policy: self.policy,
            // Relaxed: read after every shard was copied; a floor raised meanwhile
            // only makes the snapshot stricter.
            eviction_floor: self.floor.load(Ordering::Relaxed),
            clean_shutdown: false,
            accounts,
        }
    }

    /// Stops the validator and returns its final snapshot, marked as taken at a
    /// clean shutdown: nothing can be accepted after it, so restoring it needs
    /// no guard. Taking `self` makes that true (no `validate` can follow).
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy};
    /// let v = NonceValidator::<u8>::new(Policy::Strict);
    /// v.validate(&1, 5)?;
    /// assert!(v.into_snapshot().clean_shutdown);
    /// # Ok::<(), monotonic_nonce::Rejection>(())
    /// ```
    pub fn into_snapshot(self) -> ValidatorSnapshot<K> {
        ValidatorSnapshot { clean_shutdown: true, ..self.snapshot() }
    }

    /// Puts `snapshot` into this freshly built validator (see [`NonceValidatorBuilder::restore`]).
    fn load_snapshot(&self, snapshot: ValidatorSnapshot<K>, accept_unclean: bool) -> Result<(), NonceError> {
        if snapshot.policy != self.policy {
            return Err(NonceError::config(
                "restore",
                format!("the snapshot was taken under {:?}, this validator uses {:?}", snapshot.policy, self.policy),
            ));
        }
        let guard = match (snapshot.clean_shutdown, self.bounds.and_then(|b| b.max_future_ms.map(|f| (b, f)))) {
            (true, _) => 0,
            (false, Some((b, future))) => {
                // the largest nonce that stands for `now + max_future`
                b.last_nonce_at(self.clock.now_ms()?.saturating_add(future))
            }
            (false, None) if accept_unclean => 0,
            (false, None) => {
                return Err(NonceError::config(
                    "restore",
                    "the snapshot was not taken at a clean shutdown and there is no max_future: \
                     requests accepted after it could be replayed; set max_future (restore then raises \
                     every floor past what could have been accepted), restore a snapshot from \
                     into_snapshot(), or call accept_unclean_restore() to take the risk",
                ))
            }
        };
        // Relaxed: the validator is not shared yet (`build()` owns it).
        self.floor.store(snapshot.eviction_floor.max(guard), Ordering::Relaxed);
        for (i, account) in snapshot.accounts.into_iter().enumerate() {
            let state = snapshot::rebuild(self.policy, i, &account.remembered)?;
            let entry = Entry { state, floor: account.floor.max(guard), node: NIL };
            let mut shard = self.shard(&account.account).lock();
            if shard.index.contains_key(&account.account) {
                return Err(NonceError::config("restore", format!("account #{i} of the snapshot appears twice")));
            }
            shard.insert(account.account, entry, &self.floor);
        }
        Ok(())
    }

    fn shard(&self, account: &K) -> &Mutex<Shard<K>> {
        // the mask keeps the index below the shard count (a power of two)
        let i = (self.hasher.hash_one(account) as usize) & (self.shards.len() - 1);
        &self.shards[i]
    }

    /// The checks that need no account state: positive, ceiling, time bounds.
    fn precheck(&self, nonce: u64) -> Result<(), Rejection> {
        if nonce == 0 {
            return Err(Rejection::NotPositive);
        }
        if nonce > self.ceiling {
            return Err(Rejection::AboveCeiling { ceiling: self.ceiling, attempted_nonce: nonce });
        }
        let Some(b) = self.bounds else { return Ok(()) };
        let now = self.clock.now_ms().map_err(Rejection::ClockUnavailable)?;
        let t = nonce / b.units_per_ms;
        if let Some(limit) = b.max_future_ms.and_then(|f| now.checked_add(f)) {
            if t > limit {
                // the largest nonce standing for `limit`, for the client's information
                let max_nonce = b.last_nonce_at(limit).min(self.ceiling);
                return Err(Rejection::TooFarInFuture { max_nonce, attempted_nonce: nonce });
            }
        }
        if let Some(past) = b.max_past_ms {
            let oldest = now.saturating_sub(past);
            if t < oldest {
                return Err(Rejection::TooOld {
                    min_nonce: oldest.saturating_mul(b.units_per_ms),
                    attempted_nonce: nonce,
                });
            }
        }
        Ok(())
    }
}

impl<K, C: Clock> fmt::Debug for NonceValidator<K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceValidator")
            .field("policy", &self.policy)
            .field("shards", &self.shards.len())
            .field("bounds", &self.bounds)
            .field("ceiling", &self.ceiling)
            .field("max_accounts", &self.max_accounts)
            // Relaxed: reporting only.
            .field("eviction_floor", &self.floor.load(Ordering::Relaxed))
            .finish()
    }
}
