//! `RedisValidator` at the seams: failovers to a lagging replica, a flushed
//! store, configuration changed at run time, gateways of other settings on
//! one prefix, managed Redis without `CONFIG`, and the script cache flushed
//! under a batch. Against real `redis-server` (or, with `MN_REDIS_SERVER`,
//! `valkey-server`) processes the tests start themselves.
//!
//! Run with `cargo test --features redis --test redis_seams`.
#![cfg(feature = "redis")]

mod common;

use common::proxy::Proxy;
use common::redis_server::RedisServer;
use monotonic_nonce::{BuildError, Clock, ManualClock, Policy, RedisValidator, Rejection};
use std::time::{Duration, Instant};

const T0: u64 = 1_704_067_200_000;
const TIMEOUT: Duration = Duration::from_secs(2);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

async fn gateway(
    url: &str,
    policy: Policy,
    clock: &ManualClock,
    prefix: &str,
) -> Result<RedisValidator<ManualClock>, BuildError> {
    RedisValidator::builder(policy)
        .response_timeout(TIMEOUT)
        .url(url)
        .key_prefix(prefix)
        .clock(clock.clone())
        .max_future(Duration::from_secs(5))
        .build()
        .await
}

/// The verdict once the store answers (a broken connection is retried for up to 10 s).
fn answered(
    rt: &tokio::runtime::Runtime,
    v: &RedisValidator<ManualClock>,
    account: &str,
    nonce: u64,
) -> Result<(), Rejection> {
    let start = Instant::now();
    loop {
        match rt.block_on(v.validate(account, nonce)) {
            Err(Rejection::Unavailable { .. }) if start.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(50))
            }
            other => return other,
        }
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(20), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Replication is asynchronous whatever `appendfsync` says: a failover to a
/// replica that missed the last writes loses them. The guard raises its floor
/// on the run-id change even though both servers fsync every write.
#[test]
fn a_failover_to_a_lagging_replica_never_reopens_a_replay_even_with_appendfsync_always() {
    let master = RedisServer::start(&["--appendfsync", "always"]);
    let replica_of = master.port.to_string();
    let replica = RedisServer::start(&["--appendfsync", "always", "--replicaof", "127.0.0.1", &replica_of]);
    wait_for("the replica's sync", || replica.cli(&["INFO", "replication"]).contains("master_link_status:up"));
    let proxy = Proxy::to(master.port);
    let rt = runtime();
    let clock = ManualClock::new(T0);
    let v = rt.block_on(gateway(&proxy.url(), Policy::Strict, &clock, "f")).unwrap();
    clock.advance(5_001); // past the guard of a freshly started store
                          // the replica stops catching up (a partition), then the master takes 20 writes
    replica.cli(&["REPLICAOF", "NO", "ONE"]);
    let now = clock.now_ms().unwrap();
    for i in 0..20 {
        assert_eq!(rt.block_on(v.validate(format!("k{i}"), now)), Ok(()));
    }
    // failover: the address now leads to the replica, which never saw them
    proxy.switch_to(replica.port);
    clock.advance(1);
    let replayed: Vec<_> = (0..20).filter(|i| answered(&rt, &v, &format!("k{i}"), now).is_ok()).collect();
    assert!(replayed.is_empty(), "replays accepted after the failover: {replayed:?}");
    assert!(v.restarts_seen() >= 1);
    assert!(v.guard_floor() >= now + 5_000, "floor {}", v.guard_floor());
}

/// `FLUSHALL` (or `FLUSHDB`) keeps the run id: the prefix's epoch key is gone,
/// which the guard reads as lost state.
#[test]
fn a_flushed_store_raises_the_guard() {
    for flush in ["FLUSHALL", "FLUSHDB"] {
        let server = RedisServer::start(&["--appendfsync", "always"]);
        let rt = runtime();
        let clock = ManualClock::new(T0);
        let v = rt.block_on(gateway(&server.url(), Policy::HighestK(4), &clock, "fl")).unwrap();
        clock.advance(5_001);
        let now = clock.now_ms().unwrap();
        for i in 0..10 {
            assert_eq!(rt.block_on(v.validate(format!("k{i}"), now + i)), Ok(()));
        }
        server.cli(&[flush]);
        clock.advance(1_000); // the periodic check
        for i in 0..10 {
            let r = answered(&rt, &v, &format!("k{i}"), now + i);
            assert!(matches!(r, Err(Rejection::TooLow { .. })), "{flush}: replay of k{i}: {r:?}");
        }
        assert_eq!(v.restarts_seen(), 1, "{flush}");
        // a second gateway started after the flush sees the epoch it recreated: no second raise
        let later = rt.block_on(gateway(&server.url(), Policy::HighestK(4), &clock, "fl")).unwrap();
        assert_eq!(later.restarts_seen(), 0);
    }
}

/// `maxmemory-policy` changed at run time to one that evicts: the next
/// periodic check fails closed until it is set back.
#[test]
fn an_evicting_policy_set_at_run_time_fails_closed() {
    let server = RedisServer::start(&["--appendfsync", "always"]);
    let rt = runtime();
    let clock = ManualClock::new(T0);
    let v = rt.block_on(gateway(&server.url(), Policy::Strict, &clock, "m")).unwrap();
    clock.advance(5_001);
    assert_eq!(rt.block_on(v.validate("a", clock.now_ms().unwrap())), Ok(()));
    server.cli(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]);
    clock.advance(1_000);
    for i in 1..=5 {
        let r = rt.block_on(v.validate("a", clock.now_ms().unwrap() + i));
        assert!(matches!(r, Err(Rejection::Unavailable { ref reason }) if reason.contains("noeviction")), "{r:?}");
    }
    server.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    clock.advance(1_000);
    assert_eq!(rt.block_on(v.validate("a", clock.now_ms().unwrap())), Ok(()));
}

/// A key written under `HighestK(2)` must never be read as `HighestK(3)`'s
/// (nor a window's under another width): the prefix records its settings and
/// a gateway with other ones is refused at `build()`.
#[test]
fn a_gateway_with_another_width_on_the_same_prefix_is_refused() {
    let server = RedisServer::start(&["--appendfsync", "always"]);
    let rt = runtime();
    let clock = ManualClock::new(T0);
    for (first, second) in [
        (Policy::HighestK(2), Policy::HighestK(3)),
        (Policy::HighestK(3), Policy::HighestK(2)),
        (Policy::Window(64), Policy::Window(1_024)),
        (Policy::Window(1_024), Policy::Window(64)),
        (Policy::Strict, Policy::HighestK(2)),
    ] {
        let prefix = format!("{first:?}-{second:?}").replace(['(', ')'], "");
        let a = rt.block_on(gateway(&server.url(), first, &clock, &prefix)).unwrap();
        clock.advance(5_001); // past the guard of a new prefix
        rt.block_on(a.validate("acct", clock.now_ms().unwrap())).unwrap();
        match rt.block_on(gateway(&server.url(), second, &clock, &prefix)) {
            Err(BuildError::Store { reason }) => {
                assert!(reason.contains(&format!("{first:?}")), "{reason}");
            }
            other => panic!("{second:?} on a prefix of {first:?}: {other:?}"),
        }
        // the same settings join; another prefix is another key space
        assert!(rt.block_on(gateway(&server.url(), first, &clock, &prefix)).is_ok());
        assert!(rt.block_on(gateway(&server.url(), second, &clock, &format!("{prefix}-new"))).is_ok());
    }
}

/// Managed Redis without `CONFIG` (ElastiCache, Aiven): `build()` refuses by
/// name unless the operator declares the eviction policy, and then the store
/// is treated as one that may lose writes (the guard needs `max_future`).
#[test]
fn a_store_without_config_needs_the_operator_to_declare_it() {
    let server = RedisServer::start(&["--appendfsync", "always", "--rename-command", "CONFIG", ""]);
    let rt = runtime();
    let clock = ManualClock::new(T0);
    match rt.block_on(gateway(&server.url(), Policy::Strict, &clock, "g")) {
        Err(BuildError::Store { reason }) => assert!(reason.contains("declare_noeviction"), "{reason}"),
        other => panic!("no CONFIG, nothing declared: {other:?}"),
    }
    let declared = RedisValidator::builder(Policy::Strict)
        .response_timeout(TIMEOUT)
        .url(&server.url())
        .key_prefix("g")
        .clock(clock.clone())
        .declare_noeviction();
    let r = rt.block_on(declared.clone().build());
    assert!(matches!(r, Err(BuildError::Store { ref reason }) if reason.contains("max_future")), "{r:?}");
    let v = rt.block_on(declared.max_future(Duration::from_secs(5)).build()).unwrap();
    clock.advance(5_001);
    for i in 0..3 {
        assert_eq!(rt.block_on(v.validate("a", clock.now_ms().unwrap() + i)), Ok(()));
        clock.advance(1_000); // periodic checks without CONFIG keep working
    }
}

/// `SCRIPT FLUSH` while batches run: an item that already ran is never sent
/// again (which would refuse an honest first-time nonce as already used).
#[test]
fn validate_many_never_refuses_an_item_that_ran_before_a_script_flush() {
    let server = RedisServer::start(&["--appendfsync", "everysec"]);
    let rt = runtime();
    let v = rt
        .block_on(
            RedisValidator::builder(Policy::Strict)
                .response_timeout(TIMEOUT)
                .url(&server.url())
                .accept_durability_risk()
                .build(),
        )
        .unwrap();
    // one client flushing the script cache every 20 ms, for as long as the batches run
    let mut flusher = std::process::Command::new(common::redis_server::cli_bin())
        .args(["-p", &server.port.to_string(), "-r", "1000000", "-i", "0.02", "SCRIPT", "FLUSH"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("the Redis command-line client");
    let (mut refused, mut accepted) = (0, 0);
    for round in 0..200u64 {
        let batch: Vec<(String, u64)> = (0..1_000).map(|i| (format!("a{i}"), round + 1)).collect();
        for r in rt.block_on(v.validate_many(&batch)) {
            match r {
                Ok(()) => accepted += 1,
                Err(Rejection::Unavailable { .. }) => {}
                Err(other) => {
                    refused += 1;
                    eprintln!("{other:?}");
                }
            }
        }
    }
    let _ = flusher.kill();
    let _ = flusher.wait();
    let flushes: u64 = server
        .cli(&["INFO", "commandstats"])
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_script|flush:calls=").and_then(|v| v.split(',').next()?.parse().ok()))
        .unwrap_or(0);
    eprintln!("{flushes} flushes, {accepted} accepted, {refused} first-time nonces refused");
    assert!(flushes > 10 && accepted > 0, "{flushes} flushes");
    assert_eq!(refused, 0, "first-time nonces refused after a resend");
}
