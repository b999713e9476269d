//! Real files through the operating system, and the plain-syscall backend.
//!
//! Owns: [`OsFile`] (a segment or metadata file; in direct mode two descriptors, an O_DIRECT one
//! for writes and a buffered one for reads and `sendfile`) and [`SyscallFs`], which writes with
//! `pwrite` and syncs with `fdatasync`, one call at a time, when the chains are reaped.

use std::fs::{self, File};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{Completion, DeferredChains, FileRef, FileSystem, OpenOptions, StorageFile, WriteChain};

#[derive(Debug)]
pub struct OsFile {
    path: PathBuf,
    /// Writes go here: O_DIRECT in direct mode.
    writer: File,
    /// Reads go here: always buffered, so `sendfile` and unaligned reads work.
    reader: Option<File>,
}

impl OsFile {
    pub fn open(path: &Path, options: OpenOptions) -> io::Result<OsFile> {
        let mut open = fs::OpenOptions::new();
        open.read(true).write(true).create(options.create).truncate(options.truncate);
        if options.direct {
            open.custom_flags(libc::O_DIRECT);
        }
        let writer = open.open(path)?;
        let reader = if options.direct { Some(File::open(path)?) } else { None };
        Ok(OsFile { path: path.to_path_buf(), writer, reader })
    }

    fn reader(&self) -> &File {
        self.reader.as_ref().unwrap_or(&self.writer)
    }
}

impl StorageFile for OsFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn read_at(&self, buf: &mut [u8], position: u64) -> io::Result<usize> {
        self.reader().read_at(buf, position)
    }

    fn write_at(&self, data: &[u8], position: u64) -> io::Result<usize> {
        self.writer.write_at(data, position)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.writer.sync_data()
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.writer.metadata()?.len())
    }

    fn set_len(&self, length: u64) -> io::Result<()> {
        self.writer.set_len(length)
    }

    fn read_fd(&self) -> Option<RawFd> {
        Some(self.reader().as_raw_fd())
    }

    fn write_fd(&self) -> Option<RawFd> {
        Some(self.writer.as_raw_fd())
    }

    fn prefetch(&self, position: u64, length: u64) {
        let (Ok(position), Ok(length)) = (i64::try_from(position), i64::try_from(length)) else { return };
        // SAFETY: plain syscall on a descriptor we own; the result is only a hint.
        let _ = unsafe { libc::posix_fadvise(self.reader().as_raw_fd(), position, length, libc::POSIX_FADV_WILLNEED) };
    }
}

/// Directory operations shared by the real-file backends.
pub(super) fn open_os(path: &Path, options: OpenOptions) -> io::Result<FileRef> {
    Ok(Arc::new(OsFile::open(path, options)?))
}

pub(super) fn list_dir_os(path: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(path)? {
        let entry = entry?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_string());
        }
    }
    names.sort();
    Ok(names)
}

pub(super) fn sync_dir_os(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// The fallback backend: `pwrite` + `fdatasync`, one at a time, run when the chains are reaped.
#[derive(Debug, Default)]
pub struct SyscallFs {
    chains: DeferredChains,
}

impl SyscallFs {
    pub fn new() -> SyscallFs {
        SyscallFs::default()
    }
}

/// Implements the directory half of [`FileSystem`] with std::fs; used by both real backends.
macro_rules! os_directory_ops {
    () => {
        fn open(&mut self, path: &Path, options: OpenOptions) -> io::Result<FileRef> {
            super::os::open_os(path, options)
        }
        fn create_dir_all(&mut self, path: &Path) -> io::Result<()> {
            std::fs::create_dir_all(path)
        }
        fn list_dir(&mut self, path: &Path) -> io::Result<Vec<String>> {
            super::os::list_dir_os(path)
        }
        fn remove_file(&mut self, path: &Path) -> io::Result<()> {
            std::fs::remove_file(path)
        }
        fn rename(&mut self, from: &Path, to: &Path) -> io::Result<()> {
            std::fs::rename(from, to)
        }
        fn sync_dir(&mut self, path: &Path) -> io::Result<()> {
            super::os::sync_dir_os(path)
        }
    };
}
pub(super) use os_directory_ops;

impl FileSystem for SyscallFs {
    fn name(&self) -> &'static str {
        "syscall"
    }

    os_directory_ops!();

    fn start(&mut self, token: u64, chain: WriteChain) {
        self.chains.push(token, chain);
    }

    fn flush(&mut self) {}

    fn reap(&mut self, _wait: bool) -> Vec<Completion> {
        self.chains.run_all()
    }

    fn in_flight(&self) -> usize {
        self.chains.len()
    }

    fn io_stats(&self) -> super::stats::IoStats {
        self.chains.stats()
    }
}
