//! Client-side recovery from nonce rejections: move the manager past what
//! the server reports ([`NonceManager::apply_feedback`]), and retry a
//! bounded number of times ([`retry_with_nonce`], [`retry_with_nonce_async`]).

use super::feedback::NonceFeedback;
use super::manager::NonceManager;
use crate::clock::Clock;
use crate::error::NonceError;
use std::fmt;
use std::future::Future;

impl<C: Clock> NonceManager<C> {
    /// Acts on a server's answer: a reported `last_nonce` moves the manager
    /// past it (through [`advance_past`](Self::advance_past)); without one the
    /// next nonce is fresh anyway. `Other` changes nothing.
    ///
    /// # Errors
    /// [`NonceError::ServerSaysTooFarAhead`] for `TooFarInFuture`: this side's
    /// clock or strategy is wrong, and nothing is lowered to "fix" it.
    /// [`NonceError::Overflow`] when the reported nonce leaves no room under the ceiling;
    /// [`NonceError::TooFarAhead`] when it is beyond `max_lead` (see
    /// [`advance_past`](Self::advance_past)): nothing changes.
    ///
    /// ```
    /// use monotonic_nonce::{NonceManager, clock::ManualClock, client::NonceFeedback};
    /// let m = NonceManager::builder().clock(ManualClock::new(1_000)).build()?;
    /// m.apply_feedback(&NonceFeedback::TooLow { last_nonce: Some(9_000) })?;
    /// assert_eq!(m.next()?, 9_001);
    /// assert!(m.apply_feedback(&NonceFeedback::TooFarInFuture { max_nonce: None }).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn apply_feedback(&self, feedback: &NonceFeedback) -> Result<(), NonceError> {
        match *feedback {
            NonceFeedback::AlreadyUsed { last_nonce: Some(n) } | NonceFeedback::TooLow { last_nonce: Some(n) } => {
                self.advance_past(n)
            }
            NonceFeedback::TooFarInFuture { max_nonce } => {
                Err(NonceError::ServerSaysTooFarAhead { max_nonce: max_nonce.and_then(std::num::NonZeroU64::new) })
            }
            NonceFeedback::ClockSkew => Err(NonceError::ServerSaysClockSkew),
            _ => Ok(()),
        }
    }
}

/// How many times [`retry_with_nonce`] tries.
///
/// ```
/// use monotonic_nonce::client::RetryPolicy;
/// assert_eq!(RetryPolicy::default().max_attempts, 3);
/// let patient = RetryPolicy::attempts(5);
/// assert_eq!(patient.max_attempts, 5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in all, the first included (default 3; 0 is treated as 1).
    pub max_attempts: u32,
}

impl RetryPolicy {
    /// `max_attempts` attempts in all, the first included (0 is treated as 1).
    ///
    /// ```
    /// assert_eq!(monotonic_nonce::client::RetryPolicy::attempts(2).max_attempts, 2);
    /// ```
    pub fn attempts(max_attempts: u32) -> Self {
        Self { max_attempts }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 3 }
    }
}

/// Why [`retry_with_nonce`] gave up, after how many attempts, with the last error.
///
/// ```
/// use monotonic_nonce::{NonceManager, client::{retry_with_nonce, NonceFeedback, RetryError, RetryPolicy}};
/// let m = NonceManager::new();
/// let always_too_low = |_: u64| Err::<(), _>("Nonce too low");
/// let r = retry_with_nonce(&m, RetryPolicy::attempts(2), always_too_low, |_| {
///     Some(NonceFeedback::TooLow { last_nonce: None })
/// });
/// assert!(matches!(r, Err(RetryError::Exhausted { attempts: 2, last: "Nonce too low" })));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryError<E> {
    /// Every attempt was refused for its nonce; `last` is the final refusal.
    Exhausted {
        /// Attempts made.
        attempts: u32,
        /// The last error the request returned.
        last: E,
    },
    /// The request failed for a reason other than its nonce: returned at once, unchanged.
    Failed {
        /// Attempts made (the failing one included).
        attempts: u32,
        /// The error, as the request returned it.
        error: E,
    },
    /// Every nonce the server offered had been sent already (a server
    /// repeating itself): nothing was sent with it.
    NonceReused {
        /// Attempts made.
        attempts: u32,
    },
    /// The manager could not give a nonce, or the server's answer says this
    /// side is wrong (`ServerSaysTooFarAhead`).
    Nonce {
        /// Attempts made.
        attempts: u32,
        /// Why.
        error: NonceError,
    },
}

impl<E> RetryError<E> {
    /// How many attempts were made.
    ///
    /// ```
    /// use monotonic_nonce::client::RetryError;
    /// let e: RetryError<&str> = RetryError::Failed { attempts: 1, error: "insufficient balance" };
    /// assert_eq!(e.attempts(), 1);
    /// ```
    pub fn attempts(&self) -> u32 {
        match self {
            Self::Exhausted { attempts, .. }
            | Self::Failed { attempts, .. }
            | Self::NonceReused { attempts }
            | Self::Nonce { attempts, .. } => *attempts,
        }
    }
}

impl<E: fmt::Display> fmt::Display for RetryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exhausted { attempts, last } => {
                write!(f, "nonce refused on all {attempts} attempts; last error: {last}")
            }
            Self::Failed { attempts, error } => write!(f, "request failed on attempt {attempts}: {error}"),
            Self::NonceReused { attempts } => {
                write!(f, "after {attempts} attempts the server offered only nonces already sent; none was sent again")
            }
            Self::Nonce { attempts, error } => write!(f, "after {attempts} attempts: {error}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for RetryError<E> {}

/// What to do after one attempt's error.
enum Next<E> {
    Retry,
    Stop(RetryError<E>),
}

fn after_error<C: Clock, E>(
    manager: &NonceManager<C>,
    attempt: u32,
    max: u32,
    error: E,
    classify: &impl Fn(&E) -> Option<NonceFeedback>,
) -> Next<E> {
    let Some(feedback) = classify(&error) else {
        return Next::Stop(RetryError::Failed { attempts: attempt, error });
    };
    if let Err(e) = manager.apply_feedback(&feedback) {
        return Next::Stop(RetryError::Nonce { attempts: attempt, error: e });
    }
    if !feedback.is_recoverable() {
        return Next::Stop(RetryError::Failed { attempts: attempt, error });
    }
    if attempt >= max {
        return Next::Stop(RetryError::Exhausted { attempts: attempt, last: error });
    }
    Next::Retry
}

/// Sends a request with a fresh nonce from `manager`, retrying on nonce
/// rejections: `classify` says whether an error is one (and what the server
/// reported); the feedback is applied, so the next nonce is past the server's
/// `lastNonce`, and the request is sent again, up to `policy.max_attempts` in
/// all. Any other error is returned at once, unchanged.
///
/// The pieces of recovery:
///
/// | piece | what it does |
/// |---|---|
/// | `NonceFeedback` | `AlreadyUsed { last_nonce }`, `TooLow { last_nonce }`, `TooFarInFuture { max_nonce }`, `ClockSkew`, `Other`; from a `Rejection`, an `ErrorBody`, or (feature `serde`) `serde_json::from_str::<NonceFeedback>(body)` / `NonceFeedback::from_body(bytes)` on the server's error body: the crate's own (`lastNonce` as a number or a decimal string, extra fields ignored), the nonce and timestamp errors of twelve venues (the table on `NonceFeedback`; `tests/it/venues.rs`), and plain `{"error":"Nonce too low"}`; a whole number in the message (`"nonce must be greater than N"`) is taken as the one to move past |
/// | `NonceManager::apply_feedback` | a reported `lastNonce` moves the manager past it (`advance_past`); "too far in the future" is returned as `NonceError::ServerSaysTooFarAhead` and a time-window error as `NonceError::ServerSaysClockSkew` (this side's clock or strategy is wrong), never "fixed" by changing nonces |
/// | `retry_with_nonce`, `retry_with_nonce_async` | a fresh nonce per attempt, feedback applied between attempts, at most `max_attempts`; any other error returned at once, unchanged; `RetryError` says how many attempts were made and carries the last error. The async twin takes any `Future` and needs no runtime |
/// | `OffsetClock` | a `Clock` following the server's clock: `observe(sent, server, received)` per round trip; the offset comes from the fastest of the last 8 round trips (NTP's rule); lock-free reads; share it with a manager through `Arc` |
/// | `.max_lead(d)` / `lead_ms()` | refuse (`NonceError::TooFarAhead`) a nonce more than `d` ahead of the clock (while the clock fails: ahead of the latest reading seen), instead of sending one the exchange's future bound rejects |
/// | `.history(n)` / `history()` | the last `n` nonces with the clock reading and the caller's source location (`#[track_caller]`), for debugging "nonce too low" reports |
/// | `clock_faults()` | how many calls found the clock failing or stepped back and carried on from `last` |
///
/// **Two bots on one key.** Two processes, each with its own `Millis` manager, sending 10 requests per ms each to a
/// `Strict` exchange (`two_bots_on_one_key` in `tests/it/recovery.rs`, deterministic, run with `cargo test --test it recovery::`):
///
/// | setup | requests | rejections | requests that failed |
/// |---|---:|---:|---:|
/// | `Millis` + `Millis`, no recovery | 2 000 | 1 000 | 1 000 |
/// | `Distributed { 0, 2 }` + `Distributed { 1, 2 }` | 2 000 | 0 | 0 |
/// | `Millis` + `Millis`, `retry_with_nonce` + `apply_feedback` | 2 000 (3 999 attempts) | 1 999 | 0 |
///
/// Feedback makes every request succeed, but two managers on one key keep leapfrogging each other: every request but
/// the first collides once. Only disjoint nonce spaces end the collisions: `Distributed`, or one shared manager.
///
/// # Errors
/// [`RetryError`] with the attempts made and the last error.
///
/// ```
/// use monotonic_nonce::{NonceManager, NonceValidator, Policy, Rejection, client::{retry_with_nonce, NonceFeedback, RetryPolicy}};
/// let server = NonceValidator::new(Policy::Strict);
/// server.validate(&"key", 9_000_000_000_000)?; // another bot on this key ran far ahead
/// let bot = NonceManager::new();
/// let sent = retry_with_nonce(
///     &bot,
///     RetryPolicy::default(),
///     |nonce| server.validate(&"key", nonce).map(|()| nonce),
///     |e: &Rejection| Some(NonceFeedback::from(e)),
/// )
/// .unwrap();
/// assert_eq!(sent, 9_000_000_000_001);
/// # Ok::<(), Rejection>(())
/// ```
#[track_caller]
pub fn retry_with_nonce<C, T, E, F, G>(
    manager: &NonceManager<C>,
    policy: RetryPolicy,
    mut request: F,
    classify: G,
) -> Result<T, RetryError<E>>
where
    C: Clock,
    F: FnMut(u64) -> Result<T, E>,
    G: Fn(&E) -> Option<NonceFeedback>,
{
    let max = policy.max_attempts.max(1);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let nonce = manager.next().map_err(|error| RetryError::Nonce { attempts: attempt, error })?;
        match request(nonce) {
            Ok(v) => return Ok(v),
            Err(e) => match after_error(manager, attempt, max, e, &classify) {
                Next::Retry => {}
                Next::Stop(err) => return Err(err),
            },
        }
    }
}

/// [`retry_with_nonce`] for an async request: `request(nonce)` returns any
/// `Future`; no runtime is needed or assumed. The manager's history records
/// the line that called this function.
///
/// # Errors
/// As [`retry_with_nonce`].
///
/// ```
/// use monotonic_nonce::{NonceManager, client::{retry_with_nonce_async, RetryPolicy}};
/// let m = NonceManager::new();
/// // any Future works: here a ready one, awaited by the caller's runtime
/// let fut = retry_with_nonce_async(&m, RetryPolicy::default(), |n| async move { Ok::<u64, ()>(n) }, |_| None);
/// # let _ = fut;
/// ```
#[track_caller]
pub fn retry_with_nonce_async<'a, C, T, E, F, Fut, G>(
    manager: &'a NonceManager<C>,
    policy: RetryPolicy,
    mut request: F,
    classify: G,
) -> impl Future<Output = Result<T, RetryError<E>>> + 'a
where
    C: Clock,
    F: FnMut(u64) -> Fut + 'a,
    Fut: Future<Output = Result<T, E>> + 'a,
    G: Fn(&E) -> Option<NonceFeedback> + 'a,
    T: 'a,
    E: 'a,
{
    let location = std::panic::Location::caller();
    async move {
        let max = policy.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let nonce = manager.next_from(location).map_err(|error| RetryError::Nonce { attempts: attempt, error })?;
            match request(nonce).await {
                Ok(v) => return Ok(v),
                Err(e) => match after_error(manager, attempt, max, e, &classify) {
                    Next::Retry => {}
                    Next::Stop(err) => return Err(err),
                },
            }
        }
    }
}
