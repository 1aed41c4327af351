//! THE formula, `max(now_ms * scale + offset, last + step)`, as one pure,
//! checked function ([`Params::span_after`]): the compare-exchange loop,
//! `reserve`, `advance_past`, the loom models and the property tests all
//! call it.

use crate::error::NonceError;
use crate::strategy::Params;

/// A run of `count` nonces `first, first + step, ..., last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) first: u64,
    pub(crate) last: u64,
}

impl Params {
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
    use crate::strategy::{Strategy, I64_MAX};

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
}
