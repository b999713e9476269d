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
