//! The engine's I/O boundary: everything that touches a file system goes through [`FileSystem`]
//! and [`StorageFile`].
//!
//! Owns: the traits and the operations that matter for throughput: [`FileSystem::start`] hands a
//! [`WriteChain`] (one file's writes, optionally followed by an `fdatasync` that runs only after
//! those writes succeeded) to the backend, which owns its buffers until [`FileSystem::reap`]
//! returns it as a [`Completion`]. Many chains of many files are in flight at once; nothing here
//! orders two chains against each other (the caller never has two in flight on one file).
//! Implementations:
//! - [`uring::UringFs`]: one io_uring per shard; every chain started between two
//!   [`FileSystem::flush`]es goes in one submission, the `fdatasync` linked (`IOSQE_IO_LINK`)
//!   behind its file's writes; completions signal an eventfd the broker's event loop polls.
//! - [`os::SyscallFs`]: `pwrite` + `fdatasync` run at reap time, the fallback when io_uring cannot
//!   be set up.
//! - [`sim::SimFs`]: an in-memory file system that injects short writes, I/O errors, disk full,
//!   latency, and torn writes at a simulated crash, and completes chains in a seeded order.
//!
//! Each backend times its writes and syncs ([`stats::IoStats`], [`FileSystem::io_stats`]).
//!
//! Also the two helpers for small files written whole ([`write_file_atomically`],
//! [`read_small_file`]), shared by the broker's manifests and the partition layer's snapshots.
//!
//! Knows nothing of batches, offsets or segments.

pub mod aligned;
pub mod os;
pub mod sim;
pub mod stats;
pub mod uring;

use std::fmt::Debug;
use std::io;
use std::os::fd::{BorrowedFd, RawFd};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::io::aligned::AlignedBuffer;
use crate::io::stats::IoStats;
use crate::limits::SHORT_WRITE_RETRIES_MAX;

/// An open file. Cheap to share: readers hold an `Arc` while the broker sends from it.
#[allow(clippy::len_without_is_empty)]
pub trait StorageFile: Send + Sync + Debug {
    fn path(&self) -> &Path;
    /// Reads up to `buf.len()` bytes at `position`; fewer only at end of file.
    fn read_at(&self, buf: &mut [u8], position: u64) -> io::Result<usize>;
    /// One write attempt; may write fewer bytes than asked (the caller resubmits the rest).
    fn write_at(&self, data: &[u8], position: u64) -> io::Result<usize>;
    fn sync_data(&self) -> io::Result<()>;
    fn len(&self) -> io::Result<u64>;
    fn set_len(&self, length: u64) -> io::Result<()>;
    /// A descriptor that reads through the page cache, for `sendfile`/`splice`. `None` for
    /// simulated files, whose bytes are read with [`StorageFile::read_at`].
    fn read_fd(&self) -> Option<RawFd>;
    /// The descriptor writes go to (O_DIRECT in direct mode), for io_uring.
    fn write_fd(&self) -> Option<RawFd>;
    /// Hints that `[position, position + length)` will be read soon, so the kernel starts
    /// reading it into the page cache without the caller waiting (`POSIX_FADV_WILLNEED`). Only a
    /// hint: errors are ignored, and files without a page cache do nothing.
    fn prefetch(&self, _position: u64, _length: u64) {}

    fn read_exact_at(&self, buf: &mut [u8], position: u64) -> io::Result<()> {
        let mut done = 0;
        while done < buf.len() {
            let read = self.read_at(&mut buf[done..], position + done as u64)?;
            if read == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "read past end of file"));
            }
            done += read;
        }
        Ok(())
    }

    fn write_all_at(&self, data: &[u8], position: u64) -> io::Result<()> {
        let mut done = 0;
        while done < data.len() {
            let written = self.write_at(&data[done..], position + done as u64)?;
            if written == 0 {
                return Err(io::Error::new(io::ErrorKind::WriteZero, "write made no progress"));
            }
            done += written;
        }
        Ok(())
    }
}

pub type FileRef = Arc<dyn StorageFile>;

/// How to open a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenOptions {
    pub create: bool,
    pub truncate: bool,
    /// Writes bypass the page cache (O_DIRECT): aligned offsets, lengths and buffers only.
    pub direct: bool,
}

impl OpenOptions {
    pub const EXISTING: OpenOptions = OpenOptions { create: false, truncate: false, direct: false };
    pub const CREATE: OpenOptions = OpenOptions { create: true, truncate: false, direct: false };
    pub const REPLACE: OpenOptions = OpenOptions { create: true, truncate: true, direct: false };
}

/// Bytes a write owns while the kernel may read them: shared bytes (buffered mode) or an
/// aligned copy (direct mode). Heap memory that does not move while the chain is in flight.
#[derive(Debug)]
pub enum IoBuf {
    Shared(Bytes),
    Aligned(AlignedBuffer),
}

impl IoBuf {
    pub fn as_slice(&self) -> &[u8] {
        match self {
            IoBuf::Shared(bytes) => bytes,
            IoBuf::Aligned(buffer) => buffer.as_slice(),
        }
    }
}

/// One write of a chain: `buf[done..]` goes to `position + done`.
#[derive(Debug)]
pub struct OwnedWrite {
    pub position: u64,
    pub buf: IoBuf,
    /// Bytes already written by earlier (short) attempts.
    pub done: usize,
}

impl OwnedWrite {
    pub fn new(position: u64, buf: IoBuf) -> OwnedWrite {
        OwnedWrite { position, buf, done: 0 }
    }

    /// What is still to write, and where.
    pub fn remaining(&self) -> (u64, &[u8]) {
        (self.position + self.done as u64, &self.buf.as_slice()[self.done..])
    }
}

/// One file's share of a group commit: writes in order, then optionally `fdatasync`. Owned by the
/// backend from [`FileSystem::start`] until [`FileSystem::reap`] gives it back.
#[derive(Debug)]
pub struct WriteChain {
    pub file: FileRef,
    pub writes: Vec<OwnedWrite>,
    pub sync: bool,
    /// Rounds that made no progress (short writes of zero bytes, syncs cancelled); bounded by
    /// [`SHORT_WRITE_RETRIES_MAX`].
    pub stalls: u32,
}

impl WriteChain {
    pub fn new(file: FileRef, writes: Vec<OwnedWrite>, sync: bool) -> WriteChain {
        WriteChain { file, writes, sync, stalls: 0 }
    }

    /// Submission entries this chain needs (one per write, one for the sync).
    pub fn op_count(&self) -> usize {
        self.writes.len() + usize::from(self.sync)
    }
}

/// What happened to one round of a chain: bytes written per write (a short count means "resubmit
/// the rest"; operations after a short or failed write did not run), and the sync's result if it
/// ran.
#[derive(Debug, Default)]
pub struct ChainOutcome {
    pub written: Vec<io::Result<usize>>,
    pub synced: Option<io::Result<()>>,
}

/// A chain the backend finished one round of, with the token it was started with.
#[derive(Debug)]
pub struct Completion {
    pub token: u64,
    pub chain: WriteChain,
    pub outcome: ChainOutcome,
}

/// A file system as the engine sees it. One per shard; not shared between threads.
pub trait FileSystem: Send + Debug {
    /// Short name for logs and benchmark reports (`io_uring`, `syscall`, `sim`).
    fn name(&self) -> &'static str;
    fn open(&mut self, path: &Path, options: OpenOptions) -> io::Result<FileRef>;
    fn create_dir_all(&mut self, path: &Path) -> io::Result<()>;
    /// File names (not paths) in a directory.
    fn list_dir(&mut self, path: &Path) -> io::Result<Vec<String>>;
    fn remove_file(&mut self, path: &Path) -> io::Result<()>;
    fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes a directory's entries (created, renamed, removed files) durable.
    fn sync_dir(&mut self, path: &Path) -> io::Result<()>;

    /// Queues one round of `chain`; it may run from now on, and comes back from a later
    /// [`FileSystem::reap`] with `token`.
    fn start(&mut self, token: u64, chain: WriteChain);
    /// Hands what was started to the kernel (one `io_uring_enter` for all of it).
    fn flush(&mut self);
    /// Chains whose round finished. With `wait`, blocks until at least one has when any is in
    /// flight.
    fn reap(&mut self, wait: bool) -> Vec<Completion>;
    /// Chains started and not yet returned by `reap`.
    fn in_flight(&self) -> usize;
    /// A descriptor that becomes readable when a completion is ready to reap (an eventfd), for an
    /// event loop to poll. `None`: completions are ready as soon as `flush` returns.
    fn completion_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
    /// How long this backend's writes and syncs took since it was opened (`log_flush` is the
    /// shard's and stays empty here). A backend that does not time its operations reports none.
    fn io_stats(&self) -> IoStats {
        IoStats::default()
    }
}

/// Runs a chain with single write attempts, stopping at the first short or failed write the way
/// an io_uring link chain does, and times each call into `stats` (one clock reading before the
/// chain and one after each call).
pub fn run_chain_timed(chain: &WriteChain, stats: &mut IoStats) -> ChainOutcome {
    let mut written = Vec::with_capacity(chain.writes.len());
    let mut started = Instant::now();
    for write in &chain.writes {
        let (position, data) = write.remaining();
        let result = chain.file.write_at(data, position);
        let now = Instant::now();
        stats.write.observe(now.duration_since(started));
        started = now;
        let complete = matches!(result, Ok(count) if count == data.len());
        written.push(result);
        if !complete {
            return ChainOutcome { written, synced: None };
        }
    }
    let synced = chain.sync.then(|| {
        let result = chain.file.sync_data();
        stats.fdatasync.observe(started.elapsed());
        result
    });
    ChainOutcome { written, synced }
}

/// Chains started on a backend that runs them with plain calls when reaped (the syscall
/// fallback, and the simulator), timing each call.
#[derive(Debug, Default)]
pub struct DeferredChains {
    queued: Vec<(u64, WriteChain)>,
    stats: IoStats,
}

impl DeferredChains {
    pub fn push(&mut self, token: u64, chain: WriteChain) {
        self.queued.push((token, chain));
    }

    pub fn len(&self) -> usize {
        self.queued.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// Removes and runs the chain at `index`.
    pub fn run(&mut self, index: usize) -> Completion {
        let (token, chain) = self.queued.swap_remove(index);
        let outcome = run_chain_timed(&chain, &mut self.stats);
        Completion { token, chain, outcome }
    }

    /// How long the chains' calls took so far.
    pub fn stats(&self) -> IoStats {
        self.stats
    }

    /// Runs every queued chain in the order started.
    pub fn run_all(&mut self) -> Vec<Completion> {
        let stats = &mut self.stats;
        std::mem::take(&mut self.queued)
            .into_iter()
            .map(|(token, chain)| {
                let outcome = run_chain_timed(&chain, stats);
                Completion { token, chain, outcome }
            })
            .collect()
    }
}

/// What a chain needs after one round.
#[derive(Debug)]
pub enum ChainStep {
    /// Every write and the sync (if asked) succeeded, or the chain failed.
    Done(io::Result<()>),
    /// Some writes were short or did not run (or the sync was cancelled behind them): start it
    /// again with what is left.
    Again(WriteChain),
}

/// Applies one round's outcome to its chain: drops the writes that finished, advances a short one,
/// and decides whether the chain is done.
pub fn advance_chain(mut chain: WriteChain, outcome: ChainOutcome) -> ChainStep {
    let mut finished = 0;
    let mut progressed = false;
    for (write, result) in chain.writes.iter_mut().zip(&outcome.written) {
        let wanted = write.buf.as_slice().len() - write.done;
        match result {
            Ok(count) if *count >= wanted => {
                finished += 1;
                progressed = true;
            }
            Ok(count) => {
                progressed |= *count > 0;
                write.done += count;
                break;
            }
            Err(error) => return ChainStep::Done(Err(clone_io_error(error))),
        }
    }
    chain.writes.drain(..finished);
    if chain.writes.is_empty() {
        match outcome.synced {
            Some(result) => return ChainStep::Done(result),
            None if !chain.sync => return ChainStep::Done(Ok(())),
            // All writes done but the sync was cancelled behind a short write: sync again.
            None => {}
        }
    }
    if !progressed {
        chain.stalls += 1;
        if chain.stalls > SHORT_WRITE_RETRIES_MAX {
            return ChainStep::Done(Err(io::Error::new(io::ErrorKind::WriteZero, "writes made no progress")));
        }
    }
    ChainStep::Again(chain)
}

/// Starts `chains` and runs them to the end, resubmitting short writes (tests and one-off writes;
/// the group commit uses start/reap directly). One result per chain, in order.
pub fn run_to_completion(fs: &mut dyn FileSystem, chains: Vec<WriteChain>) -> Vec<io::Result<()>> {
    let count = chains.len();
    let mut results: Vec<Option<io::Result<()>>> = (0..count).map(|_| None).collect();
    for (index, chain) in chains.into_iter().enumerate() {
        fs.start(index as u64, chain);
    }
    fs.flush();
    let mut open = count;
    while open > 0 {
        for completion in fs.reap(true) {
            match advance_chain(completion.chain, completion.outcome) {
                ChainStep::Done(result) => {
                    results[completion.token as usize] = Some(result);
                    open -= 1;
                }
                ChainStep::Again(chain) => fs.start(completion.token, chain),
            }
        }
        fs.flush();
    }
    results.into_iter().map(|result| result.expect("every chain resolved")).collect()
}

fn clone_io_error(error: &io::Error) -> io::Error {
    match error.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(error.kind(), error.to_string()),
    }
}

/// Suffix of the temp file [`write_file_atomically`] writes before renaming it into place. A
/// file with this suffix found at start-up is a replacement a crash interrupted: the old file
/// (or none) stands, and the temp file may be removed. '~' is in no topic name and in no name the
/// engine gives a file, so a temp file never passes for one of them.
pub const ATOMIC_TEMP_SUFFIX: &str = "~tmp";

/// Replaces `dir/name` with `bytes` so that a crash leaves the old file or the new one, never a
/// mix or nothing: temp file (`name` + [`ATOMIC_TEMP_SUFFIX`]), `fdatasync`, rename, fsync of the
/// directory (without the last step the rename itself may not survive a power loss). For small
/// files written off the data path (manifests, counters, snapshots): everything here blocks.
pub fn write_file_atomically(fs: &mut dyn FileSystem, dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let temp = dir.join(format!("{name}{ATOMIC_TEMP_SUFFIX}"));
    let target = dir.join(name);
    let file = fs.open(&temp, OpenOptions::REPLACE)?;
    file.write_all_at(bytes, 0)?;
    file.sync_data()?;
    drop(file);
    fs.rename(&temp, &target)?;
    fs.sync_dir(dir)
}

/// Replaces `dir/name` with `bytes` through a temp file and a rename, without syncing: after a
/// crash the file holds the old bytes, the new ones, or (on some file systems) nothing; for
/// hints whose loss is harmless (a high-watermark checkpoint), written often.
pub fn write_file_replacing(fs: &mut dyn FileSystem, dir: &Path, name: &str, bytes: &[u8]) -> io::Result<()> {
    let temp = dir.join(format!("{name}{ATOMIC_TEMP_SUFFIX}"));
    let file = fs.open(&temp, OpenOptions::REPLACE)?;
    file.write_all_at(bytes, 0)?;
    drop(file);
    fs.rename(&temp, &dir.join(name))
}

/// Reads a small file whole through `fs`; `Ok(None)` if it does not exist. A file longer than
/// `bytes_max` is refused (`InvalidData`) before anything is allocated for it.
pub fn read_small_file(fs: &mut dyn FileSystem, path: &Path, bytes_max: u64) -> io::Result<Option<Vec<u8>>> {
    let file = match fs.open(path, OpenOptions::EXISTING) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let length = file.len()?;
    if length > bytes_max {
        return Err(io::Error::new(io::ErrorKind::InvalidData, format!("{length} bytes, more than {bytes_max}")));
    }
    let mut bytes = vec![0u8; length as usize];
    file.read_exact_at(&mut bytes, 0)?;
    Ok(Some(bytes))
}

/// Which backend to use for real files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// io_uring when the kernel allows it, plain syscalls otherwise (logged once).
    Auto,
    IoUring,
    Syscall,
}

/// Opens the file system backend for one shard.
pub fn open_backend(kind: BackendKind) -> io::Result<Box<dyn FileSystem>> {
    match kind {
        BackendKind::Syscall => Ok(Box::new(os::SyscallFs::new())),
        BackendKind::IoUring => Ok(Box::new(uring::UringFs::new()?)),
        BackendKind::Auto => match uring::UringFs::new() {
            Ok(fs) => Ok(Box::new(fs)),
            Err(error) => {
                tracing::warn!(%error, "io_uring unavailable, falling back to plain pwrite/fdatasync for this shard");
                Ok(Box::new(os::SyscallFs::new()))
            }
        },
    }
}
