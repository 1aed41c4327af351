//! Bots against a validating exchange, end to end: what goes wrong with the
//! usual hand-written nonces, and what each strategy and policy of this crate
//! does about it.
//!
//! `cargo run --release -p exchange-sim -- --help`
//!
//! Bots are real threads sharing `NonceManager`s; the "network" delays every
//! request by a seeded random amount, so requests reach the exchange out of
//! order (the same seed gives the same delays). Scenarios 2, 3, 4 and 6 run
//! on a shared simulated clock that advances 1 ms per request on the key (the
//! rate `Millis` is made for), so the run shows reordering and collisions,
//! not running ahead; scenarios 1 and 5 use the real clock at full speed.
//! The exchange is one `NonceValidator` per scenario, with time bounds on.
//! Each row carries what it is expected to show; the run checks every row and
//! exits non-zero if one fails.

#[cfg(feature = "redis")]
mod fleet;
mod gateways;
mod http;
/// The tests' HMAC-signing axum gateway, shared by path.
#[path = "../../tests/common/http_gateway.rs"]
#[allow(unreachable_pub)]
mod http_gateway;
mod network;
/// The tests' TCP forwarder (scenario 9 cuts a bot off Redis with it), shared by path.
#[cfg(feature = "redis")]
#[path = "../../tests/common/proxy.rs"]
#[allow(unreachable_pub)]
mod proxy;
/// The tests' `redis-server` starter (free port, temp dir, killed on drop), shared by path.
#[cfg(feature = "redis")]
#[path = "../../tests/common/redis_server.rs"]
#[allow(unreachable_pub)]
mod redis_server;
mod report;
mod scenario;

use monotonic_nonce::Policy;
use network::{Expect, Rng, Row};
use report::{print_json, print_table, svg_chart};
use scenario::{attacker, burst, naive, reordered, two_processes};
use std::process::ExitCode;

const USAGE: &str =
    "usage: exchange_sim [--bots N] [--requests N] [--seed N] [--scenario 1-9] [--redis URL] [--json] [--chart FILE.svg]

  --bots N        bot threads sharing one key (default 4)
  --requests N    requests per bot (default 20000)
  --seed N        seed of the network delays (default 42)
  --scenario K    run only scenario K (1-9; default all)
  --redis URL     scenarios 7b, 8c and 9 on this Redis (default: start a local redis-server; needs --features redis)
  --json          print the summary as JSON instead of a table
  --chart FILE    write an SVG chart of scenario 5's lead over the clock
  --help          this text";

#[derive(Debug, Clone)]
pub(crate) struct Args {
    pub(crate) bots: usize,
    pub(crate) requests: usize,
    pub(crate) seed: u64,
    pub(crate) scenario: Option<u32>,
    pub(crate) json: bool,
    pub(crate) chart: Option<String>,
    pub(crate) redis: Option<String>,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut a = Args { bots: 4, requests: 20_000, seed: 42, scenario: None, json: false, chart: None, redis: None };
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match flag.as_str() {
            "--help" | "-h" => return Ok(None),
            "--bots" => a.bots = number(&value("--bots")?, "--bots", 1, 64)? as usize,
            "--requests" => a.requests = number(&value("--requests")?, "--requests", 1, 10_000_000)? as usize,
            "--seed" => a.seed = number(&value("--seed")?, "--seed", 0, u64::MAX)?,
            "--scenario" => a.scenario = Some(number(&value("--scenario")?, "--scenario", 1, 9)? as u32),
            "--redis" => a.redis = Some(value("--redis")?),
            "--json" => a.json = true,
            "--chart" => a.chart = Some(value("--chart")?),
            other => return Err(format!("unknown flag {other:?}")),
        }
    }
    Ok(Some(a))
}

fn number(text: &str, name: &str, min: u64, max: u64) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("{name} takes a whole number from {min} to {max}, not {text:?}")),
    }
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("exchange_sim: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let mut rng = Rng(args.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let wants = |k: u32| args.scenario.is_none_or(|s| s == k);
    let mut rows: Vec<Row> = Vec::new();
    let mut chart = None;
    let progress = |new: Vec<Row>, rows: &mut Vec<Row>| {
        for r in &new {
            eprintln!(
                "  {}: {} requests, {} accepted, {} rejected",
                r.name,
                r.requests,
                r.accepted,
                r.requests - r.accepted
            );
        }
        rows.extend(new);
    };
    eprintln!("exchange_sim: {} bots x {} requests, seed {}", args.bots, args.requests, args.seed);
    if wants(1) {
        progress(naive(&args, &mut rng), &mut rows);
    }
    if wants(2) {
        let strict = [("2 Millis x bots, reordered, Strict", Policy::Strict, Expect::Invariants)];
        progress(reordered(&args, &mut rng, &strict), &mut rows);
    }
    if wants(3) {
        let policies = [
            ("3a the same, HighestK(20)", Policy::HighestK(20), Expect::AllAccepted),
            ("3b the same, Window(1024)", Policy::Window(1_024), Expect::AllAccepted),
        ];
        progress(reordered(&args, &mut rng, &policies), &mut rows);
    }
    if wants(4) {
        progress(two_processes(&args, &mut rng), &mut rows);
    }
    if wants(5) {
        let (new, series) = burst(&args, &mut rng);
        chart = Some(series);
        progress(new, &mut rows);
    }
    if wants(6) {
        progress(attacker(&args, &mut rng), &mut rows);
    }
    if wants(7) {
        progress(gateways::in_memory(&args), &mut rows);
        #[cfg(feature = "redis")]
        match gateways::on_redis(&args) {
            Ok(new) => progress(new, &mut rows),
            Err(why) => eprintln!("  7b skipped: {why}"),
        }
        #[cfg(not(feature = "redis"))]
        eprintln!("  7b skipped: built without Redis support (cargo run --release -p exchange-sim --features redis)");
    }
    if wants(8) {
        match http::over_http(&args) {
            Ok(new) => progress(new, &mut rows),
            Err(why) => {
                eprintln!("exchange_sim: scenario 8 could not run: {why}");
                return ExitCode::FAILURE;
            }
        }
        #[cfg(feature = "redis")]
        match http::over_http_on_redis(&args) {
            Ok(new) => progress(new, &mut rows),
            Err(why) => eprintln!("  8c skipped: {why}"),
        }
        #[cfg(not(feature = "redis"))]
        eprintln!("  8c skipped: built without Redis support (cargo run --release -p exchange-sim --features redis)");
    }
    if wants(9) {
        #[cfg(feature = "redis")]
        match fleet::autoscaling(&args, &mut rng) {
            Ok(new) => progress(new, &mut rows),
            Err(why) => eprintln!("  9 skipped: {why}"),
        }
        #[cfg(not(feature = "redis"))]
        eprintln!("  9 skipped: built without Redis support (cargo run --release -p exchange-sim --features redis)");
    }
    if args.json {
        print_json(&rows);
    } else {
        print_table(&rows);
    }
    if let (Some(path), Some(series)) = (&args.chart, &chart) {
        if let Err(e) = std::fs::write(path, svg_chart(series)) {
            eprintln!("exchange_sim: cannot write the chart {path}: {e}");
            return ExitCode::FAILURE;
        }
        eprintln!("chart written to {path}");
    } else if args.chart.is_some() {
        eprintln!("exchange_sim: --chart needs scenario 5");
        return ExitCode::from(2);
    }
    // the invariants this crate promises, and what each scenario expects
    let failures: Vec<String> = rows.iter().flat_map(Row::failures).collect();
    if failures.is_empty() {
        eprintln!("invariants held: every row showed what it was expected to (no replay accepted outside the baselines, no duplicate from a crate strategy)");
        ExitCode::SUCCESS
    } else {
        for f in &failures {
            eprintln!("INVARIANT VIOLATED: {f}");
        }
        ExitCode::FAILURE
    }
}
