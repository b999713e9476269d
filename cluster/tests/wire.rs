//! The CONTROLLER listener's framing (`cluster::wire`) through its public API: golden bytes for one
//! frame of each kind (the same hex is in `docs/formats/controller-wire.md`), seeded round trips of
//! random Raft messages compared field by field, and a seeded fuzz loop of random and mutated
//! frames that must answer `Ok` or `Err`, never panic, and never allocate more than a small
//! multiple of the frame (a counting allocator measures it).
//!
//! `SEED=... cargo test -p skua-cluster --test wire -- --nocapture` replays a randomized test;
//! `SKUA_WIRE_FUZZ_ROUNDS` sets the fuzz loop's inputs (default 20,000).

// raft-rs's messages are built field by field here, as raft-proto itself does (it allows the same
// lint): the tests read better as one assignment per field.
#![allow(clippy::field_reassign_with_default)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::{Bytes, BytesMut};
use cluster::wire::{Frame, FrameCodec, Hello, WireError, FRAME_BYTES_MAX_DEFAULT, WIRE_VERSION_MAX, WIRE_VERSION_MIN};
use cluster::{BrokerId, ClusterId};
use raft::prelude::{ConfState, Entry, EntryType, Message, MessageType, Snapshot, SnapshotMetadata};

/// Counts the bytes this thread allocates, so that a test measures its own decode and not the
/// tests running beside it.
struct CountingAllocator;

thread_local! {
    static ALLOCATED_BYTES: Cell<usize> = const { Cell::new(0) };
}

fn count_allocation(size_bytes: usize) {
    // `try_with`: the thread-local may be gone while a thread is torn down.
    let _ = ALLOCATED_BYTES.try_with(|allocated| allocated.set(allocated.get().saturating_add(size_bytes)));
}

// SAFETY: every call is forwarded to `System` with the caller's arguments.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation(layout.size());
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_allocation(layout.size());
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(pointer, layout) }
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation(new_size);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(pointer, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn allocated_bytes() -> usize {
    ALLOCATED_BYTES.with(Cell::get)
}

/// xorshift64*: tiny, seeded, good enough to pick fields and mutations.
struct Rng(u64);

impl Rng {
    /// Any seed works, 0 included (xorshift's state must not be 0), and neighbouring seeds give
    /// different streams.
    fn new(seed: u64) -> Rng {
        const MIX: u64 = 0x9e37_79b9_7f4a_7c15;
        let state = seed.wrapping_mul(MIX) ^ MIX;
        Rng(if state == 0 { MIX } else { state })
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound
    }

    fn index(&mut self, length: usize) -> usize {
        self.below(length as u64) as usize
    }

    fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        self.below(denominator) < numerator
    }

    /// Small values most of the time (the ones Raft sends), any value sometimes.
    fn field(&mut self) -> u64 {
        match self.below(4) {
            0 => 0,
            1 => self.below(1000),
            2 => u64::MAX - self.below(3),
            _ => self.next_u64(),
        }
    }

    fn bytes(&mut self, length_max: u64) -> Bytes {
        let length = self.below(length_max + 1) as usize;
        (0..length).map(|_| self.next_u64() as u8).collect::<Vec<u8>>().into()
    }

    fn node_ids(&mut self) -> Vec<u64> {
        (0..self.below(6)).map(|_| self.field()).collect()
    }
}

fn seed_from_env(default: u64) -> u64 {
    std::env::var("SEED").ok().and_then(|text| text.parse().ok()).unwrap_or(default)
}

const MESSAGE_TYPES: [MessageType; 19] = [
    MessageType::MsgHup,
    MessageType::MsgBeat,
    MessageType::MsgPropose,
    MessageType::MsgAppend,
    MessageType::MsgAppendResponse,
    MessageType::MsgRequestVote,
    MessageType::MsgRequestVoteResponse,
    MessageType::MsgSnapshot,
    MessageType::MsgHeartbeat,
    MessageType::MsgHeartbeatResponse,
    MessageType::MsgUnreachable,
    MessageType::MsgSnapStatus,
    MessageType::MsgCheckQuorum,
    MessageType::MsgTransferLeader,
    MessageType::MsgTimeoutNow,
    MessageType::MsgReadIndex,
    MessageType::MsgReadIndexResp,
    MessageType::MsgRequestPreVote,
    MessageType::MsgRequestPreVoteResponse,
];

const ENTRY_TYPES: [EntryType; 3] = [EntryType::EntryNormal, EntryType::EntryConfChange, EntryType::EntryConfChangeV2];

fn random_message(rng: &mut Rng) -> Message {
    let mut message = Message::default();
    message.msg_type = MESSAGE_TYPES[rng.index(MESSAGE_TYPES.len())];
    message.to = rng.field();
    message.from = rng.field();
    message.term = rng.field();
    message.log_term = rng.field();
    message.index = rng.field();
    message.commit = rng.field();
    message.commit_term = rng.field();
    message.request_snapshot = rng.field();
    message.reject = rng.chance(1, 2);
    message.reject_hint = rng.field();
    message.context = rng.bytes(8);
    message.priority = rng.field() as i64;
    message.deprecated_priority = rng.field();
    let entries: Vec<Entry> = (0..rng.below(5))
        .map(|_| {
            let mut entry = Entry::default();
            entry.entry_type = ENTRY_TYPES[rng.index(ENTRY_TYPES.len())];
            entry.term = rng.field();
            entry.index = rng.field();
            entry.data = rng.bytes(64);
            entry.context = rng.bytes(8);
            entry
        })
        .collect();
    message.entries = entries.into();
    if rng.chance(1, 3) {
        let mut snapshot = Snapshot::default();
        snapshot.data = rng.bytes(200);
        if rng.chance(3, 4) {
            let mut metadata = SnapshotMetadata::default();
            metadata.index = rng.field();
            metadata.term = rng.field();
            if rng.chance(3, 4) {
                let mut conf_state = ConfState::default();
                conf_state.voters = rng.node_ids();
                conf_state.learners = rng.node_ids();
                conf_state.voters_outgoing = rng.node_ids();
                conf_state.learners_next = rng.node_ids();
                conf_state.auto_leave = rng.chance(1, 2);
                metadata.set_conf_state(conf_state);
            }
            snapshot.set_metadata(metadata);
        }
        message.set_snapshot(snapshot);
    }
    message
}

/// Every field raft-rs 0.7 uses, one by one, so that a failure names the field; then `==` for
/// whatever the list misses (presence of the optional parts included).
fn assert_messages_equal(decoded: &Message, original: &Message, context: &str) {
    assert_eq!(decoded.msg_type, original.msg_type, "{context}: msg_type");
    assert_eq!(decoded.to, original.to, "{context}: to");
    assert_eq!(decoded.from, original.from, "{context}: from");
    assert_eq!(decoded.term, original.term, "{context}: term");
    assert_eq!(decoded.log_term, original.log_term, "{context}: log_term");
    assert_eq!(decoded.index, original.index, "{context}: index");
    assert_eq!(decoded.commit, original.commit, "{context}: commit");
    assert_eq!(decoded.commit_term, original.commit_term, "{context}: commit_term");
    assert_eq!(decoded.request_snapshot, original.request_snapshot, "{context}: request_snapshot");
    assert_eq!(decoded.reject, original.reject, "{context}: reject");
    assert_eq!(decoded.reject_hint, original.reject_hint, "{context}: reject_hint");
    assert_eq!(decoded.context, original.context, "{context}: context");
    assert_eq!(decoded.priority, original.priority, "{context}: priority");
    assert_eq!(decoded.deprecated_priority, original.deprecated_priority, "{context}: deprecated_priority");
    assert_eq!(decoded.entries.len(), original.entries.len(), "{context}: entry count");
    for (position, (decoded_entry, entry)) in decoded.entries.iter().zip(original.entries.iter()).enumerate() {
        assert_eq!(decoded_entry.entry_type, entry.entry_type, "{context}: entry {position} entry_type");
        assert_eq!(decoded_entry.term, entry.term, "{context}: entry {position} term");
        assert_eq!(decoded_entry.index, entry.index, "{context}: entry {position} index");
        assert_eq!(decoded_entry.data, entry.data, "{context}: entry {position} data");
        assert_eq!(decoded_entry.context, entry.context, "{context}: entry {position} context");
    }
    assert_eq!(decoded.has_snapshot(), original.has_snapshot(), "{context}: snapshot present");
    let (decoded_snapshot, snapshot) = (decoded.get_snapshot(), original.get_snapshot());
    assert_eq!(decoded_snapshot.data, snapshot.data, "{context}: snapshot data");
    assert_eq!(decoded_snapshot.has_metadata(), snapshot.has_metadata(), "{context}: snapshot metadata present");
    let (decoded_metadata, metadata) = (decoded_snapshot.get_metadata(), snapshot.get_metadata());
    assert_eq!(decoded_metadata.index, metadata.index, "{context}: snapshot index");
    assert_eq!(decoded_metadata.term, metadata.term, "{context}: snapshot term");
    assert_eq!(decoded_metadata.has_conf_state(), metadata.has_conf_state(), "{context}: conf state present");
    let (decoded_conf, conf) = (decoded_metadata.get_conf_state(), metadata.get_conf_state());
    assert_eq!(decoded_conf.voters, conf.voters, "{context}: voters");
    assert_eq!(decoded_conf.learners, conf.learners, "{context}: learners");
    assert_eq!(decoded_conf.voters_outgoing, conf.voters_outgoing, "{context}: voters_outgoing");
    assert_eq!(decoded_conf.learners_next, conf.learners_next, "{context}: learners_next");
    assert_eq!(decoded_conf.auto_leave, conf.auto_leave, "{context}: auto_leave");
    assert_eq!(decoded, original, "{context}: whole message");
}

fn encode(frame: &Frame) -> BytesMut {
    let mut buffer = BytesMut::new();
    FrameCodec::default().encode(frame, &mut buffer).expect("the frame fits the default limit");
    buffer
}

fn decode_all(bytes: &[u8]) -> Frame {
    let mut buffer = BytesMut::from(bytes);
    let frame = FrameCodec::default().decode(&mut buffer).expect("a valid frame").expect("a whole frame");
    assert!(buffer.is_empty(), "the frame is consumed exactly");
    frame
}

fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|byte| !byte.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).expect("ascii"), 16).expect("hex digits"))
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn check_golden(frame: Frame, expected_hex: &str) {
    let encoded = encode(&frame);
    assert_eq!(to_hex(&encoded), to_hex(&hex(expected_hex)), "encoding of {frame:?}");
    assert_eq!(decode_all(&encoded), frame);
}

fn golden_hello() -> Frame {
    Frame::Hello(Hello {
        version_min: 1,
        version_max: 1,
        node_id: BrokerId(2),
        cluster_id: ClusterId([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]),
    })
}

/// A leader's append: one normal entry.
fn golden_append() -> Message {
    let mut message = Message::default();
    message.msg_type = MessageType::MsgAppend;
    message.to = 2;
    message.from = 1;
    message.term = 3;
    message.log_term = 2;
    message.index = 5;
    message.commit = 5;
    let mut entry = Entry::default();
    entry.entry_type = EntryType::EntryNormal;
    entry.term = 3;
    entry.index = 6;
    entry.data = Bytes::from_static(b"abc");
    message.entries = vec![entry].into();
    message
}

/// A leader's snapshot: data, metadata and a configuration of three voters and one learner.
fn golden_snapshot() -> Message {
    let mut message = Message::default();
    message.msg_type = MessageType::MsgSnapshot;
    message.to = 3;
    message.from = 1;
    message.term = 4;
    let mut conf_state = ConfState::default();
    conf_state.voters = vec![1, 2, 3];
    conf_state.learners = vec![4];
    let mut metadata = SnapshotMetadata::default();
    metadata.index = 9;
    metadata.term = 4;
    metadata.set_conf_state(conf_state);
    let mut snapshot = Snapshot::default();
    snapshot.data = Bytes::from_static(b"img");
    snapshot.set_metadata(metadata);
    message.set_snapshot(snapshot);
    message
}

// The same bytes, field by field, are in `docs/formats/controller-wire.md`.
const GOLDEN_HELLO: &str = "0000001c 01 01  534b5541 01 01 00000002 000102030405060708090a0b0c0d0e0f";
const GOLDEN_APPEND: &str = "00000080 01 02  03 00
    0000000000000002 0000000000000001 0000000000000003 0000000000000002 0000000000000005
    0000000000000005 0000000000000000 0000000000000000 0000000000000000 0000000000000000
    0000000000000000 00000000
    00000001  00 0000000000000003 0000000000000006 00000003 616263 00000000";
const GOLDEN_SNAPSHOT: &str = "000000ae 01 02  07 02
    0000000000000003 0000000000000001 0000000000000004 0000000000000000 0000000000000000
    0000000000000000 0000000000000000 0000000000000000 0000000000000000 0000000000000000
    0000000000000000 00000000
    00000000
    01 00000003 696d67
    01 0000000000000009 0000000000000004
    00 00000003 0000000000000001 0000000000000002 0000000000000003
    00000001 0000000000000004 00000000 00000000";
const GOLDEN_REQUEST: &str = "0000000c 01 03  0000000000000007 6869";
const GOLDEN_RESPONSE: &str = "0000000c 01 04  0000000000000007 6f6b";

#[test]
fn golden_frames() {
    check_golden(golden_hello(), GOLDEN_HELLO);
    check_golden(Frame::Raft(golden_append()), GOLDEN_APPEND);
    check_golden(Frame::Raft(golden_snapshot()), GOLDEN_SNAPSHOT);
    check_golden(Frame::Request { correlation_id: 7, body: Bytes::from_static(b"hi") }, GOLDEN_REQUEST);
    check_golden(Frame::Response { correlation_id: 7, body: Bytes::from_static(b"ok") }, GOLDEN_RESPONSE);
}

#[test]
fn the_format_document_shows_the_same_golden_frames() {
    let document: String = include_str!("../../docs/formats/controller-wire.md").split_whitespace().collect();
    for golden in [GOLDEN_HELLO, GOLDEN_APPEND, GOLDEN_SNAPSHOT, GOLDEN_REQUEST, GOLDEN_RESPONSE] {
        let golden: String = golden.split_whitespace().collect();
        assert!(document.contains(&golden), "docs/formats/controller-wire.md lacks {golden}");
    }
}

#[test]
fn random_messages_round_trip() {
    let seed = seed_from_env(0x5eed_0013);
    println!("random_messages_round_trip: SEED={seed}");
    let mut rng = Rng::new(seed);
    let codec = FrameCodec::default();
    let mut buffer = BytesMut::new();
    let mut originals = Vec::new();
    for round in 0..2_000 {
        let message = random_message(&mut rng);
        codec.encode(&Frame::Raft(message.clone()), &mut buffer).expect("fits the default limit");
        originals.push(message);
        // Several frames queue up in one buffer, as on a stream, and come out in order.
        if rng.chance(1, 4) || round == 1_999 {
            for (position, original) in originals.drain(..).enumerate() {
                let context = format!("SEED={seed} round {round} frame {position}");
                match codec.decode(&mut buffer) {
                    Ok(Some(Frame::Raft(decoded))) => assert_messages_equal(&decoded, &original, &context),
                    other => panic!("{context}: {other:?}"),
                }
            }
            assert!(buffer.is_empty(), "SEED={seed}: every frame consumed");
        }
    }
}

#[test]
fn hello_round_trips_and_every_kind_decodes_in_sequence() {
    let frames = [
        golden_hello(),
        Frame::Raft(golden_append()),
        Frame::Request { correlation_id: u64::MAX, body: Bytes::new() },
        Frame::Response { correlation_id: 0, body: Bytes::from_static(&[0; 300]) },
        Frame::Raft(Message::default()),
    ];
    let codec = FrameCodec::default();
    let mut buffer = BytesMut::new();
    for frame in &frames {
        codec.encode(frame, &mut buffer).expect("fits");
    }
    for frame in &frames {
        assert_eq!(codec.decode(&mut buffer), Ok(Some(frame.clone())));
    }
    assert_eq!(codec.decode(&mut buffer), Ok(None));
}

#[test]
fn every_prefix_of_a_frame_waits_for_more_bytes() {
    let codec = FrameCodec::default();
    for hex_text in [GOLDEN_HELLO, GOLDEN_APPEND, GOLDEN_SNAPSHOT, GOLDEN_REQUEST, GOLDEN_RESPONSE] {
        let bytes = hex(hex_text);
        for cut in 0..bytes.len() {
            let mut buffer = BytesMut::from(&bytes[..cut]);
            assert_eq!(codec.decode(&mut buffer), Ok(None), "{cut} of {} bytes", bytes.len());
            assert_eq!(&buffer[..], &bytes[..cut], "nothing consumed before the frame is whole");
        }
    }
}

#[test]
fn a_length_above_the_limit_is_refused_from_its_four_bytes() {
    let codec = FrameCodec::new(1024);
    assert_eq!(codec.frame_bytes_max(), 1024);
    let mut at_limit = BytesMut::from(&[0x00, 0x00, 0x04, 0x00][..]);
    assert_eq!(codec.decode(&mut at_limit), Ok(None), "1024 is allowed: wait for it");
    let mut above = BytesMut::from(&[0x00, 0x00, 0x04, 0x01][..]);
    assert_eq!(codec.decode(&mut above), Err(WireError::FrameTooLarge { length_bytes: 1025, frame_bytes_max: 1024 }));
    let mut hostile = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
    assert!(matches!(FrameCodec::default().decode(&mut hostile), Err(WireError::FrameTooLarge { .. })));
    assert_eq!(FrameCodec::default().frame_bytes_max(), FRAME_BYTES_MAX_DEFAULT);
}

#[test]
fn a_frame_above_the_limit_or_a_bad_hello_is_not_encoded() {
    let codec = FrameCodec::new(64);
    let mut buffer = BytesMut::from(&b"earlier"[..]);
    let frame = Frame::Request { correlation_id: 1, body: Bytes::from_static(&[7; 55]) };
    assert_eq!(
        codec.encode(&frame, &mut buffer),
        Err(WireError::FrameTooLarge { length_bytes: 65, frame_bytes_max: 64 })
    );
    assert_eq!(&buffer[..], b"earlier", "the buffer is left as it was");
    let fits = Frame::Request { correlation_id: 1, body: Bytes::from_static(&[7; 54]) };
    codec.encode(&fits, &mut buffer).expect("64 bytes fit a 64-byte limit");
    let mut buffer = BytesMut::new();
    let negative = Frame::Hello(Hello::new(BrokerId(-1), ClusterId([0; 16])));
    assert_eq!(codec.encode(&negative, &mut buffer), Err(WireError::NegativeNodeId { node_id: -1 }));
    let empty_range = Frame::Hello(Hello { version_min: 2, ..Hello::new(BrokerId(1), ClusterId([0; 16])) });
    assert_eq!(
        codec.encode(&empty_range, &mut buffer),
        Err(WireError::BadVersionRange { version_min: 2, version_max: 1 })
    );
    assert!(buffer.is_empty(), "nothing written for a refused frame");
}

#[test]
fn headers_are_judged_before_the_body_arrives() {
    let codec = FrameCodec::default();
    let cases: [(&[u8], WireError); 4] = [
        (&[0, 0, 0, 1], WireError::FrameTooShort { length_bytes: 1 }),
        (&[0, 0, 1, 0, 2], WireError::UnsupportedVersion { version: 2 }),
        (&[0, 0, 1, 0, 0], WireError::UnsupportedVersion { version: 0 }),
        (&[0, 0, 1, 0, 1, 9], WireError::UnknownKind { kind: 9 }),
    ];
    for (bytes, error) in cases {
        assert_eq!(codec.decode(&mut BytesMut::from(bytes)), Err(error), "{bytes:02x?}");
    }
}

/// Decodes `bytes` (a whole frame) after patching the byte at `at`.
fn decode_patched(hex_text: &str, at: usize, value: u8) -> Result<Option<Frame>, WireError> {
    let mut bytes = hex(hex_text);
    bytes[at] = value;
    FrameCodec::default().decode(&mut BytesMut::from(&bytes[..]))
}

#[test]
fn unknown_types_flags_and_foreign_hellos_are_refused() {
    // Offsets: 4 length, 1 version, 1 kind, then the body.
    assert_eq!(decode_patched(GOLDEN_APPEND, 6, 19), Err(WireError::UnknownMessageType { value: 19 }));
    assert_eq!(decode_patched(GOLDEN_APPEND, 6, 0xff), Err(WireError::UnknownMessageType { value: 0xff }));
    assert_eq!(
        decode_patched(GOLDEN_APPEND, 7, 0x04),
        Err(WireError::UnknownFlags { field: "message flags", flags: 0x04 })
    );
    let entry_type_at = 4 + 2 + 2 + 11 * 8 + 4 + 4;
    assert_eq!(decode_patched(GOLDEN_APPEND, entry_type_at, 3), Err(WireError::UnknownEntryType { value: 3 }));
    assert_eq!(decode_patched(GOLDEN_APPEND, 7, 0x02), Err(WireError::Truncated { field: "snapshot flags" }));
    assert_eq!(decode_patched(GOLDEN_HELLO, 6, b'K'), Err(WireError::BadMagic { found: *b"KKUA" }));
    assert_eq!(decode_patched(GOLDEN_HELLO, 10, 2), Err(WireError::BadVersionRange { version_min: 2, version_max: 1 }));
    assert_eq!(decode_patched(GOLDEN_HELLO, 12, 0x80), Err(WireError::NegativeNodeId { node_id: i32::MIN + 2 }));
    // A Kafka client's ApiVersions request on the CONTROLLER port: api key 18 in version 0.
    let kafka_request = hex("00000016 0012 0003 00000001 0007 6b61666b612d63 00");
    assert_eq!(
        FrameCodec::default().decode(&mut BytesMut::from(&kafka_request[..])),
        Err(WireError::UnsupportedVersion { version: 0 })
    );
    // A frame longer than its fields.
    let mut long_hello = hex(GOLDEN_HELLO);
    long_hello[3] += 1;
    long_hello.push(0);
    assert_eq!(
        FrameCodec::default().decode(&mut BytesMut::from(&long_hello[..])),
        Err(WireError::TrailingBytes { trailing_bytes: 1 })
    );
}

#[test]
fn counts_are_bounded_by_the_bytes_left() {
    // The golden append claiming 4 billion entries in its last 28 bytes: refused on the count,
    // before any reservation (the fuzz loop below measures allocations in general).
    let mut message = hex(GOLDEN_APPEND);
    let count_at = 4 + 2 + 2 + 11 * 8 + 4;
    message[count_at..count_at + 4].copy_from_slice(&[0xff; 4]);
    let before = allocated_bytes();
    let result = FrameCodec::default().decode(&mut BytesMut::from(&message[..]));
    assert!(allocated_bytes() - before < 4096, "allocated {} bytes", allocated_bytes() - before);
    assert_eq!(result, Err(WireError::CountTooLarge { field: "entry count", count: u32::MAX, remaining_bytes: 28 }));
}

#[test]
fn hello_refuses_foreign_clusters_duplicate_and_unexpected_nodes() {
    let cluster = ClusterId([7; 16]);
    let unknown = ClusterId([0; 16]);
    let local = Hello::new(BrokerId(1), cluster);
    assert_eq!((local.version_min, local.version_max), (WIRE_VERSION_MIN, WIRE_VERSION_MAX));
    assert_eq!(local.accept(&Hello::new(BrokerId(2), cluster), Some(BrokerId(2))), Ok(WIRE_VERSION_MAX));
    assert_eq!(local.accept(&Hello::new(BrokerId(2), cluster), None), Ok(WIRE_VERSION_MAX));
    assert_eq!(local.accept(&Hello::new(BrokerId(2), unknown), None), Ok(WIRE_VERSION_MAX), "peer not formed yet");
    assert_eq!(Hello::new(BrokerId(1), unknown).accept(&Hello::new(BrokerId(2), cluster), None), Ok(WIRE_VERSION_MAX));
    assert_eq!(
        local.accept(&Hello::new(BrokerId(2), ClusterId([8; 16])), None),
        Err(WireError::ClusterMismatch { local: [7; 16], remote: [8; 16] })
    );
    assert_eq!(
        local.accept(&Hello::new(BrokerId(1), cluster), None),
        Err(WireError::DuplicateNodeId { node_id: BrokerId(1) })
    );
    assert_eq!(
        local.accept(&Hello::new(BrokerId(3), cluster), Some(BrokerId(2))),
        Err(WireError::UnexpectedNode { expected: BrokerId(2), remote: BrokerId(3) })
    );
    let newer = Hello { version_min: 2, version_max: 4, ..Hello::new(BrokerId(2), cluster) };
    assert_eq!(
        local.accept(&newer, None),
        Err(WireError::NoCommonVersion { local_min: 1, local_max: 1, remote_min: 2, remote_max: 4 })
    );
    let wider = Hello { version_min: 1, version_max: 4, ..Hello::new(BrokerId(2), cluster) };
    assert_eq!(local.accept(&wider, None), Ok(1), "the newest version both speak");
}

/// A valid frame to start mutating from.
fn seed_frame(rng: &mut Rng) -> Vec<u8> {
    let frame = match rng.below(4) {
        0 => Frame::Hello(Hello::new(BrokerId(rng.below(100) as i32), ClusterId([rng.next_u64() as u8; 16]))),
        1 => Frame::Request { correlation_id: rng.field(), body: rng.bytes(40) },
        2 => Frame::Response { correlation_id: rng.field(), body: rng.bytes(40) },
        _ => Frame::Raft(random_message(rng)),
    };
    encode(&frame).to_vec()
}

fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    const POISON: [&[u8]; 4] =
        [&[0xff, 0xff, 0xff, 0xff], &[0x7f, 0xff, 0xff, 0xff], &[0x00, 0x00, 0x00, 0x00], &[0x00, 0x01, 0x00, 0x00]];
    for _ in 0..1 + rng.below(3) {
        if bytes.is_empty() {
            return;
        }
        let at = rng.index(bytes.len());
        match rng.below(5) {
            0 => bytes[at] ^= 1 << rng.below(8),
            1 => {
                let poison = POISON[rng.index(POISON.len())];
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

/// Rewrites the length prefix to cover the bytes that follow, so that a mutation reaches the body.
fn reseal_length(bytes: &mut [u8]) {
    if let Some(length) = bytes.len().checked_sub(4).and_then(|length| u32::try_from(length).ok()) {
        bytes[..4].copy_from_slice(&length.to_be_bytes());
    }
}

/// A decode may allocate what the decoded values need (a Raft entry is about 100 bytes in memory
/// for at least 25 on the wire) and a few fixed headers, never what a count or length claims.
const DECODE_ALLOCATION_PER_FRAME_BYTE_MAX: usize = 8;
const DECODE_ALLOCATION_FIXED_BYTES_MAX: usize = 4096;

#[test]
fn random_and_mutated_frames_never_panic_nor_overallocate() {
    let seed = seed_from_env(0xf00d_0013);
    let rounds: u64 = std::env::var("SKUA_WIRE_FUZZ_ROUNDS").ok().and_then(|text| text.parse().ok()).unwrap_or(20_000);
    println!("wire fuzz: SEED={seed} rounds={rounds}");
    let mut rng = Rng::new(seed);
    let codec = FrameCodec::new(1 << 20);
    let (mut accepted, mut refused, mut waiting) = (0u64, 0u64, 0u64);
    for round in 0..rounds {
        let mut bytes = if rng.chance(1, 5) {
            // Random bytes behind a plausible header, so that the body parsers see garbage.
            let mut random = vec![0, 0, 0, 0, 1, 1 + rng.below(4) as u8];
            random.extend(rng.bytes(160));
            random
        } else {
            let mut frame = seed_frame(&mut rng);
            mutate(&mut rng, &mut frame);
            frame
        };
        if rng.chance(3, 4) {
            reseal_length(&mut bytes);
        }
        let input_bytes = bytes.len();
        let mut buffer = BytesMut::from(&bytes[..]);
        let before = allocated_bytes();
        let result = codec.decode(&mut buffer);
        let allocated = allocated_bytes() - before;
        assert!(
            allocated <= DECODE_ALLOCATION_PER_FRAME_BYTE_MAX * input_bytes + DECODE_ALLOCATION_FIXED_BYTES_MAX,
            "SEED={seed} round {round}: {allocated} bytes allocated decoding {input_bytes} bytes {bytes:02x?}"
        );
        match result {
            Ok(Some(frame)) => {
                accepted += 1;
                // Our encoding is canonical: what was accepted re-encodes to the same bytes.
                let consumed = input_bytes - buffer.len();
                assert_eq!(to_hex(&encode(&frame)), to_hex(&bytes[..consumed]), "SEED={seed} round {round}: {frame:?}");
            }
            Ok(None) => waiting += 1,
            Err(_) => refused += 1,
        }
    }
    println!("wire fuzz: accepted={accepted} refused={refused} waiting={waiting}");
    assert!(accepted > rounds / 20 && refused > rounds / 20, "the mutations reach both outcomes");
}

#[test]
fn many_empty_entries_stay_within_the_allocation_bound() {
    let mut message = Message::default();
    message.msg_type = MessageType::MsgAppend;
    message.entries = vec![Entry::default(); 10_000].into();
    let bytes = encode(&Frame::Raft(message.clone()));
    let mut buffer = BytesMut::from(&bytes[..]);
    let before = allocated_bytes();
    let decoded = FrameCodec::default().decode(&mut buffer);
    let allocated = allocated_bytes() - before;
    println!("{allocated} bytes allocated for {} bytes, Entry is {} bytes", bytes.len(), std::mem::size_of::<Entry>());
    assert!(allocated <= DECODE_ALLOCATION_PER_FRAME_BYTE_MAX * bytes.len() + DECODE_ALLOCATION_FIXED_BYTES_MAX);
    assert_eq!(decoded, Ok(Some(Frame::Raft(message))));
}
