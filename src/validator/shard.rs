//! One shard of a [`NonceValidator`](crate::NonceValidator): a map from
//! account to its state and, only when `max_accounts` is set, an intrusive LRU
//! list in a slab of nodes. Plain single-threaded data; the validator locks it.

use super::policy::{AccountState, Refusal};
use crate::error::Rejection;
use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

const NIL: u32 = u32::MAX;

/// One tracked account's state, stored inline in the shard's map so that a
/// lookup touches one bucket (plus a HighestK or window allocation, if any).
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) state: AccountState,
    /// The floor when this account (re)appeared: its state knows nothing at or
    /// below it, so everything there is refused.
    pub(super) floor: u64,
    /// Its node in the shard's LRU list (`NIL` when accounts are unbounded).
    node: u32,
}

impl Entry {
    pub(super) fn new(state: AccountState, floor: u64) -> Self {
        Self { state, floor, node: NIL }
    }

    /// The verdict for `nonce`, with the number the client must move past.
    fn verdict(&self, nonce: u64) -> Result<(), Rejection> {
        let refusal = if nonce <= self.floor { Err(Refusal::TooLow) } else { self.state.check(nonce) };
        refusal.map_err(|r| {
            // a value the client can move past: the highest accepted or the floor, whichever is higher
            let last_nonce = self.state.highest().unwrap_or(0).max(self.floor);
            match r {
                Refusal::AlreadyUsed => Rejection::AlreadyUsed { last_nonce, attempted_nonce: nonce },
                Refusal::TooLow => Rejection::TooLow { last_nonce, attempted_nonce: nonce },
            }
        })
    }
}

/// An LRU list node: which key it stands for and its neighbours.
#[derive(Debug)]
struct Node<K> {
    key: K,
    /// Towards the most recently active (`NIL` at the head).
    prev: u32,
    /// Towards the least recently active (`NIL` at the tail).
    next: u32,
}

/// What an eviction handed back: the evicted account's highest nonce.
pub(super) type Evicted = Option<u64>;

/// The accounts whose keys hash to one shard.
#[derive(Debug)]
pub(super) struct Shard<K, S> {
    index: HashMap<K, Entry, S>,
    lru: Vec<Node<K>>,
    head: u32,
    tail: u32,
    /// Accounts this shard may track; `None`: unbounded, and no LRU bookkeeping.
    capacity: Option<usize>,
}

impl<K: Hash + Eq + Clone, S: BuildHasher> Shard<K, S> {
    pub(super) fn new(capacity: Option<usize>, hasher: S) -> Self {
        Self { index: HashMap::with_hasher(hasher), lru: Vec::new(), head: NIL, tail: NIL, capacity }
    }

    /// Reserves room for `n` more accounts.
    pub(super) fn reserve(&mut self, n: usize) {
        self.index.reserve(n);
    }

    /// The verdict for `nonce` on `account`; changes nothing. `floor` is the
    /// floor for accounts this shard does not track.
    pub(super) fn check<Q>(&self, account: &Q, nonce: u64, floor: u64) -> Result<(), Rejection>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match self.index.get(account) {
            Some(entry) => entry.verdict(nonce),
            None if nonce <= floor => Err(Rejection::TooLow { last_nonce: floor, attempted_nonce: nonce }),
            None => Ok(()),
        }
    }

    /// [`check`](Self::check), then records an accepted nonce (tracking a new
    /// account, and evicting the least recently active one when full). Returns
    /// the evicted account's highest nonce, which the caller folds into its floor.
    pub(super) fn validate<Q>(
        &mut self,
        account: &Q,
        nonce: u64,
        floor: u64,
        new_state: impl FnOnce() -> AccountState,
    ) -> Result<Evicted, Rejection>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(entry) = self.index.get_mut(account) {
            entry.verdict(nonce)?;
            entry.state.record(nonce);
            let node = entry.node;
            if node != NIL {
                self.touch(node);
            }
            return Ok(None);
        }
        if nonce <= floor {
            return Err(Rejection::TooLow { last_nonce: floor, attempted_nonce: nonce });
        }
        let mut state = new_state();
        state.record(nonce);
        Ok(self.insert(account.to_owned(), Entry::new(state, floor)))
    }

    pub(super) fn highest<Q>(&self, account: &Q) -> Option<u64>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.index.get(account).and_then(|e| e.state.highest())
    }

    pub(super) fn contains(&self, account: &K) -> bool {
        self.index.contains_key(account)
    }

    pub(super) fn len(&self) -> usize {
        self.index.len()
    }

    pub(super) fn entries(&self) -> impl Iterator<Item = (&K, &Entry)> {
        self.index.iter()
    }

    /// Tracks a new account, evicting the least recently active one when full;
    /// returns the evicted account's highest nonce.
    pub(super) fn insert(&mut self, key: K, mut entry: Entry) -> Evicted {
        let Some(capacity) = self.capacity else {
            self.index.insert(key, entry);
            return None;
        };
        let limit = capacity.min(NIL as usize - 1);
        let mut evicted = None;
        let node = if self.index.len() >= limit && self.tail != NIL {
            let victim = self.tail;
            let old_key = std::mem::replace(&mut self.lru[victim as usize].key, key.clone());
            evicted = self.index.remove(&old_key).and_then(|old| old.state.highest().map(|h| h.max(old.floor)));
            self.touch(victim);
            victim
        } else {
            let i = self.lru.len() as u32; // < NIL: bounded by `limit` above
            self.lru.push(Node { key: key.clone(), prev: NIL, next: NIL });
            self.push_front(i);
            i
        };
        entry.node = node;
        self.index.insert(key, entry);
        evicted
    }

    fn touch(&mut self, i: u32) {
        if self.head != i {
            self.unlink(i);
            self.push_front(i);
        }
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = (self.lru[i as usize].prev, self.lru[i as usize].next);
        match prev {
            NIL => self.head = next,
            p => self.lru[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.lru[n as usize].prev = prev,
        }
    }

    fn push_front(&mut self, i: u32) {
        let old = self.head;
        self.lru[i as usize].prev = NIL;
        self.lru[i as usize].next = old;
        match old {
            NIL => self.tail = i,
            h => self.lru[h as usize].prev = i,
        }
        self.head = i;
    }

    pub(super) fn heap_bytes(&self) -> usize {
        // hashbrown: one control byte plus one (K, Entry) per bucket
        let index = self.index.capacity() * (std::mem::size_of::<(K, Entry)>() + 1);
        let lru = self.lru.capacity() * std::mem::size_of::<Node<K>>();
        let states: usize = self.index.values().map(|e| e.state.heap_bytes()).sum();
        index + lru + states
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validator::Policy;
    use std::collections::hash_map::RandomState;

    fn shard(capacity: Option<usize>) -> Shard<u32, RandomState> {
        Shard::new(capacity, RandomState::new())
    }

    #[test]
    fn lru_evicts_the_least_recently_active_account() {
        let mut s = shard(Some(2));
        let strict = || AccountState::new(Policy::Strict);
        assert_eq!(s.validate(&1, 10, 0, strict), Ok(None));
        assert_eq!(s.validate(&2, 20, 0, strict), Ok(None));
        assert_eq!(s.validate(&1, 11, 0, strict), Ok(None)); // 1 is now the most recent
        assert_eq!(s.validate(&3, 30, 0, strict), Ok(Some(20))); // evicts 2
        assert!(s.contains(&1) && s.contains(&3) && !s.contains(&2));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn too_low_reports_the_floor_when_it_is_above_the_highest() {
        let mut s = shard(None);
        s.insert(7, Entry::new(AccountState::new(Policy::HighestK(4)), 1_000));
        assert_eq!(s.validate(&7, 1_001, 0, || unreachable!()), Ok(None));
        // the floor (1 000) is below the highest (1 001) here; a refusal names the higher
        assert_eq!(s.check(&7, 500, 0), Err(Rejection::TooLow { last_nonce: 1_001, attempted_nonce: 500 }));
        let mut s = shard(None);
        let mut state = AccountState::new(Policy::Strict);
        state.record(5);
        s.insert(8, Entry::new(state, 9_000)); // a guarded restore: floor far above the highest
        assert_eq!(s.check(&8, 6, 0), Err(Rejection::TooLow { last_nonce: 9_000, attempted_nonce: 6 }));
    }

    #[test]
    fn check_records_nothing() {
        let mut s = shard(None);
        assert_eq!(s.check(&1, 5, 0), Ok(()));
        assert_eq!(s.len(), 0);
        assert_eq!(s.validate(&1, 5, 0, || AccountState::new(Policy::Strict)), Ok(None));
        assert_eq!(s.check(&1, 5, 0), Err(Rejection::AlreadyUsed { last_nonce: 5, attempted_nonce: 5 }));
    }
}
#[cfg(test)]
mod size {
    /// The bucket holds the key and this inline: its size is memory per account.
    #[test]
    fn an_entry_stays_within_56_bytes() {
        assert!(std::mem::size_of::<super::Entry>() <= 56, "{}", std::mem::size_of::<super::Entry>());
    }
}
