//! Loom model: concurrent `issue` and `redeem` on one `NonceIssuer`. Two
//! threads redeem the same nonce while a third issues and redeems its own:
//! exactly one of the two gets `Ok`, issued counters are distinct, and every
//! nonce redeemed is refused afterwards. Run with counters one at a time
//! (window 3) and in runs of 2 on stripes (window 2 048).
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use monotonic_nonce::{acme::BadNonce, NonceIssuer};

#[test]
fn one_nonce_redeemed_by_two_threads_while_a_third_issues() {
    // a window of 3: the other issues may push the shared nonce to the edge
    model(3);
}

#[test]
fn the_same_in_runs_of_two() {
    model(2_048);
}

fn model(window: u64) {
    loom::model(move || {
        let issuer =
            Arc::new(NonceIssuer::builder().window(window).insecure_fixed_key(*b"loom model key!!").build().unwrap());
        let shared = issuer.issue();
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let (issuer, nonce) = (Arc::clone(&issuer), shared.clone());
                thread::spawn(move || issuer.redeem(&nonce))
            })
            .collect();
        let own = {
            let issuer = Arc::clone(&issuer);
            thread::spawn(move || {
                let n = issuer.issue();
                (n.clone(), issuer.redeem(&n))
            })
        };
        let mine = issuer.issue(); // this thread's second, racing the third's
        let results: Vec<Result<(), BadNonce>> = racers.into_iter().map(|h| h.join().unwrap()).collect();
        let (own_nonce, own_result) = own.join().unwrap();
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
        assert!(results.iter().all(|r| matches!(r, Ok(()) | Err(BadNonce::AlreadyUsed))), "{results:?}");
        assert_eq!(own_result, Ok(()), "a fresh nonce redeems, whatever the others do");
        assert!(own_nonce != shared && own_nonce != mine && mine != shared, "distinct counters");
        assert_eq!(issuer.redeem(&mine), Ok(()));
        assert_eq!(issuer.issued(), 3);
        assert_eq!(issuer.redeem(&shared), Err(BadNonce::AlreadyUsed));
        assert_eq!(issuer.redeem(&own_nonce), Err(BadNonce::AlreadyUsed));
    });
}
