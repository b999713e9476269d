//! The durable producer id counter: ids are reserved on disk a block at a time (written through
//! the engine's `FileSystem`, replaced atomically: temp file, `fdatasync`, rename, directory
//! fsync, before any id of the reserved block is handed out), so no id is handed out twice across
//! restarts and crashes.
//!
//! Must not know: partitions or sequences (`replica` checks those); who asks for ids.

use std::path::{Path, PathBuf};

use engine::io::{read_small_file, write_file_atomically, FileSystem};

/// Producer ids are reserved on disk this many at a time, so a restart never reuses one.
pub const PRODUCER_ID_BLOCK: i64 = 1000;
pub const PRODUCER_ID_FILE: &str = "skua-producer-ids";
/// The counter file holds one decimal number; anything longer is damage.
pub const PRODUCER_ID_FILE_BYTES_MAX: u64 = 64;

/// Hands out producer ids, durably.
#[derive(Debug)]
pub struct ProducerIds {
    next: i64,
    reserved_until: i64,
    data_dir: PathBuf,
    fs: Box<dyn FileSystem>,
}

impl ProducerIds {
    /// The counter of `data_dir` on real files (plain syscalls: one small write per
    /// [`PRODUCER_ID_BLOCK`] ids).
    pub fn open(data_dir: &Path) -> std::io::Result<ProducerIds> {
        ProducerIds::open_with(Box::new(engine::io::os::SyscallFs::new()), data_dir)
    }

    pub fn open_with(mut fs: Box<dyn FileSystem>, data_dir: &Path) -> std::io::Result<ProducerIds> {
        let path = data_dir.join(PRODUCER_ID_FILE);
        let damaged =
            || std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{} is not a producer id", path.display()));
        let reserved = match read_small_file(fs.as_mut(), &path, PRODUCER_ID_FILE_BYTES_MAX)? {
            Some(bytes) => std::str::from_utf8(&bytes)
                .ok()
                .and_then(|text| text.trim().parse::<i64>().ok())
                .filter(|reserved| *reserved >= 0)
                .ok_or_else(damaged)?,
            None => 0,
        };
        Ok(ProducerIds { next: reserved, reserved_until: reserved, data_dir: data_dir.to_path_buf(), fs })
    }

    pub fn allocate(&mut self) -> std::io::Result<i64> {
        if self.next >= self.reserved_until {
            let reserved_until = self.next + PRODUCER_ID_BLOCK;
            // Durable (file and directory entry) before any id of the block leaves this function.
            write_file_atomically(
                self.fs.as_mut(),
                &self.data_dir,
                PRODUCER_ID_FILE,
                reserved_until.to_string().as_bytes(),
            )?;
            self.reserved_until = reserved_until;
        }
        let id = self.next;
        self.next += 1;
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producer_ids_are_never_reused_across_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ids = ProducerIds::open(dir.path()).expect("open");
        let first: Vec<i64> = (0..3).map(|_| ids.allocate().expect("id")).collect();
        assert_eq!(first, vec![0, 1, 2]);
        let mut reopened = ProducerIds::open(dir.path()).expect("reopen");
        assert!(reopened.allocate().expect("id") >= PRODUCER_ID_BLOCK);
    }

    /// Power loss on the simulator (unsynced bytes torn or lost) right after each reservation:
    /// the next run never hands out an id the previous one did.
    #[test]
    fn producer_ids_survive_simulated_power_loss() {
        let seed: u64 = std::env::var("SEED").ok().and_then(|seed| seed.parse().ok()).unwrap_or(20_261_203);
        eprintln!("SEED={seed}");
        let fs = engine::io::sim::SimFs::new(seed, engine::io::sim::SimFaults::default());
        let data_dir = Path::new("/sim/data");
        fs.clone().create_dir_all(data_dir).expect("data dir");
        let mut highest = -1;
        for _ in 0..20 {
            let mut ids = ProducerIds::open_with(Box::new(fs.clone()), data_dir).expect("open after crash");
            let id = ids.allocate().expect("id");
            assert!(id > highest, "id {id} handed out again (highest before the crash {highest})");
            highest = id;
            fs.crash();
        }
    }
}
