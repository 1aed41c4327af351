//! The tower layer over `RedisValidator`: three real axum gateways on one real
//! `redis-server` started by the test, reached over loopback by a real HTTP client.
//!
//! Needs `redis-server` and `redis-cli` (Debian: `apt-get install -y redis-server`);
//! run with `cargo test --features redis,tower --test redis_gateway`.
#![cfg(all(feature = "redis", feature = "tower"))]

mod common;

use common::http_gateway::{app, post_order, serve};
use common::redis_server::RedisServer;
use monotonic_nonce::{Policy, RedisValidator};
use std::time::Duration;

async fn gateway(url: &str) -> RedisValidator {
    RedisValidator::builder(Policy::HighestK(8))
        .url(url)
        .key_prefix("gw")
        .assume_new_prefix()
        .response_timeout(Duration::from_millis(500))
        .build()
        .await
        .expect("the gateway starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_sprayed_over_three_gateways_on_one_redis_are_all_refused() {
    let server = RedisServer::start(&["--appendfsync", "always"]);
    let mut bases = Vec::new();
    for _ in 0..3 {
        bases.push(serve(app(gateway(&server.url()).await)).await);
    }
    let client = reqwest::Client::new();
    let mut accepted = Vec::new();
    for n in 1..=90u64 {
        // round robin, as a balancer would
        let a = post_order(&client, &bases[n as usize % 3], "bot", n, false).await;
        assert_eq!(a.status, 200, "{}", a.body);
        accepted.push(n);
    }
    for &n in &accepted {
        for base in &bases {
            let a = post_order(&client, base, "bot", n, false).await;
            assert_eq!(a.status, 400, "replay of {n} to {base}: {}", a.body);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_stopped_every_request_gets_503_and_validation_resumes_when_it_returns() {
    let mut server = RedisServer::start(&["--appendfsync", "always"]);
    let base = serve(app(gateway(&server.url()).await)).await;
    let client = reqwest::Client::new();
    assert_eq!(post_order(&client, &base, "bot", 1, false).await.status, 200);
    server.kill();
    for n in 2..=11 {
        let a = post_order(&client, &base, "bot", n, false).await;
        assert_eq!(a.status, 503, "{n}: {}", a.body);
        assert_eq!(a.retry_after.as_deref(), Some("1"), "{n}");
        assert!(a.body.contains("SERVICE_UNAVAILABLE"), "{}", a.body);
    }
    server.restart(); // same port, its AOF reloaded; the gateway is not restarted
    let mut resumed = None;
    for attempt in 0..50 {
        let a = post_order(&client, &base, "bot", 12 + attempt, false).await;
        if a.status == 200 {
            resumed = Some(12 + attempt);
            break;
        }
        assert_eq!(a.status, 503, "{}", a.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resumed = resumed.expect("validation resumes once Redis is back");
    assert_eq!(post_order(&client, &base, "bot", resumed, false).await.status, 400, "a replay after the outage");
    // nothing sent while it was down was recorded: 11 (within HighestK(8)'s reach) is still free
    assert_eq!(post_order(&client, &base, "bot", 11, false).await.status, 200, "11 was never recorded");
}
