//! What fresh memory costs on this machine: 4 GiB copied in 128,000-byte pieces into memory
//! that is kept (as the tail cache keeps a commit's bytes), three ways. Std only, Linux x86-64:
//! `rustc -O fresh_memory.rs && ./fresh_memory`.
//! - a `Vec` per piece (what the engine does);
//! - 2 MiB-aligned regions with `madvise(MADV_HUGEPAGE)` (transparent huge pages);
//! - 2 MiB-aligned regions mapped with `MAP_POPULATE` (faulted in by the kernel up front).
use std::time::Instant;

extern "C" {
    fn mmap(address: *mut u8, length: usize, protection: i32, flags: i32, fd: i32, offset: i64) -> *mut u8;
    fn madvise(address: *mut u8, length: usize, advice: i32) -> i32;
}

const PIECE: usize = 128_000;
const TOTAL: usize = 4 << 30;
const SLAB: usize = 2 << 20;
const PROT_READ_WRITE: i32 = 3;
const MAP_PRIVATE_ANONYMOUS: i32 = 0x22;
const MAP_POPULATE: i32 = 0x8000;
const MADV_HUGEPAGE: i32 = 14;

fn main() {
    let source = vec![7u8; PIECE];
    let started = Instant::now();
    let mut kept: Vec<Vec<u8>> = Vec::new();
    let mut done = 0;
    while done < TOTAL {
        let mut piece = Vec::with_capacity(PIECE);
        piece.extend_from_slice(&source);
        kept.push(piece);
        done += PIECE;
    }
    println!("a Vec per piece: {:.2} s", started.elapsed().as_secs_f64());
    drop(kept);
    for (name, flags, huge) in [
        ("2 MiB regions, MADV_HUGEPAGE", MAP_PRIVATE_ANONYMOUS, true),
        ("2 MiB regions, MAP_POPULATE", MAP_PRIVATE_ANONYMOUS | MAP_POPULATE, false),
    ] {
        let started = Instant::now();
        let mut done = 0;
        while done < TOTAL {
            // Twice the slab, to cut a 2 MiB-aligned slab out of it; never unmapped (a test).
            let region = unsafe { mmap(std::ptr::null_mut(), SLAB * 2, PROT_READ_WRITE, flags, -1, 0) };
            assert!(region as isize != -1, "mmap failed");
            let slab = (region as usize).div_ceil(SLAB) * SLAB;
            if huge {
                unsafe { madvise(slab as *mut u8, SLAB, MADV_HUGEPAGE) };
            }
            let mut at = 0;
            while at + PIECE <= SLAB {
                unsafe { std::ptr::copy_nonoverlapping(source.as_ptr(), (slab + at) as *mut u8, PIECE) };
                at += PIECE;
                done += PIECE;
            }
        }
        println!("{name}: {:.2} s", started.elapsed().as_secs_f64());
    }
}
