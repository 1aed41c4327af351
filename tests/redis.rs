//! `RedisValidator` against real `redis-server` processes the tests start
//! themselves (free ports, temporary directories): the same verdicts as the
//! in-memory validator, exactly once under concurrency (one node and a
//! 3-master cluster), and failing closed through outages and restarts.
//!
//! Needs `redis-server` and `redis-cli` (Debian: `apt-get install -y redis-server`);
//! run with `cargo test --features redis`.
#![cfg(feature = "redis")]

mod common;

use common::model::Model;
use common::redis_server::{RedisCluster, RedisServer};
use monotonic_nonce::{
    clock::ManualClock, strategy::I64_MAX, BuildError, Clock, NonceValidator, Policy, RedisValidator, Rejection,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::collections::HashSet;
use std::time::Duration;

const T0: u64 = 1_704_067_200_000;

/// Every validator's response timeout here. The default, 50 ms, is a production
/// setting; these servers fsync every write (`appendfsync always`), and a loaded
/// CI disk once took longer than that (`conformance_without_bounds`: a spurious
/// `Unavailable { timed out }`). No test here is about the timeout's length.
const TIMEOUT: Duration = Duration::from_secs(2);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// A gateway on a prefix each test uses first: `assume_new_prefix`, so the
/// first start raises no guard (the tests that are about the guard say so).
async fn redis_validator(url: &str, policy: Policy, clock: &ManualClock, prefix: &str) -> RedisValidator<ManualClock> {
    RedisValidator::builder(policy)
        .response_timeout(TIMEOUT)
        .assume_new_prefix()
        .url(url)
        .key_prefix(prefix)
        .clock(clock.clone())
        .max_future(Duration::from_secs(5))
        .max_past(Duration::from_secs(60))
        .build()
        .await
        .unwrap()
}

#[derive(Debug, Clone)]
struct Op {
    account: u8,
    nonce: u64,
    record: bool,
    advance_ms: u64,
}

/// Nonces around the clock (in bounds), far outside it, and at the edges of u64.
fn nonce() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => (T0 - 100)..(T0 + 300),         // dense and reordered, inside the bounds
        2 => (T0 - 70_000)..(T0 + 10_000),   // across both time bounds
        1 => any::<u64>(),
        1 => (u64::MAX - 300)..=u64::MAX,
        1 => (I64_MAX - 300)..=I64_MAX,
        1 => Just(0u64),
    ]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        (0u8..3, nonce(), prop::bool::weighted(0.85), prop_oneof![8 => Just(0u64), 1 => 0u64..2_000])
            .prop_map(|(account, nonce, record, advance_ms)| Op { account, nonce, record, advance_ms }),
        1..60,
    )
}

/// The same random sequences through `RedisValidator` and `NonceValidator`
/// (same policy, clock, time bounds and ceiling): the same verdicts and the
/// same last nonces, every step.
fn conformance(policy: Policy, cases: u32) {
    let server = RedisServer::start(&["--appendfsync", "always"]);
    let rt = runtime();
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    let case = std::sync::atomic::AtomicU32::new(0);
    runner
        .run(&ops(), |ops| {
            let clock = ManualClock::new(T0);
            let prefix = format!("c{}", case.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
            let redis = rt.block_on(redis_validator(&server.url(), policy, &clock, &prefix));
            let memory = NonceValidator::<u8>::builder(policy)
                .clock(clock.clone())
                .max_future(Duration::from_secs(5))
                .max_past(Duration::from_secs(60))
                .build()
                .unwrap();
            for op in &ops {
                clock.advance(op.advance_ms);
                let account = [op.account];
                let (want, got) = if op.record {
                    (memory.validate(&op.account, op.nonce), rt.block_on(redis.validate(account, op.nonce)))
                } else {
                    (memory.check(&op.account, op.nonce), rt.block_on(redis.check(account, op.nonce)))
                };
                prop_assert_eq!(&got, &want, "{:?} {:?}", policy, op);
                let last = rt.block_on(redis.last_nonce(account)).unwrap();
                prop_assert_eq!(last, memory.last_nonce(&op.account), "{:?} {:?}", policy, op);
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn conformance_strict() {
    conformance(Policy::Strict, 300);
}

#[test]
fn conformance_highest_k() {
    conformance(Policy::HighestK(4), 300);
}

#[test]
fn conformance_window() {
    for w in [3, 64, 200] {
        conformance(Policy::Window(w), 150);
    }
}

/// Without time bounds, against the reference model that keeps every nonce
/// (huge jumps, u64::MAX and I64_MAX exercise the script's 64-bit arithmetic).
#[test]
fn conformance_without_bounds_matches_the_reference_model() {
    let server = RedisServer::start(&["--appendfsync", "always"]);
    let rt = runtime();
    for policy in [Policy::Strict, Policy::HighestK(3), Policy::Window(5), Policy::Window(130)] {
        let mut runner = TestRunner::new(Config { cases: 100, failure_persistence: None, ..Config::default() });
        let case = std::sync::atomic::AtomicU32::new(0);
        runner
            .run(&ops(), |ops| {
                let prefix = format!("m{policy:?}{}", case.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
                let redis = rt
                    .block_on(
                        RedisValidator::builder(policy)
                            .response_timeout(TIMEOUT)
                            .url(&server.url())
                            .key_prefix(&prefix)
                            .ceiling(u64::MAX)
                            .build(),
                    )
                    .unwrap();
                let mut model = Model::new(policy, u64::MAX);
                for op in &ops {
                    let want = model.validate(op.account, op.nonce, op.record);
                    let got = if op.record {
                        rt.block_on(redis.validate([op.account], op.nonce))
                    } else {
                        rt.block_on(redis.check([op.account], op.nonce))
                    };
                    prop_assert_eq!(&got, &want, "{:?} {:?}", policy, op);
                }
                Ok(())
            })
            .unwrap();
    }
}

/// 8 tasks on 4 connections x 20 000 validations over a small nonce range for
/// 4 accounts: the `Ok`s are exactly the distinct pairs.
fn exactly_once(validators: Vec<RedisValidator<ManualClock>>, accounts: u32, rt: &tokio::runtime::Runtime) {
    let accepted = rt.block_on(async {
        let mut tasks = Vec::new();
        for t in 0..8u64 {
            let v = validators[(t % validators.len() as u64) as usize].clone();
            tasks.push(tokio::spawn(async move {
                let mut ok = Vec::new();
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ t;
                for _ in 0..20_000 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let account = format!("acct-{}", x % u64::from(accounts));
                    let nonce = T0 + (x >> 32) % 500;
                    match v.validate(&account, nonce).await {
                        Ok(()) => ok.push((account, nonce)),
                        Err(Rejection::Unavailable { reason }) => panic!("store unavailable: {reason}"),
                        Err(_) => {}
                    }
                }
                ok
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all
    });
    let distinct: HashSet<_> = accepted.iter().cloned().collect();
    assert_eq!(accepted.len(), distinct.len(), "a pair was accepted twice");
    assert!(distinct.len() > 100, "the run accepted something ({})", distinct.len());
}

#[test]
fn concurrent_gateways_accept_each_pair_exactly_once() {
    let server = RedisServer::start(&["--appendfsync", "always"]);
    let rt = runtime();
    let clock = ManualClock::new(T0);
    let validators: Vec<_> =
        (0..4).map(|_| rt.block_on(redis_validator(&server.url(), Policy::Window(1_024), &clock, "x"))).collect();
    exactly_once(validators, 4, &rt);
}

/// The blocking twin, from plain threads (no runtime of the caller's): 4
/// threads x 5 000 validations of 300 nonces over 2 accounts, inside the
/// window: every distinct pair is accepted exactly once.
#[test]
fn the_blocking_twin_from_plain_threads_accepts_each_pair_exactly_once() {
    let server = RedisServer::start(&["--appendfsync", "always"]);
    let v = RedisValidator::builder(Policy::Window(1_024))
        .response_timeout(TIMEOUT)
        .url(&server.url())
        .clock(ManualClock::new(T0))
        .max_future(Duration::from_secs(5))
        .assume_new_prefix()
        .build_blocking()
        .unwrap();
    assert_eq!(v.ping(), Ok(()));
    let (accepted, tried): (Vec<_>, HashSet<_>) = std::thread::scope(|s| {
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let v = v.clone();
                s.spawn(move || {
                    let (mut ok, mut tried) = (Vec::new(), HashSet::new());
                    let mut x = 0x2545_F491_4F6C_DD1Du64 ^ t;
                    for _ in 0..5_000 {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        let pair = (format!("acct-{}", x % 2), T0 - 300 + (x >> 32) % 300);
                        tried.insert(pair.clone());
                        match v.validate(&pair.0, pair.1) {
                            Ok(()) => ok.push(pair),
                            Err(Rejection::Unavailable { reason }) => panic!("store unavailable: {reason}"),
                            Err(_) => {}
                        }
                    }
                    (ok, tried)
                })
            })
            .collect();
        threads.into_iter().map(|h| h.join().unwrap()).fold((Vec::new(), HashSet::new()), |(mut a, mut t), (ok, tr)| {
            a.extend(ok);
            t.extend(tr);
            (a, t)
        })
    });
    let distinct: HashSet<_> = accepted.iter().cloned().collect();
    assert_eq!(accepted.len(), distinct.len(), "a pair was accepted twice");
    assert_eq!(distinct, tried, "every pair inside the window is accepted once");
    assert_eq!(v.stats().accepted, accepted.len() as u64);
    assert!(v.validate_many(&[("acct-0", T0 + 1), ("acct-0", T0 + 1)])[1].is_err());
    assert_eq!(v.last_nonce("acct-0"), Ok(Some(T0 + 1)));
}

#[test]
fn concurrent_gateways_on_a_3_master_cluster_accept_each_pair_exactly_once() {
    let cluster = RedisCluster::start(&["--appendfsync", "always"]);
    let rt = runtime();
    let clock = ManualClock::new(T0);
    let validators: Vec<_> = (0..4)
        .map(|_| {
            rt.block_on(
                RedisValidator::builder(Policy::HighestK(16))
                    .response_timeout(TIMEOUT)
                    .cluster(cluster.urls())
                    .clock(clock.clone())
                    .max_future(Duration::from_secs(5))
                    .assume_new_prefix()
                    .build(),
            )
            .unwrap()
        })
        .collect();
    exactly_once(validators, 12, &rt);
    for node in &cluster.nodes {
        let keys: u64 = node.cli(&["DBSIZE"]).trim().parse().unwrap();
        assert!(keys > 0, "accounts spread over every master (node {} holds none)", node.port);
    }
}

#[test]
fn an_outage_fails_closed_and_validation_resumes_after_it() {
    let mut server = RedisServer::start(&["--appendfsync", "always"]);
    let rt = runtime();
    let clock = ManualClock::new(T0);
    let v = rt.block_on(redis_validator(&server.url(), Policy::Strict, &clock, "o"));
    rt.block_on(v.validate("a", T0)).unwrap();
    assert_eq!(rt.block_on(v.ping()), Ok(()));
    server.kill();
    for i in 1..=50 {
        let r = rt.block_on(v.validate("a", T0 + i));
        assert!(matches!(r, Err(Rejection::Unavailable { .. })), "during the outage: {r:?}");
    }
    assert!(rt.block_on(v.check("a", T0 + 1)).is_err());
    assert!(matches!(rt.block_on(v.ping()), Err(Rejection::Unavailable { .. })));
    server.restart(); // the AOF brings the account back
    let start = std::time::Instant::now();
    loop {
        match rt.block_on(v.validate("a", T0 + 1_000)) {
            // a new run id: the guard refuses up to now + max_future (whatever appendfsync says)
            Err(Rejection::TooLow { last_nonce, .. }) => {
                assert_eq!(last_nonce, T0 + 5_000);
                break;
            }
            Err(Rejection::Unavailable { .. }) if start.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(50))
            }
            other => panic!("after the restart: {other:?}"),
        }
    }
    assert_eq!(rt.block_on(v.ping()), Ok(()));
    clock.advance(1);
    assert_eq!(rt.block_on(v.validate("a", T0 + 5_001)), Ok(()), "validation resumes above the guard");
    let s = v.stats();
    assert!(s.unavailable >= 50 && s.accepted == 2 && s.too_low == 1, "{s:?}");
}

/// `appendfsync everysec`: a SIGKILL right after a burst can lose the last
/// second of writes. After the restart, every request accepted in the last 2 s
/// replayed is refused (the restart guard), and honest traffic is accepted
/// again once `max_future` has passed.
#[test]
fn a_restart_that_lost_writes_never_reopens_a_replay() {
    let mut server = RedisServer::start(&["--appendfsync", "everysec"]);
    let rt = runtime();
    let clock = ManualClock::new(T0);
    let v = rt.block_on(redis_validator(&server.url(), Policy::HighestK(8), &clock, "r"));
    // build() saw a server up for less than max_future: the guard starts up; let it pass
    clock.advance(5_001);
    let now = clock.now_ms().unwrap();
    let mut accepted = Vec::new();
    for i in 0..2_000u64 {
        let account = format!("k{}", i % 10);
        let nonce = now + i / 10;
        if rt.block_on(v.validate(&account, nonce)).is_ok() {
            accepted.push((account, nonce));
        }
    }
    assert_eq!(accepted.len(), 2_000);
    server.kill();
    server.restart();
    let lost =
        accepted.iter().filter(|(a, n)| rt.block_on(v.last_nonce(a)).ok().flatten().is_none_or(|l| l < *n)).count();
    eprintln!("accepted before the kill and missing after the restart: {lost} of {}", accepted.len());
    for (account, nonce) in &accepted {
        let r = rt.block_on(v.validate(account, *nonce));
        assert!(
            matches!(r, Err(Rejection::TooLow { .. } | Rejection::AlreadyUsed { .. })),
            "replay of ({account}, {nonce}): {r:?}"
        );
    }
    assert_eq!(v.restarts_seen(), 1);
    assert_eq!(v.guard_floor(), now + 5_000, "the guard covers now + max_future");
    // honest traffic: refused until max_future has passed, then accepted
    let honest = clock.now_ms().unwrap() + 10;
    assert!(matches!(rt.block_on(v.validate("k0", honest)), Err(Rejection::TooLow { .. })));
    clock.advance(5_001);
    assert_eq!(rt.block_on(v.validate("k0", clock.now_ms().unwrap())), Ok(()));
}

/// Many validations in flight when a restart is noticed: every one of them
/// is due for a check and reads the new run ids, but the restart is one
/// restart, and a later check that sees nothing new counts nothing.
#[test]
fn a_restart_seen_by_many_calls_at_once_is_counted_once() {
    let mut server = RedisServer::start(&["--appendfsync", "everysec"]);
    let rt = runtime();
    let clock = ManualClock::new(T0);
    let v = rt.block_on(redis_validator(&server.url(), Policy::Strict, &clock, "c"));
    clock.advance(5_001);
    assert_eq!(rt.block_on(v.validate("a", clock.now_ms().unwrap())), Ok(()));
    server.kill();
    server.restart();
    // a second later every call is due for a check (and the first also meets the broken connection)
    clock.advance(1_000);
    let nonce = clock.now_ms().unwrap(); // in bounds, so every call reaches the store (and the guard's check)
    rt.block_on(async {
        let tasks: Vec<_> = (0..16u64)
            .map(|i| {
                let v = v.clone();
                tokio::spawn(async move { v.validate(&format!("b{i}"), nonce).await })
            })
            .collect();
        for t in tasks {
            let _ = t.await.unwrap();
        }
    });
    assert_eq!(v.restarts_seen(), 1);
    clock.advance(1_000);
    let _ = rt.block_on(v.validate("a", clock.now_ms().unwrap()));
    assert_eq!(v.restarts_seen(), 1);
}

#[test]
fn build_refuses_an_evicting_store_and_unguarded_durability_risk() {
    let lru = RedisServer::start(&["--maxmemory-policy", "allkeys-lru"]);
    let rt = runtime();
    let r = rt.block_on(
        RedisValidator::builder(Policy::Strict)
            .response_timeout(TIMEOUT)
            .url(&lru.url())
            .max_future(Duration::from_secs(5))
            .build(),
    );
    match r {
        Err(BuildError::Store { reason }) => assert!(reason.contains("noeviction"), "{reason}"),
        other => panic!("allkeys-lru accepted: {other:?}"),
    }
    let everysec = RedisServer::start(&["--appendfsync", "everysec"]);
    let r = rt.block_on(RedisValidator::builder(Policy::Strict).response_timeout(TIMEOUT).url(&everysec.url()).build());
    assert!(matches!(r, Err(BuildError::Store { ref reason }) if reason.contains("accept_durability_risk")), "{r:?}");
    assert!(rt
        .block_on(
            RedisValidator::builder(Policy::Strict)
                .response_timeout(TIMEOUT)
                .url(&everysec.url())
                .accept_durability_risk()
                .build()
        )
        .is_ok());
    let always = RedisServer::start(&["--appendfsync", "always"]);
    assert!(rt
        .block_on(RedisValidator::builder(Policy::Strict).response_timeout(TIMEOUT).url(&always.url()).build())
        .is_ok());
    let r = rt
        .block_on(RedisValidator::builder(Policy::Strict).response_timeout(TIMEOUT).url("redis://127.0.0.1:1").build());
    assert!(matches!(r, Err(BuildError::Store { .. })), "{r:?}");
    let r = rt.block_on(
        RedisValidator::builder(Policy::Strict).response_timeout(TIMEOUT).url(&always.url()).key_prefix("a{b").build(),
    );
    assert!(matches!(r, Err(BuildError::InvalidConfig { field: "key_prefix", .. })), "{r:?}");
}

#[test]
fn account_keys_of_any_bytes_and_an_oversized_one() {
    let server = RedisServer::start(&["--appendfsync", "always"]);
    let rt = runtime();
    let v = rt
        .block_on(RedisValidator::builder(Policy::Window(64)).response_timeout(TIMEOUT).url(&server.url()).build())
        .unwrap();
    let odd: [&[u8]; 5] = [b"", b"}", b"{x}", &[0xff, 0xfe, 0x00], "ключ".as_bytes()];
    for (i, account) in odd.iter().enumerate() {
        let n = 1_000 + i as u64;
        assert_eq!(rt.block_on(v.validate(account, n)), Ok(()), "{account:?}");
        assert!(matches!(rt.block_on(v.validate(account, n)), Err(Rejection::AlreadyUsed { .. })), "{account:?}");
    }
    let huge = vec![b'a'; 1 << 20];
    assert_eq!(rt.block_on(v.validate(&huge, 5)), Err(Rejection::AccountTooLong { len: 1 << 20, max: 1024 }));
    // the five accounts and the prefix's record
    assert_eq!(server.cli(&["DBSIZE"]).trim(), "6", "nothing written for the oversized key");
}

#[test]
fn a_key_holding_foreign_state_is_unavailable_and_left_as_it_is() {
    let server = RedisServer::start(&["--appendfsync", "always"]);
    let rt = runtime();
    let build = |policy, prefix| {
        rt.block_on(
            RedisValidator::builder(policy).response_timeout(TIMEOUT).url(&server.url()).key_prefix(prefix).build(),
        )
    };
    let (strict, highest) = (build(Policy::Strict, "nonce").unwrap(), build(Policy::HighestK(4), "h").unwrap());
    // a gateway of another policy on the prefix is refused outright (the prefix's record)
    assert!(matches!(build(Policy::HighestK(4), "nonce"), Err(BuildError::Store { .. })));
    assert_eq!(rt.block_on(strict.validate("a", 5)), Ok(()));
    assert_eq!(rt.block_on(highest.validate("a", 9)), Ok(()));
    let key = "{nonce:a}".to_owned();
    let stored = server.cli(&["GET", &key]);
    // another policy's state in a key (copied by hand): refused as unavailable, both ways, nothing written
    server.cli(&["COPY", "{h:a}", "{nonce:b}"]);
    server.cli(&["COPY", "{nonce:a}", "{h:c}"]);
    let (foreign_k, foreign_s) = (server.cli(&["DUMP", "{nonce:b}"]), server.cli(&["DUMP", "{h:c}"]));
    assert!(matches!(rt.block_on(strict.validate("b", 10)), Err(Rejection::Unavailable { .. })));
    assert!(matches!(rt.block_on(highest.validate("c", 9)), Err(Rejection::Unavailable { .. })));
    assert_eq!((server.cli(&["DUMP", "{nonce:b}"]), server.cli(&["DUMP", "{h:c}"])), (foreign_k, foreign_s));
    assert_eq!(server.cli(&["GET", &key]), stored);
    // values no validator writes: a short one with Strict's tag, a 9-byte one with another tag, another type
    for (setup, bad) in
        [(&["SET", "S1234"][..], "short"), (&["SET", "X12345678"][..], "tag"), (&["HSET", "f", "1"][..], "type")]
    {
        server.cli(&["DEL", &key]);
        let mut args = vec![setup[0], key.as_str()];
        args.extend(&setup[1..]);
        server.cli(&args);
        let before = server.cli(&["DUMP", &key]);
        for nonce in [1, 6, 1 << 62] {
            let got = rt.block_on(strict.validate("a", nonce));
            assert!(matches!(got, Err(Rejection::Unavailable { .. })), "{bad}, {nonce}: {got:?}");
        }
        assert_eq!(server.cli(&["DUMP", &key]), before, "{bad}: the key is left as it was");
    }
}

#[test]
fn validate_many_gives_each_item_its_own_verdict_in_order() {
    let server = RedisServer::start(&["--appendfsync", "always"]);
    let rt = runtime();
    let v = rt
        .block_on(RedisValidator::builder(Policy::Strict).response_timeout(TIMEOUT).url(&server.url()).build())
        .unwrap();
    let batch = vec![("a", 5u64), ("b", 7), ("a", 5), ("a", 4), ("c", 0), ("a", 6)];
    let got = rt.block_on(v.validate_many(&batch));
    assert_eq!(got[0], Ok(()));
    assert_eq!(got[1], Ok(()));
    assert_eq!(got[2], Err(Rejection::AlreadyUsed { last_nonce: 5, attempted_nonce: 5 }));
    assert_eq!(got[3], Err(Rejection::TooLow { last_nonce: 5, attempted_nonce: 4 }));
    assert_eq!(got[4], Err(Rejection::NotPositive));
    assert_eq!(got[5], Ok(()));
    // after SCRIPT FLUSH (what a restart does), the batch path reloads the script
    server.cli(&["SCRIPT", "FLUSH"]);
    assert_eq!(rt.block_on(v.validate_many(&[("d", 1u64)])), vec![Ok(())]);
}

#[test]
fn keys_expire_once_every_nonce_they_refuse_is_too_old() {
    let server = RedisServer::start(&["--appendfsync", "always"]);
    let rt = runtime();
    let clock = ManualClock::new(T0);
    let v = rt
        .block_on(
            RedisValidator::builder(Policy::Strict)
                .response_timeout(TIMEOUT)
                .url(&server.url())
                .clock(clock.clone())
                .max_past(Duration::from_secs(60))
                .max_future(Duration::from_secs(5))
                .expiry_margin(Duration::from_secs(1))
                .assume_new_prefix()
                .build(),
        )
        .unwrap();
    rt.block_on(v.validate("a", T0)).unwrap();
    let ttl: i64 = server.cli(&["PTTL", "{nonce:a}"]).trim().parse().unwrap();
    assert!((60_000..=61_000).contains(&ttl), "ttl {ttl}");
    // a later nonce extends it; an earlier one never shortens it
    rt.block_on(v.validate("a", T0 + 3_000)).unwrap();
    let ttl: i64 = server.cli(&["PTTL", "{nonce:a}"]).trim().parse().unwrap();
    assert!(ttl > 62_000, "ttl {ttl}");
    let unbounded = rt
        .block_on(
            RedisValidator::builder(Policy::Strict)
                .response_timeout(TIMEOUT)
                .url(&server.url())
                .key_prefix("u")
                .build(),
        )
        .unwrap();
    rt.block_on(unbounded.validate("a", 5)).unwrap();
    assert_eq!(server.cli(&["PTTL", "{u:a}"]).trim(), "-1", "without time bounds keys do not expire");
    // an expired account's replays are all too old
    clock.advance(62_000);
    assert!(matches!(rt.block_on(v.validate("a", T0)), Err(Rejection::TooOld { .. })));
}

/// The guard's floor itself is refused and the nonce just above it accepted,
/// for every policy (the floor is what a fresh `everysec` server imposes at
/// `build()`: the last nonce standing for `now + max_future`).
#[test]
fn the_guard_floor_itself_is_refused_and_the_next_nonce_accepted() {
    let server = RedisServer::start(&["--appendfsync", "everysec"]);
    let rt = runtime();
    for (i, policy) in [Policy::Strict, Policy::HighestK(4), Policy::Window(64)].into_iter().enumerate() {
        let clock = ManualClock::new(T0);
        let v = rt.block_on(redis_validator(&server.url(), policy, &clock, &format!("g{i}")));
        let floor = v.guard_floor();
        assert_eq!(floor, T0 + 5_000, "{policy:?}: the server is younger than max_future");
        clock.advance(1); // T0 + 5 001 is now inside the future bound
        let want = Rejection::TooLow { last_nonce: floor, attempted_nonce: floor };
        assert_eq!(rt.block_on(v.validate("a", floor)), Err(want.clone()), "{policy:?}, new account");
        assert_eq!(rt.block_on(v.check("a", floor)), Err(want), "{policy:?}, check");
        assert_eq!(rt.block_on(v.validate("a", floor + 1)), Ok(()), "{policy:?}");
        // an existing account below the floor reports the higher of the two
        let refused = rt.block_on(v.validate("a", floor));
        assert_eq!(refused, Err(Rejection::TooLow { last_nonce: floor + 1, attempted_nonce: floor }), "{policy:?}");
    }
}

/// Both validators write the same error body for the same refusal, `lastNonce`
/// and the number format included.
#[test]
fn the_error_body_is_the_in_memory_validators() {
    use monotonic_nonce::protocol::JsonNumbers;
    let server = RedisServer::start(&["--appendfsync", "always"]);
    let rt = runtime();
    for numbers in [JsonNumbers::Auto, JsonNumbers::Strings] {
        let clock = ManualClock::new(T0);
        let redis = rt
            .block_on(
                RedisValidator::builder(Policy::HighestK(2))
                    .response_timeout(TIMEOUT)
                    .url(&server.url())
                    .key_prefix(&format!("body-{numbers:?}"))
                    .clock(clock.clone())
                    .max_future(Duration::from_secs(5))
                    .assume_new_prefix()
                    .json_numbers(numbers)
                    .build(),
            )
            .unwrap();
        let memory = NonceValidator::<String>::builder(Policy::HighestK(2))
            .clock(clock.clone())
            .max_future(Duration::from_secs(5))
            .json_numbers(numbers)
            .build()
            .unwrap();
        for n in [T0, T0 + 1] {
            rt.block_on(redis.validate("a", n)).unwrap();
            memory.validate("a", n).unwrap();
        }
        for n in [T0 + 1, T0 - 1, 0, T0 + 60_000] {
            let (r, m) = (rt.block_on(redis.validate("a", n)).unwrap_err(), memory.validate("a", n).unwrap_err());
            assert_eq!(r, m);
            assert_eq!(rt.block_on(redis.error_body("a", &r)), memory.error_body("a", &m), "{numbers:?} {n}");
        }
    }
}
