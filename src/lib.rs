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

pub mod acme;
mod atomic_file;
pub mod client;
pub mod clock;
mod error;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod gateway;
pub mod protocol;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;
pub mod rules;
pub mod strategy;
mod sync;
pub mod telemetry;
pub mod validator;

// The headline names, the ones a user types first; everything else is in its module.
#[doc(no_inline)]
pub use acme::NonceIssuer;
#[doc(no_inline)]
pub use client::NonceManager;
#[doc(no_inline)]
pub use clock::{Clock, SystemClock};
pub use error::{BuildError, NonceError, Rejection};
#[cfg(feature = "redis")]
#[doc(no_inline)]
pub use redis::RedisValidator;
#[doc(no_inline)]
pub use rules::Policy;
#[doc(no_inline)]
pub use strategy::Strategy;
#[doc(no_inline)]
pub use validator::NonceValidator;

/// Internals for the fuzz crate (`fuzz/`), compiled only when cargo-fuzz sets
/// `--cfg fuzzing`. Not part of the public API.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::validator::window::{ring_words, Boxed, Inline, Window, WindowVerdict};
}
