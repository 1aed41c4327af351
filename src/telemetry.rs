//! The metrics the crate emits through the [`metrics`](https://docs.rs/metrics)
//! facade (feature `metrics`). The crate links the facade only: the
//! application installs a recorder (Prometheus, StatsD, ...), and without one
//! every emission is a no-op. Handles are registered when a validator or an
//! issuer is built, so install the recorder before building them.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `nonce_validations_total` | counter | `backend` (`memory`, `redis`), `result` (`accepted`, `rejected`), `reason` | every `validate` verdict; `reason` is `none` for an acceptance, else one of [`REASONS`] (`unavailable`: the store could not answer) |
//! | `nonce_checks_total` | counter | the same | every `check` verdict (the gateway's pre-check), which records nothing |
//! | `nonce_accounts_tracked` | gauge | `backend` | accounts the in-memory validator tracks (rises on a new account, falls on an eviction) |
//! | `nonce_eviction_floor` | gauge | `backend` | the in-memory validator's eviction floor |
//! | `nonce_guard_floor` | gauge | `backend` | the Redis restart guard's floor |
//! | `nonce_store_restarts_total` | counter | `backend` | restarts, failovers and lost state the Redis guard saw |
//! | `nonce_gateway_refusals_total` | counter | `reason` (`bad_request`, `unverified`) | requests the gateway layer refused before asking the validator |
//! | `nonce_client_clock_faults_total` | counter | | clock reads that failed in a `NonceManager` |
//! | `nonce_client_lead_ms` | gauge | | how far (ms) a `NonceManager` with `max_lead` ran ahead of its clock, set whenever the lead passes half of `max_lead` |
//! | `nonce_issuer_created_total` | counter | | nonces a `NonceIssuer` issued |
//! | `nonce_issuer_redeemed_total` | counter | `result` (`valid`, `invalid`) | nonces presented to a `NonceIssuer`, by verdict |
//! | `nonce_issuer_redeemed_age_seconds` | histogram | | the age of a nonce when it was redeemed |
//!
//! The names are constants here, for dashboards and tests.

/// Every `validate` verdict (counter).
pub const VALIDATIONS: &str = "nonce_validations_total";
/// Every `check` verdict (counter).
pub const CHECKS: &str = "nonce_checks_total";
/// Accounts the in-memory validator tracks (gauge).
pub const ACCOUNTS_TRACKED: &str = "nonce_accounts_tracked";
/// The in-memory validator's eviction floor (gauge).
pub const EVICTION_FLOOR: &str = "nonce_eviction_floor";
/// The Redis restart guard's floor (gauge).
pub const GUARD_FLOOR: &str = "nonce_guard_floor";
/// Restarts, failovers and lost state the Redis guard saw (counter).
pub const STORE_RESTARTS: &str = "nonce_store_restarts_total";
/// Requests the gateway layer refused before asking the validator (counter).
pub const GATEWAY_REFUSALS: &str = "nonce_gateway_refusals_total";
/// Failed clock reads in a `NonceManager` (counter).
pub const CLIENT_CLOCK_FAULTS: &str = "nonce_client_clock_faults_total";
/// The client's lead over its clock (gauge).
pub const CLIENT_LEAD: &str = "nonce_client_lead_ms";
/// Nonces a `NonceIssuer` issued (counter).
pub const ISSUER_CREATED: &str = "nonce_issuer_created_total";
/// Nonces presented to a `NonceIssuer`, by verdict (counter).
pub const ISSUER_REDEEMED: &str = "nonce_issuer_redeemed_total";
/// The age of a nonce when it was redeemed (histogram, seconds).
pub const ISSUER_REDEEMED_AGE: &str = "nonce_issuer_redeemed_age_seconds";

/// The `reason` label of a rejected verdict, one per [`Rejection`] variant.
pub const REASONS: [&str; 9] = [
    "already_used",
    "too_low",
    "too_far_in_future",
    "too_old",
    "not_positive",
    "above_ceiling",
    "clock_unavailable",
    "unavailable",
    "account_too_long",
];

use crate::error::Rejection;

/// The index of `verdict` in the validations' handles: 0 for an acceptance,
/// `1 + i` for [`REASONS`]`[i]`.
fn slot(verdict: Result<(), &Rejection>) -> usize {
    match verdict {
        Ok(()) => 0,
        Err(Rejection::AlreadyUsed { .. }) => 1,
        Err(Rejection::TooLow { .. }) => 2,
        Err(Rejection::TooFarInFuture { .. }) => 3,
        Err(Rejection::TooOld { .. }) => 4,
        Err(Rejection::NotPositive) => 5,
        Err(Rejection::AboveCeiling { .. }) => 6,
        Err(Rejection::ClockUnavailable(_)) => 7,
        Err(Rejection::Unavailable { .. }) => 8,
        Err(Rejection::AccountTooLong { .. }) => 9,
    }
}

#[cfg(feature = "metrics")]
mod emit {
    use super::*;
    use metrics::{counter, gauge, Counter, Gauge};

    /// A validator's handles, registered once when it is built.
    #[derive(Debug)]
    pub(crate) struct Verdicts {
        validations: [Counter; REASONS.len() + 1],
        checks: [Counter; REASONS.len() + 1],
        tracked: Gauge,
        floor: Gauge,
        restarts: Counter,
    }

    impl Verdicts {
        pub(crate) fn new(backend: &'static str) -> Self {
            let verdicts = |name: &'static str| {
                std::array::from_fn(|i| match i {
                    0 => counter!(name, "backend" => backend, "result" => "accepted", "reason" => "none"),
                    _ => counter!(name, "backend" => backend, "result" => "rejected", "reason" => REASONS[i - 1]),
                })
            };
            let redis = backend == "redis";
            Self {
                validations: verdicts(VALIDATIONS),
                checks: verdicts(CHECKS),
                // the in-memory validator's own gauges, and the Redis guard's
                tracked: if redis { Gauge::noop() } else { gauge!(ACCOUNTS_TRACKED, "backend" => backend) },
                floor: gauge!(if redis { GUARD_FLOOR } else { EVICTION_FLOOR }, "backend" => backend),
                restarts: if redis { counter!(STORE_RESTARTS, "backend" => backend) } else { Counter::noop() },
            }
        }
        #[inline]
        pub(crate) fn verdict(&self, verdict: Result<(), &Rejection>) {
            self.validations[slot(verdict)].increment(1);
        }
        #[inline]
        pub(crate) fn check(&self, verdict: Result<(), &Rejection>) {
            self.checks[slot(verdict)].increment(1);
        }
        pub(crate) fn tracked(&self, delta: f64) {
            self.tracked.increment(delta);
        }
        pub(crate) fn floor(&self, floor: u64) {
            // a gauge is an f64: exact up to 2^53, which millisecond floors are
            self.floor.set(floor as f64);
        }
        #[cfg_attr(not(feature = "redis"), allow(dead_code))] // the Redis guard's
        pub(crate) fn restart(&self) {
            self.restarts.increment(1);
        }
    }

    #[cfg_attr(not(feature = "tower"), allow(dead_code))] // the gateway layer's
    pub(crate) fn gateway_refused(unverified: bool) {
        counter!(GATEWAY_REFUSALS, "reason" => if unverified { "unverified" } else { "bad_request" }).increment(1);
    }

    pub(crate) fn client_clock_fault() {
        counter!(CLIENT_CLOCK_FAULTS).increment(1);
    }

    pub(crate) fn client_lead(lead: u64) {
        gauge!(CLIENT_LEAD).set(lead as f64);
    }

    /// An issuer's handles, registered once when it is built.
    #[derive(Debug)]
    pub(crate) struct Issuer {
        created: Counter,
        valid: Counter,
        invalid: Counter,
        age: metrics::Histogram,
    }

    impl Issuer {
        pub(crate) fn new() -> Self {
            Self {
                created: counter!(ISSUER_CREATED),
                valid: counter!(ISSUER_REDEEMED, "result" => "valid"),
                invalid: counter!(ISSUER_REDEEMED, "result" => "invalid"),
                age: metrics::histogram!(ISSUER_REDEEMED_AGE),
            }
        }
        #[inline]
        pub(crate) fn created(&self) {
            self.created.increment(1);
        }
        #[inline]
        pub(crate) fn redeemed(&self, valid: bool, age_ms: Option<u64>) {
            if valid { &self.valid } else { &self.invalid }.increment(1);
            if let Some(ms) = age_ms {
                self.age.record(ms as f64 / 1000.0);
            }
        }
    }
}

#[cfg(not(feature = "metrics"))]
mod emit {
    //! Without the feature: the same calls, empty.
    use super::*;

    #[derive(Debug)]
    pub(crate) struct Verdicts;

    impl Verdicts {
        pub(crate) fn new(_: &'static str) -> Self {
            Verdicts
        }
        #[inline(always)]
        pub(crate) fn verdict(&self, verdict: Result<(), &Rejection>) {
            let _ = slot(verdict);
        }
        #[inline(always)]
        pub(crate) fn check(&self, _: Result<(), &Rejection>) {}
        #[inline(always)]
        pub(crate) fn tracked(&self, _: f64) {}
        #[inline(always)]
        pub(crate) fn floor(&self, _: u64) {}
        #[inline(always)]
        #[cfg_attr(not(feature = "redis"), allow(dead_code))] // the Redis guard's
        pub(crate) fn restart(&self) {}
    }

    #[inline(always)]
    #[cfg_attr(not(feature = "tower"), allow(dead_code))] // the gateway layer's
    pub(crate) fn gateway_refused(_: bool) {}
    #[inline(always)]
    pub(crate) fn client_clock_fault() {}
    #[inline(always)]
    pub(crate) fn client_lead(_: u64) {}

    #[derive(Debug)]
    pub(crate) struct Issuer;

    impl Issuer {
        pub(crate) fn new() -> Self {
            Issuer
        }
        #[inline(always)]
        pub(crate) fn created(&self) {}
        #[inline(always)]
        pub(crate) fn redeemed(&self, _: bool, _: Option<u64>) {}
    }
}

#[allow(unused_imports)] // some are used only by some features' code
pub(crate) use emit::{client_clock_fault, client_lead, gateway_refused, Issuer, Verdicts};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rejection_has_its_own_reason() {
        let rejections = [
            Rejection::AlreadyUsed { last_nonce: 1, attempted_nonce: 1 },
            Rejection::TooLow { last_nonce: 1, attempted_nonce: 1 },
            Rejection::TooFarInFuture { max_nonce: 1, attempted_nonce: 2 },
            Rejection::TooOld { min_nonce: 2, attempted_nonce: 1 },
            Rejection::NotPositive,
            Rejection::AboveCeiling { ceiling: 1, attempted_nonce: 2 },
            Rejection::ClockUnavailable(crate::clock::ClockError::BeforeUnixEpoch),
            Rejection::Unavailable { reason: String::new() },
            Rejection::AccountTooLong { len: 2, max: 1 },
        ];
        let slots: Vec<usize> = rejections.iter().map(|r| slot(Err(r))).collect();
        assert_eq!(slots, (1..=REASONS.len()).collect::<Vec<_>>());
        assert_eq!(slot(Ok(())), 0);
    }
}
