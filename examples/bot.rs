//! A trading bot's nonce handling, to copy from: one `NonceManager` shared by
//! every thread that signs requests for an API key, and `retry_with_nonce` to
//! recover from the exchange's "nonce too low" answers.
//!
//! `cargo run --example bot`
//!
//! The "exchange" here is an in-process `NonceValidator`; replace `send` with
//! your signed HTTP call and `classify` with a parse of its error body
//! (`NonceFeedback::from_json` with the `serde` feature).

use monotonic_nonce::{
    client::{retry_with_nonce, NonceFeedback, RetryError, RetryPolicy},
    NonceManager, NonceValidator, Policy, Rejection,
};
use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let exchange = Arc::new(NonceValidator::<&str>::new(Policy::HighestK(20)));
    // One manager per API key, shared by every thread (it is lock-free).
    let manager = Arc::new(NonceManager::builder().history(16).build()?);

    // Another process used this key a minute ahead of us (a restarted bot, a second machine).
    exchange.validate(&"key-1", manager.next()? + 60_000).map_err(|e| e.to_string())?;

    let workers: Vec<_> = (0..4)
        .map(|id| {
            let (manager, exchange) = (Arc::clone(&manager), Arc::clone(&exchange));
            std::thread::spawn(move || -> Result<u32, RetryError<Rejection>> {
                let mut retries = 0;
                for _ in 0..250 {
                    let send = |nonce: u64| exchange.validate(&"key-1", nonce);
                    let classify = |e: &Rejection| Some(NonceFeedback::from(e));
                    let mut attempts = 0;
                    retry_with_nonce(
                        &manager,
                        RetryPolicy::default(),
                        |n| {
                            attempts += 1;
                            send(n)
                        },
                        classify,
                    )?;
                    retries += attempts - 1;
                }
                println!("thread {id}: 250 orders accepted, {retries} retried");
                Ok(retries)
            })
        })
        .collect();
    let mut retried = 0;
    for w in workers {
        retried += w.join().expect("worker panicked")?;
    }
    println!("1000 orders accepted in all; {retried} needed a retry after the exchange reported a higher lastNonce");
    println!("last nonce {}, {} ms ahead of the clock", manager.last(), manager.lead_ms());
    if let Some(e) = manager.history().last() {
        println!("newest history entry: nonce {} at clock {} from {}", e.nonce, e.clock_ms, e.location);
    }
    Ok(())
}
