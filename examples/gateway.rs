//! An API gateway's nonce check, to copy from: a `NonceValidator` behind one
//! function that takes a JSON request and returns `None` (let it through) or
//! the JSON error body exchange clients already parse.
//!
//! `cargo run --features serde --example gateway`

use monotonic_nonce::{NonceValidator, Policy};
use std::time::Duration;

/// The gateway: `{"apiKey": "...", "nonce": 1704067200000, ...}` in; `None` or an error body out.
fn check(validator: &NonceValidator<String>, request: &str) -> Option<String> {
    let body = |code: &str, message: &str| {
        Some(
            serde_json::json!({"status": "error", "error": {"code": code, "message": message, "details": {}}})
                .to_string(),
        )
    };
    let Ok(json) = serde_json::from_str::<serde_json::Value>(request) else {
        return body("BAD_REQUEST", "Request body is not JSON");
    };
    let Some(key) = json.get("apiKey").and_then(|k| k.as_str()) else {
        return body("BAD_REQUEST", "Missing apiKey");
    };
    // nonces arrive as JSON numbers or decimal strings
    let nonce = match json.get("nonce") {
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    let Some(nonce) = nonce else {
        return body("VALIDATION_ERROR", "Nonce must be a positive integer");
    };
    let key = key.to_owned();
    match validator.validate(&key, nonce) {
        Ok(()) => None,
        // error_body fills in lastNonce from the account, so the client can resynchronise
        Err(rejection) => Some(serde_json::to_string(&validator.error_body(&key, &rejection)).expect("serializable")),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let validator = NonceValidator::<String>::builder(Policy::HighestK(20))
        .max_future(Duration::from_secs(30))
        .max_past(Duration::from_secs(60))
        .max_accounts(1_000_000)
        .build()?;
    let now = monotonic_nonce::Clock::now_ms(&monotonic_nonce::SystemClock)?;
    let requests = [
        format!(r#"{{"apiKey":"alice","nonce":{}}}"#, now + 2),
        format!(r#"{{"apiKey":"alice","nonce":"{}"}}"#, now + 1), // late, as a string: fine
        format!(r#"{{"apiKey":"alice","nonce":{}}}"#, now + 1),   // replay
        format!(r#"{{"apiKey":"alice","nonce":{}}}"#, u64::MAX),  // lock-out attempt
        r#"{"apiKey":"alice","nonce":0}"#.to_owned(),
        r#"{"apiKey":"alice"}"#.to_owned(),
        "not json".to_owned(),
    ];
    for r in &requests {
        match check(&validator, r) {
            None => println!("{r}\n  -> accepted"),
            Some(err) => println!("{r}\n  -> {err}"),
        }
    }
    Ok(())
}
