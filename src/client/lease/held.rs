//! A lease while a manager holds it: the gate the hot path reads, the token,
//! the connection for claims and marks, and the renewer (a thread, or a task
//! on a tokio runtime) that keeps the slot's TTL and the gate's deadline ahead.

use super::store::{Claimed, Io};
use super::Config;
use crate::error::{BuildError, NonceError};
use crate::sync::{AtomicU64, Mutex, Ordering};
use crossbeam_utils::CachePadded;
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Nanoseconds on the local monotonic clock (`CLOCK_MONOTONIC_COARSE` on
/// Linux: a few ns, a resolution of a few ms, which the margin covers).
#[inline]
pub(crate) fn mono_ns() -> u64 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let ts = rustix::time::clock_gettime(rustix::time::ClockId::MonotonicCoarse);
        (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64)
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        static BASE: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        u64::try_from(BASE.get_or_init(std::time::Instant::now).elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// What the hot path reads: until when nonces may be handed out, and under which slot.
#[derive(Debug)]
pub(crate) struct Gate {
    /// `mono_ns()` after which nothing is handed out (the lease's deadline less
    /// the margin); 0 while no lease is held.
    until: CachePadded<AtomicU64>,
    /// The slot held (the `Distributed` system id).
    slot: AtomicU64,
}

impl Gate {
    /// Whether a lease is held at all (no clock read).
    #[inline]
    pub(crate) fn held(&self) -> bool {
        // Relaxed: a deadline only; uniqueness rests on the slot, the mark and `last`.
        self.until.load(Ordering::Relaxed) != 0
    }

    /// Whether the lease is held and its deadline (less the margin) is ahead;
    /// once it is not, closes the gate so the next call tries to re-acquire.
    #[inline]
    pub(crate) fn still_open(&self) -> bool {
        // Relaxed: as in `held`.
        let until = self.until.load(Ordering::Relaxed);
        if until != 0 && mono_ns() < until {
            return true;
        }
        // Relaxed: only from the value read, so a renewal stored meanwhile is kept.
        let _ = self.until.compare_exchange(until, 0, Ordering::Relaxed, Ordering::Relaxed);
        false
    }

    /// The slot to compute nonces with.
    #[inline]
    pub(crate) fn slot(&self) -> u64 {
        // Acquire: pairs with the Release store in `Held::adopt`; the caller read
        // the mark (Acquire) before, so a new mark comes with its new slot.
        self.slot.load(Ordering::Acquire)
    }
}

/// The token and slot currently held ("" while none).
#[derive(Debug, Clone, Default)]
struct Token {
    slot: u64,
    token: String,
}

/// A claim not yet adopted: the slot, its token, the slot's highest mark, and
/// the deadline on the local monotonic clock.
#[derive(Debug)]
pub(crate) struct Claim {
    pub(crate) slot: u64,
    token: String,
    pub(crate) mark: u64,
    until: u64,
}

/// Why a claim failed.
#[derive(Debug)]
pub(crate) enum ClaimError {
    Full,
    Skew { skew_ms: i64 },
    OtherSettings(String),
    Store(String),
}

impl ClaimError {
    pub(crate) fn into_build_error(self, cfg: &Config) -> BuildError {
        match self {
            ClaimError::Full => BuildError::NoFreeSlot { key_space: cfg.key_space.clone(), total_systems: cfg.total },
            ClaimError::Skew { skew_ms } => BuildError::ClockSkew {
                skew_ms,
                max_skew_ms: u64::try_from(cfg.max_skew.as_millis()).unwrap_or(u64::MAX),
            },
            ClaimError::OtherSettings(reason) => BuildError::config("lease", reason),
            ClaimError::Store(reason) => BuildError::Store { reason },
        }
    }
}

/// The lease of one manager.
#[derive(Debug)]
pub(crate) struct Held {
    pub(crate) cfg: Arc<Config>,
    pub(crate) gate: Gate,
    token: Mutex<Token>,
    /// Claims and marks (the renewer has its own connection).
    io: Mutex<Io>,
    /// `mono_ns()` before which the hot path does not try to re-acquire again.
    next_try: AtomicU64,
    /// The renewer thread, woken to exit when the lease is dropped.
    thread: Mutex<Option<std::thread::Thread>>,
    /// Claims adopted so far (the first at `build()`).
    claims: AtomicU64,
}

impl Held {
    pub(crate) fn new(cfg: Arc<Config>) -> Self {
        let io = Io::new(cfg.client.clone(), cfg.io_timeout);
        Self {
            cfg,
            gate: Gate { until: CachePadded::new(AtomicU64::new(0)), slot: AtomicU64::new(0) },
            token: Mutex::new(Token::default()),
            io: Mutex::new(io),
            next_try: AtomicU64::new(0),
            thread: Mutex::new(None),
            claims: AtomicU64::new(0),
        }
    }

    /// Claims a free slot, trying `first` first. `now` reads the manager's
    /// clock (for the skew against Redis's `TIME`).
    pub(crate) fn claim(&self, first: u64, now: &mut dyn FnMut() -> Option<u64>) -> Result<Claim, ClaimError> {
        let token = random_token().map_err(ClaimError::Store)?;
        let ttl_ms = self.cfg.ttl_ms();
        let sent = mono_ns();
        let before = now();
        let mut io = self.io.lock();
        let claimed = io
            .claim(&self.cfg.keys, self.cfg.units, &token, ttl_ms, first)
            .map_err(|e| ClaimError::Store(format!("claiming a slot on {}: {e}", self.cfg.url)))?;
        let after = now();
        match claimed {
            Claimed::Full { .. } => Err(ClaimError::Full),
            Claimed::OtherSettings { total, units } => Err(ClaimError::OtherSettings(format!(
                "the key space {:?} was written with total_systems {total} and {units} nonce units per ms, this \
                 lease has {} and {}; use another key space (the marks of one setting mean nothing under another)",
                self.cfg.key_space, self.cfg.total, self.cfg.units
            ))),
            Claimed::Slot { slot, mark, redis_ms } => {
                let local = before.zip(after).map(|(b, a)| b / 2 + a / 2 + (b % 2 + a % 2) / 2);
                let skew_ms = local.map(|l| i64::try_from(i128::from(l) - i128::from(redis_ms)).unwrap_or(i64::MAX));
                let max = i64::try_from(self.cfg.max_skew.as_millis()).unwrap_or(i64::MAX);
                match skew_ms {
                    Some(s) if s.unsigned_abs() <= max.unsigned_abs() => {}
                    other => {
                        let _ = io.release(&self.cfg.keys, slot, &token);
                        return Err(ClaimError::Skew { skew_ms: other.unwrap_or(i64::MAX) });
                    }
                }
                Ok(Claim { slot, token, mark, until: self.cfg.until_after(sent) })
            }
        }
    }

    /// Stores `mark` as the claimed slot's mark (fenced by the claim's token).
    pub(crate) fn store_claim_mark(&self, claim: &Claim, mark: u64) -> Result<(), String> {
        match self.io.lock().mark(&self.cfg.keys, claim.slot, &claim.token, mark) {
            Ok(true) => Ok(()),
            Ok(false) => Err(format!("slot {} was taken while it was being claimed", claim.slot)),
            Err(e) => Err(format!("writing the mark of slot {}: {e}", claim.slot)),
        }
    }

    /// Gives a claim back (it was not adopted).
    pub(crate) fn abandon(&self, claim: Claim) {
        let _ = self.io.lock().release(&self.cfg.keys, claim.slot, &claim.token);
    }

    /// Makes `claim` the lease held: its slot first (Release, paired with `Gate::slot`).
    /// The caller publishes the mark and raises `last` next, then calls `open`.
    pub(crate) fn adopt(&self, claim: &Claim) {
        let mut held = self.token.lock();
        *held = Token { slot: claim.slot, token: claim.token.clone() };
        // Relaxed: a counter; no other memory is published with it.
        self.claims.fetch_add(1, Ordering::Relaxed);
        // Release: a thread that reads this slot sees `last` raised above the slot's mark before it.
        self.gate.slot.store(claim.slot, Ordering::Release);
    }

    /// Opens the gate until the claim's deadline.
    pub(crate) fn open(&self, claim: &Claim) {
        let _held = self.token.lock();
        // Relaxed: a deadline only (see `Gate::held`).
        self.gate.until.store(claim.until, Ordering::Relaxed);
    }

    /// Claims adopted so far.
    pub(crate) fn claims(&self) -> u64 {
        // Relaxed: a counter.
        self.claims.load(Ordering::Relaxed)
    }

    /// Closes the gate if `token` is still the one held.
    fn close_if(&self, token: &str) {
        let held = self.token.lock();
        if held.token == token {
            // Relaxed: as in `open`.
            self.gate.until.store(0, Ordering::Relaxed);
        }
    }

    /// The slot held now, as a `LeaseLost` error.
    pub(crate) fn lost(&self) -> NonceError {
        NonceError::LeaseLost { slot: self.token.lock().slot }
    }

    /// The hot path's retry limit: true at most once per `retry` interval.
    pub(crate) fn may_try(&self) -> bool {
        let now = mono_ns();
        // Relaxed: a rate limit; no other memory is read through it.
        let next = self.next_try.load(Ordering::Relaxed);
        now >= next
            && self
                .next_try
                .compare_exchange(next, now.saturating_add(ns(self.cfg.retry())), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }

    /// One renewal of the token held, on `io`. Returns whether it succeeded.
    fn renew_with(&self, io: &mut Io) -> bool {
        let held = self.token.lock().clone();
        if held.token.is_empty() {
            return false;
        }
        let sent = mono_ns();
        match io.renew(&self.cfg.keys, held.slot, &held.token, self.cfg.ttl_ms()) {
            Ok(true) => {
                self.renewed(&held.token, sent);
                true
            }
            Ok(false) => {
                self.close_if(&held.token);
                false
            }
            // the deadline lapses on its own
            Err(_) => false,
        }
    }

    /// A renewal sent at `sent` succeeded: the deadline moves to `sent + ttl - margin`.
    fn renewed(&self, token: &str, sent: u64) {
        let held = self.token.lock();
        if held.token == token {
            // Relaxed: as in `open`; under the token's lock, so a switch is not overwritten.
            self.gate.until.store(self.cfg.until_after(sent), Ordering::Relaxed);
        }
    }

    /// Renews the token held on the hot path's connection (before claiming another slot).
    pub(crate) fn renew_now(&self) -> bool {
        let mut io = self.io.lock();
        self.renew_with(&mut io)
    }

    /// Writes the held slot's mark (fenced by its token).
    pub(crate) fn store_mark(&self, mark: u64) -> Result<(), NonceError> {
        let held = self.token.lock().clone();
        match self.io.lock().mark(&self.cfg.keys, held.slot, &held.token, mark) {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.close_if(&held.token);
                Err(NonceError::LeaseLost { slot: held.slot })
            }
            Err(e) => {
                Err(NonceError::LeaseStore { reason: format!("writing the mark of slot {}: {e}", held.slot).into() })
            }
        }
    }

    /// Starts the renewer: a thread, or a task on `runtime`.
    pub(crate) fn start_renewer(self: &Arc<Self>) -> Result<(), BuildError> {
        let weak = Arc::downgrade(self);
        match &self.cfg.runtime {
            None => {
                let io = Io::new(self.cfg.client.clone(), self.cfg.io_timeout);
                let handle = std::thread::Builder::new()
                    .name("monotonic-nonce-lease".into())
                    .spawn(move || renew_on_thread(weak, io))
                    .map_err(|e| BuildError::Store { reason: format!("cannot start the lease renewer thread: {e}") })?;
                *self.thread.lock() = Some(handle.thread().clone());
            }
            Some(runtime) => {
                runtime.spawn(renew_on_tokio(weak));
            }
        }
        Ok(())
    }
}

impl Held {
    /// A clean release by a manager that hands out nothing more: the slot's
    /// mark becomes `last` (every nonce of this slot, ours and our
    /// predecessors', is at or below it) and the slot is freed.
    pub(crate) fn settle(&self, last: u64) {
        let mut held = self.token.lock();
        if !held.token.is_empty() {
            let _ = self.io.lock().settle(&self.cfg.keys, held.slot, &held.token, last);
            held.token.clear();
            // Relaxed: as in `open`; nothing is handed out after this.
            self.gate.until.store(0, Ordering::Relaxed);
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.lock().take() {
            thread.unpark();
        }
        let held = self.token.lock().clone();
        if !held.token.is_empty() {
            // a successor may take the slot at once (its mark stays)
            let _ = self.io.lock().release(&self.cfg.keys, held.slot, &held.token);
        }
    }
}

/// The renewer thread: every `ttl / 3` (sooner after a failure) until the lease is dropped.
fn renew_on_thread(weak: Weak<Held>, mut io: Io) {
    let mut wait = match weak.upgrade() {
        Some(held) => held.cfg.period(),
        None => return,
    };
    loop {
        std::thread::park_timeout(wait);
        let Some(held) = weak.upgrade() else { return };
        wait = if held.renew_with(&mut io) { held.cfg.period() } else { held.cfg.retry() };
    }
}

/// The renewer task: the same steps on an async connection.
async fn renew_on_tokio(weak: Weak<Held>) {
    let mut conn = None;
    let mut wait = match weak.upgrade() {
        Some(held) => held.cfg.period(),
        None => return,
    };
    loop {
        tokio::time::sleep(wait).await;
        let Some(held) = weak.upgrade() else { return };
        let ok = held.renew_async(&mut conn).await;
        wait = if ok { held.cfg.period() } else { held.cfg.retry() };
    }
}

impl Held {
    async fn renew_async(&self, conn: &mut Option<redis::aio::MultiplexedConnection>) -> bool {
        let held = self.token.lock().clone();
        if held.token.is_empty() {
            return false;
        }
        let timeout = self.cfg.io_timeout;
        let sent = mono_ns();
        if conn.is_none() {
            match tokio::time::timeout(timeout, self.cfg.client.get_multiplexed_async_connection()).await {
                Ok(Ok(c)) => *conn = Some(c),
                _ => return false,
            }
        }
        let Some(c) = conn.as_mut() else { return false };
        let call = super::store::renew_invocation(&self.cfg.keys, held.slot, &held.token, self.cfg.ttl_ms());
        match tokio::time::timeout(timeout, call.invoke_async::<i64>(c)).await {
            Ok(Ok(1)) => {
                self.renewed(&held.token, sent);
                true
            }
            Ok(Ok(_)) => {
                self.close_if(&held.token);
                false
            }
            _ => {
                *conn = None;
                false
            }
        }
    }
}

/// 128 random bits as hex: the holder's token.
fn random_token() -> Result<String, String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| format!("no random token: {e}"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
