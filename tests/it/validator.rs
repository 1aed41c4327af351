//! Edges of each policy, the time bounds, the ceiling and eviction.

use monotonic_nonce::{clock::ManualClock, strategy::I64_MAX, BuildError, NonceValidator, Policy, Rejection, Strategy};
use std::time::Duration;

const T0: u64 = 1_704_067_200_000;

fn used(last_nonce: u64, attempted_nonce: u64) -> Result<(), Rejection> {
    Err(Rejection::AlreadyUsed { last_nonce, attempted_nonce })
}
fn low(last_nonce: u64, attempted_nonce: u64) -> Result<(), Rejection> {
    Err(Rejection::TooLow { last_nonce, attempted_nonce })
}

#[test]
fn strict_accepts_only_above_last() {
    let v = NonceValidator::new(Policy::Strict);
    assert_eq!(v.validate(&1, 102), Ok(()));
    assert_eq!(v.validate(&1, 101), low(102, 101), "reordered honest request is refused under Strict");
    assert_eq!(v.validate(&1, 102), used(102, 102));
    assert_eq!(v.validate(&1, 103), Ok(()));
    assert_eq!(v.last_nonce(&1), Some(103));
}

#[test]
fn window_rejects_exactly_w_plus_one_behind() {
    let v = NonceValidator::new(Policy::Window(64));
    v.validate(&"a", 1_000).unwrap();
    assert_eq!(v.validate(&"a", 1_000 - 65), low(1_000, 935));
    assert_eq!(v.validate(&"a", 1_000 - 64), Ok(()), "exactly w behind is inside");
    assert_eq!(v.validate(&"a", 1_000 - 64), used(1_000, 936));
    assert_eq!(v.validate(&"a", 1_000), used(1_000, 1_000));
}

#[test]
fn window_jump_forward_by_more_than_the_ring_forgets_cleanly() {
    let v = NonceValidator::new(Policy::Window(128));
    for n in [500, 502, 504] {
        v.validate(&0u8, n).unwrap();
    }
    // a jump of many ring lengths
    v.validate(&0u8, 500 + 64 * 1_000).unwrap();
    let top = 500 + 64 * 1_000;
    assert_eq!(v.validate(&0u8, top - 1), Ok(()));
    assert_eq!(v.validate(&0u8, top - 128), Ok(()));
    assert_eq!(v.validate(&0u8, top - 129), low(top, top - 129));
    // a jump of less than the ring keeps what is still inside
    v.validate(&0u8, top + 100).unwrap();
    assert_eq!(v.validate(&0u8, top - 1), used(top + 100, top - 1));
    assert_eq!(v.validate(&0u8, top + 99), Ok(()));
}

#[test]
fn window_duplicates_after_the_window_moved_are_refused() {
    let v = NonceValidator::new(Policy::Window(64));
    for n in (1..=300).rev().step_by(3) {
        let _ = v.validate(&9u32, n);
    }
    for n in 301..=400 {
        v.validate(&9u32, n).unwrap();
    }
    for n in 336..=400 {
        assert_eq!(v.validate(&9u32, n), used(400, n));
    }
    assert_eq!(v.validate(&9u32, 335), low(400, 335));
}

#[test]
fn highest_k_below_at_and_above_the_minimum() {
    let v = NonceValidator::new(Policy::HighestK(3));
    for n in [10, 30, 20] {
        v.validate(&"k", n).unwrap();
    }
    assert_eq!(v.validate(&"k", 9), low(30, 9), "below the minimum once k are stored");
    assert_eq!(v.validate(&"k", 10), used(30, 10), "at the minimum: it is stored");
    assert_eq!(v.validate(&"k", 11), Ok(()), "above the minimum: accepted, evicts 10");
    assert_eq!(v.validate(&"k", 10), low(30, 10));
    assert_eq!(v.validate(&"k", 1_000_000), Ok(()), "any gap is fine");
    assert_eq!(v.validate(&"k", 25), Ok(()));
    assert_eq!(v.validate(&"k", 20), low(1_000_000, 20));
}

#[test]
fn highest_k_before_k_values_accepts_anything_unseen() {
    let v = NonceValidator::new(Policy::HighestK(5));
    v.validate(&1, 1_000).unwrap();
    assert_eq!(v.validate(&1, 1), Ok(()));
    assert_eq!(v.validate(&1, 1), used(1_000, 1));
}

fn bounded(clock: &ManualClock, strategy: Strategy) -> NonceValidator<u8, ManualClock> {
    NonceValidator::builder(Policy::Strict)
        .clock(clock.clone())
        .strategy(strategy)
        .max_past(Duration::from_secs(60))
        .max_future(Duration::from_secs(5))
        .build()
        .unwrap()
}

#[test]
fn time_bounds_at_plus_minus_one_millisecond() {
    let clock = ManualClock::new(T0);
    let v = bounded(&clock, Strategy::Millis);
    let future_limit = T0 + 5_000;
    assert_eq!(
        v.check(&1, future_limit + 1),
        Err(Rejection::TooFarInFuture { max_nonce: future_limit, attempted_nonce: future_limit + 1 })
    );
    assert_eq!(v.check(&1, future_limit), Ok(()));
    let past_limit = T0 - 60_000;
    assert_eq!(
        v.check(&1, past_limit - 1),
        Err(Rejection::TooOld { min_nonce: past_limit, attempted_nonce: past_limit - 1 })
    );
    assert_eq!(v.check(&1, past_limit), Ok(()));
    clock.advance(1);
    assert_eq!(
        v.check(&1, past_limit),
        Err(Rejection::TooOld { min_nonce: past_limit + 1, attempted_nonce: past_limit })
    );
    assert_eq!(v.check(&1, future_limit + 1), Ok(()));
}

#[test]
fn time_bounds_use_the_strategys_time_scale() {
    let clock = ManualClock::new(T0);
    let v = bounded(&clock, Strategy::Hft { counter_digits: 3 });
    let limit_ms = T0 + 5_000;
    assert_eq!(v.check(&1, limit_ms * 1_000 + 999), Ok(()), "the whole last millisecond is inside");
    assert_eq!(
        v.check(&1, (limit_ms + 1) * 1_000),
        Err(Rejection::TooFarInFuture { max_nonce: limit_ms * 1_000 + 999, attempted_nonce: (limit_ms + 1) * 1_000 })
    );
}

#[test]
fn lock_out_attack_is_refused_and_the_account_still_works() {
    let clock = ManualClock::new(T0);
    let v = bounded(&clock, Strategy::Millis);
    v.validate(&7, T0).unwrap();
    assert_eq!(v.validate(&7, u64::MAX), Err(Rejection::AboveCeiling { ceiling: I64_MAX, attempted_nonce: u64::MAX }));
    assert!(matches!(v.validate(&7, I64_MAX), Err(Rejection::TooFarInFuture { .. })));
    assert_eq!(v.last_nonce(&7), Some(T0), "nothing recorded");
    assert_eq!(v.validate(&7, T0 + 1), Ok(()));
}

#[test]
fn without_bounds_strict_is_locked_by_one_huge_nonce() {
    // why the bounds exist: documented behaviour, not a bug
    let v = NonceValidator::new(Policy::Strict);
    v.validate(&7, I64_MAX).unwrap();
    assert_eq!(v.validate(&7, T0), low(I64_MAX, T0));
}

#[test]
fn zero_and_above_ceiling() {
    let v = NonceValidator::new(Policy::Window(64));
    assert_eq!(v.validate(&1, 0), Err(Rejection::NotPositive));
    assert_eq!(
        v.validate(&1, I64_MAX + 1),
        Err(Rejection::AboveCeiling { ceiling: I64_MAX, attempted_nonce: I64_MAX + 1 })
    );
    assert_eq!(v.validate(&1, I64_MAX), Ok(()));
    assert_eq!(v.len(), 1);
    let top = NonceValidator::<u8>::builder(Policy::Window(64)).ceiling(u64::MAX).build().unwrap();
    assert_eq!(top.validate(&1, u64::MAX), Ok(()));
    assert_eq!(top.validate(&1, u64::MAX - 64), Ok(()));
    assert_eq!(top.validate(&1, u64::MAX), used(u64::MAX, u64::MAX));
}

#[test]
fn failing_clock_with_bounds_fails_closed() {
    let clock = ManualClock::new(T0);
    let v = bounded(&clock, Strategy::Millis);
    clock.set_failing(true);
    assert!(matches!(v.validate(&1, T0), Err(Rejection::ClockUnavailable(_))));
    assert!(v.is_empty());
}

#[test]
fn rejections_and_check_change_nothing() {
    let v = NonceValidator::new(Policy::HighestK(2));
    v.validate(&1, 50).unwrap();
    v.validate(&1, 60).unwrap();
    for n in [0, 10, 50, 60] {
        assert!(v.validate(&1, n).is_err());
    }
    assert_eq!(v.check(&1, 55), Ok(()));
    assert_eq!(v.check(&2, 1), Ok(()));
    assert_eq!(v.len(), 1);
    assert_eq!(v.validate(&1, 55), Ok(()));
    assert_eq!(v.validate(&1, 50), low(60, 50));
}

#[test]
fn eviction_folds_the_highest_into_a_floor() {
    let v = NonceValidator::<u32>::builder(Policy::Window(64))
        .clock(ManualClock::new(1_000))
        .max_future(Duration::from_secs(1))
        .max_accounts(2)
        .shards(1)
        .build()
        .unwrap();
    v.validate(&1, 500).unwrap();
    v.validate(&2, 10).unwrap();
    v.validate(&1, 501).unwrap(); // 2 is now least recently active
    v.validate(&3, 20).unwrap(); // evicts 2
    assert_eq!(v.len(), 2);
    assert_eq!(v.last_nonce(&2), None);
    assert_eq!(v.eviction_floor(), 10);
    assert_eq!(v.validate(&2, 10), low(10, 10), "the evicted account's replay is refused");
    assert_eq!(v.validate(&2, 11), Ok(()));
    assert_eq!(v.validate(&3, 19), Ok(()), "tracked accounts keep their own window");
}

#[test]
fn build_refuses_invalid_parameters() {
    let field = |r: Result<NonceValidator<u8>, BuildError>| match r {
        Err(BuildError::InvalidConfig { field, .. }) => field,
        other => panic!("expected InvalidConfig, got {other:?}"),
    };
    assert_eq!(field(NonceValidator::builder(Policy::HighestK(0)).build()), "policy");
    assert_eq!(field(NonceValidator::builder(Policy::Window(0)).build()), "policy");
    assert_eq!(field(NonceValidator::builder(Policy::Window((1 << 20) + 1)).build()), "policy");
    assert_eq!(field(NonceValidator::builder(Policy::Strict).shards(0).build()), "shards");
    assert_eq!(
        field(NonceValidator::builder(Policy::Strict).shards(monotonic_nonce::validator::MAX_SHARDS + 1).build()),
        "shards"
    );
    let bad_strategy = Strategy::Distributed { system_id: 0, total_systems: 0 };
    assert_eq!(field(NonceValidator::builder(Policy::Strict).strategy(bad_strategy).build()), "total_systems");
    assert_eq!(field(NonceValidator::builder(Policy::Strict).max_accounts(0).build()), "max_accounts");
    let future = Duration::from_secs(1);
    let bounded = || NonceValidator::builder(Policy::Strict).max_future(future);
    assert_eq!(field(bounded().max_accounts(2).shards(4).build()), "max_accounts");
    assert_eq!(field(NonceValidator::builder(Policy::Strict).max_accounts(2).build()), "max_accounts");
    assert!(NonceValidator::<u8>::builder(Policy::Window(1 << 20)).max_future(future).max_accounts(3).build().is_ok());
}

#[test]
#[should_panic(expected = "HighestK(0)")]
fn new_panics_on_an_invalid_policy() {
    let _ = NonceValidator::<u8>::new(Policy::HighestK(0));
}

#[test]
fn error_body_carries_last_nonce_whenever_the_account_has_one() {
    let v = NonceValidator::new(Policy::Strict);
    v.validate(&"acct", T0).unwrap();
    let r = v.validate(&"acct", T0 - 1000).unwrap_err();
    let body = v.error_body(&"acct", &r);
    assert_eq!(body.error.message, "Nonce too low");
    assert_eq!(body.error.details.last_nonce, Some(T0));
    let r0 = v.validate(&"acct", 0).unwrap_err();
    assert_eq!(r0.error_body().error.details.last_nonce, None);
    assert_eq!(v.error_body(&"acct", &r0).error.details.last_nonce, Some(T0));
    assert_eq!(v.error_body(&"other", &r0).error.details.last_nonce, None);
}

#[test]
fn validator_is_send_sync_and_debug() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<NonceValidator<String>>();
    assert_send_sync::<Rejection>();
    let dbg = format!("{:?}", NonceValidator::<u8>::new(Policy::Window(64)));
    assert!(dbg.contains("Window(64)"), "{dbg}");
}

#[cfg(feature = "serde")]
#[test]
fn error_body_serializes_to_the_exchange_shape() {
    let body =
        Rejection::AlreadyUsed { last_nonce: 1_704_067_200_000, attempted_nonce: 1_704_067_199_000 }.error_body();
    assert_eq!(
        serde_json::to_string(&body).unwrap(),
        r#"{"status":"error","error":{"code":"VALIDATION_ERROR","message":"Nonce already used","details":{"lastNonce":1704067200000,"attemptedNonce":1704067199000}}}"#
    );
    let back: monotonic_nonce::protocol::ErrorBody =
        serde_json::from_str(&serde_json::to_string(&body).unwrap()).unwrap();
    assert_eq!(back, body);
    let p: Policy = serde_json::from_str(&serde_json::to_string(&Policy::HighestK(20)).unwrap()).unwrap();
    assert_eq!(p, Policy::HighestK(20));
    let r = Rejection::TooOld { min_nonce: 1, attempted_nonce: 0 };
    assert_eq!(serde_json::from_str::<Rejection>(&serde_json::to_string(&r).unwrap()).unwrap(), r);
}

/// Issue 10, item 1: with an eviction floor and no future bound, one account
/// sending `I64_MAX - 1` and then being evicted locked every new account out.
#[test]
fn one_account_cannot_lock_new_accounts_out() {
    // the configuration that allowed it is refused, naming both settings
    match NonceValidator::<&str>::builder(Policy::HighestK(20)).max_accounts(2).shards(1).build() {
        Err(BuildError::InvalidConfig { field: "max_accounts", reason }) => {
            assert!(reason.contains("max_future"), "{reason}")
        }
        other => panic!("max_accounts without max_future built: {other:?}"),
    }
    // with the bound, the attacker's nonce is refused, and the floor stays within reach
    let clock = ManualClock::new(T0);
    let v = NonceValidator::<&str>::builder(Policy::HighestK(20))
        .clock(clock.clone())
        .max_future(Duration::from_secs(30))
        .max_accounts(2)
        .shards(1)
        .build()
        .unwrap();
    assert!(matches!(v.validate(&"attacker", I64_MAX - 1), Err(Rejection::TooFarInFuture { .. })));
    v.validate(&"attacker", T0 + 30_000).unwrap(); // the most it can get accepted
    v.validate(&"alice", T0).unwrap();
    v.validate(&"bob", T0).unwrap(); // evicts the attacker
    assert!(v.eviction_floor() <= T0 + 30_000);
    clock.advance(30_001);
    assert_eq!(v.validate(&"carol", T0 + 30_001), Ok(()), "an honest new account is in once max_future has passed");
}

/// Issue 10, item 3: `TooLow` must report a value the client can move past.
#[test]
fn too_low_reports_a_last_nonce_the_client_can_move_past() {
    let clock = ManualClock::new(T0);
    let v = NonceValidator::<u8>::builder(Policy::Strict)
        .clock(clock.clone())
        .max_future(Duration::from_secs(1))
        .build()
        .unwrap();
    v.validate(&1, T0).unwrap();
    let snap = v.snapshot(); // not clean: the restore raises the floor to T0 + 1 s
    let r = NonceValidator::<u8>::builder(Policy::Strict).clock(clock).max_future(Duration::from_secs(1)).restore(snap);
    let r = r.build().unwrap();
    let refused = r.validate(&1, T0 + 5).unwrap_err();
    let Rejection::TooLow { last_nonce, .. } = refused else { panic!("{refused:?}") };
    assert!(last_nonce >= T0 + 5, "lastNonce {last_nonce} is below the refused nonce: a client cannot resync");
    assert_eq!(last_nonce, T0 + 1_000);
}

/// Issue 10, item 10: the bound is rounded up per shard, and `len()` follows the documented rule.
#[test]
fn max_accounts_tracks_at_least_n_with_one_shard_and_at_most_the_rounded_bound() {
    let future = Duration::from_secs(3_600);
    let clock = ManualClock::new(T0);
    let one = NonceValidator::<u32>::builder(Policy::Strict)
        .clock(clock.clone())
        .max_future(future)
        .max_accounts(3)
        .shards(1);
    let one = one.build().unwrap();
    for a in 0..3 {
        one.validate(&a, T0 + u64::from(a)).unwrap();
    }
    assert_eq!(one.len(), 3, "max_accounts(3) tracks 3 accounts");
    let two = NonceValidator::<u32>::builder(Policy::Strict).clock(clock).max_future(future).max_accounts(3).shards(2);
    let two = two.build().unwrap();
    for a in 0..100 {
        two.validate(&a, T0 + u64::from(a)).unwrap(); // rising: each new account is above the floor
        assert!(two.len() <= 4, "at most shards * ceil(3 / 2)");
    }
    assert!(two.len() >= 3);
}

/// Issue 10, item 11: `String` keys are validated through `&str`.
#[test]
fn string_keys_validate_through_str_without_allocating_for_known_accounts() {
    let v = NonceValidator::<String>::new(Policy::Strict);
    v.validate("alice", 5).unwrap();
    assert!(matches!(v.validate("alice", 5), Err(Rejection::AlreadyUsed { .. })));
    assert_eq!(v.last_nonce("alice"), Some(5));
    assert_eq!(v.check("bob", 1), Ok(()));
    let body = v.error_body("alice", &Rejection::NotPositive);
    assert_eq!(body.error.details.last_nonce, Some(5));
}

#[test]
fn stats_count_every_verdict_by_reason() {
    let clock = ManualClock::new(T0);
    let v = bounded(&clock, Strategy::Millis);
    v.validate(&1, T0).unwrap();
    let _ = v.validate(&1, T0);
    let _ = v.validate(&1, T0 - 1);
    let _ = v.validate(&1, T0 + 10_000);
    let _ = v.validate(&1, 1);
    let _ = v.validate(&1, 0);
    let s = v.stats();
    assert_eq!((s.accepted, s.already_used, s.too_low, s.too_far_in_future, s.too_old, s.invalid), (1, 1, 1, 1, 1, 1));
}

/// `check` is refused after `close()`, as `validate` is: both fail closed.
#[test]
fn check_is_unavailable_after_close() {
    let v = NonceValidator::<u8>::new(Policy::Strict);
    v.validate(&1, 5).unwrap();
    v.close();
    assert!(matches!(v.check(&1, 6), Err(Rejection::Unavailable { .. })), "{:?}", v.check(&1, 6));
    assert!(matches!(v.check(&2, 1), Err(Rejection::Unavailable { .. })));
}

/// `max_accounts(n)` tracks at least `n` accounts whatever the hash spread,
/// and never more than `n` plus the shard count.
#[test]
fn max_accounts_tracks_at_least_n_accounts() {
    for (n, shards) in [(3usize, None), (100, None), (5, Some(4)), (64, Some(16)), (1_000, None)] {
        let clock = ManualClock::new(1_000_000);
        let mut b = NonceValidator::<u64>::builder(Policy::Strict)
            .clock(clock)
            .max_future(Duration::from_secs(10))
            .max_accounts(n);
        if let Some(s) = shards {
            b = b.shards(s);
        }
        let v = b.build().unwrap();
        for account in 0..(4 * n as u64) {
            v.validate(&account, 1_000_000 + account).unwrap_or_else(|r| panic!("{account}: {r:?}"));
            let distinct = account as usize + 1;
            let len = v.len();
            assert!(len >= distinct.min(n), "max_accounts({n}) tracks {len} after {distinct} accounts");
            assert!(len <= n + v.shard_count(), "max_accounts({n}) tracks {len}");
        }
    }
}
