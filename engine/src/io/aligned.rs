//! A heap buffer aligned for O_DIRECT writes.
//!
//! Owns: the one piece of `unsafe` allocation code in the engine. Length is always a multiple of
//! [`DIRECT_IO_ALIGNMENT_BYTES`]; bytes past the caller's data are zero.

use std::alloc::{alloc, dealloc, Layout};
use std::ptr::NonNull;

use crate::limits::DIRECT_IO_ALIGNMENT_BYTES;

pub struct AlignedBuffer {
    pointer: NonNull<u8>,
    length: usize,
}

// SAFETY: the buffer is uniquely owned heap memory, like a Vec<u8>.
unsafe impl Send for AlignedBuffer {}
// SAFETY: shared access is read-only.
unsafe impl Sync for AlignedBuffer {}

impl std::fmt::Debug for AlignedBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedBuffer({} bytes)", self.length)
    }
}

pub fn align_up(value: usize) -> usize {
    value.div_ceil(DIRECT_IO_ALIGNMENT_BYTES) * DIRECT_IO_ALIGNMENT_BYTES
}

pub fn align_down(value: u64) -> u64 {
    value - value % DIRECT_IO_ALIGNMENT_BYTES as u64
}

impl AlignedBuffer {
    /// A buffer holding `parts` back to back, padded with zeros to the alignment. Each byte is
    /// written once (no zeroing of what the parts fill).
    pub fn from_parts(parts: &[&[u8]]) -> AlignedBuffer {
        let data_length: usize = parts.iter().map(|part| part.len()).sum();
        let length = align_up(data_length.max(1));
        let layout = Layout::from_size_align(length, DIRECT_IO_ALIGNMENT_BYTES).expect("valid layout");
        // SAFETY: layout has non-zero size.
        let raw = unsafe { alloc(layout) };
        let Some(pointer) = NonNull::new(raw) else { std::alloc::handle_alloc_error(layout) };
        let mut at = 0;
        for part in parts {
            // SAFETY: `at + part.len() <= data_length <= length`, the allocation is `length` bytes,
            // and a fresh allocation cannot overlap `part`.
            unsafe { std::ptr::copy_nonoverlapping(part.as_ptr(), pointer.as_ptr().add(at), part.len()) };
            at += part.len();
        }
        // SAFETY: `[at, length)` lies inside the allocation.
        unsafe { std::ptr::write_bytes(pointer.as_ptr().add(at), 0, length - at) };
        // Every byte of `[0, length)` is initialised now.
        AlignedBuffer { pointer, length }
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: pointer is valid for `length` initialised bytes for the buffer's lifetime.
        unsafe { std::slice::from_raw_parts(self.pointer.as_ptr(), self.length) }
    }
}

impl Drop for AlignedBuffer {
    fn drop(&mut self) {
        let layout = Layout::from_size_align(self.length, DIRECT_IO_ALIGNMENT_BYTES).expect("valid layout");
        // SAFETY: allocated in `from_parts` with this exact layout.
        unsafe { dealloc(self.pointer.as_ptr(), layout) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_with_zeros_and_aligns() {
        let buffer = AlignedBuffer::from_parts(&[b"abc", b"de"]);
        assert_eq!(buffer.as_slice().len(), DIRECT_IO_ALIGNMENT_BYTES);
        assert_eq!(&buffer.as_slice()[..5], b"abcde");
        assert!(buffer.as_slice()[5..].iter().all(|byte| *byte == 0));
        assert_eq!(buffer.as_slice().as_ptr() as usize % DIRECT_IO_ALIGNMENT_BYTES, 0);
        assert_eq!(align_down(8191), 4096);
        assert_eq!(align_up(4097), 8192);
    }
}
