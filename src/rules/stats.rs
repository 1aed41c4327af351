//! [`Stats`]: verdicts counted by reason, the same on both validators.

use crate::error::Rejection;

/// How many verdicts of each kind a validator gave, for a gateway to export.
///
/// ```
/// use monotonic_nonce::{NonceValidator, Policy};
/// let v = NonceValidator::new(Policy::Strict);
/// v.validate(&1u8, 5)?;
/// let _ = v.validate(&1u8, 5);
/// let s = v.stats();
/// assert_eq!((s.accepted, s.already_used), (1, 1));
/// # Ok::<(), monotonic_nonce::Rejection>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Stats {
    /// Nonces accepted and recorded.
    pub accepted: u64,
    /// [`Rejection::AlreadyUsed`].
    pub already_used: u64,
    /// [`Rejection::TooLow`].
    pub too_low: u64,
    /// [`Rejection::TooFarInFuture`].
    pub too_far_in_future: u64,
    /// [`Rejection::TooOld`].
    pub too_old: u64,
    /// [`Rejection::NotPositive`] and [`Rejection::AboveCeiling`] and [`Rejection::AccountTooLong`].
    pub invalid: u64,
    /// [`Rejection::ClockUnavailable`] and [`Rejection::Unavailable`].
    pub unavailable: u64,
}

impl Stats {
    /// Counts one verdict.
    pub(crate) fn count(&mut self, verdict: Result<(), &Rejection>) {
        let slot = match verdict {
            Ok(()) => &mut self.accepted,
            Err(Rejection::AlreadyUsed { .. }) => &mut self.already_used,
            Err(Rejection::TooLow { .. }) => &mut self.too_low,
            Err(Rejection::TooFarInFuture { .. }) => &mut self.too_far_in_future,
            Err(Rejection::TooOld { .. }) => &mut self.too_old,
            Err(Rejection::ClockUnavailable(_) | Rejection::Unavailable { .. }) => &mut self.unavailable,
            Err(_) => &mut self.invalid,
        };
        *slot = slot.saturating_add(1);
    }

    pub(crate) fn add(&mut self, o: &Stats) {
        self.accepted += o.accepted;
        self.already_used += o.already_used;
        self.too_low += o.too_low;
        self.too_far_in_future += o.too_far_in_future;
        self.too_old += o.too_old;
        self.invalid += o.invalid;
        self.unavailable += o.unavailable;
    }
}
