//! The bot's side: nonces for the requests it signs.
//!
//! [`NonceManager`] hands out strictly increasing nonces
//! from any number of threads with one compare-exchange (the formula in
//! `formula.rs`); [`NonceManagerBuilder`] configures it, including the
//! durable mark (`persist`, whose protocol is in `persist.rs`). Around it:
//! slots of a bot fleet leased from Redis (`SlotLease`, feature `redis`),
//! batches ([`NonceBatch`]), what a server said about a refused nonce
//! ([`NonceFeedback`]), the bounded retry ([`retry_with_nonce`]), and a clock
//! that follows the server's ([`OffsetClock`]).

pub(crate) mod batch;
mod feedback;
pub(crate) mod formula;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub(crate) mod lease;
mod manager;
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
mod middleware;
mod offset_clock;
pub(crate) mod persist;
mod recovery;
#[cfg(feature = "serde")]
mod venues;

pub use crate::error::PersistError;
pub use batch::{NonceBatch, NonceBatchIter};
pub use feedback::NonceFeedback;
#[cfg(feature = "redis")]
pub use lease::{SlotLease, SlotLeaseBuilder};
pub use manager::{HistoryEntry, NonceManager, NonceManagerBuilder};
#[cfg(feature = "reqwest")]
pub use middleware::{NonceMiddleware, Refused, SignError, Signer, SigningFailed};
pub use offset_clock::OffsetClock;
pub use recovery::{retry_with_nonce, retry_with_nonce_async, RetryError, RetryPolicy};
