//! Idempotent producers: a partition's sequence state and the checks a produced batch must pass.
//!
//! Owns: the last [`PRODUCER_BATCHES_RETAINED`] batches of every producer on a partition (as
//! Kafka keeps five, matching `max.in.flight.requests.per.connection ≤ 5`), the checks a produce
//! must pass (duplicate → the original offsets; gap → out of order; older epoch
//! → a fenced producer). The state survives restarts through snapshots
//! ([`crate::producer_snapshot`]) plus the batch headers written after them; a producer seen in
//! neither is treated as new (its next batch is accepted whatever its sequence). A producer that
//! wrote nothing to the partition for `producer.id.expiration.ms` is forgotten
//! ([`ProducerState::expire`]), as Kafka's `ProducerStateManager` forgets it, so that the state of
//! short-lived producers does not grow without bound.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use engine::batch;

use crate::error::ProducerError;

pub const PRODUCER_BATCHES_RETAINED: usize = 5;

/// The most idempotent producers one partition remembers. Past it, the one that wrote least
/// recently is forgotten, as expiry would forget it later. Kafka sets no such bound (it throttles
/// producer id creation per principal instead, KIP-936); without one, a client that opens
/// producers in a loop grows the state for a whole `producer.id.expiration.ms`. At most about
/// 130 bytes each in a snapshot, this many stay far below `PRODUCER_STATE_BYTES_MAX` (64 MiB), so
/// a snapshot can always be read back.
pub const PRODUCERS_PER_PARTITION_MAX: usize = 100_000;

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
    /// When each producer last wrote to this partition, by the broker's clock (a producer
    /// restored from a snapshot counts from [`ProducerState::stamp_unwritten`]). Its keys are
    /// some of `producers`' keys.
    last_written_ms: BTreeMap<i64, i64>,
    /// The same times as (time, producer id), oldest first: who goes first past
    /// [`PRODUCERS_PER_PARTITION_MAX`].
    by_written: BTreeSet<(i64, i64)>,
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

    /// Notes a producer's batch just recorded: its max timestamp, and `now_ms` as when the
    /// producer last wrote.
    /// Past [`PRODUCERS_PER_PARTITION_MAX`], forgets the producer that wrote least recently.
    pub fn note_write(&mut self, producer_id: i64, timestamp_ms: i64, now_ms: i64) {
        self.note_write_within(producer_id, timestamp_ms, now_ms, PRODUCERS_PER_PARTITION_MAX);
    }

    /// [`ProducerState::note_write`] with the bound given (tests use a small one).
    fn note_write_within(&mut self, producer_id: i64, timestamp_ms: i64, now_ms: i64, producers_max: usize) {
        self.last_timestamps_ms.insert(producer_id, timestamp_ms);
        if let Some(before) = self.last_written_ms.insert(producer_id, now_ms) {
            self.by_written.remove(&(before, producer_id));
        }
        self.by_written.insert((now_ms, producer_id));
        self.stamp_unwritten(now_ms);
        while self.producers.len() > producers_max.max(1) {
            // The writer itself stays, even first in line (the clock stepped back).
            match self.by_written.iter().find(|(_, id)| *id != producer_id) {
                Some(&(_, oldest)) => self.forget(oldest),
                None => break,
            }
        }
    }

    /// Gives the producers restored from a snapshot, which have no write time yet, `now_ms`: they
    /// count from here for expiry and for the bound. Looks at each producer only when some lack
    /// a time (every producer with a time is one of `producers`).
    pub fn stamp_unwritten(&mut self, now_ms: i64) {
        if self.last_written_ms.len() == self.producers.len() {
            return;
        }
        for producer_id in self.producers.keys() {
            if !self.last_written_ms.contains_key(producer_id) {
                self.last_written_ms.insert(*producer_id, now_ms);
                self.by_written.insert((now_ms, *producer_id));
            }
        }
    }

    fn forget(&mut self, producer_id: i64) {
        self.producers.remove(&producer_id);
        self.last_timestamps_ms.remove(&producer_id);
        if let Some(written) = self.last_written_ms.remove(&producer_id) {
            self.by_written.remove(&(written, producer_id));
        }
    }

    /// Forgets every producer that wrote nothing for `expiration_ms` (Kafka's
    /// `producer.id.expiration.ms`) by `now_ms`; returns how many. Its next batch, if one comes,
    /// is taken as a new producer's. Kafka reads the time from the last batch's max timestamp;
    /// Skua from its own clock, so a client whose clock lags (or who sends no timestamps) keeps
    /// its state as long as any other.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        self.stamp_unwritten(now_ms);
        let mut expired = 0;
        while let Some(&(written, producer_id)) = self.by_written.first() {
            if now_ms.saturating_sub(written) < expiration_ms {
                break;
            }
            self.forget(producer_id);
            expired += 1;
        }
        expired
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
    fn producers_silent_for_the_expiration_are_forgotten() {
        let mut producers = ProducerState::default();
        producers.record(&batch(0, 0, 4), 100, 104);
        producers.note_write(7, 5_000, 1_000);
        let other = BatchIdentity { producer_id: 8, ..batch(0, 0, 0) };
        producers.record(&other, 105, 105);
        producers.note_write(8, 5_000, 3_000);
        assert_eq!(producers.expire(10_999, 10_000), 0, "7 wrote 9,999 ms ago");
        assert_eq!(producers.expire(11_000, 10_000), 1, "7 is 10,000 ms silent");
        assert_eq!(producers.views().map(|view| view.producer_id).collect::<Vec<_>>(), vec![8]);
        assert_eq!(producers.check(&batch(0, 5, 5)), Verdict::Append, "7's next batch is a new producer's");
        // A producer restored from a snapshot counts from the first expiry check after it.
        producers.restore(9, ProducerEntry::default());
        assert_eq!(producers.expire(12_000, 10_000), 0);
        assert_eq!(producers.expire(21_999, 10_000), 1, "8, silent since 3,000");
        assert_eq!(producers.expire(22_000, 10_000), 1, "9, restored at 12,000, then silent");
        assert!(producers.is_empty());
    }

    #[test]
    fn past_the_bound_the_producer_that_wrote_least_recently_is_forgotten() {
        let mut producers = ProducerState::default();
        let write = |producers: &mut ProducerState, producer_id: i64, now_ms: i64| {
            let identity = BatchIdentity { producer_id, ..batch(0, 0, 0) };
            producers.record(&identity, 0, 0);
            producers.note_write_within(producer_id, now_ms, now_ms, 3);
        };
        write(&mut producers, 1, 100);
        write(&mut producers, 2, 200);
        write(&mut producers, 3, 300);
        write(&mut producers, 1, 400); // 1 writes again: 2 is now the least recent
        write(&mut producers, 4, 500);
        let ids = |producers: &ProducerState| producers.views().map(|view| view.producer_id).collect::<Vec<_>>();
        assert_eq!(ids(&producers), vec![1, 3, 4]);
        // A restored producer has no time until stamped; then it counts from then.
        producers.restore(9, ProducerEntry::default());
        producers.stamp_unwritten(450);
        write(&mut producers, 5, 600);
        assert_eq!(ids(&producers), vec![4, 5, 9], "3 (300) and 1 (400) went, oldest first");
        assert_eq!(producers.expire(1_000, 550), 1, "9 (450) silent for 550 ms");
        assert_eq!(ids(&producers), vec![4, 5]);
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
