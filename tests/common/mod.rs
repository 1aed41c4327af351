#[cfg(feature = "tower")]
pub mod http_gateway;
pub mod model;
#[cfg(feature = "redis")]
pub mod proxy;
#[cfg(feature = "redis")]
pub mod redis_server;
