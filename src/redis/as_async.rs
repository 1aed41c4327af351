//! [`AsyncValidator`] for the Redis validator: one round trip per call.

use super::RedisValidator;
use crate::clock::Clock;
use crate::error::Rejection;
use crate::protocol::ErrorBody;
use crate::rules::AsyncValidator;
use std::future::Future;

impl<C: Clock> AsyncValidator for RedisValidator<C> {
    fn check(&self, account: &str, nonce: u64) -> impl Future<Output = Result<(), Rejection>> + Send {
        RedisValidator::check(self, account, nonce)
    }
    fn validate(&self, account: &str, nonce: u64) -> impl Future<Output = Result<(), Rejection>> + Send {
        RedisValidator::validate(self, account, nonce)
    }
    fn error_body(&self, account: &str, rejection: &Rejection) -> impl Future<Output = ErrorBody> + Send {
        RedisValidator::error_body(self, account, rejection)
    }
    fn backend(&self) -> &'static str {
        "redis"
    }
}
