//! Fuzz target: the input is the first segment file of a partition log on the simulated file
//! system; opening the log runs recovery (the validating scan, truncation of what does not
//! verify). Then every batch recovery kept must be readable, and an append must still work.
//! When the first input byte is odd, each batch's CRC is resealed first (a fuzzer cannot forge
//! CRC-32C), so the search reaches the offset and length rules behind it.
#![no_main]

use std::path::Path;

use engine::io::sim::{SimFaults, SimFs};
use engine::io::{FileSystem, OpenOptions};
use engine::{LeaderEpoch, LogConfig, Offset, Shard, ShardConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let Some((&mode, rest)) = input.split_first() else { return };
    let mut data = rest.to_vec();
    if mode & 1 == 1 {
        engine::testkit::reseal_every_batch(&mut data);
    }
    let data = &data[..];
    let sim = SimFs::new(1, SimFaults::default());
    let dir = Path::new("/fuzz/p-0");
    {
        let mut fs = sim.clone();
        fs.create_dir_all(dir).expect("dir");
        let file = fs.open(&dir.join("00000000000000000000.log"), OpenOptions::CREATE).expect("create");
        file.write_at(data, 0).expect("write");
        file.sync_data().expect("sync");
    }
    let mut shard = Shard::new(Box::new(sim), ShardConfig::default()).expect("shard");
    let (log, report) = shard.open_log(dir, LogConfig::default(), 0).expect("recovery never fails on bad bytes");
    let mut start = report.log_start_offset;
    while start < report.log_end_offset {
        let read = shard.read(log, start, 1 << 20, None).expect("what recovery kept is readable");
        let bytes = replica::read::gather_chunks(&read.chunks, read.size_bytes)
            .expect("file ranges readable");
        let mut at = 0;
        let mut next = start;
        while at < bytes.len() {
            let header = engine::batch::validate_one(&bytes[at..]).expect("recovery kept only valid batches");
            assert!(header.last_offset() >= start.0, "a read returns batches at or past its start");
            next = Offset(header.last_offset() + 1);
            at += header.size_bytes;
        }
        assert!(next > start, "a read below the log end returns data");
        start = next;
    }
    let batch = engine::testkit::make_sized_batch(1, 10, 1, 0);
    let info = shard.append(log, &batch, LeaderEpoch(0), 0).expect("append after recovery");
    assert_eq!(info.base_offset, report.log_end_offset, "appends continue where recovery ended");
});
