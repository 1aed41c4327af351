//! Scenario 8: the same fleet over real HTTP. Bots send HMAC-signed requests
//! over loopback to three axum gateways (`gateway::NonceLayer`: pre-check,
//! signature, record), picking the next gateway in turn as a round-robin
//! balancer would. An attacker replays every accepted request to another
//! gateway, and forges signatures on each victim's next nonces before the
//! victim sends them. With one in-memory validator per gateway the replays
//! get through; with one validator shared by the three (in one process), or
//! one Redis, none does, and no forgery burns an honest nonce.

use crate::gateways::{bots, strategy, GATEWAYS};
use crate::http_gateway::{app, post_order, serve, Answer};
use crate::network::{Expect, Req, Row};
use crate::Args;
use monotonic_nonce::rules::AsyncValidator;
use monotonic_nonce::{NonceManager, NonceValidator, Policy, Strategy};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// At most this many requests per bot: each is an HTTP round trip, plus the attacker's.
const MAX_PER_BOT: usize = 300;

/// The gateways' policy: four bots' requests interleave over HTTP, and a bot
/// task the runtime parks for a few ms sees the others' nonces pass it; 256
/// highest kept covers that on a loaded 2-core machine (64 did not, in CI).
const POLICY: Policy = Policy::HighestK(256);

fn in_memory(args: &Args) -> Arc<NonceValidator<String>> {
    let v = NonceValidator::builder(POLICY)
        .strategy(strategy(args))
        .max_future(Duration::from_secs(1))
        .max_past(Duration::from_secs(3_600))
        .build()
        .expect("valid exchange configuration");
    Arc::new(v)
}

/// What one request came to: the request, and `Ok` or the refusal's reason.
type Outcome = (Req, Result<(), &'static str>, u64);

fn verdict(answer: &Answer) -> Result<(), &'static str> {
    match answer.status {
        200 => Ok(()),
        401 => Err("bad_signature"),
        503 => Err("unavailable"),
        _ if answer.body.contains("Nonce already used") => Err("already_used"),
        _ if answer.body.contains("Nonce too low") => Err("too_low"),
        _ if answer.body.contains("Nonce too old") => Err("too_old"),
        _ => Err("other"),
    }
}

/// Runs the bots, the balancer and the attacker against `bases`; the row.
async fn run(name: &str, args: &Args, bases: Vec<String>, expect: Expect) -> Row {
    let bases = Arc::new(bases);
    let per_bot = args.requests.min(MAX_PER_BOT);
    let start = Instant::now();
    let tasks: Vec<_> = (0..bots(args))
        .map(|id| {
            let bases = bases.clone();
            let total = bots(args);
            tokio::spawn(async move {
                let manager = NonceManager::builder()
                    .strategy(Strategy::Distributed { system_id: id, total_systems: total })
                    .build()
                    .expect("valid strategy");
                let client = reqwest::Client::new();
                let mut out: Vec<Outcome> = Vec::with_capacity(per_bot * 4);
                for i in 0..per_bot {
                    let gateway = (i + id as usize) % GATEWAYS;
                    // the attacker, first: forged signatures on the victim's next nonces (predicted
                    // from its last one: the next two a `Distributed` bot hands out within this ms)
                    let last = manager.last();
                    for forged in [last + total, last + 2 * total] {
                        let t = Instant::now();
                        let a = post_order(&client, &bases[(gateway + 2) % GATEWAYS], "key-1", forged, true).await;
                        out.push((
                            Req { account: 1, nonce: forged, replay: true },
                            verdict(&a),
                            t.elapsed().as_nanos() as u64,
                        ));
                    }
                    let nonce = manager.next().expect("a nonce");
                    let t = Instant::now();
                    let a = post_order(&client, &bases[gateway], "key-1", nonce, false).await;
                    let honest = verdict(&a);
                    out.push((Req { account: 1, nonce, replay: false }, honest, t.elapsed().as_nanos() as u64));
                    if honest.is_ok() {
                        // and every accepted request, replayed to the next gateway
                        let t = Instant::now();
                        let a = post_order(&client, &bases[(gateway + 1) % GATEWAYS], "key-1", nonce, false).await;
                        out.push((Req { account: 1, nonce, replay: true }, verdict(&a), t.elapsed().as_nanos() as u64));
                    }
                }
                out
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.extend(task.await.expect("a bot task"));
    }
    tally(name, expect, &outcomes, start.elapsed())
}

fn tally(name: &str, expect: Expect, outcomes: &[Outcome], elapsed: Duration) -> Row {
    let mut row = Row { name: name.to_owned(), expect, requests: outcomes.len() as u64, ..Row::default() };
    let mut latencies: Vec<u64> = outcomes.iter().map(|o| o.2).collect();
    for (req, verdict, _) in outcomes {
        row.honest += u64::from(!req.replay);
        match verdict {
            Ok(()) => {
                row.accepted += 1;
                row.replays_accepted += u64::from(req.replay);
            }
            Err(reason) => *row.rejected.entry(reason).or_default() += 1,
        }
    }
    row.validations_per_s = outcomes.len() as f64 / elapsed.as_secs_f64().max(1e-9);
    latencies.sort_unstable();
    let pick = |q: f64| latencies.get(((latencies.len() as f64 - 1.0) * q) as usize).copied().unwrap_or(0);
    (row.p50_ns, row.p99_ns) = (pick(0.50), pick(0.99));
    row
}

async fn serve_all<V: AsyncValidator + Clone + 'static>(validators: Vec<V>) -> Vec<String> {
    let mut bases = Vec::new();
    for v in validators {
        bases.push(serve(app(v)).await);
    }
    bases
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(|e| e.to_string())
}

/// 8a (a validator in each gateway's memory) and 8b (one shared by the three).
pub(crate) fn over_http(args: &Args) -> Result<Vec<Row>, String> {
    let rt = runtime()?;
    rt.block_on(async {
        let apart = serve_all((0..GATEWAYS).map(|_| in_memory(args)).collect()).await;
        let shared = in_memory(args);
        let together = serve_all(vec![shared.clone(); GATEWAYS]).await;
        Ok(vec![
            run("8a HTTP: 3 gateways, in-memory each, replays and forgeries", args, apart, Expect::ReplaysGetThrough)
                .await,
            run("8b HTTP: 3 gateways, one shared validator, replays and forgeries", args, together, Expect::HonestOnly)
                .await,
        ])
    })
}

/// 8c: the three gateways on one Redis.
#[cfg(feature = "redis")]
pub(crate) fn over_http_on_redis(args: &Args) -> Result<Vec<Row>, String> {
    use monotonic_nonce::RedisValidator;
    let rt = runtime()?;
    let (url, _server) = match &args.redis {
        Some(url) => (url.clone(), None),
        None => {
            let server = crate::gateways::start_local()?;
            (server.url(), Some(server))
        }
    };
    let now = monotonic_nonce::Clock::now_ms(&monotonic_nonce::SystemClock).unwrap_or(0);
    let prefix = format!("sim-http-{}-{now}", std::process::id());
    rt.block_on(async {
        let mut validators = Vec::new();
        for _ in 0..GATEWAYS {
            let v = RedisValidator::builder(POLICY)
                .url(&url)
                .key_prefix(&prefix)
                .strategy(strategy(args))
                .max_future(Duration::from_secs(1))
                .max_past(Duration::from_secs(3_600))
                .response_timeout(Duration::from_secs(1))
                .build()
                .await
                .map_err(|e| format!("cannot use Redis at {url}: {e}"))?;
            validators.push(v);
        }
        if validators.iter().any(|v| v.guard_floor() > 0) {
            // a server that started less than max_future ago: its restart guard is up for a second
            tokio::time::sleep(Duration::from_millis(1_100)).await;
        }
        let bases = serve_all(validators).await;
        Ok(vec![run("8c HTTP: 3 gateways, one Redis, replays and forgeries", args, bases, Expect::HonestOnly).await])
    })
}
