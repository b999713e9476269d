//! A partition's leader-epoch history on disk (Kafka's `leader-epoch-checkpoint`): where each
//! leader epoch of the log began, so that a restarted replica still knows where its log diverges
//! from a new leader's (KIP-101/279) without reading every batch header again.
//!
//! Owns: the file `skua.leader-epochs` in the partition's directory, its text format (below,
//! documented in `docs/formats/leader-epochs.md`), the bound on what is read
//! ([`LEADER_EPOCHS_BYTES_MAX`]), and the rule for what of a history survives a shorter log
//! ([`trim_to`]). Written through the engine shard's `FileSystem` with
//! `engine::io::write_file_atomically` (temp file, `fdatasync`, rename, directory fsync) every
//! time the history changes, *before* the batches of a new epoch are committed: a crash may
//! leave entries past the log end (dropped when the log is opened), never a committed batch whose
//! epoch is missing.
//!
//! Format, version 1, one line each: `skua-leader-epochs 1`, the entry count, then `<epoch>
//! <start offset>` per entry, oldest first, epochs and offsets strictly increasing (an epoch in
//! which nothing was written shares its start with the next and is not kept). Text like Kafka's
//! checkpoint: a few lines, read by people when replicas disagree.
//!
//! Must not know: when epochs begin (leaders at a role change, followers from batch headers:
//! [`crate::Partitions`]), any Kafka API key. Runs on the shard thread; every call blocks.

use std::io;
use std::path::Path;

use engine::io::{read_small_file, write_file_atomically, FileSystem};
use engine::{EngineError, LeaderEpoch, Offset};

use crate::partition::EpochStart;

pub const FILE_NAME: &str = "skua.leader-epochs";
const HEADER: &str = "skua-leader-epochs 1";
/// A history file larger than this is damaged (about 40,000 leader changes).
pub const LEADER_EPOCHS_BYTES_MAX: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Storage(#[from] EngineError),
    #[error("damaged leader-epoch history: {0}")]
    Damaged(String),
}

pub fn encode(epochs: &[EpochStart]) -> Vec<u8> {
    let mut text = format!("{HEADER}\n{}\n", epochs.len());
    for start in epochs {
        text.push_str(&format!("{} {}\n", start.epoch.0, start.start_offset.0));
    }
    text.into_bytes()
}

pub fn decode(bytes: &[u8]) -> Result<Vec<EpochStart>, HistoryError> {
    let damaged = |what: &str| HistoryError::Damaged(what.to_string());
    let text = std::str::from_utf8(bytes).map_err(|_| damaged("not UTF-8"))?;
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(damaged("no `skua-leader-epochs 1` header"));
    }
    let count: usize = lines.next().and_then(|line| line.parse().ok()).ok_or_else(|| damaged("no entry count"))?;
    let mut epochs: Vec<EpochStart> = Vec::new();
    for line in lines.by_ref().take(count) {
        let mut fields = line.split(' ');
        let (Some(epoch), Some(start), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(damaged("an entry is not `<epoch> <start offset>`"));
        };
        let epoch = epoch.parse::<i32>().ok().filter(|epoch| *epoch >= 0).ok_or_else(|| damaged("a bad epoch"))?;
        let start = start.parse::<u64>().map_err(|_| damaged("a bad start offset"))?;
        let entry = EpochStart { epoch: LeaderEpoch(epoch), start_offset: Offset(start) };
        if epochs.last().is_some_and(|last| last.epoch >= entry.epoch || last.start_offset >= entry.start_offset) {
            return Err(damaged("epochs or offsets do not increase"));
        }
        epochs.push(entry);
    }
    if epochs.len() != count || lines.next().is_some() {
        return Err(damaged("the entry count does not match the entries"));
    }
    Ok(epochs)
}

/// Drops what a log ending at `end` cannot hold: entries that begin at or past the end (Kafka's
/// `truncateFromEnd`), so that the history's last epoch is the epoch of the log's last batch. A
/// leader's own epoch comes back when it takes the role (`start_epoch`).
pub fn trim_to(epochs: &mut Vec<EpochStart>, end: Offset) {
    epochs.retain(|start| start.start_offset < end);
}

/// Replaces the history on disk.
pub fn write(fs: &mut dyn FileSystem, dir: &Path, epochs: &[EpochStart]) -> Result<(), EngineError> {
    write_file_atomically(fs, dir, FILE_NAME, &encode(epochs)).map_err(io_error(dir, FILE_NAME))
}

/// The history on disk; `Ok(None)` when there is none.
pub fn read(fs: &mut dyn FileSystem, dir: &Path) -> Result<Option<Vec<EpochStart>>, HistoryError> {
    let bytes = read_small_file(fs, &dir.join(FILE_NAME), LEADER_EPOCHS_BYTES_MAX).map_err(io_error(dir, FILE_NAME))?;
    bytes.map(|bytes| decode(&bytes)).transpose()
}

/// Removes the history and a temp file a crash left behind (a partition's files go with it).
pub fn remove(fs: &mut dyn FileSystem, dir: &Path) -> Result<(), EngineError> {
    crate::producer_snapshot::remove_with_temp(fs, dir, FILE_NAME)
}

fn io_error<'a>(dir: &'a Path, name: &'a str) -> impl FnOnce(io::Error) -> EngineError + 'a {
    move |source| EngineError::from_io(dir.join(name), source)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(epoch: i32, start: u64) -> EpochStart {
        EpochStart { epoch: LeaderEpoch(epoch), start_offset: Offset(start) }
    }

    #[test]
    fn golden_round_trip() {
        let epochs = vec![entry(0, 0), entry(3, 120), entry(4, 7_000_000_000)];
        let bytes = encode(&epochs);
        assert_eq!(bytes, b"skua-leader-epochs 1\n3\n0 0\n3 120\n4 7000000000\n");
        assert_eq!(decode(&bytes).expect("decode"), epochs);
        assert_eq!(decode(&encode(&[])).expect("empty"), Vec::new());
    }

    #[test]
    fn damage_is_refused() {
        for bad in [
            &b"skua-leader-epochs 2\n0\n"[..],
            b"skua-leader-epochs 1\n2\n0 0\n",
            b"skua-leader-epochs 1\n1\n0 0\n1 5\n",
            b"skua-leader-epochs 1\n2\n1 0\n1 5\n",
            b"skua-leader-epochs 1\n2\n0 5\n1 5\n",
            b"skua-leader-epochs 1\n1\n-1 0\n",
            b"skua-leader-epochs 1\n1\n0 x\n",
            b"skua-leader-epochs 1\n1\n0 0 0\n",
            b"\xff",
        ] {
            assert!(matches!(decode(bad), Err(HistoryError::Damaged(_))), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn trimming_keeps_what_the_log_holds() {
        let mut epochs = vec![entry(0, 0), entry(2, 10), entry(5, 20)];
        trim_to(&mut epochs, Offset(20));
        assert_eq!(epochs, vec![entry(0, 0), entry(2, 10)]);
        trim_to(&mut epochs, Offset(10));
        assert_eq!(epochs, vec![entry(0, 0)]);
        trim_to(&mut epochs, Offset(0));
        assert_eq!(epochs, vec![], "an empty log ends in no epoch");
    }
}
