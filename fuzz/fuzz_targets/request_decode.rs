//! Fuzz target: a request frame (without its size prefix) through the broker's header decoding
//! and the generated body decoder of its API and version. Must never panic; run with
//! `-malloc_limit_mb` so one allocation past the bound (count bounded by the frame) is a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = skua_netd::codec::frame::decode_frame(bytes::Bytes::copy_from_slice(data)) {
        let _ = skua_netd::codec::frame::decode_any(&frame);
    }
});
