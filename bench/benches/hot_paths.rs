//! criterion microbenchmarks of the engine's hot functions, the ones every produced batch goes
//! through: validation (layout + CRC-32C, and with the record walk of every record, before and
//! after, on 16 KiB batches), offset assignment (rewriting two header fields), zstd re-encoding
//! and the conversion to each codec for `compression.type` topics (1 MiB batches), and netd's
//! fetch response assembly (hand-encoded segments, record bytes not copied) beside the generated
//! encoder that copies them. Run: `cargo bench -p skua-bench`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use engine::testkit::make_sized_batch;

fn batches(c: &mut Criterion) {
    for (name, records, value_bytes) in [("1KiB", 4usize, 200usize), ("16KiB", 64, 240), ("1MiB", 4096, 240)] {
        let batch = make_sized_batch(records, value_bytes, 7, 1_700_000_000_000);
        let mut group = c.benchmark_group(format!("batch-{name}"));
        group.throughput(Throughput::Bytes(batch.len() as u64));
        group.bench_function("validate (layout + crc32c)", |bench| {
            bench.iter(|| engine::batch::validate_all(std::hint::black_box(&batch)).expect("valid"))
        });
        group.bench_function("assign offsets", |bench| {
            bench.iter_batched_ref(
                || batch.clone(),
                |copy| engine::batch::assign(std::hint::black_box(copy), 42, 3),
                BatchSize::SmallInput,
            )
        });
        let header = engine::batch::validate_one(&batch).expect("valid");
        group.bench_function("zstd re-encode (level 1)", |bench| {
            bench.iter(|| {
                engine::compression::convert(
                    std::hint::black_box(&batch),
                    &header,
                    engine::CompressionType::Zstd { level: 1 },
                )
                .expect("encodes")
            })
        });
        group.finish();
    }
}

/// Codec conversion for `compression.type` topics (engine::compression::convert), per target,
/// from an uncompressed 1 MiB batch, and back to uncompressed from a zstd one.
fn conversions(c: &mut Criterion) {
    use engine::CompressionType;
    let batch = make_sized_batch(4096, 240, 7, 1_700_000_000_000);
    let header = engine::batch::validate_one(&batch).expect("valid");
    let mut group = c.benchmark_group("convert-1MiB");
    group.throughput(Throughput::Bytes(batch.len() as u64));
    for (name, target) in [
        ("to gzip (level -1)", CompressionType::Gzip { level: -1 }),
        ("to snappy", CompressionType::Snappy),
        ("to lz4", CompressionType::Lz4),
        ("to zstd (level 3)", CompressionType::Zstd { level: 3 }),
    ] {
        group.bench_function(name, |bench| {
            bench.iter(|| engine::compression::convert(std::hint::black_box(&batch), &header, target).expect("encodes"))
        });
    }
    let zstd = engine::compression::convert(&batch, &header, CompressionType::Zstd { level: 3 })
        .expect("encodes")
        .expect("was uncompressed");
    let zstd_header = engine::batch::validate_one(&zstd).expect("valid");
    group.bench_function("zstd to uncompressed", |bench| {
        bench.iter(|| {
            engine::compression::convert(std::hint::black_box(&zstd), &zstd_header, CompressionType::Uncompressed)
                .expect("decodes")
        })
    });
    group.finish();
}

/// A 16 KiB batch of `value_bytes`-byte values, uncompressed or zstd-compressed (level 3, as the
/// Java and librdkafka producers default to).
fn validation_batch(value_bytes: usize, zstd: bool) -> Vec<u8> {
    let records = 16 * 1024 / (value_bytes + 20);
    let batch = make_sized_batch(records, value_bytes, 11, 1_700_000_000_000);
    if !zstd {
        return batch;
    }
    let header = engine::batch::validate_one(&batch).expect("valid");
    engine::compression::convert(&batch, &header, engine::CompressionType::Zstd { level: 3 })
        .expect("encodes")
        .expect("was uncompressed")
}

/// The produce path's validation before record walking (CRC and header only) and after (CRC,
/// header and every record, decompressing zstd).
fn record_validation(c: &mut Criterion) {
    for (records_name, value_bytes) in [("100B", 100usize), ("1KiB", 1024)] {
        for zstd in [false, true] {
            let batch = validation_batch(value_bytes, zstd);
            let codec = if zstd { "zstd" } else { "none" };
            let mut group = c.benchmark_group(format!("validate-16KiB-{records_name}-records-{codec}"));
            group.throughput(Throughput::Bytes(batch.len() as u64));
            group.bench_function("before: crc only", |bench| {
                bench.iter(|| engine::batch::validate_all(std::hint::black_box(&batch)).expect("valid"))
            });
            group.bench_function("after: crc + record walk", |bench| {
                bench.iter(|| engine::batch::validate_all_with_records(std::hint::black_box(&batch)).expect("valid"))
            });
            group.finish();
        }
    }
}

/// A Fetch v12 response: 16 partitions of 64 KiB of records each.
fn fetch_response() -> kafka_protocol::messages::FetchResponse {
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    let mut response = kafka_protocol::messages::FetchResponse::default();
    let mut topic = FetchableTopicResponse::default();
    topic.topic = kafka_protocol::messages::TopicName(kafka_protocol::protocol::StrBytes::from_static_str("orders"));
    for partition in 0..16 {
        let mut data = PartitionData::default();
        data.partition_index = partition;
        data.high_watermark = 1_000_000;
        data.last_stable_offset = 1_000_000;
        data.records = Some(bytes::Bytes::from(vec![partition as u8; 64 * 1024]));
        topic.partitions.push(data);
    }
    response.responses.push(topic);
    response
}

fn fetch_assembly(c: &mut Criterion) {
    let response = fetch_response();
    let mut group = c.benchmark_group("fetch-response-16x64KiB");
    group.throughput(Throughput::Bytes(16 * 64 * 1024));
    group.bench_function("netd segments (no record copy)", |bench| {
        bench.iter(|| skua_netd::codec::fetch_encode::encode(12, 7, std::hint::black_box(&response)).expect("encodes"))
    });
    group.bench_function("kafka-protocol encode (copies records)", |bench| {
        bench.iter(|| {
            skua_netd::codec::frame::encode_response(
                kafka_protocol::messages::ApiKey::Fetch,
                12,
                7,
                std::hint::black_box(&response),
            )
            .expect("encodes")
        })
    });
    group.finish();
}

criterion_group!(hot_paths, batches, conversions, record_validation, fetch_assembly);
criterion_main!(hot_paths);
