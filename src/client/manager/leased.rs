//! The manager's side of a [`SlotLease`](crate::client::SlotLease): the
//! gate on the hot path, the claim at `build()`, and the slot switch when the
//! lease is re-acquired. The protocol that keeps a switch safe for threads
//! still computing under the old slot:
//!
//! 1. `last` is raised strictly above the new slot's mark (a compare-exchange
//!    begun before fails; nothing later can land at or below the old holders' nonces);
//! 2. the new slot's mark is written in Redis, fenced by the new token, at
//!    least the old local mark (a value a stale thread may still hand out under it);
//! 3. the slot is published (Release), then the mark (Release), then `last`
//!    is raised strictly again (Release);
//! 4. the gate opens.
//!
//! The hot path loads `last` (Acquire), then the mark (Acquire), then the
//! slot (Acquire): a thread that sees the new mark sees the new slot, and a
//! thread whose `last` predates step 3 fails its compare-exchange.

use super::{NonceManager, Step};
use crate::client::lease::{Claim, ClaimError, Held, RedisMark, SlotLease};
use crate::client::persist::DurableMark;
use crate::clock::Clock;
use crate::error::{BuildError, NonceError};
use crate::strategy::{Params, Strategy};
use crate::sync::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// What `build()` hands the manager when it was given a lease.
pub(super) struct Start {
    pub(super) held: Arc<Held>,
    pub(super) durable: Box<DurableMark>,
    pub(super) strategy: Strategy,
    pub(super) params: Params,
    pub(super) floor: u64,
}

/// Claims a slot for a new manager (waiting up to the lease's `wait` when
/// all are held), writes its first mark and starts the renewer.
pub(super) fn start(
    lease: &SlotLease,
    clock: &impl Clock,
    start_after: u64,
    ahead_ms: u64,
    ceiling: u64,
) -> Result<Start, BuildError> {
    let cfg = Arc::clone(lease.config());
    let held = Arc::new(Held::new(Arc::clone(&cfg)));
    let began = Instant::now();
    let first = u64::from(std::process::id()) % cfg.total;
    let claim = loop {
        match held.claim(first, &mut || clock.now_ms().ok()) {
            Ok(claim) => break claim,
            Err(ClaimError::Full) if began.elapsed() < cfg.wait => std::thread::sleep(cfg.retry().min(cfg.wait)),
            Err(e) => return Err(e.into_build_error(&cfg)),
        }
    };
    let strategy = Strategy::Distributed { system_id: claim.slot, total_systems: cfg.total };
    let params = strategy.params()?;
    let ahead = ahead_ms
        .checked_mul(params.time.units_per_ms())
        .filter(|&a| a > 0)
        .ok_or_else(|| BuildError::config("mark_ahead", "must be at least 1 ms and fit in u64 nonce units"))?;
    let floor = start_after.max(claim.mark);
    let now = clock.now_ms()?;
    let first_nonce = params
        .span_after(floor, Some(now), 1, ceiling)
        .map_err(|_| {
            BuildError::config(
                "lease",
                format!("no nonce above the slot's mark {floor} fits under the ceiling {ceiling}"),
            )
        })?
        .first;
    let mark = first_nonce.saturating_add(ahead).min(ceiling);
    if let Err(reason) = held.store_claim_mark(&claim, mark) {
        held.abandon(claim);
        return Err(BuildError::Store { reason });
    }
    held.adopt(&claim);
    held.open(&claim);
    held.start_renewer()?;
    let durable = Box::new(DurableMark::over(Box::new(RedisMark(Arc::clone(&held))), ahead).start_at(mark));
    Ok(Start { held, durable, strategy, params, floor })
}

impl<C: Clock> Drop for NonceManager<C> {
    /// With a lease: the slot's mark is settled at `last` and the slot freed.
    fn drop(&mut self) {
        if let Some(held) = self.lease.as_deref() {
            held.settle(self.last());
        }
    }
}

impl<C: Clock> NonceManager<C> {
    /// The parameters and mark to compute with: the slot held, or a
    /// re-acquisition when the gate is closed.
    #[inline(always)]
    pub(super) fn lease_step(&self, params: Params) -> Result<Step, NonceError> {
        let Some(held) = self.lease.as_deref() else { return Ok(Step::Go(params, None)) };
        if !held.gate.held() {
            self.reacquire(held)?;
            return Ok(Step::Reload);
        }
        let mark = self.durable.as_deref().map(DurableMark::mark);
        Ok(Step::Go(Params { offset: held.gate.slot(), ..params }, mark))
    }

    /// After a successful compare-exchange: the nonce (computed under slot
    /// `slot`) is handed out only if the lease is still within its deadline
    /// (less the margin) and still on that slot; otherwise it is dropped.
    #[inline(always)]
    pub(super) fn lease_still_held(&self, slot: u64) -> Result<(), NonceError> {
        match self.lease.as_deref() {
            Some(held) if !held.gate.still_open() || held.gate.slot() != slot => Err(held.lost()),
            _ => Ok(()),
        }
    }

    /// The gate is closed: one thread at a time (others get `LeaseLost` at
    /// once), at most once per retry interval, renews the token it had or
    /// claims a slot (its own first) and switches to it.
    #[cold]
    #[inline(never)]
    fn reacquire(&self, held: &Held) -> Result<(), NonceError> {
        let Some(durable) = self.durable.as_deref() else { return Err(held.lost()) };
        let Some(_store) = durable.try_hold() else { return Err(held.lost()) };
        if held.gate.held() {
            return Ok(()); // another thread did it
        }
        if !held.may_try() {
            return Err(held.lost());
        }
        if held.renew_now() {
            return Ok(());
        }
        let claim = held.claim(held.gate.slot(), &mut || self.clock.now_ms().ok()).map_err(|_| held.lost())?;
        self.switch_to(held, durable, claim)
    }

    /// Steps 1 to 4 of the module's protocol, under the store's lock.
    fn switch_to(&self, held: &Held, durable: &DurableMark, claim: Claim) -> Result<(), NonceError> {
        let params = Params { offset: claim.slot, ..self.params };
        let raised = match self.raise_last(claim.mark) {
            Ok(raised) => raised,
            Err(e) => {
                held.abandon(claim);
                return Err(e);
            }
        };
        let first = params.after(raised).filter(|&n| n <= self.ceiling);
        let Some(first) = first else {
            held.abandon(claim);
            return Err(NonceError::Overflow { ceiling: self.ceiling });
        };
        let mark = first.saturating_add(durable.ahead()).min(self.ceiling).max(durable.mark());
        if held.store_claim_mark(&claim, mark).is_err() {
            held.abandon(claim);
            return Err(held.lost());
        }
        held.adopt(&claim);
        durable.publish(mark);
        self.raise_last(0)?;
        held.open(&claim);
        Ok(())
    }

    /// Raises `last` strictly above `max(last, floor)`; returns the new value.
    fn raise_last(&self, floor: u64) -> Result<u64, NonceError> {
        let ceiling = self.ceiling;
        // AcqRel: the Release half publishes the slot and mark stored before
        // (step 3) to every thread that then loads `last` with Acquire; the
        // Acquire half orders this raise after the values it read.
        self.last
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |last| {
                last.max(floor).checked_add(1).filter(|&n| n <= ceiling)
            })
            .map(|old| old.max(floor) + 1)
            .map_err(|_| NonceError::Overflow { ceiling })
    }

    /// The slot this manager's lease holds now (`None` without a lease, or while none is held).
    ///
    /// ```no_run
    /// use monotonic_nonce::{client::SlotLease, NonceManager};
    /// let lease = SlotLease::builder("redis://127.0.0.1:6379", "key-1", 4).build()?;
    /// let m = NonceManager::builder().lease(lease).build()?;
    /// assert_eq!(m.lease_slot(), Some(m.next()? % 4));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn lease_slot(&self) -> Option<u64> {
        let held = self.lease.as_deref()?;
        held.gate.held().then(|| held.gate.slot())
    }

    /// How many times this manager's lease claimed a slot (1 after `build()`;
    /// each re-acquisition after a lapse adds one; a renewal adds none). 0 without a lease.
    pub fn lease_claims(&self) -> u64 {
        self.lease.as_deref().map_or(0, Held::claims)
    }
}
