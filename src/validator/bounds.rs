//! The checks that need no account state: positive, ceiling, time bounds.
//! Pure functions of the nonce and the server's clock reading, shared by the
//! in-memory and the Redis validator so both refuse exactly the same nonces.

use crate::error::{BuildError, ClockError, Rejection};
use crate::strategy::TimeScale;
use std::time::Duration;

/// The time bounds, in milliseconds, and the scale that turns a nonce into time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeBounds {
    pub(crate) scale: TimeScale,
    pub(crate) max_past_ms: Option<u64>,
    pub(crate) max_future_ms: Option<u64>,
}

/// Everything a validator checks before it looks at an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) ceiling: u64,
    /// The strategy's time scale, kept even without bounds: saved state records it.
    pub(crate) scale: TimeScale,
    pub(crate) bounds: Option<TimeBounds>,
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
            Some(TimeBounds {
                scale,
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
        if nonce == 0 {
            return Err(Rejection::NotPositive);
        }
        if nonce > self.ceiling {
            return Err(Rejection::AboveCeiling { ceiling: self.ceiling, attempted_nonce: nonce });
        }
        let Some(b) = self.bounds else { return Ok(()) };
        let now = now().map_err(Rejection::ClockUnavailable)?;
        let t = b.scale.ms_of(nonce);
        if let Some(limit) = b.max_future_ms.and_then(|f| now.checked_add(f)) {
            if t > limit {
                // the largest nonce standing for `limit`, for the client's information
                let max_nonce = b.scale.last_nonce_at(limit).min(self.ceiling);
                return Err(Rejection::TooFarInFuture { max_nonce, attempted_nonce: nonce });
            }
        }
        if let Some(past) = b.max_past_ms {
            let oldest = now.saturating_sub(past);
            if t < oldest {
                let min_nonce = b.scale.first_nonce_at(oldest).unwrap_or(u64::MAX);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(past: Option<u64>, future: Option<u64>) -> Limits {
        Limits {
            ceiling: 1 << 62,
            scale: TimeScale::new(1_000).unwrap(),
            bounds: Some(TimeBounds {
                scale: TimeScale::new(1_000).unwrap(),
                max_past_ms: past,
                max_future_ms: future,
            }),
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
