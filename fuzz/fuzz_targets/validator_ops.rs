//! `NonceValidator` against the BTree reference model, or (with
//! `max_accounts`) against "no (account, nonce) is ever accepted twice".
#![no_main]

#[path = "../../tests/common/model.rs"]
mod model;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use model::Model;
use monotonic_nonce::{clock::ManualClock, strategy::I64_MAX, NonceValidator, Policy};
use std::collections::HashSet;
use std::time::Duration;

#[derive(Debug, Arbitrary)]
enum PolicyChoice {
    Strict,
    HighestK(u8),
    Window(u16),
    WideWindow,
}

impl PolicyChoice {
    fn policy(&self) -> Policy {
        match *self {
            Self::Strict => Policy::Strict,
            Self::HighestK(k) => Policy::HighestK(usize::from(k % 48) + 1), // every inline size class and the deque
            Self::Window(w) => Policy::Window(u64::from(w % 300) + 1),
            Self::WideWindow => Policy::Window(8128),
        }
    }
}

/// How a nonce is drawn: relative moves keep the account in interesting
/// territory (dense, reordered, at the window's edge); absolute values reach
/// the top of the range.
#[derive(Debug, Arbitrary)]
enum NonceChoice {
    Ahead(u16),
    Behind(u16),
    Absolute(u64),
    NearTop(u16),
    NearI64Max(i16),
    Zero,
}

#[derive(Debug, Arbitrary)]
struct Op {
    account: u8,
    nonce: NonceChoice,
    record: bool,
}

#[derive(Debug, Arbitrary)]
struct Input {
    policy: PolicyChoice,
    i64_ceiling: bool,
    /// `Some(n)`: bound the accounts to `n % 4 + 1` and check only the safety property.
    max_accounts: Option<u8>,
    ops: Vec<Op>,
}

fn pick(choice: &NonceChoice, anchor: u64) -> u64 {
    match *choice {
        NonceChoice::Ahead(d) => anchor.saturating_add(u64::from(d)),
        NonceChoice::Behind(d) => anchor.saturating_sub(u64::from(d)),
        NonceChoice::Absolute(n) => n,
        NonceChoice::NearTop(d) => u64::MAX - u64::from(d),
        NonceChoice::NearI64Max(d) => I64_MAX.saturating_add_signed(i64::from(d)),
        NonceChoice::Zero => 0,
    }
}

fuzz_target!(|input: Input| {
    let policy = input.policy.policy();
    let ceiling = if input.i64_ceiling { I64_MAX } else { u64::MAX };
    match input.max_accounts {
        None => {
            let v = NonceValidator::<u8>::builder(policy).ceiling(ceiling).shards(2).build().unwrap();
            let mut model = Model::new(policy, ceiling);
            for op in &input.ops {
                let account = op.account % 4;
                let nonce = pick(&op.nonce, model.last_nonce(account).unwrap_or(1_000));
                let expected = model.validate(account, nonce, op.record);
                let got = if op.record { v.validate(&account, nonce) } else { v.check(&account, nonce) };
                assert_eq!(got, expected, "{policy:?} account {account} nonce {nonce} record {}", op.record);
                assert_eq!(v.last_nonce(&account), model.last_nonce(account));
            }
            assert_eq!(v.len(), model.accounts.len());
        }
        Some(bound) => {
            let max_accounts = usize::from(bound % 4) + 1;
            // max_accounts needs a future bound; a clock mid-range keeps most nonces reachable
            let v = NonceValidator::<u8>::builder(policy)
                .clock(ManualClock::new(1 << 62))
                .max_future(Duration::from_secs(3_600))
                .max_accounts(max_accounts)
                .shards(1)
                .build()
                .unwrap();
            let mut accepted = HashSet::new();
            for op in &input.ops {
                let account = op.account % 8;
                let nonce = pick(&op.nonce, v.last_nonce(&account).unwrap_or(1 << 62));
                if v.validate(&account, nonce).is_ok() {
                    assert!(accepted.insert((account, nonce)), "replay of ({account}, {nonce}) accepted");
                }
                assert!(v.len() <= max_accounts);
            }
        }
    }
});
