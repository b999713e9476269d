//! Sparse offset and time indexes of one segment.
//!
//! Owns: the in-memory index arrays, their lookups, and their file encoding, which is Kafka's:
//! `.index` holds 8-byte entries `(relative offset: u32 BE, position: u32 BE)`, `.timeindex` holds
//! 12-byte entries `(timestamp: i64 BE, relative offset: u32 BE)`. An offset entry says "the batch
//! that starts at `position` contains `base + relative offset`"; a time entry says "no batch before
//! the one containing that offset has a larger max timestamp than `timestamp`". Knows nothing of
//! files: it encodes to and decodes from bytes.

/// Sparse map from offset to file position.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OffsetIndex {
    entries: Vec<(u32, u32)>,
}

pub const OFFSET_ENTRY_BYTES: usize = 8;
pub const TIME_ENTRY_BYTES: usize = 12;

impl OffsetIndex {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn push(&mut self, relative_offset: u32, position: u32) {
        if let Some(&(last_offset, last_position)) = self.entries.last() {
            assert!(relative_offset > last_offset && position > last_position, "offset index must grow");
        }
        self.entries.push((relative_offset, position));
    }

    /// The entry with the largest relative offset at or below `relative_offset`, or `(0, 0)`.
    pub fn floor_by_offset(&self, relative_offset: u32) -> (u32, u32) {
        let count = self.entries.partition_point(|entry| entry.0 <= relative_offset);
        if count == 0 {
            (0, 0)
        } else {
            self.entries[count - 1]
        }
    }

    /// The entry with the largest position at or below `position`, or `(0, 0)`.
    pub fn floor_by_position(&self, position: u32) -> (u32, u32) {
        let count = self.entries.partition_point(|entry| entry.1 <= position);
        if count == 0 {
            (0, 0)
        } else {
            self.entries[count - 1]
        }
    }

    pub fn last(&self) -> Option<(u32, u32)> {
        self.entries.last().copied()
    }

    /// Drops entries at or past `position` (after a truncation).
    pub fn truncate_to_position(&mut self, position: u32) {
        self.entries.retain(|entry| entry.1 < position);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.entries.len() * OFFSET_ENTRY_BYTES);
        for (offset, position) in &self.entries {
            bytes.extend_from_slice(&offset.to_be_bytes());
            bytes.extend_from_slice(&position.to_be_bytes());
        }
        bytes
    }

    /// Decodes and checks an index file against its segment's size; `None` if it is not valid.
    pub fn decode(bytes: &[u8], segment_bytes: u64) -> Option<OffsetIndex> {
        if bytes.len() % OFFSET_ENTRY_BYTES != 0 {
            return None;
        }
        let mut index = OffsetIndex::default();
        for entry in bytes.chunks_exact(OFFSET_ENTRY_BYTES) {
            let offset = u32::from_be_bytes([entry[0], entry[1], entry[2], entry[3]]);
            let position = u32::from_be_bytes([entry[4], entry[5], entry[6], entry[7]]);
            if let Some(&(last_offset, last_position)) = index.entries.last() {
                if offset <= last_offset || position <= last_position {
                    return None;
                }
            }
            if u64::from(position) >= segment_bytes {
                return None;
            }
            index.entries.push((offset, position));
        }
        Some(index)
    }
}

/// Sparse map from max timestamp so far to offset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimeIndex {
    entries: Vec<(i64, u32)>,
}

impl TimeIndex {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds an entry if `timestamp` is larger than the last one (the index is monotonic).
    pub fn maybe_push(&mut self, timestamp: i64, relative_offset: u32) {
        match self.entries.last() {
            Some(&(last_timestamp, last_offset)) if timestamp <= last_timestamp || relative_offset <= last_offset => {}
            _ => self.entries.push((timestamp, relative_offset)),
        }
    }

    /// The entry with the largest timestamp strictly below `timestamp`: every batch before its
    /// offset has a smaller max timestamp, so a search for the first batch reaching `timestamp`
    /// may start there. `None` when no entry is below `timestamp`.
    pub fn floor_below(&self, timestamp: i64) -> Option<(i64, u32)> {
        let count = self.entries.partition_point(|entry| entry.0 < timestamp);
        (count > 0).then(|| self.entries[count - 1])
    }

    pub fn last(&self) -> Option<(i64, u32)> {
        self.entries.last().copied()
    }

    /// Drops entries for offsets at or past `relative_offset`.
    pub fn truncate_to_offset(&mut self, relative_offset: u32) {
        self.entries.retain(|entry| entry.1 < relative_offset);
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.entries.len() * TIME_ENTRY_BYTES);
        for (timestamp, offset) in &self.entries {
            bytes.extend_from_slice(&timestamp.to_be_bytes());
            bytes.extend_from_slice(&offset.to_be_bytes());
        }
        bytes
    }

    /// Decodes and checks a time index against the segment's relative offset range.
    pub fn decode(bytes: &[u8], relative_offset_end: u64) -> Option<TimeIndex> {
        if bytes.len() % TIME_ENTRY_BYTES != 0 {
            return None;
        }
        let mut index = TimeIndex::default();
        for entry in bytes.chunks_exact(TIME_ENTRY_BYTES) {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(&entry[..8]);
            let timestamp = i64::from_be_bytes(raw);
            let offset = u32::from_be_bytes([entry[8], entry[9], entry[10], entry[11]]);
            if let Some(&(last_timestamp, last_offset)) = index.entries.last() {
                if timestamp <= last_timestamp || offset <= last_offset {
                    return None;
                }
            }
            if u64::from(offset) >= relative_offset_end {
                return None;
            }
            index.entries.push((timestamp, offset));
        }
        Some(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_lookups_and_golden_encoding() {
        let mut index = OffsetIndex::default();
        index.push(10, 4096);
        index.push(25, 8200);
        assert_eq!(index.floor_by_offset(5), (0, 0));
        assert_eq!(index.floor_by_offset(10), (10, 4096));
        assert_eq!(index.floor_by_offset(24), (10, 4096));
        assert_eq!(index.floor_by_offset(99), (25, 8200));
        assert_eq!(index.floor_by_position(8199), (10, 4096));
        assert_eq!(index.encode(), vec![0, 0, 0, 10, 0, 0, 0x10, 0, 0, 0, 0, 25, 0, 0, 0x20, 0x08]);
        assert_eq!(OffsetIndex::decode(&index.encode(), 9000), Some(index.clone()));
        assert_eq!(OffsetIndex::decode(&index.encode(), 8200), None, "entry past the segment end");
        assert_eq!(OffsetIndex::decode(&index.encode()[..9], 9000), None, "partial entry");
        index.truncate_to_position(8200);
        assert_eq!(index.len(), 1);
    }

    #[test]
    fn time_index_is_monotonic_and_golden() {
        let mut index = TimeIndex::default();
        index.maybe_push(1000, 0);
        index.maybe_push(900, 1); // Not larger: skipped.
        index.maybe_push(2000, 5);
        assert_eq!(index.len(), 2);
        assert_eq!(index.floor_below(1000), None);
        assert_eq!(index.floor_below(1500), Some((1000, 0)));
        assert_eq!(index.floor_below(2000), Some((1000, 0)));
        assert_eq!(index.floor_below(2001), Some((2000, 5)));
        let bytes = index.encode();
        assert_eq!(&bytes[..12], &[0, 0, 0, 0, 0, 0, 0x03, 0xe8, 0, 0, 0, 0]);
        assert_eq!(TimeIndex::decode(&bytes, 6), Some(index.clone()));
        assert_eq!(TimeIndex::decode(&bytes, 5), None);
    }
}
