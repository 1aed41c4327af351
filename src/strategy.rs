//! Strategies as data: every strategy is `max(now_ms * scale + offset, last + step)`,
//! computed by one pure, checked function ([`Params::span_after`]), and the
//! time scale that turns nonces into milliseconds and back ([`TimeScale`]).

use crate::error::{BuildError, NonceError};
use std::num::NonZeroU64;

/// The default ceiling: the largest value an exchange can parse into a signed 64-bit integer.
///
/// ```
/// assert_eq!(monotonic_nonce::I64_MAX, i64::MAX as u64);
/// ```
pub const I64_MAX: u64 = 9_223_372_036_854_775_807;

/// `2^53 - 1`: the largest integer a JSON client that parses numbers as doubles
/// (JavaScript, many Python and Go decoders) reads back exactly.
///
/// ```
/// assert_eq!(monotonic_nonce::JS_SAFE_MAX, (1u64 << 53) - 1);
/// ```
pub const JS_SAFE_MAX: u64 = 9_007_199_254_740_991;

/// How nonces relate to the clock.
///
/// | strategy | nonce | units per ms |
/// |---|---|---|
/// | `Millis` | `max(now_ms, last + 1)` | 1 |
/// | `Distributed { system_id, total_systems }` | `max(now_ms * total + id, last + total)` | `total_systems` |
/// | `Hft { counter_digits: d }` | `max(now_ms * 10^d, last + 1)` | `10^d` |
///
/// # Example
/// ```
/// use monotonic_nonce::Strategy;
/// assert_eq!(Strategy::Millis.units_per_ms(), 1);
/// assert_eq!(Strategy::Distributed { system_id: 2, total_systems: 4 }.units_per_ms(), 4);
/// assert_eq!(Strategy::Hft { counter_digits: 3 }.units_per_ms(), 1_000);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Strategy {
    /// Unix milliseconds; within one millisecond, `last + 1`.
    #[default]
    Millis,
    /// `total_systems` independent generators share one key: each owns the
    /// residue `system_id` modulo `total_systems`, so they can never collide,
    /// however often each one calls `next()` within a millisecond.
    Distributed {
        /// This generator's id, `0..total_systems`.
        system_id: u64,
        /// How many generators share the key.
        total_systems: u64,
    },
    /// `now_ms * 10^d + counter`; the counter restarts every millisecond and,
    /// when it would pass `10^d - 1`, rolls into the next millisecond's range.
    Hft {
        /// Digits of the per-millisecond counter, `1..=19` (and small enough
        /// that today's nonce fits under the ceiling).
        counter_digits: u32,
    },
}

impl Strategy {
    /// Nonce units per millisecond of clock time: `1`, `total_systems`, or
    /// `10^counter_digits`. A server divides a nonce by this to get its time.
    /// Saturates at `u64::MAX` for `counter_digits > 19` (which `build()` refuses).
    ///
    /// ```
    /// use monotonic_nonce::Strategy;
    /// let s = Strategy::Hft { counter_digits: 2 };
    /// assert_eq!(170_000_000_000_042 / s.units_per_ms(), 1_700_000_000_000);
    /// ```
    pub fn units_per_ms(&self) -> u64 {
        match *self {
            Strategy::Millis => 1,
            Strategy::Distributed { total_systems, .. } => total_systems,
            Strategy::Hft { counter_digits } => 10u64.checked_pow(counter_digits).unwrap_or(u64::MAX),
        }
    }

    /// The strategy's [`TimeScale`]: how a server turns its nonces into time.
    ///
    /// # Errors
    /// [`BuildError::InvalidConfig`] for an invalid strategy (as `build()` would refuse it).
    ///
    /// ```
    /// use monotonic_nonce::Strategy;
    /// let scale = Strategy::Hft { counter_digits: 3 }.time_scale()?;
    /// assert_eq!(scale.ms_of(1_700_000_000_000_042), 1_700_000_000_000);
    /// # Ok::<(), monotonic_nonce::BuildError>(())
    /// ```
    pub fn time_scale(&self) -> Result<TimeScale, BuildError> {
        self.params().map(|p| p.time)
    }

    /// The last millisecond (since the epoch) at which this strategy's
    /// clock-derived nonce is still at or below `ceiling`; `None` if the
    /// strategy is invalid or no millisecond fits.
    ///
    /// ```
    /// use monotonic_nonce::{Strategy, JS_SAFE_MAX};
    /// // ms since the epoch -> roughly the year 287 396
    /// assert_eq!(Strategy::Millis.horizon_ms(JS_SAFE_MAX), Some(JS_SAFE_MAX));
    /// let hft6 = Strategy::Hft { counter_digits: 6 }.horizon_ms(JS_SAFE_MAX).unwrap();
    /// assert_eq!(hft6, 9_007_199_254); // 1970-04-15: long past
    /// ```
    pub fn horizon_ms(&self, ceiling: u64) -> Option<u64> {
        let p = self.params().ok()?;
        Some(p.time.ms_of(ceiling.checked_sub(p.offset)?))
    }

    /// The strategy as `(scale, offset, step)`, validated.
    pub(crate) fn params(&self) -> Result<Params, BuildError> {
        match *self {
            Strategy::Millis => Ok(Params::new(1, 0, 1)),
            Strategy::Distributed { system_id, total_systems } => {
                if total_systems == 0 {
                    return Err(BuildError::config(
                        "total_systems",
                        "Distributed { total_systems: 0 } has no systems; use 1 or more",
                    ));
                }
                if system_id >= total_systems {
                    return Err(BuildError::config(
                        "system_id",
                        format!(
                            "Distributed {{ system_id: {system_id}, total_systems: {total_systems} }}: ids run 0..{total_systems}, so use a system_id below {total_systems}"
                        ),
                    ));
                }
                Ok(Params::new(total_systems, system_id, total_systems))
            }
            Strategy::Hft { counter_digits } => {
                if counter_digits == 0 {
                    return Err(BuildError::config(
                        "counter_digits",
                        "Hft { counter_digits: 0 } leaves no room for a counter; use 1..=6, or Strategy::Millis",
                    ));
                }
                let scale = 10u64.checked_pow(counter_digits).ok_or_else(|| {
                    BuildError::config(
                        "counter_digits",
                        format!("Hft {{ counter_digits: {counter_digits} }}: 10^{counter_digits} does not fit in a u64; use at most 6"),
                    )
                })?;
                Ok(Params::new(scale, 0, 1))
            }
        }
    }
}

/// How nonces relate to time: a nonce `n` stands for millisecond
/// `n / units_per_ms`, and millisecond `t` owns the nonces
/// `t * units_per_ms ..= (t + 1) * units_per_ms - 1`. The manager, the
/// strategy checks and both validators convert through this one type.
///
/// ```
/// use monotonic_nonce::{Strategy, TimeScale};
/// let s = TimeScale::new(1_000).unwrap();
/// assert_eq!(s.ms_of(1_704_067_200_000_999), 1_704_067_200_000);
/// assert_eq!(s.first_nonce_at(5), Some(5_000));
/// assert_eq!(s.last_nonce_at(5), 5_999);
/// assert_eq!(Strategy::Millis.time_scale()?, TimeScale::MILLIS);
/// # Ok::<(), monotonic_nonce::BuildError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TimeScale {
    units_per_ms: NonZeroU64,
}

impl Default for TimeScale {
    fn default() -> Self {
        Self::MILLIS
    }
}

impl TimeScale {
    /// One nonce unit per millisecond (`Strategy::Millis`).
    pub const MILLIS: TimeScale = TimeScale { units_per_ms: NonZeroU64::MIN };

    /// `units_per_ms` nonce units per millisecond; `None` for 0.
    ///
    /// ```
    /// assert!(monotonic_nonce::TimeScale::new(0).is_none());
    /// ```
    pub const fn new(units_per_ms: u64) -> Option<Self> {
        match NonZeroU64::new(units_per_ms) {
            Some(units_per_ms) => Some(Self { units_per_ms }),
            None => None,
        }
    }

    /// Nonce units per millisecond.
    ///
    /// ```
    /// assert_eq!(monotonic_nonce::TimeScale::MILLIS.units_per_ms(), 1);
    /// ```
    pub const fn units_per_ms(&self) -> u64 {
        self.units_per_ms.get()
    }

    /// The millisecond a nonce stands for.
    ///
    /// ```
    /// assert_eq!(monotonic_nonce::TimeScale::new(4).unwrap().ms_of(4_003), 1_000);
    /// ```
    #[inline]
    pub const fn ms_of(&self, nonce: u64) -> u64 {
        nonce / self.units_per_ms.get()
    }

    /// The first nonce standing for millisecond `ms`; `None` beyond `u64`.
    ///
    /// ```
    /// assert_eq!(monotonic_nonce::TimeScale::new(10).unwrap().first_nonce_at(7), Some(70));
    /// ```
    #[inline]
    pub const fn first_nonce_at(&self, ms: u64) -> Option<u64> {
        ms.checked_mul(self.units_per_ms.get())
    }

    /// The last nonce standing for millisecond `ms`, saturating at `u64::MAX`.
    ///
    /// ```
    /// assert_eq!(monotonic_nonce::TimeScale::new(10).unwrap().last_nonce_at(7), 79);
    /// assert_eq!(monotonic_nonce::TimeScale::new(10).unwrap().last_nonce_at(u64::MAX), u64::MAX);
    /// ```
    #[inline]
    pub const fn last_nonce_at(&self, ms: u64) -> u64 {
        match ms.checked_add(1) {
            Some(next) => match next.checked_mul(self.units_per_ms.get()) {
                Some(first_of_next) => first_of_next - 1, // >= 1: both factors are
                None => u64::MAX,
            },
            None => u64::MAX,
        }
    }
}

/// The strategy reduced to the three numbers of the one formula; `time.units_per_ms()` is the scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Params {
    pub(crate) time: TimeScale,
    pub(crate) offset: u64,
    pub(crate) step: u64,
}

/// A run of `count` nonces `first, first + step, ..., last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) first: u64,
    pub(crate) last: u64,
}

impl Params {
    /// `Strategy::Millis`: the formula with every parameter a constant the
    /// compiler folds away (the manager's common path is monomorphized on it).
    pub(crate) const MILLIS: Params = Params { time: TimeScale::MILLIS, offset: 0, step: 1 };

    /// `scale` is at least 1 for every valid strategy (the callers check it).
    pub(crate) fn new(scale: u64, offset: u64, step: u64) -> Self {
        Self { time: TimeScale::new(scale).unwrap_or(TimeScale::MILLIS), offset, step }
    }

    /// The clock term `now_ms * scale + offset`, or `None` if it overflows a `u64`.
    #[inline]
    pub(crate) fn clock_term(&self, now_ms: u64) -> Option<u64> {
        self.time.first_nonce_at(now_ms)?.checked_add(self.offset)
    }

    /// The smallest value above `last` in this strategy's residue class
    /// (`≡ offset mod step`): `last + step` when `last` is in the class.
    #[inline]
    pub(crate) fn after(&self, last: u64) -> Option<u64> {
        if self.step == 1 {
            // Millis and Hft: every value is in the class; skip the division.
            return last.checked_add(1);
        }
        let r = last % self.step;
        let base = last - r; // r <= last: cannot underflow
        if r < self.offset {
            base.checked_add(self.offset)
        } else {
            base.checked_add(self.step)?.checked_add(self.offset)
        }
    }

    /// THE formula: the `count` nonces that follow `last` at time `now_ms`
    /// (`None` when the clock failed: carry on from `last`), all at or below
    /// `ceiling`. Every step is checked; any overflow is `Overflow { ceiling }`.
    #[inline]
    pub(crate) fn span_after(
        &self,
        last: u64,
        now_ms: Option<u64>,
        count: u64,
        ceiling: u64,
    ) -> Result<Span, NonceError> {
        self.span(last, now_ms, count).filter(|span| span.last <= ceiling).ok_or(NonceError::Overflow { ceiling })
    }

    /// [`span_after`](Self::span_after) without the ceiling; `None` on any `u64` overflow.
    #[inline]
    fn span(&self, last: u64, now_ms: Option<u64>, count: u64) -> Option<Span> {
        let by_last = self.after(last)?;
        let first = match now_ms {
            Some(now) => by_last.max(self.clock_term(now)?),
            None => by_last,
        };
        let end = if count == 1 { first } else { first.checked_add(count.checked_sub(1)?.checked_mul(self.step)?)? };
        Some(Span { first, last: end })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_keeps_the_distributed_residue() {
        let p = Strategy::Distributed { system_id: 2, total_systems: 5 }.params().unwrap();
        for last in 0..40u64 {
            let v = p.after(last).unwrap();
            assert!(v > last && v % 5 == 2 && v - last <= 5, "last {last} -> {v}");
        }
        assert_eq!(p.after(u64::MAX - 1), None);
    }

    #[test]
    fn span_after_takes_the_larger_term() {
        let p = Strategy::Millis.params().unwrap();
        assert_eq!(p.span_after(10, Some(100), 1, I64_MAX).unwrap(), Span { first: 100, last: 100 });
        assert_eq!(p.span_after(500, Some(100), 3, I64_MAX).unwrap(), Span { first: 501, last: 503 });
        assert_eq!(p.span_after(500, None, 1, I64_MAX).unwrap(), Span { first: 501, last: 501 });
        assert_eq!(p.span_after(I64_MAX - 1, None, 2, I64_MAX), Err(NonceError::Overflow { ceiling: I64_MAX }));
        assert_eq!(p.span_after(0, Some(u64::MAX), 1, u64::MAX).unwrap().first, u64::MAX);
        // count u64::MAX from 1 ends exactly at u64::MAX; from 2 it overflows.
        assert_eq!(p.span_after(0, Some(1), u64::MAX, u64::MAX).unwrap(), Span { first: 1, last: u64::MAX });
        assert_eq!(p.span_after(0, Some(2), u64::MAX, u64::MAX), Err(NonceError::Overflow { ceiling: u64::MAX }));
    }

    #[test]
    fn units_per_ms_saturates_for_invalid_digits() {
        assert_eq!(Strategy::Hft { counter_digits: 19 }.units_per_ms(), 10_000_000_000_000_000_000);
        assert_eq!(Strategy::Hft { counter_digits: 20 }.units_per_ms(), u64::MAX);
    }
}
