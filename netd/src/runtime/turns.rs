//! Turns in arrival order per key, on one shard: the order of a partition's appends when some of
//! them wait for work off the shard (a codec conversion on the `codec_pool`).
//!
//! Owns: for each key with work outstanding, the tickets handed out and the one whose turn it is.
//! A ticket is taken synchronously, in the order appends arrive; [`Ticket::wait`] returns when
//! every earlier ticket of its key is dropped. A key with no ticket outstanding has no entry, and
//! [`Turns::busy`] tells an append that may go at once (nothing of its key is waiting) from one
//! that must take a ticket behind the others. Single-threaded (one per shard); knows nothing of
//! logs or the protocol.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::rc::Rc;
use std::task::{Poll, Waker};

/// One key's tickets.
#[derive(Debug, Default)]
struct Lane {
    /// The ticket whose turn it is.
    next: Cell<u64>,
    /// The number the next ticket gets.
    issued: Cell<u64>,
    /// Tickets dropped before their turn (a task that ended early): skipped when reached.
    dropped_early: RefCell<BTreeSet<u64>>,
    /// Tasks waiting for their turn.
    waiting: RefCell<Vec<Waker>>,
}

/// The lanes of one shard.
#[derive(Debug)]
pub struct Turns<K: Eq + Hash + Clone> {
    lanes: Rc<RefCell<HashMap<K, Rc<Lane>>>>,
}

impl<K: Eq + Hash + Clone> Default for Turns<K> {
    fn default() -> Self {
        Turns { lanes: Rc::new(RefCell::new(HashMap::new())) }
    }
}

impl<K: Eq + Hash + Clone> Turns<K> {
    /// Whether `key` has tickets outstanding (an append for it must then take one).
    pub fn busy(&self, key: &K) -> bool {
        self.lanes.borrow().contains_key(key)
    }

    /// A ticket behind every ticket of `key` taken before.
    pub fn take(&self, key: K) -> Ticket<K> {
        let lane = self.lanes.borrow_mut().entry(key.clone()).or_default().clone();
        let number = lane.issued.get();
        lane.issued.set(number + 1);
        Ticket { lanes: self.lanes.clone(), key, lane, number }
    }

    /// Whether no key has tickets outstanding.
    pub fn is_empty(&self) -> bool {
        self.lanes.borrow().is_empty()
    }
}

/// A place in a key's order; dropping it lets the next ticket go.
#[derive(Debug)]
pub struct Ticket<K: Eq + Hash + Clone> {
    lanes: Rc<RefCell<HashMap<K, Rc<Lane>>>>,
    key: K,
    lane: Rc<Lane>,
    number: u64,
}

impl<K: Eq + Hash + Clone> Ticket<K> {
    /// Returns once every earlier ticket of this key is dropped.
    pub async fn wait(&self) {
        std::future::poll_fn(|context| {
            if self.lane.next.get() == self.number {
                Poll::Ready(())
            } else {
                self.lane.waiting.borrow_mut().push(context.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}

impl<K: Eq + Hash + Clone> Drop for Ticket<K> {
    fn drop(&mut self) {
        let lane = &self.lane;
        if lane.next.get() != self.number {
            lane.dropped_early.borrow_mut().insert(self.number);
            return;
        }
        let mut next = self.number + 1;
        while lane.dropped_early.borrow_mut().remove(&next) {
            next += 1;
        }
        lane.next.set(next);
        if next == lane.issued.get() {
            self.lanes.borrow_mut().remove(&self.key);
        }
        for waker in lane.waiting.borrow_mut().drain(..) {
            waker.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tickets go in the order taken, whatever order their work finishes in; a key's entry goes
    /// with its last ticket.
    #[test]
    fn tickets_go_in_the_order_taken() {
        compio::runtime::Runtime::new().expect("runtime").block_on(async {
            let turns: Turns<u32> = Turns::default();
            assert!(!turns.busy(&7));
            let order = Rc::new(RefCell::new(Vec::new()));
            let mut tasks = Vec::new();
            for (index, delay_ms) in [(0u32, 30u64), (1, 0), (2, 10)] {
                let ticket = turns.take(7);
                let order = order.clone();
                tasks.push(compio::runtime::spawn(async move {
                    compio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
                    ticket.wait().await;
                    order.borrow_mut().push(index);
                }));
            }
            assert!(turns.busy(&7));
            // Another key is not held up by this one.
            let other = turns.take(8);
            other.wait().await;
            drop(other);
            for task in tasks {
                let _ = task.await;
            }
            assert_eq!(*order.borrow(), vec![0, 1, 2]);
            assert!(turns.is_empty(), "the lanes went with their last tickets");
        });
    }

    /// A ticket dropped before its turn does not hold the ones after it.
    #[test]
    fn a_ticket_dropped_early_is_skipped() {
        compio::runtime::Runtime::new().expect("runtime").block_on(async {
            let turns: Turns<u32> = Turns::default();
            let first = turns.take(1);
            let second = turns.take(1);
            let third = turns.take(1);
            drop(second);
            drop(first);
            third.wait().await;
            assert!(turns.busy(&1));
            drop(third);
            assert!(!turns.busy(&1));
        });
    }
}
