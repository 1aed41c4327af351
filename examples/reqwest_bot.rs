//! Bots on one API key through reqwest with `NonceMiddleware`: every send
//! gets a fresh nonce and signature, and a "nonce too low" answer is
//! followed by a re-signed resend with a nonce past what the exchange said.
//!
//! `cargo run --example reqwest_bot --features reqwest,tower`
//!
//! The exchange here is an axum server on 127.0.0.1 with `gateway::NonceLayer`
//! over a `HighestK(2)` validator (a narrow reorder window), so bots racing on
//! one key reach it out of order and some of their requests are refused as
//! too low; the middleware resends those. (With `Strict`, four racing bots
//! lose about 40% of first sends; with `HighestK(20)` almost none.)

use axum::routing::post;
use axum::Router;
use hmac::{Hmac, Mac};
use monotonic_nonce::client::{NonceMiddleware, RetryPolicy, SignError};
use monotonic_nonce::gateway::{HeaderPair, NonceLayer};
use monotonic_nonce::{NonceManager, NonceValidator, Policy};
use sha2::Sha256;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const SECRET: &[u8] = b"the key's secret";

/// The bot's signer: the nonce header, and an HMAC-SHA256 over the path, the
/// nonce and the body (what the exchange documents).
fn sign(request: &mut reqwest::Request, nonce: u64) -> Result<(), SignError> {
    let body = request.body().and_then(|b| b.as_bytes()).unwrap_or_default().to_vec();
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET)?;
    mac.update(request.url().path().as_bytes());
    mac.update(nonce.to_string().as_bytes());
    mac.update(&body);
    let signature: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let headers = request.headers_mut();
    headers.insert("x-api-key", "bot-key".parse()?);
    headers.insert("x-nonce", nonce.into());
    headers.insert("x-signature", signature.parse()?);
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // the exchange (a real one verifies the signature before recording; see examples/axum_gateway.rs)
    let validator = Arc::new(NonceValidator::<String>::new(Policy::HighestK(2)));
    let sends = Arc::new(AtomicU64::new(0));
    let counted = sends.clone();
    let exchange = Router::new()
        .route("/order", post(|| async { "filled" }))
        .layer(NonceLayer::new(validator.clone()).source(HeaderPair::new("x-api-key", "x-nonce")))
        .layer(axum::middleware::from_fn(move |request, next: axum::middleware::Next| {
            // Relaxed: a counter.
            counted.fetch_add(1, Ordering::Relaxed);
            next.run(request)
        }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/order", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, exchange).await });

    // four bots, one key, one manager; reqwest-retry, if used, goes before the nonce middleware
    let manager = Arc::new(NonceManager::new());
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(NonceMiddleware::new(manager, sign).policy(RetryPolicy::attempts(5)))
        .build();
    let bots: Vec<_> = (0..4)
        .map(|bot| {
            let (client, url) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let mut filled = 0;
                for i in 0..250 {
                    let response = client.post(&url).body(format!("{{\"bot\":{bot},\"order\":{i}}}")).send().await;
                    match response {
                        Ok(r) if r.status().is_success() => filled += 1,
                        Ok(r) => eprintln!("bot {bot}: HTTP {}", r.status()),
                        Err(e) => eprintln!("bot {bot}: {e}"),
                    }
                }
                filled
            })
        })
        .collect();
    let mut filled = 0;
    for bot in bots {
        filled += bot.await?;
    }
    // Relaxed: read after every bot finished.
    let sent = sends.load(Ordering::Relaxed);
    let resent = sent.saturating_sub(filled);
    println!("{filled} of 1000 orders filled in {sent} sends ({resent} refused, each resent with a fresh nonce)");
    println!("validator: {:?}", validator.stats());
    Ok(())
}
