//! Client recovery: feedback, bounded retry (sync and async), the server-clock
//! offset, the run-ahead guard, the debug history and the clock-fault counter.

use monotonic_nonce::{
    client::{retry_with_nonce, retry_with_nonce_async, NonceFeedback, OffsetClock, RetryError, RetryPolicy},
    clock::ManualClock,
    Clock, NonceError, NonceManager, NonceValidator, Policy, Rejection, Strategy,
};
use std::cell::Cell;
use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

const NOW: u64 = 1_704_067_200_000;

fn feedback(e: &Rejection) -> Option<NonceFeedback> {
    Some(NonceFeedback::from(e))
}

/// A fake exchange: a Strict validator that refuses the first `refusals`
/// attempts with `refusal` whatever their nonce.
struct FakeServer {
    validator: NonceValidator<&'static str>,
    refusals: Cell<u32>,
    refusal: Rejection,
    calls: Cell<u32>,
}

impl FakeServer {
    fn new(refusals: u32, refusal: Rejection) -> Self {
        Self {
            validator: NonceValidator::new(Policy::Strict),
            refusals: Cell::new(refusals),
            refusal,
            calls: Cell::new(0),
        }
    }

    fn send(&self, nonce: u64) -> Result<u64, Rejection> {
        self.calls.set(self.calls.get() + 1);
        if self.refusals.get() > 0 {
            self.refusals.set(self.refusals.get() - 1);
            return Err(self.refusal.clone());
        }
        self.validator.validate(&"key", nonce).map(|()| nonce)
    }
}

#[test]
fn retry_recovers_from_each_recoverable_feedback_within_the_policy() {
    let far = NOW + 500_000;
    for refusal in [
        Rejection::AlreadyUsed { last_nonce: far, attempted_nonce: NOW },
        Rejection::TooLow { last_nonce: far, attempted_nonce: NOW },
    ] {
        let m = NonceManager::builder().clock(ManualClock::new(NOW)).build().unwrap();
        let server = FakeServer::new(2, refusal.clone());
        let sent = retry_with_nonce(&m, RetryPolicy::default(), |n| server.send(n), feedback).unwrap();
        // attempt 2 (far + 1) was refused too, by the fake; attempt 3 is the next above it
        assert_eq!(sent, far + 2, "{refusal:?}: the retries moved past lastNonce");
        assert_eq!(server.calls.get(), 3);
    }
    // a body without lastNonce: retried with a fresh (higher) nonce
    let m = NonceManager::builder().clock(ManualClock::new(NOW)).build().unwrap();
    let calls = Cell::new(0);
    let r = retry_with_nonce(
        &m,
        RetryPolicy::default(),
        |n| {
            calls.set(calls.get() + 1);
            if calls.get() == 1 {
                Err("Nonce already used")
            } else {
                Ok(n)
            }
        },
        |_| Some(NonceFeedback::AlreadyUsed { last_nonce: None }),
    );
    assert_eq!(r, Ok(NOW + 1));
}

#[test]
fn retry_never_exceeds_max_attempts() {
    for max in [1, 2, 3, 5] {
        let m = NonceManager::builder().clock(ManualClock::new(NOW)).build().unwrap();
        let server = FakeServer::new(u32::MAX, Rejection::TooLow { last_nonce: NOW, attempted_nonce: NOW });
        let r = retry_with_nonce(&m, RetryPolicy::attempts(max), |n| server.send(n), feedback);
        match r {
            Err(RetryError::Exhausted { attempts, last: Rejection::TooLow { .. } }) => assert_eq!(attempts, max),
            other => panic!("max {max}: {other:?}"),
        }
        assert_eq!(server.calls.get(), max);
    }
}

#[test]
fn non_nonce_errors_return_at_once_unchanged() {
    let m = NonceManager::builder().clock(ManualClock::new(NOW)).build().unwrap();
    let calls = Cell::new(0);
    let r: Result<(), _> = retry_with_nonce(
        &m,
        RetryPolicy::default(),
        |_| {
            calls.set(calls.get() + 1);
            Err("insufficient balance")
        },
        |e: &&str| e.contains("nonce").then_some(NonceFeedback::TooLow { last_nonce: None }),
    );
    assert_eq!(r, Err(RetryError::Failed { attempts: 1, error: "insufficient balance" }));
    assert_eq!(calls.get(), 1);
    // "too old" / "above the ceiling": feedback Other, not retried either
    let server = FakeServer::new(5, Rejection::NotPositive);
    let r = retry_with_nonce(&m, RetryPolicy::default(), |n| server.send(n), feedback);
    assert!(matches!(r, Err(RetryError::Failed { attempts: 1, error: Rejection::NotPositive })));
}

#[test]
fn too_far_in_future_is_reported_never_fixed_by_lowering() {
    let m = NonceManager::builder().clock(ManualClock::new(NOW)).build().unwrap();
    m.next().unwrap();
    let before = m.last();
    let server = FakeServer::new(5, Rejection::TooFarInFuture { max_nonce: NOW - 10_000, attempted_nonce: NOW + 1 });
    let r = retry_with_nonce(&m, RetryPolicy::default(), |n| server.send(n), feedback);
    assert!(matches!(
        r,
        Err(RetryError::Nonce { attempts: 1, error: NonceError::ServerSaysTooFarAhead { max_nonce: Some(_) } })
    ));
    assert!(m.last() > before, "nothing was lowered");
}

#[test]
fn a_fresh_manager_per_attempt_fails_where_the_helper_succeeds() {
    // another process on this key (or this bot before a restart) ran 10 minutes ahead
    let clock = ManualClock::new(NOW);
    let server = NonceValidator::<&str>::new(Policy::Strict);
    server.validate(&"key", NOW + 600_000).unwrap();
    // the pattern from exchange docs: a new manager inside the retry loop
    let mut buggy = Err(Rejection::NotPositive);
    for _ in 0..3 {
        let m = NonceManager::builder().clock(clock.clone()).build().unwrap();
        buggy = server.validate(&"key", m.next().unwrap());
        if buggy.is_ok() {
            break;
        }
    }
    assert!(matches!(buggy, Err(Rejection::TooLow { last_nonce, .. }) if last_nonce == NOW + 600_000));
    // the crate's helper: one manager, the server's lastNonce applied
    let m = NonceManager::builder().clock(clock).build().unwrap();
    let sent = retry_with_nonce(&m, RetryPolicy::default(), |n| server.validate(&"key", n).map(|()| n), feedback);
    assert_eq!(sent, Ok(NOW + 600_001));
}

/// A minimal executor: polls until ready, parking the thread in between.
fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park(),
        }
    }
}

/// A future that is pending once before it resolves (like a network call).
struct YieldOnce(bool);
impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

#[test]
fn async_twin_behaves_like_the_sync_helper() {
    let m = NonceManager::builder().clock(ManualClock::new(NOW)).build().unwrap();
    let server = FakeServer::new(2, Rejection::TooLow { last_nonce: NOW + 50, attempted_nonce: NOW });
    let sent = block_on(retry_with_nonce_async(
        &m,
        RetryPolicy::default(),
        |n| {
            let r = server.send(n);
            async move {
                YieldOnce(false).await;
                r
            }
        },
        feedback,
    ));
    assert_eq!(sent, Ok(NOW + 52)); // NOW + 51 was refused by the fake's second refusal
    let server = FakeServer::new(u32::MAX, Rejection::AlreadyUsed { last_nonce: NOW, attempted_nonce: NOW });
    let r = block_on(retry_with_nonce_async(
        &m,
        RetryPolicy::attempts(4),
        |n| std::future::ready(server.send(n)),
        feedback,
    ));
    assert_eq!(r.unwrap_err().attempts(), 4);
    assert_eq!(server.calls.get(), 4);
}

#[test]
fn offset_converges_within_the_smallest_half_round_trip() {
    let local = ManualClock::new(NOW);
    let clock = OffsetClock::new(local.clone());
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut recent: Vec<u64> = Vec::new();
    for _ in 0..200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let (out, back) = (1 + x % 150, 1 + (x >> 16) % 150); // asymmetric, noisy
        let sent = local.now_ms().unwrap();
        let server = sent + out + 2_000; // the server is 2 s ahead
        let received = local.advance(out + back);
        let offset = clock.observe(sent, server, received).unwrap();
        recent.push(out + back);
        let window = &recent[recent.len().saturating_sub(8)..];
        let best = *window.iter().min().unwrap();
        assert!(offset.abs_diff(2_000) <= best / 2 + 1, "offset {offset}, best round trip {best}");
        local.advance(10);
    }
    // one very slow, very lopsided response cannot drag it
    let before = clock.offset_ms();
    let sent = local.now_ms().unwrap();
    let received = local.advance(5_001);
    clock.observe(sent, sent + 5_000 + 2_000, received).unwrap();
    assert_eq!(clock.offset_ms(), before);
    assert_eq!(clock.now_ms().unwrap(), received.checked_add_signed(before).unwrap());
    // a response "before" its request is an error and changes nothing
    assert!(clock.observe(100, 5, 99).is_err());
    assert_eq!(clock.offset_ms(), before);
}

#[test]
fn max_lead_refuses_at_the_boundary_and_changes_nothing() {
    let clock = ManualClock::new(NOW);
    let m = NonceManager::builder().clock(clock.clone()).max_lead(Duration::from_millis(2)).build().unwrap();
    assert_eq!([m.next().unwrap(), m.next().unwrap(), m.next().unwrap()], [NOW, NOW + 1, NOW + 2]);
    assert_eq!(m.lead_ms(), 2);
    assert_eq!(m.next(), Err(NonceError::TooFarAhead { lead_ms: 3 }));
    assert!(matches!(m.reserve(1), Err(NonceError::TooFarAhead { .. })));
    assert_eq!(m.last(), NOW + 2, "refused calls hand out nothing");
    clock.advance(1);
    assert_eq!(m.next(), Ok(NOW + 3));
    // through units per ms: Hft { 3 } gives 1 000 nonces per ms of lead
    let hft = NonceManager::builder()
        .clock(clock.clone())
        .strategy(Strategy::Hft { counter_digits: 3 })
        .max_lead(Duration::from_millis(1))
        .build()
        .unwrap();
    assert_eq!(hft.reserve(1_999).unwrap().len(), 1_999); // up to (now + 1) * 1000 + 998
    assert!(hft.next().is_ok()); // (now + 1) * 1000 + 999: still 1 ms
    assert!(matches!(hft.next(), Err(NonceError::TooFarAhead { lead_ms: 2 })));
}

#[test]
fn history_keeps_the_last_entries_with_their_call_sites() {
    let clock = ManualClock::new(NOW);
    let m = NonceManager::builder().clock(clock.clone()).history(3).build().unwrap();
    let mut lines = Vec::new();
    for i in 0..5 {
        clock.set(NOW + i * 10);
        lines.push(line!() + 1);
        m.next().unwrap();
    }
    let h = m.history();
    assert_eq!(h.len(), 3);
    assert_eq!(h.iter().map(|e| e.nonce).collect::<Vec<_>>(), [NOW + 20, NOW + 30, NOW + 40]);
    assert_eq!(h.iter().map(|e| e.clock_ms).collect::<Vec<_>>(), [NOW + 20, NOW + 30, NOW + 40]);
    assert!(h.iter().all(|e| e.location.file().ends_with("recovery.rs") && e.location.line() == lines[4]));
    let batch_line = line!() + 1;
    let b = m.reserve(10).unwrap();
    assert_eq!(
        (m.history().last().unwrap().nonce, m.history().last().unwrap().location.line()),
        (b.first(), batch_line)
    );
    assert!(NonceManager::new().history().is_empty(), "no history unless asked");
}

#[test]
fn clock_faults_count_failures_and_backward_steps_only() {
    let clock = ManualClock::new(NOW);
    let m = NonceManager::builder().clock(clock.clone()).build().unwrap();
    m.next().unwrap();
    m.next().unwrap(); // same ms: not a fault
    clock.advance(5);
    m.next().unwrap();
    assert_eq!(m.clock_faults(), 0);
    clock.set(NOW - 1_000);
    m.next().unwrap();
    m.next().unwrap();
    clock.set_failing(true);
    m.next().unwrap();
    assert_eq!(m.clock_faults(), 3);
}

/// Two bots, each with its own `Millis` manager, on one API key, against a
/// Strict exchange: every request of bot B in the same millisecond as bot A's
/// collides. The numbers are the README's "Two bots on one key" table.
#[test]
fn two_bots_on_one_key() {
    fn run(
        a: &NonceManager<ManualClock>,
        b: &NonceManager<ManualClock>,
        clock: &ManualClock,
        retry: bool,
    ) -> (u32, u32) {
        let exchange = NonceValidator::<&str>::new(Policy::Strict);
        let (mut rejected, mut sent) = (0, 0);
        for i in 0..1_000u64 {
            if i % 10 == 0 {
                clock.advance(1);
            }
            for bot in [a, b] {
                let send = |n: u64| exchange.validate(&"key", n);
                if retry {
                    let r = retry_with_nonce(
                        bot,
                        RetryPolicy::default(),
                        |n| {
                            sent += 1;
                            send(n).inspect_err(|_| rejected += 1)
                        },
                        |e: &Rejection| Some(NonceFeedback::from(e)),
                    );
                    assert!(r.is_ok(), "{r:?}");
                } else {
                    sent += 1;
                    if send(bot.next().unwrap()).is_err() {
                        rejected += 1;
                    }
                }
            }
        }
        (rejected, sent)
    }
    let clock = ManualClock::new(NOW);
    let millis = || NonceManager::builder().clock(clock.clone()).build().unwrap();
    let (rejected, sent) = run(&millis(), &millis(), &clock, false);
    eprintln!("Millis x2: {rejected} of {sent} rejected");
    assert_eq!((rejected, sent), (1_000, 2_000));

    let dist = |id| {
        NonceManager::builder()
            .clock(clock.clone())
            .strategy(Strategy::Distributed { system_id: id, total_systems: 2 })
            .build()
            .unwrap()
    };
    let (rejected, sent) = run(&dist(0), &dist(1), &clock, false);
    eprintln!("Distributed 0/2 and 1/2: {rejected} of {sent} rejected");
    assert_eq!((rejected, sent), (0, 2_000));

    let (rejected, sent) = run(&millis(), &millis(), &clock, true);
    // every request is accepted, but the two managers keep leapfrogging each
    // other: all requests but the first collide once. Feedback recovers; only
    // disjoint nonce spaces (Distributed, or one shared manager) end the collisions.
    eprintln!("Millis x2 with retry_with_nonce: {rejected} rejections in {sent} attempts, all 2000 requests accepted");
    assert_eq!((rejected, sent), (1_999, 3_999));
}

#[test]
fn retry_helpers_record_the_callers_line_in_the_history() {
    let m = NonceManager::builder().clock(ManualClock::new(NOW)).history(4).build().unwrap();
    let (policy, never) = (RetryPolicy::default(), |_: &()| None);
    let line = line!() + 1;
    retry_with_nonce(&m, policy, Ok::<u64, ()>, never).unwrap();
    assert_eq!((m.history()[0].location.file(), m.history()[0].location.line()), (file!(), line));
    let line = line!() + 1;
    let fut = retry_with_nonce_async(&m, policy, |n| std::future::ready(Ok::<u64, ()>(n)), never);
    block_on(fut).unwrap();
    assert_eq!((m.history()[1].location.file(), m.history()[1].location.line()), (file!(), line));
}

/// With `max_lead`, one hostile or buggy body cannot push the manager out of
/// reach of the clock: a value past the lead is refused and nothing changes.
#[test]
fn feedback_past_max_lead_is_refused_and_changes_nothing() {
    let clock = ManualClock::new(NOW);
    let m = NonceManager::builder().clock(clock.clone()).max_lead(Duration::from_secs(5)).build().unwrap();
    let first = m.next().unwrap();
    let huge = NonceFeedback::TooLow { last_nonce: Some(i64::MAX as u64 - 10) };
    assert!(matches!(m.apply_feedback(&huge), Err(NonceError::TooFarAhead { .. })));
    assert!(matches!(m.advance_past(NOW + 60_000), Err(NonceError::TooFarAhead { .. })));
    assert_eq!(m.last(), first, "a refused report changes nothing");
    assert!(m.next().unwrap() > first, "the manager still works");
    // within the lead: applied
    m.apply_feedback(&NonceFeedback::TooLow { last_nonce: Some(NOW + 3_000) }).unwrap();
    assert_eq!(m.next(), Ok(NOW + 3_001));
}

/// One implausible sample (the server's time in microseconds, the fastest
/// round trip so far) is refused: the offset does not move.
#[test]
fn an_implausible_offset_sample_is_refused() {
    let local = ManualClock::new(NOW);
    let clock = OffsetClock::new(local.clone());
    clock.observe(NOW, NOW + 120, NOW + 40).unwrap();
    assert_eq!(clock.offset_ms(), 100);
    let sent = local.advance(10);
    let r = clock.observe(sent, (sent + 100) * 1_000, sent + 1);
    assert!(r.is_err(), "accepted a sample 53 000 years off: {r:?}");
    assert_eq!(clock.offset_ms(), 100);
}
