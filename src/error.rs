//! Error types: what went wrong, as values callers match on.

use std::fmt;

/// Why a [`Clock`](crate::Clock) could not give the time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum ClockError {
    /// The wall clock reads a time before 1970-01-01; check the host's clock.
    #[error("the wall clock reads a time before the Unix epoch; fix the host clock (NTP)")]
    BeforeUnixEpoch,
    /// The time in milliseconds does not fit in a `u64`.
    #[error("the wall clock reads a time whose milliseconds do not fit in a u64")]
    OutOfRange,
    /// A [`ManualClock`](crate::ManualClock) was told to fail (fault injection in tests).
    #[error("the manual clock was set to fail (fault injection)")]
    Injected,
}

/// A configuration value a builder refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ConfigError {
    /// The builder field (or strategy/policy parameter) at fault, e.g. `"ceiling"`.
    pub field: &'static str,
    /// What is wrong with it and what to change.
    pub reason: String,
}

impl ConfigError {
    pub(crate) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self { field, reason: reason.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.field, self.reason)
    }
}

/// Everything a [`NonceManager`](crate::NonceManager) or a builder can refuse.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum NonceError {
    /// The next nonce would be above the ceiling. Nothing was handed out and
    /// nothing changed; the ceiling is a hard limit of the API the nonces go to.
    #[error("the next nonce would exceed the ceiling {ceiling}; nothing was handed out (use a strategy with fewer units per millisecond, or a higher ceiling if the API allows it)")]
    Overflow {
        /// The configured ceiling.
        ceiling: u64,
    },
    /// A builder refused its configuration (boxed: keeps `Result<u64, NonceError>`
    /// small on the hot path).
    #[error("invalid configuration: {0}")]
    InvalidConfig(Box<ConfigError>),
    /// The clock failed where a reading was required (at `build()`).
    #[error("clock error: {0}")]
    Clock(#[from] ClockError),
    /// `reserve(0)`: a batch must hold at least one nonce.
    #[error("reserve(0): a batch must hold at least one nonce")]
    EmptyBatch,
}

impl NonceError {
    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidConfig(Box::new(ConfigError::new(field, reason)))
    }
}
