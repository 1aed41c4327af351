//! Which state type each policy's accounts use, and the dispatch: a shard's
//! table is one of these, chosen once at build time, so the hot path is
//! monomorphized per state type behind one `match`.

use super::shard::{Evicted, Shard};
use super::snapshot::{AccountSnapshot, StateSnapshot};
use super::state::{
    BigWindow, Highest14, Highest22, Highest30, Highest38, Highest6, HighestDeque, SmallWindow, Strict,
};
use super::window::ring_words;
use super::Policy;
use crate::error::Rejection;
use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};

/// One shard, typed by its policy's state.
pub(super) enum Table<K, S> {
    Strict(Shard<K, S, Strict>),
    Highest6(Shard<K, S, Highest6>),
    Highest14(Shard<K, S, Highest14>),
    Highest22(Shard<K, S, Highest22>),
    Highest30(Shard<K, S, Highest30>),
    Highest38(Shard<K, S, Highest38>),
    HighestDeque(Shard<K, S, HighestDeque>),
    SmallWindow(Shard<K, S, SmallWindow>),
    BigWindow(Shard<K, S, BigWindow>),
}

/// Runs `$body` with `$s` bound to the shard, whatever its state type.
macro_rules! each {
    ($table:expr, $s:ident => $body:expr) => {
        match $table {
            Table::Strict($s) => $body,
            Table::Highest6($s) => $body,
            Table::Highest14($s) => $body,
            Table::Highest22($s) => $body,
            Table::Highest30($s) => $body,
            Table::Highest38($s) => $body,
            Table::HighestDeque($s) => $body,
            Table::SmallWindow($s) => $body,
            Table::BigWindow($s) => $body,
        }
    };
}

impl<K: Hash + Eq + Clone, S: BuildHasher> Table<K, S> {
    /// An empty shard for `policy` (already checked).
    pub(super) fn new(policy: Policy, capacity: Option<usize>, hasher: S) -> Self {
        match policy {
            Policy::Strict => Table::Strict(Shard::new(0, capacity, hasher)),
            Policy::HighestK(k) => {
                let p = k as u64;
                match k {
                    0..=6 => Table::Highest6(Shard::new(p, capacity, hasher)),
                    7..=14 => Table::Highest14(Shard::new(p, capacity, hasher)),
                    15..=22 => Table::Highest22(Shard::new(p, capacity, hasher)),
                    23..=30 => Table::Highest30(Shard::new(p, capacity, hasher)),
                    31..=38 => Table::Highest38(Shard::new(p, capacity, hasher)),
                    _ => Table::HighestDeque(Shard::new(p, capacity, hasher)),
                }
            }
            Policy::Window(w) if ring_words(w) == 2 => Table::SmallWindow(Shard::new(w, capacity, hasher)),
            Policy::Window(w) => Table::BigWindow(Shard::new(w, capacity, hasher)),
        }
    }

    pub(super) fn check<Q>(&self, hash: u64, account: &Q, nonce: u64, floor: u64) -> Result<(), Rejection>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        each!(self, s => s.check(hash, account, nonce, floor))
    }

    /// Inlined (with the shard's `validate` and the precheck) into
    /// `NonceValidator::validate`: out of line, each handed its `Result` back
    /// through memory. callgrind counted 210 -> 153 instructions per `Strict`
    /// call in a steady-state loop.
    #[inline]
    pub(super) fn validate<Q>(&mut self, hash: u64, account: &Q, nonce: u64, floor: u64) -> Result<Evicted, Rejection>
    where
        K: Borrow<Q>,
        Q: Eq + ToOwned<Owned = K> + ?Sized,
    {
        each!(self, s => s.validate(hash, account, nonce, floor))
    }

    pub(super) fn highest<Q>(&self, hash: u64, account: &Q) -> Option<u64>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        each!(self, s => s.highest(hash, account))
    }

    pub(super) fn try_reserve(&mut self, n: usize) -> Result<(), String> {
        each!(self, s => s.try_reserve(n))
    }

    pub(super) fn len(&self) -> usize {
        each!(self, s => s.len())
    }

    pub(super) fn heap_bytes(&self) -> usize {
        each!(self, s => s.heap_bytes())
    }

    pub(super) fn snapshot_into(&self, out: &mut Vec<AccountSnapshot<K>>) {
        each!(self, s => s.snapshot_into(out))
    }

    pub(super) fn restore(
        &mut self,
        hash: u64,
        key: K,
        snap: &StateSnapshot,
        from: Policy,
        floor: u64,
        ceiling: u64,
    ) -> Result<Evicted, String> {
        each!(self, s => s.restore(hash, key, snap, from, floor, ceiling))
    }
}
