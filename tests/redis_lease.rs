//! Fleet leases (`SlotLease`) against a real `redis-server` the tests start:
//! slots (a ninth process among eight), marks, self-fencing, and a chaos run of 8 bot processes on one key
//! killed, stopped and skewed at random.
//!
//! Needs `redis-server` and `redis-cli` (Debian: `apt-get install -y redis-server`);
//! run with `cargo test --features redis --test redis_lease`.
#![cfg(feature = "redis")]

mod common;

use common::redis_server::RedisServer;
use monotonic_nonce::client::SlotLease;
use monotonic_nonce::clock::{ClockError, ManualClock};
use monotonic_nonce::{BuildError, Clock, NonceError, NonceManager, SystemClock};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const URL_ENV: &str = "MONOTONIC_NONCE_LEASE_URL";
const SKEW_ENV: &str = "MONOTONIC_NONCE_LEASE_SKEW_MS";
const SLOTS: u64 = 8;
const TTL: Duration = Duration::from_millis(1_000);

/// The system clock, off by a fixed number of ms either way (an injected skew).
struct SkewClock(i64);

impl Clock for SkewClock {
    fn now_ms(&self) -> Result<u64, ClockError> {
        Ok(SystemClock.now_ms()?.saturating_add_signed(self.0))
    }
}

fn lease(url: &str, space: &str) -> monotonic_nonce::client::SlotLeaseBuilder {
    SlotLease::builder(url, space, SLOTS).ttl(TTL).margin(Duration::from_millis(250))
}

#[test]
#[ignore = "helper: the chaos test runs it as a child process"]
fn lease_child() {
    let Ok(url) = std::env::var(URL_ENV) else { return };
    println!("\nS 0 {}", now_us()); // started (after the harness's own line), before the lease waits for a slot
    let skew = std::env::var(SKEW_ENV).ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let lease = lease(&url, "chaos").max_skew(Duration::from_secs(3)).wait(Duration::from_secs(10)).build();
    let m = NonceManager::builder()
        .clock(SkewClock(skew))
        .mark_ahead(Duration::from_millis(100)) // short: many mark writes in Redis per run
        .lease(lease.expect("lease"))
        .build()
        .expect("build");
    // two threads on the one manager: a slot switch happens while the other computes
    let m = Arc::new(m);
    let threads: Vec<_> = (0..2)
        .map(|tid| {
            let m = Arc::clone(&m);
            std::thread::spawn(move || {
                for i in 0u64.. {
                    // each line carries when it happened, so the parent orders lines by the
                    // child's time, not by when a busy reader thread got to them
                    let line = match m.next() {
                        Ok(n) => format!("N {tid} {n} {} {}\n", m.lease_claims(), now_us()),
                        Err(NonceError::LeaseLost { .. }) => format!("L {tid} {}\n", now_us()),
                        Err(e) => panic!("next: {e}"),
                    };
                    let mut out = std::io::stdout().lock();
                    out.write_all(line.as_bytes()).and_then(|()| out.flush()).expect("stdout");
                    drop(out);
                    if line.starts_with('L') {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    if i % 8 == 0 {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a child thread panicked");
    }
}

/// The system clock in µs: one clock for the parent and its children on one host.
fn now_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// One line a child printed, placed on the parent's `Instant`s by the time the child printed with it.
#[derive(Debug, Clone, Copy)]
enum Line {
    /// A nonce, and how many claims its manager had made when it was handed out.
    Nonce(u64, u64),
    Lost,
    /// The process started.
    Started,
}

#[derive(Debug)]
struct Event {
    at: Instant,
    run: usize,
    /// The child's thread.
    tid: u8,
    line: Line,
}

struct Fleet {
    url: String,
    exe: std::path::PathBuf,
    events: Arc<Mutex<Vec<Event>>>,
    runs: usize,
    rng: u64,
    /// An `Instant` and the system clock's reading at it, in µs.
    origin: (Instant, u64),
}

impl Fleet {
    fn rand(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    /// Starts a child with a random skew in -2000..=2000 ms; returns it and its run number.
    fn spawn(&mut self) -> (Child, usize) {
        let skew = (self.rand() % 4_001) as i64 - 2_000;
        let mut child = Command::new(&self.exe)
            .args(["lease_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env(URL_ENV, &self.url)
            .env(SKEW_ENV, skew.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the child");
        let run = self.runs;
        self.runs += 1;
        let stdout = child.stdout.take().expect("piped");
        let events = Arc::clone(&self.events);
        let origin = self.origin;
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                let words: Vec<&str> = line.split(' ').collect();
                let (tid, line, us) = match words[..] {
                    ["L", tid, us] => (tid, Line::Lost, us),
                    ["S", tid, us] => (tid, Line::Started, us),
                    ["N", tid, n, c, us] => match (n.parse(), c.parse()) {
                        (Ok(n), Ok(c)) => (tid, Line::Nonce(n, c), us),
                        _ => continue,
                    },
                    _ => continue, // the test harness's own lines
                };
                let (Ok(tid), Ok(us)) = (tid.parse(), us.parse::<u64>()) else { continue };
                let at = origin.0 + Duration::from_micros(us.saturating_sub(origin.1));
                events.lock().unwrap().push(Event { at, run, tid, line });
            }
        });
        (child, run)
    }
}

fn signal(child: &Child, sig: &str) {
    let status = Command::new("kill").args([sig, &child.id().to_string()]).status().expect("kill(1)");
    assert!(status.success(), "kill {sig}");
}

#[test]
fn eight_processes_killed_stopped_and_skewed_never_hand_out_a_nonce_twice() {
    let server = RedisServer::start(&["--appendfsync", "always"]);
    let mut fleet = Fleet {
        url: server.url(),
        exe: std::env::current_exe().unwrap(),
        events: Arc::new(Mutex::new(Vec::new())),
        runs: 0,
        origin: (Instant::now(), now_us()),
        rng: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1,
    };
    let mut children: Vec<(Child, usize)> = (0..SLOTS).map(|_| fleet.spawn()).collect();
    let began = Instant::now();
    let (mut kills, mut stops) = (Vec::new(), Vec::new());
    while began.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(300 + fleet.rand() % 600));
        let i = (fleet.rand() % SLOTS) as usize;
        match fleet.rand() % 10 {
            0..=3 => {
                let (mut child, run) = children.swap_remove(i);
                child.kill().unwrap(); // SIGKILL: no release, no flush beyond what was printed
                child.wait().unwrap();
                let (new, new_run) = fleet.spawn();
                kills.push((Instant::now(), run, new_run));
                children.push((new, new_run));
            }
            4..=6 => {
                let hold = TTL + TTL * (3 + (fleet.rand() % 8) as u32) / 10; // 1.3 to 2.0 TTL
                signal(&children[i].0, "-STOP");
                let stopped = Instant::now();
                std::thread::sleep(hold);
                signal(&children[i].0, "-CONT");
                stops.push((stopped, Instant::now(), children[i].1));
            }
            _ => {}
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    for (mut child, _) in children {
        let _ = child.kill();
        let _ = child.wait();
    }
    std::thread::sleep(Duration::from_millis(200)); // the readers drain the pipes
    let mut events = std::mem::take(&mut *fleet.events.lock().unwrap());
    events.sort_by_key(|e| e.at);

    // no nonce twice, over all processes and restarts; each thread of each run strictly increasing
    let mut seen = HashSet::new();
    let mut duplicates = 0;
    let mut last_of_thread: HashMap<(usize, u8), u64> = HashMap::new();
    for e in &events {
        if let Line::Nonce(n, _) = e.line {
            if !seen.insert(n) {
                duplicates += 1;
            }
            if let Some(&prev) = last_of_thread.get(&(e.run, e.tid)) {
                assert!(n > prev, "run {} thread {}: {n} after {prev}", e.run, e.tid);
            }
            last_of_thread.insert((e.run, e.tid), n);
        }
    }
    // a holder's first nonce in a slot is above every nonce other processes handed out in it before
    let mut slot_of_thread: HashMap<(usize, u8), u64> = HashMap::new();
    let mut highest: HashMap<u64, HashMap<usize, u64>> = HashMap::new(); // slot -> run -> highest
    let mut handovers = 0;
    for e in &events {
        let Line::Nonce(n, _) = e.line else { continue };
        let slot = n % SLOTS;
        let runs = highest.entry(slot).or_default();
        if slot_of_thread.insert((e.run, e.tid), slot) != Some(slot) {
            let before = runs.iter().filter(|(&run, _)| run != e.run).max_by_key(|(_, &high)| high);
            if let Some((&run, &high)) = before {
                assert!(n > high, "run {} took slot {slot} at {n}, below {high} from run {run}", e.run);
                handovers += usize::from(e.tid == 0);
            }
        }
        let high = runs.entry(e.run).or_insert(n);
        *high = (*high).max(n);
    }
    // a killed process's slot is taken again within a TTL (plus the polling interval): by its
    // successor, or by a process that was waiting too (one resumed after its lease lapsed)
    let mut retaken = Vec::new();
    let bound = TTL + Duration::from_millis(500);
    for &(at, killed, successor) in &kills {
        let slot = events.iter().rev().filter(|e| e.run == killed && e.at < at).find_map(|e| match e.line {
            Line::Nonce(n, _) => Some(n % SLOTS),
            _ => None,
        });
        let Some(slot) = slot else { continue }; // killed before it held a slot
        let taken = events
            .iter()
            .find(|e| e.at > at && e.run != killed && matches!(e.line, Line::Nonce(n, _) if n % SLOTS == slot))
            .map(|e| e.at - at);
        let started = events.iter().find(|e| e.run == successor && matches!(e.line, Line::Started));
        let first = events.iter().find(|e| e.run == successor && matches!(e.line, Line::Nonce(..)));
        let successor_waited = started.zip(first).map(|(s, f)| f.at.saturating_duration_since(s.at.max(at)));
        let Some(soonest) = taken.into_iter().chain(successor_waited).min() else { continue };
        if stops.iter().any(|&(from, to, run)| run == successor && to > at && from < at + soonest) {
            continue; // the successor was stopped while it waited: nobody else may have wanted the slot
        }
        if soonest >= bound {
            let ms =
                |e: &Event| e.at.duration_since(began).as_millis() as i64 - at.duration_since(began).as_millis() as i64;
            let last_of_killed: Vec<String> = events
                .iter()
                .filter(|e| e.run == killed && e.at < at)
                .rev()
                .take(4)
                .map(|e| format!("{:+} ms t{} {:?}", ms(e), e.tid, e.line))
                .collect();
            let slot_users: Vec<String> = events
                .iter()
                .filter(|e| {
                    matches!(e.line, Line::Nonce(n, _) if n % SLOTS == slot) && (-3_000..3_000).contains(&ms(e))
                })
                .map(|e| format!("{:+} ms run {} t{} {:?}", ms(e), e.run, e.tid, e.line))
                .collect();
            let sample: Vec<&String> = slot_users.iter().step_by((slot_users.len() / 30).max(1)).collect();
            let stops_near: Vec<(i128, usize)> = stops
                .iter()
                .map(|&(_, t, r)| {
                    (t.duration_since(began).as_millis() as i128 - at.duration_since(began).as_millis() as i128, r)
                })
                .filter(|(d, _)| d.abs() < 4_000)
                .collect();
            panic!(
                "run {killed} killed holding slot {slot}: retaken after {taken:?}, its successor held one after \
                 {successor_waited:?}; the killed run's last lines {last_of_killed:#?}; slot {slot} around the kill \
                 {sample:#?}; stops near {stops_near:?}"
            );
        }
        retaken.push(soonest.as_millis());
    }
    // a process resumed after its lease lapsed hands out nothing (beyond one line
    // already handed out before the stop) until it holds a lease again: a new claim
    let mut stops_beyond_ttl = 0;
    for &(stopped, at, run) in &stops {
        // the process is stopped from before `stopped` until before `at` (each noted after its
        // signal); lines 100 ms into the stop were printed before it (the two clocks differ by ms)
        let stopped = stopped + Duration::from_millis(100);
        let claims_before = events.iter().rev().filter(|e| e.run == run && e.at < stopped).find_map(|e| {
            if let Line::Nonce(_, c) = e.line {
                Some(c)
            } else {
                None
            }
        });
        let Some(claims_before) = claims_before else { continue };
        let after: Vec<Line> = events.iter().filter(|e| e.run == run && e.at >= stopped).map(|e| e.line).collect();
        if after.is_empty() {
            continue;
        }
        stops_beyond_ttl += 1;
        let stale = after.iter().filter(|l| matches!(l, Line::Nonce(_, c) if *c <= claims_before)).count();
        if stale > 2 {
            // one in flight per thread may print after the stop; more is a failure: show what happened
            let rel =
                |e: &Event| e.at.duration_since(began).as_millis() as i64 - at.duration_since(began).as_millis() as i64;
            let around: Vec<String> = events
                .iter()
                .filter(|e| e.run == run && (-3_000..200).contains(&rel(e)))
                .map(|e| format!("{:+} ms t{} {:?}", rel(e), e.tid, e.line))
                .collect();
            let mut sample: Vec<&String> = around.iter().step_by((around.len() / 20).max(1)).collect();
            let stale_lines: Vec<String> = events
                .iter()
                .filter(|e| {
                    e.run == run && e.at >= stopped && matches!(e.line, Line::Nonce(_, c) if c <= claims_before)
                })
                .take(5)
                .map(|e| format!("STALE {:+} ms t{} {:?}", rel(e), e.tid, e.line))
                .collect();
            sample.extend(stale_lines.iter());
            panic!("run {run} handed out {stale} nonces under its lapsed lease; around the SIGCONT: {sample:#?}");
        }
    }
    let nonces = seen.len() + duplicates;
    eprintln!(
        "chaos: processes {}, restarts {}, SIGSTOPs beyond the TTL {stops_beyond_ttl}, handovers {handovers}, \
         killed slots retaken after {retaken:?} ms, nonces {nonces}, duplicates {duplicates}",
        fleet.runs,
        kills.len()
    );
    assert_eq!(duplicates, 0);
    assert!(nonces > 10_000, "only {nonces} nonces: the children did not run");
    assert!(
        !kills.is_empty() && stops_beyond_ttl > 0,
        "the schedule killed {} and stopped {stops_beyond_ttl}",
        kills.len()
    );
}

#[test]
fn a_ninth_manager_gets_no_slot_or_waits_for_one() {
    let server = RedisServer::start(&[]);
    let managers: Vec<_> = (0..SLOTS)
        .map(|_| NonceManager::builder().lease(lease(&server.url(), "nine").build().unwrap()).build().unwrap())
        .collect();
    let slots: HashSet<u64> = managers.iter().map(|m| m.lease_slot().unwrap()).collect();
    assert_eq!(slots.len(), SLOTS as usize, "eight managers hold eight different slots");
    let ninth = NonceManager::builder().lease(lease(&server.url(), "nine").build().unwrap()).build();
    assert_eq!(ninth.unwrap_err(), BuildError::NoFreeSlot { key_space: "nine".into(), total_systems: SLOTS });

    // waiting: one manager is dropped (its slot released) while the ninth waits
    let mut managers = managers;
    let freed = managers.pop().unwrap();
    let freed_slot = freed.lease_slot().unwrap();
    let last_in_freed = freed.next().unwrap();
    let dropper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        drop(freed);
    });
    let began = Instant::now();
    let ninth = NonceManager::builder()
        .lease(lease(&server.url(), "nine").wait(Duration::from_secs(3)).build().unwrap())
        .build()
        .expect("a slot frees up within the wait");
    dropper.join().unwrap();
    assert!(began.elapsed() >= Duration::from_millis(250), "it waited for the drop");
    assert_eq!(ninth.lease_slot(), Some(freed_slot));
    assert!(ninth.next().unwrap() > last_in_freed, "the successor starts above the slot's mark");
}

const HOLD_WAIT_ENV: &str = "MONOTONIC_NONCE_LEASE_WAIT_MS";

#[test]
#[ignore = "helper: the ninth-process test runs it as a child process"]
fn slot_holder_child() {
    let Ok(url) = std::env::var(URL_ENV) else { return };
    let wait = std::env::var(HOLD_WAIT_ENV).ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let built = lease(&url, "ninth")
        .wait(Duration::from_millis(wait))
        .build()
        .and_then(|lease| NonceManager::builder().lease(lease).build());
    match built {
        Ok(m) => {
            println!("\nSLOT {} {}", m.lease_slot().expect("a leased manager has a slot"), m.next().expect("next"));
            // hold the slot until the parent closes stdin (or kills this process)
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
        }
        Err(e) => println!("\nERR {e:?}"),
    }
}

/// Child processes of `slot_holder_child`, killed when the test ends however it ends.
struct Holders(Vec<Child>);

impl Drop for Holders {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Holders {
    /// Starts a holder that waits up to `wait_ms` for a slot; its first line (`SLOT i n` or `ERR …`) comes on the
    /// receiver, which never blocks the test for good (`recv_timeout`).
    fn spawn(&mut self, url: &str, wait_ms: u64) -> std::sync::mpsc::Receiver<String> {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["slot_holder_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env(URL_ENV, url)
            .env(HOLD_WAIT_ENV, wait_ms.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn the child");
        let stdout = child.stdout.take().expect("piped");
        self.0.push(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("SLOT ") || line.starts_with("ERR ") {
                    let _ = tx.send(line);
                }
            }
        });
        rx
    }
}

/// `(slot, nonce)` from a `SLOT i n` line.
fn held(line: &str) -> (u64, u64) {
    match line.split(' ').collect::<Vec<_>>()[..] {
        ["SLOT", slot, nonce] => (slot.parse().unwrap(), nonce.parse().unwrap()),
        _ => panic!("expected a slot, got {line:?}"),
    }
}

#[test]
fn a_ninth_process_gets_no_slot_or_waits_for_a_killed_holders_slot() {
    let server = RedisServer::start(&[]);
    let url = server.url();
    let first_line = Duration::from_secs(30); // the child starts and claims; a bound, not a wait
    let mut holders = Holders(Vec::new());
    let eight: Vec<(u64, u64)> = (0..SLOTS)
        .map(|_| holders.spawn(&url, 0))
        .collect::<Vec<_>>()
        .into_iter()
        .map(|rx| held(&rx.recv_timeout(first_line).expect("a holder's first line")))
        .collect();
    let slots: HashSet<u64> = eight.iter().map(|&(slot, _)| slot).collect();
    assert_eq!(slots.len(), SLOTS as usize, "eight processes hold eight different slots: {eight:?}");

    let ninth = holders.spawn(&url, 0).recv_timeout(first_line).expect("the ninth's line");
    let expected = BuildError::NoFreeSlot { key_space: "ninth".into(), total_systems: SLOTS };
    assert_eq!(ninth, format!("ERR {expected:?}"));

    // a ninth that waits gets the slot of a holder killed meanwhile (no release: the lease runs out)
    let waiting = holders.spawn(&url, 5_000);
    std::thread::sleep(Duration::from_millis(500));
    assert!(waiting.try_recv().is_err(), "the ninth waits while every slot is held");
    let (victim_slot, victim_nonce) = eight[3];
    holders.0[3].kill().unwrap(); // SIGKILL
    holders.0[3].wait().unwrap();
    let killed = Instant::now();
    let (slot, nonce) = held(&waiting.recv_timeout(Duration::from_secs(10)).expect("the waiting ninth's line"));
    assert_eq!(slot, victim_slot, "the killed holder's slot, the only one free");
    assert!(nonce > victim_nonce, "the successor starts above what the killed holder handed out");
    // the lease runs out at most a TTL after the kill; the waiter polls every TTL/10 (slack for a loaded CI host)
    assert!(killed.elapsed() <= TTL + Duration::from_secs(1), "taken {:?} after the kill", killed.elapsed());
}

#[test]
fn a_skewed_clock_is_refused_at_claim() {
    let server = RedisServer::start(&[]);
    let now = SystemClock.now_ms().unwrap();
    let skewed = NonceManager::builder()
        .clock(ManualClock::new(now + 5_000))
        .lease(lease(&server.url(), "skew").max_skew(Duration::from_secs(1)).build().unwrap())
        .build();
    match skewed {
        Err(BuildError::ClockSkew { skew_ms, max_skew_ms: 1_000 }) => assert!((4_000..6_000).contains(&skew_ms)),
        other => panic!("expected ClockSkew, got {other:?}"),
    }
    // the refused claim released its slot: all eight are still free
    let held: Vec<_> = (0..SLOTS)
        .map(|_| NonceManager::builder().lease(lease(&server.url(), "skew").build().unwrap()).build().unwrap())
        .collect();
    assert_eq!(held.len(), SLOTS as usize);
}

#[test]
fn a_key_space_written_under_other_settings_is_refused() {
    let server = RedisServer::start(&[]);
    let eight = NonceManager::builder().lease(lease(&server.url(), "set").build().unwrap()).build().unwrap();
    drop(eight);
    let four = SlotLease::builder(server.url(), "set", 4).build().unwrap();
    let err = NonceManager::builder().lease(four).build().unwrap_err();
    assert!(matches!(err, BuildError::InvalidConfig { field: "lease", .. }), "{err}");
    server.cli(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
    let err = SlotLease::builder(server.url(), "other", 4).build().unwrap_err();
    assert!(matches!(&err, BuildError::Store { reason } if reason.contains("allkeys-lru")), "{err}");
    // and the builder's own checks
    let bad = |b: monotonic_nonce::client::SlotLeaseBuilder| b.build().unwrap_err();
    assert!(matches!(
        bad(SlotLease::builder(server.url(), "x", 0)),
        BuildError::InvalidConfig { field: "total_systems", .. }
    ));
    assert!(matches!(
        bad(SlotLease::builder(server.url(), "{x}", 2)),
        BuildError::InvalidConfig { field: "key_space", .. }
    ));
    assert!(matches!(
        bad(SlotLease::builder(server.url(), "x", 2).ttl(Duration::from_secs(1)).margin(Duration::from_secs(1))),
        BuildError::InvalidConfig { field: "margin", .. }
    ));
}

#[test]
fn with_redis_stopped_nothing_is_handed_out_once_the_lease_lapses() {
    let mut server = RedisServer::start(&["--appendfsync", "always"]);
    let m = NonceManager::builder()
        .lease(lease(&server.url(), "down").io_timeout(Duration::from_millis(100)).build().unwrap())
        .build()
        .unwrap();
    let before = m.next().unwrap();
    server.kill();
    let killed = Instant::now();
    let mut handed_out = vec![];
    let lapsed_after = loop {
        match m.next() {
            Ok(n) => handed_out.push(n),
            Err(NonceError::LeaseLost { .. } | NonceError::LeaseStore { .. }) => break killed.elapsed(),
            Err(e) => panic!("{e}"),
        }
        assert!(killed.elapsed() < TTL * 2, "still handing out nonces {:?} after Redis stopped", killed.elapsed());
        std::thread::sleep(Duration::from_millis(1));
    };
    assert!(lapsed_after <= TTL, "stopped after {lapsed_after:?}, beyond the TTL");
    // fail closed: nothing at all while Redis is down
    for _ in 0..20 {
        assert!(m.next().is_err());
        std::thread::sleep(Duration::from_millis(20));
    }
    server.restart();
    let resumed = Instant::now();
    let after = loop {
        match m.next() {
            Ok(n) => break n,
            Err(_) => assert!(resumed.elapsed() < Duration::from_secs(5), "no nonce 5 s after Redis returned"),
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let highest = handed_out.iter().copied().max().unwrap_or(before);
    assert!(after > highest, "after Redis returned: {after} <= {highest}");
    eprintln!("lease lapsed {lapsed_after:?} after Redis stopped; resumed {:?} after it returned", resumed.elapsed());
}

#[test]
fn a_lapsed_holder_takes_a_slot_again_and_continues_above_it() {
    let server = RedisServer::start(&[]);
    let a = NonceManager::builder().lease(lease(&server.url(), "lapse").build().unwrap()).build().unwrap();
    let slot = a.lease_slot().unwrap();
    let mut a_nonces: Vec<u64> = (0..1_000).map(|_| a.next().unwrap()).collect();
    // the slot's key vanishes (an operator, or an expiry while the process was stopped) and B takes it
    server.cli(&["DEL", &format!("{{lapse}}:slot:{slot}")]);
    let b = NonceManager::builder().lease(lease(&server.url(), "lapse").build().unwrap()).build().unwrap();
    assert_eq!(b.lease_slot(), Some(slot), "B prefers the same slot (same process id)");
    let b_first = b.next().unwrap();
    assert!(b_first > *a_nonces.last().unwrap(), "B starts above everything A handed out in the slot");
    // A finds out at its next renewal or mark write, and moves to another slot
    let began = Instant::now();
    let (mut lost, mut in_new_slot) = (0, 0);
    while in_new_slot < 500 {
        match a.next() {
            Ok(n) => {
                in_new_slot += usize::from(n % SLOTS != slot);
                a_nonces.push(n);
            }
            Err(NonceError::LeaseLost { .. }) => lost += 1,
            Err(e) => panic!("{e}"),
        }
        assert!(began.elapsed() < TTL * 3, "A never moved off slot {slot}");
    }
    assert!(lost >= 1, "A handed out nothing in between: it noticed the loss");
    assert_eq!(a.lease_claims(), 2);
    let b_nonces: Vec<u64> = std::iter::once(b_first).chain((0..1_000).map(|_| b.next().unwrap())).collect();
    let all: HashSet<u64> = a_nonces.iter().chain(&b_nonces).copied().collect();
    assert_eq!(all.len(), a_nonces.len() + b_nonces.len(), "no nonce twice");
    assert!(a_nonces.windows(2).all(|w| w[0] < w[1]), "A strictly increasing across the switch");
    assert!(a.lease_slot().is_some_and(|s| s != slot));
    eprintln!("A lost its slot {lost} times before holding slot {:?}", a.lease_slot());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_async_renewer_keeps_the_lease_and_lets_it_lapse_when_redis_stops() {
    let mut server = RedisServer::start(&[]);
    let lease = lease(&server.url(), "async").io_timeout(Duration::from_millis(100)).build_async().unwrap();
    let m = NonceManager::builder().lease(lease).build().unwrap();
    // held across three TTLs: only the tokio task renews it
    let began = Instant::now();
    let mut last = 0;
    while began.elapsed() < TTL * 3 {
        let n = m.next().expect("the renewer task keeps the lease");
        assert!(n > last);
        last = n;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(m.lease_claims(), 1, "renewed, never re-claimed");
    server.kill();
    let killed = Instant::now();
    while m.next().is_ok() {
        assert!(killed.elapsed() < TTL * 2, "still handing out nonces {:?} after Redis stopped", killed.elapsed());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(killed.elapsed() <= TTL, "lapsed {:?} after Redis stopped", killed.elapsed());
    // outside a runtime, build_async is a clear error
    let outside = std::thread::spawn(|| SlotLease::builder("redis://127.0.0.1:1", "x", 2).build_async().unwrap_err());
    assert!(matches!(outside.join().unwrap(), BuildError::InvalidConfig { field: "lease", .. }));
}
