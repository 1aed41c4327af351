//! [`NonceManager`]: one cache-padded `AtomicU64` and one compare-exchange
//! loop (this file); its builder is in `builder.rs`, the durable mark in
//! `crate::persist`.

mod builder;
#[cfg(feature = "redis")]
mod leased;

pub use builder::NonceManagerBuilder;

use crate::client::batch::NonceBatch;
use crate::client::formula::Span;
use crate::client::persist::DurableMark;
use crate::clock::{Clock, SystemClock};
use crate::error::NonceError;
use crate::strategy::{Params, Strategy};
use crate::sync::{AtomicU64, Mutex, Ordering};
use crossbeam_utils::CachePadded;
use std::collections::VecDeque;
use std::fmt;
use std::panic::Location;

/// A lock-free generator of strictly increasing, never repeated nonces.
///
/// Every call computes `max(now_ms * scale + offset, last + step)` (see
/// [`Strategy`]) and publishes it with one compare-exchange on a cache-padded
/// `AtomicU64`. The common path takes no lock; only the optional debug
/// history and crossing the optional durable mark do. Share it with `Arc` or a `static`.
///
/// Guarantees, whatever the clock does (stands still, steps back, fails):
/// every value handed out by `next()` or inside a `reserve()` batch is unique
/// and greater than any value handed out before it on the same thread, and no
/// value is ever above the ceiling.
///
/// # Guarantees
/// | promise | how it is tested |
/// |---|---|
/// | every nonce from one manager is unique, and strictly increasing per thread, while the clock stands still, steps back an hour, or fails | `tests/it/manager.rs` (ManualClock), `tests/it/concurrency.rs` (8 threads x 100 000 mixed `next`/`reserve`, with a thread jerking the clock back and forth and failing it), loom models `tests/loom_manager.rs` (every interleaving of 3 threads mixing `next`, `reserve`, `advance_past` with the clock standing still or stepping back; the same checks catch a load-then-store generator) |
/// | a clock error never yields 0 or a repeat: the manager carries on from `last + step` | `clock_failure_carries_on_from_last`, the concurrency test |
/// | `Distributed` managers with ids `0..total` never collide, even many calls within one ms | `distributed_managers_never_collide_within_one_millisecond`, loom model |
/// | no arithmetic wraps: the ceiling is never passed; `Overflow` instead, and a refused call changes nothing | `reaching_the_ceiling_is_an_error_that_changes_nothing`, `reserve_near_u64_max_never_wraps`; property test `tests/it/manager_props.rs` (2 000 random operation sequences against a `u128` model of the formula) |
/// | `reserve(n)` is one compare-exchange whatever `n`; nothing overlaps a batch | `reserve_moves_past_the_whole_batch_and_next_never_overlaps_it`, concurrency test, loom |
/// | `advance_past(n)` only raises, keeps the Distributed residue, refuses `u64::MAX` | `advance_past_*` tests, property test |
/// | invalid configuration is refused at `build()`, naming the field | `*_rejects_*` / `build_refuses_*` tests |
///
/// With [`persist`](crate::client::NonceManagerBuilder::persist), the durable mark:
///
/// | promise | how it is tested |
/// |---|---|
/// | with `persist(path)`, no nonce is handed out above the mark `H` on disk at that moment; the thread that crosses `H` first writes `last + mark_ahead` (temp file, `fsync`, rename, `fsync` of the directory) while the others wait parked; `mark_ahead` (default 10 s of nonce units) keeps the common path one compare-exchange | `tests/it/crash.rs`: a child process prints every nonce, flushed, and is killed with SIGKILL at random moments 60 times, every other restart with its clock one hour back; the first nonce of every run exceeds everything printed before, nothing repeats (verified to fail when `build()` ignores the file); `mark_ahead_bounds_how_often_the_mark_is_written` |
/// | after a restart the first nonce is above `max(H, start_after, clock)`; up to one `mark_ahead` of nonces is skipped | `restart_continues_above_the_mark_even_with_the_clock_an_hour_back`, `first_nonce_is_above_mark_start_after_and_clock` |
/// | a mark path that is a FIFO, a device or a directory is refused at once (opened without blocking, checked to be a regular file); two names of one file (a hard link) get one lock: the mark file's inode is locked too | `a_fifo_at_the_mark_path_is_an_error_not_a_hang`, `a_hard_link_to_the_mark_gets_the_same_lock` |
/// | a mark file that is empty, truncated, padded, not ours, of another version, or has any flipped byte (magic, version, FNV-1a checksum) is an error at `build()` that names the file and says what to do; never a silent start from 0 or the clock | `corrupt_files_are_clear_errors`, the unit test flipping each of the 32 bytes |
/// | a directory at the path, a file where the directory should be, an unwritable directory: clear errors, no panic | `a_directory_where_*`, `a_file_where_*`, `an_unwritable_directory_is_an_error` (`/proc`), `a_read_only_directory_*` (mode 0555; as root the mode does not stop writes, which the test states) |
/// | a second manager on the same file is refused at `build()` (advisory lock on `<path>.lock`, the path resolved first, so a symlink to the file gets the same lock); an empty path is refused | `two_managers_on_one_file_is_an_error`, `a_symlink_to_the_mark_gets_the_same_lock`, `an_empty_persist_path_is_refused` |
/// | a failed mark write surfaces as `NonceError::Persist` from `next()`/`reserve()` and hands out nothing; if the lock file was deleted or replaced while the manager runs (another manager may hold the mark), it hands out nothing above its mark any more | `a_vanished_directory_hands_out_nothing_above_the_mark`, `a_deleted_lock_file_stops_the_manager_at_its_mark` |
/// | the mark records the strategy's time scale: a manager with another one (e.g. `Hft { counter_digits: 3 }` then `Millis`) is refused at `build()` with the way to migrate (delete the file, `start_after(mark)`); version-1 files (no scale) still read | `a_mark_from_another_strategy_is_refused_with_the_way_out`, `version_1_files_are_still_read` |
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
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct NonceManager<C: Clock = SystemClock> {
    /// The last nonce handed out (or the floor): the one contended cache line;
    /// the common path is one compare-exchange on it and nothing else shared.
    last: CachePadded<AtomicU64>,
    /// The latest clock reading and the fault counter: read on every call but
    /// written at most once per millisecond (and on a fault), so this line stays
    /// shared in every core's cache instead of bouncing with `last`.
    seen: CachePadded<Seen>,
    clock: C,
    strategy: Strategy,
    params: Params,
    ceiling: u64,
    /// The durable high-water mark, when `persist` was set.
    durable: Option<Box<DurableMark>>,
    /// `max_lead` in milliseconds, when set.
    max_lead_ms: Option<u64>,
    /// The debug history, when set.
    history: Option<Box<History>>,
    /// The slot lease, when set (its mark is `durable`'s store).
    #[cfg(feature = "redis")]
    lease: Option<std::sync::Arc<crate::client::lease::Held>>,
    /// `Strategy::Millis` with no `max_lead`, no durable mark and no history:
    /// `take` then runs its copy compiled for exactly that (see `take`).
    plain: bool,
}

/// What the manager has seen of its clock.
#[derive(Debug)]
struct Seen {
    /// The latest clock reading (the one `build()` took, at first).
    clock: AtomicU64,
    /// Clock failures and backward steps carried over from `last`: exact, and
    /// written only when one happens (a fault is rare; counting it costs nothing
    /// on the common path).
    faults: AtomicU64,
}

impl Seen {
    fn new(clock: u64) -> Self {
        Self { clock: AtomicU64::new(clock), faults: AtomicU64::new(0) }
    }
}

/// One nonce handed out, with the clock reading and the caller's source line.
///
/// ```
/// use monotonic_nonce::{NonceManager, clock::ManualClock};
/// let m = NonceManager::builder().clock(ManualClock::new(5_000)).history(2).build()?;
/// m.next()?;
/// let e = m.history()[0];
/// assert_eq!((e.nonce, e.clock_ms), (5_000, 5_000));
/// println!("nonce {} from {}", e.nonce, e.location); // file:line:column of the call
/// # Ok::<(), Box<dyn std::error::Error>>(())
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

impl NonceManager<SystemClock> {
    /// `Strategy::Millis` on the [`SystemClock`], ceiling [`I64_MAX`](crate::strategy::I64_MAX).
    ///
    /// ```
    /// let manager = monotonic_nonce::NonceManager::new();
    /// assert!(manager.next()? > 1_700_000_000_000);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new() -> Self {
        NonceManagerBuilder::default().assemble_default()
    }

    /// A builder with the defaults of [`new`](Self::new).
    ///
    /// ```
    /// use monotonic_nonce::NonceManager;
    /// let m = NonceManager::builder().build()?;
    /// assert!(m.next()? < m.next()?);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
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
    /// use monotonic_nonce::{NonceManager, clock::ManualClock};
    /// let clock = ManualClock::new(1_000);
    /// let m = NonceManager::builder().clock(clock.clone()).build()?;
    /// assert_eq!(m.next()?, 1_000);
    /// assert_eq!(m.next()?, 1_001); // same millisecond
    /// clock.set(5);                 // clock steps back
    /// assert_eq!(m.next()?, 1_002);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    #[track_caller]
    pub fn next(&self) -> Result<u64, NonceError> {
        self.next_from(Location::caller())
    }

    /// `next()`, recording `location` in the history (for callers that capture it themselves).
    /// Always inlined (and `take`'s plain copy with it): out of line, its
    /// 32-byte `Result` goes back through memory and the caller's wide load of
    /// it stalls on store forwarding.
    #[inline(always)]
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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
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
    /// With [`max_lead`](crate::client::NonceManagerBuilder::max_lead) set, a `nonce`
    /// whose successor stands for more than `max_lead` ahead of the clock is
    /// refused: one hostile or buggy server body cannot move the manager out
    /// of the clock's reach. Without `max_lead` the value is trusted as it is;
    /// set `max_lead` whenever it comes from the network.
    ///
    /// # Errors
    /// [`NonceError::Overflow`] when no nonce above `nonce` fits under the
    /// ceiling (for example `advance_past(u64::MAX)`);
    /// [`NonceError::TooFarAhead`] when it is beyond `max_lead`. Nothing changes.
    ///
    /// ```
    /// use monotonic_nonce::{NonceManager, clock::ManualClock};
    /// let m = NonceManager::builder().clock(ManualClock::new(1_000)).build()?;
    /// m.advance_past(5_000)?;
    /// assert_eq!(m.next()?, 5_001);
    /// m.advance_past(10)?; // stale report: ignored
    /// assert_eq!(m.next()?, 5_002);
    /// assert!(m.advance_past(u64::MAX).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn advance_past(&self, nonce: u64) -> Result<(), NonceError> {
        match self.params.after(nonce) {
            Some(next) if next <= self.ceiling => {
                if let Some(max) = self.max_lead_ms {
                    self.check_lead(max, next, self.read_clock())?;
                }
                // Relaxed: `last` is the only shared datum and fetch_max is a single
                // read-modify-write on it, ordered with every other RMW on `last`.
                self.last.fetch_max(nonce, Ordering::Relaxed);
                Ok(())
            }
            _ => Err(NonceError::Overflow { ceiling: self.ceiling }),
        }
    }

    /// The highest nonce handed out so far, or the start floor (or the highest
    /// value passed to [`advance_past`](Self::advance_past)) if that is higher.
    ///
    /// ```
    /// use monotonic_nonce::{NonceManager, clock::ManualClock};
    /// let m = NonceManager::builder().clock(ManualClock::new(1_000)).build()?;
    /// assert_eq!(m.last(), 0);
    /// let n = m.next()?;
    /// assert_eq!(m.last(), n);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn last(&self) -> u64 {
        // Relaxed: a snapshot of one value; no other memory is published with it.
        self.last.load(Ordering::Relaxed)
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
    /// use monotonic_nonce::{NonceManager, strategy::I64_MAX};
    /// assert_eq!(NonceManager::new().ceiling(), I64_MAX);
    /// ```
    pub fn ceiling(&self) -> u64 {
        self.ceiling
    }

    /// The clock this manager reads.
    ///
    /// ```
    /// use monotonic_nonce::{Clock, NonceManager, clock::ManualClock};
    /// let m = NonceManager::builder().clock(ManualClock::new(1_000)).build()?;
    /// m.clock().advance(5);
    /// assert_eq!(m.clock().now_ms(), Ok(1_005));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// How far `last` is ahead of the clock, in milliseconds (negative: behind).
    /// With a failing clock, measured against the latest reading seen.
    ///
    /// ```
    /// use monotonic_nonce::{NonceManager, clock::ManualClock};
    /// let m = NonceManager::builder().clock(ManualClock::new(1_000)).build()?;
    /// m.reserve(50)?; // 1 000 ..= 1 049
    /// assert_eq!(m.lead_ms(), 49);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lead_ms(&self) -> i64 {
        // Relaxed: a report; no other memory is read through it.
        let now = self.clock.now_ms().unwrap_or_else(|_| self.seen.clock.load(Ordering::Relaxed));
        let ahead = i128::from(self.params.time.ms_of(self.last())) - i128::from(now);
        i64::try_from(ahead).unwrap_or(if ahead > 0 { i64::MAX } else { i64::MIN })
    }

    /// How many calls found the clock failing, or reading earlier than a
    /// reading this manager had already seen, and carried on from `last`.
    ///
    /// Exact: each fault is one atomic add on a cache line separate from
    /// `last`, and the common path only reads that line (it is written at
    /// most once per millisecond, with the latest reading), so counting costs
    /// the hot path nothing but a load of a line every core keeps shared.
    ///
    /// ```
    /// use monotonic_nonce::{NonceManager, clock::ManualClock};
    /// let clock = ManualClock::new(1_000);
    /// let m = NonceManager::builder().clock(clock.clone()).build()?;
    /// m.next()?;
    /// clock.set(400); // NTP stepped the clock back
    /// m.next()?;
    /// clock.set_failing(true);
    /// m.next()?;
    /// assert_eq!(m.clock_faults(), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn clock_faults(&self) -> u64 {
        // Relaxed: a counter; no other memory is published with it.
        self.seen.faults.load(Ordering::Relaxed)
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
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn history(&self) -> Vec<HistoryEntry> {
        self.history.as_ref().map_or_else(Vec::new, |h| h.entries.lock().iter().copied().collect())
    }

    /// Reads the clock, counting failures and backward steps.
    #[inline]
    fn read_clock(&self) -> Option<u64> {
        // Relaxed: a hint only. A stale (smaller) value can miss a backward step
        // or store a reading again; it can never count a forward step as a fault,
        // because every value stored was a real reading.
        let seen = self.seen.clock.load(Ordering::Relaxed);
        match self.clock.now_ms() {
            Ok(now) => {
                if now > seen {
                    // Relaxed: fetch_max is one RMW on its own atomic; it publishes nothing.
                    self.seen.clock.fetch_max(now, Ordering::Relaxed);
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
        self.seen.faults.fetch_add(1, Ordering::Relaxed);
        crate::telemetry::client_clock_fault();
    }

    /// `TooFarAhead` when `span_last` stands for more than `max_lead` past `now`
    /// (with a failing clock, past the latest reading seen).
    #[inline]
    fn check_lead(&self, max_lead_ms: u64, span_last: u64, now: Option<u64>) -> Result<(), NonceError> {
        // Relaxed: a reading for a bound; no other memory is read through it.
        let now = now.unwrap_or_else(|| self.seen.clock.load(Ordering::Relaxed));
        let lead_ms = self.params.time.ms_of(span_last).saturating_sub(now);
        if lead_ms > max_lead_ms / 2 {
            lead_reported(lead_ms); // close to the bound: worth a gauge
        }
        if lead_ms > max_lead_ms {
            return Err(NonceError::TooFarAhead { lead_ms });
        }
        Ok(())
    }

    /// The single compare-exchange loop behind `next()` and `reserve()`; records
    /// the span in the history (if any) as called from `location`.
    ///
    /// One loop, compiled twice: for a `plain` manager (the default) with the
    /// strategy's parameters as constants and the optional steps left out, so
    /// the common call is the clock read, the formula and one compare-exchange.
    #[inline(always)]
    fn take(&self, count: u64, location: &'static Location<'static>) -> Result<Span, NonceError> {
        if self.plain {
            self.take_as::<true>(count, location)
        } else {
            self.take_general(count, location)
        }
    }

    /// The general copy, kept out of line so that `next()` with the plain copy
    /// inlined stays small enough to be inlined into its caller (returning the
    /// `Result` in registers, not through memory).
    #[inline(never)]
    fn take_general(&self, count: u64, location: &'static Location<'static>) -> Result<Span, NonceError> {
        self.take_as::<false>(count, location)
    }

    /// `take`, where `PLAIN` promises `self.plain` (so `params` is `Params::MILLIS`
    /// and there is no lead bound, durable mark or history to consult).
    #[inline(always)]
    fn take_as<const PLAIN: bool>(&self, count: u64, location: &'static Location<'static>) -> Result<Span, NonceError> {
        // A failed clock is not an error here: the formula carries on from `last`.
        let now = self.read_clock();
        // Relaxed for the plain copy: uniqueness needs only the modification order
        // of this one atomic, which every compare-exchange below respects. Acquire
        // otherwise: pairs with a lease switch's Release raise of `last` (see
        // `leased.rs`), so the slot and mark read next are at least as new.
        let load = if PLAIN { Ordering::Relaxed } else { Ordering::Acquire };
        let mut last = self.last.load(load);
        loop {
            let (params, lease_mark) = if PLAIN {
                (Params::MILLIS, None)
            } else {
                match self.lease_step(self.params)? {
                    Step::Go(params, mark) => (params, mark),
                    Step::Reload => {
                        last = self.last.load(load);
                        continue;
                    }
                }
            };
            let span = params.span_after(last, now, count, self.ceiling)?;
            if !PLAIN {
                if let Some(max) = self.max_lead_ms {
                    self.check_lead(max, span.last, now)?;
                }
                if let Some(d) = &self.durable {
                    if span.last > lease_mark.unwrap_or_else(|| d.mark()) {
                        d.extend(span.last, self.ceiling)?;
                        last = self.last.load(load);
                        continue;
                    }
                }
            }
            // Relaxed on success: the RMW on `last` alone makes spans disjoint and
            // per-thread increasing; nothing else is published. On failure, as the load above.
            match self.last.compare_exchange_weak(last, span.last, Ordering::Relaxed, load) {
                Ok(_) => {
                    if !PLAIN {
                        self.lease_still_held(params.offset)?;
                        if let Some(h) = &self.history {
                            h.record(HistoryEntry { nonce: span.first, clock_ms: now.unwrap_or(0), location });
                        }
                    }
                    return Ok(span);
                }
                // Lost a race: retry at once from the value that won. No backoff: a
                // thread that spins while others are descheduled only wastes its slice.
                Err(current) => last = current,
            }
        }
    }
}

impl<C: Clock> fmt::Debug for NonceManager<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceManager")
            .field("strategy", &self.strategy)
            .field("last", &self.last())
            .field("ceiling", &self.ceiling)
            .field("clock", &std::any::type_name::<C>())
            .field("durable_mark", &self.durable.as_ref().map(|d| d.mark()))
            .finish()
    }
}

/// What the hot path does next (a lease may change the slot it computes with).
enum Step {
    /// Compute with these parameters under this mark (`None`: read it when needed).
    Go(Params, Option<u64>),
    /// A lease was re-acquired: load `last` again and start over.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    Reload,
}

#[cfg(not(feature = "redis"))]
impl<C: Clock> NonceManager<C> {
    #[inline(always)]
    fn lease_step(&self, params: Params) -> Result<Step, NonceError> {
        Ok(Step::Go(params, None))
    }

    #[inline(always)]
    fn lease_still_held(&self, _slot: u64) -> Result<(), NonceError> {
        Ok(())
    }
}

/// The lead as a metric, out of line (only past half of `max_lead`).
#[cold]
#[inline(never)]
fn lead_reported(lead_ms: u64) {
    crate::telemetry::client_lead(lead_ms);
}
