//! The client side of server-issued nonces: a bounded cache of fresh nonces
//! ([`ReplayNonces`]) and the bad-nonce retry ([`retry_bad_nonce`]).

use crate::client::{RetryError, RetryPolicy};
use crate::clock::{Clock, SystemClock};
use crate::sync::Mutex;
use std::collections::hash_map::RandomState;
use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::future::Future;
use std::hash::BuildHasher;
use std::time::Duration;

/// A bounded cache of fresh nonces from `Replay-Nonce` headers: push the one
/// from every response, error responses included; `take` gives the newest,
/// never one older than `max_age`, and never the same nonce twice: it
/// remembers a 64-bit keyed hash of every nonce it handed out (8 bytes each,
/// plus the set's overhead, for the cache's lifetime), so a server that sends
/// an old nonce again, however long after, is ignored. A hash collision only
/// drops a fresh nonce.
///
/// ```
/// use monotonic_nonce::acme::ReplayNonces;
/// use std::time::Duration;
/// let nonces = ReplayNonces::new(8, Duration::from_secs(60));
/// nonces.push("old".into());
/// nonces.push("new".into());
/// nonces.push("new".into()); // the same header seen twice: kept once
/// assert_eq!(nonces.take().as_deref(), Some("new"));
/// assert_eq!(nonces.take().as_deref(), Some("old"));
/// assert_eq!(nonces.take(), None);
/// nonces.push("new".into()); // already handed out: never again
/// assert_eq!(nonces.take(), None);
/// ```
pub struct ReplayNonces<C: Clock = SystemClock> {
    capacity: usize,
    max_age_ms: u64,
    clock: C,
    state: Mutex<Cache>,
    /// Keys the hashes of the nonces handed out.
    hasher: RandomState,
}

#[derive(Debug, Default)]
struct Cache {
    /// Oldest first: `(nonce, received at ms)`.
    fresh: VecDeque<(String, u64)>,
    /// The keyed hash of every nonce handed out.
    taken: HashSet<u64>,
}

impl<C: Clock> fmt::Debug for ReplayNonces<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayNonces")
            .field("capacity", &self.capacity)
            .field("max_age_ms", &self.max_age_ms)
            .field("fresh", &self.state.lock().fresh.len())
            .finish()
    }
}

impl ReplayNonces {
    /// Keeps at most `capacity` (at least 1) nonces, each for at most `max_age`.
    ///
    /// ```
    /// let nonces = monotonic_nonce::acme::ReplayNonces::new(4, std::time::Duration::from_secs(30));
    /// assert!(nonces.is_empty());
    /// ```
    pub fn new(capacity: usize, max_age: Duration) -> Self {
        Self::with_clock(capacity, max_age, SystemClock)
    }
}

impl<C: Clock> ReplayNonces<C> {
    /// [`new`](Self::new) with another clock (tests, simulations).
    ///
    /// ```
    /// use monotonic_nonce::{clock::ManualClock, acme::ReplayNonces};
    /// use std::time::Duration;
    /// let clock = ManualClock::new(0);
    /// let nonces = ReplayNonces::with_clock(4, Duration::from_secs(1), clock.clone());
    /// nonces.push("n".into());
    /// clock.advance(1_001);
    /// assert_eq!(nonces.take(), None); // too old
    /// ```
    pub fn with_clock(capacity: usize, max_age: Duration, clock: C) -> Self {
        Self {
            capacity: capacity.max(1),
            max_age_ms: u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX),
            clock,
            state: Mutex::new(Cache::default()),
            hasher: RandomState::new(),
        }
    }

    /// Records `nonce` as handed out; `false` when it was already.
    pub(crate) fn claim(&self, nonce: &str) -> bool {
        let h = self.hasher.hash_one(nonce);
        let mut c = self.state.lock();
        c.fresh.retain(|(n, _)| n != nonce);
        c.taken.insert(h)
    }

    /// Adds a nonce from a response. A nonce already cached or already handed
    /// out is ignored; when full, the oldest is dropped.
    ///
    /// ```
    /// let nonces = monotonic_nonce::acme::ReplayNonces::new(4, std::time::Duration::from_secs(60));
    /// nonces.push("from-the-Replay-Nonce-header".to_owned());
    /// assert_eq!(nonces.len(), 1);
    /// ```
    pub fn push(&self, nonce: String) {
        let now = self.clock.now_ms().unwrap_or(0);
        let mut c = self.state.lock();
        if c.fresh.iter().any(|(n, _)| *n == nonce) || c.taken.contains(&self.hasher.hash_one(&nonce)) {
            return;
        }
        if c.fresh.len() >= self.capacity {
            c.fresh.pop_front();
        }
        c.fresh.push_back((nonce, now));
    }

    /// The newest nonce not older than `max_age`, used up by this call; older
    /// ones are dropped on the way. With a failing clock nothing can be shown
    /// fresh: `None`.
    ///
    /// ```
    /// let nonces = monotonic_nonce::acme::ReplayNonces::new(4, std::time::Duration::from_secs(60));
    /// nonces.push("n1".to_owned());
    /// assert_eq!(nonces.take().as_deref(), Some("n1"));
    /// assert_eq!(nonces.take(), None);
    /// ```
    pub fn take(&self) -> Option<String> {
        let now = self.clock.now_ms().ok()?;
        let mut c = self.state.lock();
        let max_age = self.max_age_ms;
        c.fresh.retain(|(_, at)| now.saturating_sub(*at) <= max_age);
        let (nonce, _) = c.fresh.pop_back()?;
        c.taken.insert(self.hasher.hash_one(&nonce));
        Some(nonce)
    }

    /// How many fresh nonces are cached (some may be past `max_age`).
    ///
    /// ```
    /// let nonces = monotonic_nonce::acme::ReplayNonces::new(4, std::time::Duration::from_secs(60));
    /// assert_eq!(nonces.len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.state.lock().fresh.len()
    }

    /// Whether none is cached.
    ///
    /// ```
    /// let nonces = monotonic_nonce::acme::ReplayNonces::new(4, std::time::Duration::from_secs(60));
    /// assert!(nonces.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a request's error means for [`retry_bad_nonce`].
///
/// ```
/// use monotonic_nonce::acme::Classified;
/// let from_error_response = Some("fresh-nonce".to_owned());
/// let c = Classified::BadNonce(from_error_response);
/// assert_ne!(c, Classified::Other);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Classified {
    /// Not a nonce problem: returned at once.
    Other,
    /// `urn:ietf:params:acme:error:badNonce`, with the `Replay-Nonce` of the
    /// error response when it carried one.
    BadNonce(Option<String>),
}

/// Where the next attempt's nonce comes from: the error response's, else the
/// newest cached, else up to `max` fetches; never one already handed out.
/// `Ok(None)`: every fetch answered a nonce already sent.
fn next_nonce<E>(
    fresh_from_error: &mut Option<String>,
    nonces: &ReplayNonces<impl Clock>,
    fetch: &mut impl FnMut() -> Result<String, E>,
    max: u32,
) -> Result<Option<String>, E> {
    if let Some(n) = fresh_from_error.take().filter(|n| nonces.claim(n)).or_else(|| nonces.take()) {
        return Ok(Some(n));
    }
    for _ in 0..max {
        let n = fetch()?;
        if nonces.claim(&n) {
            return Ok(Some(n));
        }
    }
    Ok(None)
}

/// What one attempt's error means: retry (with the error response's nonce, if any) or stop.
fn after_error<E>(
    error: E,
    attempt: u32,
    max: u32,
    classify: &impl Fn(&E) -> Classified,
) -> Result<Option<String>, RetryError<E>> {
    match classify(&error) {
        Classified::BadNonce(from_error) if attempt < max => Ok(from_error),
        Classified::BadNonce(_) => Err(RetryError::Exhausted { attempts: attempt, last: error }),
        Classified::Other => Err(RetryError::Failed { attempts: attempt, error }),
    }
}

/// Sends `request` with a nonce and repeats only it, up to the policy's
/// attempts in all, while it fails with `badNonce`. Each attempt's nonce is
/// the one the last error response carried, else the newest cached, else a
/// new one from `fetch` (a `HEAD` to `newNonce`). No nonce is ever sent
/// twice: one that `nonces` handed out already (the error response's
/// included) is skipped, and a fetched one that was is fetched again (at most
/// the policy's attempts times). `request` should push the `Replay-Nonce` of
/// every response into `nonces`.
///
/// # Errors
/// [`RetryError::Exhausted`] with the last `badNonce` error after the
/// policy's attempts; [`RetryError::Failed`] with any other error, or a
/// `fetch` error, at once; [`RetryError::NonceReused`] when `fetch` answered
/// only nonces already sent.
///
/// ```
/// use monotonic_nonce::{NonceIssuer, acme::{retry_bad_nonce, Classified, ReplayNonces}, client::RetryPolicy};
/// use std::time::Duration;
/// let server = NonceIssuer::builder().reject_rate(0.5).build()?;
/// let nonces = ReplayNonces::new(8, Duration::from_secs(60));
/// let reply = retry_bad_nonce(
///     &nonces,
///     RetryPolicy::attempts(20),
///     |nonce| server.redeem(&nonce).map(|()| "created").map_err(|e| (e, server.issue())),
///     |(_, fresh): &(_, String)| Classified::BadNonce(Some(fresh.clone())),
///     || Ok(server.issue()),
/// );
/// assert!(reply.is_ok());
/// # Ok::<(), monotonic_nonce::BuildError>(())
/// ```
pub fn retry_bad_nonce<T, E>(
    nonces: &ReplayNonces<impl Clock>,
    policy: RetryPolicy,
    mut request: impl FnMut(String) -> Result<T, E>,
    classify: impl Fn(&E) -> Classified,
    mut fetch: impl FnMut() -> Result<String, E>,
) -> Result<T, RetryError<E>> {
    let max = policy.max_attempts.max(1);
    let mut fresh = None;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let nonce = match next_nonce(&mut fresh, nonces, &mut fetch, max) {
            Ok(Some(n)) => n,
            Ok(None) => return Err(RetryError::NonceReused { attempts: attempt - 1 }),
            Err(error) => return Err(RetryError::Failed { attempts: attempt, error }),
        };
        match request(nonce) {
            Ok(v) => return Ok(v),
            Err(e) => fresh = after_error(e, attempt, max, &classify)?,
        }
    }
}

/// [`retry_bad_nonce`] for async requests and fetches (any `Future`, no runtime assumed).
///
/// # Errors
/// As [`retry_bad_nonce`].
///
/// ```
/// use monotonic_nonce::{acme::{retry_bad_nonce_async, Classified, ReplayNonces}, client::RetryPolicy};
/// let nonces = ReplayNonces::new(8, std::time::Duration::from_secs(60));
/// let fut = retry_bad_nonce_async(&nonces, RetryPolicy::attempts(3), |n: String| async move { Ok::<_, ()>(n) }, |_| Classified::Other, || async { Ok(String::from("n")) });
/// # drop(fut);
/// ```
pub async fn retry_bad_nonce_async<T, E, F, Fut, G, H, HFut>(
    nonces: &ReplayNonces<impl Clock>,
    policy: RetryPolicy,
    mut request: F,
    classify: G,
    mut fetch: H,
) -> Result<T, RetryError<E>>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    G: Fn(&E) -> Classified,
    H: FnMut() -> HFut,
    HFut: Future<Output = Result<String, E>>,
{
    let max = policy.max_attempts.max(1);
    let mut fresh: Option<String> = None;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut nonce = fresh.take().filter(|n| nonces.claim(n)).or_else(|| nonces.take());
        for _ in 0..max {
            if nonce.is_some() {
                break;
            }
            let n = fetch().await.map_err(|error| RetryError::Failed { attempts: attempt, error })?;
            nonce = nonces.claim(&n).then_some(n);
        }
        let Some(nonce) = nonce else { return Err(RetryError::NonceReused { attempts: attempt - 1 }) };
        match request(nonce).await {
            Ok(v) => return Ok(v),
            Err(e) => fresh = after_error(e, attempt, max, &classify)?,
        }
    }
}
