//! Scenario 7: three gateway instances behind a round-robin balancer, bots on
//! `Distributed` keys, and an attacker who replays every accepted request to
//! a different instance. With one in-memory validator per instance the
//! replays get through; with every instance on one Redis, none does.

use crate::network::{exchange_with, Expect, Req, Row};
use crate::scenario::sim_clock;
use crate::Args;
use monotonic_nonce::{clock::ManualClock, NonceManager, NonceValidator, Policy, Rejection, Strategy};
use std::time::Duration;

/// Gateways behind the balancer.
pub(crate) const GATEWAYS: usize = 3;
/// At most this many requests per bot here: every call is a network round trip.
const MAX_PER_BOT: usize = 2_000;

/// How many bots share the key (each a `Distributed` id of this many).
pub(crate) fn bots(args: &Args) -> u64 {
    args.bots.min(8) as u64
}

/// The strategy the gateways are told the key signs with (the time scale of `bots` systems).
pub(crate) fn strategy(args: &Args) -> Strategy {
    Strategy::Distributed { system_id: 0, total_systems: bots(args) }
}

/// The requests of the bots sharing account 1 with `Distributed` ids, in send
/// order, each bot sending once per ms of `clock` (which this advances).
fn honest(args: &Args, clock: &ManualClock) -> Vec<Req> {
    let bots = bots(args);
    let managers: Vec<NonceManager<ManualClock>> = (0..bots)
        .map(|id| {
            NonceManager::builder()
                .clock(clock.clone())
                .strategy(Strategy::Distributed { system_id: id, total_systems: bots })
                .build()
                .expect("valid strategy")
        })
        .collect();
    let per_bot = args.requests.min(MAX_PER_BOT);
    let mut reqs = Vec::with_capacity(per_bot * managers.len());
    for _ in 0..per_bot {
        for m in &managers {
            reqs.push(Req { account: 1, nonce: m.next().expect("a nonce"), replay: false });
        }
        clock.advance(1);
    }
    reqs
}

/// Sends each honest request to the next gateway round-robin, and the
/// attacker's copy of it right after to the gateway after that.
fn run(name: &str, reqs: &[Req], expect: Expect, mut gateway: impl FnMut(usize, &Req) -> Result<(), Rejection>) -> Row {
    let wire: Vec<Req> = reqs.iter().flat_map(|r| [*r, Req { replay: true, ..*r }]).collect();
    let mut i = 0;
    let mut row = exchange_with(name, &wire, |r| {
        // request k goes to gateway k % 3, its replay to (k + 1) % 3
        let g = (i / 2 + i % 2) % GATEWAYS;
        i += 1;
        gateway(g, r)
    });
    row.expect = expect;
    row
}

fn bounded(strategy: Strategy, clock: &ManualClock) -> NonceValidator<u32, ManualClock> {
    NonceValidator::builder(Policy::HighestK(64))
        .clock(clock.clone())
        .strategy(strategy)
        .max_future(Duration::from_secs(1))
        .max_past(Duration::from_secs(3_600))
        .build()
        .expect("valid exchange configuration")
}

/// 7a: one in-memory validator per gateway.
pub(crate) fn in_memory(args: &Args) -> Vec<Row> {
    let clock = sim_clock();
    let reqs = honest(args, &clock);
    let gateways: Vec<_> = (0..GATEWAYS).map(|_| bounded(strategy(args), &clock)).collect();
    vec![run("7a 3 gateways, in-memory each, replay to another", &reqs, Expect::ReplaysGetThrough, |g, r| {
        gateways[g].validate(&r.account, r.nonce)
    })]
}

/// 7b: every gateway on one Redis, when there is one.
#[cfg(feature = "redis")]
pub(crate) fn on_redis(args: &Args) -> Result<Vec<Row>, String> {
    use monotonic_nonce::RedisValidator;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let (url, _server) = match &args.redis {
        Some(url) => (url.clone(), None),
        None => {
            let server = start_local()?;
            (server.url(), Some(server))
        }
    };
    let prefix = format!(
        "sim-{}-{}",
        std::process::id(),
        monotonic_nonce::Clock::now_ms(&monotonic_nonce::SystemClock).unwrap_or(0)
    );
    let clock = sim_clock();
    let gateways: Vec<RedisValidator<ManualClock>> = (0..GATEWAYS)
        .map(|_| {
            rt.block_on(
                RedisValidator::builder(Policy::HighestK(64))
                    .url(&url)
                    .clock(clock.clone())
                    .key_prefix(&prefix)
                    .strategy(strategy(args))
                    .max_future(Duration::from_secs(1))
                    .max_past(Duration::from_secs(3_600))
                    .response_timeout(Duration::from_secs(1))
                    .build(),
            )
            .map_err(|e| format!("cannot use Redis at {url}: {e}"))
        })
        .collect::<Result<_, _>>()?;
    if gateways.iter().any(|g| g.guard_floor() > 0) {
        // a server that started less than max_future ago: its restart guard is up for a second
        clock.advance(1_001);
    }
    let reqs = honest(args, &clock);
    Ok(vec![run("7b 3 gateways, one Redis, replay to another", &reqs, Expect::HonestOnly, |g, r| {
        rt.block_on(gateways[g].validate(r.account.to_be_bytes(), r.nonce))
    })])
}

/// A `redis-server` of the simulator's own, on a free port, when no `--redis URL` was given.
#[cfg(feature = "redis")]
pub(crate) fn start_local() -> Result<crate::redis_server::RedisServer, String> {
    let found = std::process::Command::new("redis-server").arg("--version").output();
    if !found.is_ok_and(|o| o.status.success()) {
        return Err("no --redis URL given and no redis-server to start (apt-get install -y redis-server)".into());
    }
    Ok(crate::redis_server::RedisServer::start(&["--appendfsync", "always"]))
}
