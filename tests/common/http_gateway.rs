#![allow(dead_code)] // each test binary uses some of these
//! A real axum gateway for the layer's tests: HMAC-SHA256-signed requests
//! (`x-api-key`, `x-nonce`, `x-signature` over `account:nonce:path`), the
//! pre-check, a signature layer that inserts `Verified`, and the recording
//! layer; served on 127.0.0.1:0, reached with reqwest.

use axum::extract::Request;
use axum::middleware::{from_fn, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Router};
use hmac::{Hmac, Mac};
use monotonic_nonce::gateway::{Accepted, HeaderPair, NonceLayer, NonceSource, Verified};
use monotonic_nonce::rules::AsyncValidator;
use sha2::Sha256;

/// Each account's secret (a real gateway looks it up).
fn secret(account: &str) -> Vec<u8> {
    format!("secret-of-{account}").into_bytes()
}

/// The signature a client with `account`'s secret sends.
pub fn sign(account: &str, nonce: &str, path: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret(account)).expect("any key length");
    mac.update(format!("{account}:{nonce}:{path}").as_bytes());
    mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// The signature layer: verifies, then inserts `Verified`; 401 otherwise.
async fn verify(mut request: Request, next: Next) -> Response {
    let Ok((account, nonce)) = HeaderPair::new("x-api-key", "x-nonce").read(&request) else {
        return (axum::http::StatusCode::UNAUTHORIZED, "unreadable").into_response();
    };
    let signature = request.headers().get("x-signature").and_then(|v| v.to_str().ok()).unwrap_or("");
    let expected = sign(&account, &nonce.to_string(), request.uri().path());
    // a real gateway compares in constant time (`Mac::verify_slice`)
    if signature != expected {
        return (axum::http::StatusCode::UNAUTHORIZED, "bad signature").into_response();
    }
    request.extensions_mut().insert(Verified::new(account, nonce));
    next.run(request).await
}

async fn order(Extension(accepted): Extension<Accepted>) -> String {
    format!("{}:{}", accepted.account, accepted.nonce)
}

/// The whole stack over `validator`: pre-check, signature, record.
pub fn app<V: AsyncValidator + Clone + 'static>(validator: V) -> Router {
    Router::new()
        .route("/order", post(order))
        .layer(NonceLayer::new(validator.clone()))
        .layer(from_fn(verify))
        .layer(NonceLayer::pre_check(validator, HeaderPair::new("x-api-key", "x-nonce")))
}

/// The signature and recording layers, without the pre-check.
pub fn recording_app<V: AsyncValidator + Clone + 'static>(validator: V) -> Router {
    Router::new().route("/order", post(order)).layer(NonceLayer::new(validator)).layer(from_fn(verify))
}

/// A misconfigured stack: the recording layer with no signature layer before it.
pub fn unsigned_app<V: AsyncValidator + Clone + 'static>(validator: V) -> Router {
    Router::new().route("/order", post(order)).layer(NonceLayer::new(validator))
}

/// Serves `app` on 127.0.0.1:0; the base URL.
pub async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// What a response said: the status, and the body.
#[allow(dead_code)] // each test binary reads some of the fields
pub struct Answer {
    pub status: u16,
    pub retry_after: Option<String>,
    pub content_type: Option<String>,
    pub body: String,
}

/// Posts a signed order (`forged`: with a wrong signature).
pub async fn post_order(client: &reqwest::Client, base: &str, account: &str, nonce: u64, forged: bool) -> Answer {
    let nonce = nonce.to_string();
    let mut signature = sign(account, &nonce, "/order");
    if forged {
        signature = sign("someone-else", &nonce, "/order");
    }
    let response = client
        .post(format!("{base}/order"))
        .header("x-api-key", account)
        .header("x-nonce", &nonce)
        .header("x-signature", signature)
        .send()
        .await
        .expect("the gateway answers");
    answer(response).await
}

pub async fn answer(response: reqwest::Response) -> Answer {
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (status, retry_after, content_type) =
        (response.status().as_u16(), header("retry-after"), header("content-type"));
    Answer { status, retry_after, content_type, body: response.text().await.expect("a body") }
}
