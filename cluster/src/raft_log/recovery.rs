//! Recovery's decisions as a pure replay: the snapshot file, then the segments' bytes in order, to
//! the log's state (hard state, conf state, entries since the snapshot) and, for the last segment,
//! where its valid records end.
//!
//! Owns the replay rules (`docs/formats/raft-log.md`, "Recovery"): a later entry record for index
//! `i` truncates everything at or above `i`; entries at or below the snapshot's index are not kept;
//! the last hard state and conf state records win; a torn frame ends the last segment (the caller
//! cuts the file there) and is corruption anywhere else; a sound frame with impossible contents, a
//! gap in the indexes or a term going backwards is corruption everywhere.
//!
//! Must not know: files and the file system (the caller reads the bytes and truncates).

use std::collections::VecDeque;

use raft::prelude::{ConfState, Entry, HardState};

use super::format::{self, Record, RecordError, SnapshotFile, SEGMENT_HEADER_BYTES};
use crate::ClusterError;

/// One segment as the log tracks it: its number and the highest entry index written in it (0 if
/// none), which decides when compaction may delete it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentSummary {
    pub sequence: u64,
    pub index_max: u64,
}

/// How a segment's bytes ended.
#[derive(Debug, PartialEq, Eq)]
pub enum SegmentEnd {
    /// Every byte is part of a record.
    Clean,
    /// The last segment's bytes from `valid_bytes` on are a torn write; 0 means even the header is
    /// torn (a roll the crash interrupted).
    TornTail { valid_bytes: u64, reason: String },
}

/// The replay of one log directory.
#[derive(Debug)]
pub struct Replay {
    snapshot_index: u64,
    snapshot_term: u64,
    hard_state: HardState,
    conf_state: ConfState,
    entries: VecDeque<Entry>,
    segments: Vec<SegmentSummary>,
}

/// What recovery found.
#[derive(Debug)]
pub struct Recovered {
    pub hard_state: HardState,
    pub conf_state: ConfState,
    /// Every entry after the snapshot, in index order without gaps.
    pub entries: VecDeque<Entry>,
    pub segments: Vec<SegmentSummary>,
}

impl Replay {
    pub fn new(snapshot: Option<&SnapshotFile>) -> Replay {
        let (snapshot_index, snapshot_term, hard_state, conf_state) = match snapshot {
            Some(file) => (file.metadata.index, file.metadata.term, file.hard_state.clone(), file.conf_state.clone()),
            None => (0, 0, HardState::default(), ConfState::default()),
        };
        Replay { snapshot_index, snapshot_term, hard_state, conf_state, entries: VecDeque::new(), segments: Vec::new() }
    }

    fn last_index(&self) -> u64 {
        self.entries.back().map_or(self.snapshot_index, |entry| entry.index)
    }

    /// Replays one segment's bytes; `last` says whether it is the newest segment, the only one a
    /// crash can leave torn (a roll syncs the segment it leaves).
    pub fn segment(&mut self, sequence: u64, bytes: &[u8], last: bool) -> Result<SegmentEnd, ClusterError> {
        let corrupt = |reason: String| ClusterError::Corrupt(format!("Raft log segment {sequence}: {reason}"));
        match format::decode_segment_header(bytes) {
            Ok(found) if found == sequence => {}
            Ok(found) => return Err(corrupt(format!("its header names segment {found}"))),
            // A roll writes and syncs the header before any record, so only a file no longer than a
            // header can be a roll interrupted by the crash; a longer one had a sound header once.
            Err(reason) if last && bytes.len() <= SEGMENT_HEADER_BYTES => {
                self.segments.push(SegmentSummary { sequence, index_max: 0 });
                return Ok(SegmentEnd::TornTail { valid_bytes: 0, reason });
            }
            Err(reason) => return Err(corrupt(reason)),
        }
        self.segments.push(SegmentSummary { sequence, index_max: 0 });
        let mut at = SEGMENT_HEADER_BYTES;
        while at < bytes.len() {
            match format::decode_record(&bytes[at..]) {
                Ok((record, used)) => {
                    self.apply(record).map_err(|reason| corrupt(format!("record at byte {at}: {reason}")))?;
                    at += used;
                }
                Err(RecordError::Torn(reason)) if last => {
                    return Ok(SegmentEnd::TornTail { valid_bytes: at as u64, reason });
                }
                Err(RecordError::Torn(reason) | RecordError::Invalid(reason)) => {
                    return Err(corrupt(format!("record at byte {at}: {reason}")));
                }
            }
        }
        Ok(SegmentEnd::Clean)
    }

    fn apply(&mut self, record: Record) -> Result<(), String> {
        match record {
            Record::Entry(entry) => self.apply_entry(entry),
            Record::HardState(hard_state) => {
                self.hard_state = hard_state;
                Ok(())
            }
            Record::ConfState(conf_state) => {
                self.conf_state = conf_state;
                Ok(())
            }
        }
    }

    fn apply_entry(&mut self, entry: Entry) -> Result<(), String> {
        let index = entry.index;
        let last_index = self.last_index();
        if index > last_index + 1 {
            return Err(format!("entry {index} after entry {last_index}: a gap"));
        }
        if let Some(segment) = self.segments.last_mut() {
            segment.index_max = segment.index_max.max(index);
        }
        if index <= self.snapshot_index {
            // Covered by the snapshot; as any entry record it still truncates what follows it, and
            // everything kept is above the snapshot.
            self.entries.clear();
            return Ok(());
        }
        self.entries.truncate((index - self.snapshot_index - 1) as usize);
        // Only against the entry before it: while the stream replays, the entries kept are a suffix
        // of a log raft once held, but the snapshot may be newer than them (stale entries a later
        // record truncates); `finish` checks the first entry against the snapshot.
        if let Some(previous) = self.entries.back() {
            if entry.term < previous.term {
                return Err(format!(
                    "entry {index} has term {} below the term {} before it",
                    entry.term, previous.term
                ));
            }
        }
        self.entries.push_back(entry);
        Ok(())
    }

    /// The replayed state, checked as raft will check it: the commit index within the log.
    pub fn finish(mut self) -> Result<Recovered, ClusterError> {
        // The snapshot holds only committed entries, whatever an older hard state says.
        self.hard_state.commit = self.hard_state.commit.max(self.snapshot_index);
        if let Some(first) = self.entries.front() {
            if first.term < self.snapshot_term {
                return Err(ClusterError::Corrupt(format!(
                    "Raft log: entry {} has term {} below the snapshot's term {}",
                    first.index, first.term, self.snapshot_term
                )));
            }
        }
        let last_index = self.last_index();
        if self.hard_state.commit > last_index {
            return Err(ClusterError::Corrupt(format!(
                "Raft log: commit index {} beyond the last entry {last_index}",
                self.hard_state.commit
            )));
        }
        Ok(Recovered {
            hard_state: self.hard_state,
            conf_state: self.conf_state,
            entries: self.entries,
            segments: self.segments,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use format::{push_entry_record, push_hard_state_record, segment_header};

    fn entry(index: u64, term: u64) -> Entry {
        Entry { index, term, data: Bytes::from(format!("{index}@{term}")), ..Default::default() }
    }

    fn segment(sequence: u64, entries: &[(u64, u64)]) -> Vec<u8> {
        let mut bytes = segment_header(sequence).to_vec();
        for &(index, term) in entries {
            push_entry_record(&mut bytes, &entry(index, term));
        }
        bytes
    }

    fn indexes_and_terms(recovered: &Recovered) -> Vec<(u64, u64)> {
        recovered.entries.iter().map(|entry| (entry.index, entry.term)).collect()
    }

    #[test]
    fn later_records_truncate_and_the_last_hard_state_wins() {
        let mut replay = Replay::new(None);
        let mut first = segment(0, &[(1, 1), (2, 1), (3, 1)]);
        push_hard_state_record(&mut first, &HardState { term: 1, vote: 1, commit: 1, ..Default::default() });
        assert_eq!(replay.segment(0, &first, false).expect("replay"), SegmentEnd::Clean);
        let mut second = segment(1, &[(2, 2), (3, 2)]);
        push_hard_state_record(&mut second, &HardState { term: 2, vote: 3, commit: 3, ..Default::default() });
        assert_eq!(replay.segment(1, &second, true).expect("replay"), SegmentEnd::Clean);
        let recovered = replay.finish().expect("finish");
        assert_eq!(indexes_and_terms(&recovered), [(1, 1), (2, 2), (3, 2)]);
        assert_eq!((recovered.hard_state.term, recovered.hard_state.vote, recovered.hard_state.commit), (2, 3, 3));
        let index_max: Vec<u64> = recovered.segments.iter().map(|segment| segment.index_max).collect();
        assert_eq!(index_max, [3, 3]);
    }

    #[test]
    fn torn_tail_only_at_the_end_of_the_last_segment() {
        let whole = segment(0, &[(1, 1), (2, 1)]);
        let cut = &whole[..whole.len() - 3];
        let mut replay = Replay::new(None);
        match replay.segment(0, cut, true).expect("replay") {
            SegmentEnd::TornTail { valid_bytes, .. } => {
                assert_eq!(valid_bytes, (SEGMENT_HEADER_BYTES + (whole.len() - SEGMENT_HEADER_BYTES) / 2) as u64)
            }
            SegmentEnd::Clean => panic!("a cut record is torn"),
        }
        assert_eq!(indexes_and_terms(&replay.finish().expect("finish")), [(1, 1)]);
        let mut replay = Replay::new(None);
        assert!(matches!(replay.segment(0, cut, false), Err(ClusterError::Corrupt(_))), "not the last segment");
        // A header alone, torn: a roll interrupted. Longer than a header with a bad one: damage.
        let mut replay = Replay::new(None);
        let end = replay.segment(1, &whole[..10], true).expect("replay");
        assert!(matches!(end, SegmentEnd::TornTail { valid_bytes: 0, .. }));
        let mut bad_header = whole.clone();
        bad_header[3] ^= 1;
        assert!(matches!(Replay::new(None).segment(0, &bad_header, true), Err(ClusterError::Corrupt(_))));
    }

    #[test]
    fn gaps_backward_terms_and_commit_beyond_the_log_are_corrupt() {
        assert!(Replay::new(None).segment(0, &segment(0, &[(1, 1), (3, 1)]), true).is_err(), "gap");
        assert!(Replay::new(None).segment(0, &segment(0, &[(1, 2), (2, 1)]), true).is_err(), "term backwards");
        assert!(Replay::new(None).segment(0, &segment(1, &[]), true).is_err(), "another segment's header");
        let mut bytes = segment(0, &[(1, 1)]);
        push_hard_state_record(&mut bytes, &HardState { term: 1, vote: 1, commit: 2, ..Default::default() });
        let mut replay = Replay::new(None);
        replay.segment(0, &bytes, true).expect("replay");
        assert!(matches!(replay.finish(), Err(ClusterError::Corrupt(_))));
    }

    #[test]
    fn entries_covered_by_the_snapshot_are_dropped_but_still_truncate() {
        let mut metadata = raft::prelude::SnapshotMetadata { index: 4, term: 2, ..Default::default() };
        metadata.set_conf_state(ConfState::default());
        let snapshot = SnapshotFile {
            metadata,
            hard_state: HardState { term: 2, vote: 0, commit: 4, ..Default::default() },
            conf_state: ConfState::default(),
            first_segment: 0,
            data: Bytes::new(),
        };
        // Entries 5..=6 of term 1, overwritten from 3 in term 2 up to 4: none of 5..=6 survives.
        let mut replay = Replay::new(Some(&snapshot));
        replay.segment(0, &segment(0, &[(1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (6, 1)]), false).expect("replay");
        replay.segment(1, &segment(1, &[(3, 2), (4, 2)]), true).expect("replay");
        let recovered = replay.finish().expect("finish");
        assert!(recovered.entries.is_empty());
        assert_eq!(recovered.hard_state.commit, 4);
        let mut replay = Replay::new(Some(&snapshot));
        replay.segment(0, &segment(0, &[(3, 1), (4, 2), (5, 2), (6, 3)]), true).expect("replay");
        assert_eq!(indexes_and_terms(&replay.finish().expect("finish")), [(5, 2), (6, 3)]);
        let mut replay = Replay::new(Some(&snapshot));
        replay.segment(0, &segment(0, &[(5, 1)]), true).expect("replay");
        assert!(replay.finish().is_err(), "a term below the snapshot's");
    }
}
