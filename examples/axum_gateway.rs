//! An API gateway in axum: HMAC-SHA256-signed requests, the nonce pre-check
//! before the signature, the signature layer, the nonce record after it, and
//! the counters on a Prometheus endpoint.
//!
//! ```sh
//! cargo run --example axum_gateway --features tower,metrics                 # in memory; a demo client, then exit
//! cargo run --example axum_gateway --features tower,metrics,redis -- --redis redis://127.0.0.1:6379
//! cargo run --example axum_gateway --features tower,metrics,redis -- --redis local   # starts a redis-server
//! cargo run --example axum_gateway --features tower,metrics -- --serve     # keep serving on 127.0.0.1:8080
//! ```
//!
//! A client signs `account:nonce:path` with its secret and sends
//! `x-api-key`, `x-nonce` and `x-signature` (hex).

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::{from_fn, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use hmac::{Hmac, Mac};
use metrics_exporter_prometheus::PrometheusBuilder;
use monotonic_nonce::gateway::{Accepted, HeaderPair, NonceLayer, NonceSource, Verified};
use monotonic_nonce::rules::AsyncValidator;
use monotonic_nonce::{NonceValidator, Policy, Strategy};
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "redis")]
#[path = "../tests/common/redis_server.rs"]
#[allow(unreachable_pub)]
mod redis_server;

/// The account's secret: a real gateway looks it up in its key store.
fn secret(account: &str) -> Vec<u8> {
    format!("demo-secret-{account}").into_bytes()
}

fn mac(account: &str, nonce: u64, path: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(&secret(account)).expect("HMAC takes any key length");
    mac.update(format!("{account}:{nonce}:{path}").as_bytes());
    mac
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    let pairs = text.as_bytes().chunks(2);
    pairs.map(|p| std::str::from_utf8(p).ok().and_then(|h| u8::from_str_radix(h, 16).ok())).collect()
}

/// Step 2 of the stack: verify the signature (in constant time), then insert
/// `Verified`, the only thing the recording layer records from.
async fn verify_signature(mut request: Request, next: Next) -> Response {
    let Ok((account, nonce)) = HeaderPair::new("x-api-key", "x-nonce").read(&request) else {
        return (StatusCode::UNAUTHORIZED, "unsigned").into_response();
    };
    let signature = request.headers().get("x-signature").and_then(|v| v.to_str().ok()).and_then(from_hex);
    let valid = signature.is_some_and(|s| mac(&account, nonce, request.uri().path()).verify_slice(&s).is_ok());
    if !valid {
        return (StatusCode::UNAUTHORIZED, "bad signature").into_response();
    }
    request.extensions_mut().insert(Verified::new(account, nonce));
    next.run(request).await
}

async fn place_order(Extension(accepted): Extension<Accepted>) -> String {
    format!("order accepted for {} with nonce {}\n", accepted.account, accepted.nonce)
}

/// The stack over either validator; layers added later run first.
fn gateway<V: AsyncValidator + Clone + 'static>(validator: V, metrics: Option<Router>) -> Router {
    let api = Router::new()
        .route("/order", post(place_order))
        .layer(NonceLayer::new(validator.clone())) // 3: record the verified nonce
        .layer(from_fn(verify_signature)) // 2: verify, insert `Verified`
        .layer(NonceLayer::pre_check(validator, HeaderPair::new("x-api-key", "x-nonce"))); // 1: cheap refusal
    match metrics {
        Some(m) => api.merge(m),
        None => api,
    }
}

/// A client of the demo: signs and sends one order.
async fn send(client: &reqwest::Client, base: &str, account: &str, nonce: u64) -> Result<String, reqwest::Error> {
    let signature: String =
        mac(account, nonce, "/order").finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let response = client
        .post(format!("{base}/order"))
        .header("x-api-key", account)
        .header("x-nonce", nonce.to_string())
        .header("x-signature", signature)
        .send()
        .await?;
    Ok(format!("{} {}", response.status().as_u16(), response.text().await?.trim()))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let serve = args.iter().any(|a| a == "--serve");
    let redis = args.iter().position(|a| a == "--redis").map(|i| args.get(i + 1).cloned().unwrap_or_default());

    // the recorder first: validators register their counters when they are built
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder)?;
    let metrics_route = Router::new().route("/metrics", get(move || std::future::ready(handle.render())));

    let addr = if serve { "127.0.0.1:8080" } else { "127.0.0.1:0" };
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let base = format!("http://{}", listener.local_addr()?);
    #[cfg(feature = "redis")]
    let mut _local_redis = None;
    let app = match redis {
        #[cfg(feature = "redis")]
        Some(url) => {
            let url = if url == "local" {
                let server = redis_server::RedisServer::start(&["--appendfsync", "always"]);
                let url = server.url();
                _local_redis = Some(server);
                url
            } else {
                url
            };
            let validator = monotonic_nonce::RedisValidator::builder(Policy::HighestK(20))
                .url(&url)
                .key_prefix("axum-gateway-example")
                .strategy(Strategy::Millis)
                .max_future(Duration::from_secs(5))
                .max_past(Duration::from_secs(60))
                .build()
                .await?;
            if validator.guard_floor() > 0 {
                // a store that started less than max_future ago: its restart guard is up for a moment
                tokio::time::sleep(Duration::from_secs(5)).await;
            }
            gateway(validator, Some(metrics_route))
        }
        #[cfg(not(feature = "redis"))]
        Some(_) => return Err("--redis needs the `redis` feature".into()),
        None => {
            let validator = NonceValidator::<String>::builder(Policy::HighestK(20))
                .strategy(Strategy::Millis)
                .max_future(Duration::from_secs(5))
                .max_past(Duration::from_secs(60))
                .build()?;
            gateway(Arc::new(validator), Some(metrics_route))
        }
    };
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    if serve {
        println!("serving on {base} (POST /order, GET /metrics)");
        server.await??;
        return Ok(());
    }

    // the demo: a bot's nonces, a replay, a forged signature, then the counters
    let bot = monotonic_nonce::NonceManager::builder().strategy(Strategy::Millis).build()?;
    let client = reqwest::Client::new();
    let first = bot.next()?;
    println!("first order:      {}", send(&client, &base, "bot-1", first).await?);
    println!("second order:     {}", send(&client, &base, "bot-1", bot.next()?).await?);
    println!("replay of first:  {}", send(&client, &base, "bot-1", first).await?);
    let forged =
        client.post(format!("{base}/order")).header("x-api-key", "bot-1").header("x-nonce", bot.next()?.to_string());
    let forged = forged.header("x-signature", "00").send().await?;
    println!("forged signature: {} {}", forged.status().as_u16(), forged.text().await?);
    let scrape = client.get(format!("{base}/metrics")).send().await?.text().await?;
    println!("\nGET /metrics:");
    for line in scrape.lines().filter(|l| l.starts_with("nonce_")) {
        println!("  {line}");
    }
    Ok(())
}
