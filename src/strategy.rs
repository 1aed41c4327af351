//! Strategies as data, shared by both sides: every strategy is
//! `max(now_ms * scale + offset, last + step)` (the generator computes it in
//! `client/formula.rs`), and the time scale that turns nonces into
//! milliseconds and back ([`TimeScale`]), which the validators use too.

use crate::error::BuildError;
use std::num::NonZeroU64;

/// The default ceiling: the largest value an exchange can parse into a signed 64-bit integer.
///
/// ```
/// assert_eq!(monotonic_nonce::strategy::I64_MAX, i64::MAX as u64);
/// ```
pub const I64_MAX: u64 = 9_223_372_036_854_775_807;

/// `2^53 - 1`: the largest integer a JSON client that parses numbers as doubles
/// (JavaScript, many Python and Go decoders) reads back exactly.
///
/// ```
/// assert_eq!(monotonic_nonce::strategy::JS_SAFE_MAX, (1u64 << 53) - 1);
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
    /// use monotonic_nonce::{Strategy, strategy::JS_SAFE_MAX};
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
/// use monotonic_nonce::{Strategy, strategy::TimeScale};
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
    /// assert!(monotonic_nonce::strategy::TimeScale::new(0).is_none());
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
    /// assert_eq!(monotonic_nonce::strategy::TimeScale::MILLIS.units_per_ms(), 1);
    /// ```
    pub const fn units_per_ms(&self) -> u64 {
        self.units_per_ms.get()
    }

    /// The millisecond a nonce stands for.
    ///
    /// ```
    /// assert_eq!(monotonic_nonce::strategy::TimeScale::new(4).unwrap().ms_of(4_003), 1_000);
    /// ```
    #[inline]
    pub const fn ms_of(&self, nonce: u64) -> u64 {
        nonce / self.units_per_ms.get()
    }

    /// The first nonce standing for millisecond `ms`; `None` beyond `u64`.
    ///
    /// ```
    /// assert_eq!(monotonic_nonce::strategy::TimeScale::new(10).unwrap().first_nonce_at(7), Some(70));
    /// ```
    #[inline]
    pub const fn first_nonce_at(&self, ms: u64) -> Option<u64> {
        ms.checked_mul(self.units_per_ms.get())
    }

    /// The last nonce standing for millisecond `ms`, saturating at `u64::MAX`.
    ///
    /// ```
    /// assert_eq!(monotonic_nonce::strategy::TimeScale::new(10).unwrap().last_nonce_at(7), 79);
    /// assert_eq!(monotonic_nonce::strategy::TimeScale::new(10).unwrap().last_nonce_at(u64::MAX), u64::MAX);
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

impl Params {
    /// `Strategy::Millis`: the formula with every parameter a constant the
    /// compiler folds away (the manager's common path is monomorphized on it).
    pub(crate) const MILLIS: Params = Params { time: TimeScale::MILLIS, offset: 0, step: 1 };

    /// `scale` is at least 1 for every valid strategy (the callers check it).
    pub(crate) fn new(scale: u64, offset: u64, step: u64) -> Self {
        Self { time: TimeScale::new(scale).unwrap_or(TimeScale::MILLIS), offset, step }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_per_ms_saturates_for_invalid_digits() {
        assert_eq!(Strategy::Hft { counter_digits: 19 }.units_per_ms(), 10_000_000_000_000_000_000);
        assert_eq!(Strategy::Hft { counter_digits: 20 }.units_per_ms(), u64::MAX);
    }
}
