//! Every integration test that needs nothing outside Rust, in one test
//! binary (one link instead of twelve), a module per capability. The loom
//! models (`tests/loom_*.rs`, built with `--cfg loom`) and the Redis suites
//! (`tests/redis.rs`, `tests/redis_seams.rs`, which need a server) are their
//! own binaries.

#[path = "../common/mod.rs"]
mod common;

mod concurrency;
#[cfg(unix)]
mod crash;
#[cfg(feature = "tower")]
mod gateway;
mod issuer;
mod manager;
mod manager_props;
#[cfg(feature = "reqwest")]
mod middleware;
mod persist;
#[cfg(feature = "serde")]
mod protocol;
mod recovery;
mod snapshot;
mod validator;
mod validator_props;
mod validator_stress;
#[cfg(feature = "serde")]
mod venues;
