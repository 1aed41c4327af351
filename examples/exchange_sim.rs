//! Bots against a validating exchange, end to end: what goes wrong with the
//! usual hand-written nonces, and what each strategy and policy of this crate
//! does about it.
//!
//! `cargo run --release --example exchange_sim -- --help`
//!
//! Bots are real threads sharing `NonceManager`s; the "network" delays every
//! request by a seeded random amount, so requests reach the exchange out of
//! order (the same seed gives the same delays). Scenarios 2, 3, 4 and 6 run
//! on a shared simulated clock that advances 1 ms per request on the key (the
//! rate `Millis` is made for), so the run shows reordering and collisions,
//! not running ahead; scenarios 1 and 5 use the real clock at full speed.
//! The exchange is one `NonceValidator` per scenario, with time bounds on. The run checks its own invariants and exits non-zero
//! if a replay was accepted or a crate strategy produced a duplicate.

use monotonic_nonce::{
    Clock, ManualClock, NonceManager, NonceValidator, Policy, Rejection, Strategy, SystemClock, I64_MAX,
};
use std::collections::{BTreeMap, HashSet};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

const USAGE: &str =
    "usage: exchange_sim [--bots N] [--requests N] [--seed N] [--scenario 1-6] [--json] [--chart FILE.svg]

  --bots N        bot threads sharing one key (default 4)
  --requests N    requests per bot (default 20000)
  --seed N        seed of the network delays (default 42)
  --scenario K    run only scenario K (1-6; default all)
  --json          print the summary as JSON instead of a table
  --chart FILE    write an SVG chart of scenario 5's lead over the clock
  --help          this text";

#[derive(Debug, Clone)]
struct Args {
    bots: usize,
    requests: usize,
    seed: u64,
    scenario: Option<u32>,
    json: bool,
    chart: Option<String>,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let mut a = Args { bots: 4, requests: 20_000, seed: 42, scenario: None, json: false, chart: None };
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match flag.as_str() {
            "--help" | "-h" => return Ok(None),
            "--bots" => a.bots = number(&value("--bots")?, "--bots", 1, 64)? as usize,
            "--requests" => a.requests = number(&value("--requests")?, "--requests", 1, 10_000_000)? as usize,
            "--seed" => a.seed = number(&value("--seed")?, "--seed", 0, u64::MAX)?,
            "--scenario" => a.scenario = Some(number(&value("--scenario")?, "--scenario", 1, 6)? as u32),
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

/// xorshift64: the network's delays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One request on the wire.
#[derive(Debug, Clone, Copy)]
struct Req {
    account: u32,
    nonce: u64,
    replay: bool,
}

/// The network: each request is delayed by up to `spread` sending slots, so
/// requests overtake each other by fewer than `spread` places.
fn deliver(mut reqs: Vec<Req>, rng: &mut Rng, spread: u64) -> Vec<Req> {
    let mut keyed: Vec<(u64, Req)> =
        reqs.drain(..).enumerate().map(|(i, r)| (i as u64 + rng.next() % (spread + 1), r)).collect();
    keyed.sort_by_key(|(at, _)| *at);
    keyed.into_iter().map(|(_, r)| r).collect()
}

/// One row of the summary.
#[derive(Debug, Default)]
struct Row {
    name: String,
    requests: u64,
    accepted: u64,
    rejected: BTreeMap<&'static str, u64>,
    replays_accepted: u64,
    /// The requests that were accepted (an attacker replays these).
    accepted_reqs: Vec<Req>,
    /// Duplicates a crate strategy produced within one manager (must be 0).
    crate_duplicates: u64,
    /// Duplicates the naive generator produced (expected).
    naive_duplicates: u64,
    validations_per_s: f64,
    p50_ns: u64,
    p99_ns: u64,
    max_lead_ms: i64,
}

fn reason(r: &Rejection) -> &'static str {
    match r {
        Rejection::AlreadyUsed { .. } => "already_used",
        Rejection::TooLow { .. } => "too_low",
        Rejection::TooFarInFuture { .. } => "too_far_in_future",
        Rejection::TooOld { .. } => "too_old",
        Rejection::NotPositive => "not_positive",
        Rejection::AboveCeiling { .. } => "above_ceiling",
        _ => "other",
    }
}

/// The exchange: validates every request in arrival order, timing each call.
fn exchange<C: Clock>(name: &str, validator: &NonceValidator<u32, C>, reqs: &[Req]) -> Row {
    let mut row = Row { name: name.to_owned(), requests: reqs.len() as u64, ..Row::default() };
    let mut latencies = Vec::with_capacity(reqs.len());
    let start = Instant::now();
    for r in reqs {
        let t = Instant::now();
        let verdict = validator.validate(&r.account, r.nonce);
        latencies.push(t.elapsed().as_nanos() as u64);
        match verdict {
            Ok(()) => {
                row.accepted += 1;
                row.replays_accepted += u64::from(r.replay);
                row.accepted_reqs.push(*r);
            }
            Err(e) => *row.rejected.entry(reason(&e)).or_default() += 1,
        }
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    row.validations_per_s = reqs.len() as f64 / secs;
    latencies.sort_unstable();
    let pick = |q: f64| latencies.get(((latencies.len() as f64 - 1.0) * q) as usize).copied().unwrap_or(0);
    row.p50_ns = pick(0.50);
    row.p99_ns = pick(0.99);
    row
}

fn validator<C: Clock>(policy: Policy, units_per_ms: u64, clock: C) -> NonceValidator<u32, C> {
    NonceValidator::builder(policy)
        .clock(clock)
        .units_per_ms(units_per_ms)
        .max_future(Duration::from_secs(1))
        .max_past(Duration::from_secs(3_600))
        .build()
        .expect("valid exchange configuration")
}

/// The simulated clock, starting at the real time.
fn sim_clock() -> ManualClock {
    ManualClock::new(SystemClock.now_ms().expect("clock"))
}

/// `bots` threads take `requests` nonces each from one shared manager, calling
/// `tick` after each (the simulated clock); returns the nonces in the order
/// they were handed out, the duplicates, and the largest lead seen.
fn shared_manager_run<C: Clock>(
    manager: &Arc<NonceManager<C>>,
    bots: usize,
    requests: usize,
    tick: &(dyn Fn() + Sync),
) -> (Vec<u64>, u64, i64) {
    let per_bot: Vec<(Vec<u64>, i64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..bots)
            .map(|_| {
                let m = Arc::clone(manager);
                s.spawn(move || {
                    let mut lead = i64::MIN;
                    let mut out = Vec::with_capacity(requests);
                    for i in 0..requests {
                        out.push(m.next().expect("a nonce"));
                        tick();
                        if i % 1_000 == 0 {
                            lead = lead.max(m.lead_ms());
                        }
                    }
                    (out, lead.max(m.lead_ms()))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("bot thread")).collect()
    });
    let max_lead = per_bot.iter().map(|(_, l)| *l).max().unwrap_or(0);
    let mut all: Vec<u64> = per_bot.into_iter().flat_map(|(v, _)| v).collect();
    all.sort_unstable(); // a manager hands out increasing nonces: this is send order
    let before = all.len();
    let mut dedup = all.clone();
    dedup.dedup();
    ((all), (before - dedup.len()) as u64, max_lead)
}

fn requests_for(account: u32, nonces: &[u64]) -> Vec<Req> {
    nonces.iter().map(|&nonce| Req { account, nonce, replay: false }).collect()
}

/// Scenario 1: the naive generator from exchange docs, `nonce = now_ms`, one bot.
fn naive(args: &Args, rng: &mut Rng) -> Vec<Row> {
    let n = args.requests;
    let nonces: Vec<u64> = (0..n).map(|_| SystemClock.now_ms().expect("clock")).collect();
    let distinct: HashSet<u64> = nonces.iter().copied().collect();
    let reqs = deliver(requests_for(1, &nonces), rng, 0);
    let mut row = exchange("1 naive now_ms, 1 bot, Strict", &validator(Policy::Strict, 1, SystemClock), &reqs);
    row.naive_duplicates = (n - distinct.len()) as u64;
    vec![row]
}

/// Scenarios 2 and 3: `Millis` shared by the bots, requests reordered by the network.
fn reordered(args: &Args, rng: &mut Rng, policies: &[(&str, Policy)]) -> Vec<Row> {
    policies
        .iter()
        .map(|(name, policy)| {
            let clock = sim_clock();
            let m = Arc::new(NonceManager::builder().clock(clock.clone()).build().expect("valid"));
            let (nonces, dups, lead) = shared_manager_run(&m, args.bots, args.requests, &|| {
                clock.advance(1);
            });
            let reqs = deliver(requests_for(1, &nonces), rng, 8);
            let mut row = exchange(name, &validator(*policy, 1, clock.clone()), &reqs);
            row.crate_duplicates = dups;
            row.max_lead_ms = lead;
            row
        })
        .collect()
}

/// Scenario 4: two processes' worth of managers on one key.
fn two_processes(args: &Args, rng: &mut Rng) -> Vec<Row> {
    let variants: [(&str, [Strategy; 2]); 2] = [
        ("4a two Millis managers, one key", [Strategy::Millis, Strategy::Millis]),
        (
            "4b Distributed 0/2 + 1/2, one key",
            [
                Strategy::Distributed { system_id: 0, total_systems: 2 },
                Strategy::Distributed { system_id: 1, total_systems: 2 },
            ],
        ),
    ];
    variants
        .into_iter()
        .map(|(name, strategies)| {
            let clock = sim_clock();
            let managers: Vec<NonceManager<ManualClock>> = strategies
                .iter()
                .map(|&s| NonceManager::builder().clock(clock.clone()).strategy(s).build().expect("valid strategy"))
                .collect();
            // each process sends once per ms on the key, in step
            let n = args.requests * args.bots / 2;
            let mut per_manager: Vec<Vec<u64>> = (0..2).map(|_| Vec::with_capacity(n)).collect();
            let mut max_lead_ms = i64::MIN;
            for _ in 0..n {
                for (m, out) in managers.iter().zip(per_manager.iter_mut()) {
                    out.push(m.next().expect("a nonce"));
                    max_lead_ms = max_lead_ms.max(m.lead_ms());
                }
                clock.advance(1);
            }
            let crate_duplicates =
                per_manager.iter().map(|v| v.windows(2).filter(|w| w[0] >= w[1]).count() as u64).sum();
            let mut all: Vec<u64> = per_manager.into_iter().flatten().collect();
            all.sort_unstable();
            let reqs = deliver(requests_for(1, &all), rng, 0);
            let mut row =
                exchange(name, &validator(Policy::Strict, strategies[0].units_per_ms(), clock.clone()), &reqs);
            row.crate_duplicates = crate_duplicates;
            row.max_lead_ms = max_lead_ms;
            row
        })
        .collect()
}

/// Scenario 5: a burst at full speed; returns the rows and `(elapsed ms, lead ms)` samples per strategy.
#[allow(clippy::type_complexity)]
fn burst(args: &Args, rng: &mut Rng) -> (Vec<Row>, Vec<(&'static str, Vec<(f64, f64)>)>) {
    let n = args.requests * args.bots;
    let mut rows = Vec::new();
    let mut series = Vec::new();
    for (name, label, strategy) in [
        ("5a burst, Millis", "Millis", Strategy::Millis),
        ("5b burst, Hft { counter_digits: 6 }", "Hft6", Strategy::Hft { counter_digits: 6 }),
    ] {
        let m = NonceManager::builder().strategy(strategy).build().expect("valid strategy");
        let start = Instant::now();
        let mut nonces = Vec::with_capacity(n);
        let mut samples = Vec::new();
        let mut max_lead = i64::MIN;
        for i in 0..n {
            nonces.push(m.next().expect("a nonce"));
            if i % 500 == 0 {
                let lead = m.lead_ms();
                max_lead = max_lead.max(lead);
                samples.push((start.elapsed().as_secs_f64() * 1e3, lead as f64));
            }
        }
        max_lead = max_lead.max(m.lead_ms());
        let mut sorted = nonces.clone();
        sorted.dedup();
        let reqs = deliver(requests_for(1, &nonces), rng, 0);
        let mut row = exchange(name, &validator(Policy::Strict, strategy.units_per_ms(), SystemClock), &reqs);
        row.crate_duplicates = (nonces.len() - sorted.len()) as u64;
        row.max_lead_ms = max_lead;
        rows.push(row);
        series.push((label, samples));
    }
    (rows, series)
}

/// Scenario 6: an attacker replays every accepted request once, then sends `u64::MAX` and `I64_MAX`.
fn attacker(args: &Args, rng: &mut Rng) -> Vec<Row> {
    let clock = sim_clock();
    let v = validator(Policy::Window(1_024), 1, clock.clone());
    let m = Arc::new(NonceManager::builder().clock(clock.clone()).build().expect("valid"));
    let (nonces, dups, lead) = shared_manager_run(&m, args.bots, args.requests, &|| {
        clock.advance(1);
    });
    let honest = deliver(requests_for(1, &nonces), rng, 8);
    let first = exchange("6 honest traffic before the attack", &v, &honest);
    let mut attack: Vec<Req> = first.accepted_reqs.iter().map(|r| Req { replay: true, ..*r }).collect();
    attack.push(Req { account: 1, nonce: u64::MAX, replay: true });
    attack.push(Req { account: 1, nonce: I64_MAX, replay: true });
    let attack = deliver(attack, rng, 64);
    let mut row = exchange("6 attacker: every request replayed, u64::MAX, I64_MAX", &v, &attack);
    // the account still works
    clock.advance(1);
    let after = exchange(
        "6 honest request after the attack",
        &v,
        &[Req { account: 1, nonce: m.next().expect("nonce"), replay: false }],
    );
    row.crate_duplicates = dups;
    row.max_lead_ms = lead;
    vec![first, row, after]
}

fn print_table(rows: &[Row]) {
    println!(
        "\n| scenario | requests | accepted | rejected (by reason) | validations/s | p50 | p99 | max lead over clock |"
    );
    println!("|---|---:|---:|---|---:|---:|---:|---:|");
    for r in rows {
        let reasons = if r.rejected.is_empty() {
            "0".to_owned()
        } else {
            r.rejected.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
        };
        let lead = if r.max_lead_ms == 0 && r.name.starts_with('1') {
            "n/a".to_owned()
        } else {
            format!("{} ms", r.max_lead_ms)
        };
        println!(
            "| {} | {} | {} | {} | {:.1} M | {} ns | {} ns | {} |",
            r.name,
            r.requests,
            r.accepted,
            reasons,
            r.validations_per_s / 1e6,
            r.p50_ns,
            r.p99_ns,
            lead
        );
    }
}

fn print_json(rows: &[Row]) {
    let rows: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "scenario": r.name, "requests": r.requests, "accepted": r.accepted, "rejected": r.rejected,
                "replays_accepted": r.replays_accepted, "crate_duplicates": r.crate_duplicates,
                "naive_duplicates": r.naive_duplicates, "validations_per_s": r.validations_per_s,
                "p50_ns": r.p50_ns, "p99_ns": r.p99_ns, "max_lead_ms": r.max_lead_ms,
            })
        })
        .collect();
    println!("{}", serde_json::to_string_pretty(&rows).expect("JSON"));
}

/// A line chart of lead over the clock against time, one polyline per strategy.
fn svg_chart(series: &[(&str, Vec<(f64, f64)>)]) -> String {
    let (w, h, pad) = (720.0, 360.0, 60.0);
    let max_x = series.iter().flat_map(|(_, s)| s.iter().map(|p| p.0)).fold(1e-9, f64::max);
    let max_y = series.iter().flat_map(|(_, s)| s.iter().map(|p| p.1)).fold(1.0, f64::max);
    let min_y = series.iter().flat_map(|(_, s)| s.iter().map(|p| p.1)).fold(0.0, f64::min);
    let x = |v: f64| pad + v / max_x * (w - 2.0 * pad);
    let y = |v: f64| h - pad - (v - min_y) / (max_y - min_y) * (h - 2.0 * pad);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">Nonce lead over the clock during a burst (scenario 5)</text>\n\
         <line x1=\"{pad}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/>\n<line x1=\"{pad}\" y1=\"{pad}\" x2=\"{pad}\" y2=\"{}\" stroke=\"black\"/>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">time since the burst began (ms), 0 to {max_x:.1}</text>\n\
         <text x=\"16\" y=\"{}\" transform=\"rotate(-90 16 {})\" text-anchor=\"middle\">lead over the clock (ms)</text>\n\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{max_y:.0}</text>\n<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{min_y:.0}</text>\n",
        w / 2.0,
        y(min_y.max(0.0)),
        w - pad,
        y(min_y.max(0.0)),
        h - pad,
        w / 2.0,
        h - 20.0,
        h / 2.0,
        h / 2.0,
        pad - 6.0,
        y(max_y) + 4.0,
        pad - 6.0,
        y(min_y) + 4.0,
    );
    for (i, (label, points)) in series.iter().enumerate() {
        let color = ["#d62728", "#1f77b4"][i % 2];
        let path: Vec<String> = points.iter().map(|&(px, py)| format!("{:.1},{:.1}", x(px), y(py))).collect();
        out.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>\n<text x=\"{}\" y=\"{}\" fill=\"{color}\">{label}</text>\n",
            path.join(" "),
            w - pad - 80.0,
            pad + 18.0 * (i as f64 + 1.0),
        ));
    }
    out.push_str("</svg>\n");
    out
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
        progress(reordered(&args, &mut rng, &[("2 Millis x bots, reordered, Strict", Policy::Strict)]), &mut rows);
    }
    if wants(3) {
        let policies =
            [("3a the same, HighestK(20)", Policy::HighestK(20)), ("3b the same, Window(1024)", Policy::Window(1_024))];
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
    // the invariants this crate promises
    let mut failures = Vec::new();
    for r in &rows {
        if r.replays_accepted > 0 {
            failures.push(format!("{}: {} replays accepted", r.name, r.replays_accepted));
        }
        if r.crate_duplicates > 0 {
            failures.push(format!("{}: a crate strategy produced {} duplicate nonces", r.name, r.crate_duplicates));
        }
        if r.name.starts_with("6 honest request after") && r.accepted != 1 {
            failures.push("the account did not work after the attack".to_owned());
        }
        if r.name.starts_with("6 honest traffic") && r.accepted != r.requests {
            failures.push(format!("{}: honest requests refused by the Window policy", r.name));
        }
        if r.name.starts_with("3") && r.accepted != r.requests {
            failures.push(format!("{}: reordering was not tolerated", r.name));
        }
        if r.name.starts_with("6 attacker") && r.accepted != 0 {
            failures.push(format!("{}: {} attack requests accepted", r.name, r.accepted));
        }
    }
    if failures.is_empty() {
        eprintln!("invariants held: no replay accepted, no duplicate from a crate strategy");
        ExitCode::SUCCESS
    } else {
        for f in &failures {
            eprintln!("INVARIANT VIOLATED: {f}");
        }
        ExitCode::FAILURE
    }
}
