//! Disk full on a real file system: a 4 MiB tmpfs. Appends fail with `Full` (never a panic), the
//! failed commit changes nothing, earlier data still reads back, appends work again once space is
//! freed, and everything acknowledged survives a close and reopen. Both write modes (direct mode
//! needs O_DIRECT support in tmpfs, which Linux has had since 6.6).
//!
//! Mounting needs root. CI runs as root; elsewhere set SKUA_SKIP_TMPFS=1 to skip loudly.

use std::path::{Path, PathBuf};
use std::process::Command;

use engine::io::{open_backend, BackendKind};
use engine::testkit::make_sized_batch;
use engine::{EngineError, LeaderEpoch, LogConfig, Offset, Shard, ShardConfig, WriteMode};

struct Mount(PathBuf, #[allow(dead_code)] tempfile::TempDir);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn mount_tmpfs(size: &str) -> Option<Mount> {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let path = dir.path().to_path_buf();
    let status =
        Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(&path).status();
    if status.is_ok_and(|status| status.success()) {
        return Some(Mount(path, dir));
    }
    if std::env::var_os("SKUA_SKIP_TMPFS").is_some() {
        eprintln!("tmpfs_full: SKIPPED (cannot mount tmpfs and SKUA_SKIP_TMPFS is set)");
        return None;
    }
    panic!("cannot mount a tmpfs at {}: run as root (CI does), or set SKUA_SKIP_TMPFS=1 to skip", path.display());
}

fn read_all(shard: &Shard, id: engine::LogId) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut offset = Offset(0);
    let end = shard.log(id).expect("log").log_end_offset();
    while offset < end {
        let read = shard.read(id, offset, 1 << 20, None).expect("read");
        let mut chunk_bytes = Vec::new();
        for chunk in &read.chunks {
            chunk_bytes.extend(chunk.to_vec().expect("chunk"));
        }
        let headers = engine::batch::validate_all(&chunk_bytes).expect("valid batches");
        offset = Offset(headers.last().expect("one").last_offset() + 1);
        bytes.extend(chunk_bytes);
    }
    bytes
}

fn fill_until_full(mode: WriteMode) {
    let Some(mount) = mount_tmpfs("4m") else { return };
    let root: &Path = &mount.0;
    let config = ShardConfig { write_mode: mode, ..ShardConfig::default() };
    let log_config = LogConfig { segment_bytes: 512 * 1024, ..LogConfig::default() };
    let mut shard = Shard::new(open_backend(BackendKind::Auto).expect("backend"), config).expect("shard");
    let (id, _) = match shard.open_log(&root.join("p0"), log_config, 0) {
        Ok(opened) => opened,
        Err(EngineError::Io { source, .. })
            if mode == WriteMode::Direct && source.raw_os_error() == Some(libc_einval()) =>
        {
            eprintln!("tmpfs_full: direct mode not applicable: this kernel's tmpfs refuses O_DIRECT");
            return;
        }
        Err(error) => panic!("open: {error}"),
    };
    let mut acknowledged = 0u64;
    let mut full_seen = false;
    for round in 0..10_000u64 {
        let batch = make_sized_batch(4, 4000, round, round as i64);
        let info = shard.append(id, &batch, LeaderEpoch(0), 0);
        let report = shard.commit(0);
        match (info, report.failed.first()) {
            (Ok(info), None) => {
                acknowledged = info.last_offset.0 + 1;
                assert_eq!(report.committed, vec![(id, Offset(acknowledged))]);
            }
            (Ok(_), Some((_, error, lost))) => {
                assert!(matches!(error, EngineError::Full { .. }), "{mode:?}: disk full is Full, got {error:?}");
                assert_eq!(lost.start, Offset(acknowledged));
                full_seen = true;
                break;
            }
            (Err(EngineError::Full { .. }), _) => {
                full_seen = true; // A roll could not create its segment file.
                break;
            }
            (Err(error), _) => panic!("{mode:?}: unexpected append error {error:?}"),
        }
    }
    assert!(full_seen, "{mode:?}: a 4 MiB tmpfs fills up");
    assert!(acknowledged > 100, "{mode:?}: a good part of the disk was used first ({acknowledged} offsets)");
    let log = shard.log(id).expect("log");
    assert_eq!(log.log_end_offset(), Offset(acknowledged), "{mode:?}: the failed commit changed nothing");
    assert_eq!(log.next_offset(), log.log_end_offset(), "{mode:?}: failed offsets are given out again");
    let before = read_all(&shard, id);
    assert_eq!(
        engine::batch::validate_all(&before).expect("valid").last().expect("one").last_offset() + 1,
        acknowledged
    );
    // Still full: the next commit fails cleanly too.
    if shard.append(id, &make_sized_batch(4, 4000, 1, 0), LeaderEpoch(0), 0).is_ok() {
        let report = shard.commit(0);
        assert!(report.failed.iter().all(|(_, error, _)| matches!(error, EngineError::Full { .. })));
    }
    // Free space: retention of everything but the active segment.
    shard.enforce_retention(i64::MAX / 2);
    let start = shard.log(id).expect("log").log_start_offset();
    assert!(start > Offset(0), "{mode:?}: retention freed whole segments");
    let info =
        shard.append(id, &make_sized_batch(1, 100, 7, 0), LeaderEpoch(0), 0).expect("append after freeing space");
    let report = shard.commit(0);
    assert!(report.failed.is_empty(), "{mode:?}: appends work again: {:?}", report.failed);
    assert_eq!(info.base_offset, Offset(acknowledged));
    shard.close(0).expect("close");
    let mut shard = Shard::new(open_backend(BackendKind::Auto).expect("backend"), config).expect("shard");
    let (id, report) = shard.open_log(&root.join("p0"), log_config, 0).expect("reopen");
    assert_eq!(report.log_start_offset, start);
    assert_eq!(report.log_end_offset, Offset(acknowledged + 1));
    assert!(shard.read(id, start, 1 << 20, None).expect("read").size_bytes > 0);
    eprintln!("tmpfs_full {mode:?}: {acknowledged} offsets acknowledged before the disk filled; recovered after freeing space");
}

fn libc_einval() -> i32 {
    22
}

#[test]
fn disk_full_buffered() {
    fill_until_full(WriteMode::Buffered);
}

#[test]
fn disk_full_direct() {
    fill_until_full(WriteMode::Direct);
}
