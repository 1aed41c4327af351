//! The restart guard for a shared store: a Redis restart or failover that
//! lost acknowledged writes (`appendfsync everysec`, a lagging replica) must
//! not reopen a replay.
//!
//! The gateway remembers every master's `run_id`. It checks them again after
//! any error from the store (a restart breaks the connection, so the next
//! call after it sees one) and at least once a second. When one changed and
//! the server does not fsync every write, it refuses every nonce standing for
//! a time up to `detection + max_future`: anything accepted before the
//! restart stood for at most `then + max_future`, so a replay of it is
//! refused, and honest clients pass the floor once `max_future` has gone by.

use super::store::{self, Conn};
use crate::sync::{AtomicBool, AtomicU64, Mutex, Ordering};
use crate::validator::Limits;

/// Checks at least this often, in ms of the gateway's clock.
const CHECK_EVERY_MS: u64 = 1_000;

#[derive(Debug)]
pub(super) struct Guard {
    /// Every master's run id when last checked.
    ids: Mutex<Vec<(String, String)>>,
    /// The gateway clock's ms at the last check.
    last_check: AtomicU64,
    /// An error was seen: check before the next validation.
    suspect: AtomicBool,
    /// Nonces at or below it are refused (0: no guard).
    floor: AtomicU64,
    /// Restarts and failovers seen.
    restarts: AtomicU64,
}

impl Guard {
    pub(super) fn new(ids: Vec<(String, String)>, now_ms: u64, floor: u64) -> Self {
        Self {
            ids: Mutex::new(ids),
            last_check: AtomicU64::new(now_ms),
            suspect: AtomicBool::new(false),
            floor: AtomicU64::new(floor),
            restarts: AtomicU64::new(0),
        }
    }

    /// The floor every nonce must exceed now.
    pub(super) fn floor(&self) -> u64 {
        // Relaxed: a value raised by fetch_max only; a stale read is one that a
        // check finishing concurrently raises, and the validation that raced it
        // was already on its way to the store before the restart was known.
        self.floor.load(Ordering::Relaxed)
    }

    /// Marks the store as suspect after an error: the next validation checks first.
    pub(super) fn suspect(&self) {
        // Relaxed: a flag; the check it asks for reads everything it needs from the store.
        self.suspect.store(true, Ordering::Relaxed);
    }

    /// Restarts or failovers detected so far.
    pub(super) fn restarts(&self) -> u64 {
        // Relaxed: a counter for reports.
        self.restarts.load(Ordering::Relaxed)
    }

    /// Checks the run ids when an error was seen or a second has passed; on a
    /// change, raises the floor (when the store may have lost writes).
    pub(super) async fn ensure_checked(&self, conn: &Conn, now_ms: Option<u64>, limits: &Limits) -> Result<(), String> {
        // Relaxed (both): hints that decide whether to ask the store; being late by
        // one call is the documented window, not a correctness condition.
        let due = self.suspect.load(Ordering::Relaxed)
            || now_ms.is_some_and(|now| now.saturating_sub(self.last_check.load(Ordering::Relaxed)) >= CHECK_EVERY_MS);
        if !due {
            return Ok(());
        }
        let ids = store::run_ids(conn).await.map_err(|e| format!("cannot read the run ids: {e}"))?;
        let changed = *self.ids.lock() != ids;
        if changed {
            let fsync_always = store::check_config(conn).await.map(|d| d.fsync_always).unwrap_or(false);
            if !fsync_always {
                match now_ms {
                    Some(now) => {
                        if let Some(floor) = limits.reachable(now) {
                            // Relaxed: only ever raised; see `floor`.
                            self.floor.fetch_max(floor, Ordering::Relaxed);
                        }
                    }
                    // the guard needs the time: stay suspect, fail closed, and try again next call
                    None => return Err("the store restarted and the gateway clock is unavailable".to_owned()),
                }
            }
            // The guard is in place before the new ids are remembered. Calls that saw
            // the same change at once all raised the floor (fetch_max: idempotent);
            // the one that stores the ids counts the restart.
            let mut known = self.ids.lock();
            if *known != ids {
                *known = ids;
                // Relaxed: a counter.
                self.restarts.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Some(now) = now_ms {
            // Relaxed: see `due`.
            self.last_check.store(now, Ordering::Relaxed);
        }
        // Relaxed: see `suspect`.
        self.suspect.store(false, Ordering::Relaxed);
        Ok(())
    }
}
