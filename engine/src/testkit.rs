//! Builders for record batches, for tests, the fuzzer and benchmarks.
//!
//! Owns: producing valid uncompressed v2 batches the way a Kafka producer lays them out. Not used
//! on any data path.

use crate::batch::{reseal_crc, LOG_OVERHEAD_BYTES, MAGIC_V2};
use crate::limits::BATCH_HEADER_BYTES;

fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    loop {
        let byte = (zigzag & 0x7f) as u8;
        zigzag >>= 7;
        if zigzag == 0 {
            out.push(byte);
            break;
        }
        out.push(byte | 0x80);
    }
}

/// Builds an uncompressed v2 batch the way a producer does. `records` are (key, value) pairs;
/// timestamps are `base_timestamp + index`.
pub fn make_batch(records: &[(&[u8], &[u8])], base_timestamp: i64) -> Vec<u8> {
    let mut body = Vec::new();
    for (index, (key, value)) in records.iter().enumerate() {
        let mut record = Vec::new();
        record.push(0); // attributes
        put_varint(&mut record, index as i64); // timestamp delta
        put_varint(&mut record, index as i64); // offset delta
        put_varint(&mut record, key.len() as i64);
        record.extend_from_slice(key);
        put_varint(&mut record, value.len() as i64);
        record.extend_from_slice(value);
        put_varint(&mut record, 0); // headers
        put_varint(&mut body, record.len() as i64);
        body.extend_from_slice(&record);
    }
    let count = records.len() as i32;
    let mut batch = Vec::with_capacity(BATCH_HEADER_BYTES + body.len());
    batch.extend_from_slice(&0i64.to_be_bytes());
    batch.extend_from_slice(&((BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES + body.len()) as i32).to_be_bytes());
    batch.extend_from_slice(&(-1i32).to_be_bytes());
    batch.push(MAGIC_V2 as u8);
    batch.extend_from_slice(&[0; 4]);
    batch.extend_from_slice(&0u16.to_be_bytes());
    batch.extend_from_slice(&(count - 1).max(0).to_be_bytes());
    batch.extend_from_slice(&base_timestamp.to_be_bytes());
    batch.extend_from_slice(&(base_timestamp + i64::from(count - 1).max(0)).to_be_bytes());
    batch.extend_from_slice(&(-1i64).to_be_bytes());
    batch.extend_from_slice(&(-1i16).to_be_bytes());
    batch.extend_from_slice(&(-1i32).to_be_bytes());
    batch.extend_from_slice(&count.to_be_bytes());
    batch.extend_from_slice(&body);
    reseal_crc(&mut batch);
    batch
}

/// A batch of `record_count` records whose values are `value_bytes` long and derived from `seed`,
/// so that readers can check content.
pub fn make_sized_batch(record_count: usize, value_bytes: usize, seed: u64, base_timestamp: i64) -> Vec<u8> {
    let values: Vec<Vec<u8>> = (0..record_count)
        .map(|index| {
            (0..value_bytes).map(|byte| (seed as usize).wrapping_mul(31).wrapping_add(index * 7 + byte) as u8).collect()
        })
        .collect();
    let key = seed.to_be_bytes();
    let records: Vec<(&[u8], &[u8])> = values.iter().map(|value| (&key[..], &value[..])).collect();
    make_batch(&records, base_timestamp)
}

/// One record laid out as a producer does, with any offset delta, lengths given as written (so
/// tests can declare lengths that lie). `None` writes -1 (null).
pub fn record(offset_delta: i32, timestamp_delta: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> Vec<u8> {
    let mut body = vec![0]; // attributes
    put_varint(&mut body, timestamp_delta);
    put_varint(&mut body, i64::from(offset_delta));
    for field in [key, value] {
        match field {
            Some(bytes) => {
                put_varint(&mut body, bytes.len() as i64);
                body.extend_from_slice(bytes);
            }
            None => put_varint(&mut body, -1),
        }
    }
    put_varint(&mut body, 0); // headers
    let mut out = Vec::with_capacity(body.len() + 5);
    put_varint(&mut out, body.len() as i64);
    out.extend_from_slice(&body);
    out
}

/// Appends a zig-zag varint, for hand-made records.
pub fn push_varint(out: &mut Vec<u8>, value: i64) {
    put_varint(out, value);
}

/// Compresses a records section as Kafka's clients do: gzip, xerial-framed snappy (the Java
/// client's framing), the lz4 frame format, zstd.
pub fn compress(codec: crate::batch::Codec, bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;

    use crate::batch::Codec;
    match codec {
        Codec::None => bytes.to_vec(),
        Codec::Gzip => {
            let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(bytes).expect("gzip into memory");
            encoder.finish().expect("gzip into memory")
        }
        Codec::Snappy => {
            let mut out = vec![0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1];
            for chunk in bytes.chunks(32 * 1024) {
                let block = snappy_raw(chunk);
                out.extend_from_slice(&(block.len() as i32).to_be_bytes());
                out.extend_from_slice(&block);
            }
            out
        }
        Codec::Lz4 => {
            let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::new());
            encoder.write_all(bytes).expect("lz4 into memory");
            encoder.finish().expect("lz4 into memory")
        }
        Codec::Zstd => zstd::bulk::compress(bytes, 3).expect("zstd into memory"),
    }
}

/// One raw snappy block, as librdkafka sends snappy.
pub fn snappy_raw(bytes: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(bytes).expect("snappy into memory")
}

/// A batch around a records section given as bytes (already compressed for `codec`), with the
/// header's count and last offset delta as given; everything else as [`make_batch`].
pub fn batch_around(
    payload: &[u8],
    codec: crate::batch::Codec,
    records_count: i32,
    last_offset_delta: i32,
    base_timestamp: i64,
) -> Vec<u8> {
    let mut batch = make_batch(&[], base_timestamp);
    batch.truncate(BATCH_HEADER_BYTES);
    batch.extend_from_slice(payload);
    let length = (batch.len() - LOG_OVERHEAD_BYTES) as i32;
    batch[8..12].copy_from_slice(&length.to_be_bytes());
    batch[21..23].copy_from_slice(&codec.id().to_be_bytes());
    batch[23..27].copy_from_slice(&last_offset_delta.to_be_bytes());
    batch[35..43].copy_from_slice(&base_timestamp.to_be_bytes());
    batch[57..61].copy_from_slice(&records_count.to_be_bytes());
    reseal_crc(&mut batch);
    batch
}

/// A valid batch of `records` compressed with `codec`.
pub fn make_compressed_batch(records: &[(&[u8], &[u8])], base_timestamp: i64, codec: crate::batch::Codec) -> Vec<u8> {
    let plain = make_batch(records, base_timestamp);
    let count = records.len() as i32;
    let mut batch =
        batch_around(&compress(codec, &plain[BATCH_HEADER_BYTES..]), codec, count, (count - 1).max(0), base_timestamp);
    // Keep the max timestamp make_batch computed.
    batch[35..43].copy_from_slice(&plain[35..43]);
    reseal_crc(&mut batch);
    batch
}

/// Reseals the CRC of every batch in `bytes` whose prefix parses, walking batch by batch (a
/// fuzzer cannot forge CRC-32C; without this it would never reach the checks behind it).
pub fn reseal_every_batch(bytes: &mut [u8]) {
    let mut at = 0;
    while at + BATCH_HEADER_BYTES <= bytes.len() {
        let Ok(prefix) = crate::batch::parse_prefix(&bytes[at..]) else { return };
        let end = at.saturating_add(prefix.size_bytes).min(bytes.len());
        reseal_crc(&mut bytes[at..end]);
        at = end;
    }
}
