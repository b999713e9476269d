//! The native consumer driver: Fetch requests built with the `kafka-protocol` crate, sent to each
//! assigned partition's leader over a plain TCP connection, one fetch in flight per connection
//! (as librdkafka and the Java client do), with librdkafka's default sizes (`fetch.max.bytes`
//! 50 MiB, `max.partition.fetch.bytes` 1 MiB) and loadgen's `fetch.wait.max.ms` of 100. The next
//! fetch goes out as soon as an answer's batch headers say where to continue, before its records
//! are walked (both clients fetch ahead of the application too).
//!
//! Owns: a lean consumer for benchmarks, so that a read-back can measure the broker when
//! librdkafka's consumer is what limits it (on a 2-core machine its broker thread and consuming
//! thread take more CPU than the broker serving them). It reads record batches where they lie in
//! the response, walks each record's header for its offset and value, and takes the end-to-end
//! latency from the value's first 8 bytes, like the rdkafka driver; nothing is copied or
//! allocated per record.
//!
//! Not a group member: consumer `i` of a subscription's `n` takes the partitions `p` with
//! `p % n == i`, from offset 0 (or the log start, when the broker says 0 is gone), and commits
//! nothing. It refuses compressed batches (the workload check refuses compression first), and
//! does not follow a leader that moves: its fetches to the old leader report the error code
//! (printed, then retried every 100 ms) and read nothing more, so the drain ends short.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::Bytes;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::{ApiKey, BrokerId, FetchRequest, FetchResponse, TopicName};
use kafka_protocol::protocol::{Decodable, StrBytes};

use crate::driver::{report_error, wall_micros, Positions};
use crate::native::{connect, frame, leaders, read_response_into};
use crate::stats::{record_latency, Recorder, Window};
use crate::workload::Workload;

/// Fetch v12: the last version that names topics (v13 on takes topic ids); Kafka 4.x and netd
/// both speak it.
const FETCH_VERSION: i16 = 12;
/// librdkafka's defaults, so that both consumer drivers ask for the same amounts.
const FETCH_BYTES_MAX: i32 = 52_428_800;
const PARTITION_FETCH_BYTES_MAX: i32 = 1_048_576;
/// The rdkafka driver's `fetch.wait.max.ms`.
const FETCH_WAIT_MAX_MS: i32 = 100;
/// How often the consumer hands its latency histogram to the recorder and its positions to the
/// lag probe (its counts go after every response).
const PUBLISH_INTERVAL: Duration = Duration::from_millis(50);
/// How long the consumer waits before fetching again after a partition error.
const ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Kafka's error codes this driver acts on.
const OFFSET_OUT_OF_RANGE: i16 = 1;

/// Record batch v2 header: base offset (8), length (4), leader epoch (4), magic (1), crc (4),
/// attributes (2), last offset delta (4), first and max timestamp (16), producer id (8), epoch
/// (2), base sequence (4), record count (4).
const BATCH_HEADER_BYTES: usize = 61;
/// Bytes of a batch that its length field does not count (base offset and the length itself).
const BATCH_LENGTH_OFFSET: usize = 12;
const ATTRIBUTE_COMPRESSION_MASK: i16 = 0x07;
const ATTRIBUTE_CONTROL: i16 = 0x20;

/// Refuses the workload settings this driver does not read.
pub fn check_supported(workload: &Workload) -> anyhow::Result<()> {
    if !matches!(workload.compression.as_str(), "none" | "") {
        bail!(
            "the native consumer does not decompress (compression={}); use --consumer-driver rdkafka",
            workload.compression
        );
    }
    Ok(())
}

pub struct NativeConsumerPlan {
    pub bootstrap: String,
    pub topic: String,
    /// This consumer's place among its subscription's consumers, and their number.
    pub index: usize,
    pub count: usize,
}

/// What one walk over a partition's records found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Walked {
    /// The offset to fetch next.
    pub next_offset: i64,
    pub records: u64,
    pub value_bytes: u64,
}

/// One whole record batch at the front of a partition's fetched bytes.
struct Batch<'a> {
    base_offset: i64,
    /// The offset after the batch's last one.
    next_offset: i64,
    /// The whole batch, header included.
    bytes: &'a [u8],
}

/// The whole batches of a partition's fetched bytes, in order, from their headers alone. Ends at
/// a partial batch (a broker may cut the last one short); a header declaring less than a header
/// is an error, and ends it.
fn batches(mut records: &[u8]) -> impl Iterator<Item = anyhow::Result<Batch<'_>>> {
    std::iter::from_fn(move || {
        if records.len() < BATCH_HEADER_BYTES {
            return None;
        }
        let header = || -> anyhow::Result<(i64, i32, i32)> {
            Ok((
                i64::from_be_bytes(array(records, 0)?),
                i32::from_be_bytes(array(records, 8)?),
                i32::from_be_bytes(array(records, 23)?),
            ))
        };
        let (base_offset, length, last_offset_delta) = match header() {
            Ok(header) => header,
            Err(error) => return Some(Err(error)),
        };
        if length < (BATCH_HEADER_BYTES - BATCH_LENGTH_OFFSET) as i32 {
            records = &[];
            return Some(Err(anyhow::anyhow!("a record batch at offset {base_offset} declares {length} bytes")));
        }
        let total = BATCH_LENGTH_OFFSET + length as usize;
        if total > records.len() {
            return None;
        }
        let (bytes, rest) = records.split_at(total);
        records = rest;
        Some(Ok(Batch { base_offset, next_offset: base_offset + i64::from(last_offset_delta) + 1, bytes }))
    })
}

/// Where to fetch next after `records` fetched from `position`, from the batch headers alone (the
/// same answer as [`walk_batches`], without reading a record): lets the consumer send its next
/// fetch before it walks the records of this one.
pub fn next_offset(records: &[u8], position: i64) -> i64 {
    batches(records).map_while(Result::ok).fold(position, |next, batch| next.max(batch.next_offset))
}

/// Walks the record batches of one partition's fetched bytes from `position`: counts the records
/// at or past it, records each one's end-to-end latency (from the first 8 bytes of its value, µs
/// since the Unix epoch, against `now_micros`) and returns where to fetch next. A partial batch
/// at the end (a broker may cut the last one short) is left for the next fetch.
pub fn walk_batches(records: &[u8], position: i64, now_micros: u64, window: &mut Window) -> anyhow::Result<Walked> {
    let mut walked = Walked { next_offset: position, ..Walked::default() };
    for batch in batches(records) {
        let Batch { base_offset, next_offset, bytes: batch } = batch?;
        if batch[16] != 2 {
            bail!("a record batch at offset {base_offset} has magic {} (only v2 is read)", batch[16]);
        }
        let attributes = i16::from_be_bytes(array(batch, 21)?);
        if attributes & ATTRIBUTE_CONTROL == 0 {
            if attributes & ATTRIBUTE_COMPRESSION_MASK != 0 {
                bail!("a record batch at offset {base_offset} is compressed; use --consumer-driver rdkafka");
            }
            walk_records(
                &batch[BATCH_HEADER_BYTES..],
                base_offset,
                walked.next_offset,
                now_micros,
                window,
                &mut walked,
            )?;
        }
        walked.next_offset = walked.next_offset.max(next_offset);
    }
    Ok(walked)
}

/// The records of one uncompressed batch: length, attributes, timestamp delta, offset delta, key,
/// value, headers (Kafka's record v2; every integer but the attributes a zig-zag varint).
fn walk_records(
    mut body: &[u8],
    base_offset: i64,
    position: i64,
    now_micros: u64,
    window: &mut Window,
    walked: &mut Walked,
) -> anyhow::Result<()> {
    while !body.is_empty() {
        let length = varint(&mut body)?;
        let length = usize::try_from(length).ok().filter(|length| *length <= body.len()).with_context(|| {
            format!("a record in the batch at offset {base_offset} declares {length} bytes past the batch")
        })?;
        let (mut record, rest) = body.split_at(length);
        body = rest;
        record = record.get(1..).context("an empty record")?; // attributes
        varint(&mut record)?; // timestamp delta
        let offset = base_offset + varint(&mut record)?;
        let key_length = varint(&mut record)?;
        if key_length > 0 {
            record = record.get(key_length as usize..).context("a key past its record")?;
        }
        let value_length = varint(&mut record)?;
        let value = if value_length > 0 {
            record.get(..value_length as usize).context("a value past its record")?
        } else {
            &[]
        };
        if offset < position {
            continue;
        }
        walked.records += 1;
        walked.value_bytes += value.len() as u64;
        window.consumed += 1;
        window.consumed_bytes += value.len() as u64;
        if let Some(stamp) = value.get(..8) {
            let sent = u64::from_be_bytes(stamp.try_into().context("8 bytes")?);
            record_latency(&mut window.end_to_end, now_micros.saturating_sub(sent));
        }
    }
    Ok(())
}

fn array<const N: usize>(bytes: &[u8], at: usize) -> anyhow::Result<[u8; N]> {
    bytes.get(at..at + N).and_then(|slice| slice.try_into().ok()).context("a record batch cut short")
}

/// A zig-zag varint (Kafka's `varint`/`varlong`), at most 10 bytes.
fn varint(bytes: &mut &[u8]) -> anyhow::Result<i64> {
    let mut value: u64 = 0;
    for (index, byte) in bytes.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            *bytes = &bytes[index + 1..];
            return Ok((value >> 1) as i64 ^ -((value & 1) as i64));
        }
    }
    bail!("a varint cut short or longer than 10 bytes")
}

/// One leader's connection and the partitions this consumer fetches from it.
struct Leader {
    address: String,
    stream: TcpStream,
    partitions: Vec<i32>,
    correlation_id: i32,
    /// The last response's buffer, kept for the next one.
    buffer: Vec<u8>,
}

impl Leader {
    fn send_fetch(&mut self, topic: &TopicName, positions: &HashMap<i32, i64>) -> anyhow::Result<()> {
        let mut request = FetchRequest::default();
        request.replica_id = BrokerId(-1);
        request.max_wait_ms = FETCH_WAIT_MAX_MS;
        request.min_bytes = 1;
        request.max_bytes = FETCH_BYTES_MAX;
        request.session_epoch = -1; // no fetch session: every request is a full one
        let mut wanted = FetchTopic::default();
        wanted.topic = topic.clone();
        wanted.partitions = self
            .partitions
            .iter()
            .map(|partition| {
                let mut fetch = FetchPartition::default();
                fetch.partition = *partition;
                fetch.fetch_offset = positions.get(partition).copied().unwrap_or(0);
                fetch.partition_max_bytes = PARTITION_FETCH_BYTES_MAX;
                fetch
            })
            .collect();
        request.topics = vec![wanted];
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let bytes = frame(ApiKey::Fetch, FETCH_VERSION, self.correlation_id, &request)?;
        self.stream.write_all(&bytes).with_context(|| format!("sending a Fetch to {}", self.address))
    }

    /// Reads the answer to the fetch sent last into the reused buffer. Returns the answer and the
    /// frame's handle, to give back to [`Leader::reclaim`] once the answer is read.
    fn read_fetch(&mut self) -> anyhow::Result<(FetchResponse, Bytes)> {
        let buffer = std::mem::take(&mut self.buffer);
        let (correlation_id, mut bytes) = read_response_into(&mut self.stream, ApiKey::Fetch, FETCH_VERSION, buffer)
            .with_context(|| format!("reading a Fetch answer from {}", self.address))?;
        if correlation_id != self.correlation_id {
            bail!("{} answered correlation id {correlation_id} to {}", self.address, self.correlation_id);
        }
        let response = FetchResponse::decode(&mut bytes, FETCH_VERSION).context("decoding a Fetch answer")?;
        Ok((response, bytes))
    }

    /// Takes the frame's buffer back for the next answer once the answer (whose records are
    /// slices of it) is dropped: no 16 MiB allocation, and no page faults, per fetch.
    fn reclaim(&mut self, response: FetchResponse, frame: Bytes) {
        drop(response);
        if let Ok(unique) = frame.try_into_mut() {
            // The handle was advanced to the frame's end: nothing is left to move to the front.
            self.buffer = Vec::from(unique);
        }
    }
}

/// Runs one native consumer until `stop`. `assigned` counts consumers that got partitions.
pub fn run_consumer(
    plan: NativeConsumerPlan,
    recorder: Arc<Recorder>,
    positions: Positions,
    stop: Arc<AtomicBool>,
    assigned: Arc<AtomicU64>,
) -> anyhow::Result<()> {
    let leader_of = leaders(&plan.bootstrap, &plan.topic)?;
    let mut by_address: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (partition, address) in leader_of.iter().enumerate() {
        if partition % plan.count.max(1) == plan.index {
            by_address.entry(address.as_str()).or_default().push(partition as i32);
        }
    }
    if by_address.is_empty() {
        return Ok(()); // more consumers than partitions: this one idles, as a group member would
    }
    let mut leaders: Vec<Leader> = Vec::new();
    for (address, partitions) in by_address {
        leaders.push(Leader {
            address: address.to_string(),
            stream: connect(address)?,
            partitions,
            correlation_id: 0,
            buffer: Vec::new(),
        });
    }
    assigned.fetch_add(1, Ordering::Relaxed);
    let topic = TopicName(StrBytes::from_string(plan.topic.clone()));
    let mut next: HashMap<i32, i64> = HashMap::new();
    let mut window = Window::default();
    let mut published = Instant::now();
    // Counts go to the recorder after every response (the drain times a read-back by them);
    // the histograms, whose merge costs more, and the positions every PUBLISH_INTERVAL.
    let count = |window: &mut Window| {
        recorder.with(|shared| {
            shared.consumed += std::mem::take(&mut window.consumed);
            shared.consumed_bytes += std::mem::take(&mut window.consumed_bytes);
        });
    };
    let publish = |window: &mut Window, next: &HashMap<i32, i64>| {
        recorder.with(|shared| shared.add(window));
        *window = Window::default();
        let mut shared = positions.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for (partition, offset) in next {
            shared.insert((plan.topic.clone(), *partition), *offset);
        }
    };
    // Each leader's next fetch goes out as soon as its answer's batch headers say where to
    // continue, before its records are walked (as librdkafka and the Java client fetch ahead of
    // the application); one fetch stays in flight per connection. After an error the consumer
    // backs off first.
    let mut to_send: Vec<bool> = vec![true; leaders.len()];
    while !stop.load(Ordering::Relaxed) {
        for (leader, send) in leaders.iter_mut().zip(to_send.iter_mut()) {
            if std::mem::take(send) {
                leader.send_fetch(&topic, &next)?;
            }
        }
        let mut failed = false;
        for (leader, send) in leaders.iter_mut().zip(to_send.iter_mut()) {
            let (response, frame) = leader.read_fetch()?;
            let mut leader_failed = false;
            if response.error_code != 0 {
                report_error(&format!("Fetch from {}: error code {}", leader.address, response.error_code));
                leader_failed = true;
            }
            let now = wall_micros();
            let answers = || response.responses.iter().flat_map(|topic| topic.partitions.iter());
            let mut positions: Vec<(i32, i64)> = Vec::with_capacity(leader.partitions.len());
            for answer in answers() {
                let partition = answer.partition_index;
                let position = next.get(&partition).copied().unwrap_or(0);
                positions.push((partition, position));
                match answer.error_code {
                    0 => {}
                    OFFSET_OUT_OF_RANGE if answer.log_start_offset > position => {
                        next.insert(partition, answer.log_start_offset);
                    }
                    code => {
                        report_error(&format!("Fetch {}-{partition}: error code {code}", plan.topic));
                        leader_failed = true;
                    }
                }
                if answer.error_code == 0 {
                    if let Some(records) = &answer.records {
                        next.insert(partition, next_offset(records, position));
                    }
                }
            }
            if !leader_failed && !stop.load(Ordering::Relaxed) {
                leader.send_fetch(&topic, &next)?;
            } else {
                *send = true;
            }
            for (answer, (partition, position)) in answers().zip(positions) {
                let Some(records) = answer.records.as_ref().filter(|_| answer.error_code == 0) else { continue };
                let walked = walk_batches(records, position, now, &mut window)
                    .with_context(|| format!("reading {}-{partition} at offset {position}", plan.topic))?;
                debug_assert_eq!(walked.next_offset, next.get(&partition).copied().unwrap_or(0));
            }
            failed |= leader_failed;
            leader.reclaim(response, frame);
        }
        if published.elapsed() >= PUBLISH_INTERVAL {
            publish(&mut window, &next);
            published = Instant::now();
        } else if window.consumed > 0 {
            count(&mut window);
        }
        if failed {
            std::thread::sleep(ERROR_BACKOFF);
        }
    }
    publish(&mut window, &next);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

    fn record(offset: i64, value: Vec<u8>, key: Option<&'static [u8]>) -> Record {
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: -1,
            timestamp: 1_700_000_000_000,
            key: key.map(Bytes::from_static),
            value: Some(Bytes::from(value)),
            headers: IndexMap::new(),
        }
    }

    /// A value whose first 8 bytes say it was sent at `sent_micros`, padded to `length`.
    fn stamped(sent_micros: u64, length: usize) -> Vec<u8> {
        let mut value = sent_micros.to_be_bytes().to_vec();
        value.resize(length, b'x');
        value
    }

    fn batch(records: &[Record], compression: Compression) -> Vec<u8> {
        let mut encoded = BytesMut::new();
        let options = RecordEncodeOptions { version: 2, compression };
        RecordBatchEncoder::encode(&mut encoded, records.iter(), &options).expect("encodes");
        encoded.to_vec()
    }

    #[test]
    fn counts_the_records_from_the_position_and_their_latency_and_leaves_a_partial_batch() {
        let first = batch(
            &[record(0, stamped(1_000, 100), None), record(1, stamped(2_000, 100), Some(b"k"))],
            Compression::None,
        );
        let second = batch(&[record(2, stamped(3_000, 10), None)], Compression::None);
        let mut bytes = first.clone();
        bytes.extend_from_slice(&second);
        let mut window = Window::default();
        let walked = walk_batches(&bytes, 1, 10_000, &mut window).expect("walks");
        assert_eq!(walked, Walked { next_offset: 3, records: 2, value_bytes: 110 }, "offset 0 is before the position");
        assert_eq!(window.consumed, 2);
        assert_eq!(window.consumed_bytes, 110);
        assert_eq!(window.end_to_end.len(), 2);
        assert_eq!(window.end_to_end.max(), window.end_to_end.highest_equivalent(8_000), "10,000 − 2,000 µs");
        // The second batch cut short: the first is read, the rest waits for the next fetch.
        let cut = &bytes[..first.len() + second.len() - 1];
        let walked = walk_batches(cut, 0, 10_000, &mut Window::default()).expect("walks");
        assert_eq!(walked, Walked { next_offset: 2, records: 2, value_bytes: 200 });
        // Less than a batch header: nothing read, the position stays.
        let walked = walk_batches(&bytes[..30], 0, 10_000, &mut Window::default()).expect("walks");
        assert_eq!(walked, Walked { next_offset: 0, records: 0, value_bytes: 0 });
    }

    #[test]
    fn the_next_offset_from_the_headers_is_the_walks() {
        let first = batch(&[record(7, stamped(1, 100), None), record(8, stamped(2, 100), None)], Compression::None);
        let second = batch(&[record(9, stamped(3, 10), None)], Compression::None);
        let mut control = batch(&[record(10, stamped(4, 20), None)], Compression::None);
        control[22] |= ATTRIBUTE_CONTROL as u8;
        let bytes = [first.clone(), second.clone(), control.clone()].concat();
        // Every cut of the bytes (a broker may end a partition's data inside a batch), from
        // positions before, inside and past the fetched offsets.
        for end in 0..=bytes.len() {
            for position in [0, 7, 8, 9, 11] {
                let walked = walk_batches(&bytes[..end], position, 10, &mut Window::default()).expect("walks");
                assert_eq!(next_offset(&bytes[..end], position), walked.next_offset, "cut at {end}, from {position}");
            }
        }
        assert_eq!(next_offset(&bytes, 0), 11);
        assert_eq!(next_offset(&bytes[..first.len() + 1], 0), 9, "a partial second batch waits");
        assert_eq!(next_offset(&[], 5), 5);
    }

    #[test]
    fn control_batches_move_the_position_and_compressed_or_broken_batches_are_refused() {
        let mut control = batch(&[record(5, stamped(1, 20), None)], Compression::None);
        control[22] |= ATTRIBUTE_CONTROL as u8; // attributes' low byte; the CRC is not checked here
        let walked = walk_batches(&control, 0, 10, &mut Window::default()).expect("walks");
        assert_eq!(walked, Walked { next_offset: 6, records: 0, value_bytes: 0 });
        let mut compressed = batch(&[record(0, stamped(1, 200), None)], Compression::None);
        compressed[22] |= 1; // gzip (the body is not gzip: the walk must refuse before reading it)
        let error = walk_batches(&compressed, 0, 10, &mut Window::default()).expect_err("compressed");
        assert!(error.to_string().contains("compressed"), "{error}");
        let mut broken = batch(&[record(0, stamped(1, 20), None)], Compression::None);
        broken[BATCH_HEADER_BYTES] = 0x7e; // the record's length: 63 bytes, past the batch
        let error = walk_batches(&broken, 0, 10, &mut Window::default()).expect_err("broken");
        assert!(error.to_string().contains("past the batch"), "{error}");
        let mut tiny = broken.clone();
        tiny[8..12].copy_from_slice(&10i32.to_be_bytes());
        let error = walk_batches(&tiny, 0, 10, &mut Window::default()).expect_err("tiny");
        assert!(error.to_string().contains("declares 10 bytes"), "{error}");
    }

    #[test]
    fn varints_are_zig_zag() {
        for (bytes, want) in [(&[0x00u8][..], 0i64), (&[0x01], -1), (&[0x02], 1), (&[0xac, 0x02], 150), (&[0x7f], -64)]
        {
            let mut slice = bytes;
            assert_eq!(varint(&mut slice).expect("varint"), want, "{bytes:?}");
            assert!(slice.is_empty());
        }
        assert!(varint(&mut &[0x80u8, 0x80][..]).is_err(), "cut short");
    }
}
