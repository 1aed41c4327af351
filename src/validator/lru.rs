//! [`Lru`]: a bounded shard's accounts from the most to the least recently
//! active, as a doubly linked list in a slab (nodes addressed by `u32`
//! index, so an account's bucket holds its node in 4 bytes). Single-threaded:
//! its shard's lock guards it.

/// No node.
pub(super) const NIL: u32 = u32::MAX;

/// An LRU list node: which key it stands for and its neighbours.
#[derive(Debug)]
struct Node<K> {
    key: K,
    /// Towards the most recently active (`NIL` at the head).
    prev: u32,
    /// Towards the least recently active (`NIL` at the tail).
    next: u32,
}

/// The list. Nodes are never freed: an eviction hands the victim's node to
/// the account that replaces it.
#[derive(Debug)]
pub(super) struct Lru<K> {
    nodes: Vec<Node<K>>,
    head: u32,
    tail: u32,
}

impl<K> Default for Lru<K> {
    fn default() -> Self {
        Self { nodes: Vec::new(), head: NIL, tail: NIL }
    }
}

impl<K> Lru<K> {
    /// A new node for `key`, the most recently active; `None` when the
    /// index space (below `NIL`) is full.
    pub(super) fn push(&mut self, key: K) -> Option<u32> {
        let i = u32::try_from(self.nodes.len()).ok().filter(|&i| i < NIL)?;
        self.nodes.push(Node { key, prev: NIL, next: NIL });
        self.push_front(i);
        Some(i)
    }

    /// Gives the least recently active node to `key`, now the most recently
    /// active; returns the node and the key it stood for (`None`: the list is empty).
    pub(super) fn replace_oldest(&mut self, key: K) -> Option<(u32, K)> {
        let victim = self.tail;
        if victim == NIL {
            return None;
        }
        let old = std::mem::replace(&mut self.nodes[victim as usize].key, key);
        self.touch(victim);
        Some((victim, old))
    }

    /// Whether it holds no node.
    pub(super) fn is_empty(&self) -> bool {
        self.tail == NIL
    }

    /// Makes node `i` the most recently active.
    pub(super) fn touch(&mut self, i: u32) {
        if self.head != i {
            self.unlink(i);
            self.push_front(i);
        }
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = (self.nodes[i as usize].prev, self.nodes[i as usize].next);
        match prev {
            NIL => self.head = next,
            p => self.nodes[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.nodes[n as usize].prev = prev,
        }
    }

    fn push_front(&mut self, i: u32) {
        let old = self.head;
        self.nodes[i as usize].prev = NIL;
        self.nodes[i as usize].next = old;
        match old {
            NIL => self.tail = i,
            h => self.nodes[h as usize].prev = i,
        }
        self.head = i;
    }

    /// Bytes on the heap.
    pub(super) fn heap_bytes(&self) -> usize {
        self.nodes.capacity() * std::mem::size_of::<Node<K>>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_is_replaced_and_a_touch_saves_a_node() {
        let mut l = Lru::default();
        let (a, b, c) = (l.push('a').unwrap(), l.push('b').unwrap(), l.push('c').unwrap());
        l.touch(a); // a is now the most recent: b is the oldest
        assert_eq!(l.replace_oldest('d'), Some((b, 'b')));
        assert_eq!(l.replace_oldest('e'), Some((c, 'c')));
        assert_eq!(l.replace_oldest('f'), Some((a, 'a')));
        assert!(!l.is_empty());
        assert_eq!(Lru::<u8>::default().replace_oldest(1), None);
    }
}
