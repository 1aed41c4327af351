//! `NonceValidator` snapshot and restore: consistency under concurrent
//! validation, the cold-start guard, and refusing unsafe restores.

use monotonic_nonce::{clock::ManualClock, validator::StateSnapshot, BuildError, NonceValidator, Policy, Rejection};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

const NOW: u64 = 1_704_067_200_000;

#[test]
fn snapshot_under_8_threads_then_restore_refuses_every_pair_accepted_before_it() {
    for policy in [Policy::Strict, Policy::HighestK(64), Policy::Window(4_096)] {
        let v = NonceValidator::<u32>::builder(policy).shards(4).build().unwrap();
        let logs: Vec<Mutex<Vec<(u32, u64)>>> = (0..8).map(|_| Mutex::new(Vec::new())).collect();
        let stop = AtomicBool::new(false);
        let started = AtomicUsize::new(0);
        let (before, snap) = std::thread::scope(|s| {
            for (t, log) in logs.iter().enumerate() {
                let (v, stop, started) = (&v, &stop, &started);
                s.spawn(move || {
                    started.fetch_add(1, Ordering::SeqCst);
                    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ t as u64;
                    let mut n = 0u64;
                    while !stop.load(Ordering::SeqCst) {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        n += 1;
                        // mostly rising per account, with some reordering and duplicates
                        let (account, nonce) = ((x % 16) as u32, n * 8 + (x >> 20) % 24);
                        if nonce > 0 && v.validate(&account, nonce).is_ok() {
                            log.lock().unwrap().push((account, nonce));
                        }
                    }
                });
            }
            while started.load(Ordering::SeqCst) < 8 {
                std::thread::yield_now();
            }
            std::thread::sleep(Duration::from_millis(30));
            // everything logged now was accepted before the snapshot began
            let before: Vec<(u32, u64)> = logs.iter().flat_map(|l| l.lock().unwrap().clone()).collect();
            let snap = v.snapshot();
            std::thread::sleep(Duration::from_millis(10));
            stop.store(true, Ordering::SeqCst);
            (before, snap)
        });
        assert!(before.len() > 1_000, "{policy:?}: only {} accepted before the snapshot", before.len());
        let restored = NonceValidator::<u32>::builder(policy).accept_unclean_restore().restore(snap).build().unwrap();
        for &(account, nonce) in &before {
            assert!(
                restored.validate(&account, nonce).is_err(),
                "{policy:?}: ({account}, {nonce}) accepted again after restore"
            );
        }
    }
}

fn guarded(
    clock: &ManualClock,
    policy: Policy,
) -> monotonic_nonce::validator::NonceValidatorBuilder<&'static str, ManualClock> {
    NonceValidator::builder(policy).clock(clock.clone()).max_future(Duration::from_secs(30))
}

#[test]
fn cold_start_guard_refuses_a_replay_of_a_request_accepted_after_the_snapshot() {
    for policy in [Policy::Strict, Policy::HighestK(8), Policy::Window(1_000)] {
        let clock = ManualClock::new(NOW);
        let v = guarded(&clock, policy).build().unwrap();
        v.validate(&"a", NOW).unwrap();
        let snap = v.snapshot();
        // accepted after the snapshot, up to the future bound: lost in a crash
        v.validate(&"a", NOW + 29_000).unwrap();
        v.validate(&"new", NOW + 10).unwrap();
        drop(v);
        clock.advance(2_000); // the restart takes 2 s
        let r = guarded(&clock, policy).restore(snap).build().unwrap();
        assert!(matches!(r.validate(&"a", NOW + 29_000), Err(Rejection::TooLow { .. })), "{policy:?}");
        assert!(matches!(r.validate(&"new", NOW + 10), Err(Rejection::TooLow { .. })), "{policy:?}");
        assert!(r.validate(&"a", NOW).is_err());
        // the price: honest nonces up to now + max_future are refused, above it accepted
        let guard = NOW + 2_000 + 30_000;
        assert!(matches!(r.validate(&"a", guard), Err(Rejection::TooLow { .. })));
        clock.advance(1);
        assert_eq!(r.validate(&"a", guard + 1), Ok(()), "{policy:?}");
        assert_eq!(r.validate(&"other", guard + 1), Ok(()), "{policy:?}");
    }
}

#[test]
fn unclean_snapshot_without_a_future_bound_is_refused_unless_the_risk_is_accepted() {
    let v = NonceValidator::<u8>::new(Policy::Strict);
    v.validate(&1, 5).unwrap();
    let snap = v.snapshot();
    let refused = NonceValidator::<u8>::builder(Policy::Strict).restore(snap.clone()).build();
    assert!(
        matches!(refused, Err(BuildError::Restore { ref reason }) if reason.contains("close()") && reason.contains("max_future"))
    );
    let risky = NonceValidator::<u8>::builder(Policy::Strict).restore(snap).accept_unclean_restore().build().unwrap();
    assert!(risky.validate(&1, 5).is_err());
    assert_eq!(risky.validate(&1, 6), Ok(()));
}

#[test]
fn clean_shutdown_snapshot_restores_exactly_without_a_guard() {
    let v = NonceValidator::<u8>::new(Policy::Window(64));
    for n in [10, 12, 11, 40] {
        v.validate(&1, n).unwrap();
    }
    let snap = v.into_snapshot();
    assert!(snap.clean_shutdown);
    let r = NonceValidator::<u8>::builder(Policy::Window(64)).restore(snap).build().unwrap();
    for n in [10, 12, 11, 40] {
        assert!(matches!(r.validate(&1, n), Err(Rejection::AlreadyUsed { .. })));
    }
    assert_eq!(r.validate(&1, 13), Ok(()), "unseen inside the window: still accepted");
    assert_eq!(r.last_nonce(&1), Some(40));
}

#[test]
fn restore_refuses_a_mismatched_policy_and_impossible_states() {
    let v = NonceValidator::<u8>::new(Policy::HighestK(4));
    v.validate(&1, 3).unwrap();
    let snap = v.into_snapshot();
    let other = NonceValidator::<u8>::builder(Policy::Strict).restore(snap.clone()).build();
    assert!(matches!(other, Err(BuildError::Restore { ref reason }) if reason.contains("HighestK(4)")));
    for bad in [vec![], vec![0], vec![3, 2], vec![1, 2, 3, 4, 5]] {
        let mut s = snap.clone();
        s.accounts[0].state = StateSnapshot::HighestK { values: bad.clone() };
        let r = NonceValidator::<u8>::builder(Policy::HighestK(4)).restore(s).build();
        assert!(matches!(r, Err(BuildError::Restore { .. })), "{bad:?} accepted");
    }
    let narrower = NonceValidator::<u8>::builder(Policy::HighestK(3)).restore(snap.clone()).build();
    assert!(matches!(narrower, Err(BuildError::Restore { .. })), "narrowing stays refused");
}

#[test]
fn eviction_floor_survives_a_restore() {
    let clock = ManualClock::new(1_000);
    let bounded = || {
        NonceValidator::<u8>::builder(Policy::Strict)
            .clock(clock.clone())
            .max_future(Duration::from_secs(1))
            .max_accounts(1)
            .shards(1)
    };
    let v = bounded().build().unwrap();
    v.validate(&1, 100).unwrap();
    v.validate(&2, 200).unwrap(); // evicts 1: floor 100
    let snap = v.into_snapshot();
    assert_eq!(snap.eviction_floor, 100);
    let r = bounded().restore(snap).build().unwrap();
    assert!(matches!(r.validate(&1, 100), Err(Rejection::TooLow { .. })));
    assert_eq!(r.validate(&1, 101), Ok(()));
}

#[cfg(feature = "serde")]
#[test]
fn save_and_load_round_trip_and_corruption_is_a_clear_error() {
    use monotonic_nonce::validator::{SnapshotError, ValidatorSnapshot};
    let dir = std::env::temp_dir().join(format!("monotonic-nonce-snap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("validator.json");
    let v = NonceValidator::<String>::new(Policy::HighestK(3));
    for n in [5, 9, 7, 11] {
        v.validate("k", n).unwrap();
    }
    let snap = v.into_snapshot();
    snap.save(&path).unwrap();
    let loaded = ValidatorSnapshot::<String>::load(&path).unwrap();
    assert_eq!(loaded, snap);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    match ValidatorSnapshot::<String>::load(&path) {
        Err(e @ SnapshotError::Format { .. }) => {
            assert!(e.to_string().contains("not a complete validator snapshot"), "{e}")
        }
        other => panic!("truncated snapshot: {other:?}"),
    }
    // another format version is its own, clear error
    let old = String::from_utf8(bytes).unwrap().replacen("\"version\":3", "\"version\":1", 1);
    std::fs::write(&path, old).unwrap();
    assert!(matches!(
        ValidatorSnapshot::<String>::load(&path),
        Err(SnapshotError::Version { found: 1, expected: 3, .. })
    ));
    assert_eq!(ValidatorSnapshot::<String>::load_if_exists(dir.join("absent.json")).unwrap(), None);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 10, item 4: a dense window's snapshot is two numbers, not every nonce.
#[test]
fn a_dense_window_snapshot_is_two_numbers() {
    let v = NonceValidator::<u8>::new(Policy::Window(1 << 20));
    for n in 1..=(1u64 << 20) {
        v.validate(&1, n).unwrap();
    }
    let snap = v.snapshot();
    assert_eq!(snap.accounts[0].state, StateSnapshot::Window { highest: 1 << 20, low: 1, ring: vec![] });
    // and a reordered window's snapshot is its ring: w / 64 + 2 words
    let v = NonceValidator::<u8>::new(Policy::Window(8128));
    for n in [10, 5, 7] {
        v.validate(&1, n).unwrap();
    }
    let StateSnapshot::Window { ring, .. } = &v.snapshot().accounts[0].state else { panic!() };
    assert_eq!(ring.len(), 128);
}

/// Issue 10, item 4 (the other way): restore allocates within the policy's own limits.
#[test]
fn restore_allocates_within_the_policy() {
    let v = NonceValidator::<u8>::new(Policy::Window(64));
    for n in [10, 5, 7] {
        v.validate(&1, n).unwrap();
    }
    v.close();
    let mut snap = v.snapshot();
    snap.accounts[0].state = StateSnapshot::Window { highest: 10, low: 0, ring: vec![u64::MAX; 1 << 20] };
    let r = NonceValidator::<u8>::builder(Policy::Window(64)).restore(snap).build();
    assert!(matches!(r, Err(BuildError::Restore { ref reason }) if reason.contains("ring")), "{r:?}");
}

/// Issue 10, item 7: states no validator could have produced are refused.
#[test]
fn restore_refuses_states_above_the_ceiling() {
    let v = NonceValidator::<u8>::new(Policy::Strict);
    v.validate(&1, 5).unwrap();
    v.close();
    let good = v.snapshot();
    let mut above = good.clone();
    above.accounts[0].state = StateSnapshot::Strict { last: u64::MAX };
    assert!(matches!(
        NonceValidator::<u8>::builder(Policy::Strict).restore(above).build(),
        Err(BuildError::Restore { .. })
    ));
    let mut floor = good.clone();
    floor.eviction_floor = u64::MAX;
    assert!(matches!(
        NonceValidator::<u8>::builder(Policy::Strict).restore(floor).build(),
        Err(BuildError::Restore { .. })
    ));
    let mut account_floor = good;
    account_floor.accounts[0].floor = u64::MAX;
    let r = NonceValidator::<u8>::builder(Policy::Strict).restore(account_floor).build();
    assert!(matches!(r, Err(BuildError::Restore { .. })));
}

/// Issue 10, item 12: restore widens HighestK and Window, never narrows.
#[test]
fn restore_widens_but_never_narrows() {
    let v = NonceValidator::<u8>::new(Policy::Window(64));
    for n in [100, 90, 95] {
        v.validate(&1, n).unwrap();
    }
    v.close();
    let snap = v.snapshot();
    let wide = NonceValidator::<u8>::builder(Policy::Window(1_000)).restore(snap.clone()).build().unwrap();
    for n in [100, 90, 95] {
        assert!(matches!(wide.validate(&1, n), Err(Rejection::AlreadyUsed { .. })), "{n}");
    }
    assert_eq!(wide.validate(&1, 91), Ok(()));
    assert!(NonceValidator::<u8>::builder(Policy::Window(32)).restore(snap).build().is_err());
    let k = NonceValidator::<u8>::new(Policy::HighestK(2));
    k.validate(&1, 7).unwrap();
    k.validate(&1, 9).unwrap();
    let wider = NonceValidator::<u8>::builder(Policy::HighestK(8)).restore(k.into_snapshot()).build().unwrap();
    assert!(wider.validate(&1, 7).is_err() && wider.validate(&1, 8).is_ok());
}

/// Issue 10, item 12: a validator shared by `Arc` can be shut down cleanly.
#[test]
fn close_through_an_arc_makes_the_snapshot_clean() {
    let v = std::sync::Arc::new(NonceValidator::<u8>::new(Policy::Strict));
    let worker = std::sync::Arc::clone(&v);
    worker.validate(&1, 5).unwrap();
    v.close();
    assert!(matches!(worker.validate(&1, 6), Err(Rejection::Unavailable { .. })), "fails closed after close()");
    let snap = v.snapshot();
    assert!(snap.clean_shutdown);
    let r = NonceValidator::<u8>::builder(Policy::Strict).restore(snap).build().unwrap(); // no guard needed
    assert!(r.validate(&1, 5).is_err() && r.validate(&1, 6).is_ok());
}

/// Widening a policy on restore keeps refusing what the narrower one refused
/// only by its bound (below the k-th highest, below the window).
#[test]
fn widening_on_restore_keeps_what_the_narrower_bound_refused() {
    let k = NonceValidator::<u8>::new(Policy::HighestK(2));
    for n in [10, 20, 30] {
        k.validate(&1, n).unwrap();
    }
    assert!(k.validate(&1, 10).is_err(), "below the two highest");
    let wider = NonceValidator::<u8>::builder(Policy::HighestK(3)).restore(k.into_snapshot()).build().unwrap();
    assert!(wider.validate(&1, 10).is_err(), "HighestK(2) -> HighestK(3) reopened 10");
    assert!(wider.validate(&1, 15).is_err(), "15 was below HighestK(2)'s bound too");
    assert_eq!(wider.validate(&1, 25), Ok(()));

    let w = NonceValidator::<u8>::new(Policy::Window(64));
    for n in 1_000..=1_100 {
        w.validate(&1, n).unwrap();
    }
    let wide = NonceValidator::<u8>::builder(Policy::Window(1_024)).restore(w.into_snapshot()).build().unwrap();
    let reopened: Vec<u64> = (1..=1_100).filter(|&n| wide.validate(&1, n).is_ok()).collect();
    assert!(reopened.is_empty(), "Window(64) -> Window(1024) accepted again: {reopened:?}");
    assert_eq!(wide.validate(&1, 1_101), Ok(()));
}

/// The restart guard covers what the old settings could have accepted: the
/// larger of the snapshot's `max_future` and the restoring validator's.
#[test]
fn the_guard_uses_the_larger_max_future_of_the_snapshot_and_the_restorer() {
    let clock = ManualClock::new(NOW);
    let v = NonceValidator::<&str>::builder(Policy::Strict)
        .clock(clock.clone())
        .max_future(Duration::from_secs(60))
        .build()
        .unwrap();
    v.validate(&"a", NOW).unwrap();
    let snap = v.snapshot();
    v.validate(&"a", NOW + 50_000).unwrap(); // after the snapshot, within the old bound: lost in a crash
    drop(v);
    clock.advance(1_000); // the restart takes 1 s
    let r = NonceValidator::<&str>::builder(Policy::Strict)
        .clock(clock.clone())
        .max_future(Duration::from_secs(5))
        .restore(snap)
        .build()
        .unwrap();
    clock.advance(45_000); // the replay is now within the new, smaller future bound
    assert!(r.validate(&"a", NOW + 50_000).is_err(), "replay accepted: the guard used the new, smaller max_future");
}

/// A snapshot taken under one time scale is not read under another.
#[test]
fn a_snapshot_from_another_time_scale_is_refused() {
    use monotonic_nonce::Strategy;
    let v = NonceValidator::<u8>::new(Policy::Strict);
    v.validate(&1, NOW).unwrap();
    let snap = v.into_snapshot();
    let r = NonceValidator::<u8>::builder(Policy::Strict)
        .strategy(Strategy::Hft { counter_digits: 3 })
        .restore(snap)
        .build();
    assert!(matches!(r, Err(BuildError::Restore { ref reason }) if reason.contains("time scale")), "{r:?}");
}

/// `remembered()` is bounded by the window, not by the history of a counter.
#[test]
fn a_window_remembers_at_most_w_plus_one_values() {
    let v = NonceValidator::<u8>::new(Policy::Window(8_128));
    for n in 1..=200_000 {
        v.validate(&1, n).unwrap();
    }
    let snap = v.into_snapshot();
    let remembered = snap.accounts[0].state.remembered();
    assert!(remembered.len() <= 8_129, "{} values", remembered.len());
    let r = NonceValidator::<u8>::builder(Policy::Window(8_128)).restore(snap).build().unwrap();
    assert!(r.validate(&1, 1).is_err() && r.validate(&1, 200_000 - 8_128).is_err());
    assert_eq!(r.validate(&1, 200_001), Ok(()));
}

/// The recipe `close()`, save, then `load_if_exists` + `restore` at start:
/// a clean file is restored clean once; a crash before the next save makes
/// the next start treat it as unclean.
#[cfg(feature = "serde")]
#[test]
fn a_clean_snapshot_file_is_restored_clean_only_once() {
    use monotonic_nonce::validator::ValidatorSnapshot;
    let dir = std::env::temp_dir().join(format!("monotonic-nonce-once-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("validator.json");
    let v = NonceValidator::<String>::new(Policy::Strict);
    v.validate("acct", NOW).unwrap();
    v.into_snapshot().save(&path).unwrap();
    // run 2: restores the clean file, accepts a request, crashes before saving
    let snap = ValidatorSnapshot::<String>::load_if_exists(&path).unwrap().unwrap();
    let run2 = NonceValidator::<String>::builder(Policy::Strict).restore(snap).build().unwrap();
    assert_eq!(run2.validate("acct", NOW + 1_000), Ok(()));
    drop(run2);
    // run 3: the same file is no longer clean: refused without a future bound
    let snap = ValidatorSnapshot::<String>::load_if_exists(&path).unwrap().unwrap();
    assert!(!snap.clean_shutdown);
    let run3 = NonceValidator::<String>::builder(Policy::Strict).restore(snap.clone()).build();
    assert!(matches!(run3, Err(BuildError::Restore { .. })), "restored clean twice: {run3:?}");
    // and with one, the guard refuses the replay
    let clock = ManualClock::new(NOW);
    let run3 = NonceValidator::<String>::builder(Policy::Strict)
        .clock(clock)
        .max_future(Duration::from_secs(5))
        .restore(snap)
        .build()
        .unwrap();
    assert!(run3.validate("acct", NOW + 1_000).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
