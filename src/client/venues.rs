//! The nonce and timestamp-window errors of the venues bots talk to, one row
//! per venue and code: where the venue puts its code, the code, and what it
//! means for the client. Adding a venue is one row here and one test body in
//! `tests/it/venues.rs` (copied from the venue's documentation or SDK, cited).

use super::feedback::{classify, first_number, NonceFeedback};
use serde_json::Value;

/// One step into a JSON body.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Key {
    /// An object's field.
    Field(&'static str),
    /// An array's element.
    Index(usize),
    /// Any element of an array (the first that matches).
    Each,
}

/// What the value at a row's path must be.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Code {
    /// A JSON integer.
    Int(i64),
    /// A JSON string, exactly.
    Text(&'static str),
}

/// What a matching body means for the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Means {
    /// A nonce to move past (a fresh one will do); the number, if the row reads one.
    TooLow,
    /// This nonce was used before.
    AlreadyUsed,
    /// The request's timestamp is outside the venue's window: this host's clock is off.
    ClockSkew,
    /// The message at `number_in` says which (the venue has one code for several problems).
    FromMessage,
}

/// One venue's error: `at` must hold `code` (and `and`, when set). `venue`
/// and `source` document the row (the tests read them).
#[derive(Debug)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) struct Row {
    pub(crate) venue: &'static str,
    pub(crate) at: &'static [Key],
    pub(crate) code: Code,
    pub(crate) and: Option<(&'static [Key], Code)>,
    /// Where the message is that may name a nonce to move past (or, for
    /// `FromMessage`, say what the problem is); `None`: no number is read.
    pub(crate) number_in: Option<&'static [Key]>,
    pub(crate) means: Means,
    /// Where the code is documented.
    pub(crate) source: &'static str,
}

use Key::{Each, Field, Index};

/// Every venue's row, checked in order before the crate's own body shape.
pub(crate) const ROWS: &[Row] = &[
    Row {
        venue: "Kraken",
        at: &[Field("error"), Each],
        code: Code::Text("EAPI:Invalid nonce"),
        and: None,
        number_in: None,
        means: Means::TooLow,
        source: "https://docs.kraken.com/api/docs/guides/spot-errors",
    },
    Row {
        venue: "Binance",
        at: &[Field("code")],
        code: Code::Int(-1021),
        and: None,
        number_in: None,
        means: Means::ClockSkew,
        source: "https://developers.binance.com/docs/binance-spot-api-docs/errors",
    },
    Row {
        venue: "Bitfinex",
        at: &[Index(1)],
        code: Code::Int(10114),
        and: Some((&[Index(0)], Code::Text("error"))),
        number_in: None,
        means: Means::TooLow,
        source: "https://docs.bitfinex.com/docs/abbreviations-glossary#error-codes",
    },
    Row {
        venue: "Hyperliquid",
        at: &[Field("status")],
        code: Code::Text("err"),
        and: None,
        number_in: Some(&[Field("response")]),
        means: Means::FromMessage,
        source: "https://hyperliquid.gitbook.io/hyperliquid-docs/for-developers/api/nonces-and-api-wallets",
    },
    Row {
        venue: "Bybit",
        at: &[Field("retCode")],
        code: Code::Int(10002),
        and: None,
        number_in: None,
        means: Means::ClockSkew,
        source: "https://bybit-exchange.github.io/docs/v5/error",
    },
    Row {
        venue: "OKX",
        at: &[Field("code")],
        code: Code::Text("50102"),
        and: None,
        number_in: None,
        means: Means::ClockSkew,
        source: "https://www.okx.com/docs-v5/en/#error-code-rest-api-public",
    },
    Row {
        venue: "Deribit",
        at: &[Field("error"), Field("code")],
        code: Code::Int(13004),
        and: Some((&[Field("error"), Field("data"), Field("invalid")], Code::Text("nonce"))),
        number_in: None,
        means: Means::AlreadyUsed,
        source: "https://docs.deribit.com/#rpc-error-codes",
    },
    Row {
        venue: "Deribit",
        at: &[Field("error"), Field("code")],
        code: Code::Int(13004),
        and: Some((&[Field("error"), Field("data"), Field("invalid")], Code::Text("timestamp"))),
        number_in: None,
        means: Means::ClockSkew,
        source: "https://docs.deribit.com/#rpc-error-codes",
    },
    Row {
        venue: "Coinbase Advanced Trade",
        at: &[Field("errors"), Each, Field("message")],
        code: Code::Text("request timestamp expired"),
        and: None,
        number_in: None,
        means: Means::ClockSkew,
        source: "https://github.com/ccxt/ccxt/blob/master/ts/src/coinbase.ts",
    },
    Row {
        venue: "Coinbase Exchange",
        at: &[Field("message")],
        code: Code::Text("request timestamp expired"),
        and: None,
        number_in: None,
        means: Means::ClockSkew,
        source: "https://docs.cdp.coinbase.com/exchange/docs/rest-auth",
    },
    Row {
        venue: "Gemini",
        at: &[Field("reason")],
        code: Code::Text("InvalidNonce"),
        and: Some((&[Field("result")], Code::Text("error"))),
        number_in: Some(&[Field("message")]),
        means: Means::TooLow,
        source: "https://docs.gemini.com/rest/errors",
    },
    Row {
        venue: "KuCoin",
        at: &[Field("code")],
        code: Code::Text("400002"),
        and: None,
        number_in: None,
        means: Means::ClockSkew,
        source: "https://www.kucoin.com/docs-new/error-code",
    },
    Row {
        venue: "Bitstamp",
        at: &[Field("code")],
        code: Code::Text("API0004"),
        and: None,
        number_in: None,
        means: Means::AlreadyUsed,
        source: "https://www.bitstamp.net/api/#section/Response-codes",
    },
    Row {
        venue: "Gate",
        at: &[Field("label")],
        code: Code::Text("REQUEST_EXPIRED"),
        and: None,
        number_in: None,
        means: Means::ClockSkew,
        source: "https://www.gate.com/docs/developers/apiv4/en/#label-list",
    },
];

/// The values at `path` (several where it steps through `Each`).
fn values_at<'v>(v: &'v Value, path: &[Key], out: &mut Vec<&'v Value>) {
    let Some((first, rest)) = path.split_first() else {
        out.push(v);
        return;
    };
    match first {
        Field(name) => {
            if let Some(next) = v.get(name) {
                values_at(next, rest, out);
            }
        }
        Index(i) => {
            if let Some(next) = v.as_array().and_then(|items| items.get(*i)) {
                values_at(next, rest, out);
            }
        }
        Each => {
            for item in v.as_array().into_iter().flatten() {
                values_at(item, rest, out);
            }
        }
    }
}

fn holds(v: &Value, path: &[Key], code: Code) -> bool {
    let mut found = Vec::new();
    values_at(v, path, &mut found);
    found.into_iter().any(|value| match code {
        Code::Int(n) => value.as_i64() == Some(n),
        Code::Text(t) => value.as_str() == Some(t),
    })
}

impl Row {
    /// The feedback for `body` if it is this row's error.
    fn read(&self, body: &Value) -> Option<NonceFeedback> {
        if !holds(body, self.at, self.code) || self.and.is_some_and(|(path, code)| !holds(body, path, code)) {
            return None;
        }
        let message = self.number_in.and_then(|path| {
            let mut found = Vec::new();
            values_at(body, path, &mut found);
            found.into_iter().find_map(Value::as_str)
        });
        let number = || message.and_then(first_number);
        Some(match self.means {
            Means::TooLow => NonceFeedback::TooLow { last_nonce: number() },
            Means::AlreadyUsed => NonceFeedback::AlreadyUsed { last_nonce: number() },
            Means::ClockSkew => NonceFeedback::ClockSkew,
            Means::FromMessage => message.and_then(|m| classify(m, None, None)).unwrap_or(NonceFeedback::Other),
        })
    }
}

/// The first row `body` matches, and what it means.
pub(crate) fn recognise(body: &Value) -> Option<(&'static Row, NonceFeedback)> {
    ROWS.iter().find_map(|row| row.read(body).map(|f| (row, f)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_names_its_source_and_is_reachable() {
        for row in ROWS {
            assert!(row.source.starts_with("https://"), "{}", row.venue);
            assert!(!row.at.is_empty(), "{}", row.venue);
        }
    }

    #[test]
    fn a_code_of_the_wrong_type_does_not_match() {
        // Binance's code is an integer: the string "-1021" is another venue's shape
        assert!(recognise(&serde_json::json!({"code": "-1021"})).is_none());
        assert!(recognise(&serde_json::json!({"code": 50102})).is_none());
    }
}
