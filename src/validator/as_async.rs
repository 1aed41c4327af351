//! [`AsyncValidator`] for the in-memory validator: every future is ready
//! when first polled, and every `_now` method answers (the validator never waits).

use super::NonceValidator;
use crate::clock::Clock;
use crate::error::Rejection;
use crate::protocol::ErrorBody;
use crate::rules::AsyncValidator;
use std::future::{ready, Future};
use std::hash::BuildHasher;

impl<C: Clock, S: BuildHasher + Clone + Send + Sync> AsyncValidator for NonceValidator<String, C, S> {
    fn check(&self, account: &str, nonce: u64) -> impl Future<Output = Result<(), Rejection>> + Send {
        ready(NonceValidator::check(self, account, nonce))
    }
    fn validate(&self, account: &str, nonce: u64) -> impl Future<Output = Result<(), Rejection>> + Send {
        ready(NonceValidator::validate(self, account, nonce))
    }
    fn error_body(&self, account: &str, rejection: &Rejection) -> impl Future<Output = ErrorBody> + Send {
        ready(NonceValidator::error_body(self, account, rejection))
    }
    fn backend(&self) -> &'static str {
        "memory"
    }
    fn check_now(&self, account: &str, nonce: u64) -> Option<Result<(), Rejection>> {
        Some(NonceValidator::check(self, account, nonce))
    }
    fn validate_now(&self, account: &str, nonce: u64) -> Option<Result<(), Rejection>> {
        Some(NonceValidator::validate(self, account, nonce))
    }
    fn error_body_now(&self, account: &str, rejection: &Rejection) -> Option<ErrorBody> {
        Some(NonceValidator::error_body(self, account, rejection))
    }
}
