//! The wire protocol: the error body a validator sends, read back as
//! `NonceFeedback` with `serde_json::from_str`, for the crate's own body and
//! for the nonce errors of the exchanges bots talk to.

use monotonic_nonce::protocol::{ErrorBody, JsonNumbers};
use monotonic_nonce::{client::NonceFeedback, clock::ClockError, strategy::JS_SAFE_MAX, Rejection};

fn read(body: &str) -> NonceFeedback {
    serde_json::from_str::<NonceFeedback>(body).unwrap_or_else(|e| panic!("{body}: {e}"))
}

/// The seed documentation's error body, verbatim in shape.
const SEED: &str = r#"{"status":"error","error":{"code":"VALIDATION_ERROR","message":"Nonce already used","details":{"lastNonce":1704067200000,"attemptedNonce":1704067199000}},"request_id":"req-123","timestamp":"2024-01-01T00:00:00Z"}"#;

#[test]
fn the_seed_body_reads_with_serde_json_from_str() {
    assert_eq!(read(SEED), NonceFeedback::AlreadyUsed { last_nonce: Some(1_704_067_200_000) });
}

#[test]
fn decimal_strings_and_unknown_fields_read_the_same() {
    let strings = SEED.replace("1704067200000", "\"1704067200000\"").replace("1704067199000", "\"1704067199000\"");
    assert_eq!(read(&strings), NonceFeedback::AlreadyUsed { last_nonce: Some(1_704_067_200_000) });
    let extra = r#"{"status":"error","trace":{"a":[1,2]},"error":{"code":"VALIDATION_ERROR","message":"Nonce too low","details":{"lastNonce":"42","extra":true}}}"#;
    assert_eq!(read(extra), NonceFeedback::TooLow { last_nonce: Some(42) });
    let bad_number = r#"{"status":"error","error":{"code":"VALIDATION_ERROR","message":"Nonce too low","details":{"lastNonce":"-1"}}}"#;
    assert_eq!(read(bad_number), NonceFeedback::TooLow { last_nonce: None });
}

#[test]
fn a_body_that_is_not_about_a_nonce_is_other() {
    let other =
        r#"{"status":"error","error":{"code":"VALIDATION_ERROR","message":"Insufficient balance","details":{}}}"#;
    assert_eq!(read(other), NonceFeedback::Other);
    assert_eq!(read(r#"{"error":"rate limit exceeded"}"#), NonceFeedback::Other);
    assert_eq!(read("[1,2,3]"), NonceFeedback::Other);
    assert_eq!(read("\"just a string\""), NonceFeedback::Other);
    assert!(serde_json::from_str::<NonceFeedback>("<html>502</html>").is_err(), "not JSON at all");
}

/// Every rejection, through its body and back, with numbers and with strings.
#[test]
fn every_rejection_round_trips_through_its_body() {
    let big = JS_SAFE_MAX + 2; // above 2^53: a double cannot hold it
    let cases = [
        (
            Rejection::AlreadyUsed { last_nonce: big, attempted_nonce: big },
            NonceFeedback::AlreadyUsed { last_nonce: Some(big) },
        ),
        (
            Rejection::TooLow { last_nonce: 9_000, attempted_nonce: 10 },
            NonceFeedback::TooLow { last_nonce: Some(9_000) },
        ),
        (Rejection::TooLow { last_nonce: big, attempted_nonce: 10 }, NonceFeedback::TooLow { last_nonce: Some(big) }),
        (
            Rejection::TooFarInFuture { max_nonce: 77, attempted_nonce: 1 << 62 },
            NonceFeedback::TooFarInFuture { max_nonce: Some(77) },
        ),
        (Rejection::TooOld { min_nonce: 10, attempted_nonce: 3 }, NonceFeedback::Other),
        (Rejection::NotPositive, NonceFeedback::Other),
        (Rejection::AboveCeiling { ceiling: JS_SAFE_MAX, attempted_nonce: big }, NonceFeedback::Other),
        (Rejection::ClockUnavailable(ClockError::Injected), NonceFeedback::Other),
        (Rejection::Unavailable { reason: "timeout".into() }, NonceFeedback::Other),
        (Rejection::AccountTooLong { len: 2_000, max: 1_024 }, NonceFeedback::Other),
    ];
    for (rejection, want) in cases {
        assert_eq!(NonceFeedback::from(&rejection), want, "{rejection:?} directly");
        for numbers in [JsonNumbers::Auto, JsonNumbers::Strings] {
            let body = rejection.error_body().with_numbers(numbers);
            let text = serde_json::to_string(&body).unwrap();
            assert_eq!(read(&text), want, "{rejection:?} as {text}");
            let back: ErrorBody = serde_json::from_str(&text).unwrap();
            assert_eq!(back.error, body.error, "{text}");
            assert_eq!(NonceFeedback::from(&back), want);
        }
    }
}

#[test]
fn unavailable_is_a_503_and_not_a_nonce_problem() {
    let body = Rejection::Unavailable { reason: "connection refused".into() }.error_body();
    assert_eq!((body.http_status(), body.error.code.as_str()), (503, "SERVICE_UNAVAILABLE"));
    assert_eq!(read(&serde_json::to_string(&body).unwrap()), NonceFeedback::Other);
}

/// A nonce above 2^53 read through a double comes back rounded; written as a
/// string (the default above 2^53) it survives.
#[test]
fn nonces_above_2_pow_53_are_strings_so_doubles_cannot_round_them() {
    let last = 1_704_067_200_000_123_457u64; // an Hft { counter_digits: 6 } nonce
    let body = Rejection::TooLow { last_nonce: last, attempted_nonce: 5 }.error_body();
    let text = serde_json::to_string(&body).unwrap();
    assert!(text.contains(r#""lastNonce":"1704067200000123457""#), "{text}");
    assert!(text.contains(r#""attemptedNonce":5"#), "small nonces stay numbers: {text}");
    // what a JavaScript client would read had it been a number:
    let as_double = last as f64;
    assert_ne!(as_double as u64, last, "the rounding is real");
    assert!((as_double as u64) < last, "and would resynchronise below the real last nonce");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let s = v["error"]["details"]["lastNonce"].as_str().unwrap();
    assert_eq!(s.parse::<u64>().unwrap(), last, "the string survives exactly");
    // and at 2^53 - 1 the number form is exact
    let edge =
        serde_json::to_string(&Rejection::TooLow { last_nonce: JS_SAFE_MAX, attempted_nonce: 1 }.error_body()).unwrap();
    assert!(edge.contains(&format!(r#""lastNonce":{JS_SAFE_MAX}"#)), "{edge}");
}

// The venues' bodies are in `venues.rs`.

/// Plain shapes many servers use, with the number in the message.
#[test]
fn plain_messages_and_numbers_in_them() {
    assert_eq!(read(r#"{"error":"Nonce too low"}"#), NonceFeedback::TooLow { last_nonce: None });
    assert_eq!(
        read(r#"{"error":"nonce must be greater than 1704067200000"}"#),
        NonceFeedback::TooLow { last_nonce: Some(1_704_067_200_000) }
    );
    assert_eq!(read(r#"{"message":"Nonce already used"}"#), NonceFeedback::AlreadyUsed { last_nonce: None });
}
