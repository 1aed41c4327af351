//! The restart guard for a shared store: a restart, a failover or a flush
//! that lost acknowledged writes must not reopen a replay.
//!
//! The gateway remembers every master's identity (run id and uptime) and the
//! prefix's epoch (see `meta.rs`). It checks them again after any error from
//! the store (a restart breaks the connection, so the next call after it sees
//! one) and at least once a second, and re-reads `maxmemory-policy` when
//! `CONFIG` answers. When a master restarted or was replaced, or the epoch is
//! gone or another, and `max_future` is set, it refuses every nonce standing
//! for a time up to `detection + max_future`: anything accepted before the
//! loss stood for at most `then + max_future`, so a replay of it is refused,
//! and honest clients pass the floor once `max_future` has gone by. This
//! holds whatever `appendfsync` says: replication is asynchronous, so a
//! failover to a lagging replica loses writes even when every node fsyncs.
//! Without `max_future`, a restart is trusted (the builder demanded
//! `appendfsync always` or `accept_durability_risk`), but lost state is not:
//! the gateway fails closed for good.

use super::meta::{self, Meta};
use super::store::{self, Conn, NodeId};
use crate::sync::{AsyncMutex, AtomicBool, AtomicU64, Mutex, Ordering};
use crate::validator::Limits;

/// Checks at least this often, in ms of the gateway's clock.
const CHECK_EVERY_MS: u64 = 1_000;

/// What the last check saw.
#[derive(Debug)]
struct Known {
    ids: Vec<NodeId>,
    epoch: String,
}

#[derive(Debug)]
pub(super) struct Guard {
    known: Mutex<Known>,
    /// One check at a time: a check that read the store before another
    /// finished must not write back what it saw over the newer reading.
    checking: AsyncMutex<()>,
    /// The prefix's meta key and the settings it must name.
    meta_key: Vec<u8>,
    settings: String,
    /// `CONFIG` answers: re-read `maxmemory-policy` at each check.
    check_eviction: bool,
    /// The gateway clock's ms at the last check.
    last_check: AtomicU64,
    /// An error was seen: check before the next validation.
    suspect: AtomicBool,
    /// The store lost its state and there is no `max_future` to guard it: every call fails.
    broken: AtomicBool,
    /// Nonces at or below it are refused (0: no guard).
    floor: AtomicU64,
    /// Restarts, failovers and losses seen.
    restarts: AtomicU64,
}

/// What `Guard::new` starts from.
#[derive(Debug)]
pub(super) struct Start {
    pub(super) ids: Vec<NodeId>,
    pub(super) epoch: String,
    pub(super) meta_key: Vec<u8>,
    pub(super) settings: String,
    pub(super) check_eviction: bool,
    pub(super) now_ms: u64,
    pub(super) floor: u64,
}

impl Guard {
    pub(super) fn new(s: Start) -> Self {
        Self {
            known: Mutex::new(Known { ids: s.ids, epoch: s.epoch }),
            checking: AsyncMutex::new(()),
            meta_key: s.meta_key,
            settings: s.settings,
            check_eviction: s.check_eviction,
            last_check: AtomicU64::new(s.now_ms),
            suspect: AtomicBool::new(false),
            broken: AtomicBool::new(false),
            floor: AtomicU64::new(s.floor),
            restarts: AtomicU64::new(0),
        }
    }

    /// The floor every nonce must exceed now.
    pub(super) fn floor(&self) -> u64 {
        // Relaxed: a value raised by fetch_max only; a stale read is one that a
        // check finishing concurrently raises, and the validation that raced it
        // was already on its way to the store before the loss was known.
        self.floor.load(Ordering::Relaxed)
    }

    /// Marks the store as suspect after an error: the next validation checks first.
    pub(super) fn suspect(&self) {
        // Relaxed: a flag; the check it asks for reads everything it needs from the store.
        self.suspect.store(true, Ordering::Relaxed);
    }

    /// Restarts, failovers and losses of state detected so far.
    pub(super) fn restarts(&self) -> u64 {
        // Relaxed: a counter for reports.
        self.restarts.load(Ordering::Relaxed)
    }

    fn due(&self, now_ms: Option<u64>) -> bool {
        // Relaxed (both): hints that decide whether to ask the store; being late by
        // one call is the documented window, not a correctness condition.
        self.suspect.load(Ordering::Relaxed)
            || now_ms.is_some_and(|now| now.saturating_sub(self.last_check.load(Ordering::Relaxed)) >= CHECK_EVERY_MS)
    }

    /// Checks the store when an error was seen or a second has passed; on a
    /// restart, failover or loss, raises the floor (or fails closed).
    pub(super) async fn ensure_checked(&self, conn: &Conn, now_ms: Option<u64>, limits: &Limits) -> Result<(), String> {
        // Relaxed: set once, never cleared; the calls that race it were on their way already.
        if self.broken.load(Ordering::Relaxed) {
            return Err(broken_reason());
        }
        if !self.due(now_ms) {
            return Ok(());
        }
        let _one = self.checking.lock().await;
        if !self.due(now_ms) {
            return Ok(()); // checked while this call waited
        }
        let ids = store::node_ids(conn).await.map_err(|e| format!("cannot read the masters' identities: {e}"))?;
        let record =
            meta::read(conn, &self.meta_key).await.map_err(|e| format!("cannot read the prefix's record: {e}"))??;
        if let Some(m) = &record {
            if m.settings != self.settings {
                return Err(format!(
                    "the key prefix is now used with {}, this gateway has {}: its keys are not read under other rules (fail closed; restart this gateway with the prefix's settings)",
                    m.settings, self.settings
                ));
            }
        }
        if self.check_eviction {
            store::check_eviction(conn).await?;
        }
        let (restarted, lost) = {
            let known = self.known.lock();
            (store::restarted(&known.ids, &ids), record.as_ref().is_none_or(|m| m.epoch != known.epoch))
        };
        if restarted || lost {
            match (limits.max_future_ms(), now_ms) {
                (Some(_), Some(now)) => {
                    if let Some(floor) = limits.reachable(now) {
                        // Relaxed: only ever raised; see `floor`.
                        self.floor.fetch_max(floor, Ordering::Relaxed);
                    }
                }
                // the guard needs the time: stay suspect, fail closed, and try again next call
                (Some(_), None) => return Err("the store lost state and the gateway clock is unavailable".to_owned()),
                (None, _) if lost => {
                    // Relaxed: see the load above.
                    self.broken.store(true, Ordering::Relaxed);
                    return Err(broken_reason());
                }
                (None, _) => {} // a restart of a store that fsyncs every write, or an accepted risk
            }
            // Relaxed: a counter.
            self.restarts.fetch_add(1, Ordering::Relaxed);
        }
        // The guard is in place before what was seen is remembered.
        let epoch = match record {
            Some(m) => {
                // Relaxed: only ever raised; see `floor`.
                self.floor.fetch_max(m.floor, Ordering::Relaxed);
                m.epoch
            }
            None => {
                let fresh = Meta::fresh(&self.settings, self.floor())?;
                let now = meta::create(conn, &self.meta_key, &fresh).await.map_err(|e| e.to_string())??;
                if now.settings != self.settings {
                    return Err(format!("the key prefix was taken over with {}", now.settings));
                }
                // Relaxed: only ever raised; see `floor`.
                self.floor.fetch_max(now.floor, Ordering::Relaxed);
                now.epoch
            }
        };
        *self.known.lock() = Known { ids, epoch };
        if let Some(now) = now_ms {
            // Relaxed: see `due`.
            self.last_check.store(now, Ordering::Relaxed);
        }
        // Relaxed: see `suspect`.
        self.suspect.store(false, Ordering::Relaxed);
        Ok(())
    }
}

fn broken_reason() -> String {
    "the store lost its state (flushed, or its keys deleted) and without max_future no guard can refuse the replays it reopened: this gateway fails closed; set max_future".to_owned()
}
