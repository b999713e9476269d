//! The io_uring backend: one ring per shard; every chain started between two flushes goes to the
//! kernel in one `io_uring_enter`.
//!
//! Owns: turning [`WriteChain`]s into linked SQEs (`write → write → fdatasync`, `IOSQE_IO_LINK`),
//! the buffers of chains in flight (the kernel reads them until the last completion; leaked, not
//! freed, if the backend is dropped while a broken ring still holds them), and the eventfd the
//! ring signals on every completion. A short or failed write cancels the rest of its chain (the
//! kernel does that for linked requests); the caller starts the rest again.
//!
//! Times every entry from its push (the chain's submission: [`FileSystem::flush`] follows in the
//! same turn of the shard's loop) to the reap that collects its completion ([`IoStats`]): one
//! clock reading per chain pushed and one per batch of completions collected.
//!
//! Bounds: submission entries in flight never exceed [`URING_ENTRIES`], so the submission queue
//! always has room and the completion queue (twice as large) never overflows; chains beyond that
//! wait in a backlog until completions free entries.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::Instant;

use io_uring::{opcode, squeue, types, IoUring};

use super::os::os_directory_ops;
use super::stats::IoStats;
use super::{run_chain_timed, ChainOutcome, Completion, FileRef, FileSystem, OpenOptions, WriteChain};
use crate::limits::{URING_BOUNDED_WORKERS_MAX, URING_DROP_STALLS_MAX, URING_ENTRIES};

/// Why a push cannot fail: entries in flight (pushed or not yet submitted) never exceed the
/// submission queue's size.
const QUEUE_ROOM: &str = "submission queue has room: entries in flight never exceed its size";

/// A chain whose entries are in the ring.
#[derive(Debug)]
struct Slot {
    token: u64,
    chain: WriteChain,
    /// One per entry, in chain order; the sync's is last.
    results: Vec<Option<i32>>,
    outstanding: usize,
    /// When its entries were pushed (for [`IoStats`]).
    submitted_at: Instant,
}

pub struct UringFs {
    ring: IoUring,
    slots: Vec<Option<Slot>>,
    free_slots: Vec<usize>,
    /// Chains waiting for ring entries.
    backlog: VecDeque<(u64, WriteChain)>,
    /// Chains finished (or run without the ring) and not yet reaped.
    finished: Vec<Completion>,
    /// Entries pushed and not yet completed.
    entries_in_flight: usize,
    /// Signalled by the ring on every completion; `None` if it could not be registered.
    eventfd: Option<OwnedFd>,
    /// Latencies of the entries completed so far.
    stats: IoStats,
}

impl std::fmt::Debug for UringFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringFs")
            .field("entries", &URING_ENTRIES)
            .field("entries_in_flight", &self.entries_in_flight)
            .field("backlog", &self.backlog.len())
            .finish()
    }
}

impl UringFs {
    /// Sets up the ring; fails on kernels without io_uring, under seccomp, or when
    /// `kernel.io_uring_disabled` forbids it.
    pub fn new() -> io::Result<UringFs> {
        // Cooperative task running: completions are processed when the shard thread next enters
        // the kernel instead of interrupting it with an IPI (5.19+; older kernels get a plain ring).
        let ring = match IoUring::builder().setup_coop_taskrun().setup_taskrun_flag().build(URING_ENTRIES) {
            Ok(ring) => ring,
            Err(_) => IoUring::new(URING_ENTRIES)?,
        };
        let mut workers = [URING_BOUNDED_WORKERS_MAX, 0];
        if let Err(error) = ring.submitter().register_iowq_max_workers(&mut workers) {
            tracing::debug!(%error, "could not raise io_uring's worker limit; fsyncs run with the kernel's default");
        }
        // SAFETY: eventfd returns a new descriptor we own, or -1.
        let raw = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        let eventfd = if raw >= 0 {
            // SAFETY: `raw` is a fresh descriptor nobody else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            match ring.submitter().register_eventfd(fd.as_raw_fd()) {
                Ok(()) => Some(fd),
                Err(error) => {
                    tracing::warn!(%error, "could not register an eventfd with io_uring; commits will be reaped by blocking");
                    None
                }
            }
        } else {
            None
        };
        Ok(UringFs {
            ring,
            slots: Vec::new(),
            free_slots: Vec::new(),
            backlog: VecDeque::new(),
            finished: Vec::new(),
            entries_in_flight: 0,
            eventfd,
            stats: IoStats::default(),
        })
    }

    /// Pushes a chain's entries; the caller checked that they fit.
    fn push(&mut self, token: u64, chain: WriteChain) {
        let Some(fd) = chain.file.write_fd() else {
            let outcome = ChainOutcome { written: vec![Err(io::Error::other("file has no descriptor"))], synced: None };
            self.finished.push(Completion { token, chain, outcome });
            return;
        };
        let op_count = chain.op_count();
        let slot_index = self.free_slots.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        {
            let mut queue = self.ring.submission();
            for (op_index, write) in chain.writes.iter().enumerate() {
                let (position, data) = write.remaining();
                let length =
                    u32::try_from(data.len()).expect("writes are bounded by pending_bytes_max, far below 4 GiB");
                let mut entry = opcode::Write::new(types::Fd(fd), data.as_ptr(), length)
                    .offset(position)
                    .build()
                    .user_data(((slot_index as u64) << 32) | op_index as u64);
                if op_index + 1 < op_count {
                    entry = entry.flags(squeue::Flags::IO_LINK);
                }
                // SAFETY: the kernel reads `data` until this entry completes. It is heap memory
                // the chain keeps alive (an `AlignedBuffer` it owns, or a reference-counted
                // `Bytes` it holds; other holders only read it), and moving the chain into
                // `self.slots[slot_index]` below does not move it. Pushing cannot fail (see
                // `QUEUE_ROOM`), so the chain reaches its slot, which it leaves only once every
                // entry of it has completed (`collect`). `Drop` waits for every entry in flight;
                // if the ring cannot reap them it leaks the slots (`mem::forget`) instead of
                // freeing them, so no buffer a request may still read is freed, not even a
                // `Bytes` another holder drops later (its count never reaches zero).
                unsafe { queue.push(&entry) }.expect(QUEUE_ROOM);
            }
            if chain.sync {
                let entry = opcode::Fsync::new(types::Fd(fd))
                    .flags(types::FsyncFlags::DATASYNC)
                    .build()
                    .user_data(((slot_index as u64) << 32) | chain.writes.len() as u64);
                // SAFETY: fsync references no memory.
                unsafe { queue.push(&entry) }.expect(QUEUE_ROOM);
            }
        }
        self.entries_in_flight += op_count;
        self.slots[slot_index] = Some(Slot {
            token,
            chain,
            results: vec![None; op_count],
            outstanding: op_count,
            submitted_at: Instant::now(),
        });
    }

    /// Starts backlogged chains while they fit.
    fn admit_backlog(&mut self) {
        while let Some((_, chain)) = self.backlog.front() {
            if self.entries_in_flight + chain.op_count() > URING_ENTRIES as usize {
                break;
            }
            let (token, chain) = self.backlog.pop_front().expect("front exists");
            self.push(token, chain);
        }
    }

    fn submit(&mut self, wait_for: usize) -> io::Result<()> {
        loop {
            let result = if wait_for > 0 { self.ring.submit_and_wait(wait_for) } else { self.ring.submit() };
            match result {
                Ok(_) => return Ok(()),
                Err(error) if error.raw_os_error() == Some(libc::EINTR) => {}
                Err(error) => return Err(error),
            }
        }
    }

    /// Moves completed entries into their slots and finished chains into `self.finished`.
    fn collect(&mut self) {
        let entries: Vec<(u64, i32)> =
            self.ring.completion().map(|entry| (entry.user_data(), entry.result())).collect();
        if entries.is_empty() {
            return;
        }
        let reaped_at = Instant::now();
        for (user_data, result) in entries {
            let slot_index = (user_data >> 32) as usize;
            let op_index = (user_data & 0xffff_ffff) as usize;
            self.entries_in_flight -= 1;
            let Some(slot) = self.slots.get_mut(slot_index).and_then(Option::as_mut) else {
                panic!("completion for an empty slot {slot_index}");
            };
            // An entry cancelled behind a short or failed write never ran: not timed.
            if result != -libc::ECANCELED {
                let elapsed = reaped_at.saturating_duration_since(slot.submitted_at);
                if op_index < slot.chain.writes.len() {
                    self.stats.write.observe(elapsed);
                } else {
                    self.stats.fdatasync.observe(elapsed);
                }
            }
            slot.results[op_index] = Some(result);
            slot.outstanding -= 1;
            if slot.outstanding == 0 {
                let slot = self.slots[slot_index].take().expect("slot present");
                self.free_slots.push(slot_index);
                let outcome = outcome_of(&slot.chain, &slot.results);
                self.finished.push(Completion { token: slot.token, chain: slot.chain, outcome });
            }
        }
    }

    fn clear_eventfd(&self) {
        if let Some(fd) = &self.eventfd {
            let mut counter = [0u8; 8];
            // SAFETY: reads 8 bytes into a buffer of 8; the descriptor is non-blocking.
            let _ = unsafe { libc::read(fd.as_raw_fd(), counter.as_mut_ptr().cast(), counter.len()) };
        }
    }
}

/// Turns a chain's completion results into what the caller sees: writes up to the first short,
/// failed or cancelled one, and the sync's result if it ran.
fn outcome_of(chain: &WriteChain, results: &[Option<i32>]) -> ChainOutcome {
    let mut outcome = ChainOutcome::default();
    for (op_index, result) in results.iter().enumerate() {
        let Some(result) = *result else { break };
        if result == -libc::ECANCELED {
            break; // Cancelled behind a short or failed write: the caller starts the rest again.
        }
        if op_index == chain.writes.len() {
            outcome.synced = Some(if result < 0 { Err(io::Error::from_raw_os_error(-result)) } else { Ok(()) });
        } else if result < 0 {
            outcome.written.push(Err(io::Error::from_raw_os_error(-result)));
            break;
        } else {
            outcome.written.push(Ok(result as usize));
            if result as usize != chain.writes[op_index].remaining().1.len() {
                break;
            }
        }
    }
    outcome
}

impl FileSystem for UringFs {
    fn name(&self) -> &'static str {
        "io_uring"
    }

    os_directory_ops!();

    fn start(&mut self, token: u64, chain: WriteChain) {
        let needed = chain.op_count();
        if needed == 0 {
            self.finished.push(Completion { token, chain, outcome: ChainOutcome::default() });
        } else if needed > URING_ENTRIES as usize {
            // One chain longer than the ring: run it with plain syscalls.
            let outcome = run_chain_timed(&chain, &mut self.stats);
            self.finished.push(Completion { token, chain, outcome });
        } else if !self.backlog.is_empty() || self.entries_in_flight + needed > URING_ENTRIES as usize {
            self.backlog.push_back((token, chain));
        } else {
            self.push(token, chain);
        }
    }

    fn flush(&mut self) {
        if let Err(error) = self.submit(0) {
            tracing::error!(%error, "io_uring submit failed; retrying at the next reap");
        }
    }

    fn reap(&mut self, wait: bool) -> Vec<Completion> {
        self.clear_eventfd();
        self.collect();
        self.admit_backlog();
        let _ = self.submit(0);
        while wait && self.finished.is_empty() && self.entries_in_flight > 0 {
            if let Err(error) = self.submit(1) {
                tracing::error!(%error, "io_uring wait failed");
                break;
            }
            self.collect();
            self.admit_backlog();
            let _ = self.submit(0);
        }
        std::mem::take(&mut self.finished)
    }

    fn in_flight(&self) -> usize {
        self.slots.iter().filter(|slot| slot.is_some()).count() + self.backlog.len() + self.finished.len()
    }

    fn completion_fd(&self) -> Option<BorrowedFd<'_>> {
        self.eventfd.as_ref().map(|fd| fd.as_fd())
    }

    fn io_stats(&self) -> IoStats {
        self.stats
    }
}

impl Drop for UringFs {
    fn drop(&mut self) {
        // The kernel may read a chain's buffers until its last entry completed, even after the
        // ring's descriptor is closed (it cancels and reaps requests in flight in the
        // background): wait for every entry pushed (submitting those not yet submitted) before
        // the slots and their buffers are freed.
        let mut stalls = 0;
        while self.entries_in_flight > 0 {
            let before = self.entries_in_flight;
            let waited = self.submit(1);
            self.collect();
            if self.entries_in_flight < before {
                stalls = 0;
                continue;
            }
            stalls += 1;
            if waited.is_err() || stalls > URING_DROP_STALLS_MAX {
                // The ring is unusable: completions will never be reaped, so nobody can say when
                // the kernel is done with these buffers. Leak them deliberately (a bounded loss
                // at shutdown) rather than free memory a request may still read.
                let leaked: Vec<Slot> = self.slots.drain(..).flatten().collect();
                tracing::error!(
                    chains = leaked.len(),
                    entries = self.entries_in_flight,
                    error = ?waited.err(),
                    "io_uring unusable with writes in flight; leaking their buffers"
                );
                std::mem::forget(leaked);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{run_to_completion, IoBuf, OwnedWrite};

    #[test]
    fn group_commit_writes_and_syncs_many_files_in_one_submission() {
        let Ok(mut fs) = UringFs::new() else {
            eprintln!("io_uring unavailable here; skipping");
            return;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let files: Vec<FileRef> = (0..8)
            .map(|index| fs.open(&dir.path().join(format!("f{index}")), OpenOptions::CREATE).expect("open"))
            .collect();
        let payloads: Vec<bytes::Bytes> =
            (0..8u8).map(|index| bytes::Bytes::from(vec![index; 1000 + index as usize])).collect();
        let chains: Vec<WriteChain> = files
            .iter()
            .zip(&payloads)
            .map(|(file, data)| {
                let writes = vec![
                    OwnedWrite::new(0, IoBuf::Shared(data.slice(..500))),
                    OwnedWrite::new(500, IoBuf::Shared(data.slice(500..))),
                ];
                WriteChain::new(file.clone(), writes, true)
            })
            .collect();
        for result in run_to_completion(&mut fs, chains) {
            result.expect("chain ok");
        }
        assert_eq!(fs.in_flight(), 0);
        for (file, data) in files.iter().zip(&payloads) {
            let mut back = vec![0; data.len()];
            file.read_exact_at(&mut back, 0).expect("read");
            assert_eq!(&back[..], &data[..]);
        }
    }

    #[test]
    fn more_chains_than_ring_entries_wait_in_the_backlog_and_all_complete() {
        let Ok(mut fs) = UringFs::new() else {
            eprintln!("io_uring unavailable here; skipping");
            return;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let file = fs.open(&dir.path().join("f"), OpenOptions::CREATE).expect("open");
        // Disjoint ranges of one file, 3 entries each: far more entries than the ring holds.
        let chain_count = URING_ENTRIES as usize;
        let chains: Vec<WriteChain> = (0..chain_count)
            .map(|index| {
                let data = bytes::Bytes::from(vec![index as u8; 64]);
                let writes = vec![
                    OwnedWrite::new(index as u64 * 128, IoBuf::Shared(data.clone())),
                    OwnedWrite::new(index as u64 * 128 + 64, IoBuf::Shared(data)),
                ];
                WriteChain::new(file.clone(), writes, true)
            })
            .collect();
        let results = run_to_completion(&mut fs, chains);
        assert_eq!(results.len(), chain_count);
        assert!(results.iter().all(Result::is_ok));
        let mut back = vec![0; chain_count * 128];
        file.read_exact_at(&mut back, 0).expect("read");
        for (index, chunk) in back.chunks(128).enumerate() {
            assert!(chunk.iter().all(|byte| *byte == index as u8), "chain {index}");
        }
    }

    /// A buffer pushed to the ring outlives the backend when its completion can never be reaped
    /// (here the ring's descriptor is replaced by /dev/null, so every submit fails); with a
    /// working ring, dropping the backend waits for the write and then frees the buffer.
    #[test]
    fn drop_frees_buffers_only_after_their_completions() {
        let dir = tempfile::tempdir().expect("tempdir");
        for broken in [false, true] {
            let Ok(mut fs) = UringFs::new() else {
                eprintln!("io_uring unavailable here; skipping");
                return;
            };
            let file = fs.open(&dir.path().join(format!("f-{broken}")), OpenOptions::CREATE).expect("open");
            let data = bytes::Bytes::from(vec![7u8; 4096]);
            let mut watch = data.clone();
            fs.start(1, WriteChain::new(file.clone(), vec![OwnedWrite::new(0, IoBuf::Shared(data))], true));
            if broken {
                let null = std::fs::File::open("/dev/null").expect("/dev/null");
                // SAFETY: replaces the ring's descriptor number with /dev/null; the ring's memory
                // stays mapped until the backend drops, and nothing was submitted yet.
                assert!(unsafe { libc::dup2(null.as_raw_fd(), fs.ring.as_raw_fd()) } >= 0);
            }
            drop(fs);
            if broken {
                assert!(!watch.is_unique(), "the buffer was freed although its write never completed");
            } else {
                assert!(watch.is_unique(), "the buffer outlived a completed write");
                let mut back = vec![0; 4096];
                file.read_exact_at(&mut back, 0).expect("read");
                assert!(back.iter().all(|byte| *byte == 7), "drop waited for the write");
            }
            watch.truncate(0);
        }
    }

    #[test]
    fn completions_signal_the_eventfd() {
        let Ok(mut fs) = UringFs::new() else {
            eprintln!("io_uring unavailable here; skipping");
            return;
        };
        let Some(fd) = fs.completion_fd().map(|fd| fd.as_raw_fd()) else {
            eprintln!("no eventfd registered; skipping");
            return;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let file = fs.open(&dir.path().join("f"), OpenOptions::CREATE).expect("open");
        let write = OwnedWrite::new(0, IoBuf::Shared(bytes::Bytes::from_static(b"hello")));
        fs.start(7, WriteChain::new(file, vec![write], true));
        fs.flush();
        let mut poll = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd; bounded wait of 10 s.
        let ready = unsafe { libc::poll(&mut poll, 1, 10_000) };
        assert_eq!(ready, 1, "eventfd readable after the completion");
        let done = fs.reap(true);
        assert_eq!(done.len(), 1);
        assert_eq!(done[0].token, 7);
        assert!(matches!(done[0].outcome.synced, Some(Ok(()))));
    }

    #[test]
    fn every_write_and_sync_that_ran_is_timed_once() {
        let Ok(mut fs) = UringFs::new() else {
            eprintln!("io_uring unavailable here; skipping");
            return;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let file = fs.open(&dir.path().join("f"), OpenOptions::CREATE).expect("open");
        let writes = vec![
            OwnedWrite::new(0, IoBuf::Shared(bytes::Bytes::from_static(b"hello "))),
            OwnedWrite::new(6, IoBuf::Shared(bytes::Bytes::from_static(b"world"))),
        ];
        let chains = vec![
            WriteChain::new(file.clone(), writes, true),
            WriteChain::new(file.clone(), Vec::new(), true),
            WriteChain::new(file, vec![OwnedWrite::new(11, IoBuf::Shared(bytes::Bytes::from_static(b"!")))], false),
        ];
        for result in run_to_completion(&mut fs, chains) {
            result.expect("chain ok");
        }
        let stats = fs.io_stats();
        assert_eq!(stats.write.count(), 3);
        assert_eq!(stats.fdatasync.count(), 2);
        assert_eq!(stats.log_flush.count(), 0, "the shard's, not the backend's");
        // A linked fdatasync completes after its writes: it took at least some time.
        assert!(stats.fdatasync.sum_ns > 0);
    }
}
