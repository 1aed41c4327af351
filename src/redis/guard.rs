//! The restart guard for a shared store: a restart, a failover or a flush
//! that lost acknowledged writes must not reopen a replay.
//!
//! The gateway remembers every master (see `topology.rs`), the slot map, and
//! the prefix's epoch (see `meta.rs`). It checks them at least once a second
//! and whenever it has a reason to doubt: after an error from the store (a
//! restart breaks the connection), and, on a cluster, before it trusts a
//! reply from a master it does not know or doubts (the script names the
//! master that answered, so a redirect after a failover is seen before its
//! verdict is returned). When a master may have lost writes, or the epoch is
//! gone or another, and `max_future` is set, it refuses every nonce standing
//! for a time up to `detection + max_future`: anything accepted before the
//! loss stood for at most `then + max_future`, so a replay of it is refused,
//! and honest clients pass the floor once `max_future` has gone by. This
//! holds whatever `appendfsync` says: replication is asynchronous. Without
//! `max_future`, a restart is trusted (the builder demanded `appendfsync
//! always` or `accept_durability_risk`), but lost state is not: the gateway
//! fails closed for good.
//!
//! Each master is probed with its own deadline: a hung master is reported
//! unreachable and stays doubted (calls it answers are checked first), while
//! the others' verdicts go on.

use super::meta::{self, Meta};
use super::store::{self, Conn};
use super::topology::{self, Node, Reading};
use crate::rules::Limits;
use crate::sync::{AsyncMutex, AtomicBool, AtomicU64, Mutex, Ordering};
use crate::telemetry::Verdicts;
use std::collections::BTreeSet;
use std::time::Duration;

/// Checks at least this often, in ms of the gateway's clock.
const CHECK_EVERY_MS: u64 = 1_000;

/// What the last check saw.
#[derive(Debug)]
pub(super) struct Known {
    pub(super) masters: Vec<Node>,
    pub(super) slots: Vec<(u16, u16, String)>,
    pub(super) epoch: String,
    /// Masters (by key) whose replies are not trusted before a check.
    doubted: BTreeSet<String>,
}

impl Known {
    pub(super) fn new(reading: Reading, epoch: String) -> Self {
        let doubted = reading.unreachable.iter().map(|n| n.key().to_owned()).collect();
        let mut masters = reading.masters;
        masters.extend(reading.unreachable);
        Self { masters, slots: reading.slots, epoch, doubted }
    }
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
    /// How long one master may take to answer a probe.
    probe_deadline: Duration,
    /// The gateway clock's ms at the last check.
    last_check: AtomicU64,
    /// An error that no single master can be blamed for: check before the next validation.
    suspect: AtomicBool,
    /// The store lost its state and there is no `max_future` to guard it: every call fails.
    broken: AtomicBool,
    /// Nonces at or below it are refused (0: no guard).
    floor: AtomicU64,
    /// Restarts, failovers and losses seen.
    restarts: AtomicU64,
    /// The floor and the restarts as metrics (nothing without the `metrics` feature).
    telemetry: Verdicts,
}

/// What `Guard::new` starts from.
#[derive(Debug)]
pub(super) struct Start {
    pub(super) known: Known,
    pub(super) meta_key: Vec<u8>,
    pub(super) settings: String,
    pub(super) check_eviction: bool,
    pub(super) probe_deadline: Duration,
    pub(super) now_ms: u64,
    pub(super) floor: u64,
}

impl Guard {
    pub(super) fn new(s: Start) -> Self {
        Self {
            known: Mutex::new(s.known),
            checking: AsyncMutex::new(()),
            meta_key: s.meta_key,
            settings: s.settings,
            check_eviction: s.check_eviction,
            probe_deadline: s.probe_deadline,
            last_check: AtomicU64::new(s.now_ms),
            suspect: AtomicBool::new(false),
            broken: AtomicBool::new(false),
            floor: AtomicU64::new(s.floor),
            restarts: AtomicU64::new(0),
            telemetry: Verdicts::new("redis"),
        }
    }

    /// The floor every nonce must exceed now.
    pub(super) fn floor(&self) -> u64 {
        // Relaxed: a value raised by fetch_max only; a stale read is one that a
        // check finishing concurrently raises, and the validation that raced it
        // was already on its way to the store before the loss was known.
        self.floor.load(Ordering::Relaxed)
    }

    /// After an error on `key`'s call: doubt the master that serves its slot
    /// (on a cluster whose map is known), else the whole store.
    pub(super) fn suspect(&self, key: Option<&[u8]>) {
        if let Some(key) = key {
            let slot = topology::slot(key);
            let mut known = self.known.lock();
            let owner = known.slots.iter().find(|(a, b, _)| (*a..=*b).contains(&slot)).map(|(_, _, id)| id.clone());
            if let Some(owner) = owner {
                known.doubted.insert(owner);
                return;
            }
        }
        // Relaxed: a flag; the check it asks for reads everything it needs from the store.
        self.suspect.store(true, Ordering::Relaxed);
    }

    /// Whether a reply from the master `node` (its cluster id) may be trusted
    /// without a check first: it is a known master, not doubted.
    pub(super) fn trusts(&self, node: &str) -> bool {
        let known = self.known.lock();
        !known.doubted.contains(node) && known.masters.iter().any(|m| m.id == node)
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

    /// Checks the store when it is due (an unattributed error, or a second
    /// passed), or at once when `force`; on a loss, raises the floor (or fails closed).
    pub(super) async fn ensure_checked(
        &self,
        conn: &Conn,
        now_ms: Option<u64>,
        limits: &Limits,
        force: bool,
    ) -> Result<(), String> {
        // Relaxed: set once, never cleared; the calls that race it were on their way already.
        if self.broken.load(Ordering::Relaxed) {
            return Err(broken_reason());
        }
        if !force && !self.due(now_ms) {
            return Ok(());
        }
        let started = self.restarts();
        let _one = self.checking.lock().await;
        if (!force && !self.due(now_ms)) || (force && self.restarts() != started) {
            return Ok(()); // checked while this call waited
        }
        self.check(conn, now_ms, limits).await
    }

    async fn check(&self, conn: &Conn, now_ms: Option<u64>, limits: &Limits) -> Result<(), String> {
        let (seeds, before) = {
            let known = self.known.lock();
            (known.masters.iter().map(|m| m.addr.clone()).collect::<Vec<_>>(), known.masters.clone())
        };
        let reading = topology::read(conn, &seeds, &before, self.probe_deadline).await?;
        // within one probe's deadline: on a cluster the master holding the record may be
        // the one that hangs, and then its epoch is compared at a later check (that master
        // stays doubted); one server that does not answer fails the check
        let read = tokio::time::timeout(self.probe_deadline, meta::read(conn, &self.meta_key)).await;
        let record = match read {
            Ok(Ok(record)) => Some(record?),
            Err(_) | Ok(Err(_)) if matches!(conn, Conn::Cluster(_)) && !reading.unreachable.is_empty() => None,
            Ok(Err(e)) => return Err(format!("cannot read the prefix's record: {e}")),
            Err(_) => return Err("the prefix's record was not read in time".to_owned()),
        };
        if let Some(Some(m)) = &record {
            if m.settings != self.settings {
                return Err(format!(
                    "the key prefix is now used with {}, this gateway has {}: its keys are not read under other rules (fail closed; restart this gateway with the prefix's settings)",
                    m.settings, self.settings
                ));
            }
        }
        if self.check_eviction {
            store::check_eviction(conn, &reading.masters, self.probe_deadline).await?;
        }
        let (restarted, lost) = {
            let known = self.known.lock();
            let lost = match &record {
                Some(Some(m)) => m.epoch != known.epoch,
                Some(None) => true,
                None => false, // not read this time
            };
            (topology::lost_writes(&known.masters, &reading.masters), lost)
        };
        if restarted || lost {
            self.raise(now_ms, limits, lost)?;
        }
        // The guard is in place before what was seen is remembered.
        let epoch = match record {
            Some(Some(m)) => {
                // Relaxed: only ever raised; see `floor`.
                self.floor.fetch_max(m.floor, Ordering::Relaxed);
                Some(m.epoch)
            }
            Some(None) => {
                let fresh = Meta::fresh(&self.settings, self.floor())?;
                let now = meta::create(conn, &self.meta_key, &fresh).await.map_err(|e| e.to_string())??;
                if now.settings != self.settings {
                    return Err(format!("the key prefix was taken over with {}", now.settings));
                }
                // Relaxed: only ever raised; see `floor`.
                self.floor.fetch_max(now.floor, Ordering::Relaxed);
                Some(now.epoch)
            }
            None => None,
        };
        {
            let mut known = self.known.lock();
            let epoch = epoch.unwrap_or_else(|| known.epoch.clone());
            *known = Known::new(reading, epoch);
        }
        if let Some(now) = now_ms {
            // Relaxed: see `due`.
            self.last_check.store(now, Ordering::Relaxed);
        }
        // Relaxed: see `suspect`.
        self.suspect.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// A master may have lost writes (`lost`: the prefix's state itself is gone).
    fn raise(&self, now_ms: Option<u64>, limits: &Limits, lost: bool) -> Result<(), String> {
        match (limits.max_future_ms(), now_ms) {
            (Some(_), Some(now)) => {
                if let Some(floor) = limits.reachable(now) {
                    // Relaxed: only ever raised; see `floor`.
                    self.floor.fetch_max(floor, Ordering::Relaxed);
                }
            }
            // the guard needs the time: stay suspect, fail closed, and try again next call
            (Some(_), None) => {
                return Err("the store may have lost state and the gateway clock is unavailable".to_owned())
            }
            (None, _) if lost => {
                // Relaxed: see `ensure_checked`.
                self.broken.store(true, Ordering::Relaxed);
                return Err(broken_reason());
            }
            (None, _) => {} // a restart of a store that fsyncs every write, or an accepted risk
        }
        // Relaxed: a counter.
        self.restarts.fetch_add(1, Ordering::Relaxed);
        self.telemetry.restart();
        self.telemetry.floor(self.floor());
        Ok(())
    }
}

fn broken_reason() -> String {
    "the store lost its state (flushed, or its keys deleted) and without max_future no guard can refuse the replays it reopened: this gateway fails closed; set max_future".to_owned()
}
