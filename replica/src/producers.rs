//! Idempotent producers: a partition's sequence state and the checks a produced batch must pass.
//!
//! Owns: the last [`PRODUCER_BATCHES_RETAINED`] batches of every producer on a partition (as
//! Kafka keeps five, matching `max.in.flight.requests.per.connection ≤ 5`), the checks a produce
//! must pass (duplicate → the original offsets; gap → out of order; older epoch
//! → a fenced producer). The state survives restarts through snapshots
//! ([`crate::producer_snapshot`]) plus the batch headers written after them; a producer seen in
//! neither is treated as new (its next batch is accepted whatever its sequence).

use std::collections::{BTreeMap, VecDeque};

use engine::batch;

use crate::error::ProducerError;

pub const PRODUCER_BATCHES_RETAINED: usize = 5;

/// One batch a producer wrote: its sequences and where it landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BatchMeta {
    pub(crate) first_sequence: i32,
    pub(crate) last_sequence: i32,
    pub(crate) base_offset: u64,
    pub(crate) last_offset: u64,
}

/// One producer's epoch and its last batches, oldest first. May hold no batch (all forgotten
/// after a failed commit or a truncation): the epoch still fences older ones.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ProducerEntry {
    pub(crate) epoch: i16,
    pub(crate) batches: VecDeque<BatchMeta>,
}

/// What a produce of one batch may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Append,
    /// A retry of a batch already in the log: answer with its offsets, append nothing.
    Duplicate {
        base_offset: u64,
        last_offset: u64,
    },
    Reject(ProducerError),
}

/// The header fields that identify an idempotent batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchIdentity {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub first_sequence: i32,
    pub last_sequence: i32,
}

impl BatchIdentity {
    pub fn of(header: &batch::BatchHeader) -> Option<BatchIdentity> {
        if header.producer_id < 0 || header.base_sequence < 0 {
            return None;
        }
        Some(BatchIdentity {
            producer_id: header.producer_id,
            producer_epoch: header.producer_epoch,
            first_sequence: header.base_sequence,
            last_sequence: header.base_sequence.wrapping_add(header.last_offset_delta as i32) & i32::MAX,
        })
    }
}

/// The producers of one partition.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ProducerState {
    producers: BTreeMap<i64, ProducerEntry>,
    /// Each producer's last batch's max timestamp, as DescribeProducers reports it. Kept in
    /// memory only (not in snapshots): a producer restored from a snapshot has none until its
    /// next batch.
    last_timestamps_ms: BTreeMap<i64, i64>,
}

/// What DescribeProducers says of one producer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProducerView {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The last sequence written in that epoch; -1 when none is remembered.
    pub last_sequence: i32,
    /// The last batch's max timestamp; -1 when unknown.
    pub last_timestamp_ms: i64,
}

impl ProducerState {
    pub fn check(&self, batch: &BatchIdentity) -> Verdict {
        let Some(entry) = self.producers.get(&batch.producer_id) else {
            return Verdict::Append;
        };
        if batch.producer_epoch < entry.epoch {
            return Verdict::Reject(ProducerError::FencedProducerEpoch);
        }
        if batch.producer_epoch > entry.epoch {
            // A new epoch starts its sequences at 0.
            return if batch.first_sequence == 0 {
                Verdict::Append
            } else {
                Verdict::Reject(ProducerError::OutOfOrderSequence)
            };
        }
        if let Some(seen) = entry
            .batches
            .iter()
            .find(|seen| seen.first_sequence == batch.first_sequence && seen.last_sequence == batch.last_sequence)
        {
            return Verdict::Duplicate { base_offset: seen.base_offset, last_offset: seen.last_offset };
        }
        let expected = entry.batches.back().map_or(0, |last| last.last_sequence.wrapping_add(1) & i32::MAX);
        if entry.batches.is_empty() || batch.first_sequence == expected {
            Verdict::Append
        } else {
            Verdict::Reject(ProducerError::OutOfOrderSequence)
        }
    }

    pub fn record(&mut self, batch: &BatchIdentity, base_offset: u64, last_offset: u64) {
        let entry = self.producers.entry(batch.producer_id).or_default();
        if batch.producer_epoch != entry.epoch {
            entry.epoch = batch.producer_epoch;
            entry.batches.clear();
        }
        entry.batches.push_back(BatchMeta {
            first_sequence: batch.first_sequence,
            last_sequence: batch.last_sequence,
            base_offset,
            last_offset,
        });
        while entry.batches.len() > PRODUCER_BATCHES_RETAINED {
            entry.batches.pop_front();
        }
    }

    /// Notes the max timestamp of a producer's batch just recorded.
    pub fn note_timestamp(&mut self, producer_id: i64, timestamp_ms: i64) {
        self.last_timestamps_ms.insert(producer_id, timestamp_ms);
    }

    /// Every producer, by ascending id, as DescribeProducers lists them.
    pub fn views(&self) -> impl Iterator<Item = ProducerView> + '_ {
        self.producers.iter().map(|(producer_id, entry)| ProducerView {
            producer_id: *producer_id,
            producer_epoch: entry.epoch,
            last_sequence: entry.batches.back().map_or(-1, |batch| batch.last_sequence),
            last_timestamp_ms: self.last_timestamps_ms.get(producer_id).copied().unwrap_or(-1),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Every producer, by ascending id (what a snapshot writes).
    pub(crate) fn entries(&self) -> impl ExactSizeIterator<Item = (i64, &ProducerEntry)> {
        self.producers.iter().map(|(producer_id, entry)| (*producer_id, entry))
    }

    /// Sets a producer's entry (what a snapshot read back holds).
    pub(crate) fn restore(&mut self, producer_id: i64, entry: ProducerEntry) {
        debug_assert!(entry.batches.len() <= PRODUCER_BATCHES_RETAINED);
        self.producers.insert(producer_id, entry);
    }

    /// Forgets batches at or past `offset` (their commit failed, or the log was truncated).
    pub fn forget_from(&mut self, offset: u64) {
        for entry in self.producers.values_mut() {
            entry.batches.retain(|batch| batch.last_offset < offset);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(epoch: i16, first: i32, last: i32) -> BatchIdentity {
        BatchIdentity { producer_id: 7, producer_epoch: epoch, first_sequence: first, last_sequence: last }
    }

    #[test]
    fn duplicates_gaps_and_epochs() {
        let mut producers = ProducerState::default();
        assert_eq!(producers.check(&batch(0, 0, 4)), Verdict::Append);
        producers.record(&batch(0, 0, 4), 100, 104);
        assert_eq!(producers.check(&batch(0, 5, 9)), Verdict::Append);
        producers.record(&batch(0, 5, 9), 105, 109);
        assert_eq!(producers.check(&batch(0, 0, 4)), Verdict::Duplicate { base_offset: 100, last_offset: 104 });
        assert_eq!(producers.check(&batch(0, 5, 9)), Verdict::Duplicate { base_offset: 105, last_offset: 109 });
        assert_eq!(producers.check(&batch(0, 11, 12)), Verdict::Reject(ProducerError::OutOfOrderSequence));
        assert_eq!(
            producers.check(&batch(1, 3, 3)),
            Verdict::Reject(ProducerError::OutOfOrderSequence),
            "a new epoch starts at 0"
        );
        assert_eq!(producers.check(&batch(1, 0, 0)), Verdict::Append);
        producers.record(&batch(1, 0, 0), 110, 110);
        assert_eq!(
            producers.check(&batch(0, 10, 10)),
            Verdict::Reject(ProducerError::FencedProducerEpoch),
            "older epoch is fenced"
        );
        producers.forget_from(110);
        assert_eq!(producers.check(&batch(1, 0, 0)), Verdict::Append, "a failed commit is not a duplicate");
        for index in 0..10 {
            producers.record(&batch(1, index, index), 200 + index as u64, 200 + index as u64);
        }
        assert_eq!(
            producers.check(&batch(1, 4, 4)),
            Verdict::Reject(ProducerError::OutOfOrderSequence),
            "only the last five are remembered"
        );
        assert_eq!(producers.check(&batch(1, 9, 9)), Verdict::Duplicate { base_offset: 209, last_offset: 209 });
    }
}
