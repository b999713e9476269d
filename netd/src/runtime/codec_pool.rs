//! The codec pool: threads that re-encode produced batches for topics whose `compression.type`
//! names a codec other than the producer's, and that check compressed batches too large for a
//! shard to decompress in its own turn, so that a shard never spends its turn on a codec's work.
//!
//! Why: compression is the one step of an append whose cost the client and the topic's config
//! decide. A 1 MiB batch takes ~0.7 s at `compression.zstd.level=22` on this machine, and a small
//! zstd batch that decompresses to 64 MiB takes far longer; on the shard thread that time would
//! stall every partition and connection the shard serves. Kafka converts on one of its request
//! handler threads (holding that partition's lock); Skua converts here, and the shard goes on.
//! The same holds for the decompressing walk that validates a compressed batch (decision 0014):
//! up to 64 MiB per request, ~0.2 s of gzip here; past `limits::PRODUCE_INLINE_DECOMPRESSED_BYTES_MAX`
//! a shard hands that walk to these threads ([`CodecPool::validate`]).
//!
//! Owns: `limits::CODEC_POOL_THREADS` named threads (`codec-N`) taking jobs from one queue, the
//! queue's bound (`limits::CODEC_QUEUE_BYTES_MAX` bytes of batches queued or being worked on, a
//! non-strict [`Budget`] awaited on the shard, so a full pool is backpressure, never a block), and
//! handing each result back through a oneshot channel. Knows nothing of partitions, their order,
//! or the protocol: the produce handler keeps each partition's appends in arrival order
//! (`runtime::turns`); `codec::errors` maps the errors.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use engine::batch::ValidatedBatches;
use engine::{BatchError, CompressionType};
use futures_channel::oneshot;

pub use crate::codec::errors::ConvertError;
use crate::runtime::budget::Budget;

type Job = Box<dyn FnOnce() + Send>;

/// The broker's codec threads and their queue. Shared by every shard.
pub struct CodecPool {
    /// `Sync`: every shard sends through it without a lock.
    jobs: mpsc::Sender<Job>,
    queued_bytes: Arc<Budget>,
}

impl std::fmt::Debug for CodecPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodecPool").field("queued_bytes", &self.queued_bytes.held()).finish()
    }
}

impl CodecPool {
    /// Starts `threads` codec threads (at least one); they end when the pool is dropped.
    pub fn start(threads: usize, queued_bytes_max: u64) -> std::io::Result<Arc<CodecPool>> {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..threads.max(1) {
            let receiver = receiver.clone();
            std::thread::Builder::new().name(format!("codec-{index}")).spawn(move || loop {
                // The lock is held only to take the next job, never while working.
                let job = match receiver.lock() {
                    Ok(receiver) => receiver.recv(),
                    Err(poisoned) => poisoned.into_inner().recv(),
                };
                let Ok(job) = job else { return };
                // A panic drops the job's reply channel: the produce answers for it, and the
                // thread goes on with the next job.
                if std::panic::catch_unwind(AssertUnwindSafe(job)).is_err() {
                    tracing::error!("a codec job panicked; its partitions are answered with an error");
                }
            })?;
        }
        Ok(Arc::new(CodecPool { jobs: sender, queued_bytes: Budget::new("codec pool queued bytes", queued_bytes_max) }))
    }

    /// Converts `batches` to `target`'s codec on a codec thread
    /// ([`engine::compression::convert_validated`]); the caller's task waits, its thread does not.
    /// Waits first for room in the queue (`queued_bytes_max`).
    pub async fn convert(
        &self,
        batches: ValidatedBatches,
        target: CompressionType,
        batch_bytes_max: usize,
    ) -> Result<Option<ValidatedBatches>, ConvertError> {
        let size_bytes = batches.size_bytes() as u64;
        let converted = self
            .run(size_bytes, move || engine::compression::convert_validated(&batches, target, batch_bytes_max))
            .await?;
        Ok(converted?)
    }

    /// Validates each partition's record batches in order, as the shard would have
    /// ([`ValidatedBatches::validate_within`], each with its log's most bytes a decompressed
    /// record may declare), all of them together decompressing at most
    /// `decompressed_bytes_left`: one request's allowance, spent in the request's order.
    pub async fn validate(
        &self,
        partitions: Vec<(Bytes, usize)>,
        decompressed_bytes_left: usize,
    ) -> Result<Vec<Result<ValidatedBatches, BatchError>>, ConvertError> {
        let size_bytes = partitions.iter().map(|(records, _)| records.len() as u64).sum();
        self.run(size_bytes, move || {
            let mut left = decompressed_bytes_left;
            partitions
                .into_iter()
                .map(|(records, record_bytes_max)| {
                    ValidatedBatches::validate_within(records, &mut left, record_bytes_max)
                })
                .collect()
        })
        .await
    }

    /// Runs `work` on a codec thread once the queue has room for `size_bytes`, and gives its
    /// result back; the queue's room is given back when `work` ends.
    async fn run<T: Send + 'static>(
        &self,
        size_bytes: u64,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ConvertError> {
        let permit = self.queued_bytes.acquire(size_bytes).await;
        let (reply, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let done = work();
            drop(permit);
            let _ = reply.send(done);
        });
        if self.jobs.send(job).is_err() {
            return Err(ConvertError::Lost);
        }
        result.await.map_err(|_| ConvertError::Lost)
    }

    /// Bytes of batches queued or being worked on now.
    pub fn queued_bytes(&self) -> u64 {
        self.queued_bytes.held()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::EngineError;

    fn batches(value: &[u8], codec: engine::batch::Codec) -> ValidatedBatches {
        let batch = engine::testkit::make_compressed_batch(&[(b"k", value)], 1, codec);
        ValidatedBatches::validate(bytes::Bytes::from(batch)).expect("valid")
    }

    /// A conversion on the pool gives the engine's conversion, and frees its queue bytes.
    #[test]
    fn converts_on_a_codec_thread_and_gives_the_queue_back() {
        let pool = CodecPool::start(2, 1 << 20).expect("threads");
        let value = vec![b'a'; 10_000];
        let plain = batches(&value, engine::batch::Codec::None);
        let target = CompressionType::Zstd { level: 3 };
        let converted = compio::runtime::Runtime::new()
            .expect("runtime")
            .block_on(pool.convert(plain.clone(), target, 1 << 20))
            .expect("converted")
            .expect("changed");
        let expected = engine::compression::convert_validated(&plain, target, 1 << 20).expect("ok").expect("changed");
        assert_eq!(converted.bytes(), expected.bytes());
        assert_eq!(pool.queued_bytes(), 0);
        // The engine's refusal comes back as it is.
        let refused = compio::runtime::Runtime::new().expect("runtime").block_on(pool.convert(plain, target, 100));
        assert!(matches!(refused, Err(ConvertError::Engine(EngineError::BatchTooLarge { .. }))), "{refused:?}");
    }

    /// Validation on the pool spends one allowance across the partitions, in their order, as
    /// the shard's own walk does, and gives the engine's refusals back as they are.
    #[test]
    fn validates_in_order_within_one_allowance() {
        let pool = CodecPool::start(2, 1 << 20).expect("threads");
        let zeros = vec![0u8; 300_000];
        let bomb = batches(&zeros, engine::batch::Codec::Zstd).bytes().clone();
        let plain = batches(b"plain", engine::batch::Codec::None).bytes().clone();
        let mut corrupt = bomb.to_vec();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0xff;
        let partitions = vec![
            (bomb.clone(), usize::MAX),
            (plain.clone(), usize::MAX),
            (Bytes::from(corrupt), usize::MAX),
            (bomb.clone(), usize::MAX),
            (bomb.clone(), usize::MAX),
            (bomb.clone(), 1000),
        ];
        let validated = compio::runtime::Runtime::new()
            .expect("runtime")
            .block_on(pool.validate(partitions, 700_000))
            .expect("the pool answered");
        let outcome: Vec<String> = validated
            .iter()
            .map(|result| match result {
                Ok(batches) => format!("ok {}", batches.size_bytes()),
                Err(BatchError::CrcMismatch { .. }) => "crc".to_string(),
                Err(BatchError::DecompressedTooLarge { limit_bytes }) => format!("too large {limit_bytes}"),
                Err(BatchError::DecompressedRecordTooLarge { limit_bytes, .. }) => format!("record over {limit_bytes}"),
                Err(other) => format!("{other}"),
            })
            .collect();
        // 700,000 bytes: two bombs of ~300,000 fit; the third finds ~100,000 left. The plain
        // batch spends nothing, the corrupt one is refused before decompressing, and each
        // partition's own record limit holds.
        let left_for_third = 700_000 - 2 * validated[0].as_ref().expect("ok").batches()[0].records.records_bytes;
        assert_eq!(
            outcome,
            vec![
                format!("ok {}", bomb.len()),
                format!("ok {}", plain.len()),
                "crc".to_string(),
                format!("ok {}", bomb.len()),
                format!("too large {left_for_third}"),
                "record over 1000".to_string(),
            ]
        );
        assert_eq!(pool.queued_bytes(), 0);
    }
}
