//! 8 threads x 100 000 validations over a small nonce range for 4 accounts:
//! the number of `Ok`s equals the number of distinct `(account, nonce)` pairs.

use monotonic_nonce::{NonceValidator, Policy};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn stress(policy: Policy, range: u64) {
    let v = Arc::new(NonceValidator::<u32>::builder(policy).shards(4).build().unwrap());
    let oks = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..8u64)
        .map(|t| {
            let (v, oks) = (Arc::clone(&v), Arc::clone(&oks));
            std::thread::spawn(move || {
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ t; // xorshift: each thread its own order
                let mut mine = Vec::new();
                for _ in 0..100_000 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let (account, nonce) = ((x % 4) as u32, 1 + (x >> 8) % range);
                    if v.validate(&account, nonce).is_ok() {
                        oks.fetch_add(1, Ordering::Relaxed);
                        mine.push((account, nonce));
                    }
                }
                mine
            })
        })
        .collect();
    let mut distinct = HashSet::new();
    for w in workers {
        for pair in w.join().unwrap() {
            assert!(distinct.insert(pair), "{pair:?} accepted twice under {policy:?}");
        }
    }
    assert_eq!(oks.load(Ordering::Relaxed), distinct.len());
    // Window covering the whole range: every pair that was ever tried is accepted exactly once
    if let Policy::Window(w) = policy {
        if w >= range {
            assert_eq!(distinct.len() as u64, 4 * range, "every distinct pair accepted once");
        }
    }
}

#[test]
fn eight_threads_accept_each_pair_exactly_once_window() {
    stress(Policy::Window(4_096), 2_000);
}

#[test]
fn eight_threads_accept_each_pair_at_most_once_highest_k() {
    stress(Policy::HighestK(64), 2_000);
}

#[test]
fn eight_threads_accept_each_pair_at_most_once_strict() {
    stress(Policy::Strict, 2_000);
}
