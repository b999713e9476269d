//! The node's part in the cluster (decision 0016): the controller role (a member of the Raft
//! metadata quorum, [`node`]) and the broker role's link to it ([`link`]: registration,
//! heartbeats, the metadata image, forwarded controller requests), both over the CONTROLLER
//! listener's own framing ([`transport`], `cluster::wire`).
//!
//! Runs on its own threads with blocking sockets, never on a shard: metadata is not on the data
//! path. Shards see only what [`link`] publishes (an `Arc` of the image, swapped) and the
//! futures it completes.
//!
//! Must not know: shards' state, Kafka requests (handlers translate them).

pub mod identity;
pub mod link;
pub mod node;
pub mod transport;

/// 16 random bytes from the kernel: cluster ids, broker incarnations, topic ids (names, not
/// secrets: `/dev/urandom` is enough).
pub fn random_bytes() -> std::io::Result<[u8; 16]> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom").and_then(|mut file| std::io::Read::read_exact(&mut file, &mut bytes))?;
    Ok(bytes)
}
