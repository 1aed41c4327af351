//! [`AsyncValidator`]: one interface over the in-memory and the Redis
//! validator, for code (such as the gateway layer) that works over either.

use crate::error::Rejection;
use crate::protocol::ErrorBody;
use std::future::Future;

/// A validator behind an `async` interface: [`NonceValidator<String>`](crate::NonceValidator)
/// answers at once (its futures are ready when first polled),
/// `RedisValidator` (feature `redis`) after a round trip.
/// Accounts are strings here, as they arrive in requests.
///
/// Each method's contract is the inherent method's of the same name:
/// `check` records nothing, `validate` records an accepted nonce atomically
/// (at most once across every caller of the same validator or store), and a
/// store that cannot answer refuses with [`Rejection::Unavailable`] (fail closed).
///
/// ```
/// use monotonic_nonce::rules::AsyncValidator;
/// use monotonic_nonce::{NonceValidator, Policy, Rejection};
///
/// async fn admit(v: &impl AsyncValidator, account: &str, nonce: u64) -> Result<(), Rejection> {
///     v.check(account, nonce).await?; // cheap, records nothing
///     // ... verify the request's signature here ...
///     v.validate(account, nonce).await
/// }
///
/// let v = NonceValidator::<String>::new(Policy::Strict);
/// let admitted = futures_lite_block_on(admit(&v, "bot", 7));
/// assert_eq!(admitted, Ok(()));
/// assert!(futures_lite_block_on(admit(&v, "bot", 7)).is_err());
/// # fn futures_lite_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let mut f = std::pin::pin!(f);
/// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
/// #     match f.as_mut().poll(&mut cx) { std::task::Poll::Ready(out) => out, std::task::Poll::Pending => unreachable!() }
/// # }
/// ```
pub trait AsyncValidator: Send + Sync {
    /// The verdict `validate` would give now, recording nothing.
    fn check(&self, account: &str, nonce: u64) -> impl Future<Output = Result<(), Rejection>> + Send;

    /// The verdict, with an accepted nonce recorded.
    fn validate(&self, account: &str, nonce: u64) -> impl Future<Output = Result<(), Rejection>> + Send;

    /// The JSON body for `rejection` of `account`, with `lastNonce` filled in
    /// where the store can say it.
    fn error_body(&self, account: &str, rejection: &Rejection) -> impl Future<Output = ErrorBody> + Send;

    /// A short name for metrics labels and logs: `"memory"` or `"redis"`.
    fn backend(&self) -> &'static str;

    /// `check`'s verdict without waiting, from a validator that can give it
    /// so (in memory); `None` (the default) when it needs a round trip, and
    /// the caller awaits `check`. Callers such as the gateway layer use it to
    /// answer without boxing a future.
    fn check_now(&self, account: &str, nonce: u64) -> Option<Result<(), Rejection>> {
        let _ = (account, nonce);
        None
    }

    /// `validate`'s verdict without waiting (an accepted nonce recorded), or
    /// `None` (the default: nothing recorded) when it needs a round trip.
    ///
    /// ```
    /// use monotonic_nonce::rules::AsyncValidator;
    /// use monotonic_nonce::{NonceValidator, Policy};
    ///
    /// let v = NonceValidator::<String>::new(Policy::Strict);
    /// assert_eq!(v.check_now("bot", 7), Some(Ok(()))); // records nothing
    /// assert_eq!(v.validate_now("bot", 7), Some(Ok(())));
    /// let Some(Err(rejection)) = v.validate_now("bot", 7) else { panic!("a replay") };
    /// assert_eq!(v.error_body_now("bot", &rejection).map(|b| b.http_status()), Some(400));
    /// ```
    fn validate_now(&self, account: &str, nonce: u64) -> Option<Result<(), Rejection>> {
        let _ = (account, nonce);
        None
    }

    /// `error_body` without waiting, or `None` (the default).
    fn error_body_now(&self, account: &str, rejection: &Rejection) -> Option<ErrorBody> {
        let _ = (account, rejection);
        None
    }
}

impl<V: AsyncValidator + ?Sized> AsyncValidator for std::sync::Arc<V> {
    fn check(&self, account: &str, nonce: u64) -> impl Future<Output = Result<(), Rejection>> + Send {
        (**self).check(account, nonce)
    }
    fn validate(&self, account: &str, nonce: u64) -> impl Future<Output = Result<(), Rejection>> + Send {
        (**self).validate(account, nonce)
    }
    fn error_body(&self, account: &str, rejection: &Rejection) -> impl Future<Output = ErrorBody> + Send {
        (**self).error_body(account, rejection)
    }
    fn backend(&self) -> &'static str {
        (**self).backend()
    }
    fn check_now(&self, account: &str, nonce: u64) -> Option<Result<(), Rejection>> {
        (**self).check_now(account, nonce)
    }
    fn validate_now(&self, account: &str, nonce: u64) -> Option<Result<(), Rejection>> {
        (**self).validate_now(account, nonce)
    }
    fn error_body_now(&self, account: &str, rejection: &Rejection) -> Option<ErrorBody> {
        (**self).error_body_now(account, rejection)
    }
}
