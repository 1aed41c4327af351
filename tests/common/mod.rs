pub mod model;
#[cfg(feature = "redis")]
pub mod redis_server;
