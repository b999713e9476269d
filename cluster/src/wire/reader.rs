//! A bounded reader over one frame's body: every read checks the bytes left first, so a field
//! that runs past the end is a [`WireError::Truncated`] and a count that could not fit in the
//! bytes left is refused before anything is reserved for it.
//!
//! Must not know: what the fields mean (that is the frame and message codecs' business).

use bytes::{Buf, Bytes};

use super::WireError;

#[derive(Debug)]
pub(super) struct BodyReader {
    bytes: Bytes,
}

impl BodyReader {
    pub(super) fn new(bytes: Bytes) -> BodyReader {
        BodyReader { bytes }
    }

    fn need(&self, field: &'static str, bytes_count: usize) -> Result<(), WireError> {
        if self.bytes.len() < bytes_count {
            return Err(WireError::Truncated { field });
        }
        Ok(())
    }

    pub(super) fn u8(&mut self, field: &'static str) -> Result<u8, WireError> {
        self.need(field, 1)?;
        Ok(self.bytes.get_u8())
    }

    pub(super) fn u32(&mut self, field: &'static str) -> Result<u32, WireError> {
        self.need(field, 4)?;
        Ok(self.bytes.get_u32())
    }

    pub(super) fn i32(&mut self, field: &'static str) -> Result<i32, WireError> {
        self.need(field, 4)?;
        Ok(self.bytes.get_i32())
    }

    pub(super) fn u64(&mut self, field: &'static str) -> Result<u64, WireError> {
        self.need(field, 8)?;
        Ok(self.bytes.get_u64())
    }

    pub(super) fn i64(&mut self, field: &'static str) -> Result<i64, WireError> {
        self.need(field, 8)?;
        Ok(self.bytes.get_i64())
    }

    pub(super) fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], WireError> {
        self.need(field, N)?;
        let mut array = [0u8; N];
        self.bytes.copy_to_slice(&mut array);
        Ok(array)
    }

    /// Flag bits: refuses any bit outside `known`, so a flag a later version adds is never
    /// silently dropped by an older reader.
    pub(super) fn flags(&mut self, field: &'static str, known: u8) -> Result<u8, WireError> {
        let flags = self.u8(field)?;
        if flags & !known != 0 {
            return Err(WireError::UnknownFlags { field, flags });
        }
        Ok(flags)
    }

    /// A `u32` length, then that many bytes, sliced out of the frame without copying.
    pub(super) fn bytes(&mut self, field: &'static str) -> Result<Bytes, WireError> {
        let length_bytes = self.u32(field)?;
        let length_bytes = usize::try_from(length_bytes).map_err(|_| WireError::Truncated { field })?;
        self.need(field, length_bytes)?;
        Ok(self.bytes.split_to(length_bytes))
    }

    /// A `u32` count of elements that take at least `element_bytes_min` bytes each on the wire:
    /// refused unless that many elements fit in the bytes left, which bounds what a caller may
    /// reserve for them by the frame's own size.
    pub(super) fn count(&mut self, field: &'static str, element_bytes_min: usize) -> Result<usize, WireError> {
        debug_assert!(element_bytes_min > 0);
        let count = self.u32(field)?;
        usize::try_from(count)
            .ok()
            .filter(|&count| {
                count.checked_mul(element_bytes_min).is_some_and(|bytes_count| bytes_count <= self.bytes.len())
            })
            .ok_or(WireError::CountTooLarge { field, count, remaining_bytes: self.bytes.len() })
    }

    /// Everything left, without copying (the opaque body of a request or response).
    pub(super) fn rest(&mut self) -> Bytes {
        std::mem::take(&mut self.bytes)
    }

    /// The body must end exactly where its last field does.
    pub(super) fn finish(self) -> Result<(), WireError> {
        if !self.bytes.is_empty() {
            return Err(WireError::TrailingBytes { trailing_bytes: self.bytes.len() });
        }
        Ok(())
    }
}
