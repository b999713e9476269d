//! The engine's I/O boundary: everything that touches a file system goes through [`FileSystem`]
//! and [`StorageFile`].
//!
//! Owns: the traits and the one operation that matters for throughput, [`FileSystem::submit`]: a
//! group commit's writes for many files, each chain optionally followed by an `fdatasync` that runs
//! only after that chain's writes succeeded. Implementations:
//! - [`uring::UringFs`]: one io_uring per shard; a whole group commit is one submission, the
//!   `fdatasync` linked (`IOSQE_IO_LINK`) behind its file's writes.
//! - [`os::SyscallFs`]: `pwrite` + `fdatasync`, the fallback when io_uring cannot be set up.
//! - [`sim::SimFs`]: an in-memory file system that injects short writes, I/O errors, disk full,
//!   latency, and torn writes at a simulated crash, all from a seed.
//!
//! Knows nothing of batches, offsets or segments.

pub mod aligned;
pub mod os;
pub mod sim;
pub mod uring;

use std::fmt::Debug;
use std::io;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// One file's share of a group commit: writes in order, then optionally `fdatasync`.
#[derive(Debug)]
pub struct WriteChain<'a> {
    pub file: &'a FileRef,
    pub writes: Vec<(u64, &'a [u8])>,
    pub sync: bool,
}

/// What happened to one chain: bytes written per write (a short count means "resubmit the rest";
/// operations after a short or failed write did not run), and the sync's result if it ran.
#[derive(Debug)]
pub struct ChainOutcome {
    pub written: Vec<io::Result<usize>>,
    pub synced: Option<io::Result<()>>,
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

    /// Runs one group commit's chains. The default runs them one after another with plain
    /// writes; io_uring submits them all at once.
    fn submit(&mut self, chains: &[WriteChain<'_>]) -> Vec<ChainOutcome> {
        chains.iter().map(run_chain_sequentially).collect()
    }
}

/// Runs a chain with single write attempts, stopping at the first short or failed write the way
/// an io_uring link chain does.
pub fn run_chain_sequentially(chain: &WriteChain<'_>) -> ChainOutcome {
    let mut written = Vec::with_capacity(chain.writes.len());
    for (position, data) in &chain.writes {
        let result = chain.file.write_at(data, *position);
        let complete = matches!(result, Ok(count) if count == data.len());
        written.push(result);
        if !complete {
            return ChainOutcome { written, synced: None };
        }
    }
    let synced = chain.sync.then(|| chain.file.sync_data());
    ChainOutcome { written, synced }
}

/// The outcome of a group commit for one chain after short writes were completed.
#[derive(Debug)]
pub struct ChainError {
    pub path: PathBuf,
    pub error: io::Error,
}

/// Writes of one chain: (position, bytes).
type Writes<'a> = Vec<(u64, &'a [u8])>;

/// Submits `chains` and resubmits the unwritten rest of short writes until every chain is done or
/// has failed. Returns one result per chain.
pub fn submit_to_completion(fs: &mut dyn FileSystem, chains: &[WriteChain<'_>]) -> Vec<Result<(), ChainError>> {
    let mut results: Vec<Option<Result<(), ChainError>>> = (0..chains.len()).map(|_| None).collect();
    // (chain index, writes still to do)
    let mut remaining: Vec<(usize, Writes<'_>)> =
        chains.iter().enumerate().map(|(index, chain)| (index, chain.writes.clone())).collect();
    let mut stalls = 0u32;
    while !remaining.is_empty() {
        let round: Vec<WriteChain<'_>> = remaining
            .iter()
            .map(|(index, writes)| WriteChain {
                file: chains[*index].file,
                writes: writes.clone(),
                sync: chains[*index].sync,
            })
            .collect();
        let outcomes = fs.submit(&round);
        assert_eq!(outcomes.len(), round.len(), "one outcome per chain");
        let mut next = Vec::new();
        let mut progressed = false;
        for ((index, writes), outcome) in remaining.into_iter().zip(outcomes) {
            let path = chains[index].file.path().to_path_buf();
            let mut left: Vec<(u64, &[u8])> = Vec::new();
            let mut failed = None;
            for (write_index, (position, data)) in writes.iter().enumerate() {
                match outcome.written.get(write_index) {
                    Some(Ok(count)) if *count == data.len() => progressed = true,
                    Some(Ok(count)) => {
                        if *count > 0 {
                            progressed = true;
                        }
                        left.push((position + *count as u64, &data[*count..]));
                        left.extend(writes[write_index + 1..].iter().copied());
                        break;
                    }
                    Some(Err(error)) => {
                        failed = Some(clone_io_error(error));
                        break;
                    }
                    None => {
                        left.extend(writes[write_index..].iter().copied());
                        break;
                    }
                }
            }
            if let Some(error) = failed {
                results[index] = Some(Err(ChainError { path, error }));
            } else if !left.is_empty() {
                next.push((index, left));
            } else {
                match outcome.synced {
                    Some(Ok(())) => results[index] = Some(Ok(())),
                    Some(Err(error)) => results[index] = Some(Err(ChainError { path, error })),
                    None if !chains[index].sync => results[index] = Some(Ok(())),
                    // All writes done but the sync was cancelled behind a short write: sync again.
                    None => next.push((index, Vec::new())),
                }
            }
        }
        if !progressed {
            stalls += 1;
        }
        if stalls > SHORT_WRITE_RETRIES_MAX {
            for (index, _) in next {
                results[index] = Some(Err(ChainError {
                    path: chains[index].file.path().to_path_buf(),
                    error: io::Error::new(io::ErrorKind::WriteZero, "writes made no progress"),
                }));
            }
            break;
        }
        remaining = next;
    }
    results.into_iter().map(|result| result.expect("every chain resolved")).collect()
}

fn clone_io_error(error: &io::Error) -> io::Error {
    match error.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(error.kind(), error.to_string()),
    }
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
