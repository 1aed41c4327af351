//! The validators as tower middleware (feature `tower`): [`NonceLayer`] for
//! axum, tonic, tower-http or any stack built on `tower::Service` with
//! `http` requests, over the in-memory [`NonceValidator`](crate::NonceValidator)
//! or the shared `RedisValidator` (feature `redis`) alike
//! (both are an [`AsyncValidator`](crate::rules::AsyncValidator)).
//!
//! # The order of the checks
//! Recording a nonce before its signature is verified lets anyone burn a
//! victim's next nonces with forged requests; recording it only after loses
//! the cheap early refusal. The stack therefore has three steps, outermost first:
//!
//! 1. [`NonceLayer::pre_check`] reads the account and nonce from the raw
//!    request (a [`HeaderPair`] or a [`QueryParam`]) and refuses what the
//!    validator would refuse now, recording nothing.
//! 2. The application's signature layer verifies the request and inserts
//!    [`Verified`] into its extensions.
//! 3. [`NonceLayer::new`] records the verified nonce (the one atomic
//!    `validate`) and hands the handler an [`Accepted`] extension. Without a
//!    `Verified` extension it refuses with 500 and records nothing: a stack
//!    missing step 2 fails closed.
//!
//! With axum, layers added later run first, so the three steps are added in
//! reverse: `.layer(NonceLayer::new(v.clone())).layer(signature).layer(NonceLayer::pre_check(v, source))`.
//!
//! # Responses
//! A refusal becomes the crate's JSON [`ErrorBody`](crate::protocol::ErrorBody)
//! with `Content-Type: application/json` through [`JsonErrors`], or any
//! [`ErrorHandler`]: 400 for a nonce problem or unreadable input, 503 with
//! `Retry-After` when the store could not answer (nothing was accepted),
//! 500 when the server clock failed or nothing verified the request.
//!
//! ```
//! use axum::{routing::post, Router};
//! use monotonic_nonce::gateway::{HeaderPair, NonceLayer};
//! use monotonic_nonce::{NonceValidator, Policy};
//! use std::sync::Arc;
//!
//! # fn signature_layer() -> tower::layer::util::Identity { tower::layer::util::Identity::new() }
//! let validator = Arc::new(NonceValidator::<String>::new(Policy::HighestK(20)));
//! let app: Router = Router::new()
//!     .route("/order", post(|| async { "ok" }))
//!     .layer(NonceLayer::new(validator.clone())) // 3: records what step 2 verified
//!     .layer(signature_layer()) // 2: yours; inserts `Verified`
//!     .layer(NonceLayer::pre_check(validator, HeaderPair::new("x-api-key", "x-nonce"))); // 1
//! ```
//!
//! `examples/axum_gateway.rs` is a complete gateway: HMAC-signed requests,
//! both layers, either validator, and a Prometheus endpoint.

mod layer;
mod refusal;
mod source;

pub use layer::{Accepted, NonceLayer, NonceService, ResponseFuture};
pub use refusal::{BadInput, ErrorHandler, JsonErrors, Refusal};
pub use source::{parse_nonce, FromVerified, HeaderPair, NonceSource, QueryParam, Verified, DEFAULT_MAX_ACCOUNT_LEN};
