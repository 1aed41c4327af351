//! Property tests: `NonceValidator` agrees with the BTree reference model on
//! random operation sequences, including huge jumps and values near u64::MAX;
//! with `max_accounts` it never accepts a replay.

use crate::common::model::Model;
use monotonic_nonce::{NonceValidator, Policy};
use proptest::prelude::*;
use std::collections::HashSet;

#[derive(Debug, Clone)]
struct Op {
    account: u8,
    nonce: u64,
    record: bool,
}

fn nonce() -> impl Strategy<Value = u64> {
    prop_oneof![
        6 => 1_000u64..1_300,               // dense and reordered
        2 => 1_000u64..100_000,             // gaps
        1 => any::<u64>(),                  // huge jumps
        1 => (u64::MAX - 300)..=u64::MAX,   // near the top
        1 => ((1u64 << 63) - 300)..=(1u64 << 63), // around I64_MAX
        1 => Just(0u64),
        1 => Just(u64::MAX),
        1 => Just(monotonic_nonce::strategy::I64_MAX),
    ]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        (0u8..3, nonce(), prop::bool::weighted(0.85)).prop_map(|(account, nonce, record)| Op {
            account,
            nonce,
            record,
        }),
        1..200,
    )
}

fn policy() -> impl Strategy<Value = Policy> {
    prop_oneof![
        Just(Policy::Strict),
        // every state type: inline 8, 16, 24, 32 slots, and the heap beyond
        prop_oneof![1usize..10, 15usize..40].prop_map(Policy::HighestK),
        prop_oneof![1u64..5, 60u64..70, 120u64..200, Just(1u64 << 20)].prop_map(Policy::Window),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3_000))]

    #[test]
    fn validator_matches_the_reference_model(policy in policy(), top in prop_oneof![Just(u64::MAX), Just(monotonic_nonce::strategy::I64_MAX)], ops in ops()) {
        let v = NonceValidator::<u8>::builder(policy).ceiling(top).shards(2).build().unwrap();
        let mut model = Model::new(policy, top);
        for op in ops {
            let expected = model.validate(op.account, op.nonce, op.record);
            let got = if op.record { v.validate(&op.account, op.nonce) } else { v.check(&op.account, op.nonce) };
            prop_assert_eq!(&got, &expected, "{:?}", op);
            prop_assert_eq!(v.last_nonce(&op.account), model.last_nonce(op.account));
        }
        prop_assert_eq!(v.len(), model.accounts.len());
    }

    #[test]
    fn eviction_never_reopens_a_replay(policy in policy(), max_accounts in 1usize..4, ops in prop::collection::vec((0u8..8, 1u64..400), 1..300)) {
        // the future bound (needed with max_accounts) is far above every nonce here
        let v = NonceValidator::<u8>::builder(policy)
            .clock(monotonic_nonce::clock::ManualClock::new(1_000))
            .max_future(std::time::Duration::from_secs(1))
            .max_accounts(max_accounts)
            .shards(1)
            .build()
            .unwrap();
        let mut accepted = HashSet::new();
        for (account, nonce) in ops {
            if v.validate(&account, nonce).is_ok() {
                prop_assert!(accepted.insert((account, nonce)), "replay of ({account}, {nonce}) accepted after eviction");
            }
            prop_assert!(v.len() <= max_accounts);
        }
    }
}
