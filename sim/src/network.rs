//! The simulated network and exchange: seeded delays, and a validator that
//! takes requests in arrival order and counts its verdicts.

use monotonic_nonce::{Clock, NonceValidator, Rejection};
use std::collections::BTreeMap;
use std::time::Instant;

/// xorshift64: the network's delays.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One request on the wire.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Req {
    pub(crate) account: u32,
    pub(crate) nonce: u64,
    pub(crate) replay: bool,
}

/// The network: each request is delayed by up to `spread` sending slots, so
/// requests overtake each other by fewer than `spread` places.
pub(crate) fn deliver(mut reqs: Vec<Req>, rng: &mut Rng, spread: u64) -> Vec<Req> {
    let mut keyed: Vec<(u64, Req)> =
        reqs.drain(..).enumerate().map(|(i, r)| (i as u64 + rng.next() % (spread + 1), r)).collect();
    keyed.sort_by_key(|(at, _)| *at);
    keyed.into_iter().map(|(_, r)| r).collect()
}

/// What a row must show besides the crate's invariants (no replay accepted,
/// no duplicate from a crate strategy), which every row must show.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Only the invariants (a baseline that is expected to lose requests).
    #[default]
    Invariants,
    /// Every request accepted: reordering tolerated, honest traffic never refused.
    AllAccepted,
    /// No request accepted: an attack.
    NoneAccepted,
    /// A baseline that shows the problem: replays are accepted (at least one),
    /// and every honest request too.
    ReplaysGetThrough,
    /// Every honest request accepted, every replay refused.
    HonestOnly,
}

/// One row of the summary: a scenario's outcome and what it was expected to be.
#[derive(Debug, Default)]
pub(crate) struct Row {
    pub(crate) name: String,
    pub(crate) expect: Expect,
    pub(crate) requests: u64,
    /// Requests that are not replays.
    pub(crate) honest: u64,
    pub(crate) accepted: u64,
    pub(crate) rejected: BTreeMap<&'static str, u64>,
    pub(crate) replays_accepted: u64,
    /// The requests that were accepted (an attacker replays these).
    pub(crate) accepted_reqs: Vec<Req>,
    /// Duplicates a crate strategy produced within one manager (must be 0).
    pub(crate) crate_duplicates: u64,
    /// Duplicates the naive generator produced (expected).
    pub(crate) naive_duplicates: u64,
    pub(crate) validations_per_s: f64,
    pub(crate) p50_ns: u64,
    pub(crate) p99_ns: u64,
    /// The largest lead of the nonces over the clock, when a manager made them.
    pub(crate) max_lead_ms: Option<i64>,
}

impl Row {
    /// The ways this row breaks its expectation or the crate's invariants.
    pub(crate) fn failures(&self) -> Vec<String> {
        let mut out = Vec::new();
        match self.expect {
            Expect::ReplaysGetThrough if self.replays_accepted == 0 => {
                out.push(format!("{}: the baseline accepted no replay; it no longer shows the problem", self.name))
            }
            Expect::ReplaysGetThrough => {}
            _ if self.replays_accepted > 0 => {
                out.push(format!("{}: {} replays accepted", self.name, self.replays_accepted))
            }
            _ => {}
        }
        if self.crate_duplicates > 0 {
            out.push(format!("{}: a crate strategy produced {} duplicate nonces", self.name, self.crate_duplicates));
        }
        match self.expect {
            Expect::AllAccepted if self.accepted != self.requests => out.push(format!(
                "{}: {} of {} honest requests refused",
                self.name,
                self.requests - self.accepted,
                self.requests
            )),
            Expect::NoneAccepted if self.accepted != 0 => {
                out.push(format!("{}: {} attack requests accepted", self.name, self.accepted))
            }
            Expect::HonestOnly | Expect::ReplaysGetThrough if self.accepted - self.replays_accepted != self.honest => {
                out.push(format!(
                    "{}: {} of {} honest requests refused",
                    self.name,
                    self.honest + self.replays_accepted - self.accepted,
                    self.honest
                ))
            }
            _ => {}
        }
        out
    }
}

pub(crate) fn reason(r: &Rejection) -> &'static str {
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

/// The exchange: validates every request in arrival order with `validate`,
/// timing each call.
pub(crate) fn exchange<C: Clock>(name: &str, validator: &NonceValidator<u32, C>, reqs: &[Req]) -> Row {
    exchange_with(name, reqs, |r| validator.validate(&r.account, r.nonce))
}

/// [`exchange`] with any validation function (one validator or several behind a balancer).
pub(crate) fn exchange_with(name: &str, reqs: &[Req], mut validate: impl FnMut(&Req) -> Result<(), Rejection>) -> Row {
    let honest = reqs.iter().filter(|r| !r.replay).count() as u64;
    let mut row = Row { name: name.to_owned(), requests: reqs.len() as u64, honest, ..Row::default() };
    let mut latencies = Vec::with_capacity(reqs.len());
    let start = Instant::now();
    for r in reqs {
        let t = Instant::now();
        let verdict = validate(r);
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
