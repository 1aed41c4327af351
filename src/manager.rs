//! [`NonceManager`]: one cache-padded `AtomicU64` and one compare-exchange loop.

use crate::batch::NonceBatch;
use crate::clock::{Clock, SystemClock};
use crate::error::NonceError;
use crate::persist::MarkFile;
use crate::strategy::{Params, Span, Strategy, I64_MAX, JS_SAFE_MAX};
use crate::sync::{AtomicU64, Mutex, Ordering};
use crossbeam_utils::{Backoff, CachePadded};
use std::collections::VecDeque;
use std::fmt;
use std::panic::Location;
use std::path::PathBuf;
use std::time::Duration;

/// The default lease: how far ahead of the handed-out nonces the durable mark is set.
const DEFAULT_LEASE: Duration = Duration::from_secs(10);

/// A lock-free generator of strictly increasing, never repeated nonces.
///
/// Every call computes `max(now_ms * scale + offset, last + step)` (see
/// [`Strategy`]) and publishes it with one compare-exchange on a cache-padded
/// `AtomicU64`; there is no lock on any path. Share it with `Arc` or a `static`.
///
/// Guarantees, whatever the clock does (stands still, steps back, fails):
/// every value handed out by `next()` or inside a `reserve()` batch is unique
/// and greater than any value handed out before it on the same thread, and no
/// value is ever above the ceiling.
///
/// # Example
/// ```
/// use monotonic_nonce::NonceManager;
/// use std::sync::Arc;
///
/// let manager = Arc::new(NonceManager::new());
/// let a = manager.next()?;
/// let b = manager.next()?;
/// assert!(b > a);
/// # Ok::<(), monotonic_nonce::NonceError>(())
/// ```
pub struct NonceManager<C: Clock = SystemClock> {
    /// `last` and the latest clock reading, on one cache line: the hot path reads both.
    hot: CachePadded<Hot>,
    clock: C,
    strategy: Strategy,
    params: Params,
    ceiling: u64,
    /// The durable high-water mark, when `persist` was set.
    persisted: Option<Box<Persisted>>,
    /// `max_lead` in milliseconds, when set.
    max_lead_ms: Option<u64>,
    /// The debug history, when set.
    history: Option<Box<History>>,
    /// Clock failures and backward steps carried over from `last`.
    clock_faults: AtomicU64,
}

/// The atomics every call touches.
#[derive(Debug)]
struct Hot {
    /// The last nonce handed out (or the floor).
    last: AtomicU64,
    /// The latest clock reading seen (0 before the first).
    clock: AtomicU64,
}

impl Hot {
    fn new(last: u64) -> Self {
        Self { last: AtomicU64::new(last), clock: AtomicU64::new(0) }
    }
}

/// One nonce handed out, with the clock reading and the caller's source line.
///
/// ```
/// use monotonic_nonce::{ManualClock, NonceManager};
/// let m = NonceManager::builder().clock(ManualClock::new(5_000)).history(2).build()?;
/// m.next()?;
/// let e = m.history()[0];
/// assert_eq!((e.nonce, e.clock_ms), (5_000, 5_000));
/// println!("nonce {} from {}", e.nonce, e.location); // file:line:column of the call
/// # Ok::<(), monotonic_nonce::NonceError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The nonce (for `reserve`, the first of the batch).
    pub nonce: u64,
    /// The clock reading it was computed from; 0 if the clock failed.
    pub clock_ms: u64,
    /// Where `next()`/`reserve()` was called.
    pub location: &'static Location<'static>,
}

/// The last `capacity` entries, oldest first.
#[derive(Debug)]
struct History {
    capacity: usize,
    entries: Mutex<VecDeque<HistoryEntry>>,
}

impl History {
    fn record(&self, entry: HistoryEntry) {
        let mut entries = self.entries.lock();
        if entries.len() == self.capacity {
            entries.pop_front();
        }
        entries.push_back(entry);
    }
}

/// The durable mark and its writer.
#[derive(Debug)]
struct Persisted {
    /// The mark known to be on disk: no nonce above it is handed out.
    mark: CachePadded<AtomicU64>,
    /// How far past the nonce that crosses the mark the next mark is set, in nonce units.
    lease: u64,
    /// The file; its lock also makes one thread write while the others wait (parked, not spinning).
    file: Mutex<MarkFile>,
}

/// Configures a [`NonceManager`]; every invalid combination is refused by [`build`](Self::build).
///
/// # Example
/// ```
/// use monotonic_nonce::{ManualClock, NonceManager, Strategy, JS_SAFE_MAX};
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
/// # Ok::<(), monotonic_nonce::NonceError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until .build()"]
pub struct NonceManagerBuilder<C: Clock = SystemClock> {
    strategy: Strategy,
    clock: C,
    ceiling: u64,
    start_after: u64,
    persist: Option<PathBuf>,
    lease: Duration,
    max_lead: Option<Duration>,
    history: usize,
}

impl Default for NonceManagerBuilder<SystemClock> {
    fn default() -> Self {
        Self {
            strategy: Strategy::Millis,
            clock: SystemClock,
            ceiling: I64_MAX,
            start_after: 0,
            persist: None,
            lease: DEFAULT_LEASE,
            max_lead: None,
            history: 0,
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
    /// # Ok::<(), monotonic_nonce::NonceError>(())
    /// ```
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.strategy = strategy;
        self
    }

    /// The clock (default [`SystemClock`]).
    ///
    /// ```
    /// use monotonic_nonce::{CoarseClock, NonceManager};
    /// let m = NonceManager::builder().clock(CoarseClock).build()?; // the cheapest clock read
    /// assert!(m.next()? > 0);
    /// # Ok::<(), monotonic_nonce::NonceError>(())
    /// ```
    pub fn clock<D: Clock>(self, clock: D) -> NonceManagerBuilder<D> {
        NonceManagerBuilder {
            strategy: self.strategy,
            clock,
            ceiling: self.ceiling,
            start_after: self.start_after,
            persist: self.persist,
            lease: self.lease,
            max_lead: self.max_lead,
            history: self.history,
        }
    }

    /// The highest nonce the manager may ever hand out (default [`I64_MAX`];
    /// use [`JS_SAFE_MAX`] for APIs whose clients parse JSON numbers as doubles).
    ///
    /// ```
    /// use monotonic_nonce::{NonceManager, JS_SAFE_MAX};
    /// let m = NonceManager::builder().ceiling(JS_SAFE_MAX).build()?;
    /// assert!(m.next()? <= JS_SAFE_MAX);
    /// # Ok::<(), monotonic_nonce::NonceError>(())
    /// ```
    pub fn ceiling(mut self, ceiling: u64) -> Self {
        self.ceiling = ceiling;
        self
    }

    /// Every nonce handed out will be greater than `floor` (default 0): the
    /// last nonce a previous run used, or the `lastNonce` a server reported.
    ///
    /// ```
    /// use monotonic_nonce::{ManualClock, NonceManager};
    /// let m = NonceManager::builder().clock(ManualClock::new(1_000)).start_after(5_000).build()?;
    /// assert_eq!(m.next()?, 5_001);
    /// # Ok::<(), monotonic_nonce::NonceError>(())
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
    /// `H = nonce + lease` (temp file, `fsync`, rename, `fsync` of the
    /// directory) while other threads that need the new mark wait, parked;
    /// every other call stays one compare-exchange. At `build()` the first
    /// nonce is above `max(H, start_after, clock)`.
    ///
    /// A missing file starts a new mark. A file that is empty, truncated,
    /// corrupt (bad magic, version or checksum) or unreadable is an error at
    /// `build()` naming the file; it never silently starts over. A second
    /// manager on the same file is refused (advisory lock on `<path>.lock`).
    /// A failed write makes `next()`/`reserve()` return
    /// [`NonceError::Persist`] and hand out nothing.
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
    /// # Ok::<(), monotonic_nonce::NonceError>(())
    /// ```
    pub fn persist(mut self, path: impl Into<PathBuf>) -> Self {
        self.persist = Some(path.into());
        self
    }

    /// How far ahead (in clock time, turned into nonce units through the
    /// strategy's units per ms) each durable mark is set (default 10 s). A
    /// longer lease writes less often; after a crash, up to one lease of
    /// nonces is skipped. Only used with [`persist`](Self::persist).
    ///
    /// ```
    /// use monotonic_nonce::NonceManager;
    /// use std::time::Duration;
    /// let path = std::env::temp_dir().join(format!("mn-doc-lease-{}.mark", std::process::id()));
    /// let m = NonceManager::builder().persist(&path).lease(Duration::from_secs(60)).build()?;
    /// m.next()?; // writes the mark once for the next minute of nonces
    /// # drop(m); let _ = std::fs::remove_file(&path); let _ = std::fs::remove_file(path.with_extension("mark.lock"));
    /// # Ok::<(), monotonic_nonce::NonceError>(())
    /// ```
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Refuse to hand out a nonce that stands for a time more than `lead`
    /// ahead of the clock (through the strategy's units per ms): `next()` and
    /// `reserve()` return [`NonceError::TooFarAhead`] instead of a nonce the
    /// exchange's future bound would reject. Off by default.
    ///
    /// ```
    /// use monotonic_nonce::{ManualClock, NonceError, NonceManager};
    /// use std::time::Duration;
    /// let m = NonceManager::builder()
    ///     .clock(ManualClock::new(1_000_000))
    ///     .max_lead(Duration::from_millis(2))
    ///     .build()?;
    /// for _ in 0..3 {
    ///     m.next()?; // 1 000 000, +1, +2: up to 2 ms ahead
    /// }
    /// assert!(matches!(m.next(), Err(NonceError::TooFarAhead { lead_ms: 3 })));
    /// # Ok::<(), NonceError>(())
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
    /// # Ok::<(), monotonic_nonce::NonceError>(())
    /// ```
    pub fn history(mut self, capacity: usize) -> Self {
        self.history = capacity;
        self
    }

    /// Checks the configuration against today's clock and builds the manager.
    ///
    /// # Errors
    /// - [`NonceError::InvalidConfig`] naming the field: an invalid strategy
    ///   (`total_systems == 0`, `system_id >= total_systems`,
    ///   `counter_digits == 0` or too large), a zero ceiling, a `start_after`
    ///   that leaves no nonce under the ceiling, or a strategy whose nonce for
    ///   *today* is already above the ceiling.
    /// - [`NonceError::Clock`] if the clock cannot be read to make that check.
    ///
    /// ```
    /// use monotonic_nonce::{NonceManager, Strategy};
    /// let bad = NonceManager::builder().strategy(Strategy::Distributed { system_id: 3, total_systems: 3 }).build();
    /// assert!(bad.is_err()); // ids run 0..3
    /// ```
    pub fn build(self) -> Result<NonceManager<C>, NonceError> {
        let params = self.strategy.params()?;
        if self.ceiling == 0 {
            return Err(NonceError::config("ceiling", "0 leaves no positive nonce; use I64_MAX or JS_SAFE_MAX"));
        }
        let persisted = match &self.persist {
            None => None,
            Some(path) => {
                let units = NonceError::duration_ms("lease", self.lease)?
                    .checked_mul(self.strategy.units_per_ms())
                    .filter(|&units| units > 0)
                    .ok_or_else(|| NonceError::config("lease", "must be at least 1 ms and fit in u64 nonce units"))?;
                let (file, mark) = MarkFile::open(path)?;
                Some((file, mark, units))
            }
        };
        // Start above what the file says was reserved, whatever `start_after` and the clock say.
        let floor = self.start_after.max(persisted.as_ref().and_then(|p| p.1).unwrap_or(0));
        let first_after_floor = params.after(floor).filter(|&n| n <= self.ceiling);
        if first_after_floor.is_none() {
            return Err(NonceError::config(
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
        let max_lead_ms = self.max_lead.map(|d| NonceError::duration_ms("max_lead", d)).transpose()?;
        Ok(NonceManager {
            hot: CachePadded::new(Hot::new(floor)),
            max_lead_ms,
            history: (self.history > 0).then(|| {
                Box::new(History {
                    capacity: self.history,
                    entries: Mutex::new(VecDeque::with_capacity(self.history.min(1 << 16))),
                })
            }),
            clock_faults: AtomicU64::new(0),
            clock: self.clock,
            strategy: self.strategy,
            params,
            ceiling: self.ceiling,
            persisted: persisted.map(|(file, mark, lease)| {
                Box::new(Persisted {
                    // nothing above the file's mark (or the floor) has been handed out
                    mark: CachePadded::new(AtomicU64::new(mark.unwrap_or(0).max(floor))),
                    lease,
                    file: Mutex::new(file),
                })
            }),
        })
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
fn today_above_ceiling(strategy: Strategy, now: u64, today: Option<u64>, ceiling: u64) -> NonceError {
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
            format!("use total_systems <= {} or ceiling I64_MAX", ceiling.checked_div(now).unwrap_or(u64::MAX))
        }
        Strategy::Millis => "the ceiling is below the current Unix time in ms; raise it".to_owned(),
    };
    NonceError::config(
        "ceiling",
        format!("{strategy:?} makes today's nonce {value}, above the ceiling {}; {fix}", ceiling_name(ceiling)),
    )
}

impl NonceManager<SystemClock> {
    /// `Strategy::Millis` on the [`SystemClock`], ceiling [`I64_MAX`].
    ///
    /// ```
    /// let manager = monotonic_nonce::NonceManager::new();
    /// assert!(manager.next()? > 1_700_000_000_000);
    /// # Ok::<(), monotonic_nonce::NonceError>(())
    /// ```
    pub fn new() -> Self {
        let defaults = NonceManagerBuilder::default();
        NonceManager {
            hot: CachePadded::new(Hot::new(defaults.start_after)),
            max_lead_ms: None,
            history: None,
            clock_faults: AtomicU64::new(0),
            clock: defaults.clock,
            strategy: defaults.strategy,
            params: Params { scale: 1, offset: 0, step: 1 },
            ceiling: defaults.ceiling,
            persisted: None,
        }
    }

    /// A builder with the defaults of [`new`](Self::new).
    ///
    /// ```
    /// use monotonic_nonce::NonceManager;
    /// let m = NonceManager::builder().build()?;
    /// assert!(m.next()? < m.next()?);
    /// # Ok::<(), monotonic_nonce::NonceError>(())
    /// ```
    pub fn builder() -> NonceManagerBuilder<SystemClock> {
        NonceManagerBuilder::default()
    }
}

impl Default for NonceManager<SystemClock> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Clock> NonceManager<C> {
    /// The next nonce: greater than every nonce this manager handed out before.
    ///
    /// If the clock fails or steps back, the manager carries on from `last`.
    ///
    /// # Errors
    /// [`NonceError::Overflow`] when the next nonce would be above the ceiling
    /// (nothing is handed out and nothing changes).
    ///
    /// ```
    /// use monotonic_nonce::{ManualClock, NonceManager};
    /// let clock = ManualClock::new(1_000);
    /// let m = NonceManager::builder().clock(clock.clone()).build()?;
    /// assert_eq!(m.next()?, 1_000);
    /// assert_eq!(m.next()?, 1_001); // same millisecond
    /// clock.set(5);                 // clock steps back
    /// assert_eq!(m.next()?, 1_002);
    /// # Ok::<(), monotonic_nonce::NonceError>(())
    /// ```
    #[inline]
    #[track_caller]
    pub fn next(&self) -> Result<u64, NonceError> {
        self.next_from(Location::caller())
    }

    /// `next()`, recording `location` in the history (for callers that capture it themselves).
    #[inline]
    pub(crate) fn next_from(&self, location: &'static Location<'static>) -> Result<u64, NonceError> {
        let span = self.take(1, location)?;
        Ok(span.first)
    }

    /// Reserves `count` nonces in one atomic step (O(1) whatever `count`).
    /// No other `next()`/`reserve()` on this manager overlaps the batch.
    ///
    /// # Errors
    /// [`NonceError::EmptyBatch`] for `count == 0`; [`NonceError::Overflow`]
    /// when the batch would end above the ceiling. Either way nothing changes.
    ///
    /// ```
    /// use monotonic_nonce::NonceManager;
    /// let m = NonceManager::new();
    /// let batch = m.reserve(1_000)?;
    /// assert_eq!(batch.len(), 1_000);
    /// assert_eq!(m.last(), batch.last());
    /// # Ok::<(), monotonic_nonce::NonceError>(())
    /// ```
    #[track_caller]
    pub fn reserve(&self, count: u64) -> Result<NonceBatch, NonceError> {
        if count == 0 {
            return Err(NonceError::EmptyBatch);
        }
        let span = self.take(count, Location::caller())?;
        Ok(NonceBatch::new(span.first, span.last, self.params.step, count))
    }

    /// Makes every later nonce greater than `nonce`, e.g. after a server
    /// answered "nonce too low, lastNonce = n". Only ever raises `last`: a
    /// stale or smaller report changes nothing. Distributed residues are kept.
    ///
    /// # Errors
    /// [`NonceError::Overflow`] when no nonce above `nonce` fits under the
    /// ceiling (for example `advance_past(u64::MAX)`); nothing changes.
    ///
    /// ```
    /// use monotonic_nonce::{ManualClock, NonceManager};
    /// let m = NonceManager::builder().clock(ManualClock::new(1_000)).build()?;
    /// m.advance_past(5_000)?;
    /// assert_eq!(m.next()?, 5_001);
    /// m.advance_past(10)?; // stale report: ignored
    /// assert_eq!(m.next()?, 5_002);
    /// assert!(m.advance_past(u64::MAX).is_err());
    /// # Ok::<(), monotonic_nonce::NonceError>(())
    /// ```
    pub fn advance_past(&self, nonce: u64) -> Result<(), NonceError> {
        match self.params.after(nonce) {
            Some(next) if next <= self.ceiling => {
                // Relaxed: `last` is the only shared datum and fetch_max is a single
                // read-modify-write on it, ordered with every other RMW on `last`.
                self.hot.last.fetch_max(nonce, Ordering::Relaxed);
                Ok(())
            }
            _ => Err(NonceError::Overflow { ceiling: self.ceiling }),
        }
    }

    /// The highest nonce handed out so far, or the start floor (or the highest
    /// value passed to [`advance_past`](Self::advance_past)) if that is higher.
    ///
    /// ```
    /// use monotonic_nonce::{ManualClock, NonceManager};
    /// let m = NonceManager::builder().clock(ManualClock::new(1_000)).build()?;
    /// assert_eq!(m.last(), 0);
    /// let n = m.next()?;
    /// assert_eq!(m.last(), n);
    /// # Ok::<(), monotonic_nonce::NonceError>(())
    /// ```
    pub fn last(&self) -> u64 {
        // Relaxed: a snapshot of one value; no other memory is published with it.
        self.hot.last.load(Ordering::Relaxed)
    }

    /// The strategy this manager was built with.
    ///
    /// ```
    /// use monotonic_nonce::{NonceManager, Strategy};
    /// assert_eq!(NonceManager::new().strategy(), Strategy::Millis);
    /// ```
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// The highest nonce this manager may hand out.
    ///
    /// ```
    /// use monotonic_nonce::{NonceManager, I64_MAX};
    /// assert_eq!(NonceManager::new().ceiling(), I64_MAX);
    /// ```
    pub fn ceiling(&self) -> u64 {
        self.ceiling
    }

    /// The clock this manager reads.
    ///
    /// ```
    /// use monotonic_nonce::{Clock, ManualClock, NonceManager};
    /// let m = NonceManager::builder().clock(ManualClock::new(1_000)).build()?;
    /// m.clock().advance(5);
    /// assert_eq!(m.clock().now_ms(), Ok(1_005));
    /// # Ok::<(), monotonic_nonce::NonceError>(())
    /// ```
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// How far `last` is ahead of the clock, in milliseconds (negative: behind).
    /// With a failing clock, measured against the latest reading seen.
    ///
    /// ```
    /// use monotonic_nonce::{ManualClock, NonceManager};
    /// let m = NonceManager::builder().clock(ManualClock::new(1_000)).build()?;
    /// m.reserve(50)?; // 1 000 ..= 1 049
    /// assert_eq!(m.lead_ms(), 49);
    /// # Ok::<(), monotonic_nonce::NonceError>(())
    /// ```
    pub fn lead_ms(&self) -> i64 {
        // Relaxed: a report; no other memory is read through it.
        let now = self.clock.now_ms().unwrap_or_else(|_| self.hot.clock.load(Ordering::Relaxed));
        let ahead = i128::from(self.last() / self.params.scale) - i128::from(now);
        i64::try_from(ahead).unwrap_or(if ahead > 0 { i64::MAX } else { i64::MIN })
    }

    /// How many calls found the clock failing, or reading earlier than a
    /// reading this manager had already seen, and carried on from `last`.
    ///
    /// ```
    /// use monotonic_nonce::{ManualClock, NonceManager};
    /// let clock = ManualClock::new(1_000);
    /// let m = NonceManager::builder().clock(clock.clone()).build()?;
    /// m.next()?;
    /// clock.set(400); // NTP stepped the clock back
    /// m.next()?;
    /// clock.set_failing(true);
    /// m.next()?;
    /// assert_eq!(m.clock_faults(), 2);
    /// # Ok::<(), monotonic_nonce::NonceError>(())
    /// ```
    pub fn clock_faults(&self) -> u64 {
        // Relaxed: a counter; no other memory is published with it.
        self.clock_faults.load(Ordering::Relaxed)
    }

    /// The last nonces handed out (up to the capacity given to
    /// [`NonceManagerBuilder::history`]), oldest first; empty without a history.
    ///
    /// ```
    /// use monotonic_nonce::NonceManager;
    /// let m = NonceManager::builder().history(8).build()?;
    /// let n = m.next()?;
    /// let h = m.history();
    /// assert_eq!(h.last().map(|e| e.nonce), Some(n));
    /// assert_eq!(h[0].location.file(), file!()); // where `next()` was called
    /// # Ok::<(), monotonic_nonce::NonceError>(())
    /// ```
    pub fn history(&self) -> Vec<HistoryEntry> {
        self.history.as_ref().map_or_else(Vec::new, |h| h.entries.lock().iter().copied().collect())
    }

    /// Reads the clock, counting failures and backward steps.
    #[inline]
    fn read_clock(&self) -> Option<u64> {
        // Relaxed: loaded before the clock is read, so a larger value was stored by
        // a reading that happened earlier: a smaller reading now is a real backward step.
        let seen = self.hot.clock.load(Ordering::Relaxed);
        match self.clock.now_ms() {
            Ok(now) => {
                if now > seen {
                    // Relaxed: fetch_max is one RMW on its own atomic; it publishes nothing.
                    self.hot.clock.fetch_max(now, Ordering::Relaxed);
                } else if now < seen {
                    self.count_clock_fault();
                }
                Some(now)
            }
            Err(_) => {
                self.count_clock_fault();
                None
            }
        }
    }

    #[cold]
    fn count_clock_fault(&self) {
        // Relaxed: a counter; no other memory is published with it.
        self.clock_faults.fetch_add(1, Ordering::Relaxed);
    }

    /// `TooFarAhead` when `span_last` stands for more than `max_lead` past `now`.
    #[inline]
    fn check_lead(&self, max_lead_ms: u64, span_last: u64, now: u64) -> Result<(), NonceError> {
        let lead_ms = (span_last / self.params.scale).saturating_sub(now);
        if lead_ms > max_lead_ms {
            return Err(NonceError::TooFarAhead { lead_ms });
        }
        Ok(())
    }

    /// The single compare-exchange loop behind `next()` and `reserve()`; records
    /// the span in the history (if any) as called from `location`.
    #[inline]
    fn take(&self, count: u64, location: &'static Location<'static>) -> Result<Span, NonceError> {
        // A failed clock is not an error here: the formula carries on from `last`.
        let now = self.read_clock();
        // Relaxed: uniqueness needs only the modification order of this one
        // atomic, which every compare-exchange below respects; it guards no other data.
        let mut last = self.hot.last.load(Ordering::Relaxed);
        let backoff = Backoff::new();
        loop {
            let span = self.params.span_after(last, now, count, self.ceiling)?;
            if let (Some(max), Some(now)) = (self.max_lead_ms, now) {
                self.check_lead(max, span.last, now)?;
            }
            if let Some(p) = &self.persisted {
                // Relaxed: the mark is stored only after its fsync returned, so any value
                // read here is already on disk; no other memory is published with it.
                if span.last > p.mark.load(Ordering::Relaxed) {
                    self.extend_mark(p, span.last)?;
                    // Relaxed: as for the first load of `last`.
                    last = self.hot.last.load(Ordering::Relaxed);
                    continue;
                }
            }
            // Relaxed (success and failure): as above, the RMW on `last` alone
            // makes spans disjoint and per-thread increasing; nothing else is published.
            match self.hot.last.compare_exchange_weak(last, span.last, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => {
                    if let Some(h) = &self.history {
                        h.record(HistoryEntry { nonce: span.first, clock_ms: now.unwrap_or(0), location });
                    }
                    return Ok(span);
                }
                Err(current) => {
                    // Lost a race: let the winner's cache line settle before retrying.
                    last = current;
                    backoff.spin();
                }
            }
        }
    }
}

impl<C: Clock> NonceManager<C> {
    /// Makes the durable mark at least `needed`: one thread writes, the others
    /// wait on the file's lock (parked) and find the work done.
    #[cold]
    fn extend_mark(&self, p: &Persisted, needed: u64) -> Result<(), NonceError> {
        let mut file = p.file.lock();
        // Relaxed: read under the writers' lock, which orders it after every earlier store.
        if p.mark.load(Ordering::Relaxed) >= needed {
            return Ok(());
        }
        let mark = needed.saturating_add(p.lease).min(self.ceiling);
        file.write(mark)?;
        // Relaxed: stored after the fsync returned (see `take`); readers need no other memory.
        p.mark.store(mark, Ordering::Relaxed);
        Ok(())
    }
}

impl<C: Clock> fmt::Debug for NonceManager<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceManager")
            .field("strategy", &self.strategy)
            .field("last", &self.last())
            .field("ceiling", &self.ceiling)
            .field("clock", &std::any::type_name::<C>())
            // Relaxed: reporting only.
            .field("durable_mark", &self.persisted.as_ref().map(|p| p.mark.load(Ordering::Relaxed)))
            .finish()
    }
}
