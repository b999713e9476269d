//! A partition's records as the engine planned a read of them: tail-cache slices and file ranges,
//! nothing read yet, so a caller that leaves a partition out (a response limit) costs no I/O.
//! Turning a plan into bytes here is the only place the partition layer reads files for a fetch
//! (blocking `pread`s); the broker reads a plan's file range through its own io_uring instead.

use bytes::Bytes;
use engine::ReadChunk;

use crate::error::{ReplicaError, Result};

/// What a read of a partition found, not yet read from files.
#[derive(Clone, Debug)]
pub struct ReadPlan {
    pub chunks: Vec<ReadChunk>,
    pub size_bytes: u64,
}

impl ReadPlan {
    /// The plan's bytes as the tail cache's own slices, when the cache holds all of them (then
    /// nothing needs reading or copying).
    pub fn memory_slices(&self) -> Option<Vec<Bytes>> {
        self.chunks
            .iter()
            .map(|chunk| match chunk {
                ReadChunk::Memory(bytes) => Some(bytes.clone()),
                ReadChunk::File { .. } => None,
            })
            .collect()
    }

    /// Bytes this plan must read from files.
    pub fn file_bytes(&self) -> u64 {
        self.chunks.iter().filter(|chunk| matches!(chunk, ReadChunk::File { .. })).map(ReadChunk::len).sum()
    }

    /// The plan's bytes: the tail-cache slice itself when it is one, else one new buffer.
    pub fn into_bytes(self) -> Result<Bytes> {
        if let [ReadChunk::Memory(bytes)] = &self.chunks[..] {
            return Ok(bytes.clone());
        }
        Ok(Bytes::from(self.gather()?))
    }

    /// Copies the plan into one new buffer: memory slices copied, file ranges read straight into
    /// it (one copy).
    pub fn gather(&self) -> Result<Vec<u8>> {
        gather_chunks(&self.chunks, self.size_bytes).map_err(|error| ReplicaError::Read(std::sync::Arc::new(error)))
    }
}

/// Copies `chunks` (`size_bytes` in all) into one new buffer.
pub fn gather_chunks(chunks: &[ReadChunk], size_bytes: u64) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(size_bytes as usize);
    for chunk in chunks {
        match chunk {
            ReadChunk::Memory(bytes) => out.extend_from_slice(bytes),
            ReadChunk::File { file, position, length } => {
                let start = out.len();
                out.resize(start + *length as usize, 0);
                file.read_exact_at(&mut out[start..], *position)?;
            }
        }
    }
    Ok(out)
}
