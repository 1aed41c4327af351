//! The scenarios: each builds its bots and its exchange, runs them, and
//! returns rows that carry what they are expected to show.

use crate::network::{deliver, exchange, Expect, Req, Rng, Row};
use crate::Args;
use monotonic_nonce::{
    clock::ManualClock, strategy::I64_MAX, Clock, NonceManager, NonceValidator, Policy, Strategy, SystemClock,
};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) fn validator<C: Clock>(policy: Policy, strategy: Strategy, clock: C) -> NonceValidator<u32, C> {
    NonceValidator::builder(policy)
        .clock(clock)
        .strategy(strategy)
        .max_future(Duration::from_secs(1))
        .max_past(Duration::from_secs(3_600))
        .build()
        .expect("valid exchange configuration")
}

/// The simulated clock, starting at the real time.
pub(crate) fn sim_clock() -> ManualClock {
    ManualClock::new(SystemClock.now_ms().expect("clock"))
}

/// `bots` threads take `requests` nonces each from one shared manager, calling
/// `tick` after each (the simulated clock); returns the nonces in the order
/// they were handed out, the duplicates, and the largest lead seen.
pub(crate) fn shared_manager_run<C: Clock>(
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

pub(crate) fn requests_for(account: u32, nonces: &[u64]) -> Vec<Req> {
    nonces.iter().map(|&nonce| Req { account, nonce, replay: false }).collect()
}

/// Scenario 1: the naive generator from exchange docs, `nonce = now_ms`, one bot.
pub(crate) fn naive(args: &Args, rng: &mut Rng) -> Vec<Row> {
    let n = args.requests;
    let nonces: Vec<u64> = (0..n).map(|_| SystemClock.now_ms().expect("clock")).collect();
    let distinct: HashSet<u64> = nonces.iter().copied().collect();
    let reqs = deliver(requests_for(1, &nonces), rng, 0);
    let mut row =
        exchange("1 naive now_ms, 1 bot, Strict", &validator(Policy::Strict, Strategy::Millis, SystemClock), &reqs);
    row.naive_duplicates = (n - distinct.len()) as u64;
    vec![row]
}

/// Scenarios 2 and 3: `Millis` shared by the bots, requests reordered by the network.
pub(crate) fn reordered(args: &Args, rng: &mut Rng, policies: &[(&str, Policy, Expect)]) -> Vec<Row> {
    policies
        .iter()
        .map(|(name, policy, expect)| {
            let clock = sim_clock();
            let m = Arc::new(NonceManager::builder().clock(clock.clone()).build().expect("valid"));
            let (nonces, dups, lead) = shared_manager_run(&m, args.bots, args.requests, &|| {
                clock.advance(1);
            });
            let reqs = deliver(requests_for(1, &nonces), rng, 8);
            let mut row = exchange(name, &validator(*policy, Strategy::Millis, clock.clone()), &reqs);
            row.expect = *expect;
            row.crate_duplicates = dups;
            row.max_lead_ms = Some(lead);
            row
        })
        .collect()
}

/// Scenario 4: two processes' worth of managers on one key.
pub(crate) fn two_processes(args: &Args, rng: &mut Rng) -> Vec<Row> {
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
            let mut row = exchange(name, &validator(Policy::Strict, strategies[0], clock.clone()), &reqs);
            row.crate_duplicates = crate_duplicates;
            row.max_lead_ms = Some(max_lead_ms);
            row
        })
        .collect()
}

/// Scenario 5: a burst at full speed; returns the rows and `(elapsed ms, lead ms)` samples per strategy.
#[allow(clippy::type_complexity)]
pub(crate) fn burst(args: &Args, rng: &mut Rng) -> (Vec<Row>, Vec<(&'static str, Vec<(f64, f64)>)>) {
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
        let mut row = exchange(name, &validator(Policy::Strict, strategy, SystemClock), &reqs);
        row.crate_duplicates = (nonces.len() - sorted.len()) as u64;
        row.max_lead_ms = Some(max_lead);
        rows.push(row);
        series.push((label, samples));
    }
    (rows, series)
}

/// Scenario 6: an attacker replays every accepted request once, then sends `u64::MAX` and `I64_MAX`.
pub(crate) fn attacker(args: &Args, rng: &mut Rng) -> Vec<Row> {
    let clock = sim_clock();
    let v = validator(Policy::Window(1_024), Strategy::Millis, clock.clone());
    let m = Arc::new(NonceManager::builder().clock(clock.clone()).build().expect("valid"));
    let (nonces, dups, lead) = shared_manager_run(&m, args.bots, args.requests, &|| {
        clock.advance(1);
    });
    let honest = deliver(requests_for(1, &nonces), rng, 8);
    let mut first = exchange("6 honest traffic before the attack", &v, &honest);
    first.expect = Expect::AllAccepted;
    let mut attack: Vec<Req> = first.accepted_reqs.iter().map(|r| Req { replay: true, ..*r }).collect();
    attack.push(Req { account: 1, nonce: u64::MAX, replay: true });
    attack.push(Req { account: 1, nonce: I64_MAX, replay: true });
    let attack = deliver(attack, rng, 64);
    let mut row = exchange("6 attacker: every request replayed, u64::MAX, I64_MAX", &v, &attack);
    // the account still works
    clock.advance(1);
    let mut after = exchange(
        "6 honest request after the attack",
        &v,
        &[Req { account: 1, nonce: m.next().expect("nonce"), replay: false }],
    );
    after.expect = Expect::AllAccepted;
    row.expect = Expect::NoneAccepted;
    row.crate_duplicates = dups;
    row.max_lead_ms = Some(lead);
    vec![first, row, after]
}
