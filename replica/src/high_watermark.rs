//! A partition's high-watermark checkpoint on disk (Kafka's `replication-offset-checkpoint`, one
//! file per partition here): the high watermark as of the last checkpoint, so that a restarted
//! replica lets consumers read what was committed before it stopped instead of nothing until its
//! ISR fetches again (and a leader elected right after a restart starts from it).
//!
//! Owns: the file `skua.high-watermark` in the partition's directory and its format: two lines,
//! `skua-high-watermark 1` and the offset (`docs/formats/high-watermark.md`). The value is a
//! hint that may only be low: every value written was a high watermark, committed on the whole
//! ISR when written, so a checkpoint that is lost or stale (written without a sync, see
//! `engine::io::write_file_replacing`) only makes a restarted replica more careful. Opening
//! clamps it to the recovered log; a truncation below it rewrites it at once with a sync, since
//! records appended after the truncation must not be covered by an old checkpoint.
//!
//! Must not know: when checkpoints are taken (the broker's timer, `Partitions::
//! checkpoint_high_watermarks`), any Kafka API key. Runs on the shard thread; every call blocks.

use std::io;
use std::path::Path;

use engine::io::{read_small_file, write_file_atomically, write_file_replacing, FileSystem};
use engine::{EngineError, Offset};

pub const FILE_NAME: &str = "skua.high-watermark";
const HEADER: &str = "skua-high-watermark 1";
/// A checkpoint larger than this is damaged.
const CHECKPOINT_BYTES_MAX: u64 = 256;

pub fn encode(high_watermark: Offset) -> Vec<u8> {
    format!("{HEADER}\n{}\n", high_watermark.0).into_bytes()
}

/// The offset a checkpoint holds; None when it is damaged (treated as no checkpoint).
pub fn decode(bytes: &[u8]) -> Option<Offset> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return None;
    }
    let offset = lines.next()?.parse::<u64>().ok()?;
    lines.next().is_none().then_some(Offset(offset))
}

/// The checkpoint on disk; None when there is none or it is damaged (logged).
pub fn read(fs: &mut dyn FileSystem, dir: &Path) -> Option<Offset> {
    match read_small_file(fs, &dir.join(FILE_NAME), CHECKPOINT_BYTES_MAX) {
        Ok(Some(bytes)) => {
            let decoded = decode(&bytes);
            if decoded.is_none() {
                tracing::warn!(dir = %dir.display(), "damaged high-watermark checkpoint ignored");
            }
            decoded
        }
        Ok(None) => None,
        Err(error) => {
            tracing::warn!(dir = %dir.display(), %error, "high-watermark checkpoint unreadable; ignored");
            None
        }
    }
}

/// A periodic checkpoint: replaced without a sync (see the module header).
pub fn write(fs: &mut dyn FileSystem, dir: &Path, high_watermark: Offset) -> Result<(), EngineError> {
    write_file_replacing(fs, dir, FILE_NAME, &encode(high_watermark)).map_err(io_error(dir))
}

/// A checkpoint lowered by a truncation: durable before the log grows again.
pub fn write_synced(fs: &mut dyn FileSystem, dir: &Path, high_watermark: Offset) -> Result<(), EngineError> {
    write_file_atomically(fs, dir, FILE_NAME, &encode(high_watermark)).map_err(io_error(dir))
}

/// Removes the checkpoint and a temp file a crash left behind (a partition's files go with it).
pub fn remove(fs: &mut dyn FileSystem, dir: &Path) -> Result<(), EngineError> {
    crate::producer_snapshot::remove_with_temp(fs, dir, FILE_NAME)
}

fn io_error(dir: &Path) -> impl FnOnce(io::Error) -> EngineError + '_ {
    move |source| EngineError::from_io(dir.join(FILE_NAME), source)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_bytes_and_round_trip() {
        assert_eq!(encode(Offset(1234)), b"skua-high-watermark 1\n1234\n");
        assert_eq!(decode(&encode(Offset(1234))), Some(Offset(1234)));
    }

    #[test]
    fn damaged_checkpoints_are_none() {
        for damaged in [
            &b""[..],
            b"skua-high-watermark 1\n",
            b"skua-high-watermark 2\n5\n",
            b"skua-high-watermark 1\n-5\n",
            b"skua-high-watermark 1\n5\n6\n",
            b"\xff\xfe",
            b"skua-high-watermark 1\n5x\n",
        ] {
            assert_eq!(decode(damaged), None, "{damaged:?}");
        }
    }
}
