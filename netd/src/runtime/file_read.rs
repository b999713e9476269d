//! File reads for fetches through the shard's own io_uring (compio's `ReadAt`), so a read that
//! misses the page cache waits in the kernel (an io_uring worker), never on the shard thread: the
//! shard serves its other connections meanwhile, and the reads of one response are all in flight
//! at once.
//!
//! Owns: turning a read plan's file range into bytes without blocking. Must not know what the
//! bytes mean (the partition layer planned the range: whole batches below the bound it chose).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, RawFd};
use std::sync::Arc;

use compio::buf::{IntoInner, IoBufMut};
use compio::driver::op::ReadAt;
use engine::io::FileRef;
use engine::ReadChunk;
use replica::{ReadPlan, ReplicaError};

/// A segment file's read descriptor, held open by the `FileRef` beside it for as long as an
/// operation owns this (compio keeps an operation until the kernel completed it, even when its
/// future is dropped).
struct HeldFd {
    _file: FileRef,
    fd: RawFd,
}

impl AsFd for HeldFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: `fd` belongs to `_file`, which this value keeps alive: the descriptor stays
        // open at least as long as the borrow.
        unsafe { BorrowedFd::borrow_raw(self.fd) }
    }
}

/// Reads `length` bytes at `position` of `file` through the current runtime's ring; a file
/// without a descriptor (the simulator) is read directly.
pub async fn read_exact_at(file: &FileRef, position: u64, length: u64) -> io::Result<Vec<u8>> {
    let length = usize::try_from(length).map_err(|_| io::Error::other("read length beyond memory"))?;
    let Some(fd) = file.read_fd() else {
        let mut buffer = vec![0u8; length];
        file.read_exact_at(&mut buffer, position)?;
        return Ok(buffer);
    };
    let mut buffer: Vec<u8> = Vec::with_capacity(length);
    while buffer.len() < length {
        let done = buffer.len();
        let op = ReadAt::new(HeldFd { _file: file.clone(), fd }, position + done as u64, buffer.uninit());
        let compio::BufResult(outcome, op) = compio::runtime::submit(op).await;
        buffer = op.into_inner().into_inner();
        match outcome? {
            0 => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end of a segment file")),
            read => {
                assert!(done + read <= buffer.capacity(), "the kernel read within the buffer");
                // SAFETY: the kernel wrote `read` bytes right after the `done` initialised ones.
                unsafe { buffer.set_len(done + read) };
            }
        }
    }
    Ok(buffer)
}

/// A plan's bytes in one new buffer: file ranges read through the ring (a read stays within
/// one segment, so a file read is one range, read straight into the buffer), cache slices
/// copied.
pub async fn plan_copy(plan: &ReadPlan) -> Result<Vec<u8>, ReplicaError> {
    let failed = |error: io::Error| ReplicaError::Read(Arc::new(error));
    if let [ReadChunk::File { file, position, length }] = &plan.chunks[..] {
        return read_exact_at(file, *position, *length).await.map_err(failed);
    }
    let mut out = Vec::with_capacity(usize::try_from(plan.size_bytes).unwrap_or(0));
    for chunk in &plan.chunks {
        match chunk {
            ReadChunk::Memory(bytes) => out.extend_from_slice(bytes),
            ReadChunk::File { file, position, length } => {
                out.extend_from_slice(&read_exact_at(file, *position, *length).await.map_err(failed)?)
            }
        }
    }
    Ok(out)
}
