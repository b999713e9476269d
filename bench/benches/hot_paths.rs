//! criterion microbenchmarks of the engine's hot functions, the ones every produced batch goes
//! through: validation (layout + CRC-32C), offset assignment (rewriting two header fields), and
//! zstd re-encoding for `compression.type=zstd` topics. Run: `cargo bench -p skua-bench`.
//! (Fetch response assembly lives in the netd binary and is measured end to end by `bench`.)

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
            bench.iter(|| engine::compression::zstd_encode(std::hint::black_box(&batch), &header, 1).expect("encodes"))
        });
        group.finish();
    }
}

criterion_group!(hot_paths, batches);
criterion_main!(hot_paths);
