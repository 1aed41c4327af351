//! The RFC 6479 ring alone against a `BTreeSet` of every accepted nonce; for
//! widths up to 64 the inline ring too, which must agree with the boxed one;
//! and a third window fed by `admit`, which must stay equal to the one fed by
//! `check` then `record`.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use monotonic_nonce::fuzzing::{ring_words, Boxed, Inline, Window, WindowVerdict};
use std::collections::BTreeSet;

#[derive(Debug, Arbitrary)]
enum Move {
    /// Just above the highest: the dense path that needs no ring.
    Next,
    Ahead(u16),
    Behind(u16),
    /// Anywhere, including far past the ring and near `u64::MAX`.
    Absolute(u64),
}

#[derive(Debug, Arbitrary)]
struct Input {
    width: u16,
    wide: bool,
    moves: Vec<(Move, bool)>,
}

/// The accepted values inside the window below the highest.
fn inside(seen: &BTreeSet<u64>, w: u64) -> Vec<u64> {
    let top = seen.last().copied().unwrap_or(0);
    seen.range(top.saturating_sub(w).max(1)..).copied().collect()
}

fuzz_target!(|input: Input| {
    let w = if input.wide { 8128 } else { u64::from(input.width % 520) + 1 };
    let mut win = Window::<Boxed>::new();
    let mut inline = Window::<Inline<2>>::new();
    let mut admitted = Window::<Boxed>::new();
    let mut seen = BTreeSet::new();
    for (mv, record) in &input.moves {
        let highest: Option<u64> = seen.last().copied();
        let anchor = highest.unwrap_or(1_000);
        let n = match *mv {
            Move::Next => anchor.saturating_add(1),
            Move::Ahead(d) => anchor.saturating_add(u64::from(d)),
            Move::Behind(d) => anchor.saturating_sub(u64::from(d)),
            Move::Absolute(n) => n,
        }
        .max(1); // the ring only ever sees positive nonces
        let expected = match highest {
            Some(h) if n <= h && h - n > w => Err(WindowVerdict::TooLow),
            Some(h) if n <= h && seen.contains(&n) => Err(WindowVerdict::Seen),
            _ => Ok(()),
        };
        assert_eq!(win.check(n, w), expected, "w {w} highest {highest:?} n {n}");
        if w <= 64 {
            assert_eq!(inline.check(n, w), expected, "inline: w {w} highest {highest:?} n {n}");
        }
        if *record {
            assert_eq!(admitted.admit(n, w), expected, "admit: w {w} highest {highest:?} n {n}");
        }
        if *record && expected.is_ok() {
            win.record(n, w);
            if w <= 64 {
                inline.record(n, w);
                assert_eq!(inline.seen(w), win.seen(w));
            }
            seen.insert(n);
        }
        assert_eq!(win.highest(), seen.last().copied());
        assert!(admitted == win, "admit and check + record disagree: w {w} n {n}");
        // what the window still refuses is exactly the accepted values inside it
        // (listing a wide window costs O(w): checked at the end only)
        if w <= 600 {
            assert_eq!(win.seen(w), inside(&seen, w));
        }
        assert!(win.ring_len() == 0 || win.ring_len() == ring_words(w));
    }
    assert_eq!(win.seen(w), inside(&seen, w));
});
