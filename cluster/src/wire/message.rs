//! Raft messages in Skua's own binary layout (version 1), so that no protobuf is ever parsed
//! (protobuf 2 has RUSTSEC-2024-0437). Every field raft-rs 0.7 reads or writes is carried;
//! `Entry::sync_log` (deprecated, unused by raft-rs 0.7) and protobuf's unknown fields are not.
//! The layout is the table in `docs/formats/controller-wire.md`.
//!
//! Must not know: frames, connections, what entries or snapshots contain.

use bytes::{BufMut, BytesMut};
use raft::prelude::{ConfState, Entry, EntryType, Message, MessageType, Snapshot, SnapshotMetadata};

use super::reader::BodyReader;
use super::WireError;

const MESSAGE_FLAG_REJECT: u8 = 0x01;
const MESSAGE_FLAG_SNAPSHOT: u8 = 0x02;
const MESSAGE_FLAGS_KNOWN: u8 = MESSAGE_FLAG_REJECT | MESSAGE_FLAG_SNAPSHOT;

const SNAPSHOT_FLAG_METADATA: u8 = 0x01;
const SNAPSHOT_FLAGS_KNOWN: u8 = SNAPSHOT_FLAG_METADATA;

const METADATA_FLAG_CONF_STATE: u8 = 0x01;
const METADATA_FLAGS_KNOWN: u8 = METADATA_FLAG_CONF_STATE;

const CONF_STATE_FLAG_AUTO_LEAVE: u8 = 0x01;
const CONF_STATE_FLAGS_KNOWN: u8 = CONF_STATE_FLAG_AUTO_LEAVE;

/// The fewest bytes an entry takes: type, term, index and two empty byte strings.
const ENTRY_BYTES_MIN: usize = 1 + 8 + 8 + 4 + 4;
/// A node id in a configuration list.
const NODE_ID_BYTES: usize = 8;

/// Our own numbering of message types: frozen, one table in the format document. (They happen
/// to equal raft-rs's protobuf numbers; the match keeps them ours if raft-rs renumbers.)
fn message_type_to_wire(message_type: MessageType) -> u8 {
    match message_type {
        MessageType::MsgHup => 0,
        MessageType::MsgBeat => 1,
        MessageType::MsgPropose => 2,
        MessageType::MsgAppend => 3,
        MessageType::MsgAppendResponse => 4,
        MessageType::MsgRequestVote => 5,
        MessageType::MsgRequestVoteResponse => 6,
        MessageType::MsgSnapshot => 7,
        MessageType::MsgHeartbeat => 8,
        MessageType::MsgHeartbeatResponse => 9,
        MessageType::MsgUnreachable => 10,
        MessageType::MsgSnapStatus => 11,
        MessageType::MsgCheckQuorum => 12,
        MessageType::MsgTransferLeader => 13,
        MessageType::MsgTimeoutNow => 14,
        MessageType::MsgReadIndex => 15,
        MessageType::MsgReadIndexResp => 16,
        MessageType::MsgRequestPreVote => 17,
        MessageType::MsgRequestPreVoteResponse => 18,
    }
}

fn message_type_from_wire(value: u8) -> Result<MessageType, WireError> {
    Ok(match value {
        0 => MessageType::MsgHup,
        1 => MessageType::MsgBeat,
        2 => MessageType::MsgPropose,
        3 => MessageType::MsgAppend,
        4 => MessageType::MsgAppendResponse,
        5 => MessageType::MsgRequestVote,
        6 => MessageType::MsgRequestVoteResponse,
        7 => MessageType::MsgSnapshot,
        8 => MessageType::MsgHeartbeat,
        9 => MessageType::MsgHeartbeatResponse,
        10 => MessageType::MsgUnreachable,
        11 => MessageType::MsgSnapStatus,
        12 => MessageType::MsgCheckQuorum,
        13 => MessageType::MsgTransferLeader,
        14 => MessageType::MsgTimeoutNow,
        15 => MessageType::MsgReadIndex,
        16 => MessageType::MsgReadIndexResp,
        17 => MessageType::MsgRequestPreVote,
        18 => MessageType::MsgRequestPreVoteResponse,
        _ => return Err(WireError::UnknownMessageType { value }),
    })
}

fn entry_type_to_wire(entry_type: EntryType) -> u8 {
    match entry_type {
        EntryType::EntryNormal => 0,
        EntryType::EntryConfChange => 1,
        EntryType::EntryConfChangeV2 => 2,
    }
}

fn entry_type_from_wire(value: u8) -> Result<EntryType, WireError> {
    Ok(match value {
        0 => EntryType::EntryNormal,
        1 => EntryType::EntryConfChange,
        2 => EntryType::EntryConfChangeV2,
        _ => return Err(WireError::UnknownEntryType { value }),
    })
}

/// Writes a `u32` length and the bytes; a field too long for its length is refused (the frame
/// limit, at most `u32::MAX`, refuses it anyway, but not before we would have written it).
fn put_bytes(dst: &mut BytesMut, field: &'static str, bytes: &[u8]) -> Result<(), WireError> {
    let length_bytes =
        u32::try_from(bytes.len()).map_err(|_| WireError::FieldTooLarge { field, length_bytes: bytes.len() })?;
    dst.put_u32(length_bytes);
    dst.put_slice(bytes);
    Ok(())
}

fn put_count(dst: &mut BytesMut, field: &'static str, count: usize) -> Result<(), WireError> {
    let count = u32::try_from(count).map_err(|_| WireError::FieldTooLarge { field, length_bytes: count })?;
    dst.put_u32(count);
    Ok(())
}

fn put_node_ids(dst: &mut BytesMut, field: &'static str, node_ids: &[u64]) -> Result<(), WireError> {
    put_count(dst, field, node_ids.len())?;
    for &node_id in node_ids {
        dst.put_u64(node_id);
    }
    Ok(())
}

fn get_node_ids(reader: &mut BodyReader, field: &'static str) -> Result<Vec<u64>, WireError> {
    let count = reader.count(field, NODE_ID_BYTES)?;
    let mut node_ids = Vec::with_capacity(count);
    for _ in 0..count {
        node_ids.push(reader.u64(field)?);
    }
    Ok(node_ids)
}

/// Appends `message`'s body to `dst`.
pub(super) fn encode_message(message: &Message, dst: &mut BytesMut) -> Result<(), WireError> {
    let mut flags = 0;
    if message.reject {
        flags |= MESSAGE_FLAG_REJECT;
    }
    if message.has_snapshot() {
        flags |= MESSAGE_FLAG_SNAPSHOT;
    }
    dst.put_u8(message_type_to_wire(message.msg_type));
    dst.put_u8(flags);
    dst.put_u64(message.to);
    dst.put_u64(message.from);
    dst.put_u64(message.term);
    dst.put_u64(message.log_term);
    dst.put_u64(message.index);
    dst.put_u64(message.commit);
    dst.put_u64(message.commit_term);
    dst.put_u64(message.request_snapshot);
    dst.put_u64(message.reject_hint);
    dst.put_i64(message.priority);
    dst.put_u64(message.deprecated_priority);
    put_bytes(dst, "message context", &message.context)?;
    put_count(dst, "entry count", message.entries.len())?;
    for entry in message.entries.iter() {
        dst.put_u8(entry_type_to_wire(entry.entry_type));
        dst.put_u64(entry.term);
        dst.put_u64(entry.index);
        put_bytes(dst, "entry data", &entry.data)?;
        put_bytes(dst, "entry context", &entry.context)?;
    }
    if message.has_snapshot() {
        encode_snapshot(message.get_snapshot(), dst)?;
    }
    Ok(())
}

fn encode_snapshot(snapshot: &Snapshot, dst: &mut BytesMut) -> Result<(), WireError> {
    let mut flags = 0;
    if snapshot.has_metadata() {
        flags |= SNAPSHOT_FLAG_METADATA;
    }
    dst.put_u8(flags);
    put_bytes(dst, "snapshot data", &snapshot.data)?;
    if !snapshot.has_metadata() {
        return Ok(());
    }
    let metadata = snapshot.get_metadata();
    let mut flags = 0;
    if metadata.has_conf_state() {
        flags |= METADATA_FLAG_CONF_STATE;
    }
    dst.put_u8(flags);
    dst.put_u64(metadata.index);
    dst.put_u64(metadata.term);
    if !metadata.has_conf_state() {
        return Ok(());
    }
    let conf_state = metadata.get_conf_state();
    dst.put_u8(if conf_state.auto_leave { CONF_STATE_FLAG_AUTO_LEAVE } else { 0 });
    put_node_ids(dst, "voters", &conf_state.voters)?;
    put_node_ids(dst, "learners", &conf_state.learners)?;
    put_node_ids(dst, "voters outgoing", &conf_state.voters_outgoing)?;
    put_node_ids(dst, "learners next", &conf_state.learners_next)?;
    Ok(())
}

/// Reads one message that must fill the reader exactly. (Struct literals evaluate their fields
/// in the order written, which is the order on the wire.)
pub(super) fn decode_message(mut reader: BodyReader) -> Result<Message, WireError> {
    let msg_type = message_type_from_wire(reader.u8("message type")?)?;
    let flags = reader.flags("message flags", MESSAGE_FLAGS_KNOWN)?;
    let mut message = Message {
        msg_type,
        reject: flags & MESSAGE_FLAG_REJECT != 0,
        to: reader.u64("to")?,
        from: reader.u64("from")?,
        term: reader.u64("term")?,
        log_term: reader.u64("log term")?,
        index: reader.u64("index")?,
        commit: reader.u64("commit")?,
        commit_term: reader.u64("commit term")?,
        request_snapshot: reader.u64("request snapshot")?,
        reject_hint: reader.u64("reject hint")?,
        priority: reader.i64("priority")?,
        deprecated_priority: reader.u64("deprecated priority")?,
        context: reader.bytes("message context")?,
        entries: decode_entries(&mut reader)?.into(),
        ..Message::default()
    };
    if flags & MESSAGE_FLAG_SNAPSHOT != 0 {
        message.set_snapshot(decode_snapshot(&mut reader)?);
    }
    reader.finish()?;
    Ok(message)
}

fn decode_entries(reader: &mut BodyReader) -> Result<Vec<Entry>, WireError> {
    let entry_count = reader.count("entry count", ENTRY_BYTES_MIN)?;
    let mut entries = Vec::with_capacity(entry_count);
    for _ in 0..entry_count {
        entries.push(Entry {
            entry_type: entry_type_from_wire(reader.u8("entry type")?)?,
            term: reader.u64("entry term")?,
            index: reader.u64("entry index")?,
            data: reader.bytes("entry data")?,
            context: reader.bytes("entry context")?,
            ..Entry::default()
        });
    }
    Ok(entries)
}

fn decode_snapshot(reader: &mut BodyReader) -> Result<Snapshot, WireError> {
    let flags = reader.flags("snapshot flags", SNAPSHOT_FLAGS_KNOWN)?;
    let mut snapshot = Snapshot { data: reader.bytes("snapshot data")?, ..Snapshot::default() };
    if flags & SNAPSHOT_FLAG_METADATA == 0 {
        return Ok(snapshot);
    }
    let flags = reader.flags("snapshot metadata flags", METADATA_FLAGS_KNOWN)?;
    let mut metadata = SnapshotMetadata {
        index: reader.u64("snapshot index")?,
        term: reader.u64("snapshot term")?,
        ..SnapshotMetadata::default()
    };
    if flags & METADATA_FLAG_CONF_STATE != 0 {
        let flags = reader.flags("conf state flags", CONF_STATE_FLAGS_KNOWN)?;
        metadata.set_conf_state(ConfState {
            auto_leave: flags & CONF_STATE_FLAG_AUTO_LEAVE != 0,
            voters: get_node_ids(reader, "voters")?,
            learners: get_node_ids(reader, "learners")?,
            voters_outgoing: get_node_ids(reader, "voters outgoing")?,
            learners_next: get_node_ids(reader, "learners next")?,
            ..ConfState::default()
        });
    }
    snapshot.set_metadata(metadata);
    Ok(snapshot)
}
