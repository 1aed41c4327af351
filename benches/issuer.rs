//! `NonceIssuer` against a Pebble-style baseline, in the same groups: the
//! baseline issues 16 random bytes (base64url) and keeps every issued nonce in
//! a `Mutex<HashSet<String>>` (insert on issue, remove on redeem).
//!
//! - `issue_redeem/{1,2}_threads`: one issue + one redeem per element; with 2
//!   threads the throughput is aggregate.
//! - printed first: heap held after issuing 10 000 000 nonces and redeeming none.
//!
//! `cargo bench --bench issuer`

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use monotonic_nonce::{acme::BadNonce, NonceIssuer};
use parking_lot::Mutex;
use std::collections::HashSet;
use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// What Pebble does: random nonces, every one kept until redeemed.
#[derive(Default)]
struct Pebble {
    issued: Mutex<HashSet<String>>,
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

impl Pebble {
    fn issue(&self) -> String {
        let mut raw = [0u8; 16];
        getrandom::fill(&mut raw).unwrap();
        // base64url of 16 bytes: 22 characters (6 bits each, the last one short)
        let bits = u128::from_be_bytes(raw);
        let sextet = |i: u32| {
            let end = 6 * (i + 1); // bits 0..end of the 128, most significant first
            let v = if end <= 128 { bits >> (128 - end) } else { bits << (end - 128) };
            ALPHABET[(v & 63) as usize] as char
        };
        let nonce: String = (0..22).map(sextet).collect();
        self.issued.lock().insert(nonce.clone());
        nonce
    }

    fn redeem(&self, nonce: &str) -> bool {
        self.issued.lock().remove(nonce)
    }

    fn heap_bytes(&self) -> usize {
        let set = self.issued.lock();
        set.capacity() * (std::mem::size_of::<String>() + 1) + set.iter().map(String::capacity).sum::<usize>()
    }
}

trait Target: Sync {
    fn round(&self);
}

impl Target for NonceIssuer {
    fn round(&self) {
        let n = self.issue();
        match self.redeem(black_box(&n)) {
            // a thread descheduled (for ~5 ms) while the other issues more than
            // the window's 65 536 nonces finds its own nonce aged out: the rule
            Ok(()) | Err(BadNonce::TooOld) => {}
            Err(e) => panic!("{e:?} for {n}, just issued"),
        }
    }
}

impl Target for Pebble {
    fn round(&self) {
        let n = self.issue();
        assert!(self.redeem(black_box(&n)));
    }
}

/// `iters` rounds split over `threads`, timed from a common start.
fn run(target: &dyn Target, threads: usize, iters: u64) -> Duration {
    let barrier = Barrier::new(threads);
    let per = iters.div_ceil(threads as u64);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let t = Instant::now();
                    for _ in 0..per {
                        target.round();
                    }
                    t.elapsed()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).max().unwrap()
    })
}

fn memory() {
    const N: usize = 10_000_000;
    let ours = NonceIssuer::new();
    let pebble = Pebble::default();
    for _ in 0..N {
        black_box(ours.issue());
        black_box(pebble.issue());
    }
    println!(
        "heap after issuing {N} nonces, none redeemed: NonceIssuer {} B, Pebble-style baseline {} B ({:.0} MB)",
        ours.heap_bytes(),
        pebble.heap_bytes(),
        pebble.heap_bytes() as f64 / 1e6
    );
}

fn issue_redeem(c: &mut Criterion) {
    memory();
    let mut g = c.benchmark_group("issue_redeem");
    g.throughput(Throughput::Elements(1));
    for threads in [1usize, 2] {
        let ours = NonceIssuer::new();
        let pebble = Pebble::default();
        g.bench_with_input(BenchmarkId::new("nonce_issuer", threads), &threads, |b, &t| {
            b.iter_custom(|iters| run(&ours, t, iters))
        });
        g.bench_with_input(BenchmarkId::new("pebble_baseline", threads), &threads, |b, &t| {
            b.iter_custom(|iters| run(&pebble, t, iters))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = issue_redeem
}
criterion_main!(benches);
