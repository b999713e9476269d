//! Every named limit of the broker daemon: bounds on frames, buffers, queues, waits and retries,
//! with the defaults of the configuration keys that set the rest.
//!
//! Owns: constants only. Knows nothing of sockets, shards or the protocol; the code that
//! enforces a limit says so where it does.

/// Upper bound on how long a fetch may wait, whatever the client asks.
pub const FETCH_WAIT_MS_MAX: u64 = 30_000;

/// Kafka's broker `fetch.max.bytes` default (55 MiB): no Fetch response carries more record bytes
/// than this, whatever the request's `max_bytes`, except that the first partition with data may
/// exceed it (KIP-74).
pub const FETCH_RESPONSE_BYTES_DEFAULT: u64 = 57_671_680;

/// Capacity of read buffers one shard thread keeps for reuse once the responses holding them are
/// written (`runtime::file_read`); more is freed. Resident memory beside the fetch budget.
pub const READ_BUFFER_POOL_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Default of `skua.fetch.buffered.bytes.max`: record bytes read from segment files into memory
/// for Fetch responses not yet written to their sockets, per broker. Four responses of the
/// default `fetch.max.bytes`; a fetch that would exceed it waits for earlier responses to be
/// written (one response alone may always proceed, so a large one never waits forever).
pub const FETCH_BUFFERED_BYTES_DEFAULT: u64 = 4 * FETCH_RESPONSE_BYTES_DEFAULT;

/// The share of the machine's memory the broker keeps recently written records in by default
/// (`skua.read.cache.bytes`: memory / this), and the budget when the memory cannot be read.
pub const READ_CACHE_MEMORY_DIVISOR: u64 = 4;
pub const READ_CACHE_BYTES_FALLBACK: u64 = 1024 * 1024 * 1024;

/// iovecs per vectored write (Linux's IOV_MAX is 1024).
pub const WRITE_SEGMENTS_MAX: usize = 512;

/// A request frame's buffer grows as its bytes arrive, never by more than this (or than what was
/// already received, whichever is larger) at a time, so announcing a large frame reserves nothing.
pub const FRAME_READ_STEP_BYTES: usize = 64 * 1024;

/// Kafka's `socket.request.max.bytes` default: the largest request frame accepted.
pub const REQUEST_FRAME_BYTES_DEFAULT: usize = 104_857_600;

/// `socket.send.buffer.bytes` by default: the `SO_SNDBUF` of every accepted connection (the
/// kernel doubles it for its bookkeeping: 1 MiB); -1 leaves the kernel's autotuning. Kafka's
/// default is 102400. Measured on loopback (`results/2026-12-05-socket-buffers/`, medians of
/// four rounds, read-back from memory): autotuned buffers (up to `tcp_wmem`'s 4 MiB) read 2,860
/// / 3,743 MiB/s with one / four consumers and retransmitted 145 and 734 segments in the two
/// runs counted (loopback reordering); this size 4,352 / 4,459 with 0–8; Kafka's 102400 read
/// 2,080 and 2,672 with one reader (3,436 and 3,741 autotuned).
pub const SOCKET_SEND_BUFFER_BYTES_DEFAULT: i64 = 524_288;
/// `socket.receive.buffer.bytes` by default: -1, the kernel's autotuning. A size is set on the
/// listener before `listen` (as Kafka does), so that new connections advertise a window scale
/// that fits it; accepted connections inherit it. Kafka's default is 102400; with it the
/// produce phases of the same runs wrote a median 324 against 333 MiB/s with autotuning (within
/// the noise), and a fixed window would cap a producer on a long link.
pub const SOCKET_RECEIVE_BUFFER_BYTES_DEFAULT: i64 = -1;

/// Kafka's `queued.max.requests` default: requests being read or waiting for their handler, per
/// broker (not those waiting for data or a commit, as Kafka's purgatory is not counted either).
pub const QUEUED_REQUESTS_DEFAULT: u64 = 500;

/// Default of `queued.max.request.bytes`: bytes of request frames read (or being read) and not yet
/// released, per broker. Kafka's default is -1 (unbounded); Skua bounds it at 256 MiB, room for two
/// frames of the largest size `socket.request.max.bytes` allows by default (100 MiB) with 56 MiB
/// left for everyone else's ordinary requests. When it is used up the broker stops reading
/// request bodies (backpressure, as Kafka's MemoryPool mutes channels) instead of failing; a frame
/// larger than the whole budget still proceeds when nothing else holds any of it.
pub const QUEUED_REQUEST_BYTES_DEFAULT: u64 = 256 * 1024 * 1024;

/// Default of `skua.inflight.requests.max`: requests one connection may have in flight.
pub const INFLIGHT_REQUESTS_DEFAULT: usize = 32;

/// The largest `skua.inflight.requests.max` accepted: pipelining deeper than this buys nothing
/// (Kafka clients use 5, librdkafka at most 1,000,000 but sends far fewer per connection).
pub const INFLIGHT_REQUESTS_MAX: usize = 1_000;

/// Kafka's `max.connections` and `max.connections.per.ip` default (Int.MaxValue: unbounded).
pub const CONNECTIONS_DEFAULT: u64 = i32::MAX as u64;

/// Kafka's `connections.max.idle.ms` default: a connection with nothing to read, nothing in flight
/// and no byte received for this long is closed.
pub const CONNECTION_IDLE_MS_DEFAULT: u64 = 600_000;

/// How long a connection waiting for room in a budget (request bytes, request count, fetch
/// memory) sleeps between looks at it at most; the first sleep is 1 ms, each next one doubles.
pub const BUDGET_WAIT_MS_MAX: u64 = 16;

/// How long the acceptor waits for a connection before looking at signals and shard health.
pub const ACCEPT_POLL_MS: i32 = 50;

/// How long a new connection may wait for room in a busy shard's inbox before it is closed.
pub const HANDOFF_WAIT_MS_MAX: u64 = 1_000;

/// After an accept fails for lack of a resource (EMFILE, ENFILE, ENOBUFS, ENOMEM) the acceptor
/// waits this long, doubling on each further failure up to [`ACCEPT_BACKOFF_MS_MAX`].
pub const ACCEPT_BACKOFF_MS_MIN: u64 = 10;

/// The longest wait between accept attempts while out of a resource.
pub const ACCEPT_BACKOFF_MS_MAX: u64 = 500;

/// How long to retry binding while the port is still held, e.g. by the io_uring of a broker that
/// was just killed (the kernel releases its files asynchronously after the process exits).
pub const BIND_RETRY_MS_MAX: u64 = 10_000;

/// Threads that convert produced batches to a topic's `compression.type`, and walk compressed
/// batches past `PRODUCE_INLINE_DECOMPRESSED_BYTES_MAX` (`runtime::codec_pool`), off the shards.
/// Two: one slow conversion (a high zstd level) leaves the other for the rest.
/// Kafka does this work on its request handler threads (`num.io.threads`, 8 by default).
pub const CODEC_POOL_THREADS: usize = 2;

/// Bytes of produced batches queued for the codec threads or being worked on there, all shards
/// together; past it a produce waits for room (non-strict: a larger request goes alone). With
/// the per-batch decompression cap, bounds the memory their jobs hold.
pub const CODEC_QUEUE_BYTES_MAX: u64 = 64 * 1024 * 1024;

/// Bytes the compressed batches of one Produce request may decompress, per owning shard and all
/// partitions together, to be checked record by record (decision 0014). One batch may use all of
/// it (the engine's per-batch cap is the same 64 MiB); past it the remaining compressed batches
/// are refused with MESSAGE_TOO_LARGE. Bounds the time one request holds a shard decompressing.
pub const PRODUCE_DECOMPRESSED_BYTES_PER_REQUEST_MAX: usize = engine::limits::RECORDS_DECOMPRESSED_BYTES_MAX;

/// Of that allowance, the bytes a shard decompresses itself to check one request's batches (its
/// share of the request, all partitions together). The first compressed batch that would go past
/// it, and every compressed batch of the share after it, is checked on the codec threads instead
/// (`runtime::codec_pool`), in the request's order and within the same allowance: 1 MiB is 1–4 ms
/// of a shard's turn (lz4 to gzip here), where the whole allowance was up to ~0.2 s of gzip.
pub const PRODUCE_INLINE_DECOMPRESSED_BYTES_MAX: usize = 1024 * 1024;

/// Jobs waiting in one shard's inbox before senders are made to wait (backpressure).
pub const SHARD_QUEUE_DEPTH: usize = 1024;
/// Control commands (topic creation, producer ids) waiting for the controller.
pub const CONTROL_QUEUE_DEPTH: usize = 256;
/// Largest supported shard count.
pub const SHARD_COUNT_MAX: usize = 256;

/// Kafka's longest legal topic name.
pub const TOPIC_NAME_BYTES_MAX: usize = 249;
/// Partitions one CreateTopics or CreatePartitions may ask for.
pub const PARTITIONS_PER_TOPIC_MAX: i32 = 10_000;

/// How often a shard checks whether it should shut down, and runs interval flushes and group
/// timeouts.
pub const TICK_MS: u64 = 100;
/// Pause before the committer polls the engine's completions again after polling failed.
pub const COMMITTER_POLL_RETRY_MS: u64 = 1;

// The metadata quorum's connections (CONTROLLER listener; decision 0016).
/// Events (peer messages, broker requests) waiting for the quorum thread.
pub const CONTROLLER_EVENTS_QUEUE_DEPTH: usize = 4096;
/// Raft messages waiting to be written to one peer; when full, Raft resends later.
pub const CONTROLLER_PEER_QUEUE_DEPTH: usize = 1024;
/// Responses waiting to be written to one broker connection; when full the broker is dropped.
pub const CONTROLLER_RESPONSE_QUEUE_DEPTH: usize = 256;
/// Longest pause between attempts to reach a controller peer or the quorum.
pub const CONTROLLER_RECONNECT_MS_MAX: u64 = 1_000;
/// Read and write timeout of controller connections where a reply is expected (the whole Hello,
/// however it is trickled), and of writes: a stopped peer (whose kernel still accepts
/// connections) is given up after it.
pub const CONTROLLER_IO_TIMEOUT_MS: u64 = 2_000;
/// How often the controller listener looks for new connections and for shutdown.
pub const CONTROLLER_ACCEPT_POLL_MS: u64 = 20;
/// Open connections on the CONTROLLER listener (each holds a reader and a writer thread): room
/// for every voter and a few hundred brokers; past it new connections are closed at once.
pub const CONTROLLER_CONNECTIONS_MAX: usize = 512;
/// The largest frame before a connection's Hello is accepted (a Hello is 28 bytes): nothing is
/// buffered for a stranger.
pub const CONTROLLER_HELLO_FRAME_BYTES_MAX: u32 = 256;
/// The largest frame a broker (a non-voter) may send: its requests (registration, heartbeats,
/// forwarded admin requests with explicit assignments) are far smaller. Voters' Raft messages
/// carry snapshots and may use the codec's whole `FRAME_BYTES_MAX_DEFAULT`.
pub const CONTROLLER_REQUEST_FRAME_BYTES_MAX: u32 = 16 * 1024 * 1024;
/// Requests one connection may have waiting for an answer (a commit, or a newer image); a
/// broker's link asks one at a time, so a connection past this is not a broker: it is closed.
pub const CONTROLLER_REQUESTS_PENDING_PER_CONNECTION_MAX: usize = 16;
/// The longest a broker's image fetch is held waiting for a newer image.
pub const IMAGE_FETCH_WAIT_MS_MAX: u64 = 5_000;
/// The quorum snapshots its image and compacts its log every this many applied entries.
pub const QUORUM_SNAPSHOT_ENTRIES: u64 = 10_000;
/// After the controller committed a topic change, how long a broker waits for its own catalog to
/// show it before answering the client (which retries metadata either way).
pub const METADATA_APPLY_WAIT_MS: u64 = 3_000;

/// Kafka's `replica.fetch.wait.max.ms` default: how long a follower's fetch waits at the leader
/// for new data.
pub const REPLICA_FETCH_WAIT_MS: i32 = 500;
/// Kafka's `replica.fetch.max.bytes` default: record bytes a follower asks per partition.
pub const REPLICA_FETCH_PARTITION_BYTES_MAX: i32 = 1024 * 1024;
/// Kafka's `replica.fetch.response.max.bytes` default: record bytes per follower fetch response.
pub const REPLICA_FETCH_RESPONSE_BYTES_MAX: i32 = 10 * 1024 * 1024;
/// The largest fetch response frame a follower reads: the record bytes (the first partition may
/// exceed the response limit by one partition's worth, KIP-74) and room for the fields around.
pub const REPLICA_FETCH_FRAME_BYTES_MAX: usize =
    (REPLICA_FETCH_RESPONSE_BYTES_MAX + REPLICA_FETCH_PARTITION_BYTES_MAX) as usize + 1024 * 1024;
/// Kafka's `replica.fetch.backoff.ms` default: a follower's pause after a failed fetch.
pub const REPLICA_FETCH_BACKOFF_MS: u64 = 1_000;
/// How long a follower waits for its leader's socket to connect or answer before trying again.
pub const REPLICA_FETCH_IO_TIMEOUT_MS: u64 = 10_000;
/// How long a follower waits for its own commit of what it appended before fetching again (the
/// fetch after the commit is what tells the leader the bytes are durable here).
pub const REPLICA_COMMIT_WAIT_MS_MAX: u64 = 5_000;
/// The longest a DeleteRecords waits for the in-sync followers' log starts to reach the offset
/// (the request's `timeout_ms`, at most this).
pub const DELETE_RECORDS_WAIT_MS_MAX: u64 = 60_000;
/// How often a waiting DeleteRecords asks the owning shards for the low watermark again.
pub const DELETE_RECORDS_POLL_MS: u64 = 10;

/// The metrics endpoint reads at most this much of a request (its request line and headers);
/// a longer request is answered 431 and closed.
pub const METRICS_REQUEST_HEAD_BYTES_MAX: usize = 8 * 1024;
/// How long the metrics endpoint waits for a scraper to send its request or read the answer.
pub const METRICS_IO_TIMEOUT_MS: u64 = 5_000;
/// How long a scrape waits for each shard's counts; a shard busy past it is left out of that
/// scrape (`skua_metrics_shards_answered` says so) rather than delaying the scraper.
pub const METRICS_SHARD_WAIT_MS: u64 = 2_000;

/// Kafka's `max.incremental.fetch.session.cache.slots` default: fetch sessions a broker keeps.
pub const FETCH_SESSION_SLOTS_DEFAULT: u64 = 1_000;
