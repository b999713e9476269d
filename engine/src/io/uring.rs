//! The io_uring backend: one ring per shard, one submission per group commit.
//!
//! Owns: turning [`WriteChain`]s into linked SQEs (`write → write → fdatasync`, `IOSQE_IO_LINK`),
//! submitting them together and collecting the completions. A short or failed write cancels the
//! rest of its chain (the kernel does that for linked requests); the caller resubmits the rest.

use std::io;
use std::path::Path;

use io_uring::{opcode, squeue, types, IoUring};

use super::os::os_directory_ops;
use super::{run_chain_sequentially, ChainOutcome, FileRef, FileSystem, OpenOptions, WriteChain};
use crate::limits::URING_ENTRIES;

pub struct UringFs {
    ring: IoUring,
}

impl std::fmt::Debug for UringFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UringFs").field("entries", &URING_ENTRIES).finish()
    }
}

impl UringFs {
    /// Sets up the ring; fails on kernels without io_uring, under seccomp, or when
    /// `kernel.io_uring_disabled` forbids it.
    pub fn new() -> io::Result<UringFs> {
        let ring = IoUring::new(URING_ENTRIES)?;
        Ok(UringFs { ring })
    }

    /// Submits `chains[range]`, whose entries fit in the ring, and waits for every completion.
    fn submit_round(&mut self, chains: &[WriteChain<'_>], outcomes: &mut [ChainOutcome]) -> io::Result<()> {
        // user_data = chain index << 32 | op index (op index == writes.len() for the sync).
        let mut submitted = 0usize;
        {
            let mut queue = self.ring.submission();
            for (chain_index, chain) in chains.iter().enumerate() {
                let fd = chain.file.write_fd().ok_or_else(|| io::Error::other("file has no descriptor"))?;
                let op_count = chain.writes.len() + usize::from(chain.sync);
                for (op_index, (position, data)) in chain.writes.iter().enumerate() {
                    let length = u32::try_from(data.len()).map_err(|_| io::Error::other("write over 4 GiB"))?;
                    let mut entry = opcode::Write::new(types::Fd(fd), data.as_ptr(), length)
                        .offset(*position)
                        .build()
                        .user_data(((chain_index as u64) << 32) | op_index as u64);
                    if op_index + 1 < op_count {
                        entry = entry.flags(squeue::Flags::IO_LINK);
                    }
                    // SAFETY: the buffer outlives the submission: we wait for every completion
                    // below before returning, and `chains` borrows the data for that long.
                    unsafe { queue.push(&entry) }.map_err(|_| io::Error::other("submission queue full"))?;
                    submitted += 1;
                }
                if chain.sync {
                    let entry = opcode::Fsync::new(types::Fd(fd))
                        .flags(types::FsyncFlags::DATASYNC)
                        .build()
                        .user_data(((chain_index as u64) << 32) | chain.writes.len() as u64);
                    // SAFETY: fsync references no memory.
                    unsafe { queue.push(&entry) }.map_err(|_| io::Error::other("submission queue full"))?;
                    submitted += 1;
                }
            }
        }
        let mut completed = 0usize;
        let mut results: Vec<Vec<Option<i32>>> =
            chains.iter().map(|chain| vec![None; chain.writes.len() + usize::from(chain.sync)]).collect();
        while completed < submitted {
            match self.ring.submit_and_wait(submitted - completed) {
                Ok(_) => {}
                Err(error) if error.raw_os_error() == Some(libc::EINTR) => {}
                Err(error) => return Err(error),
            }
            for entry in self.ring.completion() {
                let chain_index = (entry.user_data() >> 32) as usize;
                let op_index = (entry.user_data() & 0xffff_ffff) as usize;
                results[chain_index][op_index] = Some(entry.result());
                completed += 1;
            }
        }
        for ((chain, ops), outcome) in chains.iter().zip(results).zip(outcomes.iter_mut()) {
            for (op_index, result) in ops.into_iter().enumerate() {
                let Some(result) = result else { continue };
                let is_sync = op_index == chain.writes.len();
                if result == -libc::ECANCELED {
                    break; // Cancelled behind a short or failed write: the caller resubmits.
                }
                if is_sync {
                    outcome.synced = Some(if result < 0 { Err(io::Error::from_raw_os_error(-result)) } else { Ok(()) });
                } else if result < 0 {
                    outcome.written.push(Err(io::Error::from_raw_os_error(-result)));
                    break;
                } else {
                    outcome.written.push(Ok(result as usize));
                    if result as usize != chain.writes[op_index].1.len() {
                        break;
                    }
                }
            }
        }
        Ok(())
    }
}

impl FileSystem for UringFs {
    fn name(&self) -> &'static str {
        "io_uring"
    }

    os_directory_ops!();

    fn submit(&mut self, chains: &[WriteChain<'_>]) -> Vec<ChainOutcome> {
        let mut outcomes: Vec<ChainOutcome> =
            chains.iter().map(|_| ChainOutcome { written: Vec::new(), synced: None }).collect();
        let capacity = URING_ENTRIES as usize;
        let mut start = 0;
        while start < chains.len() {
            // Take as many whole chains as fit in the ring.
            let mut end = start;
            let mut entries = 0;
            while end < chains.len() {
                let needed = chains[end].writes.len() + usize::from(chains[end].sync);
                if entries + needed > capacity && end > start {
                    break;
                }
                entries += needed;
                end += 1;
            }
            if entries > capacity {
                // One chain longer than the ring: run it with plain syscalls.
                outcomes[start] = run_chain_sequentially(&chains[start]);
            } else if let Err(error) = self.submit_round(&chains[start..end], &mut outcomes[start..end]) {
                for outcome in &mut outcomes[start..end] {
                    if outcome.written.is_empty() {
                        outcome.written.push(Err(io::Error::new(error.kind(), error.to_string())));
                    }
                }
            }
            start = end;
        }
        outcomes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::submit_to_completion;

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
        let payloads: Vec<Vec<u8>> = (0..8u8).map(|index| vec![index; 1000 + index as usize]).collect();
        let chains: Vec<WriteChain<'_>> = files
            .iter()
            .zip(&payloads)
            .map(|(file, data)| WriteChain { file, writes: vec![(0, &data[..500]), (500, &data[500..])], sync: true })
            .collect();
        for result in submit_to_completion(&mut fs, &chains) {
            result.expect("chain ok");
        }
        for (file, data) in files.iter().zip(&payloads) {
            let mut back = vec![0; data.len()];
            file.read_exact_at(&mut back, 0).expect("read");
            assert_eq!(&back, data);
        }
    }
}
