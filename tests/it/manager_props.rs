//! Property test: a single-threaded manager driven by random operations and a
//! random clock agrees with a plain model of the formula.

use monotonic_nonce::{clock::ManualClock, NonceError, NonceManager, Strategy as NonceStrategy};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Next,
    Reserve(u64),
    AdvancePast(u64),
    SetClock(u64),
    Fail(bool),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Next),
        2 => (0u64..50).prop_map(Op::Reserve),
        1 => prop_oneof![any::<u64>(), (1_000_000u64..1_000_000_000)].prop_map(Op::AdvancePast),
        2 => (0u64..2_000_000).prop_map(Op::SetClock),
        1 => any::<bool>().prop_map(Op::Fail),
    ]
}

fn strategy() -> impl Strategy<Value = NonceStrategy> {
    prop_oneof![
        Just(NonceStrategy::Millis),
        (1u64..10)
            .prop_flat_map(|total| (0..total)
                .prop_map(move |id| NonceStrategy::Distributed { system_id: id, total_systems: total })),
        (1u32..4).prop_map(|d| NonceStrategy::Hft { counter_digits: d }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// `history` on: the general copy of the manager's loop; off with `Millis`:
    /// the copy compiled for the plain manager. Both must be the model.
    #[test]
    fn manager_matches_the_model(strat in strategy(), ceiling in 1_000_000_000u64..u64::MAX, history in any::<bool>(), ops in prop::collection::vec(op(), 1..60)) {
        let clock = ManualClock::new(1_000);
        let m = NonceManager::builder().strategy(strat).clock(clock.clone()).ceiling(ceiling).history(if history { 4 } else { 0 }).build().unwrap();
        let (scale, offset, step) = match strat {
            NonceStrategy::Millis => (1u128, 0u128, 1u128),
            NonceStrategy::Distributed { system_id, total_systems } => (total_systems as u128, system_id as u128, total_systems as u128),
            NonceStrategy::Hft { counter_digits } => (10u128.pow(counter_digits), 0, 1),
            _ => unreachable!(),
        };
        // The model works in u128, so it can see what would overflow.
        let mut last: u128 = 0;
        let mut now: u128 = 1_000;
        let mut failing = false;
        let after = |l: u128| { let r = l % step; if r < offset { l - r + offset } else { l - r + step + offset } };
        for op in ops {
            match op {
                Op::SetClock(t) => { clock.set(t); now = t as u128; }
                Op::Fail(f) => { clock.set_failing(f); failing = f; }
                Op::AdvancePast(n) => {
                    let got = m.advance_past(n);
                    if after(n as u128) <= ceiling as u128 {
                        prop_assert_eq!(got, Ok(()));
                        last = last.max(n as u128);
                    } else {
                        prop_assert_eq!(got, Err(NonceError::Overflow { ceiling }));
                    }
                }
                Op::Next | Op::Reserve(_) => {
                    let count = match op { Op::Reserve(c) => c, _ => 1 };
                    let clock_term = if failing { 0 } else { now * scale + offset };
                    let first = after(last).max(clock_term);
                    let end = first + (count.max(1) as u128 - 1) * step;
                    let got = if let Op::Reserve(c) = op { m.reserve(c).map(|b| (b.first(), b.last())) } else { m.next().map(|n| (n, n)) };
                    if count == 0 && matches!(op, Op::Reserve(_)) {
                        prop_assert_eq!(got, Err(NonceError::EmptyBatch));
                    } else if end > ceiling as u128 {
                        prop_assert_eq!(got, Err(NonceError::Overflow { ceiling }));
                    } else {
                        prop_assert_eq!(got, Ok((first as u64, end as u64)));
                        prop_assert_eq!((first - offset) % step, 0);
                        last = end;
                    }
                }
            }
            prop_assert_eq!(m.last() as u128, last);
        }
    }
}
