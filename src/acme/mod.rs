//! Server-issued nonces, the ACME way (RFC 8555 §6.5, §7.2): [`NonceIssuer`]
//! hands out a fresh nonce with every response (`Replay-Nonce`) and accepts
//! each once; on the client, [`ReplayNonces`] keeps the fresh ones and
//! [`retry_bad_nonce`] repeats only the request that failed with `badNonce`.
//!
//! See [`NonceIssuer`] for how a nonce is made and checked.
//!
//! ## How a nonce is made
//! `prefix || base64url(counter || issued_ms || tag)`, 32 characters after the
//! prefix (43 with `max_age`: only then does a nonce carry its issue time,
//! `issued_ms`). The counter is unique and `issue()` lock-free: with a
//! window below 2 048 each counter is one `fetch_add` on a shared counter;
//! with a larger one (the default) threads take runs of up to 64 counters
//! from it and issue from a run with one compare-and-swap on a per-thread
//! stripe (8 stripes; threads spread over them in the order they first
//! issue), so threads issuing at once do not pass one cache line back and
//! forth on every nonce. The tag is SipHash-2-4
//! with a 128-bit output under a key drawn from the operating system's random
//! source when the issuer is built. SipHash is a pseudorandom function made
//! for short inputs (its authors designed it as a MAC for exactly this), is
//! fast (tens of ns for 24 bytes) and has a 128-bit key; with a 128-bit tag a
//! guessed or altered nonce verifies with probability 2^-128 per attempt, far
//! below the 2^-64 bound this needs. HMAC-SHA256 would do the same job at
//! several times the cost and two more dependencies. Because the key lives
//! only in the process, a restart invalidates every nonce it issued
//! (`Unknown`), as Let's Encrypt's Boulder does.
//!
//! ## Bounded
//! At most `window` nonces are redeemable at a time: a counter `window` or
//! more behind the latest handed out is `TooOld`. With runs, the latest
//! handed out is the end of the newest run, ahead of the nonces issued by
//! what the threads' runs still hold and by runs given up (a thread's run is
//! given up when it falls 16 runs behind; a thread that waits in vain for
//! another to refill its stripe, descheduled meanwhile, takes a run and keeps
//! one counter of it), so a nonce may turn `TooOld` a little before `window`
//! more nonces were issued after it; never after. The counters redeemed are
//! remembered in the RFC 6479 ring, a bit per counter, shared without a lock:
//! the ring is cut into 64-byte groups (a generation word naming the block of
//! 448 counters the group holds, then seven bit words), so a redemption is
//! one `fetch_or` between two reads of its group's generation, and a block
//! moving in zeroes its group once (`window / 7` bytes plus 1 KiB, and 1 KiB
//! of stripes with runs, allocated at `build()`); consecutive counters (or
//! runs) go to different lanes of groups, so threads redeeming what they were
//! just issued mostly touch different cache lines. A redemption that meets a
//! group being taken over waits for those seven stores; `issue` waits only
//! for a refill of its stripe (once per run, a bounded time: then it takes a
//! run of its own).
//!
//! ## Routing by prefix
//! With several issuers behind one router, give each a prefix of 8 URL-safe
//! characters: `nonce.get(..8)` names the issuer, so the router sends the
//! request back to it (a nonce whose prefix is not the issuer's own is
//! `WrongPrefix`).
//!

mod base64;
mod builder;
mod client;
mod counter;
mod ledger;
mod problem;
mod token;

pub use builder::NonceIssuerBuilder;
pub use client::{retry_bad_nonce, retry_bad_nonce_async, Classified, ReplayNonces};
pub use problem::{Problem, ACME_BAD_NONCE};

use crate::clock::{Clock, SystemClock};
use crate::telemetry::Issuer;
use counter::Counters;
use ledger::{Ledger, Spent};
use std::fmt;
use std::hash::Hasher;
use token::{Fields, Mac, Unreadable};

/// The widest issuer window: 2^20 nonces redeemable at a time (a 146 KiB ledger).
///
/// ```
/// use monotonic_nonce::acme::MAX_ISSUER_WINDOW;
/// assert!(monotonic_nonce::NonceIssuer::builder().window(MAX_ISSUER_WINDOW + 1).build().is_err());
/// ```
pub const MAX_ISSUER_WINDOW: u64 = 1 << 20;

/// The default window: nonces redeemable at a time (Boulder keeps 65 536).
///
/// ```
/// assert_eq!(monotonic_nonce::acme::DEFAULT_ISSUER_WINDOW, 65_536);
/// ```
pub const DEFAULT_ISSUER_WINDOW: u64 = 1 << 16;

/// Why [`NonceIssuer::redeem`] refused a nonce. Every one is the ACME
/// `badNonce` error: the client retries with a fresh nonce.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum BadNonce {
    /// Not a nonce at all: wrong length or characters.
    #[error("the nonce is malformed")]
    Malformed,
    /// Another issuer instance's nonce (its prefix is not this one's).
    #[error("the nonce was issued by another instance")]
    WrongPrefix,
    /// Not issued by this process: forged, altered, or from before a restart.
    #[error("the nonce is unknown to this server (issued elsewhere or before a restart)")]
    Unknown,
    /// Redeemed before.
    #[error("the nonce was already used")]
    AlreadyUsed,
    /// Issued too long ago: more than `window` nonces since, or older than `max_age`.
    #[error("the nonce is too old")]
    TooOld,
    /// Refused on purpose (`reject_rate`), so clients exercise their retry path.
    #[error("the nonce was rejected on purpose (fault injection)")]
    Injected,
    /// `max_age` is set and the server clock failed: refused (fail closed).
    #[error("the server clock is unavailable, so the nonce's age cannot be checked")]
    ClockUnavailable,
}

impl BadNonce {
    /// The RFC 7807 problem document to answer with (HTTP 400,
    /// `urn:ietf:params:acme:error:badNonce`).
    ///
    /// ```
    /// let p = monotonic_nonce::acme::BadNonce::AlreadyUsed.problem();
    /// assert_eq!((p.r#type.as_str(), p.status), ("urn:ietf:params:acme:error:badNonce", 400));
    /// ```
    pub fn problem(&self) -> Problem {
        Problem::bad_nonce(self.to_string())
    }
}

/// Issues single-use nonces and redeems each at most once.
///
/// # Guarantees
/// | promise | how it is tested |
/// |---|---|
/// | a nonce is `prefix || base64url(counter || tag)` (32 characters after the prefix; with `max_age`, `counter || issued_ms || tag`, 43), the tag SipHash-2-4 with a 128-bit output under a per-process random key: a guessed or altered nonce verifies with probability 2^-128 per attempt; every one-character change is refused, in both layouts | `every_single_character_change_is_refused`, fuzz target `issuer` (arbitrary strings, mutated and cut real nonces: nothing unissued is ever accepted, nothing twice) |
/// | single use, also under N threads redeeming the same nonce at once (exactly one `Ok`); every counter issued is unique: `issue` is one `fetch_add` (windows below 2 048) or one compare-and-swap on the thread's stripe, which holds a run of up to 64 counters taken with one `fetch_add` by the one thread that claims the stripe's refill (the stripe's other threads wait for it a bounded time, then take a run of their own) (windows of 2 048 or more, the default); `redeem` one `fetch_or` between two reads of its group's generation (it waits only when it meets a group being taken over: seven stores, once per 448 counters of a lane) | `a_fresh_nonce_redeems_once`, `n_threads_redeeming_one_nonce_get_exactly_one_ok`, loom model `tests/loom_issuer.rs` (counters one at a time and in runs of 2); loom model of the counters in `src/acme/counter.rs` (two threads racing to use up one stripe's run and refill it, a third on another stripe: all distinct, `issued()` exact; fails when the stripe's compare-and-swap is made a store, or when the refill installs a counter already issued); `a_refill_left_hanging_is_waited_for_only_so_long`; `threads_never_share_a_counter` (12 threads x 5 000, both modes); loom models of the ledger's takeover in `src/acme/ledger.rs` (`cargo test --lib loom_models` under `--cfg loom`: a replay racing a takeover is never accepted, nor a second redemption racing the next one; both fail when the generation is not read again after the `fetch_or`); `threads_racing_takeovers_never_accept_a_nonce_twice` (4 threads, windows 64 and 4 096, the second in runs of 4; replays from a shared pool; `issued()` exact afterwards) |
/// | bounded: at most `window` (default 65 536) nonces redeemable at a time (counted back from the latest counter handed out; with runs that is the end of the newest run, so a nonce can turn `TooOld` a little before `window` more were issued after it, never after: a thread's run is given up once 16 runs behind), memory a bit per counter, about `window / 7` bytes plus 1 KiB, and 1 KiB of stripes with runs (11 264 B for the default window), allocated once, whatever the number issued: the RFC 6479 ring indexed by counter, in 64-byte groups of a generation word and 448 bits; a block moving in claims its group, zeroes it and names itself, and a redemption that raced with that is refused (its bit may make a newer counter's redemption a false `AlreadyUsed`: fail closed, never a second acceptance); `max_age` refuses stale ones (the three-hours-stale case) | `with_a_small_window_older_nonces_become_too_old`, `memory_stays_bounded_whatever_the_number_issued`, `max_age_refuses_the_three_hours_stale_nonce`; property test `issuer_matches_the_model` (500 cases against a set of issued, unredeemed nonces plus the window rule, windows 1-39 counted from the last issued and 2 048-6 000 and 65 536 counted from the end of the run; it fails if the model counts from the last issued for those); `a_stale_run_is_given_up`; ledger unit tests `random_redemptions_inside_the_window_match_a_set` (8 windows and run sizes x 120 000 redemptions against a set), `a_takeover_clears_exactly_the_old_block` |
/// | a restart (new key) or another instance makes old nonces `Unknown`; another instance's prefix is `WrongPrefix` (a router can route by the first 8 characters); prefixes are checked at `build()`; any text is `Malformed`, never a panic | `a_nonce_from_another_issuer_instance_is_unknown`, `wrong_and_missing_prefix`, `prefix_validation_at_build`, `malformed_and_too_short_strings` |
/// | `reject_rate(p)` rejects that fraction of valid nonces as `Injected` and consumes them (Pebble's `PEBBLE_WFE_NONCEREJECT`) | `injected_rejections_consume_the_nonce_at_about_the_rate` |
/// | the client never sends a nonce twice, prefers the newest, drops stale ones; the retry uses the error response's nonce before anything cached, fetches one when neither exists, stops after the attempts given and returns any other error at once | `replay_nonces_prefers_the_newest_drops_the_stale_and_never_repeats`, `retry_uses_the_error_responses_nonce_first_and_stops_at_max_attempts`, `a_restarted_server_is_recovered_by_retrying_with_the_fresh_nonce` |
///
/// End to end, `cargo run --release --example acme_nonces` (4 client threads x 2 500 requests against a server with
/// `reject_rate(0.05)` that restarts halfway):
///
/// ```
/// use monotonic_nonce::{NonceIssuer, acme::BadNonce};
/// let a = NonceIssuer::builder().prefix("gw-a0001").build()?;
/// let b = NonceIssuer::builder().prefix("gw-b0001").build()?;
/// let nonce = a.issue();
/// let route = match nonce.get(..8) { Some("gw-a0001") => &a, _ => &b }; // the router
/// assert_eq!(route.redeem(&nonce), Ok(()));
/// assert_eq!(b.redeem(&b.issue()), Ok(()));
/// assert_eq!(b.redeem(&a.issue()), Err(BadNonce::WrongPrefix));
/// # Ok::<(), monotonic_nonce::BuildError>(())
/// ```
///
/// ```
/// use monotonic_nonce::{NonceIssuer, acme::BadNonce};
/// let issuer = NonceIssuer::new();
/// let nonce = issuer.issue();
/// assert_eq!(issuer.redeem(&nonce), Ok(()));
/// assert_eq!(issuer.redeem(&nonce), Err(BadNonce::AlreadyUsed));
/// assert_eq!(NonceIssuer::new().redeem(&nonce), Err(BadNonce::Unknown)); // another process, or a restart
/// ```
pub struct NonceIssuer<C: Clock = SystemClock> {
    key: [u8; 16],
    /// The tagger under `key`, with `prefix` absorbed.
    mac: Mac,
    prefix: String,
    /// Where counters come from; its `latest` bounds the window.
    counters: Counters,
    window: u64,
    /// The counters redeemed, inside the window.
    redeemed: Ledger,
    max_age_ms: Option<u64>,
    /// `reject_rate` as a threshold on a 64-bit hash (0: never).
    reject_below: u64,
    clock: C,
    /// Its metrics' handles (nothing without the `metrics` feature).
    telemetry: Issuer,
}

impl Default for NonceIssuer {
    fn default() -> Self {
        Self::new()
    }
}

impl NonceIssuer {
    /// A random key, no prefix, the default window ([`DEFAULT_ISSUER_WINDOW`]), no `max_age`.
    ///
    /// # Panics
    /// If the operating system's random source fails (then no key can be had;
    /// [`builder`](Self::builder) returns that as an error instead).
    ///
    /// ```
    /// let nonce = monotonic_nonce::NonceIssuer::new().issue();
    /// assert_eq!(nonce.len(), 32); // 24 bytes: the counter and the tag
    /// let timed = monotonic_nonce::NonceIssuer::builder().max_age(std::time::Duration::from_secs(60)).build()?;
    /// assert_eq!(timed.issue().len(), 43); // 32 bytes: the issue time too
    /// # Ok::<(), monotonic_nonce::BuildError>(())
    /// ```
    pub fn new() -> Self {
        match Self::builder().build() {
            Ok(issuer) => issuer,
            Err(e) => panic!("NonceIssuer::new: {e}"),
        }
    }

    /// A builder with the defaults of [`new`](Self::new).
    ///
    /// ```
    /// use std::time::Duration;
    /// let issuer = monotonic_nonce::NonceIssuer::builder().window(1_024).max_age(Duration::from_secs(3_600)).build()?;
    /// assert!(issuer.redeem(&issuer.issue()).is_ok());
    /// # Ok::<(), monotonic_nonce::BuildError>(())
    /// ```
    pub fn builder() -> NonceIssuerBuilder {
        NonceIssuerBuilder::new()
    }
}

impl<C: Clock> NonceIssuer<C> {
    /// A fresh nonce: URL-safe base64 without padding (behind the prefix, if
    /// any), unforgeable, redeemable once. Lock-free: one `fetch_add` on the
    /// shared counter (windows below 2 048), or one compare-and-swap on the
    /// thread's stripe, which refills its run of counters with one `fetch_add`.
    ///
    /// ```
    /// let issuer = monotonic_nonce::NonceIssuer::new();
    /// assert_ne!(issuer.issue(), issuer.issue());
    /// ```
    pub fn issue(&self) -> String {
        let counter = self.counters.next();
        // The time is only needed for `max_age` (a failing clock gives 0: such a
        // nonce is then too old for any `max_age`).
        let issued_ms = if self.max_age_ms.is_some() { self.clock.now_ms().unwrap_or(0) } else { 0 };
        self.telemetry.created();
        token::encode(&self.mac, &self.prefix, Fields { counter, issued_ms })
    }

    /// Accepts `nonce` if this issuer issued it, it is inside the window and
    /// `max_age`, and it was never redeemed; it is then used up.
    ///
    /// # Errors
    /// The [`BadNonce`] saying why; every text, of any length or bytes, gets
    /// an answer and never a panic.
    ///
    /// ```
    /// use monotonic_nonce::{NonceIssuer, acme::BadNonce};
    /// let issuer = NonceIssuer::new();
    /// assert_eq!(issuer.redeem("not a nonce"), Err(BadNonce::Malformed));
    /// ```
    pub fn redeem(&self, nonce: &str) -> Result<(), BadNonce> {
        let mut age_ms = None;
        let verdict = self.judge(nonce, &mut age_ms);
        self.telemetry.redeemed(verdict.is_ok(), age_ms);
        verdict
    }

    /// `redeem`'s verdict; `age_ms` gets the nonce's age when the clock was read for it.
    fn judge(&self, nonce: &str, age_ms: &mut Option<u64>) -> Result<(), BadNonce> {
        let fields = token::decode(&self.mac, &self.prefix, nonce).map_err(|e| match e {
            Unreadable::Malformed => BadNonce::Malformed,
            Unreadable::WrongPrefix => BadNonce::WrongPrefix,
            Unreadable::Forged => BadNonce::Unknown,
        })?;
        // A bound: a counter handed out concurrently is only higher, and a valid
        // tag means this counter was issued, so it is <= the latest.
        let latest = self.counters.latest();
        if fields.counter == 0 || fields.counter > latest {
            return Err(BadNonce::Unknown); // a valid tag on a counter never issued: the key was reused
        }
        if latest - fields.counter >= self.window {
            return Err(BadNonce::TooOld);
        }
        if let Some(max_age) = self.max_age_ms {
            let now = self.clock.now_ms().map_err(|_| BadNonce::ClockUnavailable)?;
            *age_ms = Some(now.saturating_sub(fields.issued_ms));
            if now.saturating_sub(fields.issued_ms) > max_age {
                return Err(BadNonce::TooOld);
            }
        }
        self.redeemed.redeem(fields.counter).map_err(|spent| match spent {
            Spent::AlreadyUsed => BadNonce::AlreadyUsed,
            Spent::Evicted => BadNonce::TooOld,
        })?;
        if self.reject_below > 0 && self.draw(fields.counter) < self.reject_below {
            return Err(BadNonce::Injected); // consumed: recorded above
        }
        Ok(())
    }

    /// Nonces issued so far (exact when no `issue` runs at the same time).
    ///
    /// ```
    /// let issuer = monotonic_nonce::NonceIssuer::new();
    /// issuer.issue();
    /// assert_eq!(issuer.issued(), 1);
    /// ```
    pub fn issued(&self) -> u64 {
        self.counters.issued()
    }

    /// Heap bytes held: the window's ring of redeemed nonces (a bit per
    /// counter in 64-byte groups of 448, about `window / 7` bytes, plus a
    /// spare group in each of its 8 lanes) and, for windows of 2 048 or more,
    /// 8 counter stripes of 128 bytes; whatever the number issued.
    ///
    /// ```
    /// let issuer = monotonic_nonce::NonceIssuer::builder().window(8_192).build()?;
    /// let before = issuer.heap_bytes();
    /// for _ in 0..100_000 { let n = issuer.issue(); let _ = issuer.redeem(&n); }
    /// assert_eq!(issuer.heap_bytes(), before);
    /// assert!(before <= 8_192 / 7 + 4 * 8 * 64);
    /// # Ok::<(), monotonic_nonce::BuildError>(())
    /// ```
    pub fn heap_bytes(&self) -> usize {
        self.redeemed.heap_bytes() + self.counters.heap_bytes()
    }

    /// A deterministic pseudo-random draw for `counter` (fault injection).
    fn draw(&self, counter: u64) -> u64 {
        let mut h = siphasher::sip::SipHasher13::new_with_key(&self.key);
        h.write_u64(counter);
        h.write_u8(0x1d); // domain-separates the draw from the tags
        h.finish()
    }
}

impl<C: Clock> fmt::Debug for NonceIssuer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceIssuer")
            .field("prefix", &self.prefix)
            .field("window", &self.window)
            .field("issued", &self.issued())
            .field("max_age_ms", &self.max_age_ms)
            .finish_non_exhaustive()
    }
}
