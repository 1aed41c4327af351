//! Which state type each policy's accounts use, and the dispatch: a shard's
//! table is one of these, chosen once at build time (by the policy, and by
//! whether its accounts keep their own floors: when `max_accounts` bounds it,
//! or it is restored), so the hot path is monomorphized per state type behind
//! one `match`.

use super::capacity::Capacity;
use super::highest::{Highest16, Highest24, Highest32, Highest40, Highest8, HighestDeque};
use super::shard::{Admitted, Evicted, OwnFloor, Shard, Shared};
use super::snapshot::{AccountSnapshot, StateSnapshot};
use super::state::{BigWindow, SmallWindow, Strict};
use super::window::ring_words;
use super::Policy;
use crate::error::Rejection;
use crate::sync::Arc;
use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};

/// Declares the table enum, one variant per state type for shards whose
/// accounts share the validator's floor (no floor or LRU link per bucket) and
/// one `..Own` variant per state type for the others, and `each!`, which
/// runs an expression on whichever it is.
macro_rules! tables {
    ($($state:ident, $own:ident;)*) => {
        /// One shard, typed by its policy's state and by whether its accounts
        /// keep their own floors.
        pub(super) enum Table<K, S> {
            $(
                $state(Shard<K, S, $state, Shared>),
                $own(Shard<K, S, $state, OwnFloor>),
            )*
        }

        /// Runs `$body` with `$s` bound to the shard, whatever its type.
        macro_rules! each {
            ($table:expr, $s:ident => $body:expr) => {
                match $table {
                    $(Table::$state($s) => $body, Table::$own($s) => $body,)*
                }
            };
        }

        impl<K: Hash + Eq + Clone, S: BuildHasher> Table<K, S> {
            /// An empty shard of state `class`, tracking at most `capacity`
            /// accounts (`None`: every account); `own_floors` gives each
            /// account its own floor (always with a `capacity`).
            fn of(class: Class, param: u64, capacity: Option<Arc<Capacity>>, own_floors: bool, hasher: S) -> Self {
                match (class, own_floors || capacity.is_some()) {
                    $(
                        (Class::$state, false) => Table::$state(Shard::unbounded(param, hasher)),
                        (Class::$state, true) => Table::$own(Shard::own_floors(param, capacity, hasher)),
                    )*
                }
            }
        }

        /// The state types, as data.
        #[derive(Debug, Clone, Copy)]
        enum Class {
            $($state,)*
        }
    };
}

tables! {
    Strict, StrictOwn;
    Highest8, Highest8Own;
    Highest16, Highest16Own;
    Highest24, Highest24Own;
    Highest32, Highest32Own;
    Highest40, Highest40Own;
    HighestDeque, HighestDequeOwn;
    SmallWindow, SmallWindowOwn;
    BigWindow, BigWindowOwn;
}

impl<K: Hash + Eq + Clone, S: BuildHasher> Table<K, S> {
    /// An empty shard for `policy` (already checked), tracking at most
    /// `capacity` accounts. Its accounts keep their own floors when it is
    /// bounded or `restored`; otherwise the validator's floor never rises
    /// (only an eviction or a restore raises it) and they share it.
    pub(super) fn new(policy: Policy, capacity: Option<Arc<Capacity>>, restored: bool, hasher: S) -> Self {
        let (class, param) = match policy {
            Policy::Strict => (Class::Strict, 0),
            Policy::HighestK(k) => {
                let class = match k {
                    0..=8 => Class::Highest8,
                    9..=16 => Class::Highest16,
                    17..=24 => Class::Highest24,
                    25..=32 => Class::Highest32,
                    33..=40 => Class::Highest40,
                    _ => Class::HighestDeque,
                };
                (class, k as u64)
            }
            Policy::Window(w) if ring_words(w) == 2 => (Class::SmallWindow, w),
            Policy::Window(w) => (Class::BigWindow, w),
        };
        Self::of(class, param, capacity, restored, hasher)
    }

    pub(super) fn check<Q>(&self, hash: u64, account: &Q, nonce: u64, floor: u64) -> Result<(), Rejection>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        each!(self, s => s.check(hash, account, nonce, floor))
    }

    /// Inlined (with the shard's `validate` and the precheck) into
    /// `NonceValidator::validate`: out of line, each hands its `Result` back
    /// through memory.
    #[inline]
    pub(super) fn validate<Q>(&mut self, hash: u64, account: &Q, nonce: u64, floor: u64) -> Result<Admitted, Rejection>
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

    pub(super) fn snapshot_into(&self, out: &mut Vec<AccountSnapshot<K>>, shared: u64) {
        each!(self, s => s.snapshot_into(out, shared))
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
