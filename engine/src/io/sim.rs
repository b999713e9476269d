//! A simulated, in-memory file system for deterministic fault testing.
//!
//! Owns: a model of what survives a crash. Each file keeps its *durable* bytes (as of its last
//! sync) and the operations since then. [`SimFs::crash`] throws the volatile state away and keeps,
//! per file, a random prefix of the unsynced operations, the last one torn at a random sector.
//! Sectors are atomic (old or new bytes, never a mix); bytes past the file's old end may come back
//! as garbage (stale blocks), bytes the file held before never do. Faults come from one seed: short writes, I/O errors, disk full
//! (a byte budget), latency.
//!
//! Directories: a rename is durable only once `sync_dir` of the destination's parent directory
//! followed it; until then it is remembered, and a crash undoes the remembered renames newest
//! first (the file goes back to its old name, a file the rename replaced comes back). So a test can
//! show that a crash loses an un-synced rename. A rename whose names a durable operation took
//! over later (the destination removed, or renamed on by a synced rename; a file created under
//! the source name) stays: on a journaling file system a later directory operation lands after
//! it. Creating and removing files stay durable at once (a simplification: the engine syncs the
//! directory after each).
//!
//! Nothing here is used outside tests and the fuzzer, but it lives in the library so that
//! integration tests and benchmarks can drive it.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Completion, DeferredChains, FileRef, FileSystem, OpenOptions, StorageFile, WriteChain};
use crate::limits::DIRECT_IO_ALIGNMENT_BYTES;

/// The unit of atomic writes the simulator assumes for the device.
pub const SECTOR_BYTES: u64 = 512;

/// SplitMix64: small, fast, and good enough to drive tests reproducibly.
#[derive(Clone, Debug)]
pub struct SimRng(u64);

impl SimRng {
    pub fn new(seed: u64) -> SimRng {
        SimRng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..bound` (`bound` > 0).
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "below(0)");
        self.next_u64() % bound
    }

    /// True with probability `numerator / denominator`.
    pub fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        self.below(denominator) < numerator
    }
}

/// Fault rates, each "n in a million" per operation.
#[derive(Clone, Copy, Debug, Default)]
pub struct SimFaults {
    pub short_write_per_million: u64,
    pub write_error_per_million: u64,
    pub sync_error_per_million: u64,
    /// Upper bound of injected latency per submission, in microseconds (real sleep).
    pub latency_us_max: u64,
}

#[derive(Debug, Clone)]
enum Op {
    Write { position: u64, data: Vec<u8> },
    SetLen { length: u64 },
}

#[derive(Debug, Default)]
struct SimFileState {
    durable: Vec<u8>,
    current: Vec<u8>,
    unsynced: Vec<Op>,
    direct: bool,
}

fn apply(content: &mut Vec<u8>, op: &Op) {
    match op {
        Op::Write { position, data } => {
            let end = *position as usize + data.len();
            if content.len() < end {
                content.resize(end, 0);
            }
            content[*position as usize..end].copy_from_slice(data);
        }
        Op::SetLen { length } => content.resize(*length as usize, 0),
    }
}

/// A rename not yet made durable by `sync_dir` of the destination's parent.
#[derive(Debug)]
struct PendingRename {
    from: PathBuf,
    to: PathBuf,
    file: Arc<Mutex<SimFileState>>,
    /// The file that was at `to` before the rename, if any.
    replaced: Option<Arc<Mutex<SimFileState>>>,
}

#[derive(Debug)]
struct SimState {
    files: BTreeMap<PathBuf, Arc<Mutex<SimFileState>>>,
    /// Oldest first.
    pending_renames: Vec<PendingRename>,
    dirs: BTreeSet<PathBuf>,
    rng: SimRng,
    faults: SimFaults,
    /// Total bytes all files may hold; `None` is unlimited.
    capacity_bytes: Option<u64>,
    /// Read-ahead hints asked for, oldest first: (path, position, length). Bounded by
    /// [`PREFETCHES_KEPT_MAX`] (the oldest go).
    prefetches: std::collections::VecDeque<(PathBuf, u64, u64)>,
}

/// Most read-ahead hints the simulator remembers.
const PREFETCHES_KEPT_MAX: usize = 4096;

impl SimState {
    fn used_bytes(&self) -> u64 {
        self.files.values().map(|file| lock(file).current.len() as u64).sum()
    }

    /// Undoes the renames no `sync_dir` made durable, newest first, except those whose names a
    /// later operation took over (see the module header).
    fn undo_pending_renames(&mut self) {
        for rename in std::mem::take(&mut self.pending_renames).into_iter().rev() {
            let still_there = self.files.get(&rename.to).is_some_and(|file| Arc::ptr_eq(file, &rename.file));
            if !still_there || self.files.contains_key(&rename.from) {
                continue;
            }
            self.files.remove(&rename.to);
            if let Some(replaced) = rename.replaced {
                self.files.insert(rename.to, replaced);
            }
            self.files.insert(rename.from, rename.file);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a simulator lock is a test failure already; keep going for the report.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The simulated file system. Clones share the files: a test keeps one clone to crash the
/// "machine" or inspect files while the engine owns another. Started chains belong to the clone
/// they were started on and run when it reaps them: a non-waiting reap runs a seeded random
/// subset in a seeded order, so chains of different files complete out of order and some stay in
/// flight across later appends.
#[derive(Debug)]
pub struct SimFs {
    state: Arc<Mutex<SimState>>,
    chains: DeferredChains,
}

impl Clone for SimFs {
    fn clone(&self) -> SimFs {
        SimFs { state: self.state.clone(), chains: DeferredChains::default() }
    }
}

#[derive(Debug)]
struct SimFile {
    path: PathBuf,
    file: Arc<Mutex<SimFileState>>,
    fs: Arc<Mutex<SimState>>,
}

impl SimFs {
    pub fn new(seed: u64, faults: SimFaults) -> SimFs {
        SimFs {
            state: Arc::new(Mutex::new(SimState {
                files: BTreeMap::new(),
                pending_renames: Vec::new(),
                dirs: BTreeSet::new(),
                rng: SimRng::new(seed),
                faults,
                capacity_bytes: None,
                prefetches: std::collections::VecDeque::new(),
            })),
            chains: DeferredChains::default(),
        }
    }

    pub fn set_faults(&self, faults: SimFaults) {
        lock(&self.state).faults = faults;
    }

    /// The read-ahead hints (`StorageFile::prefetch`) asked for since the last call, oldest first:
    /// (path, position, length).
    pub fn take_prefetches(&self) -> Vec<(PathBuf, u64, u64)> {
        lock(&self.state).prefetches.drain(..).collect()
    }

    /// Limits the bytes all files may hold together; writes past it fail with ENOSPC.
    pub fn set_capacity_bytes(&self, capacity_bytes: Option<u64>) {
        lock(&self.state).capacity_bytes = capacity_bytes;
    }

    /// Simulates power loss: renames not followed by `sync_dir` are undone, then every file keeps
    /// its durable bytes plus a random prefix of the operations since its last sync, the last kept
    /// write possibly torn and trailed by garbage. Returns how many files lost unsynced data.
    pub fn crash(&self) -> usize {
        let mut state = lock(&self.state);
        state.undo_pending_renames();
        let files: Vec<Arc<Mutex<SimFileState>>> = state.files.values().cloned().collect();
        let mut damaged = 0;
        for file in files {
            let mut file = lock(&file);
            if file.unsynced.is_empty() {
                file.current = file.durable.clone();
                continue;
            }
            damaged += 1;
            let ops = std::mem::take(&mut file.unsynced);
            let kept = state.rng.below(ops.len() as u64 + 1) as usize;
            let mut content = file.durable.clone();
            for op in &ops[..kept] {
                apply(&mut content, op);
            }
            if let Some(Op::Write { position, data }) = ops.get(kept) {
                // Tear the next write at a sector boundary: sectors are atomic (each holds its old
                // or its new bytes), so the new bytes of a prefix of its sectors land. Past the
                // file's old end the device may expose stale blocks: garbage, never over bytes
                // the file held before.
                let sector_end = |at: u64| (at / SECTOR_BYTES + 1) * SECTOR_BYTES;
                let end = position + data.len() as u64;
                let mut cut = *position;
                let sectors_kept = state.rng.below(data.len() as u64 / SECTOR_BYTES + 2);
                for _ in 0..sectors_kept {
                    cut = sector_end(cut).min(end);
                }
                let kept_bytes = (cut - position) as usize;
                apply(&mut content, &Op::Write { position: *position, data: data[..kept_bytes].to_vec() });
                let old_end = content.len() as u64;
                if cut < end && old_end < end && state.rng.chance(1, 2) {
                    let garbage_start = cut.max(old_end);
                    let garbage: Vec<u8> = (garbage_start..end).map(|_| state.rng.next_u64() as u8).collect();
                    apply(&mut content, &Op::Write { position: garbage_start, data: garbage });
                }
            }
            file.durable = content.clone();
            file.current = content;
        }
        damaged
    }

    /// Flips one bit of a file's durable and current bytes (simulated media corruption).
    pub fn flip_bit(&self, path: &Path, position: u64, bit: u8) -> bool {
        let state = lock(&self.state);
        let Some(file) = state.files.get(path) else { return false };
        let mut file = lock(file);
        let index = position as usize;
        if index >= file.current.len() {
            return false;
        }
        file.current[index] ^= 1 << (bit % 8);
        if index < file.durable.len() {
            file.durable[index] ^= 1 << (bit % 8);
        }
        true
    }

    /// A file's current bytes, for assertions.
    pub fn contents(&self, path: &Path) -> Option<Vec<u8>> {
        let state = lock(&self.state);
        state.files.get(path).map(|file| lock(file).current.clone())
    }

    pub fn file_paths(&self) -> Vec<PathBuf> {
        lock(&self.state).files.keys().cloned().collect()
    }

    fn parent_exists(state: &SimState, path: &Path) -> bool {
        match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => state.dirs.contains(parent),
            _ => true,
        }
    }
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{} not found", path.display()))
}

impl FileSystem for SimFs {
    fn name(&self) -> &'static str {
        "sim"
    }

    fn open(&mut self, path: &Path, options: OpenOptions) -> io::Result<FileRef> {
        let mut state = lock(&self.state);
        let file = match state.files.get(path) {
            Some(file) => {
                if options.truncate {
                    let mut guard = lock(file);
                    guard.current.clear();
                    guard.unsynced.push(Op::SetLen { length: 0 });
                }
                file.clone()
            }
            None if options.create => {
                if !Self::parent_exists(&state, path) {
                    return Err(not_found(path));
                }
                let file = Arc::new(Mutex::new(SimFileState::default()));
                state.files.insert(path.to_path_buf(), file.clone());
                file
            }
            None => return Err(not_found(path)),
        };
        lock(&file).direct = options.direct;
        Ok(Arc::new(SimFile { path: path.to_path_buf(), file, fs: self.state.clone() }))
    }

    fn create_dir_all(&mut self, path: &Path) -> io::Result<()> {
        let mut state = lock(&self.state);
        for ancestor in path.ancestors() {
            if !ancestor.as_os_str().is_empty() {
                state.dirs.insert(ancestor.to_path_buf());
            }
        }
        Ok(())
    }

    fn list_dir(&mut self, path: &Path) -> io::Result<Vec<String>> {
        let state = lock(&self.state);
        if !state.dirs.contains(path) {
            return Err(not_found(path));
        }
        let mut names: Vec<String> = state
            .files
            .keys()
            .chain(state.dirs.iter())
            .filter(|candidate| candidate.parent() == Some(path))
            .filter_map(|candidate| candidate.file_name()?.to_str().map(str::to_string))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    fn remove_file(&mut self, path: &Path) -> io::Result<()> {
        let mut state = lock(&self.state);
        state.files.remove(path).map(|_| ()).ok_or_else(|| not_found(path))
    }

    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = lock(&self.state);
        let file = state.files.remove(from).ok_or_else(|| not_found(from))?;
        let replaced = state.files.insert(to.to_path_buf(), file.clone());
        state.pending_renames.push(PendingRename { from: from.to_path_buf(), to: to.to_path_buf(), file, replaced });
        Ok(())
    }

    fn sync_dir(&mut self, path: &Path) -> io::Result<()> {
        let mut state = lock(&self.state);
        state.pending_renames.retain(|rename| rename.to.parent() != Some(path));
        Ok(())
    }

    fn start(&mut self, token: u64, chain: WriteChain) {
        self.chains.push(token, chain);
    }

    fn flush(&mut self) {}

    fn reap(&mut self, wait: bool) -> Vec<Completion> {
        let mut done = Vec::new();
        while !self.chains.is_empty() {
            let (pick, stop) = {
                let mut state = lock(&self.state);
                let pick = state.rng.below(self.chains.len() as u64) as usize;
                // Each round, maybe stop early: what is left stays in flight.
                let stop = !(wait && done.is_empty()) && state.rng.chance(1, 3);
                (pick, stop)
            };
            if stop {
                break;
            }
            done.push(self.chains.run(pick));
        }
        done
    }

    fn in_flight(&self) -> usize {
        self.chains.len()
    }

    fn io_stats(&self) -> super::stats::IoStats {
        self.chains.stats()
    }
}

impl SimFile {
    fn maybe_sleep(&self) {
        let latency_us = {
            let mut state = lock(&self.fs);
            let max = state.faults.latency_us_max;
            if max == 0 {
                return;
            }
            state.rng.below(max + 1)
        };
        std::thread::sleep(std::time::Duration::from_micros(latency_us));
    }
}

impl StorageFile for SimFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn prefetch(&self, position: u64, length: u64) {
        let mut state = lock(&self.fs);
        if state.prefetches.len() == PREFETCHES_KEPT_MAX {
            state.prefetches.pop_front();
        }
        state.prefetches.push_back((self.path.clone(), position, length));
    }

    fn read_at(&self, buf: &mut [u8], position: u64) -> io::Result<usize> {
        let file = lock(&self.file);
        let start = (position as usize).min(file.current.len());
        let end = (start + buf.len()).min(file.current.len());
        buf[..end - start].copy_from_slice(&file.current[start..end]);
        Ok(end - start)
    }

    fn write_at(&self, data: &[u8], position: u64) -> io::Result<usize> {
        self.maybe_sleep();
        let mut state = lock(&self.fs);
        let mut file = lock(&self.file);
        if file.direct {
            let alignment = DIRECT_IO_ALIGNMENT_BYTES as u64;
            if position % alignment != 0 || data.len() as u64 % alignment != 0 || data.as_ptr() as u64 % alignment != 0
            {
                return Err(io::Error::from_raw_os_error(libc::EINVAL));
            }
        }
        if data.is_empty() {
            return Ok(0);
        }
        let faults = state.faults;
        if state.rng.chance(faults.write_error_per_million, 1_000_000) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        let mut length = data.len();
        if length > 1 && state.rng.chance(faults.short_write_per_million, 1_000_000) {
            length = 1 + state.rng.below(length as u64 - 1) as usize;
            if file.direct {
                length -= length % DIRECT_IO_ALIGNMENT_BYTES;
                if length == 0 {
                    length = data.len();
                }
            }
        }
        if let Some(capacity) = state.capacity_bytes {
            drop(file);
            let used = state.used_bytes();
            file = lock(&self.file);
            let growth = (position as usize + length).saturating_sub(file.current.len()) as u64;
            if used + growth > capacity {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
        }
        if std::env::var_os("SKUA_SIM_TRACE").is_some() {
            eprintln!("sim write {} at {position} len {length} (asked {})", self.path.display(), data.len());
        }
        let op = Op::Write { position, data: data[..length].to_vec() };
        apply(&mut file.current, &op);
        file.unsynced.push(op);
        Ok(length)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.maybe_sleep();
        let mut state = lock(&self.fs);
        let faults = state.faults;
        if state.rng.chance(faults.sync_error_per_million, 1_000_000) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        let mut file = lock(&self.file);
        if std::env::var_os("SKUA_SIM_TRACE").is_some() {
            eprintln!("sim sync {} len {}", self.path.display(), file.current.len());
        }
        file.durable = file.current.clone();
        file.unsynced.clear();
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        Ok(lock(&self.file).current.len() as u64)
    }

    fn set_len(&self, length: u64) -> io::Result<()> {
        let mut file = lock(&self.file);
        if std::env::var_os("SKUA_SIM_TRACE").is_some() {
            eprintln!("sim set_len {} {length}", self.path.display());
        }
        let op = Op::SetLen { length };
        apply(&mut file.current, &op);
        file.unsynced.push(op);
        Ok(())
    }

    fn read_fd(&self) -> Option<RawFd> {
        None
    }

    fn write_fd(&self) -> Option<RawFd> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synced_bytes_survive_a_crash_and_unsynced_may_not() {
        let mut fs = SimFs::new(7, SimFaults::default());
        fs.create_dir_all(Path::new("/d")).expect("dir");
        let file = fs.open(Path::new("/d/a"), OpenOptions::CREATE).expect("open");
        file.write_all_at(b"durable", 0).expect("write");
        file.sync_data().expect("sync");
        file.write_all_at(&[9u8; 4000], 7).expect("write");
        fs.crash();
        let after = fs.contents(Path::new("/d/a")).expect("exists");
        assert_eq!(&after[..7], b"durable");
        assert!(after.len() <= 7 + 4000);
    }

    /// Writes `bytes` to `path` and syncs it.
    fn write_synced(fs: &mut SimFs, path: &str, bytes: &[u8]) {
        let file = fs.open(Path::new(path), OpenOptions::REPLACE).expect("open");
        file.write_all_at(bytes, 0).expect("write");
        file.sync_data().expect("sync");
    }

    #[test]
    fn a_crash_undoes_a_rename_not_followed_by_sync_dir() {
        for synced in [false, true] {
            let mut fs = SimFs::new(3, SimFaults::default());
            fs.create_dir_all(Path::new("/d")).expect("dir");
            write_synced(&mut fs, "/d/old", b"old");
            write_synced(&mut fs, "/d/new.tmp", b"new");
            write_synced(&mut fs, "/d/moved", b"moved");
            fs.rename(Path::new("/d/new.tmp"), Path::new("/d/old")).expect("rename replacing a file");
            fs.rename(Path::new("/d/moved"), Path::new("/d/gone")).expect("rename to a fresh name");
            if synced {
                fs.sync_dir(Path::new("/d")).expect("sync_dir");
            }
            fs.crash();
            let contents = |name: &str| fs.contents(&Path::new("/d").join(name));
            if synced {
                assert_eq!(contents("old").as_deref(), Some(&b"new"[..]));
                assert_eq!(contents("gone").as_deref(), Some(&b"moved"[..]));
                assert_eq!(fs.file_paths().len(), 2);
            } else {
                // Both renames undone: the replaced file is back, each file under its old name.
                assert_eq!(contents("old").as_deref(), Some(&b"old"[..]));
                assert_eq!(contents("new.tmp").as_deref(), Some(&b"new"[..]));
                assert_eq!(contents("moved").as_deref(), Some(&b"moved"[..]));
                assert_eq!(fs.file_paths().len(), 3);
            }
        }
    }

    #[test]
    fn renames_are_undone_newest_first_and_sync_dir_covers_only_its_directory() {
        let mut fs = SimFs::new(3, SimFaults::default());
        fs.create_dir_all(Path::new("/d")).expect("dir");
        fs.create_dir_all(Path::new("/e")).expect("dir");
        write_synced(&mut fs, "/d/a", b"a");
        write_synced(&mut fs, "/e/x", b"x");
        fs.rename(Path::new("/d/a"), Path::new("/d/b")).expect("rename");
        fs.rename(Path::new("/d/b"), Path::new("/d/c")).expect("rename again");
        fs.rename(Path::new("/e/x"), Path::new("/e/y")).expect("rename in another directory");
        fs.sync_dir(Path::new("/e")).expect("sync_dir of the other directory");
        fs.crash();
        assert_eq!(fs.file_paths(), vec![PathBuf::from("/d/a"), PathBuf::from("/e/y")]);
    }

    #[test]
    fn a_file_written_atomically_survives_a_crash_and_reads_are_bounded() {
        let mut fs = SimFs::new(5, SimFaults::default());
        fs.create_dir_all(Path::new("/d")).expect("dir");
        crate::io::write_file_atomically(&mut fs, Path::new("/d"), "f", b"first").expect("write");
        crate::io::write_file_atomically(&mut fs, Path::new("/d"), "f", b"second").expect("replace");
        fs.crash();
        assert_eq!(fs.file_paths(), vec![PathBuf::from("/d/f")], "no temp file, the rename is durable");
        let read = |fs: &mut SimFs, bytes_max| crate::io::read_small_file(fs, Path::new("/d/f"), bytes_max);
        assert_eq!(read(&mut fs, 6).expect("read").as_deref(), Some(&b"second"[..]));
        assert_eq!(read(&mut fs, 5).expect_err("too long").kind(), io::ErrorKind::InvalidData);
        let missing = crate::io::read_small_file(&mut fs, Path::new("/d/none"), 6).expect("read");
        assert!(missing.is_none());
    }

    #[test]
    fn capacity_gives_enospc() {
        let mut fs = SimFs::new(1, SimFaults::default());
        fs.create_dir_all(Path::new("/d")).expect("dir");
        fs.set_capacity_bytes(Some(10));
        let file = fs.open(Path::new("/d/a"), OpenOptions::CREATE).expect("open");
        file.write_all_at(b"0123456789", 0).expect("fits");
        let error = file.write_at(b"x", 10).expect_err("full");
        assert_eq!(error.raw_os_error(), Some(libc::ENOSPC));
    }
}
