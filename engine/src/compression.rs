//! Codec conversion on append, for topics whose `compression.type` names a codec.
//!
//! Owns: re-encoding a v2 batch with the log's codec, as Kafka's broker does for such a topic. The
//! records section (everything after the 61-byte header) is decompressed whole (any codec, within
//! the decompressed-size cap) and compressed as one stream with the target codec in the framing
//! Kafka's clients read (gzip; snappy in xerial blocks of 32 KiB, as the Java client writes; lz4
//! frames of independent 64 KiB blocks, as Kafka writes; zstd one frame). The header keeps its
//! counts, timestamps and producer fields; the codec bits change, the length and CRC are
//! recomputed. Records are never parsed (the produce path walked them before). Knows nothing of
//! offsets or files, nor of threads: [`convert_validated`] is what a broker calls on a thread of
//! its choosing, so that a slow codec level does not hold the thread that owns the log.

use std::borrow::Cow;
use std::io::Write;

use crate::batch::{self, BatchHeader, CheckedBatch, Codec, ValidatedBatches};
use crate::config::CompressionType;
use crate::error::{BatchError, EngineError};
use crate::limits::{BATCH_HEADER_BYTES, RECORDS_DECOMPRESSED_BYTES_MAX};

/// The xerial snappy framing: magic, version 1, compatible version 1.
const XERIAL_HEADER: [u8; 16] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1];
/// Uncompressed bytes per xerial block (the Java client's `SnappyOutputStream` default).
const XERIAL_BLOCK_BYTES: usize = 32 * 1024;
/// zlib's default level, what Kafka's gzip level -1 means.
const GZIP_LEVEL_DEFAULT: u32 = 6;

/// A codec's failure to compress (an I/O error into memory, or the codec's own).
fn failed(error: impl std::fmt::Display) -> BatchError {
    BatchError::Compression(error.to_string())
}

/// Returns the batch re-encoded with `target`'s codec, or `None` when it already has it (or
/// `target` is `Producer`): it is then stored as it arrived.
pub fn convert(
    batch_bytes: &[u8],
    header: &BatchHeader,
    target: CompressionType,
) -> Result<Option<Vec<u8>>, BatchError> {
    let Some(codec) = target.codec() else { return Ok(None) };
    if header.codec() == codec {
        return Ok(None);
    }
    let records: Cow<[u8]> = match header.codec() {
        Codec::None => Cow::Borrowed(&batch_bytes[BATCH_HEADER_BYTES..header.size_bytes]),
        _ => Cow::Owned(crate::records::decompress_records(batch_bytes, header, RECORDS_DECOMPRESSED_BYTES_MAX)?),
    };
    let mut out = Vec::with_capacity(BATCH_HEADER_BYTES + records.len() / 2);
    out.extend_from_slice(&batch_bytes[..BATCH_HEADER_BYTES]);
    match target {
        CompressionType::Producer => unreachable!("no codec to convert to"),
        CompressionType::Uncompressed => out.extend_from_slice(&records),
        CompressionType::Gzip { level } => {
            let level = u32::try_from(level).unwrap_or(GZIP_LEVEL_DEFAULT);
            let mut encoder = flate2::write::GzEncoder::new(out, flate2::Compression::new(level));
            encoder.write_all(&records).map_err(failed)?;
            out = encoder.finish().map_err(failed)?;
        }
        CompressionType::Snappy => {
            out.extend_from_slice(&XERIAL_HEADER);
            let mut encoder = snap::raw::Encoder::new();
            for block in records.chunks(XERIAL_BLOCK_BYTES) {
                let compressed = encoder.compress_vec(block).map_err(failed)?;
                out.extend_from_slice(&(compressed.len() as i32).to_be_bytes());
                out.extend_from_slice(&compressed);
            }
        }
        CompressionType::Lz4 => {
            let frame = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut encoder = lz4_flex::frame::FrameEncoder::with_frame_info(frame, out);
            encoder.write_all(&records).map_err(failed)?;
            out = encoder.finish().map_err(failed)?;
        }
        CompressionType::Zstd { level } => {
            let compressed = zstd::bulk::compress(&records, level).map_err(failed)?;
            out.extend_from_slice(&compressed);
        }
    }
    let length = (out.len() - batch::LOG_OVERHEAD_BYTES) as i32;
    out[batch::BATCH_LENGTH_AT..batch::BATCH_LENGTH_AT + 4].copy_from_slice(&length.to_be_bytes());
    let attributes = (header.attributes & !batch::CODEC_MASK) | codec.id();
    out[batch::ATTRIBUTES_AT..batch::ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    batch::reseal_crc(&mut out);
    Ok(Some(out))
}

/// Whether appending `batches` to a log of codec `target` would re-encode any of them.
pub fn needs_conversion(batches: &ValidatedBatches, target: CompressionType) -> bool {
    target.codec().is_some_and(|codec| batches.headers().any(|header| header.codec() != codec))
}

/// [`convert`] for every batch of `batches`, as a leader's append would do it, but callable on any
/// thread: a broker runs the (possibly slow) compression away from the thread that owns the log,
/// then appends the result, which the log stores as it is (its codec is already the log's).
///
/// The checks are the append's, in Kafka's order: a batch larger than `batch_bytes_max` as it
/// arrived, or once converted, is [`EngineError::BatchTooLarge`]. Each converted batch's header is
/// checked again (layout, CRC); its records are the original's, so their summary is kept. `None`
/// when no batch changes codec.
pub fn convert_validated(
    batches: &ValidatedBatches,
    target: CompressionType,
    batch_bytes_max: usize,
) -> Result<Option<ValidatedBatches>, EngineError> {
    if !needs_conversion(batches, target) {
        return Ok(None);
    }
    let too_large = |size_bytes: usize| EngineError::BatchTooLarge { size_bytes, limit_bytes: batch_bytes_max };
    if let Some(header) = batches.headers().find(|header| header.size_bytes > batch_bytes_max) {
        return Err(too_large(header.size_bytes));
    }
    let mut out: Vec<u8> = Vec::with_capacity(batches.size_bytes());
    let mut checked = Vec::with_capacity(batches.batches().len());
    let mut at = 0;
    for original in batches.batches() {
        let bytes = &batches.bytes()[at..at + original.header.size_bytes];
        at += original.header.size_bytes;
        let start = out.len();
        match convert(bytes, &original.header, target)? {
            Some(converted) => {
                if converted.len() > batch_bytes_max {
                    return Err(too_large(converted.len()));
                }
                out.extend_from_slice(&converted);
            }
            None => out.extend_from_slice(bytes),
        }
        let header = batch::validate_one(&out[start..])?;
        checked.push(CheckedBatch { header, records: original.records });
    }
    Ok(Some(ValidatedBatches::converted(bytes::Bytes::from(out), checked)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::tests::make_batch;
    use crate::records::{decompress_records, walk_records};

    const TARGETS: [CompressionType; 5] = [
        CompressionType::Uncompressed,
        CompressionType::Gzip { level: -1 },
        CompressionType::Snappy,
        CompressionType::Lz4,
        CompressionType::Zstd { level: 3 },
    ];

    /// Every codec into every other: the header's fields stay, the codec bits and CRC are the
    /// target's, and the records decompress to the original bytes (and walk as valid records).
    #[test]
    fn every_codec_converts_to_every_other_keeping_header_and_records() {
        let value = vec![b'x'; 100_000];
        let original = make_batch(&[(b"key", &value), (b"key", &value)], 77);
        let header = batch::validate_one(&original).expect("valid");
        let records = &original[BATCH_HEADER_BYTES..];
        for source in TARGETS {
            let from = convert(&original, &header, source).expect("compress").unwrap_or_else(|| original.clone());
            let from_header = batch::validate_one(&from).expect("CRC recomputed");
            for target in TARGETS {
                let context = format!("{source:?} -> {target:?}");
                let converted = convert(&from, &from_header, target).expect(&context);
                let converted = match converted {
                    Some(converted) => converted,
                    None => {
                        assert_eq!(source, target, "{context}: only the same codec is left as it is");
                        continue;
                    }
                };
                let converted_header = batch::validate_one(&converted).expect(&context);
                assert_eq!(Some(converted_header.codec()), target.codec(), "{context}");
                assert_eq!(converted_header.records_count, 2, "{context}");
                assert_eq!(converted_header.base_timestamp, 77, "{context}");
                assert_eq!(converted_header.last_offset_delta, header.last_offset_delta, "{context}");
                // Base offset, leader epoch and magic, then everything after the attributes
                // (offsets, timestamps, producer fields, count) are the original's.
                for range in [0..8, 12..17, 23..BATCH_HEADER_BYTES] {
                    assert_eq!(converted[range.clone()], original[range], "{context}");
                }
                let back = decompress_records(&converted, &converted_header, 1 << 20).expect(&context);
                assert_eq!(back, records, "{context}");
                walk_records(&converted, &converted_header).expect(&context);
                if target != CompressionType::Uncompressed {
                    assert!(converted.len() < original.len() / 10, "{context}: {} bytes", converted.len());
                }
            }
        }
    }

    #[test]
    fn snappy_is_written_in_xerial_blocks_of_32_kib() {
        let value = vec![b'y'; 100_000];
        let original = make_batch(&[(b"k", &value)], 1);
        let header = batch::validate_one(&original).expect("valid");
        let converted = convert(&original, &header, CompressionType::Snappy).expect("snappy").expect("converted");
        assert_eq!(converted[BATCH_HEADER_BYTES..BATCH_HEADER_BYTES + 16], XERIAL_HEADER);
        // Four blocks: 100 KB and some in 32 KiB pieces.
        let mut at = BATCH_HEADER_BYTES + 16;
        let mut blocks = 0;
        while at < converted.len() {
            let length = i32::from_be_bytes(converted[at..at + 4].try_into().expect("4 bytes")) as usize;
            at += 4 + length;
            blocks += 1;
        }
        assert_eq!((at, blocks), (converted.len(), 4));
    }

    #[test]
    fn a_batch_over_the_decompressed_cap_is_refused() {
        let value = vec![b'z'; 50_000];
        let original = make_batch(&[(b"k", &value)], 1);
        let header = batch::validate_one(&original).expect("valid");
        let zstd = convert(&original, &header, CompressionType::Zstd { level: 1 }).expect("zstd").expect("converted");
        let zstd_header = batch::validate_one(&zstd).expect("valid");
        assert!(matches!(
            decompress_records(&zstd, &zstd_header, 1000),
            Err(BatchError::DecompressedTooLarge { limit_bytes: 1000 })
        ));
    }

    /// Converting validated batches gives what the append's own conversion stores: each batch
    /// converted alone, headers checked again, record summaries kept; a codec already the
    /// target's is left as it is.
    #[test]
    fn validated_batches_convert_as_the_append_would() {
        let value = vec![b'v'; 20_000];
        let plain = make_batch(&[(b"a", &value), (b"b", &value)], 5);
        let zstd = crate::testkit::make_compressed_batch(&[(b"c", &value)], 6, Codec::Zstd);
        let both: Vec<u8> = [plain.clone(), zstd.clone()].concat();
        let batches = ValidatedBatches::validate(bytes::Bytes::from(both)).expect("valid");
        let target = CompressionType::Gzip { level: 9 };
        assert!(needs_conversion(&batches, target));
        let converted = convert_validated(&batches, target, 1 << 20).expect("converted").expect("some changed");
        let mut expected = Vec::new();
        for original in [&plain, &zstd] {
            let header = batch::validate_one(original).expect("valid");
            expected.extend(convert(original, &header, target).expect("gzip").expect("changed"));
        }
        assert_eq!(converted.bytes()[..], expected[..]);
        assert_eq!(converted.batches().len(), 2);
        for (after, before) in converted.batches().iter().zip(batches.batches()) {
            assert_eq!(after.header.codec(), Codec::Gzip);
            assert_eq!(after.records, before.records);
            assert_eq!(
                (after.header.records_count, after.header.base_timestamp),
                (before.header.records_count, before.header.base_timestamp)
            );
        }
        // Stored as they are from then on: nothing is left to convert.
        assert!(!needs_conversion(&converted, target));
        assert!(convert_validated(&converted, target, 1 << 20).expect("nothing to do").is_none());
        assert!(!needs_conversion(&batches, CompressionType::Producer));
    }

    /// The append's limits, in Kafka's order: a batch too large as it arrived, then one that
    /// grows past the limit once converted (incompressible bytes framed again).
    #[test]
    fn validated_batches_over_the_limit_before_or_after_conversion_are_refused() {
        let value = vec![b'w'; 50_000];
        let plain = make_batch(&[(b"k", &value)], 1);
        let batches = ValidatedBatches::validate(bytes::Bytes::from(plain.clone())).expect("valid");
        let refused = convert_validated(&batches, CompressionType::Zstd { level: 3 }, plain.len() - 1);
        assert!(matches!(refused, Err(EngineError::BatchTooLarge { size_bytes, .. }) if size_bytes == plain.len()));
        let mut noise = vec![0u8; 50_000];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for byte in noise.iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = state as u8;
        }
        let random = make_batch(&[(b"k", &noise)], 1);
        let batches = ValidatedBatches::validate(bytes::Bytes::from(random.clone())).expect("valid");
        let grown = convert_validated(&batches, CompressionType::Gzip { level: 1 }, random.len());
        assert!(matches!(grown, Err(EngineError::BatchTooLarge { size_bytes, .. }) if size_bytes > random.len()));
    }
}
