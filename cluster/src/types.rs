//! Newtypes of the metadata: which broker, which topic, which partition, which cluster.
//!
//! Must not know: how they are encoded or stored.

use std::fmt;

/// A node's `node.id` (Kafka's `broker.id`): a controller, a broker or both.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BrokerId(pub i32);

impl BrokerId {
    /// The Raft library's id of this node (Raft ids are positive `u64`; `node.id` is validated to be
    /// non-negative by the configuration, 0 maps to 1 so that Raft's "no node" 0 stays free).
    pub fn raft_id(self) -> u64 {
        u64::from(self.0.unsigned_abs()) + 1
    }

    /// Inverse of [`BrokerId::raft_id`].
    pub fn from_raft_id(id: u64) -> Option<BrokerId> {
        let value = id.checked_sub(1)?;
        i32::try_from(value).ok().map(BrokerId)
    }
}

impl fmt::Display for BrokerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A topic's id: 16 bytes, as Kafka's topic ids (a UUID, never all zero).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicId(pub [u8; 16]);

impl fmt::Display for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// A partition's index within its topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionIndex(pub i32);

/// The cluster's id, agreed by the quorum when it first forms and stored by every node: 16 bytes,
/// shown as Kafka shows cluster ids (base64url, 22 characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClusterId(pub [u8; 16]);

impl ClusterId {
    /// As Kafka shows cluster ids: URL-safe base64 without padding (22 characters).
    pub fn to_base64url(&self) -> String {
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut text = String::with_capacity(22);
        for chunk in self.0.chunks(3) {
            let mut group = [0u8; 3];
            group[..chunk.len()].copy_from_slice(chunk);
            let bits = u32::from(group[0]) << 16 | u32::from(group[1]) << 8 | u32::from(group[2]);
            for index in 0..=chunk.len() {
                text.push(ALPHABET[(bits >> (18 - 6 * index) & 63) as usize] as char);
            }
        }
        text
    }

    /// Parses [`ClusterId::to_base64url`]'s form (exactly 22 characters).
    pub fn from_base64url(text: &str) -> Option<ClusterId> {
        if text.len() != 22 {
            return None;
        }
        let value = |byte: u8| -> Option<u32> {
            Some(u32::from(match byte {
                b'A'..=b'Z' => byte - b'A',
                b'a'..=b'z' => byte - b'a' + 26,
                b'0'..=b'9' => byte - b'0' + 52,
                b'-' => 62,
                b'_' => 63,
                _ => return None,
            }))
        };
        let mut bytes = [0u8; 16];
        let mut written = 0;
        for chunk in text.as_bytes().chunks(4) {
            let mut bits = 0u32;
            for (index, byte) in chunk.iter().enumerate() {
                bits |= value(*byte)? << (18 - 6 * index);
            }
            for shift in [16, 8, 0].iter().take(chunk.len() - 1) {
                bytes[written] = (bits >> shift) as u8;
                written += 1;
            }
        }
        // The last character holds 4 bits of padding, which must be zero (canonical form).
        (ClusterId(bytes).to_base64url() == text).then_some(ClusterId(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids_print_as_kafka_prints_them() {
        // Kafka's Uuid.toString of these bytes (java.util.Base64 URL encoder, no padding).
        assert_eq!(ClusterId([0; 16]).to_base64url(), "AAAAAAAAAAAAAAAAAAAAAA");
        let bytes = [0xfb, 0xff, 0xbf, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13];
        assert_eq!(ClusterId(bytes).to_base64url(), "-_-_AQIDBAUGBwgJCgsMDQ");
        assert_eq!(ClusterId::from_base64url("-_-_AQIDBAUGBwgJCgsMDQ"), Some(ClusterId(bytes)));
        assert_eq!(ClusterId::from_base64url("-_-_AQIDBAUGBwgJCgsMDR"), None, "non-zero padding bits");
        assert_eq!(ClusterId::from_base64url("short"), None);
        assert_eq!(ClusterId::from_base64url("-_-_AQIDBAUGBwgJCgsM*Q"), None);
    }
}
