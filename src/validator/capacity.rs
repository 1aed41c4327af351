//! [`Capacity`]: the bound of `max_accounts(n)`, shared by every shard of a
//! validator, so that `n` accounts are tracked however the keys hash.

use crate::sync::{AtomicUsize, Ordering};

/// How many accounts the validator tracks, against its bound. A shard that
/// takes a new account claims a place; when the validator is at its bound,
/// the shard evicts its own least recently active account and gives the
/// place back. So at least `min(n, accounts seen)` are tracked, and at most
/// `n` plus one per shard (a shard with nothing to evict takes the account).
#[derive(Debug)]
pub(super) struct Capacity {
    max: usize,
    tracked: AtomicUsize,
}

impl Capacity {
    pub(super) fn new(max: usize) -> Self {
        Self { max, tracked: AtomicUsize::new(0) }
    }

    /// Claims a place for a new account; `true` when the validator was
    /// already at its bound, so the caller should evict one and [`release`](Self::release).
    pub(super) fn claim(&self) -> bool {
        // Relaxed: a count; each shard's accounts are guarded by its own lock, and the
        // count's only use is the eviction decision, whose bounds hold for any interleaving
        // of these read-modify-writes.
        self.tracked.fetch_add(1, Ordering::Relaxed) >= self.max
    }

    /// Gives back a place after an eviction.
    pub(super) fn release(&self) {
        // Relaxed: as in `claim`.
        self.tracked.fetch_sub(1, Ordering::Relaxed);
    }
}
