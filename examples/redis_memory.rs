//! Memory per account on Redis: `MEMORY USAGE` of one account's key after 20
//! nonces, for each policy, beside the per-nonce-key approach of gateway
//! replay plugins (`SET {nonce} 1 NX PX`, one key per nonce).
//!
//! Starts its own `redis-server` on a free port (needs `redis-server` on the PATH).
//! `cargo run --release --features redis --example redis_memory`

#[path = "../tests/common/redis_server.rs"]
mod redis_server;

use monotonic_nonce::{Policy, RedisValidator};
use redis_server::RedisServer;

const T0: u64 = 1_704_067_200_000;
const ACCOUNTS: u64 = 1_000;

fn used_memory(server: &RedisServer) -> u64 {
    let info = server.cli(&["INFO", "memory"]);
    info.lines().find_map(|l| l.strip_prefix("used_memory:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = RedisServer::start(&["--appendfsync", "always"]);
    println!("| approach | `MEMORY USAGE` of one account after 20 nonces | used_memory growth per account ({ACCOUNTS} accounts) |");
    println!("|---|---:|---:|");
    for (name, policy, reordered) in [
        ("Strict", Policy::Strict, false),
        ("HighestK(20)", Policy::HighestK(20), true),
        ("Window(64), in order", Policy::Window(64), false),
        ("Window(64), reordered", Policy::Window(64), true),
        ("Window(8128), reordered", Policy::Window(8_128), true),
    ] {
        let prefix = name.replace(['(', ')', ' ', ','], "");
        let v = RedisValidator::builder(policy).url(&server.url()).key_prefix(&prefix).build().await?;
        let before = used_memory(&server);
        for a in 0..ACCOUNTS {
            for i in 0..20u64 {
                // reordered: pairs swapped, 2, 1, 4, 3, ...
                let n = if reordered { T0 + (i ^ 1) } else { T0 + i };
                v.validate(a.to_be_bytes(), n).await?;
            }
        }
        let per_account = (used_memory(&server) - before) / ACCOUNTS;
        let mut key = format!("{{{prefix}:").into_bytes();
        key.extend_from_slice(&0u64.to_be_bytes());
        key.push(b'}');
        let mut con = redis::Client::open(server.url())?.get_multiplexed_async_connection().await?;
        let usage: u64 = redis::cmd("MEMORY").arg("USAGE").arg(&key).query_async(&mut con).await?;
        println!("| {name} | {usage} B | {per_account} B |");
    }
    // the per-nonce-key approach: one key per nonce, with a TTL
    let mut con = redis::Client::open(server.url())?.get_multiplexed_async_connection().await?;
    let before = used_memory(&server);
    let mut one = 0u64;
    for a in 0..ACCOUNTS {
        let mut pipe = redis::pipe();
        for i in 0..20u64 {
            pipe.cmd("SET").arg(format!("nx:{a}:{}", T0 + i)).arg(1).arg("NX").arg("PX").arg(900_000);
        }
        let _: Vec<redis::Value> = pipe.query_async(&mut con).await?;
    }
    for i in 0..20u64 {
        let u: u64 = redis::cmd("MEMORY").arg("USAGE").arg(format!("nx:0:{}", T0 + i)).query_async(&mut con).await?;
        one += u;
    }
    let per_account = (used_memory(&server) - before) / ACCOUNTS;
    println!("| per-nonce keys (`SET NX PX`, 20 keys) | {one} B (sum of 20 keys) | {per_account} B |");
    Ok(())
}
