//! Four threads share one manager; every nonce is unique and increasing per thread.
//! `cargo run --release --example quickstart`

use monotonic_nonce::{strategy::JS_SAFE_MAX, NonceManager, Strategy};
use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manager = Arc::new(NonceManager::builder().strategy(Strategy::Millis).ceiling(JS_SAFE_MAX).build()?);
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let m = Arc::clone(&manager);
            std::thread::spawn(move || (0..250_000).map(|_| m.next()).collect::<Result<Vec<u64>, _>>())
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        let mine = w.join().map_err(|_| "worker panicked")??;
        assert!(mine.windows(2).all(|p| p[0] < p[1]));
        all.extend(mine);
    }
    let total = all.len();
    all.sort_unstable();
    all.dedup();
    let now = monotonic_nonce::Clock::now_ms(&monotonic_nonce::SystemClock)?;
    println!("{total} nonces from 4 threads, {} distinct", all.len());
    println!("last nonce {} is {} ms ahead of the clock", manager.last(), manager.last().saturating_sub(now));
    // A server said "nonce too low, lastNonce = last + 10 000": move past it.
    manager.advance_past(manager.last() + 10_000)?;
    println!("after advance_past: next = {}", manager.next()?);
    if all.len() != total {
        return Err("duplicate nonces".into());
    }
    Ok(())
}
