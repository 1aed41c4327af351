//! The wire format, in one place: the JSON error body a validator sends
//! ([`ErrorBody`]), its codes and messages, and how nonces are written in it
//! ([`JsonNumbers`], and `serde_str` with the `serde` feature). A leaf: it imports neither side. A
//! client reads a server's answer back with
//! [`NonceFeedback`](crate::client::NonceFeedback).
//!
//! ```
//! use monotonic_nonce::{Rejection, protocol::ErrorBody, client::NonceFeedback};
//! let body = Rejection::TooLow { last_nonce: 1_704_067_200_000, attempted_nonce: 1_704_067_199_000 }.error_body();
//! assert_eq!(body.error.code, "VALIDATION_ERROR");
//! assert_eq!(NonceFeedback::from(&body), NonceFeedback::TooLow { last_nonce: Some(1_704_067_200_000) });
//! # let _: ErrorBody = body;
//! ```

use crate::error::Rejection;

/// `status` of every error body.
pub const STATUS_ERROR: &str = "error";
/// `code` of a refused nonce (HTTP 400).
pub const CODE_VALIDATION: &str = "VALIDATION_ERROR";
/// `code` when the server's clock failed (HTTP 500).
pub const CODE_SERVER: &str = "SERVER_ERROR";
/// `code` when the nonce store could not answer (HTTP 503); not a nonce problem.
pub const CODE_UNAVAILABLE: &str = "SERVICE_UNAVAILABLE";

/// `message` of [`Rejection::AlreadyUsed`].
pub const MSG_ALREADY_USED: &str = "Nonce already used";
/// `message` of [`Rejection::TooLow`].
pub const MSG_TOO_LOW: &str = "Nonce too low";
/// `message` of [`Rejection::TooFarInFuture`].
pub const MSG_TOO_FAR_IN_FUTURE: &str = "Nonce too far in the future";
/// `message` of [`Rejection::TooOld`].
pub const MSG_TOO_OLD: &str = "Nonce too old";
/// `message` of [`Rejection::NotPositive`].
pub const MSG_NOT_POSITIVE: &str = "Nonce must be a positive integer";
/// `message` of [`Rejection::AboveCeiling`].
pub const MSG_ABOVE_CEILING: &str = "Nonce above the maximum";
/// `message` of [`Rejection::ClockUnavailable`].
pub const MSG_CLOCK_UNAVAILABLE: &str = "Server clock unavailable";
/// `message` of [`Rejection::Unavailable`].
pub const MSG_UNAVAILABLE: &str = "Nonce store unavailable";
/// `message` of [`Rejection::AccountTooLong`].
pub const MSG_ACCOUNT_TOO_LONG: &str = "Account key too long";

/// How nonces are written in a body's `details`.
///
/// A client that parses JSON numbers as doubles (JavaScript, Python's float
/// path, many Go decoders) reads any integer above 2^53 - 1 rounded, and could
/// resynchronise *below* the real last nonce. `Auto` writes such a nonce as a
/// decimal string and keeps smaller ones as numbers (the shape clients parse
/// today); `Strings` writes every nonce as a string.
///
/// ```
/// use monotonic_nonce::{Rejection, protocol::JsonNumbers};
/// let body = Rejection::AlreadyUsed { last_nonce: 7, attempted_nonce: 7 }.error_body().with_numbers(JsonNumbers::Strings);
/// assert_eq!(body.numbers(), JsonNumbers::Strings);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum JsonNumbers {
    /// Numbers up to [`JS_SAFE_MAX`](crate::strategy::JS_SAFE_MAX), strings above.
    #[default]
    Auto,
    /// Every nonce as a decimal string.
    Strings,
}

/// The JSON error body of a [`Rejection`], in the shape exchange clients parse:
/// `{"status":"error","error":{"code":"VALIDATION_ERROR","message":"Nonce already used","details":{"lastNonce":..,"attemptedNonce":..}}}`.
/// Serializable with the `serde` feature (absent details are omitted).
///
/// ```
/// use monotonic_nonce::Rejection;
/// let body = Rejection::AlreadyUsed { last_nonce: 7, attempted_nonce: 5 }.error_body();
/// assert_eq!(body.status, "error");
/// assert_eq!(body.error.message, "Nonce already used");
/// assert_eq!(body.error.details.attempted_nonce, Some(5));
/// assert_eq!(body.http_status(), 400);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
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
#[non_exhaustive]
pub struct ErrorInfo {
    /// [`CODE_VALIDATION`], [`CODE_SERVER`] or [`CODE_UNAVAILABLE`].
    pub code: String,
    /// A short human message, e.g. `"Nonce already used"`.
    pub message: String,
    /// The numbers a client needs to resynchronise.
    #[cfg_attr(feature = "serde", serde(default))]
    pub details: ErrorDetails,
}

/// The `details` object of an [`ErrorBody`]; camelCase in JSON, absent fields
/// omitted, nonces written as [`JsonNumbers`] says and read from numbers or
/// decimal strings.
///
/// ```
/// use monotonic_nonce::Rejection;
/// let d = Rejection::TooOld { min_nonce: 10, attempted_nonce: 3 }.error_body().error.details;
/// assert_eq!((d.min_nonce, d.attempted_nonce, d.last_nonce), (Some(10), Some(3), None));
/// ```
///
/// Two details are equal when their numbers are: how they are written is
/// presentation, not content.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ErrorDetails {
    /// A nonce to move past: the highest the server accepted for the account, or the floor that refused.
    pub last_nonce: Option<u64>,
    /// The refused nonce.
    pub attempted_nonce: Option<u64>,
    /// The highest nonce the future bound accepts now.
    pub max_nonce: Option<u64>,
    /// The lowest nonce the past bound accepts now.
    pub min_nonce: Option<u64>,
    /// The ceiling the server accepts.
    pub ceiling: Option<u64>,
    /// How the nonces are written (not itself serialized).
    numbers: JsonNumbers,
}

impl ErrorDetails {
    fn numbers_only(&self) -> [Option<u64>; 5] {
        [self.last_nonce, self.attempted_nonce, self.max_nonce, self.min_nonce, self.ceiling]
    }
}

impl PartialEq for ErrorDetails {
    fn eq(&self, other: &Self) -> bool {
        self.numbers_only() == other.numbers_only()
    }
}

impl Eq for ErrorDetails {}

impl std::hash::Hash for ErrorDetails {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.numbers_only().hash(state);
    }
}

impl ErrorBody {
    /// The body with nonces written as `numbers` says.
    ///
    /// ```
    /// use monotonic_nonce::{Rejection, protocol::JsonNumbers};
    /// # #[cfg(feature = "serde")] {
    /// let body = Rejection::TooLow { last_nonce: 5, attempted_nonce: 4 }.error_body().with_numbers(JsonNumbers::Strings);
    /// assert!(serde_json::to_string(&body).unwrap().contains(r#""lastNonce":"5""#));
    /// # }
    /// ```
    pub fn with_numbers(mut self, numbers: JsonNumbers) -> Self {
        self.error.details.numbers = numbers;
        self
    }

    /// How this body writes nonces.
    ///
    /// ```
    /// use monotonic_nonce::{Rejection, protocol::JsonNumbers};
    /// assert_eq!(Rejection::NotPositive.error_body().numbers(), JsonNumbers::Auto);
    /// ```
    pub fn numbers(&self) -> JsonNumbers {
        self.error.details.numbers
    }

    /// The HTTP status to send it with: 400 for a refused nonce, 500 when the
    /// server clock failed, 503 when the store could not answer.
    ///
    /// ```
    /// use monotonic_nonce::Rejection;
    /// assert_eq!(Rejection::Unavailable { reason: "timeout".into() }.error_body().http_status(), 503);
    /// ```
    pub fn http_status(&self) -> u16 {
        match self.error.code.as_str() {
            CODE_UNAVAILABLE => 503,
            CODE_SERVER => 500,
            _ => 400,
        }
    }
}

impl ErrorBody {
    /// A body with `code` and `message` and no details: for refusals that
    /// are not a [`Rejection`] (a request a gateway could not read, say).
    ///
    /// ```
    /// use monotonic_nonce::protocol::{ErrorBody, CODE_VALIDATION};
    /// let body = ErrorBody::new(CODE_VALIDATION, "Missing nonce");
    /// assert_eq!((body.http_status(), body.error.details.last_nonce), (400, None));
    /// ```
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        ErrorBody {
            status: STATUS_ERROR.to_owned(),
            error: ErrorInfo { code: code.to_owned(), message: message.into(), details: ErrorDetails::default() },
        }
    }
}

impl Rejection {
    /// The JSON error body for this rejection (`lastNonce` included when the
    /// variant carries it; [`NonceValidator::error_body`](crate::NonceValidator::error_body)
    /// fills it in for the others from the account's state).
    ///
    /// ```
    /// use monotonic_nonce::Rejection;
    /// let body = Rejection::AlreadyUsed { last_nonce: 9, attempted_nonce: 9 }.error_body();
    /// assert_eq!(body.error.details.last_nonce, Some(9));
    /// ```
    pub fn error_body(&self) -> ErrorBody {
        let mut d = ErrorDetails::default();
        let (code, message) = match *self {
            Rejection::AlreadyUsed { last_nonce, attempted_nonce } => {
                (d.last_nonce, d.attempted_nonce) = (Some(last_nonce), Some(attempted_nonce));
                (CODE_VALIDATION, MSG_ALREADY_USED)
            }
            Rejection::TooLow { last_nonce, attempted_nonce } => {
                (d.last_nonce, d.attempted_nonce) = (Some(last_nonce), Some(attempted_nonce));
                (CODE_VALIDATION, MSG_TOO_LOW)
            }
            Rejection::TooFarInFuture { max_nonce, attempted_nonce } => {
                (d.max_nonce, d.attempted_nonce) = (Some(max_nonce), Some(attempted_nonce));
                (CODE_VALIDATION, MSG_TOO_FAR_IN_FUTURE)
            }
            Rejection::TooOld { min_nonce, attempted_nonce } => {
                (d.min_nonce, d.attempted_nonce) = (Some(min_nonce), Some(attempted_nonce));
                (CODE_VALIDATION, MSG_TOO_OLD)
            }
            Rejection::NotPositive => {
                d.attempted_nonce = Some(0);
                (CODE_VALIDATION, MSG_NOT_POSITIVE)
            }
            Rejection::AboveCeiling { ceiling, attempted_nonce } => {
                (d.ceiling, d.attempted_nonce) = (Some(ceiling), Some(attempted_nonce));
                (CODE_VALIDATION, MSG_ABOVE_CEILING)
            }
            Rejection::ClockUnavailable(_) => (CODE_SERVER, MSG_CLOCK_UNAVAILABLE),
            Rejection::Unavailable { .. } => (CODE_UNAVAILABLE, MSG_UNAVAILABLE),
            Rejection::AccountTooLong { .. } => (CODE_VALIDATION, MSG_ACCOUNT_TOO_LONG),
        };
        let mut body = ErrorBody::new(code, message);
        body.error.details = d;
        body
    }
}

#[cfg(feature = "serde")]
mod json {
    //! Serde for the wire types: nonces as numbers or strings.
    use super::*;
    use crate::strategy::JS_SAFE_MAX;
    use serde::de::{self, Deserializer, Visitor};
    use serde::ser::{SerializeMap, Serializer};
    use serde::{Deserialize, Serialize};
    use serde_json::Value;
    use std::fmt;

    /// Writes `n` as a number, or as a string when `numbers` asks or it is above 2^53 - 1.
    fn nonce_value(n: u64, numbers: JsonNumbers) -> Value {
        if numbers == JsonNumbers::Auto && n <= JS_SAFE_MAX {
            Value::from(n)
        } else {
            Value::String(n.to_string())
        }
    }

    /// The detail fields' JSON names, in the order they are written; the one
    /// place they are spelled.
    const FIELDS: [&str; 5] = ["lastNonce", "attemptedNonce", "maxNonce", "minNonce", "ceiling"];

    impl ErrorDetails {
        /// The fields' values, in the order of [`FIELDS`].
        fn values(&self) -> [Option<u64>; 5] {
            [self.last_nonce, self.attempted_nonce, self.max_nonce, self.min_nonce, self.ceiling]
        }
    }

    impl Serialize for ErrorDetails {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let values = self.values();
            let mut map = s.serialize_map(Some(values.iter().filter(|v| v.is_some()).count()))?;
            for (key, value) in FIELDS.into_iter().zip(values) {
                if let Some(n) = value {
                    map.serialize_entry(key, &nonce_value(n, self.numbers))?;
                }
            }
            map.end()
        }
    }

    /// A `u64` from a JSON number or a decimal string.
    pub(super) struct U64OrString;

    impl Visitor<'_> for U64OrString {
        type Value = u64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-negative integer, as a number or a decimal string")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
            u64::try_from(v).map_err(|_| E::custom(format!("{v} is negative")))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
            v.trim().parse().map_err(|_| E::custom(format!("{v:?} is not a decimal u64")))
        }
    }

    /// A `u64` from a JSON number or a decimal string.
    pub(crate) fn number(v: Option<&Value>) -> Option<u64> {
        match v? {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    impl<'de> Deserialize<'de> for ErrorDetails {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let v = Value::deserialize(d)?;
            let get = |k: &str| -> Result<Option<u64>, D::Error> {
                match v.get(k) {
                    None | Some(Value::Null) => Ok(None),
                    Some(x) => number(Some(x))
                        .map(Some)
                        .ok_or_else(|| de::Error::custom(format!("`{k}` is not a non-negative integer"))),
                }
            };
            let numbers = if FIELDS.iter().any(|k| matches!(v.get(*k), Some(Value::String(_)))) {
                JsonNumbers::Strings
            } else {
                JsonNumbers::Auto
            };
            let [last_nonce, attempted_nonce, max_nonce, min_nonce, ceiling] = FIELDS.map(get);
            Ok(ErrorDetails {
                last_nonce: last_nonce?,
                attempted_nonce: attempted_nonce?,
                max_nonce: max_nonce?,
                min_nonce: min_nonce?,
                ceiling: ceiling?,
                numbers,
            })
        }
    }
}

#[cfg(feature = "serde")]
pub(crate) use json::number as json_number;

/// Serde helpers for a `u64` nonce written as a decimal string (feature
/// `serde`), for request structs sent to clients that parse numbers as doubles.
/// Reading accepts a string or a number.
///
/// ```
/// # #[cfg(feature = "serde")] {
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Order {
///     #[serde(with = "monotonic_nonce::protocol::serde_str")]
///     nonce: u64,
/// }
/// let json = serde_json::to_string(&Order { nonce: 1_704_067_200_000_123_456 }).unwrap();
/// assert_eq!(json, r#"{"nonce":"1704067200000123456"}"#);
/// let back: Order = serde_json::from_str(r#"{"nonce":42}"#).unwrap();
/// assert_eq!(back.nonce, 42);
/// # }
/// ```
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub mod serde_str {
    /// Writes `nonce` as a decimal string.
    ///
    /// # Errors
    /// Whatever the serializer returns.
    pub fn serialize<S: serde::Serializer>(nonce: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(nonce)
    }

    /// Reads a nonce from a decimal string or a number.
    ///
    /// # Errors
    /// Anything but a non-negative integer that fits a `u64`.
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        d.deserialize_any(super::json::U64OrString)
    }
}
