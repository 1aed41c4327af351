//! Which state type each policy's accounts use, and the dispatch: a shard's
//! table is one of these, chosen once at build time (by the policy, and by
//! whether `max_accounts` bounds it), so the hot path is monomorphized per
//! state type behind one `match`.

use super::highest::{Highest16, Highest24, Highest32, Highest40, Highest8, HighestDeque};
use super::shard::{Evicted, Lru, NoLru, Shard};
use super::snapshot::{AccountSnapshot, StateSnapshot};
use super::state::{BigWindow, SmallWindow, Strict};
use super::window::ring_words;
use super::Policy;
use crate::error::Rejection;
use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};

/// Declares the table enum, one variant per state type for unbounded shards
/// (buckets without an LRU link) and one `..Lru` variant per state type for
/// bounded ones, and `each!`, which runs an expression on whichever it is.
macro_rules! tables {
    ($($state:ident, $bounded:ident;)*) => {
        /// One shard, typed by its policy's state and by whether it is bounded.
        pub(super) enum Table<K, S> {
            $(
                $state(Shard<K, S, $state, NoLru>),
                $bounded(Shard<K, S, $state, Lru>),
            )*
        }

        /// Runs `$body` with `$s` bound to the shard, whatever its type.
        macro_rules! each {
            ($table:expr, $s:ident => $body:expr) => {
                match $table {
                    $(Table::$state($s) => $body, Table::$bounded($s) => $body,)*
                }
            };
        }

        impl<K: Hash + Eq + Clone, S: BuildHasher> Table<K, S> {
            /// An empty shard of state `class`, tracking at most `capacity`
            /// accounts (`None`: every account).
            fn of(class: Class, param: u64, capacity: Option<usize>, hasher: S) -> Self {
                match (class, capacity) {
                    $(
                        (Class::$state, None) => Table::$state(Shard::unbounded(param, hasher)),
                        (Class::$state, Some(c)) => Table::$bounded(Shard::bounded(param, c, hasher)),
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
    Strict, StrictLru;
    Highest8, Highest8Lru;
    Highest16, Highest16Lru;
    Highest24, Highest24Lru;
    Highest32, Highest32Lru;
    Highest40, Highest40Lru;
    HighestDeque, HighestDequeLru;
    SmallWindow, SmallWindowLru;
    BigWindow, BigWindowLru;
}

impl<K: Hash + Eq + Clone, S: BuildHasher> Table<K, S> {
    /// An empty shard for `policy` (already checked).
    pub(super) fn new(policy: Policy, capacity: Option<usize>, hasher: S) -> Self {
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
        Self::of(class, param, capacity, hasher)
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
