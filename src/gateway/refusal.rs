//! Why the layer refused a request ([`Refusal`]), and how a refusal becomes
//! a response ([`ErrorHandler`]; [`JsonErrors`] by default).

use crate::error::Rejection;
use crate::protocol::{ErrorBody, CODE_SERVER, CODE_VALIDATION};
use http::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use http::{Response, StatusCode};
use std::time::Duration;

/// A request's account or nonce could not be read: the layer answers 400
/// and records nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum BadInput {
    /// The field is absent.
    #[error("missing {field}")]
    Missing {
        /// The header or parameter.
        field: String,
    },
    /// The field appears more than once.
    #[error("{field} appears more than once")]
    Duplicated {
        /// The header or parameter.
        field: String,
    },
    /// The field is present and empty.
    #[error("{field} is empty")]
    Empty {
        /// The header or parameter.
        field: String,
    },
    /// Not a nonce: 1 to 20 decimal digits, no sign, spaces, leading zero or
    /// exponent, at most 18446744073709551615.
    #[error(
        "{field} is not a nonce (decimal digits only, no sign, spaces or leading zeros, at most 18446744073709551615)"
    )]
    NotANonce {
        /// The header or parameter.
        field: String,
    },
    /// Not UTF-8 text (or a broken `%` escape).
    #[error("{field} is not UTF-8 text")]
    Unreadable {
        /// The header or parameter.
        field: String,
    },
    /// Longer than the source accepts.
    #[error("{field} is {len} bytes, more than {max}")]
    TooLong {
        /// The header or parameter.
        field: String,
        /// Its length in bytes.
        len: usize,
        /// The longest accepted.
        max: usize,
    },
}

/// Why the layer did not pass a request on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The validator refused the nonce, or could not answer (the store is
    /// unavailable, the clock failed): nothing was recorded.
    #[error("{rejection}")]
    Rejected {
        /// The request's account.
        account: String,
        /// The validator's verdict.
        rejection: Rejection,
        /// The body for it, with `lastNonce` filled in where the validator could
        /// say it (boxed: it is most of the refusal's size).
        body: Box<ErrorBody>,
    },
    /// The account or the nonce could not be read.
    #[error(transparent)]
    BadRequest(#[from] BadInput),
    /// No [`Verified`](super::Verified) extension: the signature layer did not
    /// run before the recording layer, so nothing is recorded (fail closed).
    #[error("the request carries no verified account and nonce: the signature layer must run before the nonce layer")]
    Unverified,
}

impl Refusal {
    /// The HTTP status: the body's (400 for nonce problems, 503 when the store
    /// could not answer, 500 when the clock failed), 400 for bad input, 500
    /// for a request nothing verified.
    ///
    /// ```
    /// use monotonic_nonce::gateway::Refusal;
    /// assert_eq!(Refusal::Unverified.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
    /// ```
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::Rejected { body, .. } => {
                StatusCode::from_u16(body.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
            Refusal::BadRequest(_) => StatusCode::BAD_REQUEST,
            Refusal::Unverified => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The crate's JSON error body for it.
    ///
    /// ```
    /// use monotonic_nonce::gateway::{BadInput, Refusal};
    /// let body = Refusal::from(BadInput::Missing { field: "x-nonce".into() }).body();
    /// assert_eq!((body.error.code.as_str(), body.error.message.as_str()), ("VALIDATION_ERROR", "missing x-nonce"));
    /// ```
    pub fn body(&self) -> ErrorBody {
        match self {
            Refusal::Rejected { body, .. } => (**body).clone(),
            Refusal::BadRequest(bad) => ErrorBody::new(CODE_VALIDATION, bad.to_string()),
            Refusal::Unverified => ErrorBody::new(CODE_SERVER, "Request not verified before the nonce check"),
        }
    }

    /// The validator's verdict, for a [`Refusal::Rejected`].
    pub fn rejection(&self) -> Option<&Rejection> {
        match self {
            Refusal::Rejected { rejection, .. } => Some(rejection),
            _ => None,
        }
    }
}

/// Turns a [`Refusal`] into the response the client gets. Closures
/// `Fn(Refusal) -> Response<B>` are handlers.
///
/// ```
/// use monotonic_nonce::gateway::{ErrorHandler, Refusal};
/// let plain = |refusal: Refusal| http::Response::builder().status(refusal.status()).body(refusal.to_string()).unwrap();
/// assert_eq!(plain.respond(Refusal::Unverified).status(), 500);
/// ```
pub trait ErrorHandler<B>: Clone + Send + Sync + 'static {
    /// The response for `refusal`.
    fn respond(&self, refusal: Refusal) -> Response<B>;
}

impl<B, F> ErrorHandler<B> for F
where
    F: Fn(Refusal) -> Response<B> + Clone + Send + Sync + 'static,
{
    fn respond(&self, refusal: Refusal) -> Response<B> {
        self(refusal)
    }
}

/// The default handler: [`Refusal::body`] as JSON with
/// `Content-Type: application/json` and [`Refusal::status`], plus
/// `Retry-After` on a 503 (1 second unless set).
///
/// ```
/// use monotonic_nonce::gateway::{ErrorHandler, JsonErrors, Refusal};
/// use monotonic_nonce::Rejection;
/// let rejection = Rejection::Unavailable { reason: "timeout".into() };
/// let refusal = Refusal::Rejected { account: "bot".into(), body: Box::new(rejection.error_body()), rejection };
/// let response: http::Response<String> = JsonErrors::default().respond(refusal);
/// assert_eq!((response.status().as_u16(), response.headers()["retry-after"].to_str().unwrap()), (503, "1"));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct JsonErrors {
    retry_after: Duration,
}

impl Default for JsonErrors {
    fn default() -> Self {
        Self { retry_after: Duration::from_secs(1) }
    }
}

impl JsonErrors {
    /// Sends `Retry-After` with `d` (whole seconds, rounded up, at least 1) on a 503.
    pub fn retry_after(mut self, d: Duration) -> Self {
        self.retry_after = d;
        self
    }
}

impl<B: From<String>> ErrorHandler<B> for JsonErrors {
    fn respond(&self, refusal: Refusal) -> Response<B> {
        let status = refusal.status();
        // the body's own `Serialize` cannot fail; the fallback keeps a handler panic-free
        let json = serde_json::to_string(&refusal.body()).unwrap_or_else(|_| {
            r#"{"status":"error","error":{"code":"SERVER_ERROR","message":"","details":{}}}"#.to_owned()
        });
        let mut response = Response::new(B::from(json));
        *response.status_mut() = status;
        response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if status == StatusCode::SERVICE_UNAVAILABLE {
            let secs = self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0);
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}
