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
use common::redis_server::{RedisCluster, RedisServer};
use monotonic_nonce::{clock::ManualClock, BuildError, Clock, Policy, RedisValidator, Rejection};
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

async fn cluster_gateway(
    urls: Vec<String>,
    clock: &ManualClock,
    prefix: &str,
    timeout: Duration,
) -> Result<RedisValidator<ManualClock>, BuildError> {
    RedisValidator::builder(Policy::Strict)
        .response_timeout(timeout)
        .cluster(urls)
        .key_prefix(prefix)
        .clock(clock.clone())
        .max_future(Duration::from_secs(5))
        .assume_new_prefix()
        .build()
        .await
}

/// A replica takes over (`CLUSTER FAILOVER TAKEOVER`) with its old master
/// alive: the gateway's calls are redirected to it without an error. The
/// writes it missed (deleted on it here, as a replica that lagged would not
/// have them) must not be accepted again, and the failover counts once.
#[test]
fn a_cluster_takeover_with_the_old_master_alive_never_reopens_a_replay() {
    let cluster = RedisCluster::start_with_replicas(&["--appendfsync", "always"]);
    let rt = runtime();
    let clock = ManualClock::new(T0);
    let v = rt.block_on(cluster_gateway(cluster.urls(), &clock, "ct", TIMEOUT)).unwrap();
    let now = clock.now_ms().unwrap();
    let accounts: Vec<String> = (0..30).map(|i| format!("a{i}")).collect();
    for a in &accounts {
        assert_eq!(rt.block_on(v.validate(a, now)), Ok(()));
    }
    let master = cluster.master_holding("{ct:a0}");
    let replica = cluster.replica_of(master);
    let on_master: Vec<&String> = accounts
        .iter()
        .filter(|a| cluster.nodes[master].cli(&["EXISTS", &format!("{{ct:{a}}}")]).trim() == "1")
        .collect();
    wait_for("the replica to catch up", || {
        let offset = |n: &RedisServer, f: &str| {
            n.cli(&["INFO", "replication"]).lines().find_map(|l| l.strip_prefix(f).map(|v| v.trim().to_owned()))
        };
        offset(&cluster.nodes[master], "master_repl_offset:") == offset(&cluster.nodes[replica], "slave_repl_offset:")
    });
    cluster.nodes[replica].cli(&["CLUSTER", "FAILOVER", "TAKEOVER"]);
    wait_for("the takeover", || cluster.nodes[replica].cli(&["INFO", "replication"]).contains("role:master"));
    wait_for("the old master to follow", || cluster.nodes[master].cli(&["INFO", "replication"]).contains("role:slave"));
    // what a lagging replica would not have
    for a in &on_master {
        cluster.nodes[replica].cli(&["DEL", &format!("{{ct:{a}}}")]);
    }
    clock.advance(200); // well inside the once-a-second check
    let replayed: Vec<_> = on_master.iter().filter(|a| answered(&rt, &v, a, now).is_ok()).collect();
    assert!(replayed.is_empty(), "replays accepted on the new master: {replayed:?} of {}", on_master.len());
    // later checks see the finished failover: still one
    for i in 0..3 {
        clock.advance(1_000);
        let _ = rt.block_on(v.validate(format!("later{i}"), clock.now_ms().unwrap() + 6_000));
    }
    assert_eq!(v.restarts_seen(), 1, "one failover, one restart");
}

/// A new empty master with slots (and their keys) moved to it: nothing was
/// lost, so nothing is guarded.
#[test]
fn scaling_the_cluster_out_is_not_a_restart() {
    let mut cluster = RedisCluster::start(&["--appendfsync", "always"]);
    let rt = runtime();
    let clock = ManualClock::new(T0);
    let v = rt.block_on(cluster_gateway(cluster.urls(), &clock, "so", TIMEOUT)).unwrap();
    let now = clock.now_ms().unwrap();
    for i in 0..30 {
        assert_eq!(rt.block_on(v.validate(format!("a{i}"), now)), Ok(()));
    }
    cluster.scale_out(&["--appendfsync", "always"], 1_000);
    for step in 1..=3 {
        clock.advance(1_000);
        for i in 0..30 {
            let r = answered(&rt, &v, &format!("a{i}"), now + step);
            assert_eq!(r, Ok(()), "a{i} after the scale-out");
            assert!(matches!(rt.block_on(v.validate(format!("a{i}"), now)), Err(Rejection::TooLow { .. })));
        }
    }
    assert_eq!((v.restarts_seen(), v.guard_floor()), (0, 0));
}

/// One master hung (SIGSTOP): its accounts are unavailable, the others'
/// are answered.
#[test]
fn one_hung_master_does_not_stop_the_others() {
    let cluster = RedisCluster::start(&["--appendfsync", "always"]);
    let rt = runtime();
    let clock = ManualClock::new(T0);
    let v = rt.block_on(cluster_gateway(cluster.urls(), &clock, "h", Duration::from_millis(300))).unwrap();
    let now = clock.now_ms().unwrap();
    let accounts: Vec<String> = (0..30).map(|i| format!("a{i}")).collect();
    for a in &accounts {
        assert_eq!(rt.block_on(v.validate(a, now)), Ok(()));
    }
    let hung = cluster.master_holding("{h:a0}");
    let (on_hung, healthy): (Vec<&String>, Vec<&String>) =
        accounts.iter().partition(|a| cluster.nodes[hung].cli(&["EXISTS", &format!("{{h:{a}}}")]).trim() == "1");
    cluster.nodes[hung].pause();
    let r = rt.block_on(v.validate(on_hung[0], now + 1));
    assert!(matches!(r, Err(Rejection::Unavailable { .. })), "{r:?}");
    let mut answered_ok = 0;
    for (i, a) in healthy.iter().cycle().take(20).enumerate() {
        clock.advance(100);
        match rt.block_on(v.validate(a, now + 2 + i as u64)) {
            Ok(()) => answered_ok += 1,
            other => eprintln!("{a}: {other:?}"),
        }
    }
    cluster.nodes[hung].resume();
    assert_eq!(answered_ok, 20, "calls for accounts on the healthy masters while one hangs");
    clock.advance(1_000);
    assert_eq!(answered(&rt, &v, on_hung[0], now + 100), Ok(()), "the hung master's accounts after it resumed");
}

/// The master that holds the prefix's record hung: the guard's checks skip
/// the epoch until it answers, and the other masters' accounts are answered.
#[test]
fn a_hung_master_holding_the_prefix_record_does_not_stop_the_others() {
    let cluster = RedisCluster::start(&["--appendfsync", "always"]);
    let rt = runtime();
    let clock = ManualClock::new(T0);
    let v = rt.block_on(cluster_gateway(cluster.urls(), &clock, "hm", Duration::from_millis(300))).unwrap();
    let now = clock.now_ms().unwrap();
    let hung = cluster.master_holding("{hm}:meta");
    let healthy: Vec<String> = (0..30)
        .map(|i| format!("a{i}"))
        .filter(|a| {
            rt.block_on(v.validate(a, now)).unwrap();
            cluster.nodes[hung].cli(&["EXISTS", &format!("{{hm:{a}}}")]).trim() != "1"
        })
        .collect();
    assert!(!healthy.is_empty());
    cluster.nodes[hung].pause();
    let mut answered_ok = 0;
    for (i, a) in healthy.iter().cycle().take(10).enumerate() {
        clock.advance(500); // a periodic check every other call
        match rt.block_on(v.validate(a, now + 1 + i as u64)) {
            Ok(()) => answered_ok += 1,
            other => eprintln!("{a}: {other:?}"),
        }
    }
    cluster.nodes[hung].resume();
    assert_eq!(answered_ok, 10, "calls for accounts on the healthy masters while the record's master hangs");
}
