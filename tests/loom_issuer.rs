//! Loom model: concurrent `issue` and `redeem` on one `NonceIssuer`. Two
//! threads redeem the same nonce while a third issues and redeems its own:
//! exactly one of the two gets `Ok`, issued counters are distinct, and every
//! nonce redeemed is refused afterwards.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use monotonic_nonce::{BadNonce, NonceIssuer};

#[test]
fn one_nonce_redeemed_by_two_threads_while_a_third_issues() {
    loom::model(|| {
        // a window of 2: the third thread's issue may push the shared nonce to the edge
        let issuer =
            Arc::new(NonceIssuer::builder().window(2).insecure_fixed_key(*b"loom model key!!").build().unwrap());
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
        let results: Vec<Result<(), BadNonce>> = racers.into_iter().map(|h| h.join().unwrap()).collect();
        let (own_nonce, own_result) = own.join().unwrap();
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
        assert!(results.iter().all(|r| matches!(r, Ok(()) | Err(BadNonce::AlreadyUsed))), "{results:?}");
        assert_eq!(own_result, Ok(()), "a fresh nonce redeems, whatever the others do");
        assert_ne!(own_nonce, shared, "distinct counters");
        assert_eq!(issuer.redeem(&shared), Err(BadNonce::AlreadyUsed));
        assert_eq!(issuer.redeem(&own_nonce), Err(BadNonce::AlreadyUsed));
    });
}
