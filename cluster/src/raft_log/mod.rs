//! The Raft log on disk: entries, hard state, conf state and the latest snapshot of the metadata
//! quorum, behind raft-rs's [`raft::Storage`] so that `RawNode<RaftLog>` owns it.
//!
//! Owns: one directory (`docs/formats/raft-log.md`): an append-only stream of segment files
//! (`<sequence>.raftlog`, records framed with length, CRC-32C and kind: entries, hard states, conf
//! states) and one snapshot file (`raft.snapshot`, replaced atomically); recovery ([`RaftLog::open`]);
//! what is written and synced when. The metadata log is small: every entry since the snapshot stays
//! in memory for reads, the files are only for durability. Everything goes through the engine's
//! [`FileSystem`], so crash tests run on `engine::io::sim::SimFs`.
//!
//! Write protocol, one raft `Ready` at a time: [`RaftLog::apply_snapshot`], [`RaftLog::append`],
//! [`RaftLog::set_hard_state`] each write their records at once (page cache, not synced);
//! [`RaftLog::sync`] is the one `fdatasync` that makes all of them durable together (entries and hard
//! state share the stream for that reason). [`RaftLog::set_commit`] (a commit-only change, raft's
//! `must_sync() == false`) is written and may be lost by a crash until the next sync, which raft
//! allows. Never more than the last segment holds unsynced bytes: a roll syncs the segment it
//! leaves, so recovery treats a torn frame as a crash's work only at the end of the last segment and
//! as corruption anywhere else.
//!
//! After any error from a write the log refuses further writes: memory and disk may disagree, so the
//! owner drops it and opens the directory again (as raft-rs expects of a failing storage).
//!
//! Must not know: Kafka, sockets, shards, what the entries or the snapshot's bytes mean, when to
//! compact (the driver decides). Runs on the thread driving the quorum; every call blocks.

pub mod format;
pub mod recovery;

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use engine::io::{read_small_file, write_file_atomically, FileRef, FileSystem, OpenOptions, ATOMIC_TEMP_SUFFIX};
use raft::prelude::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata};
use raft::{GetEntriesContext, RaftState, StorageError};

use self::format::{SnapshotFile, RAFT_SNAPSHOT_BYTES_MAX, SEGMENT_HEADER_BYTES};
use self::recovery::{Replay, SegmentEnd, SegmentSummary};
use crate::ClusterError;

/// Segment files roll before a record would take them past this (a segment holding a single larger
/// record is the exception). Small, as the metadata log is: compaction frees whole segments.
pub const RAFT_SEGMENT_BYTES_MAX: u64 = 8 * 1024 * 1024;
/// A segment file read at recovery at most: a full segment plus the one record that may overflow it.
const SEGMENT_FILE_BYTES_MAX: u64 = RAFT_SEGMENT_BYTES_MAX + format::RECORD_BODY_BYTES_MAX as u64 + 64;
pub const SNAPSHOT_FILE_NAME: &str = "raft.snapshot";
pub const SEGMENT_SUFFIX: &str = ".raftlog";

/// Knobs of one log; the default is what brokers use, tests shrink segments to see rolls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RaftLogConfig {
    /// At most [`RAFT_SEGMENT_BYTES_MAX`] (recovery reads no larger segment).
    pub segment_bytes_max: u64,
}

impl Default for RaftLogConfig {
    fn default() -> RaftLogConfig {
        RaftLogConfig { segment_bytes_max: RAFT_SEGMENT_BYTES_MAX }
    }
}

/// The segment records are appended to.
struct ActiveSegment {
    sequence: u64,
    file: FileRef,
    /// Bytes in the file, header included: where the next record goes.
    length_bytes: u64,
    index_max: u64,
}

/// The metadata quorum's Raft log. See the module header.
pub struct RaftLog {
    fs: Box<dyn FileSystem>,
    dir: PathBuf,
    config: RaftLogConfig,
    /// The latest snapshot (index 0 and no data before the first).
    snapshot: Snapshot,
    hard_state: HardState,
    conf_state: ConfState,
    /// Every entry after the snapshot, by index without gaps.
    entries: VecDeque<Entry>,
    /// Segments before the active one, oldest first.
    closed: Vec<SegmentSummary>,
    active: ActiveSegment,
    /// Records written to the active segment since its last `fdatasync`.
    unsynced: bool,
    /// A write failed: see the module header.
    failed: bool,
}

impl fmt::Debug for RaftLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RaftLog")
            .field("dir", &self.dir)
            .field("snapshot_index", &self.snapshot.get_metadata().index)
            .field("last_index", &self.last_index_now())
            .field("hard_state", &self.hard_state)
            .field("active_segment", &self.active.sequence)
            .field("unsynced", &self.unsynced)
            .field("failed", &self.failed)
            .finish()
    }
}

impl RaftLog {
    /// Opens (or creates) the log in `dir` with the default configuration. See [`RaftLog::open_with`].
    pub fn open(fs: Box<dyn FileSystem>, dir: &Path) -> Result<RaftLog, ClusterError> {
        RaftLog::open_with(fs, dir, RaftLogConfig::default())
    }

    /// Opens (or creates) the log in `dir`: reads the snapshot file, removes segments it superseded,
    /// replays the segments in order, cuts a torn tail off the last one (with a warning), and syncs
    /// the last segment, so that everything it returns is durable. Damage anywhere else is
    /// [`ClusterError::Corrupt`]: committed entries are never dropped silently.
    pub fn open_with(mut fs: Box<dyn FileSystem>, dir: &Path, config: RaftLogConfig) -> Result<RaftLog, ClusterError> {
        assert!(
            config.segment_bytes_max <= RAFT_SEGMENT_BYTES_MAX,
            "segment_bytes_max above RAFT_SEGMENT_BYTES_MAX could not be read back"
        );
        fs.create_dir_all(dir).map_err(io_error("create", dir))?;
        // The directory's own name must be durable before anything synced inside it counts (it may
        // have been created just now).
        if let Some(parent) = dir.parent().filter(|parent| !parent.as_os_str().is_empty()) {
            fs.sync_dir(parent).map_err(io_error("sync", parent))?;
        }
        let names = fs.list_dir(dir).map_err(io_error("list", dir))?;
        let temp_name = format!("{SNAPSHOT_FILE_NAME}{ATOMIC_TEMP_SUFFIX}");
        if names.contains(&temp_name) {
            // A snapshot write a crash interrupted: the old snapshot (or none) stands.
            let path = dir.join(&temp_name);
            fs.remove_file(&path).map_err(io_error("remove", &path))?;
        }
        let snapshot_path = dir.join(SNAPSHOT_FILE_NAME);
        let snapshot_file = match read_bounded(fs.as_mut(), &snapshot_path, RAFT_SNAPSHOT_BYTES_MAX)? {
            None => None,
            Some(bytes) => Some(
                format::decode_snapshot(&bytes)
                    .map_err(|reason| ClusterError::Corrupt(format!("{}: {reason}", snapshot_path.display())))?,
            ),
        };
        let first_segment = snapshot_file.as_ref().map_or(0, |file| file.first_segment);

        let mut sequences: Vec<u64> = names.iter().filter_map(|name| segment_sequence(name)).collect();
        sequences.sort_unstable();
        let superseded: Vec<u64> = sequences.iter().copied().filter(|&sequence| sequence < first_segment).collect();
        for &sequence in &superseded {
            // Left by a compaction or a received snapshot that a crash interrupted after the snapshot
            // file was in place.
            let path = segment_path(dir, sequence);
            fs.remove_file(&path).map_err(io_error("remove", &path))?;
        }
        if !superseded.is_empty() {
            fs.sync_dir(dir).map_err(io_error("sync", dir))?;
        }
        sequences.retain(|&sequence| sequence >= first_segment);
        for (position, &sequence) in sequences.iter().enumerate() {
            let expected = first_segment + position as u64;
            if sequence != expected {
                return Err(ClusterError::Corrupt(format!(
                    "{}: segment {expected} is missing (found {sequence})",
                    dir.display()
                )));
            }
        }

        let mut replay = Replay::new(snapshot_file.as_ref());
        let mut last_length_bytes = 0;
        for (position, &sequence) in sequences.iter().enumerate() {
            let path = segment_path(dir, sequence);
            let Some(bytes) = read_bounded(fs.as_mut(), &path, SEGMENT_FILE_BYTES_MAX)? else {
                return Err(io_error("read", &path)(io::ErrorKind::NotFound.into()));
            };
            let last = position + 1 == sequences.len();
            last_length_bytes = bytes.len() as u64;
            if let SegmentEnd::TornTail { valid_bytes, reason } = replay.segment(sequence, &bytes, last)? {
                tracing::warn!(
                    path = %path.display(),
                    valid_bytes,
                    dropped_bytes = bytes.len() as u64 - valid_bytes,
                    reason = %reason,
                    "the Raft log's last segment ends in a torn write (a crash before its sync); cutting it off"
                );
                cut_torn_tail(fs.as_mut(), &path, sequence, valid_bytes)?;
                last_length_bytes = valid_bytes.max(SEGMENT_HEADER_BYTES as u64);
            }
        }
        let recovered = replay.finish()?;

        let mut closed = recovered.segments;
        let active = match closed.pop() {
            Some(summary) => {
                let path = segment_path(dir, summary.sequence);
                let file = fs.open(&path, OpenOptions::EXISTING).map_err(io_error("open", &path))?;
                // What was read may sit unsynced in the page cache (the previous process died before
                // its sync): raft takes what the log holds for persisted, so make it so. This also
                // keeps a later roll's promise that only the last segment holds unsynced bytes.
                file.sync_data().map_err(io_error("sync", &path))?;
                ActiveSegment {
                    sequence: summary.sequence,
                    file,
                    length_bytes: last_length_bytes,
                    index_max: summary.index_max,
                }
            }
            None => create_segment(fs.as_mut(), dir, first_segment)?,
        };
        let mut snapshot = Snapshot::default();
        if let Some(file) = snapshot_file {
            snapshot.set_metadata(file.metadata);
            snapshot.data = file.data;
        }
        Ok(RaftLog {
            fs,
            dir: dir.to_path_buf(),
            config,
            snapshot,
            hard_state: recovered.hard_state,
            conf_state: recovered.conf_state,
            entries: recovered.entries,
            closed,
            active,
            unsynced: false,
            failed: false,
        })
    }

    /// The directory the log lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn hard_state(&self) -> &HardState {
        &self.hard_state
    }

    /// The conf state last set (or carried by the last snapshot).
    pub fn conf_state(&self) -> &ConfState {
        &self.conf_state
    }

    /// Index, term and conf state of the latest snapshot (index 0 before the first).
    pub fn snapshot_metadata(&self) -> &SnapshotMetadata {
        self.snapshot.get_metadata()
    }

    /// The entries after the snapshot, oldest first.
    pub fn entries_after_snapshot(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// Whether records were written since the last [`RaftLog::sync`].
    pub fn has_unsynced_writes(&self) -> bool {
        self.unsynced
    }

    /// Segment files the log is made of (the active one included).
    pub fn segment_count(&self) -> usize {
        self.closed.len() + 1
    }

    fn first_index_now(&self) -> u64 {
        self.snapshot.get_metadata().index + 1
    }

    fn last_index_now(&self) -> u64 {
        self.entries.back().map_or(self.snapshot.get_metadata().index, |entry| entry.index)
    }

    /// Appends `entries` (consecutive indexes, from raft's `Ready`), writing them at once; an entry
    /// at an index the log already holds replaces it and everything after it, in memory and (by
    /// recovery's rule) on disk. Durable at the next [`RaftLog::sync`].
    pub fn append(&mut self, entries: &[Entry]) -> Result<(), ClusterError> {
        self.check_writable()?;
        let Some(first) = entries.first() else { return Ok(()) };
        assert!(
            first.index >= self.first_index_now() && first.index <= self.last_index_now() + 1,
            "raft appends entries {} onwards to a log holding {}..={}",
            first.index,
            self.first_index_now(),
            self.last_index_now()
        );
        for (previous, next) in entries.iter().zip(&entries[1..]) {
            assert_eq!(next.index, previous.index + 1, "raft appends consecutive entries");
        }
        for entry in entries {
            format::check_entry(entry)?;
        }
        let mut pending = Vec::new();
        for entry in entries {
            let start = pending.len();
            format::push_entry_record(&mut pending, entry);
            if self.needs_roll(start, pending.len() - start) {
                let record = pending.split_off(start);
                self.write(&pending)?;
                self.roll()?;
                pending = record;
            }
            self.active.index_max = self.active.index_max.max(entry.index);
        }
        self.write(&pending)?;
        self.entries.truncate((first.index - self.first_index_now()) as usize);
        self.entries.extend(entries.iter().cloned());
        Ok(())
    }

    /// Writes raft's new hard state (term, vote, commit). Durable at the next [`RaftLog::sync`].
    pub fn set_hard_state(&mut self, hard_state: HardState) -> Result<(), ClusterError> {
        self.check_writable()?;
        let mut record = Vec::new();
        format::push_hard_state_record(&mut record, &hard_state);
        self.write_record(&record)?;
        self.hard_state = hard_state;
        Ok(())
    }

    /// Writes a commit-only change (raft's `LightReady::commit_index`, or a `Ready` whose
    /// `must_sync()` is false). Needs no sync: a crash may lose it, raft learns the commit again.
    pub fn set_commit(&mut self, commit: u64) -> Result<(), ClusterError> {
        let hard_state = HardState { commit, ..self.hard_state.clone() };
        self.set_hard_state(hard_state)
    }

    /// Writes the conf state raft returned from `apply_conf_change` (and the first one, when a node
    /// bootstraps the quorum), which [`raft::Storage::initial_state`] hands back after a restart.
    /// Durable at the next [`RaftLog::sync`].
    pub fn set_conf_state(&mut self, conf_state: ConfState) -> Result<(), ClusterError> {
        self.check_writable()?;
        format::check_conf_state(&conf_state)?;
        let mut record = Vec::new();
        format::push_conf_state_record(&mut record, &conf_state);
        self.write_record(&record)?;
        self.conf_state = conf_state;
        Ok(())
    }

    /// Makes every record written so far durable: one `fdatasync` of the active segment, none when
    /// nothing was written since the last.
    pub fn sync(&mut self) -> Result<(), ClusterError> {
        self.check_writable()?;
        if self.unsynced {
            let path = segment_path(&self.dir, self.active.sequence);
            let result = self.active.file.sync_data().map_err(io_error("sync", &path));
            self.fail_on_error(result)?;
            self.unsynced = false;
        }
        Ok(())
    }

    /// Installs a snapshot received from the leader (raft's `Ready::snapshot`): the log becomes the
    /// snapshot and nothing else, with the snapshot's conf state, and the hard state's commit (and
    /// term) raised to it. Durable when this returns: the snapshot file is replaced atomically, then a
    /// new segment starts and every older segment is deleted.
    pub fn apply_snapshot(&mut self, snapshot: Snapshot) -> Result<(), ClusterError> {
        self.check_writable()?;
        let metadata = snapshot.get_metadata();
        assert!(
            metadata.index > self.snapshot.get_metadata().index,
            "raft installs only snapshots newer than the log's ({} after {})",
            metadata.index,
            self.snapshot.get_metadata().index
        );
        let hard_state = HardState {
            term: self.hard_state.term.max(metadata.term),
            commit: self.hard_state.commit.max(metadata.index),
            ..self.hard_state.clone()
        };
        let next_segment = self.active.sequence + 1;
        let file = SnapshotFile {
            metadata: metadata.clone(),
            hard_state: hard_state.clone(),
            conf_state: metadata.get_conf_state().clone(),
            first_segment: next_segment,
            data: snapshot.data.clone(),
        };
        let result = self.install_snapshot_file(&file);
        self.fail_on_error(result)?;
        let result = create_segment(self.fs.as_mut(), &self.dir, next_segment);
        let active = self.fail_on_error(result)?;
        let mut superseded: Vec<u64> = self.closed.drain(..).map(|segment| segment.sequence).collect();
        superseded.push(self.active.sequence);
        self.active = active;
        self.unsynced = false;
        let result = self.remove_segments(&superseded);
        self.fail_on_error(result)?;
        self.hard_state = hard_state;
        self.conf_state = file.conf_state;
        self.entries.clear();
        self.snapshot = snapshot;
        Ok(())
    }

    /// Compacts the log up to `index` (at most the applied index): writes a snapshot of the state
    /// machine as of `index` (`data`, with `conf_state` as of `index`) atomically, then deletes the
    /// segments holding only entries at or below it and drops those entries from memory. Syncs what
    /// was written before, so the snapshot never holds a hard state the segments could lose. An
    /// `index` at or below the current snapshot's is already compacted: nothing happens.
    pub fn compact(&mut self, index: u64, data: Bytes, conf_state: ConfState) -> Result<(), ClusterError> {
        self.check_writable()?;
        if index <= self.snapshot.get_metadata().index {
            return Ok(());
        }
        assert!(index <= self.last_index_now(), "compact({index}) beyond the last entry {}", self.last_index_now());
        let term = self.entries[(index - self.first_index_now()) as usize].term;
        self.sync()?;
        let first_segment = self
            .closed
            .iter()
            .find(|segment| segment.index_max > index)
            .map_or(self.active.sequence, |segment| segment.sequence);
        let mut metadata = SnapshotMetadata { index, term, ..Default::default() };
        metadata.set_conf_state(conf_state);
        let file = SnapshotFile {
            metadata: metadata.clone(),
            hard_state: self.hard_state.clone(),
            conf_state: self.conf_state.clone(),
            first_segment,
            data,
        };
        let result = self.install_snapshot_file(&file);
        self.fail_on_error(result)?;
        let superseded: Vec<u64> =
            self.closed.iter().map(|segment| segment.sequence).filter(|&sequence| sequence < first_segment).collect();
        self.closed.retain(|segment| segment.sequence >= first_segment);
        let result = self.remove_segments(&superseded);
        self.fail_on_error(result)?;
        self.entries.drain(..(index + 1 - self.first_index_now()) as usize);
        let mut snapshot = Snapshot { data: file.data, ..Default::default() };
        snapshot.set_metadata(metadata);
        self.snapshot = snapshot;
        Ok(())
    }

    fn install_snapshot_file(&mut self, file: &SnapshotFile) -> Result<(), ClusterError> {
        let bytes = format::encode_snapshot(file)?;
        write_file_atomically(self.fs.as_mut(), &self.dir, SNAPSHOT_FILE_NAME, &bytes)
            .map_err(io_error("write", &self.dir.join(SNAPSHOT_FILE_NAME)))
    }

    fn remove_segments(&mut self, sequences: &[u64]) -> Result<(), ClusterError> {
        for &sequence in sequences {
            let path = segment_path(&self.dir, sequence);
            self.fs.remove_file(&path).map_err(io_error("remove", &path))?;
        }
        if !sequences.is_empty() {
            self.fs.sync_dir(&self.dir).map_err(io_error("sync", &self.dir))?;
        }
        Ok(())
    }

    fn check_writable(&self) -> Result<(), ClusterError> {
        if self.failed {
            return Err(ClusterError::Storage(io::Error::other(format!(
                "the Raft log in {} failed a write earlier; it must be opened again",
                self.dir.display()
            ))));
        }
        Ok(())
    }

    fn fail_on_error<T>(&mut self, result: Result<T, ClusterError>) -> Result<T, ClusterError> {
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    /// Whether a record of `record_bytes`, after `buffered` bytes not yet written, must go to a new
    /// segment. A segment always takes its first record, however large.
    fn needs_roll(&self, buffered: usize, record_bytes: usize) -> bool {
        let used = self.active.length_bytes + buffered as u64;
        used > SEGMENT_HEADER_BYTES as u64 && used + record_bytes as u64 > self.config.segment_bytes_max
    }

    fn write_record(&mut self, record: &[u8]) -> Result<(), ClusterError> {
        if self.needs_roll(0, record.len()) {
            self.roll()?;
        }
        self.write(record)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), ClusterError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let path = segment_path(&self.dir, self.active.sequence);
        let result = self.active.file.write_all_at(bytes, self.active.length_bytes).map_err(io_error("write", &path));
        self.fail_on_error(result)?;
        self.active.length_bytes += bytes.len() as u64;
        self.unsynced = true;
        Ok(())
    }

    /// Starts the next segment. The one it leaves is synced first, so that only the last segment
    /// ever holds unsynced bytes (see the module header).
    fn roll(&mut self) -> Result<(), ClusterError> {
        self.sync()?;
        let result = create_segment(self.fs.as_mut(), &self.dir, self.active.sequence + 1);
        let next = self.fail_on_error(result)?;
        let previous = std::mem::replace(&mut self.active, next);
        self.closed.push(SegmentSummary { sequence: previous.sequence, index_max: previous.index_max });
        Ok(())
    }
}

/// Creates segment `sequence` with its header, durable name and all, before any record goes in
/// (recovery relies on it: see [`recovery::Replay::segment`]).
fn create_segment(fs: &mut dyn FileSystem, dir: &Path, sequence: u64) -> Result<ActiveSegment, ClusterError> {
    let path = segment_path(dir, sequence);
    let file = fs.open(&path, OpenOptions::REPLACE).map_err(io_error("create", &path))?;
    file.write_all_at(&format::segment_header(sequence), 0).map_err(io_error("write", &path))?;
    file.sync_data().map_err(io_error("sync", &path))?;
    fs.sync_dir(dir).map_err(io_error("sync", dir))?;
    Ok(ActiveSegment { sequence, file, length_bytes: SEGMENT_HEADER_BYTES as u64, index_max: 0 })
}

/// Cuts the last segment to its valid records (to a fresh header when even that was torn) and syncs
/// the cut, so that later records never sit beside remnants of the torn write.
fn cut_torn_tail(fs: &mut dyn FileSystem, path: &Path, sequence: u64, valid_bytes: u64) -> Result<(), ClusterError> {
    let file = fs.open(path, OpenOptions::EXISTING).map_err(io_error("open", path))?;
    if valid_bytes == 0 {
        file.set_len(0).map_err(io_error("truncate", path))?;
        file.write_all_at(&format::segment_header(sequence), 0).map_err(io_error("write", path))?;
    } else {
        file.set_len(valid_bytes).map_err(io_error("truncate", path))?;
    }
    file.sync_data().map_err(io_error("sync", path))
}

/// A whole file, `None` if there is none; one longer than `bytes_max` is damage, refused before
/// anything is allocated for it.
fn read_bounded(fs: &mut dyn FileSystem, path: &Path, bytes_max: u64) -> Result<Option<Vec<u8>>, ClusterError> {
    match read_small_file(fs, path, bytes_max) {
        Ok(bytes) => Ok(bytes),
        Err(error) if error.kind() == io::ErrorKind::InvalidData => {
            Err(ClusterError::Corrupt(format!("{}: {error}", path.display())))
        }
        Err(error) => Err(io_error("read", path)(error)),
    }
}

fn segment_path(dir: &Path, sequence: u64) -> PathBuf {
    dir.join(format!("{sequence:020}{SEGMENT_SUFFIX}"))
}

/// The sequence number of a segment file's name (twenty decimal digits and the suffix).
fn segment_sequence(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SEGMENT_SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn io_error<'a>(action: &'a str, path: &'a Path) -> impl FnOnce(io::Error) -> ClusterError + 'a {
    move |error| ClusterError::Storage(io::Error::new(error.kind(), format!("{action} {}: {error}", path.display())))
}

impl raft::Storage for RaftLog {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(self.hard_state.clone(), self.conf_state.clone()))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.first_index_now() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > self.last_index_now() + 1 || low > high {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let offset = self.first_index_now();
        let mut entries: Vec<Entry> =
            self.entries.range((low - offset) as usize..(high - offset) as usize).cloned().collect();
        raft::util::limit_size(&mut entries, max_size.into());
        Ok(entries)
    }

    fn term(&self, index: u64) -> raft::Result<u64> {
        let metadata = self.snapshot.get_metadata();
        if index == metadata.index {
            return Ok(metadata.term);
        }
        if index < self.first_index_now() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        match self.entries.get((index - self.first_index_now()) as usize) {
            Some(entry) => Ok(entry.term),
            None => Err(raft::Error::Store(StorageError::Unavailable)),
        }
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.first_index_now())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.last_index_now())
    }

    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        // Older than asked: the driver compacts soon, raft asks again.
        if self.snapshot.get_metadata().index < request_index {
            return Err(raft::Error::Store(StorageError::SnapshotTemporarilyUnavailable));
        }
        Ok(self.snapshot.clone())
    }
}
