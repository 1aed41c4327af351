//! One shard of a [`NonceValidator`](crate::NonceValidator): a hash table from
//! account to its state (of the one type its policy uses), the states' side
//! store, and, only when `max_accounts` is set, an intrusive LRU list in a
//! slab of nodes. Each bucket's link into that list and the account's own
//! floor are kept only where they can matter (bounded or restored shards:
//! [`Extra`]).
//! Plain single-threaded data; the validator locks it. The caller hashes each
//! key once (that hash also chose the shard) and passes it in.

use super::capacity::Capacity;
use super::lru::{Lru, NIL};
use super::snapshot::{AccountSnapshot, StateSnapshot};
use super::state::{Alignment, Refusal, State};
use super::Policy;
use crate::error::Rejection;
use crate::sync::Arc;
use hashbrown::HashTable;
use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};

/// What a bucket keeps beside its state and key: the account's own floor and
/// LRU node ([`OwnFloor`]), or nothing ([`Shared`]).
///
/// An account's floor is the validator's floor when it appeared (its state
/// knows nothing at or below it). The validator's floor only rises when a
/// bounded shard evicts, or at a restore; a validator with neither (the
/// common case) keeps it at 0 for life, so its buckets need not carry a copy:
/// 8 bytes (and a load from the bucket) less per account.
pub(super) trait Extra: Copy + std::fmt::Debug + Send + Sync + 'static {
    /// The alignment of a bucket of state `T` with this extra.
    type Align<T: State>: Alignment;
    /// For an account that appears now, while the validator's floor is `shared`.
    fn fresh(shared: u64) -> Self;
    /// For an account restored with its own floor `floor`; `None` when this
    /// kind cannot keep that floor.
    fn restored(floor: u64) -> Option<Self>;
    /// The account's own floor; `None`: the validator's.
    fn floor(self) -> Option<u64>;
    /// Its node in the shard's LRU list (`NIL` while on none); `None` for a
    /// kind that is never on a list (bounded shards are [`OwnFloor`]).
    fn node_mut(&mut self) -> Option<&mut u32>;
}

/// The account's own floor and its node in the shard's LRU list (`NIL` while
/// on none): the buckets of bounded shards and of restored validators.
#[derive(Debug, Clone, Copy)]
pub(super) struct OwnFloor {
    floor: u64,
    node: u32,
}

impl Extra for OwnFloor {
    type Align<T: State> = T::OwnAlign;
    fn fresh(shared: u64) -> Self {
        OwnFloor { floor: shared, node: NIL }
    }
    fn restored(floor: u64) -> Option<Self> {
        Some(OwnFloor { floor, node: NIL })
    }
    fn floor(self) -> Option<u64> {
        Some(self.floor)
    }
    fn node_mut(&mut self) -> Option<&mut u32> {
        Some(&mut self.node)
    }
}

/// Nothing: the account's floor is the validator's, which stays 0 where these
/// are used (unbounded shards of a validator that was not restored), and
/// there is no LRU list.
#[derive(Debug, Clone, Copy)]
pub(super) struct Shared;

impl Extra for Shared {
    type Align<T: State> = T::Align;
    fn fresh(_: u64) -> Self {
        Shared
    }
    fn restored(floor: u64) -> Option<Self> {
        // the validator's floor, 0 or above, refuses at least as much as this one
        (floor == 0).then_some(Shared)
    }
    fn floor(self) -> Option<u64> {
        None
    }
    fn node_mut(&mut self) -> Option<&mut u32> {
        None
    }
}

/// One tracked account: its state, stored inline in the table's bucket with
/// its key, so that a lookup touches one bucket. `repr(C)` puts the key right
/// after the state's last bytes, where `HighestK` keeps its highest values:
/// the key comparison and the common check (a nonce at or near the top)
/// read the same cache line. Each state sets its bucket's alignment, with and
/// without an own floor (`State::Align`, `State::OwnAlign`): `Strict`'s
/// 16-byte bucket aligned to 16 and `Window(w <= 64)`'s 32-byte one to 32
/// sit inside one cache line (with an own floor, 32 bytes aligned to 32 and 48
/// to 16), and so does any `Window(w)`'s (its heap storage is one word);
/// `HighestK`'s 64- and 128-byte buckets align to their size;
/// `HighestK(9..=16)`'s 80- or 96-byte bucket to 8 (smaller beats aligned there).
#[derive(Debug)]
#[repr(C)]
pub(super) struct Entry<K, T: State, E: Extra> {
    /// Zero-sized: raises the bucket's alignment to what the state asks for.
    _align: E::Align<T>,
    state: T,
    key: K,
    /// The account's own floor and LRU node, where the shard keeps them.
    extra: E,
}

impl<K, T: State, E: Extra> Entry<K, T, E> {
    fn new(key: K, state: T, extra: E) -> Self {
        Self { _align: Default::default(), state, key, extra }
    }

    /// The account's floor: its own, or `shared`, the validator's.
    fn floor(&self, shared: u64) -> u64 {
        self.extra.floor().unwrap_or(shared)
    }

    /// The verdict for `nonce`, with the number the client must move past;
    /// `shared` is the validator's floor.
    fn verdict(&self, nonce: u64, param: u64, side: &T::Side, shared: u64) -> Result<(), Rejection> {
        let floor = self.floor(shared);
        let refusal = if nonce <= floor { Err(Refusal::TooLow) } else { self.state.check(nonce, param, side) };
        refusal.map_err(|r| self.rejection(r, nonce, side, floor))
    }

    /// The verdict for `nonce`, recorded if it is accepted.
    fn admit(&mut self, nonce: u64, param: u64, side: &mut T::Side, shared: u64) -> Result<(), Rejection> {
        let floor = self.floor(shared);
        let refusal = if nonce <= floor { Err(Refusal::TooLow) } else { self.state.admit(nonce, param, side) };
        refusal.map_err(|r| self.rejection(r, nonce, side, floor))
    }

    /// The rejection for a refused `nonce` (the state unchanged) under the account's `floor`.
    fn rejection(&self, r: Refusal, nonce: u64, side: &T::Side, floor: u64) -> Rejection {
        // a value the client can move past: the highest accepted or the floor, whichever is higher
        let last_nonce = self.state.highest(side).unwrap_or(0).max(floor);
        match r {
            Refusal::AlreadyUsed => Rejection::AlreadyUsed { last_nonce, attempted_nonce: nonce },
            Refusal::TooLow => Rejection::TooLow { last_nonce, attempted_nonce: nonce },
        }
    }
}

/// What an eviction handed back: the evicted account's highest nonce.
pub(super) type Evicted = Option<u64>;

/// How an accepted nonce was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admitted {
    /// On an account this shard tracked.
    Known,
    /// On a new account, and this eviction made room for it.
    New(Evicted),
}

/// The accounts whose keys hash to one shard, each with a state of type `T`
/// and the extra `E` ([`OwnFloor`] whenever `capacity` is set).
pub(super) struct Shard<K, S, T: State, E: Extra> {
    table: HashTable<Entry<K, T, E>>,
    /// What the states keep outside their buckets.
    side: T::Side,
    /// Rehashes keys when the table grows or an account is evicted (the
    /// validator's hasher: the same hashes it passes in).
    hasher: S,
    /// The policy's parameter (`k` or `w`), the same for every account.
    param: u64,
    /// The accounts from the most to the least recently active (bounded shards only).
    lru: Lru<K>,
    /// The validator's bound on accounts, shared by its shards; `None`:
    /// unbounded, and no LRU bookkeeping.
    capacity: Option<Arc<Capacity>>,
}

impl<K: Hash + Eq + Clone, S: BuildHasher, T: State> Shard<K, S, T, Shared> {
    /// A shard that tracks every account it sees, in a validator whose floor
    /// never rises (no eviction, no restore).
    pub(super) fn unbounded(param: u64, hasher: S) -> Self {
        Self::new(param, None, hasher)
    }
}

impl<K: Hash + Eq + Clone, S: BuildHasher, T: State> Shard<K, S, T, OwnFloor> {
    /// A shard whose accounts keep their own floors: it tracks at most
    /// `capacity` accounts, evicting the least recently active (`None`:
    /// every account, as in a restored validator).
    pub(super) fn own_floors(param: u64, capacity: Option<Arc<Capacity>>, hasher: S) -> Self {
        Self::new(param, capacity, hasher)
    }
}

impl<K: Hash + Eq + Clone, S: BuildHasher, T: State, E: Extra> Shard<K, S, T, E> {
    /// Only through `unbounded` and `own_floors`: a capacity comes with an LRU node.
    fn new(param: u64, capacity: Option<Arc<Capacity>>, hasher: S) -> Self {
        let (table, side) = (HashTable::new(), T::Side::default());
        Self { table, side, hasher, param, lru: Lru::default(), capacity }
    }

    /// Room for `n` more accounts; an error, not an abort, when the memory
    /// cannot be had.
    pub(super) fn try_reserve(&mut self, n: usize) -> Result<(), String> {
        let hasher = &self.hasher;
        self.table.try_reserve(n, |e| hasher.hash_one(&e.key)).map_err(|e| format!("{e:?}"))
    }

    fn find<Q>(&self, hash: u64, account: &Q) -> Option<&Entry<K, T, E>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.table.find(hash, |e| e.key.borrow() == account)
    }

    /// The verdict for `nonce` on `account` (whose hash is `hash`); changes
    /// nothing. `floor` is the validator's floor.
    pub(super) fn check<Q>(&self, hash: u64, account: &Q, nonce: u64, floor: u64) -> Result<(), Rejection>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        match self.find(hash, account) {
            Some(entry) => entry.verdict(nonce, self.param, &self.side, floor),
            None if nonce <= floor => Err(Rejection::TooLow { last_nonce: floor, attempted_nonce: nonce }),
            None => Ok(()),
        }
    }

    /// [`check`](Self::check), then records an accepted nonce (tracking a new
    /// account, and evicting the least recently active one when full). Returns
    /// the evicted account's highest nonce, which the caller folds into its floor.
    #[inline]
    pub(super) fn validate<Q>(&mut self, hash: u64, account: &Q, nonce: u64, floor: u64) -> Result<Admitted, Rejection>
    where
        K: Borrow<Q>,
        Q: Eq + ToOwned<Owned = K> + ?Sized,
    {
        let param = self.param;
        if let Some(entry) = self.table.find_mut(hash, |e| e.key.borrow() == account) {
            entry.admit(nonce, param, &mut self.side, floor)?;
            if let Some(&mut node) = entry.extra.node_mut() {
                if node != NIL {
                    self.lru.touch(node);
                }
            }
            return Ok(Admitted::Known);
        }
        self.track(hash, account, nonce, floor)
    }

    /// `validate` for an account this shard does not track: out of line (a
    /// new account is the rare case once traffic is steady), which keeps the
    /// common path's code and stack frame small.
    #[cold]
    #[inline(never)]
    fn track<Q>(&mut self, hash: u64, account: &Q, nonce: u64, floor: u64) -> Result<Admitted, Rejection>
    where
        Q: ToOwned<Owned = K> + ?Sized,
    {
        if nonce <= floor {
            return Err(Rejection::TooLow { last_nonce: floor, attempted_nonce: nonce });
        }
        let mut state = T::fresh(self.param);
        state.record(nonce, self.param, &mut self.side);
        Ok(Admitted::New(self.insert(hash, Entry::new(account.to_owned(), state, E::fresh(floor)))))
    }

    pub(super) fn highest<Q>(&self, hash: u64, account: &Q) -> Option<u64>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.find(hash, account).and_then(|e| e.state.highest(&self.side))
    }

    pub(super) fn len(&self) -> usize {
        self.table.len()
    }

    /// Appends every tracked account that accepted something to `out`;
    /// `shared` is the validator's floor.
    pub(super) fn snapshot_into(&self, out: &mut Vec<AccountSnapshot<K>>, shared: u64) {
        out.extend(self.table.iter().filter_map(|e| {
            let state = e.state.snapshot(self.param, &self.side)?;
            Some(AccountSnapshot { account: e.key.clone(), floor: e.floor(shared), state })
        }));
    }

    /// Tracks `key` (hash `hash`) with the state `snap` rebuilt under this
    /// shard's policy and its own `floor`; `from` is the policy the snapshot
    /// was taken under. Returns what an eviction handed back.
    pub(super) fn restore(
        &mut self,
        hash: u64,
        key: K,
        snap: &StateSnapshot,
        from: Policy,
        floor: u64,
        ceiling: u64,
    ) -> Result<Evicted, String> {
        if self.find(hash, &key).is_some() {
            return Err("it appears twice".to_owned());
        }
        // a restored validator's shards keep own floors; this refusal is the fail-closed guard
        let extra = E::restored(floor).ok_or_else(|| format!("its floor {floor} needs a shard that keeps floors"))?;
        let state = snap.rebuild::<T>(from, self.param, ceiling, &mut self.side)?;
        Ok(self.insert(hash, Entry::new(key, state, extra)))
    }

    /// Tracks a new account, evicting the least recently active one when full;
    /// returns the evicted account's highest nonce (or its floor, if higher).
    fn insert(&mut self, hash: u64, mut entry: Entry<K, T, E>) -> Evicted {
        let mut evicted = None;
        if let Some(capacity) = &self.capacity {
            // at the validator's bound (or the LRU's index space): this shard's least
            // recently active account, if it has one, makes room
            let evict = capacity.claim() && !self.lru.is_empty();
            let pushed = if evict { None } else { self.lru.push(entry.key.clone()) };
            let node = match pushed {
                Some(i) => i,
                // evicting (or, past 2^32 - 1 nodes, the LRU's index space is full)
                None => match self.lru.replace_oldest(entry.key.clone()) {
                    Some((victim, old_key)) => {
                        capacity.release();
                        let old_hash = self.hasher.hash_one(&old_key);
                        if let Ok(occupied) = self.table.find_entry(old_hash, |e| e.key == old_key) {
                            let (old, _) = occupied.remove();
                            // a bounded shard's buckets keep their own floors, so the 0 for a shared one is never read
                            evicted = old.state.highest(&self.side).map(|h| h.max(old.floor(0)));
                            old.state.release(&mut self.side);
                        }
                        victim
                    }
                    None => NIL,
                },
            };
            // a capacity comes only with `OwnFloor` buckets (`own_floors`), which keep a node
            if let Some(slot) = entry.extra.node_mut() {
                *slot = node;
            }
        }
        let hasher = &self.hasher;
        self.table.insert_unique(hash, entry, |e| hasher.hash_one(&e.key));
        evicted
    }

    pub(super) fn heap_bytes(&self) -> usize {
        // the table's own allocation (buckets and control bytes), the LRU nodes,
        // the side store and whatever the states hold beyond their buckets
        let lru = self.lru.heap_bytes();
        let states: usize = self.table.iter().map(|e| e.state.heap_bytes()).sum();
        self.table.allocation_size() + lru + T::side_bytes(&self.side) + states
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validator::highest::{Highest16, Highest24, Highest32, Highest40, Highest8};
    use crate::validator::state::Strict;
    use std::collections::hash_map::RandomState;

    fn shard<T: State>(param: u64) -> Shard<u32, RandomState, T, Shared> {
        Shard::unbounded(param, RandomState::new())
    }

    /// What an eviction handed back, if the nonce was accepted on a new account.
    fn evicted_by(a: Admitted) -> Evicted {
        match a {
            Admitted::Known => None,
            Admitted::New(e) => e,
        }
    }

    fn h<E: Extra>(s: &Shard<u32, RandomState, impl State, E>, k: u32) -> u64 {
        s.hasher.hash_one(k)
    }

    #[test]
    fn lru_evicts_the_least_recently_active_account() {
        let mut s =
            Shard::<u32, _, Strict, OwnFloor>::own_floors(0, Some(Arc::new(Capacity::new(2))), RandomState::new());
        for (k, n, evicted) in [(1, 10, None), (2, 20, None), (1, 11, None), (3, 30, Some(20))] {
            // 1 is the most recent after its second nonce, so 3 evicts 2
            assert_eq!(s.validate(h(&s, k), &k, n, 0).map(evicted_by), Ok(evicted));
        }
        for (k, tracked) in [(1, true), (3, true), (2, false)] {
            assert_eq!(s.highest(h(&s, k), &k).is_some(), tracked, "{k}");
        }
        assert_eq!(s.len(), 2);
    }

    /// An evicted account gives its side-store slot back: a bounded shard of
    /// accounts whose values span more than `u32::MAX` holds at most one slot
    /// per tracked account, however many come and go.
    #[test]
    fn evicting_a_wide_account_frees_its_side_slot() {
        let mut s =
            Shard::<u32, _, Highest8, OwnFloor>::own_floors(2, Some(Arc::new(Capacity::new(2))), RandomState::new());
        let far = 1 << 40;
        for k in 0..10u32 {
            for n in [7, far] {
                assert_eq!(s.validate(h(&s, k), &k, n, 0).map(|_| ()), Ok(()), "account {k} nonce {n}");
            }
            assert_eq!(s.highest(h(&s, k), &k), Some(far));
            assert_eq!(
                s.check(h(&s, k), &k, 7, 0),
                Err(Rejection::AlreadyUsed { last_nonce: far, attempted_nonce: 7 })
            );
        }
        assert_eq!(s.len(), 2);
        let (held, in_use) = s.side.slots();
        assert_eq!(in_use, 2, "one slot per tracked account");
        assert!(held <= 3, "slots reused: {held}");
    }

    #[test]
    fn too_low_reports_the_floor_when_it_is_above_the_highest() {
        let own = |floor| OwnFloor::restored(floor).expect("an own floor keeps any floor");
        let mut s = Shard::<u32, _, Highest8, OwnFloor>::own_floors(4, None, RandomState::new());
        s.insert(h(&s, 7), Entry::new(7, Highest8::fresh(4), own(1_000)));
        assert_eq!(s.validate(h(&s, 7), &7, 1_001, 0).map(evicted_by), Ok(None));
        // the floor (1 000) is below the highest (1 001) here; a refusal names the higher
        assert_eq!(s.check(h(&s, 7), &7, 500, 0), Err(Rejection::TooLow { last_nonce: 1_001, attempted_nonce: 500 }));
        let mut s = Shard::<u32, _, Strict, OwnFloor>::own_floors(0, None, RandomState::new());
        let mut state = Strict::fresh(0);
        state.record(5, 0, &mut ());
        s.insert(h(&s, 8), Entry::new(8, state, own(9_000))); // a guarded restore: floor far above the highest
        assert_eq!(s.check(h(&s, 8), &8, 6, 0), Err(Rejection::TooLow { last_nonce: 9_000, attempted_nonce: 6 }));
    }

    #[test]
    fn check_records_nothing() {
        let mut s = shard::<Strict>(0);
        assert_eq!(s.check(h(&s, 1), &1, 5, 0), Ok(()));
        assert_eq!(s.len(), 0);
        assert_eq!(s.validate(h(&s, 1), &1, 5, 0).map(evicted_by), Ok(None));
        assert_eq!(s.check(h(&s, 1), &1, 5, 0), Err(Rejection::AlreadyUsed { last_nonce: 5, attempted_nonce: 5 }));
    }

    /// A bucket without its own floor reads the validator's on every verdict
    /// (were it ever raised, it would refuse at least what an own copy
    /// would), and cannot take a restored account's floor above 0.
    #[test]
    fn shared_buckets_read_the_validators_floor() {
        let mut s = shard::<Strict>(0);
        assert_eq!(s.validate(h(&s, 1), &1, 10, 0).map(evicted_by), Ok(None));
        assert_eq!(s.check(h(&s, 1), &1, 12, 15), Err(Rejection::TooLow { last_nonce: 15, attempted_nonce: 12 }));
        assert_eq!(s.validate(h(&s, 1), &1, 20, 25), Err(Rejection::TooLow { last_nonce: 25, attempted_nonce: 20 }));
        assert_eq!(s.validate(h(&s, 1), &1, 30, 25).map(evicted_by), Ok(None));
        let snap = StateSnapshot::Strict { last: 7 };
        assert!(s.restore(h(&s, 2), 2, &snap, Policy::Strict, 5, u64::MAX).is_err());
        assert_eq!(s.restore(h(&s, 2), 2, &snap, Policy::Strict, 0, u64::MAX), Ok(None));
        let mut out = Vec::new();
        s.snapshot_into(&mut out, 3);
        out.sort_by_key(|a| a.account);
        assert_eq!(out.iter().map(|a| (a.account, a.floor)).collect::<Vec<_>>(), [(1, 3), (2, 3)]);
    }

    /// The bucket holds the key and the entry: its size is the memory per
    /// account. A bucket with an own floor adds it and the LRU link (12 bytes,
    /// partly in what was padding).
    #[test]
    fn entries_are_as_small_as_their_state() {
        use crate::validator::state::{BigWindow, SmallWindow};
        fn layout<T: State>() -> [(usize, usize); 2] {
            let shared = (std::mem::size_of::<Entry<u64, T, Shared>>(), std::mem::align_of::<Entry<u64, T, Shared>>());
            let own = (std::mem::size_of::<Entry<u64, T, OwnFloor>>(), std::mem::align_of::<Entry<u64, T, OwnFloor>>());
            [shared, own]
        }
        // the state and the key: 16 bytes for `Strict`, as a bare map's `(u64, u64)`
        assert_eq!(layout::<Strict>(), [(16, 16), (32, 32)]);
        // HighestK's size classes: 64 and 128 aligned to their size; 80 to 8 (96 with an own floor)
        let sizes = [
            layout::<Highest8>(),
            layout::<Highest16>(),
            layout::<Highest24>(),
            layout::<Highest32>(),
            layout::<Highest40>(),
        ];
        assert_eq!(
            sizes,
            [
                [(64, 64), (64, 64)],
                [(80, 8), (96, 8)],
                [(128, 128), (128, 128)],
                [(160, 32), (160, 32)],
                [(192, 64), (192, 64)]
            ]
        );
        // either window's bucket is half a cache line (48 bytes with an own floor)
        assert_eq!(layout::<SmallWindow>(), [(32, 32), (48, 16)]);
        assert_eq!(layout::<BigWindow>(), [(32, 32), (48, 16)]);
    }
}
