//! Many threads on one manager: every value distinct, strictly increasing per thread.

use monotonic_nonce::{clock::ManualClock, NonceManager, Strategy};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const THREADS: usize = 8;
const OPS: usize = 100_000;

/// Runs 8 threads x 100 000 mixed `next()` / `reserve(1..=16)` calls and
/// checks every value handed out is distinct and each thread's are increasing.
fn hammer<C: monotonic_nonce::Clock>(manager: Arc<NonceManager<C>>) -> Vec<u64> {
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let m = Arc::clone(&manager);
            std::thread::spawn(move || {
                let mut mine = Vec::with_capacity(OPS * 2);
                for i in 0..OPS {
                    if (i + t) % 7 == 0 {
                        let batch = m.reserve(1 + (i % 16) as u64).expect("reserve");
                        mine.extend(batch);
                    } else {
                        mine.push(m.next().expect("next"));
                    }
                }
                mine
            })
        })
        .collect();
    let mut all = Vec::new();
    for w in workers {
        let mine = w.join().expect("worker panicked");
        assert!(mine.windows(2).all(|p| p[0] < p[1]), "a thread saw its nonces go down or repeat");
        all.extend(mine);
    }
    let max = *all.iter().max().expect("values");
    assert_eq!(manager.last(), max, "last() is the highest value handed out");
    let total = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), total, "{} duplicate nonces", total - all.len());
    all
}

#[test]
fn eight_threads_mixed_next_and_reserve_never_collide_system_clock() {
    hammer(Arc::new(NonceManager::new()));
}

#[test]
fn eight_threads_never_collide_while_the_clock_jumps_around() {
    let clock = ManualClock::new(1_704_067_200_000);
    let manager = Arc::new(
        NonceManager::builder()
            .strategy(Strategy::Hft { counter_digits: 3 })
            .clock(clock.clone())
            .build()
            .expect("valid"),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let jiggler = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // forward, backward by an hour, failing, recovering
                match i % 4 {
                    0 => {
                        clock.advance(7);
                    }
                    1 => clock.set(1_704_067_200_000 - 3_600_000),
                    2 => clock.set_failing(true),
                    _ => {
                        clock.set_failing(false);
                        clock.set(1_704_067_200_000 + i);
                    }
                }
                i += 1;
                std::thread::yield_now();
            }
        })
    };
    hammer(Arc::clone(&manager));
    stop.store(true, Ordering::Relaxed);
    jiggler.join().expect("jiggler");
}
