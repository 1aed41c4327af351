//! Error types: what went wrong, as values callers match on.

use std::fmt;

/// Why a [`Clock`](crate::Clock) could not give the time.
///
/// ```
/// use monotonic_nonce::{Clock, ClockError, ManualClock};
/// let clock = ManualClock::new(1);
/// clock.set_failing(true);
/// assert_eq!(clock.now_ms(), Err(ClockError::Injected));
/// ```
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
    /// An [`OffsetClock`](crate::OffsetClock) sample whose response arrived
    /// before its request was sent, or whose offset does not fit an `i64`.
    /// (A unit variant: `ClockError` travels inside `Result<u64, NonceError>` on the hot path.)
    #[error("invalid round-trip sample: the response arrived before the request was sent, or the offset does not fit an i64; the sample was ignored")]
    InvalidSample,
}

/// A configuration value a builder refused, and why.
///
/// ```
/// use monotonic_nonce::{NonceError, NonceValidator, Policy};
/// let e = NonceValidator::<u8>::builder(Policy::Window(0)).build().unwrap_err();
/// let NonceError::InvalidConfig(c) = e else { panic!() };
/// assert_eq!(c.field, "policy");
/// println!("{c}"); // `policy`: Window(0) is Strict; ...
/// ```
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
///
/// ```
/// use monotonic_nonce::{NonceError, NonceManager, Strategy};
/// let e = NonceManager::builder().strategy(Strategy::Hft { counter_digits: 0 }).build().unwrap_err();
/// assert!(matches!(e, NonceError::InvalidConfig(ref c) if c.field == "counter_digits"));
/// assert_eq!(NonceManager::new().reserve(0), Err(NonceError::EmptyBatch));
/// ```
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
    /// The durable high-water mark could not be read, locked or written
    /// (see [`NonceManagerBuilder::persist`](crate::NonceManagerBuilder::persist)).
    /// When it comes from `next()`/`reserve()`, nothing was handed out.
    #[error("persistence: {0}")]
    Persist(Box<PersistError>),
    /// The next nonce would stand for a time more than `max_lead` ahead of the
    /// clock (see [`NonceManagerBuilder::max_lead`](crate::NonceManagerBuilder::max_lead)):
    /// the exchange's future bound would reject it. Nothing was handed out;
    /// slow down, or use a strategy with more units per millisecond.
    #[error("the next nonce would be {lead_ms} ms ahead of the clock, more than max_lead allows; nothing was handed out (send fewer requests per ms or use Strategy::Hft)")]
    TooFarAhead {
        /// How far ahead the nonce would have been, in ms.
        lead_ms: u64,
    },
    /// The server said a nonce was too far in the future: this side's clock or
    /// strategy is wrong (clock ahead, too many units per ms, or a manager that
    /// ran ahead). Nothing is "fixed" by lowering nonces; fix the cause.
    #[error("the server refused nonce as too far in the future{}: check this host's clock (NTP), the strategy's units per ms, and the request rate", max_nonce.map(|m| format!(" (it accepts up to {m})")).unwrap_or_default())]
    ServerSaysTooFarAhead {
        /// The highest nonce the server accepts now, if it said (nonces are
        /// positive; `NonZeroU64` keeps `Result<u64, NonceError>` at 24 bytes).
        max_nonce: Option<std::num::NonZeroU64>,
    },
}

/// What went wrong with a high-water-mark file, which file, and what to do.
///
/// ```
/// use monotonic_nonce::{NonceError, NonceManager};
/// let dir = std::env::temp_dir().join(format!("mn-doc-corrupt-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// std::fs::write(dir.join("bot.mark"), b"garbage").unwrap();
/// match NonceManager::builder().persist(dir.join("bot.mark")).build() {
///     Err(NonceError::Persist(e)) => {
///         assert!(e.path.ends_with("bot.mark"));
///         assert!(e.reason.contains("not a monotonic-nonce mark file"));
///     }
///     other => panic!("{other:?}"),
/// }
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PersistError {
    /// The file (or its directory, or its lock file) at fault.
    pub path: std::path::PathBuf,
    /// The I/O error kind, when an operating-system call failed.
    pub kind: Option<std::io::ErrorKind>,
    /// What happened and what to do about it.
    pub reason: String,
}

impl fmt::Display for PersistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

impl NonceError {
    pub(crate) fn config(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidConfig(Box::new(ConfigError::new(field, reason)))
    }

    /// A builder's `Duration` as whole milliseconds, or a config error naming `field`.
    pub(crate) fn duration_ms(field: &'static str, d: std::time::Duration) -> Result<u64, Self> {
        u64::try_from(d.as_millis()).map_err(|_| Self::config(field, "does not fit in u64 milliseconds"))
    }
}

/// Why a [`NonceValidator`](crate::NonceValidator) refused a nonce. A refused
/// nonce changes nothing. [`error_body`](Self::error_body) turns it into the
/// JSON body exchange clients already parse.
///
/// # Example
/// ```
/// use monotonic_nonce::{NonceValidator, Policy, Rejection};
/// let v = NonceValidator::new(Policy::Strict);
/// v.validate(&1u32, 1_704_067_200_000)?;
/// let err = v.validate(&1u32, 1_704_067_199_000).unwrap_err();
/// assert_eq!(err, Rejection::TooLow { last_nonce: 1_704_067_200_000, attempted_nonce: 1_704_067_199_000 });
/// assert_eq!(err.error_body().error.details.last_nonce, Some(1_704_067_200_000));
/// # Ok::<(), Rejection>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum Rejection {
    /// This exact nonce was accepted before (a replay, or two signers on one key).
    #[error("nonce {attempted_nonce} was already used (last nonce {last_nonce})")]
    AlreadyUsed {
        /// The highest nonce accepted for the account.
        last_nonce: u64,
        /// The refused nonce.
        attempted_nonce: u64,
    },
    /// Below what the policy can still accept; use a nonce above `last_nonce`.
    #[error("nonce {attempted_nonce} is too low: the last nonce is {last_nonce}")]
    TooLow {
        /// The highest nonce accepted for the account (or the eviction floor for an untracked one).
        last_nonce: u64,
        /// The refused nonce.
        attempted_nonce: u64,
    },
    /// Stands for a time further ahead of the server clock than `max_future` allows.
    #[error("nonce {attempted_nonce} is too far in the future (at most {max_nonce} now); check the client clock and strategy")]
    TooFarInFuture {
        /// The highest nonce the time bound accepts right now.
        max_nonce: u64,
        /// The refused nonce.
        attempted_nonce: u64,
    },
    /// Stands for a time further behind the server clock than `max_past` allows.
    #[error("nonce {attempted_nonce} is too old (at least {min_nonce} now)")]
    TooOld {
        /// The lowest nonce the time bound accepts right now.
        min_nonce: u64,
        /// The refused nonce.
        attempted_nonce: u64,
    },
    /// Nonces are positive integers; 0 is never valid.
    #[error("a nonce must be a positive integer, not 0")]
    NotPositive,
    /// Above the ceiling the server accepts.
    #[error("nonce {attempted_nonce} is above the ceiling {ceiling}")]
    AboveCeiling {
        /// The highest nonce the server accepts.
        ceiling: u64,
        /// The refused nonce.
        attempted_nonce: u64,
    },
    /// Time bounds are set and the server clock could not be read: the
    /// validator fails closed rather than skip the bound.
    #[error("the server clock is unavailable ({0}); the time bound cannot be checked")]
    ClockUnavailable(ClockError),
}

/// The JSON error body of a [`Rejection`], in the shape exchange clients parse:
/// `{"status":"error","error":{"code":"VALIDATION_ERROR","message":"Nonce already used","details":{"lastNonce":..,"attemptedNonce":..}}}`.
/// Serializable with the `serde` feature (absent details are omitted).
///
/// # Example
/// ```
/// use monotonic_nonce::Rejection;
/// let body = Rejection::AlreadyUsed { last_nonce: 7, attempted_nonce: 5 }.error_body();
/// assert_eq!(body.status, "error");
/// assert_eq!(body.error.code, "VALIDATION_ERROR");
/// assert_eq!(body.error.message, "Nonce already used");
/// assert_eq!(body.error.details.attempted_nonce, Some(5));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ErrorBody {
    /// Always `"error"`.
    pub status: String,
    /// What went wrong.
    pub error: ErrorInfo,
}

/// The `error` object of an [`ErrorBody`].
///
/// ```
/// use monotonic_nonce::Rejection;
/// let info = Rejection::NotPositive.error_body().error;
/// assert_eq!((info.code.as_str(), info.message.as_str()), ("VALIDATION_ERROR", "Nonce must be a positive integer"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ErrorInfo {
    /// `"VALIDATION_ERROR"` for a refused nonce, `"SERVER_ERROR"` when the server clock failed.
    pub code: String,
    /// A short human message, e.g. `"Nonce already used"`.
    pub message: String,
    /// The numbers a client needs to resynchronise.
    pub details: ErrorDetails,
}

/// The `details` object of an [`ErrorBody`]; camelCase in JSON, absent fields omitted.
///
/// ```
/// use monotonic_nonce::Rejection;
/// let d = Rejection::TooOld { min_nonce: 10, attempted_nonce: 3 }.error_body().error.details;
/// assert_eq!((d.min_nonce, d.attempted_nonce, d.last_nonce), (Some(10), Some(3), None));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "camelCase"))]
pub struct ErrorDetails {
    /// The highest nonce the server accepted for the account, when it has one.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub last_nonce: Option<u64>,
    /// The refused nonce.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub attempted_nonce: Option<u64>,
    /// The highest nonce the future bound accepts now.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub max_nonce: Option<u64>,
    /// The lowest nonce the past bound accepts now.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub min_nonce: Option<u64>,
    /// The ceiling the server accepts.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "Option::is_none"))]
    pub ceiling: Option<u64>,
}

impl Rejection {
    /// The JSON error body for this rejection (`lastNonce` included when the
    /// variant carries it; [`NonceValidator::error_body`](crate::NonceValidator::error_body)
    /// fills it in for the others from the account's state).
    ///
    /// ```
    /// use monotonic_nonce::Rejection;
    /// let body = Rejection::AlreadyUsed { last_nonce: 9, attempted_nonce: 9 }.error_body();
    /// assert_eq!(body.status, "error");
    /// assert_eq!(body.error.details.last_nonce, Some(9));
    /// ```
    pub fn error_body(&self) -> ErrorBody {
        let mut details = ErrorDetails::default();
        let (code, message) = match *self {
            Rejection::AlreadyUsed { last_nonce, attempted_nonce } => {
                details.last_nonce = Some(last_nonce);
                details.attempted_nonce = Some(attempted_nonce);
                ("VALIDATION_ERROR", "Nonce already used")
            }
            Rejection::TooLow { last_nonce, attempted_nonce } => {
                details.last_nonce = Some(last_nonce);
                details.attempted_nonce = Some(attempted_nonce);
                ("VALIDATION_ERROR", "Nonce too low")
            }
            Rejection::TooFarInFuture { max_nonce, attempted_nonce } => {
                details.max_nonce = Some(max_nonce);
                details.attempted_nonce = Some(attempted_nonce);
                ("VALIDATION_ERROR", "Nonce too far in the future")
            }
            Rejection::TooOld { min_nonce, attempted_nonce } => {
                details.min_nonce = Some(min_nonce);
                details.attempted_nonce = Some(attempted_nonce);
                ("VALIDATION_ERROR", "Nonce too old")
            }
            Rejection::NotPositive => {
                details.attempted_nonce = Some(0);
                ("VALIDATION_ERROR", "Nonce must be a positive integer")
            }
            Rejection::AboveCeiling { ceiling, attempted_nonce } => {
                details.ceiling = Some(ceiling);
                details.attempted_nonce = Some(attempted_nonce);
                ("VALIDATION_ERROR", "Nonce above the maximum")
            }
            Rejection::ClockUnavailable(_) => ("SERVER_ERROR", "Server clock unavailable"),
        };
        ErrorBody {
            status: "error".to_owned(),
            error: ErrorInfo { code: code.to_owned(), message: message.to_owned(), details },
        }
    }
}
