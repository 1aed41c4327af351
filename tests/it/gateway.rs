//! The tower layer in a real axum server, reached over loopback by a real
//! HTTP client, over the in-memory validator (the Redis runs are in
//! `tests/redis_gateway.rs`).

use crate::common::http_gateway::{answer, app, post_order, serve, sign, unsigned_app};
use monotonic_nonce::{NonceValidator, Policy};
use std::collections::HashMap;
use std::sync::Arc;

fn validator(policy: Policy) -> Arc<NonceValidator<String>> {
    Arc::new(NonceValidator::new(policy))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_signatures_burn_none_of_a_victims_nonces() {
    let v = validator(Policy::Strict);
    let base = serve(app(v.clone())).await;
    let client = reqwest::Client::new();
    assert_eq!(post_order(&client, &base, "victim", 1_000, false).await.status, 200);
    // 10 000 forged requests on the victim's next nonces, from 4 attackers at once
    let attackers: Vec<_> = (0..4u64)
        .map(|a| {
            let (client, base) = (client.clone(), base.clone());
            tokio::spawn(async move {
                let mut refused = 0;
                for n in (1_001 + a * 2_500)..(1_001 + (a + 1) * 2_500) {
                    let status = post_order(&client, &base, "victim", n, true).await.status;
                    refused += usize::from(status == 401);
                }
                refused
            })
        })
        .collect();
    let mut refused = 0;
    for attacker in attackers {
        refused += attacker.await.unwrap();
    }
    assert_eq!(refused, 10_000, "every forgery stops at the signature");
    assert_eq!(v.last_nonce("victim"), Some(1_000), "no forged nonce was recorded");
    for n in 1_001..=11_000 {
        let a = post_order(&client, &base, "victim", n, false).await;
        assert_eq!((a.status, a.body), (200, format!("victim:{n}")), "the victim's own nonce {n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replay_to_the_same_gateway_is_refused() {
    let v = validator(Policy::HighestK(20));
    let base = serve(app(v.clone())).await;
    let client = reqwest::Client::new();
    for n in 1..=200 {
        assert_eq!(post_order(&client, &base, "bot", n, false).await.status, 200);
    }
    for n in 1..=200 {
        let a = post_order(&client, &base, "bot", n, false).await;
        assert_eq!(a.status, 400, "replay of {n}: {}", a.body);
        assert_eq!(a.content_type.as_deref(), Some("application/json"));
        let body: serde_json::Value = serde_json::from_str(&a.body).unwrap();
        assert_eq!(body["error"]["details"]["lastNonce"], 200, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_gateways_each_with_its_own_memory_let_replays_through() {
    // the deployment the Redis validator exists for: shown failing here on purpose
    let mut bases = Vec::new();
    for _ in 0..3 {
        bases.push(serve(app(validator(Policy::Strict))).await);
    }
    let client = reqwest::Client::new();
    for n in 1..=30 {
        assert_eq!(post_order(&client, &bases[0], "bot", n, false).await.status, 200);
    }
    let mut replayed = 0;
    for n in 1..=30 {
        for base in &bases[1..] {
            replayed += usize::from(post_order(&client, base, "bot", n, false).await.status == 200);
        }
    }
    assert_eq!(replayed, 60, "each other gateway accepts every replay: validators in memory do not share");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_sending_the_same_pairs_get_each_accepted_once() {
    let v = validator(Policy::Window(4096));
    let base = serve(app(v.clone())).await;
    let pairs: Vec<(String, u64)> = (0..5).flat_map(|a| (1..=100).map(move |n| (format!("acct-{a}"), n))).collect();
    let pairs = Arc::new(pairs);
    let clients: Vec<_> = (0..8)
        .map(|c| {
            let (pairs, base) = (pairs.clone(), base.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut accepted = Vec::new();
                // each client in its own order, so they race on every pair
                for i in 0..pairs.len() {
                    let (account, nonce) = &pairs[(i * 7 + c * 61) % pairs.len()];
                    if post_order(&client, &base, account, *nonce, false).await.status == 200 {
                        accepted.push((account.clone(), *nonce));
                    }
                }
                accepted
            })
        })
        .collect();
    let mut count: HashMap<(String, u64), usize> = HashMap::new();
    for client in clients {
        for pair in client.await.unwrap() {
            *count.entry(pair).or_default() += 1;
        }
    }
    assert_eq!(count.len(), pairs.len(), "every pair accepted");
    assert!(count.values().all(|&c| c == 1), "none twice: {:?}", count.iter().find(|(_, &c)| c != 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_400_with_the_body_and_records_nothing() {
    let v = validator(Policy::Strict);
    let base = serve(app(v.clone())).await;
    let client = reqwest::Client::new();
    assert_eq!(post_order(&client, &base, "bot", 5, false).await.status, 200);
    let long = "k".repeat(1_025);
    type Headers = Vec<(&'static str, Vec<u8>)>;
    let cases: Vec<(&str, Headers)> = vec![
        ("missing nonce", vec![("x-api-key", b"bot".to_vec())]),
        ("missing account", vec![("x-nonce", b"6".to_vec())]),
        (
            "duplicated nonce",
            vec![("x-api-key", b"bot".to_vec()), ("x-nonce", b"6".to_vec()), ("x-nonce", b"7".to_vec())],
        ),
        (
            "duplicated account",
            vec![("x-api-key", b"bot".to_vec()), ("x-api-key", b"bot".to_vec()), ("x-nonce", b"6".to_vec())],
        ),
        ("empty nonce", vec![("x-api-key", b"bot".to_vec()), ("x-nonce", b"".to_vec())]),
        ("non-numeric", vec![("x-api-key", b"bot".to_vec()), ("x-nonce", b"six".to_vec())]),
        ("signed", vec![("x-api-key", b"bot".to_vec()), ("x-nonce", b"-6".to_vec())]),
        ("plus", vec![("x-api-key", b"bot".to_vec()), ("x-nonce", b"+6".to_vec())]),
        // HTTP drops the whitespace around a header's value before the layer sees it
        // (RFC 9110 5.5); padding that reaches the layer is refused in `padded_text_...`
        ("inner space", vec![("x-api-key", b"bot".to_vec()), ("x-nonce", b"6 6".to_vec())]),
        ("exponent", vec![("x-api-key", b"bot".to_vec()), ("x-nonce", b"6e3".to_vec())]),
        ("above u64", vec![("x-api-key", b"bot".to_vec()), ("x-nonce", b"18446744073709551616".to_vec())]),
        ("non-UTF-8 account", vec![("x-api-key", b"b\xffot".to_vec()), ("x-nonce", b"6".to_vec())]),
        ("over-long account", vec![("x-api-key", long.clone().into_bytes()), ("x-nonce", b"6".to_vec())]),
        ("empty account", vec![("x-api-key", b"".to_vec()), ("x-nonce", b"6".to_vec())]),
    ];
    for (what, headers) in cases {
        let mut request = client.post(format!("{base}/order")).header("x-signature", sign("bot", "6", "/order"));
        for (name, value) in headers {
            request = request.header(name, reqwest::header::HeaderValue::from_bytes(&value).unwrap());
        }
        let a = answer(request.send().await.unwrap()).await;
        assert_eq!(a.status, 400, "{what}: {}", a.body);
        assert_eq!(a.content_type.as_deref(), Some("application/json"), "{what}");
        let body: serde_json::Value =
            serde_json::from_str(&a.body).unwrap_or_else(|e| panic!("{what}: {e}: {}", a.body));
        assert_eq!(body["error"]["code"], "VALIDATION_ERROR", "{what}: {body}");
        assert_eq!(v.last_nonce("bot"), Some(5), "{what} changed the account");
    }
    assert_eq!(v.len(), 1, "no other account was created");
    assert_eq!(post_order(&client, &base, "bot", 6, false).await.status, 200, "6 is still unused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_without_the_signature_layer_refuses_with_500_and_records_nothing() {
    let v = validator(Policy::Strict);
    let base = serve(unsigned_app(v.clone())).await;
    let client = reqwest::Client::new();
    let a = post_order(&client, &base, "bot", 5, false).await;
    assert_eq!(a.status, 500, "{}", a.body);
    let body: serde_json::Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(body["error"]["code"], "SERVER_ERROR");
    assert!(v.is_empty(), "nothing recorded");
}

#[cfg(feature = "metrics")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_counters_equal_the_verdicts_returned_by_reason() {
    use crate::common::http_gateway::recording_app;
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    use monotonic_nonce::rules::TimeBounds;
    use monotonic_nonce::telemetry::VALIDATIONS;

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    // the handles are registered when the validator is built
    let v = metrics::with_local_recorder(&recorder, || {
        let bounds = TimeBounds::new().ceiling(1_000_000);
        Arc::new(NonceValidator::<String>::builder(Policy::Strict).time_bounds(bounds).build().unwrap())
    });
    // no pre-check: every request's verdict is `validate`'s
    let base = serve(recording_app(v.clone())).await;
    let client = reqwest::Client::new();
    let mut returned: HashMap<String, u64> = HashMap::new();
    for (i, nonce) in [10u64, 10, 9, 11, 2_000_000, 0].into_iter().cycle().take(60).enumerate() {
        let a = post_order(&client, &base, &format!("bot-{}", i / 6), nonce, false).await;
        let reason = match a.status {
            200 => "none".to_owned(),
            _ => {
                let body: serde_json::Value = serde_json::from_str(&a.body).unwrap();
                match body["error"]["message"].as_str().unwrap() {
                    "Nonce already used" => "already_used",
                    "Nonce too low" => "too_low",
                    "Nonce above the maximum" => "above_ceiling",
                    "Nonce must be a positive integer" => "not_positive",
                    other => panic!("unexpected refusal {other}"),
                }
                .to_owned()
            }
        };
        *returned.entry(reason).or_default() += 1;
    }
    let counted: HashMap<String, u64> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == VALIDATIONS)
        .filter_map(|(key, _, _, value)| {
            let reason = key.key().labels().find(|l| l.key() == "reason")?.value().to_owned();
            match value {
                DebugValue::Counter(n) if n > 0 => Some((reason, n)),
                _ => None,
            }
        })
        .collect();
    assert_eq!(counted, returned);
    assert_eq!(returned["none"], 20, "10 and 11 on each of 10 accounts");
}

#[tokio::test]
async fn padded_text_that_reaches_the_layer_is_refused() {
    use monotonic_nonce::gateway::{HeaderPair, NonceLayer, QueryParam};
    use tower::{service_fn, Layer, ServiceExt};
    let v = validator(Policy::Strict);
    let inner = service_fn(|_: http::Request<String>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    });
    let by_header = NonceLayer::pre_check(v.clone(), HeaderPair::new("x-api-key", "x-nonce")).layer(inner);
    let by_query = NonceLayer::pre_check(v.clone(), QueryParam::new("key", "nonce")).layer(inner);
    for nonce in [" 6", "6 ", "\t6"] {
        let request =
            http::Request::get("/").header("x-api-key", "bot").header("x-nonce", nonce).body(String::new()).unwrap();
        assert_eq!(by_header.clone().oneshot(request).await.unwrap().status(), 400, "{nonce:?}");
    }
    for query in
        ["key=bot&nonce=%206", "key=bot&nonce=6%20", "key=bot&nonce=+6", "key=bot&nonce=6&nonce=7", "key=%ff&nonce=6"]
    {
        let request = http::Request::get(format!("/?{query}")).body(String::new()).unwrap();
        assert_eq!(by_query.clone().oneshot(request).await.unwrap().status(), 400, "{query}");
    }
    let fine = http::Request::get("/?key=bot&nonce=6").body(String::new()).unwrap();
    assert_eq!(by_query.oneshot(fine).await.unwrap().status(), 200);
    assert!(v.is_empty(), "a pre-check records nothing");
}

#[tokio::test]
async fn a_failed_server_clock_is_a_500_and_a_custom_handler_answers_instead() {
    use monotonic_nonce::clock::ManualClock;
    use monotonic_nonce::gateway::{NonceLayer, Refusal, Verified};
    use tower::{service_fn, Layer, ServiceExt};
    let clock = ManualClock::new(1_704_067_200_000);
    let v = NonceValidator::<String, _>::builder(Policy::Strict)
        .clock(clock.clone())
        .max_future(std::time::Duration::from_secs(5))
        .build()
        .unwrap();
    let inner = service_fn(|_: http::Request<String>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    });
    let layer = NonceLayer::new(Arc::new(v));
    let signed = || {
        let mut request = http::Request::new(String::new());
        request.extensions_mut().insert(Verified::new("bot", 1_704_067_200_000));
        request
    };
    clock.set_failing(true);
    let response = layer.clone().layer(inner).oneshot(signed()).await.unwrap();
    assert_eq!(response.status(), 500);
    assert!(response.body().contains("SERVER_ERROR"), "{}", response.body());
    // the same refusal through a handler of the application's own
    let teapot = |refusal: Refusal| {
        let status = if refusal.status() == 500 { 418 } else { 400 };
        http::Response::builder().status(status).body(refusal.to_string()).unwrap()
    };
    let response = layer.error_handler(teapot).layer(inner).oneshot(signed()).await.unwrap();
    assert_eq!(response.status(), 418);
    assert!(response.body().contains("clock"), "{}", response.body());
    clock.set_failing(false);
}

/// A validator that answers only after a yield, with none of the `_now`
/// methods: the layer's path for stores that need a round trip (Redis).
#[derive(Clone)]
struct Deferred(Arc<NonceValidator<String>>);

impl monotonic_nonce::rules::AsyncValidator for Deferred {
    async fn check(&self, account: &str, nonce: u64) -> Result<(), monotonic_nonce::Rejection> {
        tokio::task::yield_now().await;
        NonceValidator::check(&self.0, account, nonce)
    }
    async fn validate(&self, account: &str, nonce: u64) -> Result<(), monotonic_nonce::Rejection> {
        tokio::task::yield_now().await;
        NonceValidator::validate(&self.0, account, nonce)
    }
    async fn error_body(
        &self,
        account: &str,
        rejection: &monotonic_nonce::Rejection,
    ) -> monotonic_nonce::protocol::ErrorBody {
        tokio::task::yield_now().await;
        NonceValidator::error_body(&self.0, account, rejection)
    }
    fn backend(&self) -> &'static str {
        "deferred"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_validator_that_waits_gets_the_same_answers_as_one_that_answers_at_once() {
    use monotonic_nonce::gateway::{NonceLayer, Verified};
    use tower::{Layer, Service, ServiceExt};
    let v = validator(Policy::HighestK(20));
    let base = serve(app(Deferred(v.clone()))).await;
    let client = reqwest::Client::new();
    for n in 1..=50 {
        assert_eq!(post_order(&client, &base, "bot", n, false).await.status, 200);
    }
    assert_eq!(post_order(&client, &base, "bot", 51, true).await.status, 401, "a forgery");
    for n in 1..=50 {
        let a = post_order(&client, &base, "bot", n, false).await;
        assert_eq!(a.status, 400, "replay of {n}: {}", a.body);
        let body: serde_json::Value = serde_json::from_str(&a.body).unwrap();
        assert_eq!(body["error"]["details"]["lastNonce"], 50, "{body}");
    }
    assert_eq!(v.last_nonce("bot"), Some(50));

    // which path each takes: the in-memory validator's answer needs no boxed future
    let signed = |nonce| {
        let mut request = http::Request::new(String::new());
        request.extensions_mut().insert(Verified::new("path", nonce));
        request
    };
    let ok = tower::service_fn(|_: http::Request<String>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    });
    let mut at_once = NonceLayer::new(v.clone()).layer(ok);
    let future = at_once.ready().await.unwrap().call(signed(1));
    assert!(format!("{future:?}").contains("Inner"), "{future:?}");
    assert_eq!(future.await.unwrap().status(), 200);
    let future = at_once.ready().await.unwrap().call(signed(1));
    assert!(format!("{future:?}").contains("Ready"), "a replay is answered at once: {future:?}");
    assert_eq!(future.await.unwrap().status(), 400);
    let mut waiting = NonceLayer::new(Deferred(v.clone())).layer(ok);
    let future = waiting.ready().await.unwrap().call(signed(2));
    assert!(format!("{future:?}").contains("Waiting"), "{future:?}");
    assert_eq!(future.await.unwrap().status(), 200);
    assert_eq!(v.last_nonce("path"), Some(2));
}
