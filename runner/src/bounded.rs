//! A FIFO bounded by item count and by bytes, evicting the oldest first: the per-session
//! SSE replay buffer and the backlog of messages waiting for a GET stream. A count alone
//! does not bound memory when one message may be up to `MAX_MESSAGE_BYTES` (16 MiB).
//!
//! The count bound is strict. The byte bound always keeps the newest item, so one message
//! larger than the whole budget is still delivered or replayed once; the queue then holds
//! at most `max_bytes` plus that one message.

use std::collections::VecDeque;

pub struct Bounded<T> {
    items: VecDeque<(T, usize)>,
    bytes: usize,
    max_items: usize,
    max_bytes: usize,
}

impl<T> Bounded<T> {
    pub fn new(max_items: usize, max_bytes: usize) -> Self {
        Self {
            items: VecDeque::new(),
            bytes: 0,
            max_items,
            max_bytes,
        }
    }

    /// Appends `item`, which takes `size` bytes, then evicts the oldest items until both
    /// bounds hold.
    pub fn push(&mut self, item: T, size: usize) {
        self.items.push_back((item, size));
        self.bytes += size;
        while self.items.len() > self.max_items
            || (self.bytes > self.max_bytes && self.items.len() > 1)
        {
            match self.items.pop_front() {
                Some((_, old)) => self.bytes -= old,
                None => break,
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.items.iter().map(|(item, _)| item)
    }

    /// Takes every item out, oldest first.
    pub fn take_all(&mut self) -> Vec<T> {
        self.bytes = 0;
        self.items.drain(..).map(|(item, _)| item).collect()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_go_first_when_either_bound_is_passed() {
        let mut q = Bounded::new(3, 100);
        for i in 0..5 {
            q.push(i, 10);
        }
        assert_eq!(q.iter().copied().collect::<Vec<_>>(), [2, 3, 4]);
        q.push(5, 90);
        assert_eq!(q.iter().copied().collect::<Vec<_>>(), [4, 5]);
        assert_eq!(q.bytes(), 100);
    }

    #[test]
    fn one_item_over_the_byte_budget_is_kept_alone() {
        let mut q = Bounded::new(10, 100);
        q.push("a", 10);
        q.push("huge", 500);
        assert_eq!(q.iter().copied().collect::<Vec<_>>(), ["huge"]);
        q.push("b", 10);
        assert_eq!(q.iter().copied().collect::<Vec<_>>(), ["b"]);
        assert_eq!(q.take_all(), ["b"]);
        assert!(q.is_empty());
        assert_eq!(q.bytes(), 0);
    }

    #[test]
    fn a_zero_count_keeps_nothing() {
        let mut q = Bounded::new(0, 100);
        q.push(1, 1);
        assert!(q.is_empty());
        assert_eq!(q.bytes(), 0);
    }
}
