//! [`NonceValidatorBuilder`]: every setting of a [`NonceValidator`], checked once at `build()`.

use super::capacity::Capacity;
use super::table::Table;
use super::{DefaultHashBuilder, Locked, NonceValidator, ValidatorSnapshot, MAX_SHARDS};
use crate::clock::{Clock, SystemClock};
use crate::error::BuildError;
use crate::protocol::JsonNumbers;
use crate::rules::{Policy, Stats, TimeBounds};
use crate::strategy::{Strategy, TimeScale};
use crate::sync::{Arc, AtomicBool, AtomicU64, Mutex};
use crate::telemetry::Verdicts;
use crossbeam_utils::CachePadded;
use std::hash::{BuildHasher, Hash};
use std::time::Duration;

/// Configures a [`NonceValidator`]; [`build`](Self::build) refuses every invalid combination.
///
/// # Example
/// ```
/// use monotonic_nonce::{NonceValidator, Policy, Strategy, clock::ManualClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::new(1_704_067_200_000);
/// let v = NonceValidator::<u64>::builder(Policy::HighestK(20))
///     .clock(clock.clone())
///     .strategy(Strategy::Hft { counter_digits: 3 }) // the keys sign with Hft nonces
///     .max_past(Duration::from_secs(60))
///     .max_future(Duration::from_secs(5))
///     .shards(16)
///     .build()?;
/// assert!(v.validate(&7, 1_704_067_200_000_123).is_ok());
/// # Ok::<(), monotonic_nonce::BuildError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until .build()"]
pub struct NonceValidatorBuilder<K, C: Clock = SystemClock, S = DefaultHashBuilder> {
    policy: Policy,
    clock: C,
    hasher: S,
    /// The stateless checks: time scale, time bounds, ceiling.
    bounds: TimeBounds,
    max_accounts: Option<usize>,
    expected_accounts: usize,
    shards: Option<usize>,
    json_numbers: JsonNumbers,
    restore: Option<ValidatorSnapshot<K>>,
    accept_unclean_restore: bool,
}

impl<K> NonceValidatorBuilder<K, SystemClock, DefaultHashBuilder> {
    pub(super) fn new(policy: Policy) -> Self {
        NonceValidatorBuilder {
            policy,
            clock: SystemClock,
            hasher: DefaultHashBuilder::default(),
            bounds: TimeBounds::new(),
            max_accounts: None,
            expected_accounts: 0,
            shards: None,
            json_numbers: JsonNumbers::Auto,
            restore: None,
            accept_unclean_restore: false,
        }
    }
}

fn default_shards() -> usize {
    let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
    (cores * 4).next_power_of_two().clamp(4, 256)
}

/// Accounts a table of `buckets` (a power of two) holds before it grows:
/// hashbrown's load factor, 7/8 (one less than the buckets below 8).
fn table_capacity(buckets: usize) -> usize {
    if buckets < 8 {
        buckets - 1
    } else {
        buckets / 8 * 7
    }
}

/// At least `base` shards, and as many more as it takes for `n` accounts to
/// fit tables half the size `base` shards would need (at most about twice `base`).
fn fitted_shards(base: usize, n: usize) -> usize {
    let per = n.div_ceil(base);
    let mut buckets = 8usize;
    while table_capacity(buckets) < per {
        match buckets.checked_mul(2) {
            Some(b) => buckets = b,
            None => return base,
        }
    }
    let smaller = table_capacity(buckets / 2);
    n.div_ceil(smaller).clamp(base, MAX_SHARDS)
}

impl<K: Hash + Eq + Clone + Send + Sync, C: Clock, S: BuildHasher + Clone> NonceValidatorBuilder<K, C, S> {
    /// The clock the time bounds are checked against (default [`SystemClock`]).
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy, clock::ManualClock};
    /// use std::time::Duration;
    /// let v = NonceValidator::<u8>::builder(Policy::Strict).clock(ManualClock::new(1_000)).max_future(Duration::from_millis(10)).build()?;
    /// assert!(v.validate(&1, 1_010).is_ok());
    /// assert!(v.validate(&1, 1_011).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clock<D: Clock>(self, clock: D) -> NonceValidatorBuilder<K, D, S> {
        NonceValidatorBuilder {
            policy: self.policy,
            clock,
            hasher: self.hasher,
            bounds: self.bounds,
            max_accounts: self.max_accounts,
            expected_accounts: self.expected_accounts,
            shards: self.shards,
            json_numbers: self.json_numbers,
            restore: self.restore,
            accept_unclean_restore: self.accept_unclean_restore,
        }
    }

    /// The hasher for account keys (default [`DefaultHashBuilder`]: foldhash
    /// with a random seed). The keys are the accounts of authenticated
    /// requests; a faster hasher is fine when clients cannot choose many
    /// colliding keys, and should still be seeded randomly (HashDoS).
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy};
    /// use std::collections::hash_map::RandomState;
    /// let v = NonceValidator::<u64>::builder(Policy::Strict).hasher(RandomState::new()).build()?;
    /// assert!(v.validate(&1, 1).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn hasher<T: BuildHasher + Clone>(self, hasher: T) -> NonceValidatorBuilder<K, C, T> {
        NonceValidatorBuilder {
            policy: self.policy,
            clock: self.clock,
            hasher,
            bounds: self.bounds,
            max_accounts: self.max_accounts,
            expected_accounts: self.expected_accounts,
            shards: self.shards,
            json_numbers: self.json_numbers,
            restore: self.restore,
            accept_unclean_restore: self.accept_unclean_restore,
        }
    }

    /// The strategy the clients sign with: its [`TimeScale`] turns a nonce
    /// into the time the bounds check (default `Strategy::Millis`). An invalid
    /// strategy is refused at `build()`.
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy, Strategy, clock::ManualClock};
    /// use std::time::Duration;
    /// let v = NonceValidator::<u8>::builder(Policy::Strict)
    ///     .clock(ManualClock::new(1_000))
    ///     .strategy(Strategy::Hft { counter_digits: 3 })
    ///     .max_future(Duration::ZERO)
    ///     .build()?;
    /// assert!(v.validate(&1, 1_000_999).is_ok()); // stands for 1 000 ms
    /// assert!(v.validate(&1, 1_001_000).is_err()); // 1 001 ms: in the future
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.bounds = self.bounds.strategy(strategy);
        self
    }

    /// The time scale directly (see [`strategy`](Self::strategy)).
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy, strategy::TimeScale};
    /// let v = NonceValidator::<u8>::builder(Policy::Strict).time_scale(TimeScale::new(4).unwrap()).build()?;
    /// # let _ = v;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn time_scale(mut self, scale: TimeScale) -> Self {
        self.bounds = self.bounds.time_scale(scale);
        self
    }

    /// Refuse nonces standing for a time more than `d` behind the clock (off by default).
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy, Rejection, clock::ManualClock};
    /// use std::time::Duration;
    /// let v = NonceValidator::<u8>::builder(Policy::HighestK(8)).clock(ManualClock::new(10_000)).max_past(Duration::from_secs(5)).build()?;
    /// assert!(matches!(v.validate(&1, 4_999), Err(Rejection::TooOld { min_nonce: 5_000, .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_past(mut self, d: Duration) -> Self {
        self.bounds = self.bounds.max_past(d);
        self
    }

    /// Refuse nonces standing for a time more than `d` ahead of the clock (off
    /// by default). This is what stops a single huge nonce from locking an account.
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy, Rejection, clock::ManualClock};
    /// use std::time::Duration;
    /// let v = NonceValidator::<u8>::builder(Policy::Strict).clock(ManualClock::new(10_000)).max_future(Duration::from_secs(1)).build()?;
    /// assert!(matches!(v.validate(&1, 1 << 62), Err(Rejection::TooFarInFuture { max_nonce: 11_000, .. })));
    /// assert!(v.validate(&1, 10_500).is_ok()); // the account was not locked
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_future(mut self, d: Duration) -> Self {
        self.bounds = self.bounds.max_future(d);
        self
    }

    /// The highest nonce accepted (default [`I64_MAX`](crate::strategy::I64_MAX)).
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy, Rejection, strategy::JS_SAFE_MAX};
    /// let v = NonceValidator::<u8>::builder(Policy::Strict).ceiling(JS_SAFE_MAX).build()?;
    /// assert!(matches!(v.validate(&1, JS_SAFE_MAX + 1), Err(Rejection::AboveCeiling { .. })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ceiling(mut self, ceiling: u64) -> Self {
        self.bounds = self.bounds.ceiling(ceiling);
        self
    }

    /// Every stateless check at once (time scale, `max_past`, `max_future`,
    /// ceiling), replacing what the setters above set: one value several
    /// gateways can share.
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy, rules::TimeBounds};
    /// let shared = TimeBounds::new().max_future(std::time::Duration::from_secs(5));
    /// let v = NonceValidator::<u64>::builder(Policy::Strict).time_bounds(shared).build()?;
    /// # drop(v);
    /// # Ok::<(), monotonic_nonce::BuildError>(())
    /// ```
    pub fn time_bounds(mut self, bounds: TimeBounds) -> Self {
        self.bounds = bounds;
        self
    }

    /// Track at least `n` accounts (once `n` have been seen), and at most `n`
    /// plus the shard count, however the keys hash. Once `n` are tracked, a
    /// new account makes the shard it lands in evict its own least recently
    /// active account (a shard with none takes it: hence the `+ shards`),
    /// whose highest nonce raises a floor that every untracked account's
    /// nonce must exceed, so eviction never reopens a replay.
    ///
    /// Needs [`max_future`](Self::max_future): the future bound is what keeps
    /// the floor within reach of honest clients (no account can have a nonce
    /// above `now + max_future`), so the price of an eviction is at most
    /// `max_future` plus the clients' clock skew: a new or returning account
    /// whose first nonce is below the floor is refused as `TooLow` with the
    /// floor as `lastNonce`, and moves past it.
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy, clock::ManualClock};
    /// use std::time::Duration;
    /// let v = NonceValidator::<u8>::builder(Policy::Strict)
    ///     .clock(ManualClock::new(100))
    ///     .max_future(Duration::from_millis(10))
    ///     .max_accounts(1)
    ///     .shards(1)
    ///     .build()?;
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

    /// The number of shards, between 1 and [`MAX_SHARDS`](crate::validator::MAX_SHARDS)
    /// (default: 4 per core rounded up to a power of two, between 4 and 256;
    /// with [`expected_accounts`](Self::expected_accounts), a few more when
    /// that lets each shard's table be half the size: see there).
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy};
    /// assert!(NonceValidator::<u8>::builder(Policy::Strict).shards(64).build().is_ok());
    /// assert!(NonceValidator::<u8>::builder(Policy::Strict).shards(9).build().is_ok());
    /// assert!(NonceValidator::<u8>::builder(Policy::Strict).shards(0).build().is_err());
    /// ```
    pub fn shards(mut self, n: usize) -> Self {
        self.shards = Some(n);
        self
    }

    /// Starts from `snapshot` (see [`NonceValidator::snapshot`](crate::NonceValidator::snapshot)): every nonce
    /// the snapshot's accounts remember stays refused, and so does everything
    /// at or below its eviction floor for accounts it does not hold.
    ///
    /// A snapshot records the settings it was taken under, and is never read
    /// under others:
    /// - the policy must be this one, or a wider one of the same kind
    ///   (`HighestK(k)` into `HighestK(k' >= k)`, `Window(w)` into
    ///   `Window(w' >= w)`); widening raises each account's floor to what the
    ///   narrower policy refused by its bound alone (its k-th highest nonce;
    ///   everything more than `w` behind its highest), so nothing it refused
    ///   is accepted again;
    /// - the time scale must be this one (another strategy's nonces stand for
    ///   other times);
    /// - the restart guard below covers the larger of the snapshot's
    ///   `max_future` and this validator's.
    ///
    /// Requests accepted after the snapshot was taken are not in it. If it was
    /// not taken at a clean shutdown ([`NonceValidator::close`](crate::NonceValidator::close)):
    /// - with [`max_future`](Self::max_future) set (here or when the snapshot
    ///   was taken), `build()` applies the restart guard: it reads the clock
    ///   (`now`) and raises every account's floor, and the eviction floor, to
    ///   the largest nonce standing for `now + max_future`, past anything that
    ///   could have been accepted before the restart. The price: honest
    ///   clients are refused as `TooLow` for at most `max_future` after the restart.
    /// - without it there is no safe guard, and `build()` refuses the snapshot
    ///   unless [`accept_unclean_restore`](Self::accept_unclean_restore) says
    ///   the caller takes the replay risk.
    ///
    /// A clean snapshot is restored without a guard once: `ValidatorSnapshot::load`
    /// (feature `serde`) marks its file as no longer clean. A snapshot value
    /// kept in memory and restored twice is the caller's own doing.
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy, clock::ManualClock};
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

    /// Pre-sizes the shards for `n` accounts, so the tables do not grow (and
    /// rehash) while the first `n` accounts arrive. A hint: more still fit.
    ///
    /// A shard's table has a power-of-two number of buckets and fills at most
    /// 7/8 of them, so `n` just above such a size (1 000 000 in 8 shards needs
    /// 125 000 per shard, just over 7/8 of 131 072) would double every table
    /// and leave half of it empty. Unless [`shards`](Self::shards) was set,
    /// the shard count is raised as far as it takes for each shard's share to
    /// fit the smaller table (9 shards of 131 072 buckets for 1 000 000).
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy};
    /// let v = NonceValidator::<u64>::builder(Policy::Strict).expected_accounts(10_000).build()?;
    /// // more than the address space can hold: an error, not an abort
    /// assert!(NonceValidator::<u64>::builder(Policy::Strict).expected_accounts(usize::MAX).build().is_err());
    /// assert!(v.heap_bytes() > 10_000 * 8);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn expected_accounts(mut self, n: usize) -> Self {
        self.expected_accounts = n;
        self
    }

    /// How [`NonceValidator::error_body`] writes nonces (default
    /// [`JsonNumbers::Auto`]: numbers up to 2^53 - 1, decimal strings above).
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy, protocol::JsonNumbers};
    /// let v = NonceValidator::<u8>::builder(Policy::Strict).json_numbers(JsonNumbers::Strings).build()?;
    /// v.validate(&1, 5)?;
    /// let r = v.validate(&1, 5).unwrap_err();
    /// assert_eq!(v.error_body(&1, &r).numbers(), JsonNumbers::Strings);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn json_numbers(mut self, numbers: JsonNumbers) -> Self {
        self.json_numbers = numbers;
        self
    }

    /// Checks the configuration and builds the validator.
    ///
    /// # Errors
    /// [`BuildError::InvalidConfig`] naming the field: `HighestK(0)`, `Window(0)`,
    /// a `k` above [`MAX_HIGHEST_K`](crate::rules::MAX_HIGHEST_K) or a window above
    /// [`MAX_WINDOW`](crate::rules::MAX_WINDOW), an invalid strategy, `ceiling(0)`,
    /// `shards` zero or above [`MAX_SHARDS`](crate::validator::MAX_SHARDS), `max_accounts(0)`, `max_accounts`
    /// below an explicit `shards` or without `max_future`, `expected_accounts`
    /// the memory for which cannot be had.
    /// [`BuildError::Restore`] for a snapshot that cannot be restored, and
    /// [`BuildError::Clock`] if the restart guard cannot read the clock.
    ///
    /// ```
    /// use monotonic_nonce::{NonceValidator, Policy, rules::MAX_WINDOW};
    /// assert!(NonceValidator::<u8>::builder(Policy::Window(MAX_WINDOW + 1)).build().is_err());
    /// assert!(NonceValidator::<u8>::builder(Policy::HighestK(0)).build().is_err());
    /// ```
    pub fn build(self) -> Result<NonceValidator<K, C, S>, BuildError> {
        let policy = self.policy.check()?;
        let limits = self.bounds.limits()?;
        match self.max_accounts {
            Some(0) => return Err(BuildError::config("max_accounts", "must be at least 1")),
            Some(n) if self.bounds.max_future_set().is_none() => {
                return Err(BuildError::config(
                    "max_accounts",
                    format!("max_accounts({n}) needs max_future: without a future bound one evicted account's huge nonce would raise the eviction floor out of every client's reach"),
                ))
            }
            _ => {}
        }
        let shards = match self.shards {
            Some(n) if n == 0 || n > MAX_SHARDS => {
                return Err(BuildError::config("shards", format!("{n} is outside 1..={MAX_SHARDS}")))
            }
            Some(n) if self.max_accounts.is_some_and(|m| m < n) => {
                return Err(BuildError::config(
                    "max_accounts",
                    format!("below shards({n}): each shard needs one account; use max_accounts >= {n}"),
                ))
            }
            Some(n) => n,
            None => {
                let d = fitted_shards(default_shards(), self.expected_accounts);
                // no more shards than accounts allowed: each shard needs one
                self.max_accounts.map_or(d, |m| d.min(m))
            }
        };
        let capacity = self.max_accounts.map(|m| Arc::new(Capacity::new(m)));
        let presize = self.expected_accounts.div_ceil(shards);
        let mut tables = Vec::with_capacity(shards);
        for _ in 0..shards {
            let mut table = Table::new(policy, capacity.clone(), self.restore.is_some(), self.hasher.clone());
            table.try_reserve(presize).map_err(|e| {
                BuildError::config(
                    "expected_accounts",
                    format!("room for {} accounts cannot be had: {e}", self.expected_accounts),
                )
            })?;
            tables.push(CachePadded::new(Mutex::new(Locked { table, stats: Stats::default() })));
        }
        let validator = NonceValidator {
            shards: tables.into_boxed_slice(),
            hasher: self.hasher,
            policy,
            clock: self.clock,
            limits,
            json_numbers: self.json_numbers,
            floor: CachePadded::new(AtomicU64::new(0)),
            closed: AtomicBool::new(false),
            early: Mutex::new(Stats::default()),
            telemetry: Verdicts::new("memory"),
        };
        if let Some(snapshot) = self.restore {
            validator.load_snapshot(snapshot, self.accept_unclean_restore)?;
        }
        Ok(validator)
    }
}
