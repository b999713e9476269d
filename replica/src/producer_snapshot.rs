//! Producer-state snapshots: the idempotent producers' state of one partition, on disk, so that
//! a restart does not forget producers whose batches lie in older segments.
//!
//! Owns: the file `skua.producer-state` in the partition's directory, its binary format (version
//! 1, documented in `docs/formats/producer-state.md`, encoder and decoder here), the bound on
//! what is read ([`PRODUCER_STATE_BYTES_MAX`]), and the rule for which snapshot a partition may
//! start from ([`usable`]). Written through the engine shard's `FileSystem` with
//! `engine::io::write_file_atomically` (temp file, `fdatasync`, rename, directory fsync).
//!
//! One file replaced whole, rather than Kafka's `<offset>.snapshot` per segment: the atomic
//! replace is the only step, so there is never a moment with two snapshots to choose from or none
//! on disk, and nothing to list or delete. Kafka keeps older snapshots to restart from after a
//! truncation below the newest; here a truncation removes the file and the state is rebuilt from
//! the active segment's batches, as when the file is missing.
//!
//! Must not know: when snapshots are taken (`Partitions` decides: at a roll and at clean close),
//! the sequence rules ([`crate::producers`]). Runs on the shard thread; every call blocks.

use std::collections::VecDeque;
use std::io;
use std::path::Path;

use engine::io::{read_small_file, write_file_atomically, FileSystem, ATOMIC_TEMP_SUFFIX};
use engine::{EngineError, Offset};

use crate::producers::{BatchMeta, ProducerEntry, ProducerState, PRODUCER_BATCHES_RETAINED};

pub const FILE_NAME: &str = "skua.producer-state";
pub const MAGIC: &[u8; 8] = b"SKUAPRST";
pub const VERSION: u16 = 1;
/// A snapshot larger than this is not written, and one found larger is damaged (about half a
/// million producers with five batches each).
pub const PRODUCER_STATE_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// Magic, version, offset, producer count.
const HEADER_BYTES: usize = 8 + 2 + 8 + 4;
/// Producer id, epoch, batch count.
const PRODUCER_BYTES: usize = 8 + 2 + 1;
/// First and last sequence, base and last offset.
const BATCH_BYTES: usize = 4 + 4 + 8 + 8;
const CRC_BYTES: usize = 4;

/// A partition's producer state as of `offset`: it covers every batch below `offset`, and none
/// at or above it.
#[derive(Debug, PartialEq, Eq)]
pub struct ProducerSnapshot {
    pub offset: Offset,
    pub producers: ProducerState,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Storage(#[from] EngineError),
    #[error("damaged producer-state snapshot: {0}")]
    Damaged(String),
    #[error("producer state of {size_bytes} bytes is more than PRODUCER_STATE_BYTES_MAX ({PRODUCER_STATE_BYTES_MAX})")]
    TooLarge { size_bytes: usize },
}

/// Whether a snapshot at `offset` may seed a log that holds `[log_start, log_end)`. Above the
/// end it describes batches the log lost (an unsynced tail cut by recovery, a truncation) and
/// would answer retries with offsets that hold other data; below the start, batches between it
/// and the log start are gone and replay could not fill them in.
pub fn usable(offset: Offset, log_start: Offset, log_end: Offset) -> bool {
    log_start <= offset && offset <= log_end
}

/// Encodes `producers` as a snapshot at `offset`. Refused above [`PRODUCER_STATE_BYTES_MAX`].
pub fn encode(producers: &ProducerState, offset: Offset) -> Result<Vec<u8>, SnapshotError> {
    let size_bytes = HEADER_BYTES
        + CRC_BYTES
        + producers.entries().map(|(_, entry)| PRODUCER_BYTES + entry.batches.len() * BATCH_BYTES).sum::<usize>();
    if size_bytes as u64 > PRODUCER_STATE_BYTES_MAX {
        return Err(SnapshotError::TooLarge { size_bytes });
    }
    let mut bytes = Vec::with_capacity(size_bytes);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_be_bytes());
    bytes.extend_from_slice(&offset.0.to_be_bytes());
    // Within the size limit the count fits easily.
    bytes.extend_from_slice(&(producers.entries().len() as u32).to_be_bytes());
    for (producer_id, entry) in producers.entries() {
        assert!(entry.batches.len() <= PRODUCER_BATCHES_RETAINED, "the state keeps at most five batches");
        bytes.extend_from_slice(&producer_id.to_be_bytes());
        bytes.extend_from_slice(&entry.epoch.to_be_bytes());
        bytes.push(entry.batches.len() as u8);
        for batch in &entry.batches {
            debug_assert!(batch.last_offset < offset.0, "a snapshot covers only batches below its offset");
            bytes.extend_from_slice(&batch.first_sequence.to_be_bytes());
            bytes.extend_from_slice(&batch.last_sequence.to_be_bytes());
            bytes.extend_from_slice(&batch.base_offset.to_be_bytes());
            bytes.extend_from_slice(&batch.last_offset.to_be_bytes());
        }
    }
    let crc = crc32c::crc32c(&bytes);
    bytes.extend_from_slice(&crc.to_be_bytes());
    assert_eq!(bytes.len(), size_bytes, "the size computed up front is the size written");
    Ok(bytes)
}

/// Decodes a snapshot, checking everything a damaged or foreign file could get wrong: length,
/// magic, version, CRC-32C, and that every entry is one the state could hold.
pub fn decode(bytes: &[u8]) -> Result<ProducerSnapshot, SnapshotError> {
    let damaged = |reason: String| SnapshotError::Damaged(reason);
    if bytes.len() < HEADER_BYTES + CRC_BYTES {
        return Err(damaged(format!("{} bytes, shorter than a header", bytes.len())));
    }
    if bytes.len() as u64 > PRODUCER_STATE_BYTES_MAX {
        return Err(damaged(format!("{} bytes, more than {PRODUCER_STATE_BYTES_MAX}", bytes.len())));
    }
    let (body, crc) = bytes.split_at(bytes.len() - CRC_BYTES);
    if &body[..8] != MAGIC {
        return Err(damaged("bad magic".to_string()));
    }
    let mut reader = Reader { bytes: body, at: 8 };
    let version = u16::from_be_bytes(reader.take()?);
    if version != VERSION {
        return Err(damaged(format!("version {version}, this build reads {VERSION}")));
    }
    let expected = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
    let actual = crc32c::crc32c(body);
    if expected != actual {
        return Err(damaged(format!("CRC-32C {actual:#010x}, the file says {expected:#010x}")));
    }
    let offset = Offset(u64::from_be_bytes(reader.take()?));
    let count = u32::from_be_bytes(reader.take()?);
    let mut producers = ProducerState::default();
    let mut previous_id: Option<i64> = None;
    for _ in 0..count {
        let producer_id = i64::from_be_bytes(reader.take()?);
        if producer_id < 0 || previous_id.is_some_and(|previous| producer_id <= previous) {
            return Err(damaged(format!("producer id {producer_id} negative or out of order")));
        }
        previous_id = Some(producer_id);
        let epoch = i16::from_be_bytes(reader.take()?);
        let [batch_count] = reader.take::<1>()?;
        if usize::from(batch_count) > PRODUCER_BATCHES_RETAINED {
            return Err(damaged(format!("producer {producer_id} has {batch_count} batches")));
        }
        let mut batches = VecDeque::with_capacity(usize::from(batch_count));
        for _ in 0..batch_count {
            let batch = BatchMeta {
                first_sequence: i32::from_be_bytes(reader.take()?),
                last_sequence: i32::from_be_bytes(reader.take()?),
                base_offset: u64::from_be_bytes(reader.take()?),
                last_offset: u64::from_be_bytes(reader.take()?),
            };
            let plausible = batch.first_sequence >= 0
                && batch.last_sequence >= 0
                && batch.base_offset <= batch.last_offset
                && batch.last_offset < offset.0;
            if !plausible {
                return Err(damaged(format!("producer {producer_id} has an impossible batch {batch:?}")));
            }
            batches.push_back(batch);
        }
        producers.restore(producer_id, ProducerEntry { epoch, batches });
    }
    if reader.at != body.len() {
        return Err(damaged(format!("{} bytes after the last producer", body.len() - reader.at)));
    }
    Ok(ProducerSnapshot { offset, producers })
}

/// Reads the bytes of a snapshot in order; running off the end is damage.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let end = self.at + N;
        let slice = self.bytes.get(self.at..end).ok_or_else(|| SnapshotError::Damaged("cut short".to_string()))?;
        self.at = end;
        let mut array = [0u8; N];
        array.copy_from_slice(slice);
        Ok(array)
    }
}

/// Replaces the partition's snapshot with `bytes` (from [`encode`]): durable, name and all, when
/// this returns.
pub fn write(fs: &mut dyn FileSystem, dir: &Path, bytes: &[u8]) -> Result<(), EngineError> {
    write_file_atomically(fs, dir, FILE_NAME, bytes).map_err(io_error(dir, FILE_NAME))
}

/// The partition's snapshot; `Ok(None)` when there is none.
pub fn read(fs: &mut dyn FileSystem, dir: &Path) -> Result<Option<ProducerSnapshot>, SnapshotError> {
    let bytes =
        read_small_file(fs, &dir.join(FILE_NAME), PRODUCER_STATE_BYTES_MAX).map_err(io_error(dir, FILE_NAME))?;
    bytes.map(|bytes| decode(&bytes)).transpose()
}

/// Removes the snapshot and any temp file a crash left behind, durably (a snapshot that
/// described removed batches must not come back).
pub fn remove(fs: &mut dyn FileSystem, dir: &Path) -> Result<(), EngineError> {
    remove_with_temp(fs, dir, FILE_NAME)?;
    fs.sync_dir(dir).map_err(io_error(dir, ""))
}

/// Removes `dir/name` and the temp file of an interrupted atomic write of it, if there (a missing
/// file is no error). Shared with the leader-epoch history.
pub(crate) fn remove_with_temp(fs: &mut dyn FileSystem, dir: &Path, name: &str) -> Result<(), EngineError> {
    let temp_name = format!("{name}{ATOMIC_TEMP_SUFFIX}");
    for name in [name, temp_name.as_str()] {
        match fs.remove_file(&dir.join(name)) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(io_error(dir, name)(error)),
            _ => {}
        }
    }
    Ok(())
}

/// Removes the temp file of a snapshot write a crash interrupted (the old snapshot, or none,
/// stands). Only tidiness: the next write replaces it anyway.
pub fn remove_leftover_temp(fs: &mut dyn FileSystem, dir: &Path) {
    let path = dir.join(format!("{FILE_NAME}{ATOMIC_TEMP_SUFFIX}"));
    match fs.remove_file(&path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => {
            tracing::warn!(path = %path.display(), %error, "a producer-state temp file could not be removed");
        }
        _ => {}
    }
}

fn io_error<'a>(dir: &'a Path, name: &'a str) -> impl FnOnce(io::Error) -> EngineError + 'a {
    move |source| EngineError::from_io(dir.join(name), source)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::producers::BatchIdentity;

    fn identity(producer_id: i64, epoch: i16, first: i32, last: i32) -> BatchIdentity {
        BatchIdentity { producer_id, producer_epoch: epoch, first_sequence: first, last_sequence: last }
    }

    fn state() -> ProducerState {
        let mut producers = ProducerState::default();
        producers.record(&identity(7, 2, 0, 4), 100, 104);
        producers.record(&identity(7, 2, 5, 5), 105, 105);
        for sequence in 0..7 {
            producers.record(&identity(9, 0, sequence, sequence), 200 + sequence as u64, 200 + sequence as u64);
        }
        producers.record(&identity(11, 3, 0, 0), 300, 300);
        producers.forget_from(300);
        producers
    }

    #[test]
    fn golden_round_trip() {
        let one = {
            let mut producers = ProducerState::default();
            producers.record(&identity(1, 2, 3, 4), 5, 6);
            producers
        };
        let bytes = encode(&one, Offset(7)).expect("encode");
        let expected: Vec<u8> = [
            &b"SKUAPRST"[..],
            &[0, 1],                                           // version
            &[0, 0, 0, 0, 0, 0, 0, 7],                         // offset
            &[0, 0, 0, 1],                                     // producers
            &[0, 0, 0, 0, 0, 0, 0, 1],                         // producer id
            &[0, 2],                                           // epoch
            &[1],                                              // batches
            &[0, 0, 0, 3, 0, 0, 0, 4],                         // first and last sequence
            &[0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 6], // base and last offset
        ]
        .concat();
        assert_eq!(&bytes[..bytes.len() - CRC_BYTES], expected.as_slice());
        assert_eq!(bytes[bytes.len() - CRC_BYTES..], crc32c::crc32c(&expected).to_be_bytes());
        assert_eq!(decode(&bytes).expect("decode"), ProducerSnapshot { offset: Offset(7), producers: one });

        let many = encode(&state(), Offset(300)).expect("encode");
        let decoded = decode(&many).expect("decode");
        assert_eq!((decoded.offset, decoded.producers), (Offset(300), state()), "five batches each, empty ones kept");
    }

    #[test]
    fn damage_is_refused() {
        let bytes = encode(&state(), Offset(300)).expect("encode");
        for (position, bit) in [(0, 0), (9, 1), (15, 2), (30, 3), (bytes.len() - 1, 7)] {
            let mut flipped = bytes.clone();
            flipped[position] ^= 1 << bit;
            assert!(matches!(decode(&flipped), Err(SnapshotError::Damaged(_))), "flip at {position}");
        }
        for length in [0, HEADER_BYTES, bytes.len() - 1] {
            assert!(matches!(decode(&bytes[..length]), Err(SnapshotError::Damaged(_))), "cut to {length}");
        }
        let mut future = bytes.clone();
        future[9] = 2;
        assert!(matches!(decode(&future), Err(SnapshotError::Damaged(reason)) if reason.contains("version 2")));
        // A well-sealed file whose contents could not come from a state: a batch at the offset.
        let mut impossible = bytes[..bytes.len() - CRC_BYTES].to_vec();
        impossible[10..18].copy_from_slice(&200u64.to_be_bytes());
        let crc = crc32c::crc32c(&impossible);
        impossible.extend_from_slice(&crc.to_be_bytes());
        assert!(matches!(decode(&impossible), Err(SnapshotError::Damaged(reason)) if reason.contains("impossible")));
    }

    #[test]
    fn a_snapshot_seeds_only_a_log_that_holds_its_offset() {
        assert!(usable(Offset(10), Offset(0), Offset(10)));
        assert!(usable(Offset(10), Offset(10), Offset(20)));
        assert!(!usable(Offset(11), Offset(0), Offset(10)), "beyond the end: those batches were lost");
        assert!(!usable(Offset(9), Offset(10), Offset(20)), "below the start: a gap replay cannot fill");
    }
}
