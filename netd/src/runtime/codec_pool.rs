//! The codec pool: threads that re-encode produced batches for topics whose `compression.type`
//! names a codec other than the producer's, so that a shard never spends its turn compressing.
//!
//! Why: compression is the one step of an append whose cost the client and the topic's config
//! decide. A 1 MiB batch takes ~0.7 s at `compression.zstd.level=22` on this machine, and a small
//! zstd batch that decompresses to 64 MiB takes far longer; on the shard thread that time would
//! stall every partition and connection the shard serves. Kafka converts on one of its request
//! handler threads (holding that partition's lock); Skua converts here, and the shard goes on.
//!
//! Owns: `limits::CODEC_POOL_THREADS` named threads (`codec-N`) taking jobs from one queue, the
//! queue's bound (`limits::CODEC_QUEUE_BYTES_MAX` bytes of batches queued or being converted, a
//! non-strict [`Budget`] awaited on the shard, so a full pool is backpressure, never a block), and
//! handing each result back through a oneshot channel. Knows nothing of partitions, their order,
//! or the protocol: the produce handler keeps each partition's appends in arrival order
//! (`runtime::turns`); `codec::errors` maps the errors.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use engine::batch::ValidatedBatches;
use engine::CompressionType;
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
                // The lock is held only to take the next job, never while converting.
                let job = match receiver.lock() {
                    Ok(receiver) => receiver.recv(),
                    Err(poisoned) => poisoned.into_inner().recv(),
                };
                let Ok(job) = job else { return };
                // A panic drops the job's reply channel: the produce answers for it, and the
                // thread goes on with the next job.
                if std::panic::catch_unwind(AssertUnwindSafe(job)).is_err() {
                    tracing::error!("a codec conversion panicked; its partition is answered with an error");
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
        let permit = self.queued_bytes.acquire(batches.size_bytes() as u64).await;
        let (reply, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let converted = engine::compression::convert_validated(&batches, target, batch_bytes_max);
            drop(permit);
            let _ = reply.send(converted);
        });
        if self.jobs.send(job).is_err() {
            return Err(ConvertError::Lost);
        }
        match result.await {
            Ok(converted) => Ok(converted?),
            Err(_) => Err(ConvertError::Lost),
        }
    }

    /// Bytes of batches queued or being converted now.
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
}
