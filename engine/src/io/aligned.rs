//! A heap buffer aligned for O_DIRECT writes, and the per-thread pool that recycles them.
//!
//! Owns: the one piece of `unsafe` allocation code in the engine. Length is always a multiple of
//! [`DIRECT_IO_ALIGNMENT_BYTES`]; bytes past the caller's data are zero.
//!
//! Every direct-mode commit copies its bytes into one of these and frees it when the write
//! lands. Fresh from the allocator, a buffer of a commit's size is fresh pages: the copy into it
//! took a page fault per 4 KiB, which cost more than the copy itself (a fifth of a shard's time
//! in a produce run). So a dropped buffer goes to its thread's pool, by power-of-two capacity,
//! and the next buffer of that class reuses it; the pool holds at most
//! [`ALIGNED_POOL_BYTES_MAX`] per thread and frees what does not fit.

use std::alloc::{alloc, dealloc, Layout};
use std::cell::RefCell;
use std::ptr::NonNull;

use crate::limits::{ALIGNED_POOL_BYTES_MAX, DIRECT_IO_ALIGNMENT_BYTES};

pub struct AlignedBuffer {
    pointer: NonNull<u8>,
    /// Bytes the caller sees: the data padded to the alignment.
    length: usize,
    /// Bytes allocated: `length` rounded up to a power of two (the pool's classes).
    capacity: usize,
}

/// Freed allocations of one thread, newest last, each `(capacity, pointer)` allocated with
/// [`layout`]`(capacity)`.
struct Pool {
    free: Vec<(usize, NonNull<u8>)>,
    pooled_bytes: usize,
}

impl Pool {
    fn take(&mut self, capacity: usize) -> Option<NonNull<u8>> {
        let index = self.free.iter().rposition(|(size, _)| *size == capacity)?;
        let (_, pointer) = self.free.swap_remove(index);
        self.pooled_bytes -= capacity;
        Some(pointer)
    }

    /// Keeps the allocation if it fits under the bound; hands it back otherwise.
    fn give(&mut self, capacity: usize, pointer: NonNull<u8>) -> Option<NonNull<u8>> {
        if self.pooled_bytes + capacity > ALIGNED_POOL_BYTES_MAX {
            return Some(pointer);
        }
        self.pooled_bytes += capacity;
        self.free.push((capacity, pointer));
        None
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for (capacity, pointer) in self.free.drain(..) {
            // SAFETY: pooled pointers were allocated with `layout(capacity)` and are owned by
            // the pool alone.
            unsafe { dealloc(pointer.as_ptr(), layout(capacity)) }
        }
    }
}

thread_local! {
    static POOL: RefCell<Pool> = const { RefCell::new(Pool { free: Vec::new(), pooled_bytes: 0 }) };
}

fn layout(capacity: usize) -> Layout {
    Layout::from_size_align(capacity, DIRECT_IO_ALIGNMENT_BYTES).expect("valid layout")
}

/// The allocation size for `length` bytes: the pool's size class.
fn capacity_for(length: usize) -> usize {
    length.next_power_of_two()
}

/// Bytes this thread's pool holds now (for tests and metrics).
pub fn pooled_bytes() -> usize {
    POOL.try_with(|pool| pool.borrow().pooled_bytes).unwrap_or(0)
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
        let capacity = capacity_for(length);
        let pooled = POOL.try_with(|pool| pool.borrow_mut().take(capacity)).ok().flatten();
        let pointer = match pooled {
            Some(pointer) => pointer,
            None => {
                // SAFETY: layout has non-zero size.
                let raw = unsafe { alloc(layout(capacity)) };
                let Some(pointer) = NonNull::new(raw) else { std::alloc::handle_alloc_error(layout(capacity)) };
                pointer
            }
        };
        let mut at = 0;
        for part in parts {
            // SAFETY: `at + part.len() <= data_length <= length <= capacity`, the allocation is
            // `capacity` bytes, and an allocation we own (fresh or from the pool) cannot overlap
            // `part`.
            unsafe { std::ptr::copy_nonoverlapping(part.as_ptr(), pointer.as_ptr().add(at), part.len()) };
            at += part.len();
        }
        // SAFETY: `[at, length)` lies inside the allocation.
        unsafe { std::ptr::write_bytes(pointer.as_ptr().add(at), 0, length - at) };
        // Every byte of `[0, length)` is initialised now (a pooled buffer's older bytes past
        // `length` are never handed out).
        AlignedBuffer { pointer, length, capacity }
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: pointer is valid for `length` initialised bytes for the buffer's lifetime.
        unsafe { std::slice::from_raw_parts(self.pointer.as_ptr(), self.length) }
    }
}

impl Drop for AlignedBuffer {
    fn drop(&mut self) {
        // During thread teardown the pool may be gone: free the allocation then.
        let unpooled =
            POOL.try_with(|pool| pool.borrow_mut().give(self.capacity, self.pointer)).unwrap_or(Some(self.pointer));
        if let Some(pointer) = unpooled {
            // SAFETY: allocated in `from_parts` (or taken from the pool) with `layout(capacity)`,
            // and owned by this buffer alone.
            unsafe { dealloc(pointer.as_ptr(), layout(self.capacity)) }
        }
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

    #[test]
    fn a_dropped_buffer_is_reused_for_the_next_of_its_class_and_old_bytes_never_show() {
        let first = AlignedBuffer::from_parts(&[&[7u8; 100_000]]);
        let address = first.as_slice().as_ptr();
        let before = pooled_bytes();
        drop(first);
        assert_eq!(pooled_bytes(), before + 131_072, "100,000 bytes pad to 102,400, in the 128 KiB class");
        // Same class, fewer bytes: the same memory, with the new data and zeros after it.
        let second = AlignedBuffer::from_parts(&[&b"abc".repeat(30_000)]);
        assert_eq!(second.as_slice().as_ptr(), address);
        assert_eq!(pooled_bytes(), before);
        assert_eq!(second.as_slice().len(), 90_112);
        assert!(second.as_slice()[..90_000].chunks(3).all(|chunk| chunk == b"abc"));
        assert!(second.as_slice()[90_000..].iter().all(|byte| *byte == 0), "no byte of the first buffer shows");
        // Another class does not take it.
        let other = AlignedBuffer::from_parts(&[&[1u8; 10]]);
        assert_ne!(other.as_slice().as_ptr(), address);
    }

    #[test]
    fn the_pool_holds_at_most_its_bound_and_frees_the_rest() {
        let class = ALIGNED_POOL_BYTES_MAX / 4;
        let buffers: Vec<AlignedBuffer> = (0..6).map(|_| AlignedBuffer::from_parts(&[&vec![1u8; class]])).collect();
        drop(buffers);
        assert!(pooled_bytes() <= ALIGNED_POOL_BYTES_MAX);
        assert!(pooled_bytes() >= 4 * class - class, "most of the bound is used");
    }
}
