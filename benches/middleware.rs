//! `NonceMiddleware`'s cost per request over plain reqwest, on loopback, in one group.
//!
//! - `middleware/loopback`: a POST to an axum server (hyper) that answers 200
//!   with a short body, through plain `reqwest::Client`, through
//!   `reqwest_middleware` with no middleware, and through `NonceMiddleware`
//!   (a fresh nonce, a header signer, the answer's body read and the response
//!   rebuilt). One keep-alive connection each. After the group, the binary
//!   prints p50 and p99 of 20 000 requests of each, interleaved.
//!
//! `cargo bench --bench middleware --features reqwest`

use axum::routing::post;
use axum::Router;
use criterion::{criterion_group, Criterion, Throughput};
use monotonic_nonce::client::{NonceMiddleware, SignError};
use monotonic_nonce::NonceManager;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn server(rt: &tokio::runtime::Runtime) -> String {
    let app = Router::new().route("/order", post(|| async { r#"{"result":"filled"}"# }));
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/order", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    })
}

fn sign(request: &mut reqwest::Request, nonce: u64) -> Result<(), SignError> {
    request.headers_mut().insert("x-nonce", nonce.into());
    Ok(())
}

struct Clients {
    plain: reqwest::Client,
    empty: reqwest_middleware::ClientWithMiddleware,
    nonce: reqwest_middleware::ClientWithMiddleware,
}

impl Clients {
    fn new() -> Self {
        let manager = Arc::new(NonceManager::new());
        Self {
            plain: reqwest::Client::new(),
            empty: reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).build(),
            nonce: reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
                .with(NonceMiddleware::new(manager, sign))
                .build(),
        }
    }

    /// One request through client `which` (0 plain, 1 empty chain, 2 nonce middleware), its body read.
    async fn send(&self, which: usize, url: &str) {
        let response = match which {
            0 => self.plain.post(url).header("x-nonce", "1").body("{}").send().await.unwrap(),
            1 => self.empty.post(url).header("x-nonce", "1").body("{}").send().await.unwrap(),
            _ => self.nonce.post(url).body("{}").send().await.unwrap(),
        };
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }
}

const NAMES: [&str; 3] = ["baseline/plain_reqwest", "baseline/empty_middleware_chain", "nonce_middleware"];

fn loopback(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let url = server(&rt);
    let clients = Clients::new();
    let mut g = c.benchmark_group("middleware/loopback");
    g.throughput(Throughput::Elements(1));
    for (which, name) in NAMES.into_iter().enumerate() {
        g.bench_function(name, |b| b.iter(|| rt.block_on(clients.send(which, &url))));
    }
    g.finish();
}

fn percentiles(n: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let url = server(&rt);
    let clients = Clients::new();
    let mut times = [Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n)];
    for _ in 0..n {
        for (which, t) in times.iter_mut().enumerate() {
            let start = Instant::now();
            rt.block_on(clients.send(which, &url));
            t.push(start.elapsed());
        }
    }
    for (name, mut t) in NAMES.into_iter().zip(times) {
        t.sort_unstable();
        let at = |q: f64| t[((t.len() - 1) as f64 * q) as usize];
        println!("middleware/loopback/{name}: p50 {:?}, p99 {:?} ({n} requests)", at(0.5), at(0.99));
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

criterion_group! { name = benches; config = config(); targets = loopback }

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    if std::env::args().any(|a| a == "--bench") {
        percentiles(20_000);
    }
}
