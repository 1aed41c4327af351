//! The checks that need no account state: positive, ceiling, time bounds.
//! Pure functions of the nonce and the server's clock reading, shared by the
//! in-memory and the Redis validator so both refuse exactly the same nonces.

use crate::error::{BuildError, ClockError, Rejection};
use crate::strategy::{Strategy, TimeScale, I64_MAX};
use std::time::Duration;

/// The checks a validator makes before it looks at an account: the time
/// scale of the clients' nonces, how far ahead of and behind the server's
/// clock a nonce may stand, and the highest nonce accepted. Both validator
/// builders take one ([`NonceValidatorBuilder::time_bounds`](crate::validator::NonceValidatorBuilder::time_bounds),
/// `RedisValidatorBuilder::time_bounds`), so several gateways can share one
/// value; each setting is also a method of the builders. Checked at `build()`.
///
/// ```
/// use monotonic_nonce::rules::TimeBounds;
/// use monotonic_nonce::{NonceValidator, Policy, Strategy};
/// use std::time::Duration;
/// let bounds = TimeBounds::new()
///     .strategy(Strategy::Hft { counter_digits: 3 })
///     .max_future(Duration::from_secs(5))
///     .max_past(Duration::from_secs(60));
/// let v = NonceValidator::<u64>::builder(Policy::Strict).time_bounds(bounds).build()?;
/// # drop(v);
/// # Ok::<(), monotonic_nonce::BuildError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct TimeBounds {
    scale: Result<TimeScale, BuildError>,
    max_past: Option<Duration>,
    max_future: Option<Duration>,
    ceiling: u64,
}

impl Default for TimeBounds {
    fn default() -> Self {
        Self::new()
    }
}

impl TimeBounds {
    /// `Strategy::Millis`, no time bounds, the ceiling [`I64_MAX`](crate::strategy::I64_MAX).
    ///
    /// ```
    /// let b = monotonic_nonce::rules::TimeBounds::new();
    /// assert_eq!(b.max_future_set(), None);
    /// ```
    pub fn new() -> Self {
        Self { scale: Ok(TimeScale::MILLIS), max_past: None, max_future: None, ceiling: I64_MAX }
    }

    /// The strategy the clients sign with: its time scale turns a nonce into
    /// the time the bounds check. An invalid strategy is refused at `build()`.
    ///
    /// ```
    /// use monotonic_nonce::{Strategy, rules::TimeBounds};
    /// let b = TimeBounds::new().strategy(Strategy::Hft { counter_digits: 3 });
    /// # drop(b);
    /// ```
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.scale = strategy.time_scale();
        self
    }

    /// The time scale directly.
    ///
    /// ```
    /// use monotonic_nonce::{rules::TimeBounds, strategy::TimeScale};
    /// let b = TimeBounds::new().time_scale(TimeScale::MILLIS);
    /// # drop(b);
    /// ```
    pub fn time_scale(mut self, scale: TimeScale) -> Self {
        self.scale = Ok(scale);
        self
    }

    /// Refuse nonces standing for a time more than `d` behind the clock.
    ///
    /// ```
    /// let b = monotonic_nonce::rules::TimeBounds::new().max_past(std::time::Duration::from_secs(60));
    /// # drop(b);
    /// ```
    pub fn max_past(mut self, d: Duration) -> Self {
        self.max_past = Some(d);
        self
    }

    /// Refuse nonces standing for a time more than `d` ahead of the clock:
    /// what stops one huge nonce from locking an account, and what makes the
    /// restart guards possible.
    ///
    /// ```
    /// use std::time::Duration;
    /// let b = monotonic_nonce::rules::TimeBounds::new().max_future(Duration::from_secs(5));
    /// assert_eq!(b.max_future_set(), Some(Duration::from_secs(5)));
    /// ```
    pub fn max_future(mut self, d: Duration) -> Self {
        self.max_future = Some(d);
        self
    }

    /// The highest nonce accepted (default [`I64_MAX`](crate::strategy::I64_MAX)).
    ///
    /// ```
    /// let b = monotonic_nonce::rules::TimeBounds::new().ceiling(monotonic_nonce::strategy::JS_SAFE_MAX);
    /// # drop(b);
    /// ```
    pub fn ceiling(mut self, ceiling: u64) -> Self {
        self.ceiling = ceiling;
        self
    }

    /// The future bound, when set.
    ///
    /// ```
    /// assert_eq!(monotonic_nonce::rules::TimeBounds::new().max_future_set(), None);
    /// ```
    pub fn max_future_set(&self) -> Option<Duration> {
        self.max_future
    }

    /// The limits these settings describe, checked.
    pub(crate) fn limits(&self) -> Result<Limits, BuildError> {
        Limits::from_settings(self.scale.clone(), self.max_past, self.max_future, self.ceiling)
    }
}

/// The time bounds, in milliseconds (the scale that turns a nonce into time is the [`Limits`]').
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    pub(crate) max_past_ms: Option<u64>,
    pub(crate) max_future_ms: Option<u64>,
}

/// Everything a validator checks before it looks at an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) ceiling: u64,
    /// The strategy's time scale, kept even without bounds: saved state records it.
    pub(crate) scale: TimeScale,
    pub(crate) bounds: Option<Bounds>,
}

impl Limits {
    /// The limits a builder's settings describe, checked: a zero ceiling and
    /// durations beyond u64 milliseconds are refused, naming the setting.
    pub(crate) fn from_settings(
        scale: Result<TimeScale, BuildError>,
        max_past: Option<Duration>,
        max_future: Option<Duration>,
        ceiling: u64,
    ) -> Result<Self, BuildError> {
        let scale = scale?;
        if ceiling == 0 {
            return Err(BuildError::config("ceiling", "0 accepts no nonce; use I64_MAX or JS_SAFE_MAX"));
        }
        let bounds = if max_past.is_some() || max_future.is_some() {
            Some(Bounds {
                max_past_ms: max_past.map(|d| BuildError::duration_ms("max_past", d)).transpose()?,
                max_future_ms: max_future.map(|d| BuildError::duration_ms("max_future", d)).transpose()?,
            })
        } else {
            None
        };
        Ok(Self { ceiling, scale, bounds })
    }

    /// The verdict for `nonce` at the clock reading `now` (read only when
    /// time bounds are set); a failed reading fails closed.
    #[inline]
    pub(crate) fn precheck(&self, nonce: u64, now: impl FnOnce() -> Result<u64, ClockError>) -> Result<(), Rejection> {
        // one comparison for both: `nonce - 1` wraps to u64::MAX for 0, and is at
        // least the ceiling exactly when `nonce` is above it
        if nonce.wrapping_sub(1) >= self.ceiling {
            return Err(invalid(nonce, self.ceiling));
        }
        let Some(b) = self.bounds else { return Ok(()) };
        let now = now().map_err(Rejection::ClockUnavailable)?;
        let t = self.scale.ms_of(nonce);
        if let Some(limit) = b.max_future_ms.and_then(|f| now.checked_add(f)) {
            if t > limit {
                // the largest nonce standing for `limit`, for the client's information
                let max_nonce = self.scale.last_nonce_at(limit).min(self.ceiling);
                return Err(Rejection::TooFarInFuture { max_nonce, attempted_nonce: nonce });
            }
        }
        if let Some(past) = b.max_past_ms {
            let oldest = now.saturating_sub(past);
            if t < oldest {
                let min_nonce = self.scale.first_nonce_at(oldest).unwrap_or(u64::MAX);
                return Err(Rejection::TooOld { min_nonce, attempted_nonce: nonce });
            }
        }
        Ok(())
    }

    /// The largest nonce an honest client can send at `now`: the one standing
    /// for `now + max_future`, capped at the ceiling. `None` without a future bound.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn reachable(&self, now: u64) -> Option<u64> {
        self.reachable_within(now, self.max_future_ms()?)
    }

    /// The largest nonce standing for `now + future_ms`, capped at the ceiling:
    /// what a validator with that future bound could have accepted by `now`.
    pub(crate) fn reachable_within(&self, now: u64, future_ms: u64) -> Option<u64> {
        Some(self.scale.last_nonce_at(now.saturating_add(future_ms)).min(self.ceiling))
    }

    /// The future bound in ms, when set.
    pub(crate) fn max_future_ms(&self) -> Option<u64> {
        self.bounds?.max_future_ms
    }
}

/// `NotPositive` or `AboveCeiling`: out of line, off the hot path.
#[cold]
#[inline(never)]
fn invalid(nonce: u64, ceiling: u64) -> Rejection {
    if nonce == 0 {
        Rejection::NotPositive
    } else {
        Rejection::AboveCeiling { ceiling, attempted_nonce: nonce }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(past: Option<u64>, future: Option<u64>) -> Limits {
        Limits {
            ceiling: 1 << 62,
            scale: TimeScale::new(1_000).unwrap(),
            bounds: Some(Bounds { max_past_ms: past, max_future_ms: future }),
        }
    }

    #[test]
    fn future_bound_counts_every_nonce_of_the_last_millisecond() {
        let l = limits(None, Some(5));
        assert_eq!(l.precheck(105_999, || Ok(100)), Ok(()));
        assert_eq!(
            l.precheck(106_000, || Ok(100)),
            Err(Rejection::TooFarInFuture { max_nonce: 105_999, attempted_nonce: 106_000 })
        );
        assert_eq!(l.reachable(100), Some(105_999));
    }

    #[test]
    fn past_bound_and_failing_clock() {
        let l = limits(Some(10), None);
        assert_eq!(
            l.precheck(89_999, || Ok(100)),
            Err(Rejection::TooOld { min_nonce: 90_000, attempted_nonce: 89_999 })
        );
        assert_eq!(l.precheck(90_000, || Ok(100)), Ok(()));
        assert_eq!(
            l.precheck(90_000, || Err(ClockError::Injected)),
            Err(Rejection::ClockUnavailable(ClockError::Injected))
        );
        assert_eq!(l.reachable(100), None);
    }
}
