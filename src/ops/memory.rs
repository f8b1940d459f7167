//! How the process asks the C allocator to give memory back to the system: large blocks on
//! free, and few arenas.
//!
//! glibc's malloc serves big allocations with `mmap` only until the first one is freed; then it
//! raises its threshold (up to 32 MiB) and serves later ones from per-thread arenas, which keep
//! freed memory. Each password hash allocates argon2's 19 MiB block on whichever blocking thread
//! runs it, so after a while every arena held one: the soak test (`scripts/robustness/soak.py`)
//! saw RSS pass 400 MiB with 16 users signing in now and then. A fixed threshold turns that
//! adaptation off: blocks of 1 MiB and more are mapped on allocation and unmapped on free, so
//! RSS follows what is in use.
//!
//! glibc also gives threads that meet contention their own arena, up to 8 per core, and an
//! arena keeps the memory freed in it. Roost's SQLite connections run on whichever blocking
//! thread takes the job, so their page caches (and FTS5's work memory) were spread over a dozen
//! arenas, each holding its own high-water mark: in the soak the RSS floor rose with the
//! database (34 MiB after 10 minutes; 27 MiB with two arenas, the same load).
//! [`limit_arenas`] caps them at [`MAX_ARENAS`].
//!
//! This module changes nothing else and does nothing elsewhere than glibc.

/// Allocations at least this large are always `mmap`ed and returned to the system on free.
/// Under it: argon2's memory (19 MiB by default) and request bodies near the 1 MiB cap; over
/// it: everything small and frequent, which stays in the arenas.
pub const MMAP_THRESHOLD_BYTES: i32 = 1024 * 1024;

/// Applies [`MMAP_THRESHOLD_BYTES`]. Call once, early in the daemon. Returns whether the
/// allocator took it (always `false` on C libraries other than glibc).
pub fn return_large_blocks_to_the_system() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets a global tuning parameter of glibc's allocator; any value
        // is valid for M_MMAP_THRESHOLD up to HEAP_MAX (32 MiB on 64-bit), and it is safe to
        // call while other threads allocate.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Malloc arenas at most. Two keep allocation from contending on one lock (the async workers
/// and the blocking threads) while freed memory is reused instead of stranded per thread.
pub const MAX_ARENAS: i32 = 2;

/// Applies [`MAX_ARENAS`]. Call once, early in the daemon (arenas made before stay). Returns
/// whether the allocator took it (always `false` on C libraries other than glibc).
pub fn limit_arenas() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: as above: a global tuning parameter; any positive M_ARENA_MAX is valid and
        // only limits the arenas created from now on.
        unsafe { libc::mallopt(libc::M_ARENA_MAX, MAX_ARENAS) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn glibc_accepts_the_threshold() {
        assert!(return_large_blocks_to_the_system());
    }

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn glibc_accepts_the_arena_limit() {
        assert!(limit_arenas());
    }
}
