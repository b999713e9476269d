//! Fuzz target: the bytes of one partition's records in a Produce request through the engine's
//! batch validation (header, CRC, the record walk and decompression). Must never panic, whatever
//! the lengths, counts and codecs claim. A fuzzer cannot forge CRC-32C, so when the first input
//! byte is odd the target reseals each batch's CRC first, letting the search reach the
//! record-level checks behind it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let mut bytes = rest.to_vec();
    if mode & 1 == 1 {
        engine::testkit::reseal_every_batch(&mut bytes);
    }
    let _ = engine::batch::validate_all_with_records(&bytes);
});
