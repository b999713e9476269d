//! A shard's logs and its group commit.
//!
//! Owns: the set of logs one shard thread owns, the shard's file system backend, the limits on
//! what may wait for a commit, and [`Shard::commit`]: every pending append of every log written in
//! one submission, each file's `fdatasync` linked behind its writes. Single-threaded by design:
//! the broker runs one `Shard` per core and never shares it.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::Path;

use crate::config::{LogConfig, ShardConfig};
use crate::error::{EngineError, Result};
use crate::io::{submit_to_completion, FileSystem, WriteChain};
use crate::log::{AppendInfo, Log, PreparedCommit, ReadResult, RecoveryReport, RetentionReport};
use crate::types::{LeaderEpoch, LogId, Offset};

/// What one group commit achieved.
#[derive(Debug, Default)]
pub struct CommitReport {
    /// Logs whose pending appends are now acknowledged: every offset below `end` is readable (and
    /// durable if the log's flush policy is fsync-before-ack).
    pub committed: Vec<(LogId, Offset)>,
    /// Logs whose pending appends failed; the offsets in the range were never written and will be
    /// assigned again.
    pub failed: Vec<(LogId, EngineError, Range<Offset>)>,
    /// Files synced in this commit.
    pub synced_files: usize,
    /// Bytes handed to the kernel (with direct-mode padding and rewritten tail blocks).
    pub written_bytes: u64,
}

#[derive(Debug)]
pub struct Shard {
    fs: Box<dyn FileSystem>,
    config: ShardConfig,
    logs: BTreeMap<LogId, Log>,
    next_log_id: u32,
    pending_appends: usize,
    pending_bytes: usize,
    /// Logs with pending appends or written-but-unsynced data: the only ones a commit visits, so
    /// idle partitions cost nothing.
    dirty: BTreeSet<LogId>,
}

impl Shard {
    pub fn new(fs: Box<dyn FileSystem>, config: ShardConfig) -> Result<Shard> {
        config.validate()?;
        Ok(Shard {
            fs,
            config,
            logs: BTreeMap::new(),
            next_log_id: 0,
            pending_appends: 0,
            pending_bytes: 0,
            dirty: BTreeSet::new(),
        })
    }

    pub fn config(&self) -> &ShardConfig {
        &self.config
    }

    /// The I/O backend in use (`io_uring`, `syscall`, `sim`).
    pub fn backend_name(&self) -> &'static str {
        self.fs.name()
    }

    /// Opens or creates the log in `dir` and recovers it.
    pub fn open_log(&mut self, dir: &Path, config: LogConfig, now_ms: i64) -> Result<(LogId, RecoveryReport)> {
        if self.logs.values().any(|log| log.dir() == dir) {
            return Err(EngineError::InvalidInput(format!("log {} is already open", dir.display())));
        }
        let (log, report) = Log::open(self.fs.as_mut(), dir, config, &self.config, now_ms)?;
        let id = LogId(self.next_log_id);
        self.next_log_id += 1;
        self.logs.insert(id, log);
        Ok((id, report))
    }

    pub fn log(&self, id: LogId) -> Result<&Log> {
        self.logs.get(&id).ok_or_else(|| EngineError::InvalidInput(format!("unknown log {id:?}")))
    }

    pub fn log_ids(&self) -> Vec<LogId> {
        self.logs.keys().copied().collect()
    }

    fn log_mut(&mut self, id: LogId) -> Result<(&mut Log, &mut dyn FileSystem)> {
        let log = self.logs.get_mut(&id).ok_or_else(|| EngineError::InvalidInput(format!("unknown log {id:?}")))?;
        Ok((log, self.fs.as_mut()))
    }

    pub fn pending_appends(&self) -> usize {
        self.pending_appends
    }

    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Queues an append for the next [`Shard::commit`]. The offsets are assigned now; the append
    /// is acknowledged when a commit reports its log committed past `last_offset`.
    pub fn append(&mut self, id: LogId, batches: &[u8], leader_epoch: LeaderEpoch, now_ms: i64) -> Result<AppendInfo> {
        if self.pending_appends >= self.config.inflight_appends_max
            || self.pending_bytes() + batches.len() > self.config.pending_bytes_max
        {
            return Err(EngineError::Backpressure);
        }
        let (log, fs) = self.log_mut(id)?;
        let info = log.append(fs, batches, leader_epoch, now_ms)?;
        self.pending_appends += 1;
        self.pending_bytes += info.stored_bytes;
        self.dirty.insert(id);
        Ok(info)
    }

    /// Writes every pending append of every log in one submission, syncing as each log's flush
    /// policy asks, and reports which logs committed and which failed.
    pub fn commit(&mut self, now_ms: i64) -> CommitReport {
        let mut prepared: Vec<(LogId, PreparedCommit)> = Vec::new();
        for id in std::mem::take(&mut self.dirty) {
            let Some(log) = self.logs.get_mut(&id) else { continue };
            if let Some(commit) = log.prepare_commit(now_ms) {
                prepared.push((id, commit));
            } else if log.durable_offset() < log.log_end_offset() {
                self.dirty.insert(id); // Interval flush not due yet.
            }
        }
        self.pending_appends = 0;
        self.pending_bytes = 0;
        let mut report = CommitReport::default();
        if prepared.is_empty() {
            return report;
        }
        // Chain i belongs to prepared[owner[i]].
        let mut chains = Vec::new();
        let mut owner = Vec::new();
        for (log_index, (_, commit)) in prepared.iter().enumerate() {
            for write in &commit.writes {
                report.written_bytes += write.bytes().len() as u64;
                chains.push(WriteChain {
                    file: &write.file,
                    writes: vec![(write.position, write.bytes())],
                    sync: commit.sync || write.seal_after,
                });
                owner.push(log_index);
            }
            if let Some(file) = &commit.sync_only {
                chains.push(WriteChain { file, writes: Vec::new(), sync: true });
                owner.push(log_index);
            }
        }
        report.synced_files = chains.iter().filter(|chain| chain.sync).count();
        let results = submit_to_completion(self.fs.as_mut(), &chains);
        drop(chains);
        let mut outcomes: Vec<std::result::Result<(), EngineError>> = prepared.iter().map(|_| Ok(())).collect();
        for (result, log_index) in results.into_iter().zip(owner) {
            if let (Err(error), Ok(())) = (result, &outcomes[log_index]) {
                outcomes[log_index] = Err(EngineError::from_io(error.path, error.error));
            }
        }
        for ((id, commit), outcome) in prepared.into_iter().zip(outcomes) {
            let log = self.logs.get_mut(&id).expect("prepared logs exist");
            match log.finish_commit(self.fs.as_mut(), commit, outcome, now_ms) {
                Ok(end) => report.committed.push((id, end)),
                Err((error, lost)) => report.failed.push((id, error, lost)),
            }
            if log.durable_offset() < log.log_end_offset() {
                self.dirty.insert(id);
            }
        }
        report
    }

    pub fn read(&self, id: LogId, start: Offset, max_bytes: u64, upper_bound: Option<Offset>) -> Result<ReadResult> {
        self.log(id)?.read(start, max_bytes, upper_bound)
    }

    pub fn offset_for_timestamp(&self, id: LogId, timestamp_ms: i64) -> Result<Option<(Offset, i64)>> {
        self.log(id)?.offset_for_timestamp(timestamp_ms)
    }

    /// Applies retention to every log.
    pub fn enforce_retention(&mut self, now_ms: i64) -> Vec<(LogId, Result<RetentionReport>)> {
        let fs = self.fs.as_mut();
        self.logs.iter_mut().map(|(id, log)| (*id, log.enforce_retention(fs, now_ms))).collect()
    }

    pub fn truncate_to(&mut self, id: LogId, offset: Offset) -> Result<Offset> {
        let (log, fs) = self.log_mut(id)?;
        log.truncate_to(fs, offset)
    }

    /// Closes one log cleanly (commit first).
    pub fn close_log(&mut self, id: LogId) -> Result<()> {
        let (log, fs) = self.log_mut(id)?;
        log.close(fs)?;
        self.logs.remove(&id);
        Ok(())
    }

    /// Deletes a log and its files.
    pub fn delete_log(&mut self, id: LogId) -> Result<()> {
        let log = self.logs.remove(&id).ok_or_else(|| EngineError::InvalidInput(format!("unknown log {id:?}")))?;
        log.delete(self.fs.as_mut())
    }

    /// Commits what is pending and closes every log cleanly. Returns the first error, after
    /// trying every log.
    pub fn close(mut self, now_ms: i64) -> Result<CommitReport> {
        let report = self.commit(now_ms);
        let mut first_error = None;
        for (_, mut log) in std::mem::take(&mut self.logs) {
            if let Err(error) = log.close(self.fs.as_mut()) {
                first_error.get_or_insert(error);
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(report),
        }
    }
}
