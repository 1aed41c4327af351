//! `NonceIssuer` (server-issued nonces, RFC 8555) and the client helpers:
//! Boulder's own nonce tests in our words, a property test against a plain
//! model, and N threads redeeming one nonce.

use monotonic_nonce::{
    acme::{retry_bad_nonce, BadNonce, Classified, ReplayNonces, DEFAULT_ISSUER_WINDOW},
    client::{RetryError, RetryPolicy},
    clock::ManualClock,
    BuildError, NonceIssuer,
};
use proptest::prelude::*;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[test]
fn a_fresh_nonce_redeems_once() {
    let issuer = NonceIssuer::new();
    let n = issuer.issue();
    assert_eq!(issuer.redeem(&n), Ok(()));
    assert_eq!(issuer.redeem(&n), Err(BadNonce::AlreadyUsed));
}

#[test]
fn malformed_and_too_short_strings() {
    let issuer = NonceIssuer::new();
    let good = issuer.issue();
    for bad in ["", "x", &good[..good.len() - 1], &format!("{good}A"), "é", &good.replace(&good[..1], "+"), "\0\0\0"] {
        assert_eq!(issuer.redeem(bad), Err(BadNonce::Malformed), "{bad:?}");
    }
    assert_eq!(issuer.redeem(&good), Ok(()), "the good one is untouched by the bad ones");
}

#[test]
fn a_nonce_from_another_issuer_instance_is_unknown() {
    let (a, b) = (NonceIssuer::new(), NonceIssuer::new());
    let n = a.issue();
    b.issue(); // b has issued counter 1 too: only the key tells them apart
    assert_eq!(b.redeem(&n), Err(BadNonce::Unknown));
    assert_eq!(a.redeem(&n), Ok(()));
}

#[test]
fn a_counter_above_the_latest_issued_is_unknown() {
    // two issuers sharing a key (never in production) show the counter check,
    // with counters one at a time (window 16) and in runs of 64 (the default)
    let key = *b"shared test key!";
    for (window, run) in [(16, 1), (DEFAULT_ISSUER_WINDOW, 64)] {
        let ahead = NonceIssuer::builder().window(window).insecure_fixed_key(key).build().unwrap();
        let behind = NonceIssuer::builder().window(window).insecure_fixed_key(key).build().unwrap();
        let beyond: Vec<String> = (0..=run).map(|_| ahead.issue()).collect(); // counters 1..=run+1
        behind.issue(); // latest: run (its first run's end)
        assert_eq!(behind.redeem(&beyond[run as usize]), Err(BadNonce::Unknown), "window {window}");
        assert_eq!(behind.redeem(&beyond[run as usize - 1]), Ok(()), "window {window}: counter {run} is handed out");
    }
}

#[test]
fn with_a_small_window_older_nonces_become_too_old() {
    // window 4: the counters (latest - 4, latest] are redeemable
    let issuer = NonceIssuer::builder().window(4).build().unwrap();
    let first: Vec<String> = (0..4).map(|_| issuer.issue()).collect(); // counters 1..=4
    assert_eq!(issuer.redeem(&first[0]), Ok(()), "counter 1, latest 4: inside");
    issuer.issue(); // latest 5
    assert_eq!(issuer.redeem(&first[0]), Err(BadNonce::TooOld), "pushed out, used or not");
    assert_eq!(issuer.redeem(&first[1]), Ok(()), "counter 2, latest 5: inside");
    issuer.issue(); // latest 6
    assert_eq!(issuer.redeem(&first[2]), Ok(()), "counter 3, latest 6: the oldest still inside");
    issuer.issue(); // latest 7
    assert_eq!(issuer.redeem(&first[3]), Ok(()));
    issuer.issue(); // latest 8
    assert_eq!(issuer.redeem(&first[3]), Err(BadNonce::TooOld), "counter 4, latest 8: out");
}

#[test]
fn wrong_and_missing_prefix() {
    let a = NonceIssuer::builder().prefix("instA-01").build().unwrap();
    let b = NonceIssuer::builder().prefix("instB-01").build().unwrap();
    let plain = NonceIssuer::new();
    let n = a.issue();
    assert!(n.starts_with("instA-01"));
    assert_eq!(b.redeem(&n), Err(BadNonce::WrongPrefix));
    assert_eq!(plain.redeem(&n), Err(BadNonce::Malformed), "a prefixed nonce is too long for an issuer without one");
    assert_eq!(a.redeem(&plain.issue()), Err(BadNonce::Malformed), "missing prefix");
    assert_eq!(a.redeem(&n), Ok(()));
}

#[test]
fn prefix_validation_at_build() {
    for bad in ["short", "nine-char", "has space", "slash/01", "ünicode1"] {
        let r = NonceIssuer::builder().prefix(bad).build();
        assert!(matches!(r, Err(BuildError::InvalidConfig { field: "prefix", .. })), "{bad:?}: {r:?}");
    }
    assert!(NonceIssuer::builder().prefix("Ab0-_xyZ").build().is_ok());
    assert!(matches!(NonceIssuer::builder().window(0).build(), Err(BuildError::InvalidConfig { field: "window", .. })));
}

#[test]
fn max_age_refuses_the_three_hours_stale_nonce() {
    let clock = ManualClock::new(1_704_067_200_000);
    let issuer = NonceIssuer::builder().clock(clock.clone()).max_age(Duration::from_secs(3_600)).build().unwrap();
    let n = issuer.issue();
    let fresh = issuer.issue();
    clock.advance(3 * 3_600 * 1_000);
    assert_eq!(issuer.redeem(&n), Err(BadNonce::TooOld));
    clock.set(1_704_067_200_000 + 3_600_000);
    assert_eq!(issuer.redeem(&fresh), Ok(()), "exactly max_age old is still fine");
    clock.set_failing(true);
    assert_eq!(issuer.redeem(&issuer.issue()), Err(BadNonce::ClockUnavailable), "fails closed");
}

#[test]
fn injected_rejections_consume_the_nonce_at_about_the_rate() {
    let issuer = NonceIssuer::builder().reject_rate(0.05).build().unwrap();
    let mut injected = 0;
    for _ in 0..20_000 {
        let n = issuer.issue();
        match issuer.redeem(&n) {
            Ok(()) => {}
            Err(BadNonce::Injected) => {
                injected += 1;
                assert_eq!(issuer.redeem(&n), Err(BadNonce::AlreadyUsed), "an injected rejection consumes the nonce");
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!((700..1_300).contains(&injected), "{injected} of 20 000 at 5%");
}

#[test]
fn problem_is_the_acme_bad_nonce_document() {
    let p = BadNonce::Unknown.problem();
    assert_eq!((p.r#type.as_str(), p.status), ("urn:ietf:params:acme:error:badNonce", 400));
    assert!(p.detail.contains("unknown"));
}

#[test]
fn memory_stays_bounded_whatever_the_number_issued() {
    let issuer = NonceIssuer::builder().window(1 << 12).build().unwrap();
    let before = issuer.heap_bytes();
    for i in 0..200_000u32 {
        let n = issuer.issue();
        if i % 3 != 0 {
            let _ = issuer.redeem(&n);
        }
    }
    // the ledger: a bit per counter in 64-byte groups of 448 (with their generation word),
    // plus a spare group in each of 8 lanes, and 8 stripes of 128 bytes, allocated once
    assert_eq!(issuer.heap_bytes(), before);
    assert!(before <= (1 << 12) / 7 + 4 * 8 * 64, "{before}");
    let large = NonceIssuer::builder().window(1 << 20).build().unwrap().heap_bytes();
    assert!(large <= (1 << 20) / 7 + 4 * 8 * 64, "{large}: about window / 7 bytes");
}

/// Real threads through many ledger takeovers (window 64: each lane's two
/// groups change hands every 3 584 counters): 4 threads each issue 40 000
/// nonces, redeem their own, and redeem nonces from a shared pool of the last
/// 512 issued (replays, some inside the window, most out of it). No nonce is
/// ever accepted twice, and fresh nonces mostly are. (It fails when the ledger
/// ignores its bit; the narrow races of a takeover are the loom models' job,
/// in `src/issuer/ledger.rs`.) The same with window 4 096, where the threads
/// issue from runs of 4 counters on their stripes.
#[test]
fn threads_racing_takeovers_never_accept_a_nonce_twice() {
    for window in [64, 4_096] {
        racing_threads(window);
    }
}

fn racing_threads(window: u64) {
    let issuer = NonceIssuer::builder().window(window).build().unwrap();
    let pool = std::sync::Mutex::new(std::collections::VecDeque::<String>::new());
    let accepted: Vec<String> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..4u64)
            .map(|t| {
                let (issuer, pool) = (&issuer, &pool);
                s.spawn(move || {
                    let mut ok = Vec::new();
                    let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ t;
                    for _ in 0..40_000 {
                        let fresh = issuer.issue();
                        let replay = {
                            let mut pool = pool.lock().unwrap();
                            pool.push_back(fresh.clone());
                            if pool.len() > 512 {
                                pool.pop_front();
                            }
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            pool.get((x % 512) as usize).cloned()
                        };
                        for n in [Some(fresh), replay].into_iter().flatten() {
                            if issuer.redeem(&n).is_ok() {
                                ok.push(n);
                            }
                        }
                    }
                    ok
                })
            })
            .collect();
        threads.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let distinct: HashSet<&String> = accepted.iter().collect();
    assert_eq!(distinct.len(), accepted.len(), "window {window}: a nonce was accepted twice");
    assert!(accepted.len() > 80_000, "window {window}: fresh nonces are accepted ({} of 160 000)", accepted.len());
    assert_eq!(issuer.issued(), 160_000);
}

#[test]
fn n_threads_redeeming_one_nonce_get_exactly_one_ok() {
    let issuer = NonceIssuer::new();
    for _ in 0..200 {
        let n = issuer.issue();
        let oks = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    if issuer.redeem(&n).is_ok() {
                        oks.fetch_add(1, Ordering::Relaxed);
                    }
                });
            }
        });
        assert_eq!(oks.into_inner(), 1);
    }
}

#[derive(Debug, Clone)]
enum Op {
    Issue,
    /// Issue this many and keep only the last (to move the window along).
    IssueMany(u16),
    /// Redeem the i-th issued nonce (modulo how many), as is or with one character changed.
    Redeem {
        index: usize,
        mutate: Option<(usize, u8)>,
    },
    /// Redeem an arbitrary string.
    Junk(String),
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            4 => Just(Op::Issue),
            1 => (1u16..1_500).prop_map(Op::IssueMany),
            5 => (any::<usize>(), prop::option::weighted(0.2, (any::<usize>(), any::<u8>())))
                .prop_map(|(index, mutate)| Op::Redeem { index, mutate }),
            1 => ".{0,60}".prop_map(Op::Junk),
        ],
        1..200,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Against a plain model: the issued, unredeemed nonces plus the window rule.
    /// Nothing unissued is ever accepted; each issued nonce at most once.
    /// Windows below 2 048 count back from the last counter issued; larger ones
    /// hand counters out in runs (of the power of two at most window / 1 024,
    /// up to 64), and count back from the end of the run in use.
    #[test]
    fn issuer_matches_the_model(window in prop_oneof![1u64..40, 2_048u64..6_000, Just(65_536)], ops in ops()) {
        let issuer = NonceIssuer::builder().window(window).build().unwrap();
        // the power of two at most window / 1 024, up to 64
        let run = if window < 2_048 { 1 } else { 1u64 << (window / 1_024).min(64).ilog2() };
        let mut count = 0u64;
        let mut issued: Vec<String> = Vec::new();
        let mut counter_of: HashMap<String, u64> = HashMap::new();
        let mut redeemed: HashSet<String> = HashSet::new();
        for op in ops {
            match op {
                Op::Issue | Op::IssueMany(_) => {
                    let times = if let Op::IssueMany(k) = op { u64::from(k) } else { 1 };
                    let mut n = String::new();
                    for _ in 0..times {
                        n = issuer.issue();
                    }
                    count += times;
                    issued.push(n.clone());
                    counter_of.insert(n, count);
                }
                Op::Redeem { index, mutate } => {
                    if issued.is_empty() { continue; }
                    let mut text = issued[index % issued.len()].clone();
                    if let Some((at, byte)) = mutate {
                        let mut b = text.into_bytes();
                        let i = at % b.len();
                        b[i] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[byte as usize % 64];
                        text = String::from_utf8(b).unwrap();
                    }
                    let got = issuer.redeem(&text);
                    let latest = count.div_ceil(run) * run;
                    match counter_of.get(&text) {
                        None => prop_assert!(got.is_err(), "an unissued nonce was accepted: {text}"),
                        Some(&c) => {
                            let want = if latest - c >= window {
                                Err(BadNonce::TooOld)
                            } else if redeemed.contains(&text) {
                                Err(BadNonce::AlreadyUsed)
                            } else {
                                Ok(())
                            };
                            prop_assert_eq!(&got, &want);
                            if got.is_ok() { redeemed.insert(text); }
                        }
                    }
                }
                Op::Junk(text) => prop_assert!(issuer.redeem(&text).is_err() || counter_of.contains_key(&text)),
            }
        }
    }
}

#[test]
fn replay_nonces_prefers_the_newest_drops_the_stale_and_never_repeats() {
    let clock = ManualClock::new(0);
    let cache = ReplayNonces::with_clock(3, Duration::from_secs(10), clock.clone());
    for n in ["a", "b", "c", "d"] {
        cache.push(n.to_owned());
        clock.advance(1_000);
    }
    assert_eq!(cache.len(), 3, "a was dropped: capacity 3");
    assert_eq!(cache.take().as_deref(), Some("d"));
    clock.advance(8_500); // b is now 11.5 s old, c 10.5 s
    assert_eq!(cache.take(), None, "both older than max_age");
    cache.push("d".to_owned());
    assert_eq!(cache.take(), None, "d was handed out before");
}

/// The server: the issuer, with a clock of its own.
fn server(reject: f64) -> NonceIssuer {
    NonceIssuer::builder().reject_rate(reject).build().unwrap()
}

#[derive(Debug, PartialEq)]
enum ApiError {
    BadNonce { fresh: Option<String> },
    RateLimited,
    Network,
}

fn classify(e: &ApiError) -> Classified {
    match e {
        ApiError::BadNonce { fresh } => Classified::BadNonce(fresh.clone()),
        _ => Classified::Other,
    }
}

#[test]
fn retry_uses_the_error_responses_nonce_first_and_stops_at_max_attempts() {
    let s = server(0.0);
    let cache = ReplayNonces::new(8, Duration::from_secs(60));
    cache.push(s.issue()); // a cached one
    let fresh_from_error = s.issue();
    let mut seen = Vec::new();
    let mut fetches = 0;
    let r = retry_bad_nonce(
        &cache,
        RetryPolicy::attempts(3),
        |nonce| {
            seen.push(nonce.to_owned());
            if seen.len() == 1 {
                Err(ApiError::BadNonce { fresh: Some(fresh_from_error.clone()) })
            } else {
                s.redeem(&nonce).map_err(|_| ApiError::BadNonce { fresh: None })
            }
        },
        classify,
        || {
            fetches += 1;
            Ok(s.issue())
        },
    );
    assert_eq!(r, Ok(()));
    assert_eq!(seen[1], fresh_from_error, "the error response's nonce before the cached one");
    assert_eq!(fetches, 0);
    // always bad: exactly max_attempts requests; the fetch is used when nothing else is left
    let mut attempts = 0;
    let r: Result<(), _> = retry_bad_nonce(
        &cache,
        RetryPolicy::attempts(4),
        |_| {
            attempts += 1;
            Err(ApiError::BadNonce { fresh: None })
        },
        classify,
        || Ok(s.issue()),
    );
    assert_eq!(r, Err(RetryError::Exhausted { attempts: 4, last: ApiError::BadNonce { fresh: None } }));
    assert_eq!(attempts, 4);
    // any other error at once, and a failing fetch at once
    let mut attempts = 0;
    let r: Result<(), _> = retry_bad_nonce(
        &cache,
        RetryPolicy::attempts(5),
        |_| {
            attempts += 1;
            Err(ApiError::RateLimited)
        },
        classify,
        || Ok(s.issue()),
    );
    assert_eq!((r, attempts), (Err(RetryError::Failed { attempts: 1, error: ApiError::RateLimited }), 1));
    let empty = ReplayNonces::new(1, Duration::from_secs(1));
    let r = retry_bad_nonce(&empty, RetryPolicy::attempts(5), |_| Ok(()), classify, || Err(ApiError::Network));
    assert_eq!(r, Err(RetryError::Failed { attempts: 1, error: ApiError::Network }));
}

#[test]
fn a_restarted_server_is_recovered_by_retrying_with_the_fresh_nonce() {
    let old = server(0.0);
    let cache = ReplayNonces::new(8, Duration::from_secs(60));
    cache.push(old.issue());
    let new = server(0.0); // the restart: a new key
    let r = retry_bad_nonce(
        &cache,
        RetryPolicy::attempts(2),
        |nonce| new.redeem(&nonce).map_err(|_| ApiError::BadNonce { fresh: Some(new.issue()) }),
        classify,
        || Ok(new.issue()),
    );
    assert_eq!(r, Ok(()));
}

/// `ReplayNonces` never hands out a nonce twice, however many takes ago it
/// handed it out.
#[test]
fn replay_nonces_never_hands_out_a_nonce_twice() {
    let cache = ReplayNonces::new(2, Duration::from_secs(60));
    cache.push("first".to_owned());
    assert_eq!(cache.take().as_deref(), Some("first"));
    for i in 0..100 {
        cache.push(format!("n{i}"));
        assert_eq!(cache.take(), Some(format!("n{i}")));
    }
    cache.push("first".to_owned()); // a server that sends an old nonce again
    assert_eq!(cache.take(), None, "handed out a nonce a second time");
}

/// The nonce an error response carries is not sent if it was sent already
/// (a buggy or hostile server echoing the request's own nonce).
#[test]
fn retry_never_sends_the_same_nonce_twice() {
    let cache = ReplayNonces::new(8, Duration::from_secs(60));
    let mut sent = Vec::new();
    let mut fetched = 0;
    let r: Result<(), _> = retry_bad_nonce(
        &cache,
        RetryPolicy::attempts(4),
        |nonce| {
            sent.push(nonce.to_owned());
            // the error response echoes the nonce just sent as "fresh"
            Err(ApiError::BadNonce { fresh: Some(nonce.to_owned()) })
        },
        classify,
        || {
            fetched += 1;
            Ok(format!("f{fetched}"))
        },
    );
    assert!(matches!(r, Err(RetryError::Exhausted { attempts: 4, .. })), "{r:?}");
    let mut unique = sent.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), sent.len(), "a nonce was sent twice: {sent:?}");
    // a fetch that keeps answering a nonce already sent: nothing is sent with it
    let mut sent_again = 0;
    let r: Result<(), RetryError<ApiError>> = retry_bad_nonce(
        &cache,
        RetryPolicy::attempts(3),
        |_| {
            sent_again += 1;
            Ok(())
        },
        classify,
        || Ok("f1".to_owned()),
    );
    assert!(matches!(r, Err(RetryError::NonceReused { .. })), "{r:?}");
    assert_eq!(sent_again, 0);
}
