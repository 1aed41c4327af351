//! `NonceMiddleware` against a real axum exchange on 127.0.0.1:0 reached with
//! a real reqwest client: fresh nonces and signatures on every send, bounded
//! resends on nonce errors, clock errors returned at once.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use monotonic_nonce::client::{NonceMiddleware, Refused, RetryError, RetryPolicy, SignError};
use monotonic_nonce::{NonceError, NonceManager, NonceValidator, Policy};
use parking_lot::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How the exchange answers.
#[derive(Clone, Copy)]
enum Mode {
    /// Validates; every `n`th request is refused as "nonce too low" without being recorded.
    Validate { refuse_every: u64 },
    /// Always "nonce too low".
    AlwaysTooLow,
    /// Always this venue body (status, body).
    Fixed(u16, &'static str),
}

struct Exchange {
    validator: NonceValidator<String>,
    mode: Mode,
    /// Every nonce the exchange saw, in arrival order.
    seen: Mutex<Vec<u64>>,
    requests: AtomicU64,
}

async fn order(State(x): State<Arc<Exchange>>, headers: HeaderMap, body: String) -> (StatusCode, String) {
    let nonce: u64 = headers["x-nonce"].to_str().unwrap().parse().unwrap();
    let signature = headers["x-signature"].to_str().unwrap();
    // a streamed body is not in memory for the signer: its signature covers the nonce only
    let over_body = format!("sig({nonce},{body})");
    assert!(
        signature == over_body || signature == format!("sig({nonce},)"),
        "{signature}: not signed over nonce {nonce}"
    );
    x.seen.lock().push(nonce);
    // Relaxed: a counter.
    let n = x.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let too_low = |last: u64| {
        let body = format!(
            r#"{{"status":"error","error":{{"code":"VALIDATION_ERROR","message":"Nonce too low","details":{{"lastNonce":{last},"attemptedNonce":{nonce}}}}}}}"#
        );
        (StatusCode::BAD_REQUEST, body)
    };
    match x.mode {
        Mode::Validate { refuse_every } if n % refuse_every == 0 => too_low(nonce),
        Mode::Validate { .. } => match x.validator.validate("key", nonce) {
            Ok(()) => (StatusCode::OK, format!("ok {nonce}")),
            Err(r) => (StatusCode::BAD_REQUEST, serde_json::to_string(&x.validator.error_body("key", &r)).unwrap()),
        },
        Mode::AlwaysTooLow => too_low(nonce),
        Mode::Fixed(status, body) => (StatusCode::from_u16(status).unwrap(), body.to_owned()),
    }
}

async fn exchange(mode: Mode, policy: Policy) -> (Arc<Exchange>, String) {
    let x = Arc::new(Exchange {
        validator: NonceValidator::new(policy),
        mode,
        seen: Mutex::new(Vec::new()),
        requests: AtomicU64::new(0),
    });
    let app = Router::new().route("/order", post(order)).with_state(x.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/order", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (x, url)
}

fn sign(request: &mut reqwest::Request, nonce: u64) -> Result<(), SignError> {
    let body =
        request.body().and_then(|b| b.as_bytes()).map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
    request.headers_mut().insert("x-nonce", nonce.into());
    request.headers_mut().insert("x-signature", format!("sig({nonce},{body})").parse()?);
    Ok(())
}

fn client(manager: Arc<NonceManager>, attempts: u32) -> reqwest_middleware::ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(NonceMiddleware::new(manager, sign).policy(RetryPolicy::attempts(attempts)))
        .build()
}

fn retry_error(e: &reqwest_middleware::Error) -> &RetryError<Refused> {
    match e {
        reqwest_middleware::Error::Middleware(e) => e.downcast_ref().unwrap_or_else(|| panic!("not a RetryError: {e}")),
        other => panic!("not a middleware error: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_bots_on_one_key_every_request_succeeds_and_no_nonce_is_sent_twice() {
    let (x, url) = exchange(Mode::Validate { refuse_every: 50 }, Policy::HighestK(64)).await;
    let manager = Arc::new(NonceManager::new());
    let bots: Vec<_> = (0..4)
        .map(|b| {
            let (client, url) = (client(manager.clone(), 5), url.clone());
            tokio::spawn(async move {
                for i in 0..5_000 {
                    let response = client.post(&url).body(format!("bot {b} order {i}")).send().await.expect("sent");
                    assert_eq!(response.status(), 200, "bot {b} order {i}: {}", response.text().await.unwrap());
                }
            })
        })
        .collect();
    for bot in bots {
        bot.await.unwrap();
    }
    let seen = x.seen.lock().clone();
    let requests = 20_000.0;
    assert!(seen.len() as f64 <= 1.05 * requests, "{} sends for 20 000 requests", seen.len());
    let mut unique = seen.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "a nonce was sent twice");
    assert!(seen.len() > 20_000, "the induced refusals were resent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_always_says_too_low_gets_the_policys_attempts_and_no_more() {
    let (x, url) = exchange(Mode::AlwaysTooLow, Policy::Strict).await;
    let error = client(Arc::new(NonceManager::new()), 4).post(&url).body("{}").send().await.unwrap_err();
    match retry_error(&error) {
        RetryError::Exhausted { attempts: 4, last } => {
            assert_eq!(last.status, 400);
            assert!(last.body.contains("Nonce too low"), "{}", last.body);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(x.seen.lock().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_window_error_is_returned_at_once() {
    let venues = [
        (400, r#"{"code":-1021,"msg":"Timestamp for this request is outside of the recvWindow."}"#),
        (401, r#"{"code":"50102","msg":"Timestamp request expired","data":[]}"#),
        (
            200,
            r#"{"retCode":10002,"retMsg":"invalid request, please check your server timestamp or recv_window param","result":{},"retExtInfo":{},"time":1672211918471}"#,
        ),
    ];
    for (status, body) in venues {
        let (x, url) = exchange(Mode::Fixed(status, body), Policy::Strict).await;
        let error = client(Arc::new(NonceManager::new()), 5).post(&url).body("{}").send().await.unwrap_err();
        match retry_error(&error) {
            RetryError::Nonce { attempts: 1, error: NonceError::ServerSaysClockSkew } => {}
            other => panic!("{body}: {other:?}"),
        }
        assert_eq!(x.seen.lock().len(), 1, "{body}: no retry storm");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_errors_and_successes_pass_through_unchanged() {
    let insufficient = r#"{"code":-2010,"msg":"Account has insufficient balance for requested action."}"#;
    let (x, url) = exchange(Mode::Fixed(400, insufficient), Policy::Strict).await;
    let response = client(Arc::new(NonceManager::new()), 5).post(&url).body("{}").send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.text().await.unwrap(), insufficient);
    assert_eq!(x.seen.lock().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_cannot_be_cloned_is_sent_once() {
    let (x, url) = exchange(Mode::AlwaysTooLow, Policy::Strict).await;
    let stream = futures_util::stream::iter([Ok::<_, std::io::Error>("streamed")]);
    let error = client(Arc::new(NonceManager::new()), 5)
        .post(&url)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap_err();
    assert!(matches!(retry_error(&error), RetryError::Exhausted { attempts: 1, .. }));
    assert_eq!(x.seen.lock().len(), 1);
}
