//! The error body a server writes for a refusal: one function, used by both
//! validators, so their bodies cannot drift.

use crate::error::Rejection;
use crate::protocol::{ErrorBody, JsonNumbers};

/// The JSON body for `rejection`: `lastNonce` filled in from `last_nonce`
/// (the account's highest accepted nonce) for the refusals that do not carry
/// one, and every nonce written as `numbers` says.
///
/// ```
/// use monotonic_nonce::protocol::JsonNumbers;
/// use monotonic_nonce::rules::error_body;
/// use monotonic_nonce::Rejection;
/// let body = error_body(&Rejection::NotPositive, Some(41), JsonNumbers::Strings);
/// assert_eq!((body.error.details.last_nonce, body.numbers()), (Some(41), JsonNumbers::Strings));
/// assert_eq!(body.http_status(), 400);
/// ```
pub fn error_body(rejection: &Rejection, last_nonce: Option<u64>, numbers: JsonNumbers) -> ErrorBody {
    let mut body = rejection.error_body().with_numbers(numbers);
    if body.error.details.last_nonce.is_none() {
        body.error.details.last_nonce = last_nonce;
    }
    body
}
