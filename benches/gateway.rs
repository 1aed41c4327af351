//! The tower layer's cost over its baselines, in the same groups.
//!
//! - `gateway/in_process`: one request through `tower::ServiceExt::oneshot`
//!   into a service that answers at once. Baselines: building the request
//!   alone; the identity layer (what the stack costs without the check); and
//!   `validate` called directly after reading `Verified` from the request (the
//!   validator's own work plus the extraction). `nonce_layer`: the same
//!   request through `NonceLayer::new`. The layer's cost is `nonce_layer -
//!   identity_layer`; the work it wraps is `extract_and_validate -
//!   build_request`. Every request carries a fresh nonce of one of 1 000
//!   accounts (all accepted).
//! - `gateway/loopback`: a POST over loopback to an axum server (hyper) with a
//!   real HTTP client (reqwest, one keep-alive connection), through the identity
//!   layer or through `NonceLayer` (the request carries its nonce in headers,
//!   read by a `HeaderPair` source). After the criterion groups, the binary
//!   prints p50 and p99 of 20 000 requests of each, interleaved.
//! - `metrics/validate`: `NonceValidator::validate` (`Strict`, 1 000
//!   accounts, every call accepted): `feature_off` when built without the
//!   `metrics` feature; with it, `no_recorder` (built with no recorder) and
//!   `debugging_recorder` (built under metrics-util's debugging recorder, whose
//!   counters are atomics as Prometheus's are). Run both commands:
//!
//! `cargo bench --bench gateway --features tower,metrics` and
//! `cargo bench --bench gateway --features tower -- metrics/`

use axum::routing::post;
use axum::Router;
use criterion::{criterion_group, Criterion, Throughput};
use monotonic_nonce::gateway::{FromVerified, HeaderPair, NonceLayer, NonceSource, Verified};
use monotonic_nonce::{NonceValidator, Policy};
use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::layer::util::Identity;
use tower::{service_fn, Layer, ServiceExt};

const ACCOUNTS: u64 = 1_000;

/// Fresh `(account, nonce)` pairs: account `i % 1000`, nonces rising per account.
struct Pairs(AtomicU64);

impl Pairs {
    fn next(&self) -> (String, u64) {
        // Relaxed: a counter for test data.
        let i = self.0.fetch_add(1, Ordering::Relaxed);
        (format!("acct-{}", i % ACCOUNTS), i / ACCOUNTS + 1)
    }
}

fn request(account: String, nonce: u64) -> http::Request<String> {
    let mut request = http::Request::new(String::new());
    request.extensions_mut().insert(Verified::new(account, nonce));
    request
}

fn answer() -> impl tower::Service<
    http::Request<String>,
    Response = http::Response<String>,
    Error = Infallible,
    Future = impl Future<Output = Result<http::Response<String>, Infallible>> + Send,
> + Clone
       + Send
       + 'static {
    service_fn(|_: http::Request<String>| async { Ok::<_, Infallible>(http::Response::new(String::new())) })
}

fn in_process(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut g = c.benchmark_group("gateway/in_process");
    g.throughput(Throughput::Elements(1));
    let pairs = Pairs(AtomicU64::new(0));
    g.bench_function("baseline/build_request", |b| {
        b.iter(|| {
            let (account, nonce) = pairs.next();
            black_box(request(account, nonce))
        })
    });
    let identity = Identity::new().layer(answer());
    g.bench_function("baseline/identity_layer", |b| {
        b.iter(|| {
            let (account, nonce) = pairs.next();
            rt.block_on(identity.clone().oneshot(request(account, nonce))).unwrap().status()
        })
    });
    let v = Arc::new(NonceValidator::<String>::new(Policy::Strict));
    g.bench_function("baseline/extract_and_validate", |b| {
        b.iter(|| {
            let (account, nonce) = pairs.next();
            let request = request(account, nonce);
            let (account, nonce) = FromVerified.read(&request).unwrap();
            black_box(v.validate(account.as_str(), nonce)).is_ok()
        })
    });
    let layered = NonceLayer::new(v.clone()).layer(answer());
    g.bench_function("nonce_layer", |b| {
        b.iter(|| {
            let (account, nonce) = pairs.next();
            let response = rt.block_on(layered.clone().oneshot(request(account, nonce))).unwrap();
            assert_eq!(response.status(), 200);
        })
    });
    g.finish();
}

/// An axum server on 127.0.0.1:0, with or without the layer; its URL.
fn loopback_server(rt: &tokio::runtime::Runtime, with_layer: bool) -> String {
    let router = Router::new().route("/order", post(|| async { "ok" }));
    let router = if with_layer {
        let v = Arc::new(NonceValidator::<String>::new(Policy::Strict));
        router.layer(NonceLayer::new(v).source(HeaderPair::new("x-api-key", "x-nonce")))
    } else {
        router.layer(Identity::new())
    };
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/order", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        url
    })
}

async fn post_one(client: &reqwest::Client, url: &str, pairs: &Pairs) {
    let (account, nonce) = pairs.next();
    let response =
        client.post(url).header("x-api-key", account).header("x-nonce", nonce.to_string()).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

fn loopback(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (plain, layered) = (loopback_server(&rt, false), loopback_server(&rt, true));
    let client = reqwest::Client::new();
    let pairs = Pairs(AtomicU64::new(0));
    let mut g = c.benchmark_group("gateway/loopback");
    g.throughput(Throughput::Elements(1));
    g.bench_function("baseline/identity_layer", |b| b.iter(|| rt.block_on(post_one(&client, &plain, &pairs))));
    g.bench_function("nonce_layer", |b| b.iter(|| rt.block_on(post_one(&client, &layered, &pairs))));
    g.finish();
}

/// p50 and p99 of `n` requests to each server, interleaved.
fn loopback_percentiles(n: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let (plain, layered) = (loopback_server(&rt, false), loopback_server(&rt, true));
    let client = reqwest::Client::new();
    let pairs = Pairs(AtomicU64::new(0));
    let mut times = [Vec::with_capacity(n), Vec::with_capacity(n)];
    for _ in 0..n {
        for (i, url) in [&plain, &layered].into_iter().enumerate() {
            let t = Instant::now();
            rt.block_on(post_one(&client, url, &pairs));
            times[i].push(t.elapsed());
        }
    }
    for (name, mut t) in ["baseline/identity_layer", "nonce_layer"].into_iter().zip(times) {
        t.sort_unstable();
        let at = |q: f64| t[((t.len() - 1) as f64 * q) as usize];
        println!("gateway/loopback/{name}: p50 {:?}, p99 {:?} ({n} requests)", at(0.5), at(0.99));
    }
}

fn metrics_cost(c: &mut Criterion) {
    let mut g = c.benchmark_group("metrics/validate");
    g.throughput(Throughput::Elements(1));
    let quiet = NonceValidator::<u64>::new(Policy::Strict);
    #[cfg(feature = "metrics")]
    let recorder = metrics_util::debugging::DebuggingRecorder::new();
    #[cfg(feature = "metrics")]
    let recorded = metrics::with_local_recorder(&recorder, || NonceValidator::<u64>::new(Policy::Strict));
    #[cfg(feature = "metrics")]
    let runs = [("no_recorder", &quiet), ("debugging_recorder", &recorded)];
    #[cfg(not(feature = "metrics"))]
    let runs = [("feature_off", &quiet)];
    for (name, v) in runs {
        let i = AtomicU64::new(0);
        g.bench_function(name, |b| {
            b.iter(|| {
                // Relaxed: a counter for test data.
                let n = i.fetch_add(1, Ordering::Relaxed);
                black_box(v.validate(&(n % ACCOUNTS), n / ACCOUNTS + 1)).is_ok()
            })
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! { name = benches; config = config(); targets = in_process, loopback, metrics_cost }

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    // the percentiles only when the loopback group was asked for (or everything)
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let bench_run = std::env::args().any(|a| a == "--bench");
    if bench_run && (filter.is_empty() || filter.iter().any(|f| "gateway/loopback".contains(f.as_str()))) {
        loopback_percentiles(20_000);
    }
}
