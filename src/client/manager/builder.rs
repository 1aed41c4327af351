//! [`NonceManagerBuilder`]: every setting of a [`NonceManager`], checked once at `build()`.

use super::{History, NonceManager, Seen};
use crate::client::persist::DurableMark;
use crate::clock::{Clock, SystemClock};
use crate::error::BuildError;
use crate::strategy::{Params, Strategy, I64_MAX, JS_SAFE_MAX};
use crate::sync::{AtomicU64, Mutex};
use crossbeam_utils::CachePadded;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::Duration;

/// The default `mark_ahead`: how far ahead of the handed-out nonces the durable mark is set.
const DEFAULT_MARK_AHEAD: Duration = Duration::from_secs(10);

/// Configures a [`NonceManager`]; every invalid combination is refused by [`build`](Self::build).
///
/// # Example
/// ```
/// use monotonic_nonce::{NonceManager, Strategy, clock::ManualClock, strategy::JS_SAFE_MAX};
///
/// let manager = NonceManager::builder()
///     .strategy(Strategy::Distributed { system_id: 1, total_systems: 4 })
///     .clock(ManualClock::new(1_700_000_000_000))
///     .ceiling(JS_SAFE_MAX)
///     .start_after(6_800_000_000_000)
///     .build()?;
/// let n = manager.next()?;
/// assert_eq!(n % 4, 1);
/// assert_eq!(n, 6_800_000_000_001);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until .build()"]
pub struct NonceManagerBuilder<C: Clock = SystemClock> {
    strategy: Strategy,
    clock: C,
    ceiling: u64,
    start_after: u64,
    persist: Option<PathBuf>,
    mark_ahead: Duration,
    max_lead: Option<Duration>,
    history: usize,
    #[cfg(feature = "redis")]
    lease: Option<crate::client::SlotLease>,
}

impl Default for NonceManagerBuilder<SystemClock> {
    fn default() -> Self {
        Self {
            strategy: Strategy::Millis,
            clock: SystemClock,
            ceiling: I64_MAX,
            start_after: 0,
            persist: None,
            mark_ahead: DEFAULT_MARK_AHEAD,
            max_lead: None,
            history: 0,
            #[cfg(feature = "redis")]
            lease: None,
        }
    }
}

impl<C: Clock> NonceManagerBuilder<C> {
    /// The strategy (default [`Strategy::Millis`]).
    ///
    /// ```
    /// use monotonic_nonce::{NonceManager, Strategy};
    /// let m = NonceManager::builder().strategy(Strategy::Hft { counter_digits: 3 }).build()?;
    /// assert_eq!(m.strategy().units_per_ms(), 1_000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// The clock (default [`SystemClock`]).
    ///
    /// ```
    /// use monotonic_nonce::{NonceManager, clock::CoarseClock};
    /// let m = NonceManager::builder().clock(CoarseClock).build()?; // the cheapest clock read
    /// assert!(m.next()? > 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clock<D: Clock>(self, clock: D) -> NonceManagerBuilder<D> {
        NonceManagerBuilder {
            strategy: self.strategy,
            clock,
            ceiling: self.ceiling,
            start_after: self.start_after,
            persist: self.persist,
            mark_ahead: self.mark_ahead,
            max_lead: self.max_lead,
            history: self.history,
            #[cfg(feature = "redis")]
            lease: self.lease,
        }
    }

    /// The highest nonce the manager may ever hand out (default [`I64_MAX`](crate::strategy::I64_MAX);
    /// use [`JS_SAFE_MAX`] for APIs whose clients parse JSON numbers as doubles).
    ///
    /// ```
    /// use monotonic_nonce::{NonceManager, strategy::JS_SAFE_MAX};
    /// let m = NonceManager::builder().ceiling(JS_SAFE_MAX).build()?;
    /// assert!(m.next()? <= JS_SAFE_MAX);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ceiling(mut self, ceiling: u64) -> Self {
        self.ceiling = ceiling;
        self
    }

    /// Every nonce handed out will be greater than `floor` (default 0): the
    /// last nonce a previous run used, or the `lastNonce` a server reported.
    ///
    /// ```
    /// use monotonic_nonce::{NonceManager, clock::ManualClock};
    /// let m = NonceManager::builder().clock(ManualClock::new(1_000)).start_after(5_000).build()?;
    /// assert_eq!(m.next()?, 5_001);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn start_after(mut self, floor: u64) -> Self {
        self.start_after = floor;
        self
    }

    /// Keeps a durable high-water mark `H` in the file at `path`, so a restart
    /// (or a clock stepped back between runs) never reuses a nonce.
    ///
    /// No nonce is ever handed out above the `H` that is on disk at that
    /// moment. When a call would cross `H`, that one thread first writes
    /// `H = nonce + mark_ahead` (temp file, `fsync`, rename, `fsync` of the
    /// directory) while other threads that need the new mark wait, parked;
    /// every other call stays one compare-exchange. At `build()` the first
    /// nonce is above `max(H, start_after, clock)`.
    ///
    /// A missing file starts a new mark. A file that is empty, truncated,
    /// corrupt (bad magic, version or checksum) or unreadable is an error at
    /// `build()` naming the file; it never silently starts over. The file
    /// records the strategy's time scale: a manager with another scale is
    /// refused (delete the file and pass `start_after(mark)` to switch). A
    /// second manager on the same file, under any name (symlinks are
    /// resolved first), is refused by an advisory lock on `<path>.lock`; if
    /// that lock file is deleted or replaced while the manager runs, it hands
    /// out nothing above its mark any more. A failed write makes
    /// `next()`/`reserve()` return [`NonceError::Persist`](crate::NonceError::Persist)
    /// and hand out nothing. An empty path is refused at `build()`.
    ///
    /// ```
    /// use monotonic_nonce::NonceManager;
    /// let dir = std::env::temp_dir().join(format!("mn-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let path = dir.join("bot.mark");
    /// let first = {
    ///     let m = NonceManager::builder().persist(&path).build()?;
    ///     m.next()?
    /// };
    /// // "restart": a new manager on the same file continues above everything used
    /// let m = NonceManager::builder().persist(&path).build()?;
    /// assert!(m.next()? > first);
    /// # drop(m); std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn persist(mut self, path: impl Into<PathBuf>) -> Self {
        self.persist = Some(path.into());
        self
    }

    /// How far ahead (in clock time, turned into nonce units through the
    /// strategy's units per ms) each durable mark is set (default 10 s). A
    /// longer `mark_ahead` writes less often; after a crash, up to one
    /// `mark_ahead` of nonces is skipped. Used with [`persist`](Self::persist)
    /// and with a lease's mark in Redis.
    ///
    /// ```
    /// use monotonic_nonce::NonceManager;
    /// use std::time::Duration;
    /// let path = std::env::temp_dir().join(format!("mn-doc-ahead-{}.mark", std::process::id()));
    /// let m = NonceManager::builder().persist(&path).mark_ahead(Duration::from_secs(60)).build()?;
    /// m.next()?; // writes the mark once for the next minute of nonces
    /// # drop(m); let _ = std::fs::remove_file(&path); let _ = std::fs::remove_file(path.with_extension("mark.lock"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn mark_ahead(mut self, ahead: Duration) -> Self {
        self.mark_ahead = ahead;
        self
    }

    /// Takes the `Distributed` system id from a [`SlotLease`](crate::client::SlotLease)
    /// instead of static configuration, and keeps the high-water mark in
    /// Redis instead of a file (feature `redis`). At `build()` the lease
    /// claims a free slot `i` (waiting up to its `wait`), checks the clock
    /// against Redis's `TIME`, and the manager hands out
    /// `Distributed { system_id: i, total_systems }` nonces above
    /// `max(clock, the slot's mark, start_after)`. The strategy must be left
    /// at its default, and [`persist`](Self::persist) unset (the lease's
    /// mark replaces the file); [`mark_ahead`](Self::mark_ahead) sets how far
    /// ahead the Redis mark is written. See [`SlotLease`](crate::client::SlotLease)
    /// for the guarantees.
    ///
    /// ```no_run
    /// use monotonic_nonce::{client::SlotLease, NonceManager};
    /// let lease = SlotLease::builder("redis://127.0.0.1:6379", "binance-key-1", 8).build()?;
    /// let m = NonceManager::builder().lease(lease).build()?;
    /// m.next()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn lease(mut self, lease: crate::client::SlotLease) -> Self {
        self.lease = Some(lease);
        self
    }

    /// Refuse to hand out a nonce that stands for a time more than `lead`
    /// ahead of the clock (through the strategy's units per ms): `next()` and
    /// `reserve()` return [`NonceError::TooFarAhead`](crate::NonceError::TooFarAhead) instead of a nonce the
    /// exchange's future bound would reject. Off by default. While the clock
    /// fails, the lead is measured against the latest reading seen.
    ///
    /// ```
    /// use monotonic_nonce::{NonceError, NonceManager, clock::ManualClock};
    /// use std::time::Duration;
    /// let m = NonceManager::builder()
    ///     .clock(ManualClock::new(1_000_000))
    ///     .max_lead(Duration::from_millis(2))
    ///     .build()?;
    /// for _ in 0..3 {
    ///     m.next()?; // 1 000 000, +1, +2: up to 2 ms ahead
    /// }
    /// assert!(matches!(m.next(), Err(NonceError::TooFarAhead { lead_ms: 3 })));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_lead(mut self, lead: Duration) -> Self {
        self.max_lead = Some(lead);
        self
    }

    /// Record the last `capacity` nonces handed out, with the clock reading and
    /// the caller's source location (see [`NonceManager::history`]). Recording
    /// takes a short lock; with no history (the default, or 0) nothing is recorded.
    ///
    /// ```
    /// use monotonic_nonce::NonceManager;
    /// let m = NonceManager::builder().history(100).build()?;
    /// m.next()?;
    /// assert_eq!(m.history().len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn history(mut self, capacity: usize) -> Self {
        self.history = capacity;
        self
    }

    /// Checks the configuration against today's clock and builds the manager.
    ///
    /// # Errors
    /// - [`BuildError::InvalidConfig`] naming the field: an invalid strategy
    ///   (`total_systems == 0`, `system_id >= total_systems`,
    ///   `counter_digits == 0` or too large), a zero ceiling, a `start_after`
    ///   that leaves no nonce under the ceiling, or a strategy whose nonce for
    ///   *today* is already above the ceiling.
    /// - [`BuildError::Clock`] if the clock cannot be read to make that check.
    /// - [`BuildError::Persist`] if the mark file cannot be resolved, locked, read or decoded.
    ///
    /// ```
    /// use monotonic_nonce::{NonceManager, Strategy};
    /// let bad = NonceManager::builder().strategy(Strategy::Distributed { system_id: 3, total_systems: 3 }).build();
    /// assert!(bad.is_err()); // ids run 0..3
    /// ```
    pub fn build(self) -> Result<NonceManager<C>, BuildError> {
        #[cfg(feature = "redis")]
        if self.lease.is_some() {
            return self.build_leased();
        }
        let params = self.strategy.params()?;
        if self.ceiling == 0 {
            return Err(BuildError::config("ceiling", "0 leaves no positive nonce; use I64_MAX or JS_SAFE_MAX"));
        }
        let durable = match &self.persist {
            None => None,
            Some(path) => {
                let units = BuildError::duration_ms("mark_ahead", self.mark_ahead)?
                    .checked_mul(params.time.units_per_ms())
                    .filter(|&units| units > 0)
                    .ok_or_else(|| {
                        BuildError::config("mark_ahead", "must be at least 1 ms and fit in u64 nonce units")
                    })?;
                Some(DurableMark::open(path, params.time, units)?)
            }
        };
        // Start above what the file says was reserved, whatever `start_after` and the clock say.
        let stored = durable.as_ref().and_then(|d| d.1).unwrap_or(0);
        let floor = self.start_after.max(stored);
        if params.after(floor).filter(|&n| n <= self.ceiling).is_none() {
            return Err(BuildError::config(
                if floor == self.start_after { "start_after" } else { "persist" },
                format!(
                    "no nonce of {:?} above {} fits under the ceiling {}",
                    self.strategy,
                    floor,
                    ceiling_name(self.ceiling)
                ),
            ));
        }
        let now = self.clock.now_ms()?;
        match params.clock_term(now) {
            Some(today) if today <= self.ceiling => {}
            today => return Err(today_above_ceiling(self.strategy, now, today, self.ceiling)),
        }
        let max_lead_ms = self.max_lead.map(|d| BuildError::duration_ms("max_lead", d)).transpose()?;
        // nothing above the file's mark (or the floor) has been handed out
        let durable = durable.map(|(d, mark)| Box::new(d.start_at(mark.unwrap_or(0).max(floor))));
        Ok(self.assemble(params, floor, durable, max_lead_ms, now))
    }

    /// `build()` with a lease: the slot, its mark and the renewer come from `leased::start`.
    #[cfg(feature = "redis")]
    fn build_leased(mut self) -> Result<NonceManager<C>, BuildError> {
        let Some(lease) = self.lease.take() else { unreachable!("checked by build()") };
        if self.strategy != Strategy::Millis {
            return Err(BuildError::config(
                "lease",
                "a lease sets the strategy to Distributed { system_id: its slot, total_systems }; leave strategy at its default",
            ));
        }
        if self.persist.is_some() {
            return Err(BuildError::config("lease", "the lease keeps the mark in Redis; drop persist()"));
        }
        if self.ceiling == 0 {
            return Err(BuildError::config("ceiling", "0 leaves no positive nonce; use I64_MAX or JS_SAFE_MAX"));
        }
        let max_lead_ms = self.max_lead.map(|d| BuildError::duration_ms("max_lead", d)).transpose()?;
        let ahead_ms = BuildError::duration_ms("mark_ahead", self.mark_ahead)?;
        let start = super::leased::start(&lease, &self.clock, self.start_after, ahead_ms, self.ceiling)?;
        let now = self.clock.now_ms()?;
        self.strategy = start.strategy;
        let mut manager = self.assemble(start.params, start.floor, Some(start.durable), max_lead_ms, now);
        manager.lease = Some(start.held);
        Ok(manager)
    }

    /// A manager whose durable mark lives in `store` (the loom model of the
    /// mark-crossing protocol, with a store that records what it was given).
    #[cfg(all(test, loom))]
    pub(crate) fn build_over(self, store: Box<dyn crate::client::persist::MarkStore>, ahead: u64) -> NonceManager<C> {
        let params = self.strategy.params().expect("a valid strategy");
        let now = self.clock.now_ms().unwrap_or(0);
        let floor = self.start_after;
        let durable = Some(Box::new(DurableMark::over(store, ahead).start_at(floor)));
        self.assemble(params, floor, durable, None, now)
    }

    /// The one place a manager is put together (from `build()` and `NonceManager::new()`).
    fn assemble(
        self,
        params: Params,
        floor: u64,
        durable: Option<Box<DurableMark>>,
        max_lead_ms: Option<u64>,
        now: u64,
    ) -> NonceManager<C> {
        NonceManager {
            last: CachePadded::new(AtomicU64::new(floor)),
            seen: CachePadded::new(Seen::new(now)),
            max_lead_ms,
            history: (self.history > 0).then(|| {
                Box::new(History {
                    capacity: self.history,
                    entries: Mutex::new(VecDeque::with_capacity(self.history.min(1 << 16))),
                })
            }),
            clock: self.clock,
            strategy: self.strategy,
            params,
            ceiling: self.ceiling,
            plain: params == Params::MILLIS && max_lead_ms.is_none() && durable.is_none() && self.history == 0,
            durable,
            #[cfg(feature = "redis")]
            lease: None,
        }
    }
}

impl NonceManagerBuilder<SystemClock> {
    /// The defaults (`Millis`, `SystemClock`, `I64_MAX`), which need no check:
    /// today's Millis nonce is far below `I64_MAX`, and a failing clock is carried over.
    pub(super) fn assemble_default(self) -> NonceManager<SystemClock> {
        let (now, floor) = (self.clock.now_ms().unwrap_or(0), self.start_after);
        self.assemble(Params::new(1, 0, 1), floor, None, None, now)
    }
}

fn ceiling_name(ceiling: u64) -> String {
    match ceiling {
        JS_SAFE_MAX => "2^53-1 (JS_SAFE_MAX)".to_owned(),
        I64_MAX => "2^63-1 (I64_MAX)".to_owned(),
        other => other.to_string(),
    }
}

/// The `InvalidConfig` for a strategy whose nonce for today is already above the ceiling,
/// with the nearest strategy that would fit.
fn today_above_ceiling(strategy: Strategy, now: u64, today: Option<u64>, ceiling: u64) -> BuildError {
    let value = today.map_or_else(|| "beyond u64::MAX".to_owned(), |v| format!("{:.1e}", v as f64));
    let fix = match strategy {
        Strategy::Hft { .. } => {
            let fits = (1..=19u32)
                .take_while(|&d| 10u64.checked_pow(d).and_then(|s| now.checked_mul(s)).is_some_and(|v| v <= ceiling))
                .last();
            match fits {
                Some(d) => format!("use counter_digits <= {d} or ceiling I64_MAX"),
                None => "use Strategy::Millis or ceiling I64_MAX".to_owned(),
            }
        }
        Strategy::Distributed { .. } => {
            // The largest total T whose every nonce for today fits: now * T + (T - 1) <= ceiling,
            // i.e. T <= (ceiling + 1) / (now + 1); always below the total that failed.
            match ceiling.saturating_add(1) / now.saturating_add(1) {
                0 | 1 => "use Strategy::Millis or ceiling I64_MAX".to_owned(),
                fits => format!("use total_systems <= {fits} or ceiling I64_MAX"),
            }
        }
        Strategy::Millis => "the ceiling is below the current Unix time in ms; raise it".to_owned(),
    };
    BuildError::config(
        "ceiling",
        format!("{strategy:?} makes today's nonce {value}, above the ceiling {}; {fix}", ceiling_name(ceiling)),
    )
}
