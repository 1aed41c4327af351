//! Strictly increasing nonces for signed API requests, generated lock-free,
//! and (server side) accepted at most once.
//!
//! An exchange's private API wants every signed request to carry a positive
//! integer nonce, strictly greater than the last one it saw for the key,
//! usually the Unix time in milliseconds. [`NonceManager`] produces them
//! from any number of threads with a single compare-exchange, whatever the
//! clock does.
//!
//! # Quickstart
//! ```
//! use monotonic_nonce::{NonceManager, Strategy, JS_SAFE_MAX};
//! use std::sync::Arc;
//!
//! let manager = Arc::new(
//!     NonceManager::builder()
//!         .strategy(Strategy::Millis)
//!         .ceiling(JS_SAFE_MAX) // the API's clients read JSON numbers as doubles
//!         .build()?,
//! );
//! let workers: Vec<_> = (0..4)
//!     .map(|_| {
//!         let m = Arc::clone(&manager);
//!         std::thread::spawn(move || (0..100).map(|_| m.next()).collect::<Result<Vec<_>, _>>())
//!     })
//!     .collect();
//! let mut all = Vec::new();
//! for w in workers {
//!     let nonces = w.join().expect("worker panicked")?;
//!     assert!(nonces.windows(2).all(|p| p[0] < p[1])); // increasing per thread
//!     all.extend(nonces);
//! }
//! all.sort_unstable();
//! all.dedup();
//! assert_eq!(all.len(), 400); // unique across threads
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Strategies
//! Every strategy is the one formula `max(now_ms * scale + offset, last + step)`:
//!
//! | [`Strategy`] | scale | offset | step | use it when |
//! |---|---|---|---|---|
//! | `Millis` | 1 | 0 | 1 | one process per API key (the exchange default) |
//! | `Distributed { system_id, total_systems }` | total | id | total | several processes share one key |
//! | `Hft { counter_digits: d }` | 10^d | 0 | 1 | more than ~1 000 requests/s on one key |
//!
//! # Guarantees
//! - Unique and strictly increasing per thread across all threads, whatever
//!   the clock does; a failing clock is carried over from `last`.
//! - Never above the ceiling, never wrapping: [`NonceError::Overflow`] instead.
//! - `reserve(n)` moves `last` past the whole batch in one compare-exchange.
//!
//! # Server side
//! [`NonceValidator`] accepts each `(account, nonce)` at most once under a
//! [`Policy`]: `Strict` (`n > last`), `HighestK(k)` (Hyperliquid's rule) or
//! `Window(w)` (the RFC 6479 anti-replay window), with optional time bounds
//! that stop a single huge nonce from locking an account, and an optional
//! bound on the accounts tracked whose evictions raise a floor, so they never
//! reopen a replay.
//!
//! ```
//! use monotonic_nonce::{NonceValidator, Policy, Rejection};
//! let v = NonceValidator::new(Policy::HighestK(8));
//! v.validate(&"key", 102)?;
//! v.validate(&"key", 101)?; // arrived out of order: accepted
//! assert!(matches!(v.validate(&"key", 101), Err(Rejection::AlreadyUsed { .. })));
//! # Ok::<(), Rejection>(())
//! ```
//!
//! # Several gateways, and server-issued nonces
//! `RedisValidator` (feature `redis`) puts the same rules on Redis, one node
//! or a cluster, so a request replayed to another gateway behind the same load
//! balancer is refused too; it fails closed and survives Redis restarts with
//! a guard. [`NonceIssuer`] is the other model (ACME, RFC 8555): the server
//! issues each nonce and accepts it once; [`ReplayNonces`] and
//! [`retry_bad_nonce`] are its client side.
//!
//! # Restarts and recovery
//! [`NonceManagerBuilder::persist`] keeps a durable high-water mark so a
//! restarted bot never reuses a nonce; [`NonceValidator::snapshot`] and
//! [`NonceValidatorBuilder::restore`] carry a gateway's state across restarts,
//! with a cold-start guard. On the client, [`retry_with_nonce`] applies the
//! server's [`NonceFeedback`] and retries a bounded number of times;
//! [`OffsetClock`] follows the server's clock; `max_lead` refuses nonces the
//! exchange's future bound would reject.
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
