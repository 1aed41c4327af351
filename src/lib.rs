#![doc = include_str!("../README.md")]
//!
//! # Atomic orderings
//! The manager's state is one `AtomicU64`, `last`. Uniqueness and per-thread
//! monotonicity follow from the single modification order of that one atomic
//! (every update is a read-modify-write), so all its operations are `Relaxed`:
//! no other memory is published through it. The validator's account state
//! lives under its shards' mutexes; its one atomic, the eviction floor, is
//! raised and read under the lock of the shard that holds the evicted key.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod atomic_file;
mod batch;
mod clock;
mod error;
mod issuer;
mod manager;
mod persist;
pub mod protocol;
mod recovery;
#[cfg(feature = "redis")]
mod redis;
mod strategy;
mod sync;
mod validator;

pub use batch::{NonceBatch, NonceBatchIter};
pub use clock::{Clock, CoarseClock, ManualClock, OffsetClock, SystemClock};
#[cfg(feature = "serde")]
pub use error::SnapshotError;
pub use error::{BuildError, ClockError, NonceError, PersistError, Rejection};
pub use issuer::{
    retry_bad_nonce, retry_bad_nonce_async, BadNonce, Classified, NonceIssuer, NonceIssuerBuilder, ReplayNonces,
    DEFAULT_ISSUER_WINDOW,
};
pub use manager::{HistoryEntry, NonceManager, NonceManagerBuilder};
#[cfg(feature = "serde")]
pub use protocol::serde_str;
pub use recovery::{retry_with_nonce, retry_with_nonce_async, NonceFeedback, RetryError, RetryPolicy};
#[cfg(feature = "redis")]
pub use redis::{BlockingRedisValidator, RedisValidator, RedisValidatorBuilder, MAX_ACCOUNT_LEN};
pub use strategy::{Strategy, TimeScale, I64_MAX, JS_SAFE_MAX};
pub use validator::{
    AccountSnapshot, DefaultHashBuilder, NonceValidator, NonceValidatorBuilder, Policy, StateSnapshot, Stats,
    ValidatorSnapshot, MAX_HIGHEST_K, MAX_SHARDS, MAX_WINDOW, SNAPSHOT_VERSION,
};

/// Internals for the fuzz crate (`fuzz/`), compiled only when cargo-fuzz sets
/// `--cfg fuzzing`. Not part of the public API.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::validator::window::{ring_words, Boxed, Inline, Window, WindowVerdict};
}
