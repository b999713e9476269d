//! The instruction cost of the produce path's validation, before (CRC and header:
//! `batch::validate_all`) and after the record walk (`batch::validate_all_with_records`), on the
//! 16 KiB batches the criterion bench uses. A plain test checks both accept each batch; under
//! callgrind it is the repeatable measurement (instruction counts do not depend on a noisy
//! machine):
//!
//! ```text
//! VALIDATION_CASE=100B-none VALIDATION_ITERATIONS=1000 valgrind --tool=callgrind \
//!     --callgrind-out-file=cost.out target/release/deps/validation_cost-* --exact validation_cost
//! callgrind_annotate --inclusive=yes cost.out | grep validate_all
//! ```

use engine::batch;
use engine::testkit::make_sized_batch;

fn case(value_bytes: usize, zstd: bool) -> Vec<u8> {
    let records = 16 * 1024 / (value_bytes + 20);
    let plain = make_sized_batch(records, value_bytes, 11, 1_700_000_000_000);
    if !zstd {
        return plain;
    }
    let header = batch::validate_one(&plain).expect("valid");
    engine::compression::convert(&plain, &header, engine::CompressionType::Zstd { level: 3 })
        .expect("encodes")
        .expect("was uncompressed")
}

#[test]
fn validation_cost() {
    let only = std::env::var("VALIDATION_CASE").ok();
    let iterations: usize = std::env::var("VALIDATION_ITERATIONS").ok().and_then(|text| text.parse().ok()).unwrap_or(1);
    for (name, value_bytes, zstd) in
        [("100B-none", 100, false), ("100B-zstd", 100, true), ("1KiB-none", 1024, false), ("1KiB-zstd", 1024, true)]
    {
        if only.as_deref().is_some_and(|only| only != name) {
            continue;
        }
        let bytes = case(value_bytes, zstd);
        let records_bytes = case(value_bytes, false).len() - 61;
        for _ in 0..iterations {
            let headers = batch::validate_all(std::hint::black_box(&bytes)).expect("valid");
            assert_eq!(headers.len(), 1, "{name}");
        }
        for _ in 0..iterations {
            let checked = batch::validate_all_with_records(std::hint::black_box(&bytes)).expect("valid");
            assert_eq!(checked[0].records.records_bytes, records_bytes, "{name}");
        }
    }
}
