//! The tail cache: recently committed bytes of one log, kept in memory for readers.
//!
//! Owns: a FIFO of chunks, each the bytes of one group commit for one segment, tagged with the
//! shard's commit sequence number so the shard can evict the oldest chunks of all its logs first
//! (the shard's budget, `ShardConfig::cache_bytes`; one log alone never holds more than it). In
//! direct write mode the page cache never sees our writes, so consumers near the tail are served
//! from here; in buffered mode it spares a trip through the page cache. Hands out `Bytes`
//! slices, never copies.
//!
//! Must not know: the other logs of the shard (the shard decides whose chunks go).

use std::collections::VecDeque;

use bytes::Bytes;

use crate::types::Offset;

#[derive(Debug)]
struct Chunk {
    segment_base: Offset,
    position: u64,
    data: Bytes,
    /// The shard's sequence number of the commit that wrote it.
    sequence: u64,
}

impl Chunk {
    fn end(&self) -> u64 {
        self.position + self.data.len() as u64
    }
}

#[derive(Debug)]
pub struct TailCache {
    chunks: VecDeque<Chunk>,
    cached_bytes: usize,
    capacity_bytes: usize,
}

impl TailCache {
    pub fn new(capacity_bytes: usize) -> TailCache {
        TailCache { chunks: VecDeque::new(), cached_bytes: 0, capacity_bytes }
    }

    pub fn cached_bytes(&self) -> usize {
        self.cached_bytes
    }

    /// Adds freshly committed bytes of the shard's commit `sequence`; they follow the previous
    /// chunk of the same segment.
    pub fn push(&mut self, segment_base: Offset, position: u64, data: Bytes, sequence: u64) {
        if self.capacity_bytes == 0 || data.is_empty() {
            return;
        }
        if let Some(last) = self.chunks.back() {
            let contiguous =
                last.segment_base < segment_base || (last.segment_base == segment_base && last.end() == position);
            if !contiguous {
                // Our bug if it happens, but a cache can always start over.
                debug_assert!(contiguous, "tail cache chunks must be contiguous");
                self.clear();
            }
        }
        self.cached_bytes += data.len();
        debug_assert!(self.chunks.back().is_none_or(|last| last.sequence <= sequence), "sequences only grow");
        self.chunks.push_back(Chunk { segment_base, position, data, sequence });
        while self.cached_bytes > self.capacity_bytes {
            let Some(evicted) = self.chunks.pop_front() else { break };
            self.cached_bytes -= evicted.data.len();
        }
    }

    /// Forgets the chunks of commits up to `sequence` (the oldest ones: the shard is over its
    /// budget). Returns the bytes freed.
    pub fn evict_through(&mut self, sequence: u64) -> usize {
        let before = self.cached_bytes;
        while let Some(first) = self.chunks.front() {
            if first.sequence > sequence {
                break;
            }
            self.cached_bytes -= first.data.len();
            self.chunks.pop_front();
        }
        before - self.cached_bytes
    }

    /// Whether a chunk of commit `sequence` is still held (the shard's eviction order keeps
    /// entries only for those).
    pub fn holds(&self, sequence: u64) -> bool {
        self.chunks.binary_search_by_key(&sequence, |chunk| chunk.sequence).is_ok()
    }

    /// Slices covering `[position, end)` of a segment, if the cache holds all of it.
    pub fn slices(&self, segment_base: Offset, position: u64, end: u64) -> Option<Vec<Bytes>> {
        // Chunks are in (segment, position) order: find the one holding `position` by bisection
        // (a large cache holds many thousands of chunks, and every batch header a read walks
        // over comes through here).
        let first = self.chunks.partition_point(|chunk| (chunk.segment_base, chunk.end()) <= (segment_base, position));
        let holder = self.chunks.get(first)?;
        if holder.segment_base != segment_base || holder.position > position {
            return None;
        }
        let mut slices = Vec::new();
        let mut at = position;
        for chunk in self.chunks.range(first..) {
            if at >= end {
                break;
            }
            if chunk.segment_base != segment_base || (!slices.is_empty() && chunk.position != at) {
                return None;
            }
            let from = (at - chunk.position) as usize;
            let to = (end.min(chunk.end()) - chunk.position) as usize;
            slices.push(chunk.data.slice(from..to));
            at = chunk.position + to as u64;
        }
        (at >= end).then_some(slices)
    }

    /// Copies `buf.len()` bytes at `position` if the cache holds them.
    pub fn read(&self, segment_base: Offset, position: u64, buf: &mut [u8]) -> bool {
        let Some(slices) = self.slices(segment_base, position, position + buf.len() as u64) else {
            return false;
        };
        let mut at = 0;
        for slice in slices {
            buf[at..at + slice.len()].copy_from_slice(&slice);
            at += slice.len();
        }
        true
    }

    /// Forgets everything at or after `position` of `segment_base`, and every later segment.
    pub fn truncate(&mut self, segment_base: Offset, position: u64) {
        while let Some(last) = self.chunks.back_mut() {
            if last.segment_base > segment_base || (last.segment_base == segment_base && last.position >= position) {
                self.cached_bytes -= last.data.len();
                self.chunks.pop_back();
            } else {
                if last.segment_base == segment_base && last.end() > position {
                    let keep = (position - last.position) as usize;
                    self.cached_bytes -= last.data.len() - keep;
                    last.data.truncate(keep);
                }
                break;
            }
        }
    }

    /// Forgets segments below `segment_base` (deleted by retention).
    pub fn drop_segments_before(&mut self, segment_base: Offset) {
        while let Some(first) = self.chunks.front() {
            if first.segment_base >= segment_base {
                break;
            }
            self.cached_bytes -= first.data.len();
            self.chunks.pop_front();
        }
    }

    pub fn clear(&mut self) {
        self.chunks.clear();
        self.cached_bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_contiguous_ranges_and_evicts_oldest() {
        let mut cache = TailCache::new(10);
        cache.push(Offset(0), 0, Bytes::from_static(b"abcd"), 1);
        cache.push(Offset(0), 4, Bytes::from_static(b"efgh"), 2);
        let slices = cache.slices(Offset(0), 2, 6).expect("covered");
        assert_eq!(slices.concat(), b"cdef");
        cache.push(Offset(0), 8, Bytes::from_static(b"ijkl"), 3);
        assert_eq!(cache.cached_bytes(), 8, "first chunk evicted");
        assert!(cache.slices(Offset(0), 2, 6).is_none());
        let mut buf = [0u8; 3];
        assert!(cache.read(Offset(0), 7, &mut buf));
        assert_eq!(&buf, b"hij");
        cache.truncate(Offset(0), 9);
        assert_eq!(cache.cached_bytes(), 5);
        assert!(cache.slices(Offset(0), 8, 10).is_none());
        cache.push(Offset(5), 0, Bytes::from_static(b"zz"), 4);
        cache.drop_segments_before(Offset(5));
        assert_eq!(cache.cached_bytes(), 2);
    }

    #[test]
    fn evicts_the_chunks_of_old_commits_from_the_front() {
        let mut cache = TailCache::new(100);
        cache.push(Offset(0), 0, Bytes::from_static(b"ab"), 3);
        cache.push(Offset(0), 2, Bytes::from_static(b"cd"), 3);
        cache.push(Offset(0), 4, Bytes::from_static(b"ef"), 7);
        assert!(cache.holds(3) && cache.holds(7) && !cache.holds(5));
        assert_eq!(cache.evict_through(2), 0, "nothing that old");
        assert_eq!(cache.evict_through(5), 4, "both chunks of commit 3");
        assert_eq!(cache.slices(Offset(0), 4, 6).expect("kept").concat(), b"ef");
        assert_eq!(cache.evict_through(7), 2);
        assert_eq!((cache.cached_bytes(), cache.chunks.len()), (0, 0));
    }
}
