//! Where time comes from. Nothing else in the crate reads the system clock.

pub use crate::error::ClockError;
use crate::sync::{Arc, AtomicBool, AtomicU64, Ordering};
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
/// use monotonic_nonce::{Clock, clock::ClockError};
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
/// # Ok::<(), monotonic_nonce::clock::ClockError>(())
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
/// use monotonic_nonce::{Clock, SystemClock, clock::CoarseClock};
/// let coarse = CoarseClock.now_ms()?;
/// let exact = SystemClock.now_ms()?;
/// assert!(exact + 1_000 > coarse && coarse + 1_000 > exact);
/// # Ok::<(), monotonic_nonce::clock::ClockError>(())
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
/// use monotonic_nonce::{Clock, clock::ManualClock};
/// let clock = ManualClock::new(1_000);
/// let handle = clock.clone();
/// handle.advance(5);
/// assert_eq!(clock.now_ms()?, 1_005);
/// clock.set(10); // time may also go backwards
/// assert_eq!(handle.now_ms()?, 10);
/// # Ok::<(), monotonic_nonce::clock::ClockError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    state: Arc<ManualState>,
}

impl ManualClock {
    /// A clock reading `ms` until moved.
    ///
    /// ```
    /// use monotonic_nonce::{Clock, clock::ManualClock};
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
    /// use monotonic_nonce::{Clock, clock::ManualClock};
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
    /// use monotonic_nonce::clock::ManualClock;
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
    /// use monotonic_nonce::{Clock, clock::{ClockError, ManualClock}};
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
