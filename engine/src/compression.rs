//! Codec conversion on append for topics with `compression.type=zstd`.
//!
//! Owns: re-encoding an uncompressed v2 batch as a zstd batch. The records section (everything
//! after the 61-byte header) is compressed as one block, as Kafka does; the header keeps its counts
//! and timestamps, the codec bits change, the length and CRC are recomputed. Records are never
//! parsed. Knows nothing of offsets or files.

use crate::batch::{self, BatchHeader, Codec};
use crate::error::BatchError;
use crate::limits::BATCH_HEADER_BYTES;

/// Returns the batch re-encoded with zstd at `level`, or `None` when it is already compressed (it
/// is then stored as it arrived).
pub fn zstd_encode(batch_bytes: &[u8], header: &BatchHeader, level: i32) -> Result<Option<Vec<u8>>, BatchError> {
    if header.codec() != Codec::None {
        return Ok(None);
    }
    let records = &batch_bytes[BATCH_HEADER_BYTES..header.size_bytes];
    let compressed =
        zstd::bulk::compress(records, level).map_err(|error| BatchError::Compression(error.to_string()))?;
    let mut out = Vec::with_capacity(BATCH_HEADER_BYTES + compressed.len());
    out.extend_from_slice(&batch_bytes[..BATCH_HEADER_BYTES]);
    out.extend_from_slice(&compressed);
    let length = (out.len() - batch::LOG_OVERHEAD_BYTES) as i32;
    out[batch::BATCH_LENGTH_AT..batch::BATCH_LENGTH_AT + 4].copy_from_slice(&length.to_be_bytes());
    let attributes = (header.attributes & !batch::CODEC_MASK) | Codec::Zstd.id();
    out[batch::ATTRIBUTES_AT..batch::ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    batch::reseal_crc(&mut out);
    Ok(Some(out))
}

/// Decompresses a zstd batch's records section, for tests and record-level lookups.
pub fn zstd_records(batch_bytes: &[u8], header: &BatchHeader, records_bytes_max: usize) -> Result<Vec<u8>, BatchError> {
    zstd::bulk::decompress(&batch_bytes[BATCH_HEADER_BYTES..header.size_bytes], records_bytes_max)
        .map_err(|error| BatchError::Compression(error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::tests::make_batch;

    #[test]
    fn zstd_round_trip_keeps_header_and_records() {
        let value = vec![b'x'; 5000];
        let original = make_batch(&[(b"key", &value), (b"key", &value)], 77);
        let header = batch::validate_one(&original).expect("valid");
        let encoded = zstd_encode(&original, &header, 3).expect("compress").expect("was uncompressed");
        assert!(encoded.len() < original.len() / 10);
        let encoded_header = batch::validate_one(&encoded).expect("CRC recomputed");
        assert_eq!(encoded_header.codec(), Codec::Zstd);
        assert_eq!(encoded_header.records_count, 2);
        assert_eq!(encoded_header.base_timestamp, 77);
        assert_eq!(encoded_header.last_offset_delta, header.last_offset_delta);
        let records = zstd_records(&encoded, &encoded_header, 1 << 20).expect("decompress");
        assert_eq!(records, &original[BATCH_HEADER_BYTES..]);
        // Already compressed: stored as is.
        assert_eq!(zstd_encode(&encoded, &encoded_header, 3).expect("no-op"), None);
    }
}
