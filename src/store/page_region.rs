//! One region of memory, outside the allocator, for the page caches of every SQLite
//! connection in the daemon.
//!
//! By default SQLite `malloc`s each cached page on its own, and in WAL mode a reader empties
//! its whole cache when it starts reading after another connection's commit. On a server that
//! writes all the time the readers free and allocate hundreds of 4 KiB pages a second, between
//! everything else in the allocator's arenas, and what they free below memory still in use
//! stays resident. In the soak (`scripts/robustness/soak.py`) the allocator's free memory grew
//! from 2.4 to 5.5 MiB in 14 minutes, and SQLite's pages were two thirds of the memory in use.
//!
//! [`reserve`] gives SQLite a region of its own (`SQLITE_CONFIG_PAGECACHE`), mapped once and
//! never returned. Its slots are reused last-freed-first, so only as many of its pages become
//! resident as the caches have held at once: at most the region, which is sized for every
//! connection's cache full ([`slots_for`]). A page that does not fit (the region full, or a
//! database with larger pages) comes from `malloc` as before.
//!
//! Call [`reserve`] before the process opens its first SQLite connection: SQLite takes the
//! setting only before it initializes. Tools and tests that skip it get SQLite's default.

use std::os::raw::{c_int, c_void};

use rusqlite::ffi;

/// The page size the region is made for: SQLite's default, which Roost never changes.
pub const PAGE_BYTES: usize = 4096;

/// SQLite's default `cache_size` (-2000: KiB), which Roost's connections keep.
pub const CACHE_KIB_PER_CONNECTION: usize = 2000;

/// The region SQLite was given: `slots` slots of `slot_bytes` each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub slots: usize,
    pub slot_bytes: usize,
}

impl Region {
    pub fn bytes(&self) -> usize {
        self.slots * self.slot_bytes
    }
}

/// Slots for `connections` caches of [`CACHE_KIB_PER_CONNECTION`] each, with one cache more
/// for temporary tables (sorts) and the occasional extra connection (backups).
pub fn slots_for(connections: usize, slot_bytes: usize) -> usize {
    (connections + 1) * (CACHE_KIB_PER_CONNECTION * 1024).div_ceil(slot_bytes)
}

/// What SQLite adds to each page for its own bookkeeping (`SQLITE_CONFIG_PCACHE_HDRSZ`).
fn header_bytes() -> usize {
    let mut header: c_int = 0;
    // SAFETY: SQLITE_CONFIG_PCACHE_HDRSZ may be asked at any time; it writes one int
    // through the pointer, which points at a live local.
    let rc = unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_PCACHE_HDRSZ, &mut header) };
    if rc == ffi::SQLITE_OK {
        usize::try_from(header).unwrap_or(0)
    } else {
        0
    }
}

/// Maps a region for the page caches of `connections` connections and hands it to SQLite.
/// An error if SQLite has already initialized (a connection was opened before) or the
/// region cannot be mapped; SQLite then keeps `malloc`ing its pages, which works as well.
pub fn reserve(connections: usize) -> Result<Region, String> {
    let slot_bytes = (PAGE_BYTES + header_bytes()).next_multiple_of(8);
    let region = Region {
        slots: slots_for(connections, slot_bytes),
        slot_bytes,
    };
    let (Ok(slot_arg), Ok(slots_arg)) = (
        c_int::try_from(region.slot_bytes),
        c_int::try_from(region.slots),
    ) else {
        return Err(format!("a page-cache region of {region:?} is too large"));
    };
    // SAFETY: a new private anonymous mapping: no address hint, no file; the kernel picks
    // the place. Its pages are zero and become resident only when first written.
    let memory = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            region.bytes(),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if memory == libc::MAP_FAILED {
        return Err(format!(
            "cannot map {} bytes for the page cache: {}",
            region.bytes(),
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: `memory` is page-aligned (so 8-byte aligned), `slots * slot_bytes` long, and
    // never unmapped after SQLite takes it, so it outlives every connection. SQLite refuses
    // (SQLITE_MISUSE) if it has initialized already; it then never uses the pointer.
    let rc = unsafe {
        ffi::sqlite3_config(
            ffi::SQLITE_CONFIG_PAGECACHE,
            memory as *mut c_void,
            slot_arg,
            slots_arg,
        )
    };
    if rc != ffi::SQLITE_OK {
        // SAFETY: the mapping made above, which SQLite did not take; nothing else has it.
        unsafe { libc::munmap(memory, region.bytes()) };
        return Err(format!(
            "SQLite refused the page-cache region (code {rc}): it had already started"
        ));
    }
    REGION.get_or_init(|| region);
    Ok(region)
}

static REGION: std::sync::OnceLock<Region> = std::sync::OnceLock::new();

/// How much of the region SQLite has used, when it was given one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Use {
    /// Bytes of the slots in use now.
    pub in_use: u64,
    /// Bytes of the most slots in use at once since the start: the region's pages that have
    /// been written, hence resident.
    pub touched: u64,
}

/// The region's use, or `None` if [`reserve`] did not give SQLite one.
pub fn usage() -> Option<Use> {
    let region = REGION.get()?;
    let (mut current, mut highwater) = (0i64, 0i64);
    // SAFETY: reads a global counter under SQLite's own mutex; the out pointers are live
    // locals, and reset flag 0 changes nothing.
    let rc = unsafe {
        ffi::sqlite3_status64(
            ffi::SQLITE_STATUS_PAGECACHE_USED,
            &mut current,
            &mut highwater,
            0,
        )
    };
    if rc != ffi::SQLITE_OK {
        return None;
    }
    let bytes = |slots: i64| u64::try_from(slots).unwrap_or(0) * region.slot_bytes as u64;
    Some(Use {
        in_use: bytes(current),
        touched: bytes(highwater),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_region_holds_every_connection_s_cache_and_one_more() {
        let slot = PAGE_BYTES + 256;
        let per_cache = (CACHE_KIB_PER_CONNECTION * 1024).div_ceil(slot);
        assert_eq!(slots_for(5, slot), 6 * per_cache);
        // About 12 MiB for the default writer and four readers.
        let bytes = slots_for(5, slot) * slot;
        assert!((11 << 20..13 << 20).contains(&bytes), "{bytes}");
    }

    #[test]
    fn the_header_sqlite_reports_is_a_few_hundred_bytes() {
        let header = header_bytes();
        assert!((64..1024).contains(&header), "{header}");
    }
}
