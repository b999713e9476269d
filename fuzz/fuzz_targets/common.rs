//! Shared by the fuzz targets: resealing CRCs so the search gets past them.

/// Reseals the CRC of every batch whose prefix parses, walking batch by batch (a fuzzer cannot
/// forge CRC-32C; without this it would never reach the checks behind it).
pub fn reseal_all(bytes: &mut [u8]) {
    let mut at = 0;
    while at + engine::limits::BATCH_HEADER_BYTES <= bytes.len() {
        let Ok(prefix) = engine::batch::parse_prefix(&bytes[at..]) else { return };
        let end = at.saturating_add(prefix.size_bytes).min(bytes.len());
        engine::batch::reseal_crc(&mut bytes[at..end]);
        at = end;
    }
}
