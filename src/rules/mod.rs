//! What both validators stand on: the [`Policy`], the time bounds and
//! ceiling checked before any account state ([`TimeBounds`]), the verdicts'
//! counters ([`Stats`]), and the error body a server writes for a
//! [`Rejection`](crate::Rejection), and [`AsyncValidator`], the one interface
//! over both. The in-memory and the Redis validator
//! import these; neither imports the other, nor the client side.

mod async_validator;
mod body;
mod bounds;
mod policy;
mod stats;

pub use async_validator::AsyncValidator;
pub use body::error_body;
pub(crate) use bounds::Limits;
pub use bounds::TimeBounds;
pub use policy::{Policy, MAX_HIGHEST_K, MAX_WINDOW};
pub use stats::Stats;
