//! `NonceIssuer::redeem` on arbitrary strings and on mutated real nonces:
//! nothing that was not issued is ever accepted, and each issued nonce is
//! accepted at most once.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use monotonic_nonce::NonceIssuer;
use std::collections::HashSet;

#[derive(Debug, Arbitrary)]
enum Step {
    Issue,
    /// Redeem the i-th issued nonce as it is.
    Redeem(u8),
    /// Redeem the i-th issued nonce with one byte replaced.
    Mutate(u8, u8, u8),
    /// Redeem the i-th issued nonce cut at a length.
    Cut(u8, u8),
    /// Redeem arbitrary text.
    Text(String),
}

#[derive(Debug, Arbitrary)]
struct Input {
    /// Below 2 048 counters come one at a time, from 2 048 in runs.
    window: u16,
    prefixed: bool,
    steps: Vec<Step>,
}

fuzz_target!(|input: Input| {
    let mut builder = NonceIssuer::builder().window(u64::from(input.window).max(1));
    if input.prefixed {
        builder = builder.prefix("fuzz-_01");
    }
    let issuer = builder.build().unwrap();
    let mut issued: Vec<String> = Vec::new();
    let known: &mut HashSet<String> = &mut HashSet::new();
    let mut accepted: HashSet<String> = HashSet::new();
    let mut check = |text: &str, issued_set: &HashSet<String>| {
        if issuer.redeem(text).is_ok() {
            assert!(issued_set.contains(text), "accepted a nonce that was never issued: {text:?}");
            assert!(accepted.insert(text.to_owned()), "accepted twice: {text:?}");
        }
    };
    for step in input.steps {
        match step {
            Step::Issue => {
                let n = issuer.issue();
                known.insert(n.clone());
                issued.push(n);
            }
            Step::Redeem(i) if !issued.is_empty() => check(&issued[i as usize % issued.len()].clone(), known),
            Step::Mutate(i, at, byte) if !issued.is_empty() => {
                let mut b = issued[i as usize % issued.len()].clone().into_bytes();
                let at = at as usize % b.len();
                b[at] = byte;
                let text = String::from_utf8_lossy(&b).into_owned();
                check(&text, known);
            }
            Step::Cut(i, len) if !issued.is_empty() => {
                let n = &issued[i as usize % issued.len()];
                let cut: String = n.chars().take(len as usize).collect();
                check(&cut, known);
            }
            Step::Text(t) => check(&t, known),
            _ => {}
        }
    }
});
