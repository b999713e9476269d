//! A value one writer replaces whole and every shard reads: the topic catalog, the cluster's
//! metadata image.
//!
//! Readers keep a [`Cached`] copy and look only at an atomic generation on each read; the mutex
//! behind it is taken only when the generation moved (once per change per reader), never on a
//! steady-state read. The writer builds the next value aside and swaps the `Arc`.
//!
//! Must not know: what the value is.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The current value and how many times it was replaced.
#[derive(Debug)]
pub struct Published<T> {
    generation: AtomicU64,
    current: Mutex<Arc<T>>,
}

impl<T: Default> Default for Published<T> {
    fn default() -> Published<T> {
        Published::new(T::default())
    }
}

impl<T> Published<T> {
    pub fn new(value: T) -> Published<T> {
        Published { generation: AtomicU64::new(1), current: Mutex::new(Arc::new(value)) }
    }

    /// Grows every time the value is replaced.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The value as it is now (takes the mutex: readers on a hot path use [`Cached`]).
    pub fn load(&self) -> Arc<T> {
        self.snapshot().1
    }

    /// The generation read before the value: a reader holding it sees any later replacement
    /// as a moved generation (at worst it reloads a value it already has).
    fn snapshot(&self) -> (u64, Arc<T>) {
        let generation = self.generation();
        let current = self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        (generation, current.clone())
    }

    /// Replaces the value with what `next` makes of the current one (`None`: keeps it, and
    /// the generation stays).
    pub fn replace(&self, next: impl FnOnce(&Arc<T>) -> Option<Arc<T>>) {
        let mut current = self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(next) = next(&current) {
            *current = next;
            self.generation.fetch_add(1, Ordering::Release);
        }
    }
}

/// One reader's copy of a [`Published`] value (a shard's: not `Sync`).
#[derive(Debug)]
pub struct Cached<T> {
    seen: RefCell<(u64, Arc<T>)>,
}

impl<T> Cached<T> {
    pub fn new(published: &Published<T>) -> Cached<T> {
        Cached { seen: RefCell::new(published.snapshot()) }
    }

    /// The newest value: the cached `Arc` unless `published` was replaced since the last look.
    pub fn get(&self, published: &Published<T>) -> Arc<T> {
        let mut seen = self.seen.borrow_mut();
        if seen.0 != published.generation() {
            *seen = published.snapshot();
        }
        seen.1.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_reader_follows_every_replacement() {
        let published = Published::new(1u32);
        let cached = Cached::new(&published);
        assert_eq!(*cached.get(&published), 1);
        let before = published.generation();
        published.replace(|current| Some(Arc::new(**current + 1)));
        assert!(published.generation() > before);
        assert_eq!(*cached.get(&published), 2);
        assert_eq!(*published.load(), 2);
        let after = published.generation();
        published.replace(|_| None);
        assert_eq!(published.generation(), after, "a kept value is not a new generation");
    }

    #[test]
    fn an_unchanged_value_is_the_same_arc() {
        let published = Published::new(String::from("image"));
        let cached = Cached::new(&published);
        assert!(Arc::ptr_eq(&cached.get(&published), &cached.get(&published)));
    }
}
