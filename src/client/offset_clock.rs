//! [`OffsetClock`]: the local clock corrected by the offset to a server's
//! clock, learned from round trips.

use crate::clock::Clock;
use crate::error::ClockError;
use crate::sync::{AtomicI64, Mutex, Ordering};
use std::collections::VecDeque;

/// How many recent round trips [`OffsetClock`] keeps by default.
const OFFSET_SAMPLES: usize = 8;
/// The default bound on an [`OffsetClock`] sample's offset: one hour.
const DEFAULT_MAX_OFFSET_MS: u64 = 3_600_000;

/// A [`Clock`] that follows a server's clock: an inner clock plus a measured
/// offset. Each [`observe`](Self::observe) records one round trip; the offset
/// comes from the sample with the smallest round-trip time among the last few
/// (NTP's rule), so one slow response cannot drag the clock. Reads are
/// lock-free (one atomic load plus the inner clock); share it with a manager
/// through `Arc` (`Clock` is implemented for `Arc<C>`).
///
/// ```
/// use monotonic_nonce::{Clock, NonceManager, clock::ManualClock, client::OffsetClock};
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
    /// use monotonic_nonce::{SystemClock, client::OffsetClock};
    /// let clock = OffsetClock::new(SystemClock);
    /// assert_eq!(clock.offset_ms(), 0);
    /// ```
    pub fn new(inner: C) -> Self {
        Self::with_window(inner, OFFSET_SAMPLES)
    }

    /// As [`new`](Self::new), keeping the last `window` samples (at least 1).
    ///
    /// ```
    /// use monotonic_nonce::{clock::ManualClock, client::OffsetClock};
    /// let clock = OffsetClock::with_window(ManualClock::new(0), 1); // only the latest sample counts
    /// clock.observe(0, 500, 10)?;
    /// assert_eq!(clock.observe(0, 900, 100)?, 850);
    /// # Ok::<(), monotonic_nonce::clock::ClockError>(())
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
    /// use monotonic_nonce::{clock::ManualClock, client::OffsetClock};
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
    /// use monotonic_nonce::{clock::ManualClock, client::OffsetClock};
    /// let clock = OffsetClock::new(ManualClock::new(0));
    /// assert_eq!(clock.observe(1_000, 3_010, 1_020)?, 2_000); // fast: trusted
    /// assert_eq!(clock.observe(2_000, 9_000, 2_900)?, 2_000); // slow: ignored
    /// assert!(clock.observe(5, 5, 4).is_err()); // received before sent
    /// # Ok::<(), monotonic_nonce::clock::ClockError>(())
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
    /// use monotonic_nonce::{clock::ManualClock, client::OffsetClock};
    /// let clock = OffsetClock::new(ManualClock::new(0));
    /// clock.observe(1_000, 900, 1_000)?; // the server is 100 ms behind
    /// assert_eq!(clock.offset_ms(), -100);
    /// # Ok::<(), monotonic_nonce::clock::ClockError>(())
    /// ```
    pub fn offset_ms(&self) -> i64 {
        // Relaxed: one value; nothing else is published with it.
        self.offset_ms.load(Ordering::Relaxed)
    }

    /// The inner clock.
    ///
    /// ```
    /// use monotonic_nonce::{Clock, clock::ManualClock, client::OffsetClock};
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
