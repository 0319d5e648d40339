//! How the C allocator is asked to treat large blocks (glibc on Linux).
//!
//! A sample at 100k sockets is a few vectors of ~15 MB, allocated and
//! freed once a second. glibc serves a block that large with `mmap` only
//! until the first such block is freed: then its dynamic threshold rises
//! to that size (up to 32 MiB), the next ones come from the heap, and the
//! heap keeps the freed space in pieces. Measured on `serve --interval 1`
//! at 100k sockets (tier T0, one reconcile walk in the window, heap peak
//! 128 MiB by heaptrack): peak RSS 195 MiB as is, 195 with
//! `MALLOC_ARENA_MAX=2`, 147 with the threshold fixed at 128 KiB
//! (bench/RESULTS.md, "Serve memory at 100k sockets, part 1").
//! Fixing it (any value disables the dynamic one) returns a large block
//! to the system when it is freed.

/// Blocks of this size and larger get their own mapping, returned to the
/// system on free. Above the few-hundred-kB buffers allocated every
/// sample (so those stay in the heap, without a system call each), below
/// the sample-sized vectors (3 MB at 20k sockets).
pub const MMAP_THRESHOLD_BYTES: usize = 1 << 20;

/// Fixes glibc's mmap threshold at [`MMAP_THRESHOLD_BYTES`]. Call once,
/// at start; does nothing elsewhere (other C libraries, other OSes).
pub fn large_blocks_to_mmap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes an allocator parameter; it is
        // called before the threads that allocate are started.
        let ok = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES as i32) };
        if ok != 1 {
            log::debug!("mallopt(M_MMAP_THRESHOLD) refused");
        }
    }
}
