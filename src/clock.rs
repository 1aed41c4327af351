//! Where time comes from. Nothing else in the crate reads the system clock.

use crate::error::ClockError;
use crate::sync::{Arc, AtomicBool, AtomicI64, AtomicU64, Mutex, Ordering};
use std::collections::VecDeque;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of wall-clock time in milliseconds since the Unix epoch.
///
/// Generators and validators take the clock as a type parameter, so tests,
/// loom models and fuzz targets drive a [`ManualClock`] while production uses
/// [`SystemClock`] or [`CoarseClock`].
///
/// # Example
/// ```
/// use monotonic_nonce::{Clock, ClockError};
///
/// /// A clock frozen at one instant.
/// struct Frozen(u64);
/// impl Clock for Frozen {
///     fn now_ms(&self) -> Result<u64, ClockError> {
///         Ok(self.0)
///     }
/// }
/// assert_eq!(Frozen(42).now_ms()?, 42);
/// # Ok::<(), ClockError>(())
/// ```
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    ///
    /// # Errors
    /// A [`ClockError`] when the time cannot be read or represented.
    fn now_ms(&self) -> Result<u64, ClockError>;
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now_ms(&self) -> Result<u64, ClockError> {
        (**self).now_ms()
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn duration_to_ms(d: Duration) -> Result<u64, ClockError> {
    d.as_secs()
        .checked_mul(1_000)
        .and_then(|ms| ms.checked_add(u64::from(d.subsec_millis())))
        .ok_or(ClockError::OutOfRange)
}

/// The wall clock with exact milliseconds (`CLOCK_REALTIME`, what `SystemTime::now()` reads); the default clock.
///
/// # Example
/// ```
/// use monotonic_nonce::{Clock, SystemClock};
/// let ms = SystemClock.now_ms()?;
/// assert!(ms > 1_700_000_000_000); // after November 2023
/// # Ok::<(), monotonic_nonce::ClockError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// On Linux and Android, `clock_gettime(CLOCK_REALTIME)` through rustix (the
    /// clock `SystemTime::now()` reads, without its conversion to a `SystemTime`
    /// and back); elsewhere `SystemTime::now()`.
    #[inline]
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn now_ms(&self) -> Result<u64, ClockError> {
        timespec_ms(rustix::time::clock_gettime(rustix::time::ClockId::Realtime))
    }

    #[inline]
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn now_ms(&self) -> Result<u64, ClockError> {
        let since = SystemTime::now().duration_since(UNIX_EPOCH).map_err(|_| ClockError::BeforeUnixEpoch)?;
        duration_to_ms(since)
    }
}

/// A `timespec` as ms since the epoch; before the epoch or beyond `u64` is an error.
#[cfg(any(target_os = "linux", target_os = "android"))]
#[inline]
fn timespec_ms(ts: rustix::time::Timespec) -> Result<u64, ClockError> {
    let secs = u64::try_from(ts.tv_sec).map_err(|_| ClockError::BeforeUnixEpoch)?;
    let sub_ms = u64::try_from(ts.tv_nsec / 1_000_000).map_err(|_| ClockError::OutOfRange)?;
    secs.checked_mul(1_000).and_then(|ms| ms.checked_add(sub_ms)).ok_or(ClockError::OutOfRange)
}

/// The cheapest wall-clock read the OS offers: `CLOCK_REALTIME_COARSE` on
/// Linux and Android (updated once per scheduler tick, typically 1–4 ms, so
/// consecutive reads repeat more often), [`SystemClock`] elsewhere.
///
/// The generator never depends on the clock for uniqueness, so a coarse clock
/// only makes nonces run ahead of the wall clock by up to one tick under load.
///
/// # Example
/// ```
/// use monotonic_nonce::{Clock, CoarseClock, SystemClock};
/// let coarse = CoarseClock.now_ms()?;
/// let exact = SystemClock.now_ms()?;
/// assert!(exact + 1_000 > coarse && coarse + 1_000 > exact);
/// # Ok::<(), monotonic_nonce::ClockError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CoarseClock;

impl Clock for CoarseClock {
    #[inline]
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn now_ms(&self) -> Result<u64, ClockError> {
        timespec_ms(rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse))
    }

    #[inline]
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn now_ms(&self) -> Result<u64, ClockError> {
        SystemClock.now_ms()
    }
}

#[derive(Debug)]
struct ManualState {
    ms: AtomicU64,
    failing: AtomicBool,
}

/// A clock that only moves when told to: a shared handle for tests, loom
/// models, fuzz targets and simulations. Clones see (and move) the same time.
///
/// # Example
/// ```
/// use monotonic_nonce::{Clock, ManualClock};
/// let clock = ManualClock::new(1_000);
/// let handle = clock.clone();
/// handle.advance(5);
/// assert_eq!(clock.now_ms()?, 1_005);
/// clock.set(10); // time may also go backwards
/// assert_eq!(handle.now_ms()?, 10);
/// # Ok::<(), monotonic_nonce::ClockError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    state: Arc<ManualState>,
}

impl ManualClock {
    /// A clock reading `ms` until moved.
    ///
    /// ```
    /// use monotonic_nonce::{Clock, ManualClock};
    /// let clock = ManualClock::new(1_000);
    /// let shared = clock.clone(); // clones see the same time
    /// assert_eq!(shared.now_ms(), Ok(1_000));
    /// ```
    pub fn new(ms: u64) -> Self {
        Self { state: Arc::new(ManualState { ms: AtomicU64::new(ms), failing: AtomicBool::new(false) }) }
    }

    /// Sets the time (forwards or backwards).
    ///
    /// ```
    /// use monotonic_nonce::{Clock, ManualClock};
    /// let clock = ManualClock::new(1_000);
    /// clock.set(400); // an NTP step back
    /// assert_eq!(clock.now_ms(), Ok(400));
    /// ```
    pub fn set(&self, ms: u64) {
        // Relaxed: the reading carries no other data; readers need no ordering with it.
        self.state.ms.store(ms, Ordering::Relaxed);
    }

    /// Moves the time forward by `ms` (saturating at `u64::MAX`) and returns the new time.
    ///
    /// ```
    /// use monotonic_nonce::ManualClock;
    /// let clock = ManualClock::new(1_000);
    /// assert_eq!(clock.advance(5), 1_005);
    /// assert_eq!(ManualClock::new(u64::MAX).advance(1), u64::MAX);
    /// ```
    pub fn advance(&self, ms: u64) -> u64 {
        // Relaxed: as in `set`, the value is the only data.
        let prev = self
            .state
            .ms
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| Some(t.saturating_add(ms)))
            .unwrap_or_else(|t| t);
        prev.saturating_add(ms)
    }

    /// Makes every `now_ms()` fail with [`ClockError::Injected`] while `failing` is true.
    ///
    /// ```
    /// use monotonic_nonce::{Clock, ClockError, ManualClock};
    /// let clock = ManualClock::new(7);
    /// clock.set_failing(true);
    /// assert_eq!(clock.now_ms(), Err(ClockError::Injected));
    /// ```
    pub fn set_failing(&self, failing: bool) {
        // Relaxed: a fault flag for tests, independent of any other memory.
        self.state.failing.store(failing, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> Result<u64, ClockError> {
        // Relaxed: see `set_failing`.
        if self.state.failing.load(Ordering::Relaxed) {
            return Err(ClockError::Injected);
        }
        // Relaxed: see `set`.
        Ok(self.state.ms.load(Ordering::Relaxed))
    }
}

/// How many recent round trips [`OffsetClock`] keeps by default.
/// The default bound on an [`OffsetClock`] sample's offset: one hour.
const DEFAULT_MAX_OFFSET_MS: u64 = 3_600_000;
const OFFSET_SAMPLES: usize = 8;

/// A [`Clock`] that follows a server's clock: an inner clock plus a measured
/// offset. Each [`observe`](Self::observe) records one round trip; the offset
/// comes from the sample with the smallest round-trip time among the last few
/// (NTP's rule), so one slow response cannot drag the clock. Reads are
/// lock-free (one atomic load plus the inner clock); share it with a manager
/// through `Arc` (`Clock` is implemented for `Arc<C>`).
///
/// ```
/// use monotonic_nonce::{Clock, ManualClock, NonceManager, OffsetClock};
/// use std::sync::Arc;
/// let local = ManualClock::new(10_000);
/// let clock = Arc::new(OffsetClock::new(local.clone()));
/// // sent at 10 000, server said 12 050, received at 10 100: the server is ~2 s ahead
/// assert_eq!(clock.observe(10_000, 12_050, 10_100)?, 2_000);
/// let m = NonceManager::builder().clock(Arc::clone(&clock)).build()?;
/// assert_eq!(m.next()?, 12_000);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct OffsetClock<C: Clock> {
    inner: C,
    offset_ms: AtomicI64,
    window: usize,
    /// Samples whose offset is larger than this, either way, are refused.
    max_offset_ms: u64,
    /// `(round trip ms, offset ms)` of the last `window` samples, oldest first.
    samples: Mutex<VecDeque<(u64, i64)>>,
}

impl<C: Clock> OffsetClock<C> {
    /// Offset 0 until the first sample; keeps the last 8 samples.
    ///
    /// ```
    /// use monotonic_nonce::{OffsetClock, SystemClock};
    /// let clock = OffsetClock::new(SystemClock);
    /// assert_eq!(clock.offset_ms(), 0);
    /// ```
    pub fn new(inner: C) -> Self {
        Self::with_window(inner, OFFSET_SAMPLES)
    }

    /// As [`new`](Self::new), keeping the last `window` samples (at least 1).
    ///
    /// ```
    /// use monotonic_nonce::{ManualClock, OffsetClock};
    /// let clock = OffsetClock::with_window(ManualClock::new(0), 1); // only the latest sample counts
    /// clock.observe(0, 500, 10)?;
    /// assert_eq!(clock.observe(0, 900, 100)?, 850);
    /// # Ok::<(), monotonic_nonce::ClockError>(())
    /// ```
    pub fn with_window(inner: C, window: usize) -> Self {
        let window = window.max(1);
        Self {
            inner,
            offset_ms: AtomicI64::new(0),
            window,
            max_offset_ms: DEFAULT_MAX_OFFSET_MS,
            samples: Mutex::new(VecDeque::with_capacity(window)),
        }
    }

    /// Refuses samples whose offset is larger than `bound` either way
    /// (default one hour), so one implausible answer (a server time in µs, a
    /// proxy's stale `Date`) cannot move the clock, and with it the nonces,
    /// by more than `bound`. Raise it only for a host whose clock is known to
    /// be that far off.
    ///
    /// ```
    /// use monotonic_nonce::{ManualClock, OffsetClock};
    /// use std::time::Duration;
    /// let clock = OffsetClock::new(ManualClock::new(0)).with_max_offset(Duration::from_secs(10));
    /// assert!(clock.observe(0, 20_000, 10).is_err()); // 20 s off: refused
    /// assert_eq!(clock.offset_ms(), 0);
    /// ```
    pub fn with_max_offset(mut self, bound: std::time::Duration) -> Self {
        self.max_offset_ms = u64::try_from(bound.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// Records one round trip: the request left at `sent_ms` and the response,
    /// carrying the server's time `server_ms`, arrived at `received_ms` (both
    /// local times from the inner clock). Returns the offset now in use.
    ///
    /// # Errors
    /// [`ClockError::InvalidSample`] when `received_ms < sent_ms` or the offset
    /// is beyond the bound ([`with_max_offset`](Self::with_max_offset), one
    /// hour by default); the sample is ignored and nothing changes.
    ///
    /// ```
    /// use monotonic_nonce::{ManualClock, OffsetClock};
    /// let clock = OffsetClock::new(ManualClock::new(0));
    /// assert_eq!(clock.observe(1_000, 3_010, 1_020)?, 2_000); // fast: trusted
    /// assert_eq!(clock.observe(2_000, 9_000, 2_900)?, 2_000); // slow: ignored
    /// assert!(clock.observe(5, 5, 4).is_err()); // received before sent
    /// # Ok::<(), monotonic_nonce::ClockError>(())
    /// ```
    pub fn observe(&self, sent_ms: u64, server_ms: u64, received_ms: u64) -> Result<i64, ClockError> {
        let rtt = received_ms.checked_sub(sent_ms).ok_or(ClockError::InvalidSample)?;
        // the server read its clock, on average, half-way through the round trip
        let midpoint = i128::from(sent_ms) + i128::from(rtt / 2);
        let offset = i64::try_from(i128::from(server_ms) - midpoint).map_err(|_| ClockError::InvalidSample)?;
        if offset.unsigned_abs() > self.max_offset_ms {
            return Err(ClockError::InvalidSample);
        }
        let mut samples = self.samples.lock();
        if samples.len() == self.window {
            samples.pop_front();
        }
        samples.push_back((rtt, offset));
        // the first of the fastest round trips: the least room for asymmetric delay
        let best = samples.iter().min_by_key(|(rtt, _)| *rtt).map_or(offset, |&(_, o)| o);
        // Relaxed: readers need only this value, not the samples behind it.
        self.offset_ms.store(best, Ordering::Relaxed);
        Ok(best)
    }

    /// The offset in use, in ms (server minus local).
    ///
    /// ```
    /// use monotonic_nonce::{ManualClock, OffsetClock};
    /// let clock = OffsetClock::new(ManualClock::new(0));
    /// clock.observe(1_000, 900, 1_000)?; // the server is 100 ms behind
    /// assert_eq!(clock.offset_ms(), -100);
    /// # Ok::<(), monotonic_nonce::ClockError>(())
    /// ```
    pub fn offset_ms(&self) -> i64 {
        // Relaxed: one value; nothing else is published with it.
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// The inner clock.
    ///
    /// ```
    /// use monotonic_nonce::{Clock, ManualClock, OffsetClock};
    /// let clock = OffsetClock::new(ManualClock::new(7));
    /// assert_eq!(clock.inner().now_ms(), Ok(7));
    /// ```
    pub fn inner(&self) -> &C {
        &self.inner
    }
}

impl<C: Clock> Clock for OffsetClock<C> {
    fn now_ms(&self) -> Result<u64, ClockError> {
        let t = i128::from(self.inner.now_ms()?) + i128::from(self.offset_ms());
        if t < 0 {
            return Err(ClockError::BeforeUnixEpoch);
        }
        u64::try_from(t).map_err(|_| ClockError::OutOfRange)
    }
}
