//! [`NonceMiddleware`]: a reqwest-middleware layer (feature `reqwest`) that
//! takes a fresh nonce for every send, has the application's [`Signer`] sign
//! it, and on a nonce error in the response applies the server's feedback,
//! takes another fresh nonce, re-signs and resends, up to a [`RetryPolicy`].
//!
//! # With reqwest-retry
//! reqwest-retry resends `request.try_clone()`: the same nonce and the same
//! signature, a certain duplicate when it runs inside this middleware. Attach
//! it first (outermost), so each of its attempts passes through this
//! middleware again and gets a fresh nonce and signature:
//! `ClientBuilder::new(client).with(RetryTransientMiddleware::new_with_policy(..)).with(NonceMiddleware::new(..))`.

use super::feedback::NonceFeedback;
use super::manager::NonceManager;
use super::recovery::{RetryError, RetryPolicy};
use crate::clock::{Clock, SystemClock};
use crate::sync::Arc;
use http::Extensions;
use reqwest::{Request, Response, ResponseBuilderExt};
use reqwest_middleware::{Middleware, Next};
use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// What a [`Signer`] returns when it cannot sign.
pub type SignError = Box<dyn std::error::Error + Send + Sync>;

/// Puts the nonce and a signature over the request into it: headers, the
/// query or the body, as the venue wants. Called once per send, each time
/// with a fresh nonce on a fresh copy of the request. Closures
/// `Fn(&mut reqwest::Request, u64) -> Result<(), SignError>` are signers.
///
/// ```
/// use monotonic_nonce::client::{SignError, Signer};
/// let signer = |request: &mut reqwest::Request, nonce: u64| -> Result<(), SignError> {
///     request.headers_mut().insert("x-nonce", nonce.into());
///     // ... an HMAC over the method, path, body and nonce into "x-signature" ...
///     Ok(())
/// };
/// let mut request = reqwest::Request::new(reqwest::Method::POST, "http://127.0.0.1/order".parse().unwrap());
/// signer.sign(&mut request, 7).unwrap();
/// assert_eq!(request.headers()["x-nonce"], "7");
/// ```
pub trait Signer: Send + Sync + 'static {
    /// Sets `nonce` and the signature on `request`.
    ///
    /// # Errors
    /// Why it cannot be signed; the request is not sent.
    fn sign(&self, request: &mut Request, nonce: u64) -> Result<(), SignError>;
}

impl<F> Signer for F
where
    F: Fn(&mut Request, u64) -> Result<(), SignError> + Send + Sync + 'static,
{
    fn sign(&self, request: &mut Request, nonce: u64) -> Result<(), SignError> {
        self(request, nonce)
    }
}

/// The response a server refused a nonce with, as [`RetryError`] carries it
/// when the middleware stops: its status, its body (as text, lossily) and
/// what it said.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Refused {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: String,
    /// What the body said about the nonce.
    pub feedback: NonceFeedback,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}: {:?}: {}", self.status, self.feedback, self.body)
    }
}

impl std::error::Error for Refused {}

/// Why a request could not be signed (returned inside the middleware's error).
#[derive(Debug, thiserror::Error)]
#[error("the request could not be signed: {0}")]
pub struct SigningFailed(#[source] pub SignError);

/// The reqwest-middleware layer: a fresh nonce and signature for every send,
/// and a bounded resend on nonce errors.
///
/// # Guarantees
/// - No two sends carry the same nonce: each takes its own from the
///   [`NonceManager`] (which never repeats one), after the feedback of the
///   previous answer moved it past what the server reported.
/// - A clock or future-bound error (`ClockSkew`, `TooFarInFuture`: Binance
///   -1021, OKX 50102, Bybit 10002, ...) is returned at once as
///   [`RetryError::Nonce`], never "fixed" by skipping ahead or resending.
/// - At most `policy.max_attempts` sends; then [`RetryError::Exhausted`] with
///   the attempt count and the last response as [`Refused`].
/// - A request whose body cannot be cloned (a stream) is sent once.
/// - Responses are read only when they say their length (`Content-Length`) and
///   it is at most 64 KiB; others pass through unread and are never resent.
///
/// Errors arrive as `reqwest_middleware::Error::Middleware`; downcast it to
/// `RetryError<Refused>` or [`SigningFailed`].
///
/// ```no_run
/// use monotonic_nonce::client::{NonceMiddleware, RetryPolicy, SignError};
/// use monotonic_nonce::NonceManager;
/// use std::sync::Arc;
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let manager = Arc::new(NonceManager::new());
/// let sign = |request: &mut reqwest::Request, nonce: u64| -> Result<(), SignError> {
///     request.headers_mut().insert("x-nonce", nonce.into());
///     Ok(())
/// };
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(NonceMiddleware::new(manager, sign).policy(RetryPolicy::attempts(3)))
///     .build();
/// let response = client.post("http://127.0.0.1:8080/order").body("{}").send().await?;
/// # Ok(()) }
/// ```
pub struct NonceMiddleware<S, C: Clock = SystemClock> {
    manager: Arc<NonceManager<C>>,
    signer: S,
    policy: RetryPolicy,
}

impl<S, C: Clock> fmt::Debug for NonceMiddleware<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceMiddleware").field("manager", &self.manager).field("policy", &self.policy).finish()
    }
}

/// Longest response body read for feedback (see [`NonceFeedback::from_body`]).
const MAX_BODY: u64 = 64 * 1024;

impl<S: Signer, C: Clock> NonceMiddleware<S, C> {
    /// Nonces from `manager`, signed by `signer`; [`RetryPolicy::default`] (3 attempts).
    pub fn new(manager: Arc<NonceManager<C>>, signer: S) -> Self {
        Self { manager, signer, policy: RetryPolicy::default() }
    }

    /// Sends at most `policy.max_attempts` times per request.
    pub fn policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    async fn send(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let max = self.policy.max_attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            // the copy for the next attempt, taken before this one is signed
            let spare = if attempt < max { request.try_clone() } else { None };
            let nonce = self.manager.next().map_err(|error| stop(RetryError::Nonce { attempts: attempt, error }))?;
            self.signer
                .sign(&mut request, nonce)
                .map_err(|e| reqwest_middleware::Error::middleware(SigningFailed(e)))?;
            let response = next.clone().run(request, extensions).await?;
            let (response, refused) = read_feedback(response).await?;
            let Some(refused) = refused else { return Ok(response) };
            if let Err(error) = self.manager.apply_feedback(&refused.feedback) {
                return Err(stop(RetryError::Nonce { attempts: attempt, error }));
            }
            match spare {
                Some(copy) => request = copy,
                None => return Err(stop(RetryError::Exhausted { attempts: attempt, last: refused })),
            }
        }
    }
}

fn stop(e: RetryError<Refused>) -> reqwest_middleware::Error {
    reqwest_middleware::Error::middleware(e)
}

/// The response, rebuilt after its body was read, and what the body said
/// when it is about the nonce (`None`: pass the response on).
async fn read_feedback(response: Response) -> reqwest_middleware::Result<(Response, Option<Refused>)> {
    let readable = response.content_length().is_some_and(|len| len <= MAX_BODY);
    if !readable {
        return Ok((response, None));
    }
    let (status, version, headers, url) =
        (response.status(), response.version(), response.headers().clone(), response.url().clone());
    let body = response.bytes().await?;
    let feedback = NonceFeedback::from_body(&body);
    let refused = match feedback {
        NonceFeedback::Other => None,
        _ => Some(Refused { status: status.as_u16(), body: String::from_utf8_lossy(&body).into_owned(), feedback }),
    };
    let mut rebuilt = http::Response::builder().status(status).version(version).url(url);
    if let Some(h) = rebuilt.headers_mut() {
        *h = headers;
    }
    let rebuilt = rebuilt.body(body).map_err(reqwest_middleware::Error::middleware)?;
    Ok((Response::from(rebuilt), refused))
}

impl<S: Signer, C: Clock> Middleware for NonceMiddleware<S, C> {
    // reqwest-middleware's `async_trait` signature, written out
    fn handle<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        request: Request,
        extensions: &'life1 mut Extensions,
        next: Next<'life2>,
    ) -> Pin<Box<dyn Future<Output = reqwest_middleware::Result<Response>> + Send + 'async_trait>>
    where
        Self: 'async_trait,
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
    {
        Box::pin(self.send(request, extensions, next))
    }
}
