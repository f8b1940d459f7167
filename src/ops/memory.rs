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
//! Freed memory goes back to the system on `free` only from the top of an arena. Memory freed
//! below a block still in use stays resident until it is reused, and on a server that has run
//! for a while the arenas hold a growing amount of it: in the soak on a grown database the
//! RSS floor kept climbing by about 0.2 MiB a minute while glibc counted 8.5 of its 19 MiB as
//! free, and one `malloc_trim(0)` took the RSS from 33.2 to 27.7 MiB. [`trim_periodically`]
//! hands whole free pages back every [`TRIM_INTERVAL`].
//!
//! [`read`] reports where the memory is (`roost_process_memory_bytes`).
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

/// Applies [`return_large_blocks_to_the_system`] and [`limit_arenas`]. Call first thing in
/// the daemon's process, before the async runtime starts its threads: a thread that allocates
/// earlier may already have an arena of its own.
pub fn configure() {
    // Before any password hash: argon2's blocks go back to the system after each hash.
    if !return_large_blocks_to_the_system() {
        tracing::debug!("the allocator keeps large freed blocks (not glibc)");
    }
    if !limit_arenas() {
        tracing::debug!("the allocator's arenas are not limited (not glibc)");
    }
}

/// How often [`trim_periodically`] hands free pages back.
pub const TRIM_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);

/// Returns the whole pages inside free blocks of every arena to the system (glibc's
/// `malloc_trim(0)`). Whether anything was returned; always `false` on other C libraries.
pub fn give_back_free_pages() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes each arena's lock and releases pages that lie entirely
        // inside free blocks with madvise; allocations in use are not touched, and other
        // threads may allocate meanwhile (they wait for the lock).
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Calls [`give_back_free_pages`] every [`TRIM_INTERVAL`] on a blocking thread (it holds
/// the arenas' locks for a moment: about a millisecond for the tens of MiB Roost uses), until
/// `shutdown`.
pub async fn trim_periodically(shutdown: tokio_util::sync::CancellationToken) {
    let mut tick = tokio::time::interval(TRIM_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // immediate; nothing has been freed yet
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        if let Err(e) = tokio::task::spawn_blocking(give_back_free_pages).await {
            tracing::warn!(error = %e, "returning free memory to the system failed");
        }
    }
}

/// Where the process's memory is, for `roost_process_memory_bytes{kind}`: what tells a
/// leak (the heap in use climbing) from a bound being reached or from free memory the
/// allocator keeps.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reading {
    /// Resident anonymous memory (the heap, stacks): `RssAnon` of `/proc/self/status`.
    pub resident_anonymous: Option<u64>,
    /// Resident file-backed pages (the binary's code and data, shared libraries): `RssFile`.
    pub resident_file: Option<u64>,
    /// Bytes the C allocator has handed out and not yet been given back (arenas and mapped
    /// blocks; SQLite's cached pages are not, when they live in `store::page_region`).
    pub heap_in_use: Option<u64>,
    /// Free bytes the allocator holds in its arenas (until reused or trimmed).
    pub heap_free: Option<u64>,
    /// Resident bytes of SQLite's page-cache region (`store::page_region`), which is not
    /// part of the heap: the slots that have held a page since the region was last trimmed.
    pub db_page_region: Option<u64>,
}

impl Reading {
    /// The `kind` label and value of each figure that could be read.
    pub fn figures(&self) -> impl Iterator<Item = (&'static str, u64)> {
        [
            ("resident_anonymous", self.resident_anonymous),
            ("resident_file", self.resident_file),
            ("heap_in_use", self.heap_in_use),
            ("heap_free", self.heap_free),
            ("db_page_region", self.db_page_region),
        ]
        .into_iter()
        .filter_map(|(kind, v)| v.map(|v| (kind, v)))
    }
}

/// Reads the process's memory. Takes the allocator's arena locks for a moment and reads
/// `/proc`: call it off the async threads.
pub fn read() -> Reading {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mut reading = Reading {
        resident_anonymous: status_kib(&status, "RssAnon:").map(|k| k * 1024),
        resident_file: status_kib(&status, "RssFile:").map(|k| k * 1024),
        db_page_region: crate::store::page_region::usage().map(|u| u.touched),
        ..Reading::default()
    };
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 (glibc 2.33+; the binary already needs 2.34) walks the arenas
        // under their locks and returns a plain struct; it has no preconditions.
        let info = unsafe { libc::mallinfo2() };
        // uordblks: in use in the arenas; hblkhd: in blocks mapped on their own.
        reading.heap_in_use = Some((info.uordblks + info.hblkhd) as u64);
        reading.heap_free = Some(info.fordblks as u64);
    }
    reading
}

/// The value in KiB of a `/proc/<pid>/status` line such as `RssAnon:   1234 kB`.
fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks freed between blocks still in use cannot go back on `free`; trimming returns
    /// their pages. Measured in a child process running only this test: in the test binary's
    /// own process, other tests allocating and freeing at the same moment moved its RSS by
    /// more than the 64 MiB margin under load.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn free_pages_between_blocks_in_use_go_back_to_the_system() {
        let test = "ops::memory::tests::free_pages_between_blocks_in_use_go_back_to_the_system";
        if crate::test_child::alone(test, "ROOST_MEMORY_TRIM_CHILD", &["1"]).is_none() {
            return;
        }
        fn rss_kib() -> i64 {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
            line.split_whitespace().nth(1).unwrap().parse().unwrap()
        }
        // 64 KiB: under glibc's mmap threshold, so they come from an arena.
        let (mut freed, mut kept) = (Vec::new(), Vec::new());
        for i in 0..2048u32 {
            freed.push(vec![i as u8; 64 * 1024]);
            kept.push(vec![i as u8; 64]);
        }
        drop(freed);
        let before = rss_kib();
        give_back_free_pages();
        let after = rss_kib();
        assert!(
            before - after >= 64 * 1024,
            "RSS {before} KiB before trimming, {after} KiB after"
        );
        drop(kept);
    }

    /// A block taken shows up in the heap in use, and goes when it is freed.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn the_reading_sees_the_heap_grow_and_shrink() {
        // Other tests of this binary allocate meanwhile (a password hash takes 19 MiB), so
        // the block is large and the check leaves a wide margin.
        const BLOCK: usize = 96 * 1024 * 1024;
        const MARGIN: u64 = 64 * 1024 * 1024;
        let before = read();
        let block = vec![0u8; BLOCK];
        let during = read();
        drop(std::hint::black_box(block));
        let after = read();
        let (b, d, a) = (
            before.heap_in_use.unwrap(),
            during.heap_in_use.unwrap(),
            after.heap_in_use.unwrap(),
        );
        assert!(d >= b + MARGIN, "in use {b} before, {d} with the block");
        assert!(a + MARGIN <= d, "in use {d} with the block, {a} after");
        assert!(during.resident_anonymous.unwrap() > 0);
        assert!(during.resident_file.unwrap() > 0);
        assert_eq!(during.figures().count(), 4);
    }

    #[test]
    fn status_lines_are_read_in_kib() {
        let status = "Name:\troost\nRssAnon:\t    1234 kB\nRssFile:\t 5 kB\n";
        assert_eq!(status_kib(status, "RssAnon:"), Some(1234));
        assert_eq!(status_kib(status, "RssFile:"), Some(5));
        assert_eq!(status_kib(status, "RssShmem:"), None);
    }

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
