//! Request decoding under hostile bytes: for every API and version the broker serves, seeded
//! random bodies and mutations of frames captured from real clients must decode to a value or an
//! error, never panic, and never make one allocation larger than the frame allows.
//!
//! The bound: an array count may not exceed the bytes left (each element takes at least one
//! byte), so one allocation is at most `ELEMENT_BYTES_MAX` bytes per frame byte. Before the patched
//! `kafka-protocol` (decision 0013) an 18-byte Metadata request asked for 154 GB here.
//!
//! `SEED=... cargo test -p skua-netd --release --test decode_bounds -- --nocapture` replays a seed;
//! `SKUA_DECODE_FUZZ_ROUNDS` sets how many inputs each API version gets (default 300).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use skua_netd::codec::frame::{decode_any, decode_frame};
use skua_netd::handlers::REGISTRY;

/// Counts the largest single allocation made on this thread while `WATCHING` is set.
struct Watching;

thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
    static LARGEST_BYTES: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the bookkeeping touches only thread-locals with
// const initialisers (no allocation, no re-entry).
unsafe impl GlobalAlloc for Watching {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = WATCHING.try_with(|watching| {
            if watching.get() {
                let _ = LARGEST_BYTES.try_with(|largest| largest.set(largest.get().max(layout.size())));
            }
        });
        // SAFETY: the caller's layout contract is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: `pointer` came from `System.alloc` with this layout.
        unsafe { System.dealloc(pointer, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Watching = Watching;

/// The largest in-memory size of one decoded request element (a struct in an array), with room
/// to spare: the biggest request structs of `kafka-protocol` 0.18 are a few hundred bytes.
const ELEMENT_BYTES_MAX: usize = 1024;
/// Allocations any decode may make whatever its input (strings of the header, small maps).
const ALLOCATION_SLACK_BYTES: usize = 64 * 1024;

/// Decodes `frame_bytes` (a request without its size prefix) and returns the largest single
/// allocation it made. Panics (failing the test) if a decoder panics.
fn largest_allocation(frame_bytes: &[u8]) -> usize {
    let bytes = Bytes::copy_from_slice(frame_bytes);
    LARGEST_BYTES.with(|largest| largest.set(0));
    WATCHING.with(|watching| watching.set(true));
    if let Ok(frame) = decode_frame(bytes) {
        let _ = decode_any(&frame);
    }
    WATCHING.with(|watching| watching.set(false));
    LARGEST_BYTES.with(Cell::get)
}

fn check(frame_bytes: &[u8], seed: u64, what: &str) {
    let largest = largest_allocation(frame_bytes);
    let bound = frame_bytes.len() * ELEMENT_BYTES_MAX + ALLOCATION_SLACK_BYTES;
    assert!(
        largest <= bound,
        "SEED={seed}: {what}: one allocation of {largest} bytes for a {}-byte frame (bound {bound}); frame {}",
        frame_bytes.len(),
        hex(frame_bytes)
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// xorshift64*: small, seeded, reproducible.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound.max(1) as u64) as usize
    }
    fn bytes(&mut self, length: usize) -> Vec<u8> {
        (0..length).map(|_| self.next() as u8).collect()
    }
}

/// A request header of the version `api_key`/`version` uses, with client id "fuzz".
fn header(api_key: ApiKey, version: i16) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(api_key as i16).to_be_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&7i32.to_be_bytes());
    out.extend_from_slice(&4i16.to_be_bytes());
    out.extend_from_slice(b"fuzz");
    if api_key.request_header_version(version) >= 2 {
        out.push(0); // no tagged fields
    }
    out
}

/// Bodies an attacker would try first: huge array counts (int32 and varint), over-long varints,
/// negative lengths, each at several places.
fn crafted_bodies() -> Vec<Vec<u8>> {
    let mut bodies = Vec::new();
    for prefix in [0usize, 1, 2, 4, 8, 9, 12, 16] {
        for poison in [
            vec![0x7f, 0xff, 0xff, 0xff],
            vec![0xff, 0xff, 0xff, 0xff, 0x0f],
            vec![0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
            vec![0x80, 0x80, 0x80, 0x80, 0x08],
            vec![0xff, 0xff, 0xff, 0xfb],
        ] {
            let mut body = vec![0u8; prefix];
            body.extend_from_slice(&poison);
            body.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]);
            bodies.push(body);
        }
    }
    bodies
}

fn captured_frames() -> Vec<Vec<u8>> {
    include_str!("../src/testdata/captured-frames.txt")
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split_whitespace().nth(3))
        .map(|hex| (0..hex.len()).step_by(2).map(|at| u8::from_str_radix(&hex[at..at + 2], 16).expect("hex")).collect())
        .collect()
}

#[test]
fn the_eighteen_byte_metadata_request_is_an_error_not_an_abort() {
    // The frame from the issue, without its size prefix: Metadata v1, topic count 0x7fffffff.
    let frame = [0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff];
    let decoded = decode_frame(Bytes::copy_from_slice(&frame)).expect("header");
    assert!(decode_any(&decoded).is_err(), "a count past the frame is malformed");
    check(&frame, 0, "Metadata v1 with 2^31-1 topics");
}

#[test]
fn every_api_version_decodes_hostile_bodies_within_the_bound() {
    let seed = std::env::var("SEED").ok().and_then(|text| text.parse().ok()).unwrap_or(0x5eed_0011u64);
    let rounds: usize = std::env::var("SKUA_DECODE_FUZZ_ROUNDS").ok().and_then(|text| text.parse().ok()).unwrap_or(300);
    println!("decode_bounds: SEED={seed} rounds={rounds}");
    let mut random = Random(seed | 1);
    let crafted = crafted_bodies();
    let mut inputs = 0usize;
    for handler in REGISTRY {
        for version in handler.min_version..=handler.max_version {
            let head = header(handler.api_key, version);
            for body in &crafted {
                let frame = [head.as_slice(), body.as_slice()].concat();
                check(&frame, seed, &format!("{:?} v{version} crafted", handler.api_key));
                inputs += 1;
            }
            for _ in 0..rounds {
                let length = random.below(96);
                let frame = [head.clone(), random.bytes(length)].concat();
                check(&frame, seed, &format!("{:?} v{version} random", handler.api_key));
                inputs += 1;
            }
        }
    }
    // Mutations of what real clients sent: flip, overwrite with poison, truncate.
    for original in captured_frames() {
        for _ in 0..rounds * 20 {
            let mut frame = original.clone();
            for _ in 0..1 + random.below(4) {
                let at = random.below(frame.len());
                match random.below(4) {
                    0 => frame[at] ^= 1 << random.below(8),
                    1 => frame[at] = 0xff,
                    2 => frame[at] = 0x7f,
                    _ => frame.truncate(at.max(8)),
                }
                if frame.len() <= 8 {
                    break;
                }
            }
            check(&frame, seed, "mutated captured frame");
            inputs += 1;
        }
    }
    println!("decode_bounds: {inputs} inputs, none allocated past the bound");
}

/// The admin APIs (AlterPartitionReassignments, ListPartitionReassignments, DescribeLogDirs,
/// IncrementalAlterConfigs) from well-formed requests: an absurd int32 or varint count or length
/// written at every offset of the body, and every truncation, decode within the bound.
#[test]
fn admin_requests_poisoned_at_every_offset_decode_within_the_bound() {
    let mut inputs = 0usize;
    for (api_key, version, frame) in common::admin_request_frames() {
        let body = &frame[4..];
        for poison in
            [&[0x7f, 0xff, 0xff, 0xff][..], &[0xff, 0xff, 0xff, 0xff, 0x0f][..], &[0x80, 0x80, 0x80, 0x80, 0x08][..]]
        {
            for at in 8..body.len() {
                let mut poisoned = body.to_vec();
                for (offset, byte) in poison.iter().enumerate() {
                    if let Some(slot) = poisoned.get_mut(at + offset) {
                        *slot = *byte;
                    }
                }
                check(&poisoned, 0, &format!("{api_key:?} v{version} poisoned at {at}"));
                inputs += 1;
            }
        }
        for length in 8..body.len() {
            check(&body[..length], 0, &format!("{api_key:?} v{version} truncated to {length}"));
            inputs += 1;
        }
    }
    assert!(inputs > 500, "every admin version poisoned ({inputs} inputs)");
}
