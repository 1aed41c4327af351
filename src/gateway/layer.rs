//! [`NonceLayer`] and its [`NonceService`]: the tower middleware.

use super::refusal::{ErrorHandler, JsonErrors, Refusal};
use super::source::{FromVerified, NonceSource};
use crate::rules::AsyncValidator;
use crate::sync::Arc;
use http::{Request, Response};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use tower_layer::Layer;
use tower_service::Service;

/// What the recording layer leaves in the request's extensions for the
/// handler: the account and the nonce it accepted and recorded.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Accepted {
    /// The account.
    pub account: String,
    /// The nonce, now recorded (never accepted again for this account).
    pub nonce: u64,
}

/// Whether the layer records an accepted nonce or only checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `check`: before the signature layer, records nothing.
    Check,
    /// `validate`: after it, records the nonce.
    Record,
}

/// A tower layer that refuses replayed, stale and unreadable nonces before
/// the inner service sees the request, over any [`AsyncValidator`].
///
/// [`NonceLayer::new`] records: put it after the signature layer, which
/// inserts [`Verified`](super::Verified); a request without that extension
/// is refused with 500 and nothing is recorded. [`NonceLayer::pre_check`]
/// only checks (records nothing): put it before the signature layer to drop
/// stale and replayed requests before paying for the signature.
///
/// # Guarantees
/// - Records at most once per `(account, nonce)` across every service sharing
///   the validator (or the Redis store): the validator's own guarantee, one
///   atomic `validate` per request.
/// - Records only what [`NonceSource::read`] returns: with the default source,
///   only a nonce whose signature was verified.
/// - Fails closed: a store that cannot answer gives 503 with `Retry-After`
///   and the request goes no further; a clock failure gives 500.
/// - Bad input is a 400 with the JSON body and records nothing; nothing in
///   the layer panics on input.
///
/// Over a validator that answers at once (the in-memory one, through
/// [`AsyncValidator::validate_now`]) the verdict is given, and an accepted
/// nonce recorded, in `call`, and the future returned is the inner service's
/// own ([`ResponseFuture`]); over one that needs a round trip (Redis) the
/// verdict and the inner call share one boxed future.
///
/// ```
/// use monotonic_nonce::gateway::{NonceLayer, Verified};
/// use monotonic_nonce::{NonceValidator, Policy};
/// use std::sync::Arc;
/// use tower::{service_fn, Layer, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let validator = Arc::new(NonceValidator::<String>::new(Policy::Strict));
/// let app = NonceLayer::new(validator).layer(service_fn(|_req: http::Request<String>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(String::from("ok")))
/// }));
/// let signed = || {
///     let mut req = http::Request::new(String::new());
///     req.extensions_mut().insert(Verified::new("bot", 7)); // what the signature layer does
///     req
/// };
/// assert_eq!(app.clone().oneshot(signed()).await.unwrap().status(), 200);
/// assert_eq!(app.oneshot(signed()).await.unwrap().status(), 400); // the replay
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct NonceLayer<V, Src = FromVerified, H = JsonErrors> {
    validator: Arc<V>,
    source: Src,
    handler: H,
    mode: Mode,
}

impl<V: AsyncValidator> NonceLayer<V> {
    /// Records the nonce of every request whose [`Verified`](super::Verified)
    /// extension the signature layer inserted; refuses the rest.
    pub fn new(validator: V) -> Self {
        Self {
            validator: Arc::new(validator),
            source: FromVerified,
            handler: JsonErrors::default(),
            mode: Mode::Record,
        }
    }
}

impl<V: AsyncValidator, Src: NonceSource> NonceLayer<V, Src> {
    /// Checks the nonce read through `source` (before any signature is
    /// verified) and records nothing: a request that would be refused stops
    /// here, the rest go on to the signature layer and the recording layer.
    pub fn pre_check(validator: V, source: Src) -> Self {
        Self { validator: Arc::new(validator), source, handler: JsonErrors::default(), mode: Mode::Check }
    }
}

impl<V, Src, H> NonceLayer<V, Src, H> {
    /// Reads the account and the nonce through `source` instead. With a
    /// recording layer, use a source only when the layer runs after the
    /// signature is verified over what it reads.
    pub fn source<T: NonceSource>(self, source: T) -> NonceLayer<V, T, H> {
        NonceLayer { validator: self.validator, source, handler: self.handler, mode: self.mode }
    }

    /// Answers refusals through `handler` instead of [`JsonErrors`].
    pub fn error_handler<T>(self, handler: T) -> NonceLayer<V, Src, T> {
        NonceLayer { validator: self.validator, source: self.source, handler, mode: self.mode }
    }
}

impl<S, V, Src: Clone, H: Clone> Layer<S> for NonceLayer<V, Src, H> {
    type Service = NonceService<S, V, Src, H>;

    fn layer(&self, inner: S) -> Self::Service {
        NonceService {
            inner,
            validator: Arc::clone(&self.validator),
            source: self.source.clone(),
            handler: self.handler.clone(),
            mode: self.mode,
        }
    }
}

/// The service [`NonceLayer`] wraps around an inner service.
#[derive(Debug, Clone)]
pub struct NonceService<S, V, Src = FromVerified, H = JsonErrors> {
    inner: S,
    validator: Arc<V>,
    source: Src,
    handler: H,
    mode: Mode,
}

impl<S, V, Src, H, ReqB, ResB> Service<Request<ReqB>> for NonceService<S, V, Src, H>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send,
    V: AsyncValidator + 'static,
    Src: NonceSource,
    H: ErrorHandler<ResB>,
    ReqB: Send + 'static,
    ResB: Send + 'static,
{
    type Response = Response<ResB>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResB, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqB>) -> Self::Future {
        let (account, nonce) = match self.source.read(&request) {
            Ok(pair) => pair,
            Err(refusal) => {
                crate::telemetry::gateway_refused(refusal == Refusal::Unverified);
                return ResponseFuture::ready(self.handler.respond(refusal));
            }
        };
        // a validator that answers at once (in memory) is answered here: no boxed future
        let now = match self.mode {
            Mode::Check => self.validator.check_now(&account, nonce),
            Mode::Record => self.validator.validate_now(&account, nonce),
        };
        match now {
            Some(Ok(())) => {
                if self.mode == Mode::Record {
                    request.extensions_mut().insert(Accepted { account, nonce });
                }
                // the service polled ready answers this request, as `Service` asks
                ResponseFuture { state: State::Inner { future: self.inner.call(request) } }
            }
            Some(Err(rejection)) => match self.validator.error_body_now(&account, &rejection) {
                Some(body) => ResponseFuture::ready(self.handler.respond(Refusal::Rejected {
                    account,
                    rejection,
                    body: Box::new(body),
                })),
                None => {
                    let (validator, handler) = (Arc::clone(&self.validator), self.handler.clone());
                    ResponseFuture::boxed(async move {
                        let body = validator.error_body(&account, &rejection).await;
                        Ok(handler.respond(Refusal::Rejected { account, rejection, body: Box::new(body) }))
                    })
                }
            },
            None => self.call_waiting(request, account, nonce),
        }
    }
}

impl<S, V, Src, H> NonceService<S, V, Src, H> {
    /// The path of a validator that answers after a round trip (Redis): the
    /// verdict and the inner call in one boxed future.
    fn call_waiting<ReqB, ResB>(
        &mut self,
        mut request: Request<ReqB>,
        account: String,
        nonce: u64,
    ) -> ResponseFuture<S::Future, ResB, S::Error>
    where
        S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
        S::Future: Send,
        V: AsyncValidator + 'static,
        H: ErrorHandler<ResB>,
        ReqB: Send + 'static,
        ResB: Send + 'static,
    {
        // the service that was polled ready goes with this request; a clone stays for the next
        let inner = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, inner);
        let (validator, handler, mode) = (Arc::clone(&self.validator), self.handler.clone(), self.mode);
        ResponseFuture::boxed(async move {
            let verdict = match mode {
                Mode::Check => validator.check(&account, nonce).await,
                Mode::Record => validator.validate(&account, nonce).await,
            };
            if let Err(rejection) = verdict {
                let body = validator.error_body(&account, &rejection).await;
                return Ok(handler.respond(Refusal::Rejected { account, rejection, body: Box::new(body) }));
            }
            if mode == Mode::Record {
                request.extensions_mut().insert(Accepted { account, nonce });
            }
            inner.call(request).await
        })
    }
}

type Boxed<B, E> = Pin<Box<dyn Future<Output = Result<Response<B>, E>> + Send>>;

pin_project_lite::pin_project! {
    /// The future [`NonceService`] returns: the inner service's own future
    /// when an in-memory validator accepted at once, a refusal ready at once,
    /// or, over a validator that answers after a round trip, a boxed future.
    pub struct ResponseFuture<F, B, E> {
        #[pin]
        state: State<F, B, E>,
    }
}

pin_project_lite::pin_project! {
    #[project = StateProj]
    enum State<F, B, E> {
        Inner { #[pin] future: F },
        Ready { response: Option<Response<B>> },
        Waiting { future: Boxed<B, E> },
    }
}

impl<F, B, E> ResponseFuture<F, B, E> {
    fn ready(response: Response<B>) -> Self {
        Self { state: State::Ready { response: Some(response) } }
    }

    fn boxed(future: impl Future<Output = Result<Response<B>, E>> + Send + 'static) -> Self {
        Self { state: State::Waiting { future: Box::pin(future) } }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Inner { future } => future.poll(cx),
            StateProj::Ready { response } => {
                Poll::Ready(Ok(response.take().expect("a NonceService future polled after it completed")))
            }
            StateProj::Waiting { future } => future.as_mut().poll(cx),
        }
    }
}

impl<F, B, E> std::fmt::Debug for ResponseFuture<F, B, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            State::Inner { .. } => "Inner",
            State::Ready { .. } => "Ready",
            State::Waiting { .. } => "Waiting",
        };
        f.debug_struct("ResponseFuture").field("state", &state).finish()
    }
}
