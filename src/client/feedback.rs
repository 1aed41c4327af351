//! [`NonceFeedback`]: what a server said about a refused nonce, read from
//! this crate's error body or from the bodies of the exchanges bots talk to.

use crate::error::Rejection;
use crate::protocol::{ErrorBody, CODE_SERVER, CODE_UNAVAILABLE};

/// What a server said about a refused nonce, reduced to what the client can act on.
///
/// With the `serde` feature, deserializing a `NonceFeedback` (or
/// `NonceFeedback::from_body` on raw bytes) reads a server's error body,
/// whatever its shape: the crate's own [`ErrorBody`](crate::protocol::ErrorBody)
/// (`lastNonce` as a number or a decimal string, extra fields ignored), the
/// venues below, and a plain `{"error": "..."}` message; a body that is not
/// about a nonce is `Other`. A number is taken only from the venue's own field
/// or its message, and only when it is a whole `u64` standing alone.
///
/// | venue | error | read as |
/// |---|---|---|
/// | [Kraken](https://docs.kraken.com/api/docs/guides/spot-errors) | `"EAPI:Invalid nonce"` in `error` | `TooLow` |
/// | [Binance](https://developers.binance.com/docs/binance-spot-api-docs/errors) | `code` -1021 | `ClockSkew` |
/// | [Bitfinex](https://docs.bitfinex.com/docs/abbreviations-glossary#error-codes) | `["error", 10114, ..]` | `TooLow` |
/// | [Hyperliquid](https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/nonces-and-api-wallets) | `status` `"err"`, `response` about the nonce | `AlreadyUsed` / `TooLow`, with its number |
/// | [Bybit](https://bybit-exchange.github.io/docs/v5/error) | `retCode` 10002 | `ClockSkew` |
/// | [OKX](https://www.okx.com/docs-v5/en/#error-code-rest-api-public) | `code` `"50102"` | `ClockSkew` |
/// | [Deribit](https://docs.deribit.com/#rpc-error-codes) | `error.code` 13004 with `data.invalid` `"nonce"` / `"timestamp"` | `AlreadyUsed` / `ClockSkew` |
/// | [Coinbase Advanced Trade](https://github.com/ccxt/ccxt/blob/master/ts/src/coinbase.ts) | `errors[].message` `"request timestamp expired"` | `ClockSkew` |
/// | [Coinbase Exchange](https://docs.cdp.coinbase.com/exchange/docs/rest-auth) | `message` `"request timestamp expired"` | `ClockSkew` |
/// | [Gemini](https://docs.gemini.com/rest/errors) | `reason` `"InvalidNonce"` | `TooLow`, with the nonce its message names |
/// | [KuCoin](https://www.kucoin.com/docs-new/error-code) | `code` `"400002"` | `ClockSkew` |
/// | [Bitstamp](https://www.bitstamp.net/api/#section/Response-codes) | `code` `"API0004"` | `AlreadyUsed` |
/// | [Gate](https://www.gate.com/docs/developers/apiv4/en/#label-list) | `label` `"REQUEST_EXPIRED"` | `ClockSkew` |
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

/// The integers written in `text`, in order: runs of decimal digits that fit
/// a `u64` and stand alone. A run that is part of something else is not one:
/// after a sign or a decimal point (`-5`, `+5`, `.5`), before a fraction or an
/// exponent (`12.5`, `1e9`), or inside a word or a hex literal (`v2`, `0x1f`).
fn integers(text: &str) -> impl Iterator<Item = u64> + '_ {
    let bytes = text.as_bytes();
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            if !bytes[i].is_ascii_digit() {
                i += 1;
                continue;
            }
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let before = start.checked_sub(1).map(|b| bytes[b]);
            let glued = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
            let signed = before.is_some_and(|c| matches!(c, b'-' | b'+' | b'.') || glued(c));
            let after = bytes.get(i).copied();
            let fraction = after == Some(b'.') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
            if signed || fraction || after.is_some_and(glued) {
                continue;
            }
            // all ASCII digits; above u64::MAX the parse fails and the run is skipped
            if let Some(n) = text.get(start..i).and_then(|run| run.parse().ok()) {
                return Some(n);
            }
        }
        None
    })
}

/// The largest integer in `text` (see [`integers`]).
fn largest_number(text: &str) -> Option<u64> {
    integers(text).max()
}

/// The first integer in `text` (see [`integers`]).
#[cfg_attr(not(feature = "serde"), allow(dead_code))] // the venue table's
pub(crate) fn first_number(text: &str) -> Option<u64> {
    integers(text).next()
}

#[cfg(feature = "serde")]
mod json {
    use super::{classify, NonceFeedback, CODE_SERVER, CODE_UNAVAILABLE};
    use crate::client::venues;
    use crate::protocol::json_number as number;
    use serde::{Deserialize, Deserializer};
    use serde_json::Value;

    /// Bodies longer than this are not read (`Other`): error bodies are short,
    /// and nothing large is parsed to find one.
    pub(crate) const MAX_BODY: usize = 64 * 1024;

    /// Reads a server's error body, whatever its shape: a venue's row
    /// ([`venues::ROWS`]), then the crate's own ([`ErrorBody`](crate::protocol::ErrorBody)),
    /// then a message under `error`, `msg`, `message`, `response` or `err`.
    /// Anything else is `Other`.
    pub(crate) fn feedback_from_value(v: &Value) -> NonceFeedback {
        if let Some((_, feedback)) = venues::recognise(v) {
            return feedback;
        }
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
        // An array `["error", code, "message"]` (Bitfinex's shape, other codes than its row's).
        if let Some(items) = v.as_array() {
            let message =
                items.get(2).and_then(Value::as_str).filter(|_| items.first().and_then(Value::as_str) == Some("error"));
            return message.and_then(|m| classify(m, None, None)).unwrap_or(NonceFeedback::Other);
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

    impl NonceFeedback {
        /// Reads a response body as it came off the wire: JSON of any shape
        /// (as `Deserialize` does), or, when it is not JSON, its text as one
        /// message (`"Invalid nonce"`). Never fails and never panics: a body
        /// over 64 KiB, not UTF-8, or nested deeper than the JSON parser
        /// allows is `Other`.
        ///
        /// ```
        /// use monotonic_nonce::client::NonceFeedback;
        /// let okx = br#"{"code":"50102","msg":"Timestamp request expired","data":[]}"#;
        /// assert_eq!(NonceFeedback::from_body(okx), NonceFeedback::ClockSkew);
        /// assert_eq!(NonceFeedback::from_body(b"Invalid nonce"), NonceFeedback::TooLow { last_nonce: None });
        /// assert_eq!(NonceFeedback::from_body(&[0xff, 0xfe]), NonceFeedback::Other);
        /// ```
        pub fn from_body(body: &[u8]) -> NonceFeedback {
            if body.len() > MAX_BODY {
                return NonceFeedback::Other;
            }
            match serde_json::from_slice::<Value>(body) {
                Ok(v) => feedback_from_value(&v),
                Err(_) => match std::str::from_utf8(body) {
                    // not JSON: a plain-text body is one message; text that starts
                    // like JSON is a body the parser refused (too deep, cut short)
                    Ok(text) if !text.trim_start().starts_with(['{', '[']) => {
                        classify(text, None, None).unwrap_or(NonceFeedback::Other)
                    }
                    _ => NonceFeedback::Other,
                },
            }
        }
    }

    /// Reads the feedback from any server error body (see [`NonceFeedback`]).
    impl<'de> Deserialize<'de> for NonceFeedback {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            Ok(feedback_from_value(&Value::deserialize(d)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_standalone_integers_are_numbers() {
        let all = |t: &str| integers(t).collect::<Vec<_>>();
        assert_eq!(all("nonce must be greater than 1704067200000."), [1_704_067_200_000]);
        assert_eq!(all("Nonce '42' has not increased"), [42]);
        assert_eq!(all("-5 +6 .7 8.9 1e9 0x1f v2 a_3 3b"), Vec::<u64>::new());
        assert_eq!(all("18446744073709551616 and 18446744073709551615"), [u64::MAX]);
        assert_eq!(all("(7), [8]; 9"), [7, 8, 9]);
    }
}
