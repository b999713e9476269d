//! Seeded fuzzing of batch validation (header, CRC and the record walk), the check every produced
//! byte passes before it is stored:
//! mutations of valid batches (bit flips, poison lengths and counts, truncation, batches glued
//! together), with the CRC resealed on most of them so the mutations reach the checks behind it.
//! Validation must answer `Ok` or `Err` and never panic, and what it accepts must tile the input
//! exactly. The coverage-guided form of this is the `record_batch` cargo fuzz target
//! (`scripts/fuzz.sh`); this one runs in every test pass.
//!
//! `SEED=... cargo test -p skua-engine --release --test batch_fuzz -- --nocapture` replays;
//! `SKUA_BATCH_FUZZ_ROUNDS` sets the number of inputs (default 20,000).

use engine::batch::validate_all_with_records;
use engine::io::sim::SimRng;
use engine::testkit::{make_batch, make_sized_batch, reseal_every_batch};

fn seed_batch(rng: &mut SimRng) -> Vec<u8> {
    match rng.below(4) {
        0 => make_sized_batch(1 + rng.below(8) as usize, rng.below(200) as usize, rng.next_u64(), 1_700_000_000_000),
        1 => make_batch(&[(b"", b"")], 0),
        2 => {
            let mut two = make_sized_batch(2, 10, 1, 0);
            two.extend_from_slice(&make_sized_batch(3, 5, 2, 0));
            two
        }
        _ => make_batch(&[(b"key", b"value"), (b"k2", b"v2"), (b"", b"third")], 42),
    }
}

fn mutate(rng: &mut SimRng, bytes: &mut Vec<u8>) {
    const POISON: [&[u8]; 6] = [
        &[0x7f, 0xff, 0xff, 0xff],
        &[0xff, 0xff, 0xff, 0xff],
        &[0x09], // varint -5
        &[0x0d], // varint -7
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
        &[0x00, 0x00, 0x00, 0x00],
    ];
    for _ in 0..1 + rng.below(3) {
        if bytes.is_empty() {
            return;
        }
        let at = rng.below(bytes.len() as u64) as usize;
        match rng.below(5) {
            0 => bytes[at] ^= 1 << rng.below(8),
            1 => {
                let poison = POISON[rng.below(POISON.len() as u64) as usize];
                let end = (at + poison.len()).min(bytes.len());
                bytes[at..end].copy_from_slice(&poison[..end - at]);
            }
            2 => bytes.truncate(at),
            3 => bytes.insert(at, rng.next_u64() as u8),
            _ => {
                bytes.remove(at);
            }
        }
    }
}

#[test]
fn validation_never_panics_and_accepts_only_whole_batches() {
    let seed = std::env::var("SEED").ok().and_then(|text| text.parse().ok()).unwrap_or(0xba7c_f022u64);
    let rounds: u64 = std::env::var("SKUA_BATCH_FUZZ_ROUNDS").ok().and_then(|text| text.parse().ok()).unwrap_or(20_000);
    println!("batch_fuzz: SEED={seed} rounds={rounds}");
    let mut rng = SimRng::new(seed);
    let mut accepted = 0u64;
    for round in 0..rounds {
        let mut bytes = seed_batch(&mut rng);
        mutate(&mut rng, &mut bytes);
        if rng.chance(3, 4) {
            reseal_every_batch(&mut bytes);
        }
        let input = bytes.clone();
        let outcome = std::panic::catch_unwind(move || validate_all_with_records(&bytes));
        let Ok(result) = outcome else {
            panic!("SEED={seed} round {round}: validation panicked on {:02x?}", input);
        };
        if let Ok(batches) = result {
            accepted += 1;
            let covered: usize = batches.iter().map(|batch| batch.header.size_bytes).sum();
            assert_eq!(covered, input.len(), "SEED={seed} round {round}: accepted batches tile the input");
            for header in batches.iter().map(|batch| &batch.header) {
                // Kafka's rule: at least one record, numbered 0..count-1.
                assert!(
                    header.records_count >= 1 && header.last_offset_delta == header.records_count - 1,
                    "SEED={seed} round {round}: accepted {header:?}"
                );
            }
        }
    }
    println!("batch_fuzz: {rounds} inputs, {accepted} accepted");
    assert!(accepted > 0 && accepted < rounds, "the mutations produce both valid and invalid batches");
}
