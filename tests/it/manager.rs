//! Behaviour of `NonceManager` under each strategy, with a `ManualClock`.

use monotonic_nonce::{
    clock::{ClockError, ManualClock},
    strategy::{I64_MAX, JS_SAFE_MAX},
    BuildError, NonceError, NonceManager, Strategy, SystemClock,
};

const T0: u64 = 1_704_067_200_000; // 2024-01-01T00:00:00Z

fn manager(strategy: Strategy, clock: &ManualClock) -> NonceManager<ManualClock> {
    NonceManager::builder().strategy(strategy).clock(clock.clone()).build().expect("valid config")
}

fn config_field(err: BuildError) -> &'static str {
    match err {
        BuildError::InvalidConfig { field, .. } => field,
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn millis_follows_the_clock_and_counts_up_within_a_millisecond() {
    let clock = ManualClock::new(T0);
    let m = manager(Strategy::Millis, &clock);
    assert_eq!(m.next().unwrap(), T0);
    assert_eq!(m.next().unwrap(), T0 + 1);
    assert_eq!(m.next().unwrap(), T0 + 2);
    clock.advance(10);
    assert_eq!(m.next().unwrap(), T0 + 10);
    assert_eq!(m.last(), T0 + 10);
}

#[test]
fn clock_standing_still_never_repeats() {
    let clock = ManualClock::new(T0);
    let m = manager(Strategy::Millis, &clock);
    let got: Vec<u64> = (0..10_000).map(|_| m.next().unwrap()).collect();
    assert!(got.windows(2).all(|w| w[1] == w[0] + 1));
}

#[test]
fn clock_step_back_an_hour_never_repeats_or_decreases() {
    for strategy in [
        Strategy::Millis,
        Strategy::Distributed { system_id: 3, total_systems: 7 },
        Strategy::Hft { counter_digits: 3 },
    ] {
        let clock = ManualClock::new(T0);
        let m = manager(strategy, &clock);
        let before = m.next().unwrap();
        clock.set(T0 - 3_600_000);
        let after: Vec<u64> = (0..100).map(|_| m.next().unwrap()).collect();
        assert!(after[0] > before, "{strategy:?}");
        assert!(after.windows(2).all(|w| w[1] > w[0]), "{strategy:?}");
        clock.set(T0 + 1);
        assert!(m.next().unwrap() > after[99], "{strategy:?}");
    }
}

#[test]
fn clock_failure_carries_on_from_last() {
    let clock = ManualClock::new(T0);
    let m = manager(Strategy::Distributed { system_id: 1, total_systems: 3 }, &clock);
    let before = m.next().unwrap();
    clock.set_failing(true);
    let a = m.next().unwrap();
    let b = m.reserve(3).unwrap();
    assert_eq!(a, before + 3);
    assert_eq!(b.first(), a + 3);
    assert_eq!(b.last(), a + 9);
    clock.set_failing(false);
    assert!(m.next().unwrap() > b.last());
}

#[test]
fn build_needs_a_working_clock() {
    let clock = ManualClock::new(T0);
    clock.set_failing(true);
    let err = NonceManager::builder().clock(clock).build().unwrap_err();
    assert_eq!(err, BuildError::Clock(ClockError::Injected));
}

#[test]
fn distributed_managers_never_collide_within_one_millisecond() {
    let clock = ManualClock::new(T0);
    let total = 4;
    let managers: Vec<_> =
        (0..total).map(|id| manager(Strategy::Distributed { system_id: id, total_systems: total }, &clock)).collect();
    let mut all = Vec::new();
    for round in 0..1_000 {
        for (id, m) in managers.iter().enumerate() {
            let n = if round % 10 == 0 { m.reserve(5).unwrap().last() } else { m.next().unwrap() };
            assert_eq!(n % total, id as u64);
            all.push(n);
        }
    }
    let len = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), len, "two systems produced the same nonce");
}

#[test]
fn distributed_rejects_bad_ids_at_build() {
    let bad_id =
        NonceManager::builder().strategy(Strategy::Distributed { system_id: 4, total_systems: 4 }).build().unwrap_err();
    assert_eq!(config_field(bad_id), "system_id");
    let no_systems =
        NonceManager::builder().strategy(Strategy::Distributed { system_id: 0, total_systems: 0 }).build().unwrap_err();
    assert_eq!(config_field(no_systems), "total_systems");
}

#[test]
fn hft_counter_counts_up_then_rolls_into_the_next_millisecond() {
    let clock = ManualClock::new(T0);
    let m = manager(Strategy::Hft { counter_digits: 2 }, &clock);
    let got: Vec<u64> = (0..150).map(|_| m.next().unwrap()).collect();
    assert_eq!(got[0], T0 * 100);
    assert_eq!(got[99], T0 * 100 + 99);
    assert_eq!(got[100], (T0 + 1) * 100, "counter rolls into the next ms range");
    // the clock reaches that millisecond: no repeat, the counter just continues
    clock.advance(1);
    assert_eq!(m.next().unwrap(), (T0 + 1) * 100 + 50);
    // a later millisecond restarts the counter
    clock.advance(1);
    assert_eq!(m.next().unwrap(), (T0 + 2) * 100);
}

#[test]
fn hft_rejects_zero_and_overflowing_digits_at_build() {
    for digits in [0, 20, 19, 8] {
        let err = NonceManager::builder()
            .strategy(Strategy::Hft { counter_digits: digits })
            .clock(ManualClock::new(T0))
            .build()
            .unwrap_err();
        let field = config_field(err);
        assert!(field == "counter_digits" || field == "ceiling", "digits {digits}: field {field}");
    }
    // 7 digits still fit under I64_MAX today (1.7e19 > 9.2e18 is 8 digits)
    assert!(NonceManager::builder()
        .strategy(Strategy::Hft { counter_digits: 6 })
        .clock(ManualClock::new(T0))
        .build()
        .is_ok());
}

#[test]
fn hft6_under_js_safe_max_is_refused_with_a_message_saying_what_to_change() {
    let err = NonceManager::builder()
        .strategy(Strategy::Hft { counter_digits: 6 })
        .ceiling(JS_SAFE_MAX)
        .clock(ManualClock::new(T0))
        .build()
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("JS_SAFE_MAX"), "{msg}");
    assert!(msg.contains("1.7e18"), "{msg}");
    assert!(msg.contains("counter_digits <= 3"), "{msg}");
    assert_eq!(config_field(err), "ceiling");
    // and the suggested fix builds
    assert!(NonceManager::builder()
        .strategy(Strategy::Hft { counter_digits: 3 })
        .ceiling(JS_SAFE_MAX)
        .clock(ManualClock::new(T0))
        .build()
        .is_ok());
}

#[test]
fn reaching_the_ceiling_is_an_error_that_changes_nothing() {
    let clock = ManualClock::new(T0);
    let m = NonceManager::builder().clock(clock.clone()).ceiling(T0 + 2).build().unwrap();
    assert_eq!(m.next().unwrap(), T0);
    assert_eq!(m.reserve(3), Err(NonceError::Overflow { ceiling: T0 + 2 }));
    assert_eq!(m.last(), T0, "a refused batch moves nothing");
    assert_eq!(m.next().unwrap(), T0 + 1);
    assert_eq!(m.next().unwrap(), T0 + 2);
    assert_eq!(m.next(), Err(NonceError::Overflow { ceiling: T0 + 2 }));
    assert_eq!(m.last(), T0 + 2);
    clock.advance(1_000); // the clock term is now above the ceiling too
    assert_eq!(m.next(), Err(NonceError::Overflow { ceiling: T0 + 2 }));
}

#[test]
fn reserve_near_u64_max_never_wraps() {
    let clock = ManualClock::new(T0);
    let m = NonceManager::builder().clock(clock).ceiling(u64::MAX).start_after(u64::MAX - 3).build().unwrap();
    assert_eq!(m.reserve(u64::MAX), Err(NonceError::Overflow { ceiling: u64::MAX }));
    assert_eq!(m.reserve(4), Err(NonceError::Overflow { ceiling: u64::MAX }));
    let b = m.reserve(3).unwrap();
    assert_eq!((b.first(), b.last()), (u64::MAX - 2, u64::MAX));
    assert_eq!(m.next(), Err(NonceError::Overflow { ceiling: u64::MAX }));
    assert_eq!(m.advance_past(u64::MAX), Err(NonceError::Overflow { ceiling: u64::MAX }));
}

#[test]
fn build_refuses_zero_ceiling_and_a_floor_at_the_ceiling() {
    assert_eq!(config_field(NonceManager::builder().ceiling(0).build().unwrap_err()), "ceiling");
    assert_eq!(config_field(NonceManager::builder().start_after(I64_MAX).build().unwrap_err()), "start_after");
    let below_today = NonceManager::builder().ceiling(1_000).build().unwrap_err();
    assert!(below_today.to_string().contains("raise it"), "{below_today}");
}

#[test]
fn start_after_is_a_floor() {
    let m = NonceManager::builder().clock(ManualClock::new(T0)).start_after(T0 + 500).build().unwrap();
    assert_eq!(m.last(), T0 + 500);
    assert_eq!(m.next().unwrap(), T0 + 501);
}

#[test]
fn reserve_zero_is_an_error() {
    let m = NonceManager::new();
    let before = m.last();
    assert_eq!(m.reserve(0), Err(NonceError::EmptyBatch));
    assert_eq!(m.last(), before);
}

#[test]
fn reserve_moves_past_the_whole_batch_and_next_never_overlaps_it() {
    let clock = ManualClock::new(T0);
    let m = manager(Strategy::Millis, &clock);
    let batch = m.reserve(1_000).unwrap();
    assert_eq!(batch.len(), 1_000);
    assert_eq!((batch.first(), batch.last()), (T0, T0 + 999));
    assert_eq!(m.last(), T0 + 999);
    clock.advance(500); // the clock is inside the batch: next() must not be
    assert_eq!(m.next().unwrap(), T0 + 1_000);
    let values: Vec<u64> = batch.into_iter().collect();
    assert_eq!(values, (T0..T0 + 1_000).collect::<Vec<_>>());
}

#[test]
fn distributed_batch_has_stride_total_systems() {
    let clock = ManualClock::new(T0);
    let m = manager(Strategy::Distributed { system_id: 2, total_systems: 5 }, &clock);
    let batch = m.reserve(4).unwrap();
    assert_eq!(batch.stride(), 5);
    let values: Vec<u64> = batch.iter().collect();
    assert_eq!(values, vec![T0 * 5 + 2, T0 * 5 + 7, T0 * 5 + 12, T0 * 5 + 17]);
    assert!(values.iter().all(|v| batch.contains(*v)));
    assert!(!batch.contains(T0 * 5 + 3));
    assert_eq!(m.next().unwrap(), T0 * 5 + 22);
}

#[test]
fn advance_past_only_raises_and_keeps_the_residue() {
    let clock = ManualClock::new(T0);
    let m = manager(Strategy::Distributed { system_id: 2, total_systems: 5 }, &clock);
    let first = m.next().unwrap();
    m.advance_past(first + 1_000_003).unwrap();
    let n = m.next().unwrap();
    assert!(n > first + 1_000_003 && n - (first + 1_000_003) <= 5);
    assert_eq!(n % 5, 2);
    m.advance_past(10).unwrap(); // stale report
    let after_stale = m.next().unwrap();
    assert_eq!(after_stale, n + 5);
}

#[test]
fn advance_past_above_the_ceiling_is_an_error_that_changes_nothing() {
    let m = NonceManager::builder().clock(ManualClock::new(T0)).build().unwrap();
    let before = m.last();
    assert_eq!(m.advance_past(u64::MAX), Err(NonceError::Overflow { ceiling: I64_MAX }));
    assert_eq!(m.advance_past(I64_MAX), Err(NonceError::Overflow { ceiling: I64_MAX }));
    assert_eq!(m.last(), before);
    m.advance_past(I64_MAX - 1).unwrap();
    assert_eq!(m.next().unwrap(), I64_MAX);
}

#[test]
fn manager_is_send_sync_and_debug_shows_its_state() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<NonceManager>();
    assert_send_sync::<NonceManager<ManualClock>>();
    assert_send_sync::<NonceError>();
    let m = NonceManager::builder().clock(ManualClock::new(T0)).ceiling(JS_SAFE_MAX).build().unwrap();
    m.next().unwrap();
    let dbg = format!("{m:?}");
    assert!(dbg.contains("Millis") && dbg.contains(&T0.to_string()) && dbg.contains(&JS_SAFE_MAX.to_string()), "{dbg}");
}

#[test]
fn default_manager_uses_the_system_clock() {
    let m = NonceManager::default();
    let now = monotonic_nonce::Clock::now_ms(&SystemClock).unwrap();
    let n = m.next().unwrap();
    assert!(n >= now && n < now + 60_000);
}

#[test]
fn errors_are_clone_eq_and_say_what_to_change() {
    let e = NonceError::Overflow { ceiling: 7 };
    assert_eq!(e.clone(), e);
    assert!(e.to_string().contains("ceiling 7"));
}

#[test]
fn nonce_result_stays_small() {
    // the hot path returns Result<u64, NonceError>; config errors are boxed
    assert!(std::mem::size_of::<Result<u64, NonceError>>() <= 24);
}

/// Issue 10, item 5: `max_lead` holds while the clock fails, measured against the latest reading.
#[test]
fn max_lead_is_enforced_while_the_clock_fails() {
    let clock = ManualClock::new(T0);
    let m = NonceManager::builder().clock(clock.clone()).max_lead(std::time::Duration::from_secs(30)).build().unwrap();
    m.next().unwrap();
    clock.set_failing(true);
    let mut handed_out = 0u64;
    let refused = loop {
        match m.next() {
            Ok(_) => handed_out += 1,
            Err(e) => break e,
        }
        assert!(handed_out <= 100_000, "100 000 nonces while the clock failed: max_lead not enforced");
    };
    assert!(matches!(refused, NonceError::TooFarAhead { lead_ms: 30_001 }), "{refused:?}");
    assert_eq!(handed_out, 30_000);
    assert!(m.lead_ms() <= 30_000);
}

/// Issue 10, item 9: every build-error hint is computed, and each one builds.
#[test]
fn ceiling_hints_are_computed_and_the_suggested_fix_builds() {
    let clock = ManualClock::new(T0);
    for total in [2u64, 3, 1_000, 1 << 20] {
        let s = Strategy::Distributed { system_id: 0, total_systems: total };
        let Err(BuildError::InvalidConfig { reason, .. }) =
            NonceManager::builder().clock(clock.clone()).strategy(s).ceiling(T0 + 1).build()
        else {
            panic!("total {total} fits")
        };
        assert!(!reason.contains("<= 0") && !reason.contains(&format!("<= {total} ")), "total {total}: {reason}");
        assert!(reason.contains("Strategy::Millis"), "total {total}: T0 + 1 fits no second system: {reason}");
    }
    // a ceiling with room for 4 systems but not 5
    let ceiling = T0 * 4 + 3;
    let s = Strategy::Distributed { system_id: 0, total_systems: 5 };
    let Err(BuildError::InvalidConfig { reason, .. }) =
        NonceManager::builder().clock(clock.clone()).strategy(s).ceiling(ceiling).build()
    else {
        panic!("5 systems fit")
    };
    assert!(reason.contains("total_systems <= 4"), "{reason}");
    for id in 0..4 {
        let fix = Strategy::Distributed { system_id: id, total_systems: 4 };
        assert!(NonceManager::builder().clock(clock.clone()).strategy(fix).ceiling(ceiling).build().is_ok());
    }
}

/// Issue 10, item 8: a deserialized batch is checked.
#[cfg(feature = "serde")]
#[test]
fn a_batch_no_manager_could_reserve_does_not_deserialize() {
    use monotonic_nonce::client::NonceBatch;
    for bad in [r#"{"first":5,"last":5,"stride":0,"len":4}"#, r#"{"first":9,"last":5,"stride":1,"len":3}"#] {
        assert!(serde_json::from_str::<NonceBatch>(bad).is_err(), "{bad} deserialized");
    }
    let good: NonceBatch = serde_json::from_str(r#"{"first":5,"last":9,"stride":2,"len":3}"#).unwrap();
    assert_eq!(good.iter().collect::<Vec<_>>(), vec![5, 7, 9]);
}
