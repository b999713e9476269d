//! Kafka's rules for the batches a client produces, beyond their structure.
//!
//! Owns: what Kafka's `ProduceRequest.validateRecords`, `KafkaApis` and `LogValidator.validateBatch`
//! / `validateTimestamp` refuse in a well-formed batch: more than one batch per partition (Produce
//! v3+), zstd before Produce v7, transactional batches (no transactions here), control batches,
//! a base offset other than 0, a producer id without a sequence, record timestamps outside
//! `log.message.timestamp.before.max.ms` / `after.max.ms`. The structure itself (CRC, every
//! record) is the engine's check, [`engine::batch::validate_all_with_records`], run before these.
//! Knows nothing of sockets, shards or logs; the Kafka error code of each refusal is decided in
//! [`crate::codec::errors`].

use engine::batch::{self, CheckedBatch, Codec};
use engine::records::NO_TIMESTAMP;

/// Attribute bit of a transactional batch.
pub const TRANSACTIONAL_FLAG: u16 = 0x10;
/// Attribute bit of a control batch (transaction markers).
pub const CONTROL_FLAG: u16 = 0x20;
/// The first Produce version that may carry zstd batches.
pub const PRODUCE_VERSION_ZSTD_MIN: i16 = 7;

/// Why Kafka would refuse a produced batch that is well formed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProduceRefusal {
    #[error("Produce v{version} allows exactly one record batch per partition")]
    NotOneBatch { version: i16 },
    #[error("zstd batches need Produce v{PRODUCE_VERSION_ZSTD_MIN} or later, got v{version}")]
    ZstdBeforeV7 { version: i16 },
    #[error("transactional records without a transactional id (this broker has no transactions)")]
    Transactional,
    #[error("clients may not write control batches")]
    ControlBatch,
    #[error("a produced batch must have base offset 0, got {base_offset}")]
    BaseOffsetNotZero { base_offset: i64 },
    #[error("producer id {producer_id} with base sequence {base_sequence}")]
    SequenceMissing { producer_id: i64, base_sequence: i32 },
    #[error("record timestamp {timestamp_ms} is outside [{low_ms}, {high_ms}] (now minus before.max.ms, now plus after.max.ms)")]
    TimestampOutOfRange { timestamp_ms: i64, low_ms: i64, high_ms: i64 },
}

/// How far record timestamps may lie from the broker's clock (`log.message.timestamp.*.max.ms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimestampBounds {
    pub before_max_ms: i64,
    pub after_max_ms: i64,
}

impl TimestampBounds {
    /// No bound: a topic of `message.timestamp.type=LogAppendTime` replaces the producer's
    /// timestamps, and Kafka does not check them there.
    pub const NONE: TimestampBounds = TimestampBounds { before_max_ms: i64::MAX, after_max_ms: i64::MAX };
}

/// Checks Kafka makes on a partition's records before it looks at a batch's content
/// (`ProduceRequest.validateRecords`): one batch for Produce v3+, zstd only from v7. Reads batch
/// prefixes without the CRC, as Kafka does there; bytes too short for a prefix are left to the
/// full validation.
pub fn check_request_shape(records: &[u8], version: i16) -> Result<(), ProduceRefusal> {
    let Ok(prefix) = batch::parse_prefix(records) else { return Ok(()) };
    if version >= 3 && records.len() > prefix.size_bytes {
        return Err(ProduceRefusal::NotOneBatch { version });
    }
    if version < PRODUCE_VERSION_ZSTD_MIN
        && first_attributes(records).map(|attributes| attributes & batch::CODEC_MASK) == Some(Codec::Zstd.id())
    {
        return Err(ProduceRefusal::ZstdBeforeV7 { version });
    }
    Ok(())
}

/// True when the first batch of a partition's records is transactional. Kafka refuses the whole
/// request (TRANSACTIONAL_ID_AUTHORIZATION_FAILED) for it before looking at anything else.
pub fn is_transactional(records: &[u8]) -> bool {
    first_attributes(records).is_some_and(|attributes| attributes & TRANSACTIONAL_FLAG != 0)
}

fn first_attributes(records: &[u8]) -> Option<u16> {
    let bytes = records.get(batch::ATTRIBUTES_AT..batch::ATTRIBUTES_AT + 2)?;
    Some(u16::from_be_bytes([bytes[0], bytes[1]]))
}

/// Kafka's checks of a batch that passed the structural validation (`LogValidator.validateBatch`
/// for a client's batch, then each record's timestamp).
pub fn check_batch(checked: &CheckedBatch, now_ms: i64, bounds: TimestampBounds) -> Result<(), ProduceRefusal> {
    let header = &checked.header;
    if header.attributes & CONTROL_FLAG != 0 {
        return Err(ProduceRefusal::ControlBatch);
    }
    if header.producer_id >= 0 && header.base_sequence < 0 {
        return Err(ProduceRefusal::SequenceMissing {
            producer_id: header.producer_id,
            base_sequence: header.base_sequence,
        });
    }
    if header.base_offset != 0 {
        return Err(ProduceRefusal::BaseOffsetNotZero { base_offset: header.base_offset as i64 });
    }
    // Kafka checks every record whose timestamp is not "none": the extremes decide for all.
    let low_ms = i128::from(now_ms) - i128::from(bounds.before_max_ms);
    let high_ms = i128::from(now_ms) + i128::from(bounds.after_max_ms);
    let clamp = |value: i128| value.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
    let out_of_range = |timestamp_ms: i64| ProduceRefusal::TimestampOutOfRange {
        timestamp_ms,
        low_ms: clamp(low_ms),
        high_ms: clamp(high_ms),
    };
    let records = &checked.records;
    if records.timestamp_min_ms != i64::MAX && i128::from(records.timestamp_min_ms) < low_ms {
        return Err(out_of_range(records.timestamp_min_ms));
    }
    if records.timestamp_max_ms != NO_TIMESTAMP && i128::from(records.timestamp_max_ms) > high_ms {
        return Err(out_of_range(records.timestamp_max_ms));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::testkit::make_batch;

    const NOW_MS: i64 = 1_800_000_000_000;
    const DEFAULTS: TimestampBounds = TimestampBounds { before_max_ms: i64::MAX, after_max_ms: 3_600_000 };

    fn checked(bytes: &[u8]) -> CheckedBatch {
        batch::validate_all_with_records(bytes).expect("valid")[0]
    }

    fn with_attributes(mut bytes: Vec<u8>, attributes: u16) -> Vec<u8> {
        bytes[batch::ATTRIBUTES_AT..batch::ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
        batch::reseal_crc(&mut bytes);
        bytes
    }

    #[test]
    fn timestamps_are_checked_at_both_ends_and_none_is_skipped() {
        let bounds = TimestampBounds { before_max_ms: 1000, after_max_ms: 1000 };
        let inside = make_batch(&[(b"k", b"v"), (b"k", b"v")], NOW_MS - 1000);
        assert_eq!(check_batch(&checked(&inside), NOW_MS, bounds), Ok(()));
        let old = make_batch(&[(b"k", b"v")], NOW_MS - 1001);
        assert!(matches!(
            check_batch(&checked(&old), NOW_MS, bounds),
            Err(ProduceRefusal::TimestampOutOfRange { timestamp_ms, .. }) if timestamp_ms == NOW_MS - 1001
        ));
        // The second record (base + 1) is the one past the upper bound.
        let future = make_batch(&[(b"k", b"v"), (b"k", b"v")], NOW_MS + 1000);
        assert!(matches!(
            check_batch(&checked(&future), NOW_MS, bounds),
            Err(ProduceRefusal::TimestampOutOfRange { timestamp_ms, .. }) if timestamp_ms == NOW_MS + 1001
        ));
        let none = make_batch(&[(b"k", b"v")], NO_TIMESTAMP);
        assert_eq!(check_batch(&checked(&none), NOW_MS, bounds), Ok(()));
        // Kafka's defaults: anything old, at most an hour ahead. Near i64::MIN the difference to
        // now passes i64::MAX: refused, as Kafka (whose subtraction wraps) refuses it too.
        for old in [0, -5, NOW_MS - 10 * 365 * 86_400_000] {
            let batch = make_batch(&[(b"k", b"v")], old);
            assert_eq!(check_batch(&checked(&batch), NOW_MS, DEFAULTS), Ok(()), "{old}");
        }
        let ancient = make_batch(&[(b"k", b"v")], i64::MIN + 5);
        assert!(check_batch(&checked(&ancient), NOW_MS, DEFAULTS).is_err());
        let far = make_batch(&[(b"k", b"v")], i64::MAX - 5);
        assert!(check_batch(&checked(&far), NOW_MS, DEFAULTS).is_err());
    }

    #[test]
    fn header_policies() {
        let good = make_batch(&[(b"k", b"v")], NOW_MS);
        assert_eq!(check_batch(&checked(&good), NOW_MS, DEFAULTS), Ok(()));
        let control = with_attributes(good.clone(), CONTROL_FLAG);
        assert_eq!(check_batch(&checked(&control), NOW_MS, DEFAULTS), Err(ProduceRefusal::ControlBatch));
        let mut producer = good.clone();
        producer[batch::PRODUCER_ID_AT..batch::PRODUCER_ID_AT + 8].copy_from_slice(&9i64.to_be_bytes());
        batch::reseal_crc(&mut producer);
        assert_eq!(
            check_batch(&checked(&producer), NOW_MS, DEFAULTS),
            Err(ProduceRefusal::SequenceMissing { producer_id: 9, base_sequence: -1 })
        );
        let mut offset = good.clone();
        batch::assign(&mut offset, 5, 0);
        assert_eq!(
            check_batch(&checked(&offset), NOW_MS, DEFAULTS),
            Err(ProduceRefusal::BaseOffsetNotZero { base_offset: 5 })
        );
    }

    /// Real clients' Produce frames (`testdata/captured-frames.txt`, see `codec/golden.rs`):
    /// their batches pass the record walk and every rule here, byte for byte as sent.
    #[test]
    fn captured_client_batches_pass() {
        use kafka_protocol::messages::ProduceRequest;

        let captured = include_str!("../testdata/captured-frames.txt");
        let mut walked = 0;
        for line in captured.lines().filter(|line| !line.starts_with('#')) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() != 4 || fields[0] != "0" {
                continue;
            }
            let hex = fields[3];
            let bytes: Vec<u8> =
                (0..hex.len()).step_by(2).map(|at| u8::from_str_radix(&hex[at..at + 2], 16).expect("hex")).collect();
            let frame = crate::codec::frame::decode_frame(bytes::Bytes::from(bytes)).expect("frame");
            let request: ProduceRequest = crate::codec::frame::decode_body(&frame).expect("produce");
            for partition in request.topic_data.iter().flat_map(|topic| &topic.partition_data) {
                let records = partition.records.as_ref().expect("records");
                assert_eq!(check_request_shape(records, frame.api_version), Ok(()), "{}", fields[2]);
                assert!(!is_transactional(records));
                for checked in batch::validate_all_with_records(records).expect("a real client's records walk") {
                    assert_eq!(check_batch(&checked, NOW_MS, DEFAULTS), Ok(()), "{}", fields[2]);
                    walked += 1;
                }
            }
        }
        assert!(walked >= 2, "captured Produce frames found: {walked}");
    }

    #[test]
    fn request_shape() {
        let good = make_batch(&[(b"k", b"v")], NOW_MS);
        assert_eq!(check_request_shape(&good, 9), Ok(()));
        let mut two = good.clone();
        two.extend_from_slice(&good);
        assert_eq!(check_request_shape(&two, 3), Err(ProduceRefusal::NotOneBatch { version: 3 }));
        let zstd = with_attributes(good.clone(), Codec::Zstd.id());
        assert_eq!(check_request_shape(&zstd, 6), Err(ProduceRefusal::ZstdBeforeV7 { version: 6 }));
        assert_eq!(check_request_shape(&zstd, 7), Ok(()));
        assert!(is_transactional(&with_attributes(good.clone(), TRANSACTIONAL_FLAG)));
        assert!(!is_transactional(&good));
        assert!(!is_transactional(&[1, 2, 3]));
        assert_eq!(check_request_shape(&[1, 2, 3], 9), Ok(()), "left to the full validation");
    }
}
