//! Server-issued nonces end to end, the ACME way: a server on `NonceIssuer`
//! that rejects 5% of valid nonces on purpose (as Pebble does) and restarts
//! halfway through (every nonce it issued becomes unknown), and clients that
//! keep the `Replay-Nonce` of every response in `ReplayNonces` and repeat
//! only the failed request with `retry_bad_nonce`.
//!
//! `cargo run --release --example acme_nonces` (exits non-zero if a request
//! failed, attempts exceeded requests x 1.1, or a nonce was sent twice)

use monotonic_nonce::{
    acme::{retry_bad_nonce, BadNonce, Classified, ReplayNonces},
    client::RetryPolicy,
    NonceIssuer,
};
use std::collections::{BTreeMap, HashSet};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

const CLIENTS: u64 = 4;
const REQUESTS: u64 = 2_500; // per client

/// What the server answers: a body or a `badNonce` problem, with a fresh `Replay-Nonce` either way.
struct Response {
    result: Result<(), BadNonce>,
    replay_nonce: String,
}

struct Server {
    issuer: RwLock<NonceIssuer>,
    restarts: AtomicU64,
    refusals: Mutex<BTreeMap<String, u64>>,
}

impl Server {
    fn boot() -> NonceIssuer {
        NonceIssuer::builder().reject_rate(0.05).build().expect("valid issuer")
    }

    /// `HEAD /new-nonce`.
    fn new_nonce(&self) -> String {
        self.issuer.read().unwrap().issue()
    }

    /// A signed POST carrying `nonce`.
    fn post(&self, nonce: &str) -> Response {
        let issuer = self.issuer.read().unwrap();
        let result = issuer.redeem(nonce);
        if let Err(e) = &result {
            *self.refusals.lock().unwrap().entry(format!("{e:?}")).or_default() += 1;
        }
        Response { result, replay_nonce: issuer.issue() }
    }

    fn restart(&self) {
        *self.issuer.write().unwrap() = Self::boot();
        self.restarts.fetch_add(1, Ordering::Relaxed);
    }
}

fn main() -> ExitCode {
    let server =
        Server { issuer: RwLock::new(Server::boot()), restarts: AtomicU64::new(0), refusals: Mutex::default() };
    let sent: Mutex<HashSet<String>> = Mutex::default();
    let duplicates = AtomicU64::new(0);
    let (attempts, fetches, done, failed) =
        (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    std::thread::scope(|s| {
        for _ in 0..CLIENTS {
            s.spawn(|| {
                let cache = ReplayNonces::new(16, Duration::from_secs(60));
                for _ in 0..REQUESTS {
                    let finished = done.fetch_add(1, Ordering::Relaxed);
                    if finished == CLIENTS * REQUESTS / 2 {
                        server.restart();
                    }
                    let result = retry_bad_nonce(
                        &cache,
                        RetryPolicy::attempts(5),
                        |nonce| {
                            attempts.fetch_add(1, Ordering::Relaxed);
                            if !sent.lock().unwrap().insert(nonce.to_owned()) {
                                duplicates.fetch_add(1, Ordering::Relaxed);
                            }
                            let response = server.post(&nonce);
                            match response.result {
                                Ok(()) => {
                                    cache.push(response.replay_nonce);
                                    Ok(())
                                }
                                Err(e) => Err((e, response.replay_nonce)),
                            }
                        },
                        // a badNonce problem carries the fresh nonce in its Replay-Nonce header
                        |(_, fresh): &(BadNonce, String)| Classified::BadNonce(Some(fresh.clone())),
                        || {
                            fetches.fetch_add(1, Ordering::Relaxed);
                            Ok(server.new_nonce())
                        },
                    );
                    if result.is_err() {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let requests = CLIENTS * REQUESTS;
    let attempts = attempts.into_inner();
    let failed = failed.into_inner();
    let duplicates = duplicates.into_inner();
    println!("| clients | requests | succeeded | attempts | attempts / request | newNonce fetches | server restarts | nonces sent twice |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {CLIENTS} | {requests} | {} | {attempts} | {:.3} | {} | {} | {duplicates} |",
        requests - failed,
        attempts as f64 / requests as f64,
        fetches.into_inner(),
        server.restarts.load(Ordering::Relaxed),
    );
    println!("\nbadNonce answers by reason:");
    for (reason, n) in server.refusals.lock().unwrap().iter() {
        println!("  {reason}: {n}");
    }
    let mut ok = true;
    if failed > 0 {
        eprintln!("FAILED: {failed} requests did not succeed");
        ok = false;
    }
    if attempts as f64 > requests as f64 * 1.1 {
        eprintln!("FAILED: {attempts} attempts for {requests} requests (more than x1.1)");
        ok = false;
    }
    if duplicates > 0 {
        eprintln!("FAILED: {duplicates} nonces sent twice");
        ok = false;
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
