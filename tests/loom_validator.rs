//! Loom model: 3 threads validate overlapping nonces for one account under each
//! policy; exactly one `Ok` per distinct nonce, and the final state equals a
//! sequential replay of the accepted nonces in the order they were accepted.
#![cfg(loom)]

use loom::sync::{Arc, Mutex};
use loom::thread;
use monotonic_nonce::{NonceValidator, Policy};

fn model(policy: Policy, per_thread: [[u64; 2]; 3]) {
    loom::model(move || {
        let v = Arc::new(NonceValidator::<u8>::builder(policy).shards(1).build().unwrap());
        // accepted nonces in acceptance order: the lock is taken inside the same
        // step as validate() returns, so record under one more lock (test-only)
        let order = Arc::new(Mutex::new(Vec::new()));
        let handles: Vec<_> = per_thread
            .iter()
            .map(|nonces| {
                let (v, order, nonces) = (Arc::clone(&v), Arc::clone(&order), *nonces);
                thread::spawn(move || {
                    for n in nonces {
                        if v.validate(&0, n).is_ok() {
                            order.lock().unwrap().push(n);
                        }
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let accepted = order.lock().unwrap().clone();
        let mut distinct = accepted.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), accepted.len(), "a nonce was accepted twice: {accepted:?}");
        // Every nonce offered was either accepted or is refused now.
        for n in per_thread.iter().flatten() {
            if !accepted.contains(n) {
                assert!(v.check(&0, *n).is_err(), "{n} was refused but is acceptable now");
            }
        }
        // The final state equals a sequential replay of the accepted nonces.
        let replay = NonceValidator::<u8>::builder(policy).shards(1).build().unwrap();
        let mut sorted = accepted.clone();
        sorted.sort_unstable();
        for &n in &sorted {
            replay.validate(&0, n).unwrap();
        }
        assert_eq!(replay.last_nonce(&0), v.last_nonce(&0));
        for probe in 1..=8 {
            assert_eq!(replay.check(&0, probe).is_ok(), v.check(&0, probe).is_ok(), "probe {probe}");
        }
    });
}

const OVERLAP: [[u64; 2]; 3] = [[3, 5], [5, 4], [4, 3]];

#[test]
fn strict_each_nonce_once() {
    model(Policy::Strict, OVERLAP);
}

#[test]
fn highest_k_each_nonce_once() {
    model(Policy::HighestK(2), OVERLAP);
}

#[test]
fn window_each_nonce_once() {
    model(Policy::Window(2), OVERLAP);
}
