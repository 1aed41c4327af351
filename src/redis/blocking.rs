//! [`BlockingRedisValidator`]: [`RedisValidator`] for gateways without an
//! async runtime. A thin shell: it owns a one-worker tokio runtime (which
//! drives the connection) and blocks the calling thread on each call.

use super::{RedisValidator, RedisValidatorBuilder};
use crate::clock::{Clock, SystemClock};
use crate::error::{BuildError, Rejection};
use crate::rules::{Policy, Stats};
use std::fmt;
use std::sync::Arc;

/// [`RedisValidator`] with blocking methods: the same rules, store and
/// guarantees, for threads outside any async runtime. Clones share the
/// runtime and the connection; any number of threads may call at once.
///
/// # Panics
/// Each call blocks the calling thread: calling one from inside an async
/// runtime panics (use [`as_async`](Self::as_async) there), as does dropping
/// the last clone there.
///
/// ```no_run
/// use monotonic_nonce::{Policy, RedisValidator};
/// let v = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379").accept_durability_risk().build_blocking()?;
/// v.validate("api-key-1", 1_704_067_200_000)?;
/// assert!(v.validate("api-key-1", 1_704_067_200_000).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub struct BlockingRedisValidator<C: Clock = SystemClock> {
    runtime: Arc<tokio::runtime::Runtime>,
    validator: RedisValidator<C>,
}

impl<C: Clock> Clone for BlockingRedisValidator<C> {
    fn clone(&self) -> Self {
        Self { runtime: Arc::clone(&self.runtime), validator: self.validator.clone() }
    }
}

impl<C: Clock> fmt::Debug for BlockingRedisValidator<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingRedisValidator").field("validator", &self.validator).finish_non_exhaustive()
    }
}

impl<C: Clock> RedisValidatorBuilder<C> {
    /// [`build`](Self::build), for a caller outside any async runtime: starts
    /// a one-worker tokio runtime for the connection and builds on it.
    ///
    /// # Errors
    /// As [`build`](Self::build); [`BuildError::Store`] if the runtime cannot start.
    ///
    /// ```no_run
    /// use monotonic_nonce::{Policy, RedisValidator};
    /// let v = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379").accept_durability_risk().build_blocking()?;
    /// # let _ = v;
    /// # Ok::<(), monotonic_nonce::BuildError>(())
    /// ```
    pub fn build_blocking(self) -> Result<BlockingRedisValidator<C>, BuildError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("monotonic-nonce-redis")
            .enable_all()
            .build()
            .map_err(|e| BuildError::Store { reason: format!("cannot start the blocking client's runtime: {e}") })?;
        let validator = runtime.block_on(self.build())?;
        Ok(BlockingRedisValidator { runtime: Arc::new(runtime), validator })
    }
}

impl<C: Clock> BlockingRedisValidator<C> {
    /// [`RedisValidator::validate`], blocking.
    ///
    /// # Errors
    /// As [`RedisValidator::validate`].
    ///
    /// ```no_run
    /// # use monotonic_nonce::{Policy, RedisValidator};
    /// # let v = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379").accept_durability_risk().build_blocking()?;
    /// v.validate("api-key-1", 7)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn validate(&self, account: impl AsRef<[u8]>, nonce: u64) -> Result<(), Rejection> {
        self.runtime.block_on(self.validator.validate(account, nonce))
    }

    /// [`RedisValidator::check`], blocking.
    ///
    /// # Errors
    /// As [`RedisValidator::check`].
    ///
    /// ```no_run
    /// # use monotonic_nonce::{Policy, RedisValidator};
    /// # let v = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379").accept_durability_risk().build_blocking()?;
    /// v.check("api-key-1", 8)?; // records nothing
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check(&self, account: impl AsRef<[u8]>, nonce: u64) -> Result<(), Rejection> {
        self.runtime.block_on(self.validator.check(account, nonce))
    }

    /// [`RedisValidator::validate_many`], blocking.
    ///
    /// ```no_run
    /// # use monotonic_nonce::{Policy, RedisValidator};
    /// # let v = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379").accept_durability_risk().build_blocking()?;
    /// let verdicts = v.validate_many(&[("a", 5u64), ("a", 5)]);
    /// assert!(verdicts[0].is_ok() && verdicts[1].is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn validate_many<A: AsRef<[u8]>>(&self, batch: &[(A, u64)]) -> Vec<Result<(), Rejection>> {
        self.runtime.block_on(self.validator.validate_many(batch))
    }

    /// [`RedisValidator::last_nonce`], blocking.
    ///
    /// # Errors
    /// As [`RedisValidator::last_nonce`].
    ///
    /// ```no_run
    /// # use monotonic_nonce::{Policy, RedisValidator};
    /// # let v = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379").accept_durability_risk().build_blocking()?;
    /// v.validate("k", 7)?;
    /// assert_eq!(v.last_nonce("k")?, Some(7));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn last_nonce(&self, account: impl AsRef<[u8]>) -> Result<Option<u64>, Rejection> {
        self.runtime.block_on(self.validator.last_nonce(account))
    }

    /// [`RedisValidator::ping`], blocking.
    ///
    /// # Errors
    /// As [`RedisValidator::ping`].
    ///
    /// ```no_run
    /// # use monotonic_nonce::{Policy, RedisValidator};
    /// # let v = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379").accept_durability_risk().build_blocking()?;
    /// v.ping()?; // ready
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ping(&self) -> Result<(), Rejection> {
        self.runtime.block_on(self.validator.ping())
    }

    /// [`RedisValidator::stats`].
    ///
    /// ```no_run
    /// # use monotonic_nonce::{Policy, RedisValidator};
    /// # let v = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379").accept_durability_risk().build_blocking()?;
    /// v.validate("k", 1)?;
    /// assert_eq!(v.stats().accepted, 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> Stats {
        self.validator.stats()
    }

    /// [`RedisValidator::policy`].
    ///
    /// ```no_run
    /// # use monotonic_nonce::{Policy, RedisValidator};
    /// # let v = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379").accept_durability_risk().build_blocking()?;
    /// assert_eq!(v.policy(), Policy::Strict);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn policy(&self) -> Policy {
        self.validator.policy()
    }

    /// The async validator inside (it shares the connection), for code that
    /// runs in an async runtime.
    ///
    /// ```no_run
    /// # use monotonic_nonce::{Policy, RedisValidator};
    /// # let v = RedisValidator::builder(Policy::Strict).url("redis://127.0.0.1:6379").accept_durability_risk().build_blocking()?;
    /// let shared = v.as_async().clone(); // for code inside an async runtime
    /// # drop(shared);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn as_async(&self) -> &RedisValidator<C> {
        &self.validator
    }
}
