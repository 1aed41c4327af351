//! The venue corpus: each venue's nonce or timestamp-window error as its API
//! documentation or its SDKs record it (the source above each test), read
//! with `serde_json::from_str::<NonceFeedback>` and `NonceFeedback::from_body`
//! into what the client can act on: a nonce to move past (with the number
//! when the body has one) or a clock problem (`ClockSkew`), never a nonce to
//! skip ahead for a clock problem. One test per venue; the table they exercise
//! is `src/client/venues.rs`.

use monotonic_nonce::client::NonceFeedback;

fn read(body: &str) -> NonceFeedback {
    let parsed = serde_json::from_str::<NonceFeedback>(body).unwrap_or_else(|e| panic!("{body}: {e}"));
    assert_eq!(NonceFeedback::from_body(body.as_bytes()), parsed, "the two readers agree on {body}");
    parsed
}

// Exchange bodies. Each is the error as the exchange documents it, or as its
// SDKs and client libraries record it.

/// Kraken REST: errors are an array of "E<category>:<message>" strings
/// (docs.kraken.com, "Errors": `{"error":["EAPI:Invalid key"],"result":{}}`;
/// `EAPI:Invalid nonce` is the nonce at or below the last accepted one).
#[test]
fn kraken_invalid_nonce() {
    assert_eq!(read(r#"{"error":["EAPI:Invalid nonce"],"result":{}}"#), NonceFeedback::TooLow { last_nonce: None });
    assert_eq!(read(r#"{"error":["EGeneral:Invalid arguments"],"result":{}}"#), NonceFeedback::Other);
}

/// Binance: `{"code":-1021,"msg":"Timestamp for this request is outside of the recvWindow."}`
/// (Binance API error codes, `-1021 INVALID_TIMESTAMP`): a clock problem, not a nonce to skip past.
#[test]
fn binance_timestamp_outside_recv_window_is_a_clock_problem() {
    let outside = r#"{"code":-1021,"msg":"Timestamp for this request is outside of the recvWindow."}"#;
    assert_eq!(read(outside), NonceFeedback::ClockSkew);
    let ahead = r#"{"code":-1021,"msg":"Timestamp for this request was 1000ms ahead of the server's time."}"#;
    assert_eq!(read(ahead), NonceFeedback::ClockSkew);
    assert!(!NonceFeedback::ClockSkew.is_recoverable());
    assert_eq!(
        read(r#"{"code":-2010,"msg":"Account has insufficient balance for requested action."}"#),
        NonceFeedback::Other
    );
}

/// Bitfinex v2: errors are arrays `["error", code, "message"]`; 10114 is
/// `"nonce: small"` (as recorded by Bitfinex client libraries and ccxt).
#[test]
fn bitfinex_nonce_small() {
    assert_eq!(read(r#"["error",10114,"nonce: small"]"#), NonceFeedback::TooLow { last_nonce: None });
    assert_eq!(read(r#"["error",10020,"symbol: invalid"]"#), NonceFeedback::Other);
}

/// Hyperliquid exchange endpoint: `{"status":"err","response":"Invalid nonce: duplicate nonce <n>"}`
/// and `"Invalid nonce: nonce too low <n> < <least>"` (as its SDKs' tests record them).
#[test]
fn hyperliquid_duplicate_and_too_low_take_the_number_from_the_message() {
    let dup = r#"{"status":"err","response":"Invalid nonce: duplicate nonce 1700000000000"}"#;
    assert_eq!(read(dup), NonceFeedback::AlreadyUsed { last_nonce: Some(1_700_000_000_000) });
    let low = r#"{"status":"err","response":"Invalid nonce: nonce too low 1700000000000 < 1700000000500"}"#;
    assert_eq!(read(low), NonceFeedback::TooLow { last_nonce: Some(1_700_000_000_500) });
}

/// Bybit v5: `retCode` 10002, "request expired, check your timestamp and recv_window"
/// (https://bybit-exchange.github.io/docs/v5/error; ccxt/ccxt `ts/src/bybit.ts`, `'10002': InvalidNonce`).
#[test]
fn bybit_timestamp_or_recv_window_is_a_clock_problem() {
    let body = r#"{"retCode":10002,"retMsg":"invalid request, please check your server timestamp or recv_window param","result":{},"retExtInfo":{},"time":1672211918471}"#;
    assert_eq!(read(body), NonceFeedback::ClockSkew);
    assert_eq!(
        read(
            r#"{"retCode":10001,"retMsg":"params error: symbol invalid","result":{},"retExtInfo":{},"time":1672211918471}"#
        ),
        NonceFeedback::Other
    );
}

/// OKX v5: code "50102", "Timestamp request expired"
/// (https://www.okx.com/docs-v5/en/#error-code-rest-api-public; ccxt/ccxt `ts/src/okx.ts`, `'50102': InvalidNonce`).
#[test]
fn okx_timestamp_request_expired_is_a_clock_problem() {
    assert_eq!(read(r#"{"code":"50102","msg":"Timestamp request expired","data":[]}"#), NonceFeedback::ClockSkew);
    assert_eq!(
        read(r#"{"code":"51008","msg":"Order failed. Insufficient USDT balance in account.","data":[]}"#),
        NonceFeedback::Other
    );
}

/// Deribit JSON-RPC: 13004 `invalid_credentials` with `data.invalid` naming the
/// field (https://docs.deribit.com/#rpc-error-codes; ccxt issue 12618): a nonce
/// used before; the same code on the timestamp is a clock problem.
#[test]
fn deribit_invalid_credentials_on_the_nonce_or_the_timestamp() {
    let nonce = r#"{"jsonrpc":"2.0","error":{"message":"invalid_credentials","code":13004,"data":{"reason":"invalid_credentials","invalid":"nonce"}},"usIn":1535043730126248,"usOut":1535043730126250,"usDiff":2,"testnet":false}"#;
    assert_eq!(read(nonce), NonceFeedback::AlreadyUsed { last_nonce: None });
    let timestamp = r#"{"jsonrpc":"2.0","error":{"message":"invalid_credentials","code":13004,"data":{"reason":"invalid_credentials","invalid":"timestamp"}},"testnet":false}"#;
    assert_eq!(read(timestamp), NonceFeedback::ClockSkew);
    let key = r#"{"jsonrpc":"2.0","error":{"message":"invalid_credentials","code":13004,"data":{"reason":"invalid_credentials","invalid":"client_id"}},"testnet":false}"#;
    assert_eq!(read(key), NonceFeedback::Other);
}

/// Coinbase Advanced Trade (`{"errors":[{"id":"authentication_error","message":"request timestamp expired"}]}`,
/// ccxt/ccxt `ts/src/coinbase.ts`, broad `'request timestamp expired': InvalidNonce`) and Coinbase
/// Exchange (`{"message":"request timestamp expired"}`, https://docs.cdp.coinbase.com/exchange/docs/rest-auth):
/// the signed timestamp is more than 30 s from the server's.
#[test]
fn coinbase_request_timestamp_expired_is_a_clock_problem() {
    let advanced = r#"{"errors":[{"id":"authentication_error","message":"request timestamp expired"}]}"#;
    assert_eq!(read(advanced), NonceFeedback::ClockSkew);
    assert_eq!(read(r#"{"message":"request timestamp expired"}"#), NonceFeedback::ClockSkew);
    assert_eq!(read(r#"{"errors":[{"id":"not_found","message":"order not found"}]}"#), NonceFeedback::Other);
    assert_eq!(read(r#"{"message":"Insufficient funds"}"#), NonceFeedback::Other);
}

/// Gemini: `reason` "InvalidNonce", "The nonce was not greater than the previously used nonce"
/// (https://docs.gemini.com/rest/errors; ccxt/ccxt `ts/src/gemini.ts`, `'InvalidNonce': InvalidNonce`);
/// the message names the refused nonce, which the client moves past.
#[test]
fn gemini_invalid_nonce_takes_the_nonce_from_the_message() {
    let body = r#"{"result":"error","reason":"InvalidNonce","message":"Nonce '1560544040426' has not increased since your last call to the Gemini API."}"#;
    assert_eq!(read(body), NonceFeedback::TooLow { last_nonce: Some(1_560_544_040_426) });
    let funds = r#"{"result":"error","reason":"InsufficientFunds","message":"Failed to place buy order on symbol 'BTCUSD' for price $7,225.75 and quantity 0.02 due to insufficient funds"}"#;
    assert_eq!(read(funds), NonceFeedback::Other);
}

/// KuCoin: code "400002", "KC-API-TIMESTAMP Invalid -- Time differs from server time by more than 5 seconds"
/// (https://www.kucoin.com/docs-new/error-code; ccxt/ccxt `ts/src/kucoin.ts`, `'400002': InvalidNonce`).
#[test]
fn kucoin_timestamp_invalid_is_a_clock_problem() {
    let body =
        r#"{"code":"400002","msg":"KC-API-TIMESTAMP Invalid -- Time differs from server time by more than 5 seconds"}"#;
    assert_eq!(read(body), NonceFeedback::ClockSkew);
    assert_eq!(read(r#"{"code":"200004","msg":"Balance insufficient!"}"#), NonceFeedback::Other);
}

/// Bitstamp v2: `{"status":"error","reason":"Invalid nonce","code":"API0004"}`
/// (https://www.bitstamp.net/api/#section/Response-codes; ccxt/ccxt `ts/src/bitstamp.ts`,
/// `'Invalid nonce': InvalidNonce`): its `X-Auth-Nonce` is a one-time value, so the refusal is a reuse.
#[test]
fn bitstamp_invalid_nonce_is_a_reuse() {
    assert_eq!(
        read(r#"{"status":"error","reason":"Invalid nonce","code":"API0004"}"#),
        NonceFeedback::AlreadyUsed { last_nonce: None }
    );
    assert_eq!(read(r#"{"status":"error","reason":"Invalid signature","code":"API0005"}"#), NonceFeedback::Other);
}

/// Gate v4: label "REQUEST_EXPIRED", "gap between request Timestamp and server time exceeds 60"
/// (https://www.gate.com/docs/developers/apiv4/en/#label-list).
#[test]
fn gate_request_expired_is_a_clock_problem() {
    let body = r#"{"label":"REQUEST_EXPIRED","message":"gap between request Timestamp and server time exceeds 60"}"#;
    assert_eq!(read(body), NonceFeedback::ClockSkew);
    assert_eq!(read(r#"{"label":"BALANCE_NOT_ENOUGH","message":"balance not enough"}"#), NonceFeedback::Other);
}

/// Every venue's non-nonce error, read by every reader: `Other`, whichever
/// venue's row is tried first (no venue's shape mis-maps another's).
#[test]
fn no_venues_other_error_is_read_as_a_nonce_problem() {
    let others = [
        r#"{"error":["EGeneral:Invalid arguments"],"result":{}}"#,
        r#"{"code":-2010,"msg":"Account has insufficient balance for requested action."}"#,
        r#"["error",10020,"symbol: invalid"]"#,
        r#"{"status":"err","response":"Insufficient margin to place order."}"#,
        r#"{"retCode":110007,"retMsg":"ab not enough for new order","result":{},"retExtInfo":{},"time":1}"#,
        r#"{"code":"51008","msg":"Order failed. Insufficient USDT balance in account.","data":[]}"#,
        r#"{"jsonrpc":"2.0","error":{"message":"not_enough_funds","code":10009},"testnet":false}"#,
        r#"{"errors":[{"id":"not_found","message":"order not found"}]}"#,
        r#"{"message":"Insufficient funds"}"#,
        r#"{"result":"error","reason":"InvalidSignature","message":"InvalidSignature"}"#,
        r#"{"code":"200004","msg":"Balance insufficient!"}"#,
        r#"{"status":"error","reason":"Invalid signature","code":"API0005"}"#,
        r#"{"label":"BALANCE_NOT_ENOUGH","message":"balance not enough"}"#,
        // codes of one venue in another's shape
        r#"{"code":"-1021","msg":"another venue's code 50102"}"#,
        r#"{"retCode":"10002"}"#,
        r#"{"code":10002}"#,
        r#"{"error":{"code":"13004","data":{"invalid":"nonce"}}}"#,
    ];
    for body in others {
        assert_eq!(read(body), NonceFeedback::Other, "{body}");
    }
}

/// Bodies a hostile or broken server may send: never a panic, `Other` or a
/// clean `TooLow` whose number is a valid `u64` from the message itself.
#[test]
fn bad_bodies_are_other_or_a_clean_number() {
    let huge = format!(r#"{{"error":"Nonce too low","pad":"{}"}}"#, "x".repeat(10 * 1024 * 1024));
    assert_eq!(NonceFeedback::from_body(huge.as_bytes()), NonceFeedback::Other, "10 MB: not read");
    assert_eq!(NonceFeedback::from_body(b"\xff\xfe nonce too low \xc3"), NonceFeedback::Other);
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(NonceFeedback::from_body(deep.as_bytes()), NonceFeedback::Other);
    assert!(serde_json::from_str::<NonceFeedback>(&deep).is_err(), "too deep for serde_json: an error, not a panic");
    let cases = [
        (r#"{"error":"nonce must be greater than 99999999999999999999999"}"#, None),
        (r#"{"error":"nonce must be greater than -5"}"#, None),
        (r#"{"error":"nonce must be greater than 12.5"}"#, None),
        (r#"{"error":"nonce must be greater than 1e12"}"#, None),
        (r#"{"error":"nonce must be greater than 17"}"#, Some(17)),
    ];
    for (body, number) in cases {
        assert_eq!(read(body), NonceFeedback::TooLow { last_nonce: number }, "{body}");
    }
    // a number in an unrelated field is never taken
    let unrelated = r#"{"error":"Nonce too low","balance":123456789,"details":{"lastNonce":5}}"#;
    assert_eq!(read(unrelated), NonceFeedback::TooLow { last_nonce: None });
    assert_eq!(read(r#"{"lastNonce":42}"#), NonceFeedback::Other);
}
