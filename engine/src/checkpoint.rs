//! The per-log recovery checkpoint file, `skua.checkpoint`.
//!
//! Owns: its 32-byte format (see `docs/formats/segment-v1.md`):
//! ```text
//! 0  8  magic "SKUACKPT"
//! 8  2  version (1), big-endian
//! 10 2  flags: bit 0 = clean shutdown, bit 1 = the segment at the recovery offset is a
//!       recycled file (bytes past its last valid batch may be older batches)
//! 12 8  log start offset
//! 20 8  recovery offset: segments that end at or below it were synced and indexed
//! 28 4  CRC-32C of bytes [0, 28)
//! ```
//! A missing or invalid checkpoint means "trust nothing": recovery scans every segment.

use crate::types::Offset;

pub const FILE_NAME: &str = "skua.checkpoint";
pub const TEMP_FILE_NAME: &str = "skua.checkpoint.tmp";
pub const MAGIC: &[u8; 8] = b"SKUACKPT";
pub const VERSION: u16 = 1;
pub const SIZE_BYTES: usize = 32;
const FLAG_CLEAN: u16 = 1;
const FLAG_RECYCLED: u16 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub log_start_offset: Offset,
    pub recovery_offset: Offset,
    /// Written by a clean close: every segment, the active one included, is synced and indexed.
    pub clean: bool,
    /// The segment starting at `recovery_offset` was a recycled file when this was written: a
    /// scan that finds old bytes past its data is seeing that file's old contents.
    pub recycled: bool,
}

impl Checkpoint {
    pub fn encode(&self) -> [u8; SIZE_BYTES] {
        let mut bytes = [0u8; SIZE_BYTES];
        bytes[0..8].copy_from_slice(MAGIC);
        bytes[8..10].copy_from_slice(&VERSION.to_be_bytes());
        let flags = if self.clean { FLAG_CLEAN } else { 0 } | if self.recycled { FLAG_RECYCLED } else { 0 };
        bytes[10..12].copy_from_slice(&flags.to_be_bytes());
        bytes[12..20].copy_from_slice(&self.log_start_offset.0.to_be_bytes());
        bytes[20..28].copy_from_slice(&self.recovery_offset.0.to_be_bytes());
        let crc = crc32c::crc32c(&bytes[..28]);
        bytes[28..32].copy_from_slice(&crc.to_be_bytes());
        bytes
    }

    pub fn decode(bytes: &[u8]) -> Option<Checkpoint> {
        if bytes.len() != SIZE_BYTES || &bytes[0..8] != MAGIC {
            return None;
        }
        if u16::from_be_bytes([bytes[8], bytes[9]]) != VERSION {
            return None;
        }
        let crc = u32::from_be_bytes([bytes[28], bytes[29], bytes[30], bytes[31]]);
        if crc != crc32c::crc32c(&bytes[..28]) {
            return None;
        }
        let read_u64 = |at: usize| {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(&bytes[at..at + 8]);
            u64::from_be_bytes(raw)
        };
        let flags = u16::from_be_bytes([bytes[10], bytes[11]]);
        Some(Checkpoint {
            log_start_offset: Offset(read_u64(12)),
            recovery_offset: Offset(read_u64(20)),
            clean: flags & FLAG_CLEAN != 0,
            recycled: flags & FLAG_RECYCLED != 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_round_trip_and_rejections() {
        let checkpoint =
            Checkpoint { log_start_offset: Offset(5), recovery_offset: Offset(300), clean: true, recycled: false };
        let bytes = checkpoint.encode();
        assert_eq!(&bytes[..12], b"SKUACKPT\x00\x01\x00\x01");
        let recycled = Checkpoint { clean: false, recycled: true, ..checkpoint };
        assert_eq!(&recycled.encode()[10..12], b"\x00\x02");
        assert_eq!(Checkpoint::decode(&recycled.encode()), Some(recycled));
        assert_eq!(&bytes[12..28], &[0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 1, 44]);
        assert_eq!(Checkpoint::decode(&bytes), Some(checkpoint));
        let mut flipped = bytes;
        flipped[15] ^= 1;
        assert_eq!(Checkpoint::decode(&flipped), None);
        let mut future = bytes;
        future[9] = 2;
        assert_eq!(Checkpoint::decode(&future), None);
        assert_eq!(Checkpoint::decode(&bytes[..31]), None);
    }
}
