//! Scenario 9: an autoscaled fleet on one key. Bots join, leave, and are
//! killed (cut off from Redis without a word, as a vanished spot instance is),
//! each taking its `Distributed` id from a `SlotLease` on one Redis. The
//! requests they send, in send order, with a replay of every tenth, go to a
//! `HighestK` exchange: every honest request is accepted, no replay is, no
//! nonce repeats, and a dead bot's slot is taken by the next one to join.

use crate::network::{exchange_with, Expect, Req, Rng, Row};
use crate::proxy::Proxy;
use crate::Args;
use monotonic_nonce::client::SlotLease;
use monotonic_nonce::{NonceError, NonceManager, NonceValidator, Policy, Strategy};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SLOTS: u64 = 4;
const TTL: Duration = Duration::from_millis(600);
/// A port nothing listens on: where a killed bot's connection is pointed.
const DEAD: u16 = 1;

struct Bot {
    stop: Arc<AtomicBool>,
    proxy: Proxy,
    thread: std::thread::JoinHandle<()>,
}

/// 9: bots join, leave and are killed for a few seconds; every nonce they send is validated.
pub(crate) fn autoscaling(args: &Args, rng: &mut Rng) -> Result<Vec<Row>, String> {
    let (port, _server) = match &args.redis {
        Some(url) => {
            let port = url.rsplit(':').next().and_then(|p| p.trim_end_matches('/').parse().ok());
            (port.ok_or_else(|| format!("scenario 9 needs redis://host:port, not {url}"))?, None)
        }
        None => {
            let server = crate::gateways::start_local()?;
            (server.port, Some(server))
        }
    };
    let space = format!("sim-fleet-{}-{}", std::process::id(), rng.next() % 1_000_000);
    let sent: Arc<Mutex<Vec<Req>>> = Arc::default();
    let per_bot = args.requests.clamp(100, 20_000);
    let mut bots: Vec<Bot> = Vec::new();
    let (mut joined, mut left, mut killed) = (0, 0, 0);
    let began = Instant::now();
    while began.elapsed() < Duration::from_secs(6) {
        std::thread::sleep(Duration::from_millis(150 + rng.next() % 250));
        match rng.next() % 4 {
            0 | 1 if bots.len() < SLOTS as usize + 1 => {
                bots.push(join(port, &space, per_bot, Arc::clone(&sent)));
                joined += 1;
            }
            2 if !bots.is_empty() => {
                let bot = bots.swap_remove((rng.next() % bots.len() as u64) as usize);
                bot.stop.store(true, Ordering::SeqCst);
                bot.thread.join().map_err(|_| "a bot panicked".to_string())?;
                left += 1;
            }
            3 if !bots.is_empty() => {
                // killed: its Redis connections are cut and go nowhere; it keeps
                // trying, hands out nothing once its lease lapses, and is abandoned
                let bot = bots.swap_remove((rng.next() % bots.len() as u64) as usize);
                bot.proxy.switch_to(DEAD);
                std::thread::sleep(TTL);
                bot.stop.store(true, Ordering::SeqCst);
                bot.thread.join().map_err(|_| "a bot panicked".to_string())?;
                killed += 1;
            }
            _ => {}
        }
    }
    for bot in bots.drain(..) {
        bot.stop.store(true, Ordering::SeqCst);
        bot.thread.join().map_err(|_| "a bot panicked".to_string())?;
    }
    let honest = std::mem::take(&mut *sent.lock().map_err(|_| "poisoned")?);
    let mut sorted: Vec<u64> = honest.iter().map(|r| r.nonce).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let duplicates = (honest.len() - sorted.len()) as u64;
    let wire: Vec<Req> = honest
        .iter()
        .enumerate()
        .flat_map(|(i, r)| {
            let replay = (i % 10 == 9).then_some(Req { replay: true, ..*r });
            std::iter::once(*r).chain(replay)
        })
        .collect();
    let exchange = NonceValidator::builder(Policy::HighestK(64))
        .strategy(Strategy::Distributed { system_id: 0, total_systems: SLOTS })
        .build()
        .map_err(|e| e.to_string())?;
    let name = format!("9 fleet of leases: {joined} joined, {left} left, {killed} killed, HighestK(64)");
    let mut row = exchange_with(&name, &wire, |r| exchange.validate(&r.account, r.nonce));
    row.expect = Expect::HonestOnly;
    row.crate_duplicates = duplicates;
    Ok(vec![row])
}

/// A bot on its own connection (through a proxy the scenario can cut).
fn join(port: u16, space: &str, per_bot: usize, sent: Arc<Mutex<Vec<Req>>>) -> Bot {
    let proxy = Proxy::to(port);
    let stop = Arc::new(AtomicBool::new(false));
    let (url, space, flag) = (proxy.url(), space.to_owned(), Arc::clone(&stop));
    let thread = std::thread::spawn(move || {
        let lease = SlotLease::builder(url, space, SLOTS)
            .ttl(TTL)
            .margin(Duration::from_millis(150))
            .wait(TTL * 3)
            .build()
            .expect("the lease's settings are valid");
        let Ok(m) = NonceManager::builder().mark_ahead(Duration::from_millis(20)).lease(lease).build() else {
            return; // no slot freed up within the wait: the bot does not start
        };
        let mut sent_here = 0;
        while !flag.load(Ordering::SeqCst) && sent_here < per_bot {
            let mut reqs = sent.lock().expect("not poisoned");
            match m.next() {
                Ok(nonce) => {
                    reqs.push(Req { account: 1, nonce, replay: false });
                    sent_here += 1;
                }
                Err(NonceError::LeaseLost { .. } | NonceError::LeaseStore { .. }) => {
                    drop(reqs);
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("next: {e}"),
            }
            std::thread::sleep(Duration::from_millis(1)); // one request per ms per bot: the rate Distributed is made for
        }
    });
    Bot { stop, proxy, thread }
}
