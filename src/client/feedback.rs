//! [`NonceFeedback`]: what a server said about a refused nonce, read from
//! this crate's error body or from the bodies of the exchanges bots talk to.

use crate::error::Rejection;
use crate::protocol::{ErrorBody, CODE_SERVER, CODE_UNAVAILABLE};

/// What a server said about a refused nonce, reduced to what the client can act on.
///
/// With the `serde` feature, deserializing a `NonceFeedback` reads a server's
/// error body, whatever its shape: the crate's own [`ErrorBody`](crate::protocol::ErrorBody)
/// (`lastNonce` as a number or a decimal string, extra fields ignored) and the
/// nonce and clock errors of Kraken, Binance, Bitfinex and Hyperliquid; a body
/// that is not about a nonce is `Other`.
///
/// ```
/// use monotonic_nonce::{Rejection, client::NonceFeedback};
/// let r = Rejection::AlreadyUsed { last_nonce: 42, attempted_nonce: 40 };
/// let f = NonceFeedback::from(&r);
/// assert_eq!(f, NonceFeedback::AlreadyUsed { last_nonce: Some(42) });
/// assert!(f.is_recoverable());
/// # #[cfg(feature = "serde")] {
/// let body = r#"{"error":["EAPI:Invalid nonce"],"result":{}}"#; // Kraken
/// assert_eq!(serde_json::from_str::<NonceFeedback>(body).unwrap(), NonceFeedback::TooLow { last_nonce: None });
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NonceFeedback {
    /// This exact nonce was used before.
    AlreadyUsed {
        /// A nonce the server has seen for the key (move past it), if it said.
        last_nonce: Option<u64>,
    },
    /// The nonce is below what the server still accepts.
    TooLow {
        /// A nonce to move past, if the server said.
        last_nonce: Option<u64>,
    },
    /// The nonce stands for a time too far ahead of the server's clock.
    TooFarInFuture {
        /// The highest nonce the server accepts now, if it said.
        max_nonce: Option<u64>,
    },
    /// The request's timestamp is outside the server's time window (Binance
    /// `-1021`): this host's clock is off. Not a nonce to skip past.
    ClockSkew,
    /// Any other refusal (too old, not positive, above the ceiling, the store
    /// unavailable, not a nonce problem).
    Other,
}

impl From<&Rejection> for NonceFeedback {
    fn from(r: &Rejection) -> Self {
        match *r {
            Rejection::AlreadyUsed { last_nonce, .. } => Self::AlreadyUsed { last_nonce: Some(last_nonce) },
            Rejection::TooLow { last_nonce, .. } => Self::TooLow { last_nonce: Some(last_nonce) },
            Rejection::TooFarInFuture { max_nonce, .. } => Self::TooFarInFuture { max_nonce: Some(max_nonce) },
            _ => Self::Other,
        }
    }
}

impl NonceFeedback {
    /// Whether retrying with a fresh nonce can help.
    ///
    /// ```
    /// use monotonic_nonce::client::NonceFeedback;
    /// assert!(NonceFeedback::TooLow { last_nonce: None }.is_recoverable());
    /// assert!(!NonceFeedback::TooFarInFuture { max_nonce: None }.is_recoverable());
    /// assert!(!NonceFeedback::ClockSkew.is_recoverable());
    /// ```
    pub fn is_recoverable(&self) -> bool {
        matches!(self, Self::AlreadyUsed { .. } | Self::TooLow { .. })
    }
}

impl From<&ErrorBody> for NonceFeedback {
    fn from(body: &ErrorBody) -> Self {
        let info = &body.error;
        if info.code == CODE_UNAVAILABLE || info.code == CODE_SERVER {
            return NonceFeedback::Other;
        }
        let d = &info.details;
        classify(&info.message, d.last_nonce, d.max_nonce).unwrap_or(NonceFeedback::Other)
    }
}

/// Classifies one server message (case-insensitive). `last_nonce`/`max_nonce`
/// are the numbers the body carried; without them the largest number in the
/// message is used (moving past it is always enough). `None`: not about
/// nonces or clocks.
pub(crate) fn classify(message: &str, last_nonce: Option<u64>, max_nonce: Option<u64>) -> Option<NonceFeedback> {
    let m = message.to_ascii_lowercase();
    if m.contains("recvwindow")
        || (m.contains("timestamp") && (m.contains("ahead") || m.contains("outside") || m.contains("behind")))
    {
        return Some(NonceFeedback::ClockSkew);
    }
    if !m.contains("nonce") {
        return None;
    }
    let number = || largest_number(&m);
    Some(if m.contains("future") || m.contains("too high") || m.contains("too far") || m.contains("too large") {
        NonceFeedback::TooFarInFuture { max_nonce: max_nonce.or_else(number) }
    } else if m.contains("already used") || m.contains("duplicate") || m.contains("reused") || m.contains("used") {
        NonceFeedback::AlreadyUsed { last_nonce: last_nonce.or_else(number) }
    } else if m.contains("low")
        || m.contains("small")
        || m.contains("greater than")
        || m.contains("larger than")
        || m.contains("invalid nonce")
        || m.contains("bad nonce")
        || m.contains("increas")
    {
        NonceFeedback::TooLow { last_nonce: last_nonce.or_else(number) }
    } else {
        NonceFeedback::Other
    })
}

/// The largest run of decimal digits in `text` that fits a `u64`.
fn largest_number(text: &str) -> Option<u64> {
    text.split(|c: char| !c.is_ascii_digit()).filter_map(|run| run.parse::<u64>().ok()).max()
}

#[cfg(feature = "serde")]
mod json {
    use super::{classify, NonceFeedback, CODE_SERVER, CODE_UNAVAILABLE};
    use crate::protocol::json_number as number;
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    /// Reads a server's error body, whatever its shape: the crate's own
    /// ([`ErrorBody`]), Kraken's `{"error":["EAPI:Invalid nonce"]}`, Binance's
    /// `{"code":-1021,"msg":..}`, Bitfinex's `["error",10114,"nonce: small"]`,
    /// Hyperliquid's `{"status":"err","response":".."}`, or a plain
    /// `{"error":".."}` / `{"message":".."}`. Anything else is `Other`.
    pub(crate) fn feedback_from_value(v: &Value) -> NonceFeedback {
        // The crate's own shape, with its numbers in `details`.
        if let Some(info) = v.get("error").filter(|e| e.is_object()) {
            let code = info.get("code").and_then(Value::as_str).unwrap_or("");
            if code == CODE_UNAVAILABLE || code == CODE_SERVER {
                return NonceFeedback::Other;
            }
            let details = info.get("details");
            let last = number(details.and_then(|d| d.get("lastNonce")));
            let max = number(details.and_then(|d| d.get("maxNonce")));
            let message = info.get("message").and_then(Value::as_str).unwrap_or("");
            return classify(message, last, max).unwrap_or(NonceFeedback::Other);
        }
        // Binance: -1021 is the timestamp window, a clock problem.
        if v.get("code").and_then(Value::as_i64) == Some(-1021) {
            return NonceFeedback::ClockSkew;
        }
        // Bitfinex v2: ["error", code, "message"]; 10114 is "nonce: small".
        if let Some(items) = v.as_array() {
            if items.first().and_then(Value::as_str) == Some("error") {
                let code = items.get(1).and_then(Value::as_i64);
                let message = items.get(2).and_then(Value::as_str).unwrap_or("");
                return match classify(message, None, None) {
                    Some(f) => f,
                    None if code == Some(10114) => NonceFeedback::TooLow { last_nonce: None },
                    None => NonceFeedback::Other,
                };
            }
            return NonceFeedback::Other;
        }
        let mut messages: Vec<&str> = Vec::new();
        for key in ["error", "msg", "message", "response", "err"] {
            match v.get(key) {
                Some(Value::String(s)) => messages.push(s),
                Some(Value::Array(items)) => messages.extend(items.iter().filter_map(Value::as_str)),
                _ => {}
            }
        }
        messages.into_iter().find_map(|m| classify(m, None, None)).unwrap_or(NonceFeedback::Other)
    }

    /// Reads the feedback from any server error body (see [`NonceFeedback`]).
    impl<'de> Deserialize<'de> for NonceFeedback {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            Ok(feedback_from_value(&Value::deserialize(d)?))
        }
    }
}
