//! File reads for fetches through the shard's own io_uring (compio's `ReadAt`), so a read that
//! misses the page cache waits in the kernel (an io_uring worker), never on the shard thread: the
//! shard serves its other connections meanwhile, and the reads of one response are all in flight
//! at once.
//!
//! Owns: turning a read plan's file range into bytes without blocking, and the shard's pool of
//! read buffers ([`Pooled`]): a response's buffers go back to the pool of the thread that drops
//! them once it is written, so the next reads land in memory already mapped (fresh buffers cost
//! a page fault and a page clearing per 4 KiB, and the allocator unmapping them again: a quarter
//! of the serving shard's time in a profile of one consumer reading cold data). Must not know
//! what the bytes mean (the partition layer planned the range: whole batches below the bound it
//! chose).
//!
//! Also times every read from its submission to its completion, as the reading task sees it
//! (`read_latency`: a histogram of this thread's reads in plain thread-local memory, which the
//! shard copies into its metrics snapshot on the same thread).

use std::cell::RefCell;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, RawFd};
use std::sync::Arc;
use std::time::Instant;

use compio::buf::{IntoInner, IoBuf};
use compio::driver::op::ReadAt;
use engine::io::stats::LatencyHistogram;
use engine::io::FileRef;
use engine::ReadChunk;
use replica::{ReadPlan, ReplicaError};

use crate::limits::READ_BUFFER_POOL_BYTES_MAX;

/// Buffers of one thread waiting for reuse, and their capacity in all (at most
/// [`READ_BUFFER_POOL_BYTES_MAX`]).
#[derive(Default)]
struct BufferPool {
    buffers: Vec<Vec<u8>>,
    bytes: usize,
}

thread_local! {
    static POOL: RefCell<BufferPool> = RefCell::new(BufferPool::default());
    /// How long this thread's ring reads took, submission to completion.
    static READ_LATENCY: RefCell<LatencyHistogram> = RefCell::new(LatencyHistogram::default());
}

/// How long this thread's file reads through the ring took since it started.
pub fn read_latency() -> LatencyHistogram {
    READ_LATENCY.try_with(|histogram| *histogram.borrow()).unwrap_or_default()
}

/// Bytes this thread's pool holds now.
pub fn pooled_bytes() -> usize {
    POOL.try_with(|pool| pool.borrow().bytes).unwrap_or(0)
}

/// An empty buffer with room for `length` bytes: a pooled one when this thread has one large
/// enough (the smallest such), else a new one.
fn take_buffer(length: usize) -> Vec<u8> {
    let pooled = POOL
        .try_with(|pool| {
            let mut pool = pool.borrow_mut();
            let best = pool
                .buffers
                .iter()
                .enumerate()
                .filter(|(_, buffer)| buffer.capacity() >= length)
                .min_by_key(|(_, buffer)| buffer.capacity())
                .map(|(at, _)| at)?;
            let buffer = pool.buffers.swap_remove(best);
            pool.bytes -= buffer.capacity();
            Some(buffer)
        })
        .ok()
        .flatten();
    pooled.unwrap_or_else(|| Vec::with_capacity(length))
}

/// Gives `buffer` to this thread's pool, unless the pool is full (then it is freed).
fn give_buffer(mut buffer: Vec<u8>) {
    buffer.clear();
    let _ = POOL.try_with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.bytes + buffer.capacity() <= READ_BUFFER_POOL_BYTES_MAX {
            pool.bytes += buffer.capacity();
            pool.buffers.push(buffer);
        }
    });
}

/// Read bytes that go back to the pool of the thread dropping them.
#[derive(Debug)]
pub struct Pooled(Vec<u8>);

impl Pooled {
    pub fn new(bytes: Vec<u8>) -> Pooled {
        Pooled(bytes)
    }
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        give_buffer(std::mem::take(&mut self.0));
    }
}

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
    let mut buffer = take_buffer(length);
    while buffer.len() < length {
        let done = buffer.len();
        // At most the bytes still wanted: a pooled buffer may be larger than `length`.
        let op = ReadAt::new(HeldFd { _file: file.clone(), fd }, position + done as u64, buffer.slice(done..length));
        let submitted_at = Instant::now();
        let compio::BufResult(outcome, op) = compio::runtime::submit(op).await;
        let elapsed = submitted_at.elapsed();
        let _ = READ_LATENCY.try_with(|histogram| histogram.borrow_mut().observe(elapsed));
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
    let mut out = take_buffer(usize::try_from(plan.size_bytes).unwrap_or(0));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A pooled buffer larger than the range must not make the read longer: the range is the
    /// plan's whole batches, and the response's frame length counts exactly them.
    #[test]
    fn a_read_into_a_larger_pooled_buffer_reads_exactly_the_range() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("segment");
        let content: Vec<u8> = (0..200_000u32).map(|index| (index % 251) as u8).collect();
        std::fs::write(&path, &content).expect("write");
        let mut fs = engine::io::open_backend(engine::io::BackendKind::Syscall).expect("backend");
        let file = fs.open(&path, engine::io::OpenOptions::EXISTING).expect("open");
        // The pool now holds a buffer far larger than the reads below.
        drop(Pooled::new(Vec::with_capacity(1 << 20)));
        let read = compio::runtime::Runtime::new()
            .expect("runtime")
            .block_on(async { read_exact_at(&file, 1_000, 50_000).await })
            .expect("read");
        assert!(read.capacity() >= 1 << 20, "the pooled buffer was used");
        assert_eq!(read.len(), 50_000);
        assert_eq!(read, content[1_000..51_000]);
        // The ring read was timed on this thread (once: it was not short).
        assert_eq!(read_latency().count(), 1);
    }

    #[test]
    fn a_dropped_read_buffer_is_reused_by_the_next_read_and_the_pool_stays_bounded() {
        let mut first = take_buffer(1 << 20);
        first.resize(1 << 20, 7);
        let address = first.as_ptr();
        let bytes = bytes::Bytes::from_owner(Pooled::new(first));
        let slice = bytes::Bytes::slice(&bytes, 10..20);
        drop(bytes);
        let other = take_buffer(1 << 20);
        assert_ne!(other.as_ptr(), address, "still held by a slice: not reused");
        drop(other);
        drop(slice);
        let again = take_buffer(1000);
        assert_eq!(again.as_ptr(), address, "the dropped buffer came back");
        assert!(again.is_empty() && again.capacity() >= 1 << 20);
        // Beyond READ_BUFFER_POOL_BYTES_MAX the pool frees what it is given.
        let count = READ_BUFFER_POOL_BYTES_MAX / (1 << 20) + 8;
        let buffers: Vec<Vec<u8>> = (0..count).map(|_| Vec::with_capacity(1 << 20)).collect();
        for buffer in buffers {
            drop(Pooled::new(buffer));
        }
        let pooled = POOL.with(|pool| pool.borrow().bytes);
        assert!(pooled <= READ_BUFFER_POOL_BYTES_MAX, "{pooled}");
        assert!(pooled > READ_BUFFER_POOL_BYTES_MAX / 2, "{pooled}");
    }
}
