//! One region of memory, outside the C allocator, for the pages SQLite caches.
//!
//! By default SQLite `malloc`s each cached page on its own, and in WAL mode a reader empties
//! its whole cache when it starts reading after another connection's commit. On a server that
//! writes all the time the readers free and allocate hundreds of 4 KiB pages a second, between
//! everything else in the allocator's arenas, and what they free below memory still in use
//! stays resident. In the soak (`scripts/robustness/soak.py`) the allocator's free memory grew
//! from 2.4 to 5.5 MiB in 14 minutes, and SQLite's pages were two thirds of the memory in use.
//!
//! [`reserve`] maps a region with a slot for each page every connection's cache can hold
//! ([`slots_for`]) and installs SQLite's memory hooks (`SQLITE_CONFIG_MALLOC`): a request of a
//! cached page's size gets the lowest free slot, anything else (and a page when the region is
//! full) goes to `malloc` as before. Nothing of the region is written before SQLite asks for a
//! slot, so only slots that have held a page are resident: an idle daemon holds a few hundred
//! KiB of it, not the whole region. (SQLite's own `SQLITE_CONFIG_PAGECACHE` threads a free
//! list through every slot when it starts, which made all of it resident at once.) Taking the
//! lowest slot keeps the pages in use at the bottom; when the highest ones are freed and the
//! top has dropped by [`TRIM_BYTES`], the pages above it are given back to the kernel.
//!
//! Call [`reserve`] before the process opens its first SQLite connection: SQLite takes the
//! hooks only before it initializes. Tools and tests that skip it get SQLite's default.

use std::os::raw::{c_int, c_void};
use std::sync::{Mutex, MutexGuard, OnceLock};

use rusqlite::ffi;

/// The page size the region is made for: SQLite's default, which Roost never changes.
pub const PAGE_BYTES: usize = 4096;

/// SQLite's default `cache_size` (-2000: KiB), which Roost's connections keep.
pub const CACHE_KIB_PER_CONNECTION: usize = 2000;

/// How far the highest slot in use must drop below the highest resident one before the
/// pages between are given back: enough that a cache filling and emptying does not make a
/// system call each time.
pub const TRIM_BYTES: usize = 1 << 20;

/// The kernel's page size: what is resident or given back, whole (4 KiB, or 16 KiB on a
/// Raspberry Pi 5's default kernel).
fn os_page() -> usize {
    // SAFETY: sysconf reads a constant of the running system.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|s| s.is_power_of_two())
        .unwrap_or(4096)
}

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

/// Maps a region for the page caches of `connections` connections and has SQLite allocate
/// its pages there. An error if SQLite has already initialized (a connection was opened
/// before), the region cannot be mapped or was reserved already; SQLite then keeps
/// `malloc`ing its pages, which works as well.
pub fn reserve(connections: usize) -> Result<Region, String> {
    if SLAB.get().is_some() {
        return Err("the page-cache region is reserved already".into());
    }
    let slot_bytes = (PAGE_BYTES + header_bytes()).next_multiple_of(16);
    let slab = Slab::map(Region {
        slots: slots_for(connections, slot_bytes),
        slot_bytes,
    })?;
    let methods = ffi::sqlite3_mem_methods {
        xMalloc: Some(hook_malloc),
        xFree: Some(hook_free),
        xRealloc: Some(hook_realloc),
        xSize: Some(hook_size),
        xRoundup: Some(hook_roundup),
        xInit: Some(hook_init),
        xShutdown: Some(hook_shutdown),
        pAppData: std::ptr::null_mut(),
    };
    // SAFETY: SQLITE_CONFIG_MALLOC copies the struct, which is live for the call; the hooks
    // are `extern "C"` functions that never unwind. SQLite refuses (SQLITE_MISUSE) if it has
    // initialized already, and then never calls them.
    let rc = unsafe {
        ffi::sqlite3_config(
            ffi::SQLITE_CONFIG_MALLOC,
            &methods as *const ffi::sqlite3_mem_methods,
        )
    };
    if rc != ffi::SQLITE_OK {
        slab.unmap();
        return Err(format!(
            "SQLite refused the page-cache region (code {rc}): it had already started"
        ));
    }
    // SQLite calls no hook before it initializes, which comes after this: a connection
    // opened later. Until the slab is set the hooks use `malloc` alone, and they tell the
    // slab's slots from `malloc`'s blocks by address, so no order of the two can mix them.
    let region = slab.region;
    SLAB.set(slab).map_err(|slab| {
        slab.unmap();
        "the page-cache region is reserved already".to_string()
    })?;
    Ok(region)
}

/// The slab the hooks allocate from, set once SQLite has taken them.
static SLAB: OnceLock<Slab> = OnceLock::new();

/// How much of the region SQLite is using.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Use {
    /// Bytes of the slots holding a page now.
    pub in_use: u64,
    /// Bytes of the region written since they were last given back: its resident part.
    pub touched: u64,
}

/// The region's use, or `None` if [`reserve`] did not give SQLite one.
pub fn usage() -> Option<Use> {
    SLAB.get().map(Slab::usage)
}

/// Slots of one size in a private anonymous mapping, handed out lowest first.
struct Slab {
    /// The mapping's address; page-aligned, never unmapped.
    base: usize,
    region: Region,
    /// The kernel's page size ([`os_page`]).
    os_page: usize,
    state: Mutex<Slots>,
}

struct Slots {
    /// One bit per slot, set while SQLite holds it.
    used: Vec<u64>,
    in_use: usize,
    /// Slots below this index have been written since the last trim (so are resident);
    /// none above it has.
    touched: usize,
}

impl Slab {
    fn map(region: Region) -> Result<Slab, String> {
        // SAFETY: a new private anonymous mapping: no address hint, no file; the kernel picks
        // the place. Its pages are zero and become resident only when first written, and
        // MAP_NORESERVE charges none of it to the commit limit until then.
        let memory = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                region.bytes(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
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
        Ok(Slab {
            base: memory as usize,
            region,
            os_page: os_page(),
            state: Mutex::new(Slots {
                used: vec![0; region.slots.div_ceil(64)],
                in_use: 0,
                touched: 0,
            }),
        })
    }

    /// Gives the mapping back; only for a slab SQLite was never given.
    fn unmap(self) {
        // SAFETY: the mapping `map` made, `region.bytes()` long; no hook can reach a slab
        // that is not in `SLAB`, so nothing else holds a pointer into it.
        unsafe { libc::munmap(self.base as *mut c_void, self.region.bytes()) };
    }

    /// The resident bytes of the lowest `slots` slots: the pages they cover, whole.
    fn resident_bytes(&self, slots: usize) -> u64 {
        (slots * self.region.slot_bytes).next_multiple_of(self.os_page) as u64
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        // Nothing panics while the lock is held; a poisoned lock's bitmap is still whole.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `p` points into the region (then it is the start of a slot SQLite holds).
    fn owns(&self, p: usize) -> bool {
        p >= self.base && p < self.base + self.region.bytes()
    }

    /// Whether an allocation of `bytes` is a cached page, which a slot holds.
    fn fits(&self, bytes: usize) -> bool {
        bytes > PAGE_BYTES && bytes <= self.region.slot_bytes
    }

    /// The lowest free slot's address, or `None` when every slot is taken.
    fn take(&self) -> Option<usize> {
        let mut slots = self.lock();
        let (word, bits) = slots
            .used
            .iter()
            .enumerate()
            .find(|(_, bits)| **bits != u64::MAX)?;
        let index = word * 64 + bits.trailing_ones() as usize;
        if index >= self.region.slots {
            return None;
        }
        slots.used[word] |= 1 << (index % 64);
        slots.in_use += 1;
        slots.touched = slots.touched.max(index + 1);
        Some(self.base + index * self.region.slot_bytes)
    }

    /// Frees the slot at `p` (from [`Slab::take`]); gives back the region's pages above the
    /// highest slot still in use once that is [`TRIM_BYTES`] below the resident top.
    fn give_back(&self, p: usize) {
        let index = (p - self.base) / self.region.slot_bytes;
        let mut slots = self.lock();
        let bit = 1u64 << (index % 64);
        if slots.used[index / 64] & bit == 0 {
            return; // not handed out: never the case for a pointer SQLite frees
        }
        slots.used[index / 64] &= !bit;
        slots.in_use -= 1;
        // Only freeing the highest slot in use lowers the top.
        let keep = slots.highest_in_use().map_or(0, |top| top + 1);
        let slot = self.region.slot_bytes;
        if keep > index || (slots.touched - keep) * slot < TRIM_BYTES {
            return;
        }
        let from = (self.base + keep * slot).next_multiple_of(self.os_page);
        let to = (self.base + slots.touched * slot).next_multiple_of(self.os_page);
        // SAFETY: [from, to) lies in the mapping (`to` is at most its end, which is
        // page-aligned) and holds only free slots, none of which SQLite can be using: the
        // first page boundary at or after the end of the highest slot in use. Their pages
        // read as zero afterwards, which nothing relies on either way.
        let rc = unsafe { libc::madvise(from as *mut c_void, to - from, libc::MADV_DONTNEED) };
        if rc == 0 {
            slots.touched = keep;
        }
    }

    fn usage(&self) -> Use {
        let slots = self.lock();
        Use {
            in_use: (slots.in_use * self.region.slot_bytes) as u64,
            touched: self.resident_bytes(slots.touched),
        }
    }
}

impl Slots {
    fn highest_in_use(&self) -> Option<usize> {
        let (word, bits) = self
            .used
            .iter()
            .enumerate()
            .rev()
            .find(|(_, bits)| **bits != 0)?;
        Some(word * 64 + 63 - bits.leading_zeros() as usize)
    }
}

// SQLite's memory hooks. Each is called by SQLite from any thread, must not unwind, and sees
// only pointers it returned itself: slots of the slab, or blocks from `malloc`.

extern "C" fn hook_malloc(bytes: c_int) -> *mut c_void {
    let bytes = usize::try_from(bytes).unwrap_or(0);
    if let Some(slab) = SLAB.get().filter(|slab| slab.fits(bytes)) {
        if let Some(slot) = slab.take() {
            return slot as *mut c_void;
        }
    }
    // SAFETY: plain malloc; SQLite handles a null result.
    unsafe { libc::malloc(bytes.max(1)) }
}

extern "C" fn hook_free(p: *mut c_void) {
    match SLAB.get() {
        Some(slab) if slab.owns(p as usize) => slab.give_back(p as usize),
        // SAFETY: not a slot, so a block from `malloc` (or null) that SQLite frees once.
        _ => unsafe { libc::free(p) },
    }
}

extern "C" fn hook_realloc(p: *mut c_void, bytes: c_int) -> *mut c_void {
    let bytes = usize::try_from(bytes).unwrap_or(0);
    match SLAB.get() {
        Some(slab) if slab.owns(p as usize) => {
            if slab.fits(bytes) {
                return p;
            }
            // SAFETY: plain malloc; on failure the slot stays SQLite's, as realloc promises.
            let moved = unsafe { libc::malloc(bytes.max(1)) };
            if !moved.is_null() {
                // SAFETY: `p` is a whole slot SQLite holds and `moved` a new block of `bytes`;
                // they do not overlap.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        p as *const u8,
                        moved as *mut u8,
                        bytes.min(slab.region.slot_bytes),
                    )
                };
                slab.give_back(p as usize);
            }
            moved
        }
        // SAFETY: not a slot, so a block from `malloc` that SQLite owns.
        _ => unsafe { libc::realloc(p, bytes.max(1)) },
    }
}

extern "C" fn hook_size(p: *mut c_void) -> c_int {
    let bytes = match SLAB.get() {
        Some(slab) if slab.owns(p as usize) => slab.region.slot_bytes,
        _ if p.is_null() => 0,
        // SAFETY: not a slot, so a live block from `malloc`.
        _ => unsafe { libc::malloc_usable_size(p) },
    };
    c_int::try_from(bytes).unwrap_or(c_int::MAX)
}

extern "C" fn hook_roundup(bytes: c_int) -> c_int {
    bytes.checked_add(7).map_or(bytes, |b| b & !7)
}

extern "C" fn hook_init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

extern "C" fn hook_shutdown(_: *mut c_void) {}

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

    fn slab(slots: usize) -> Slab {
        Slab::map(Region {
            slots,
            slot_bytes: PAGE_BYTES + 272,
        })
        .unwrap()
    }

    #[test]
    fn nothing_is_resident_until_a_slot_is_taken_and_the_lowest_free_slot_comes_first() {
        let slab = slab(1000);
        assert_eq!(slab.usage(), Use::default());
        let slot = slab.region.slot_bytes;
        let taken: Vec<usize> = (0..3).map(|_| slab.take().unwrap()).collect();
        assert_eq!(taken, [0, 1, 2].map(|i| slab.base + i * slot));
        slab.give_back(taken[1]);
        assert_eq!(
            slab.take(),
            Some(taken[1]),
            "a hole is filled before the top grows"
        );
        let used = slab.usage();
        assert_eq!(used.in_use, 3 * slot as u64);
        assert_eq!(used.touched, slab.resident_bytes(3));
    }

    #[test]
    fn a_full_slab_refuses_and_a_freed_slot_is_taken_again() {
        let slab = slab(70);
        let all: Vec<usize> = (0..70).map(|_| slab.take().unwrap()).collect();
        assert_eq!(slab.take(), None, "70 slots, no more");
        slab.give_back(all[65]);
        assert_eq!(slab.take(), Some(all[65]));
    }

    #[test]
    fn the_pages_above_the_highest_slot_in_use_are_given_back_once_it_drops_far_enough() {
        let slab = slab(1000);
        let slot = slab.region.slot_bytes;
        let all: Vec<usize> = (0..600).map(|_| slab.take().unwrap()).collect();
        for &p in &all {
            // SAFETY: a slot this test holds, `slot` bytes long.
            unsafe { std::ptr::write_bytes(p as *mut u8, 0xa5, slot) };
        }
        // Freeing below the top gives nothing back: the slot at the top is still in use.
        for &p in &all[10..599] {
            slab.give_back(p);
        }
        assert_eq!(slab.usage().touched, slab.resident_bytes(600));
        // Freeing the top lowers it to slot 9, far more than TRIM_BYTES down: the rest goes.
        slab.give_back(all[599]);
        let used = slab.usage();
        assert_eq!(used.in_use, 10 * slot as u64);
        assert_eq!(used.touched, slab.resident_bytes(10));
        // The slots still held are untouched, and the region fills from the bottom again.
        // SAFETY: slot 9 is held by this test.
        assert_eq!(unsafe { *((all[9] + slot - 1) as *const u8) }, 0xa5);
        assert_eq!(slab.take(), Some(all[10]));
    }

    #[test]
    fn a_small_drop_of_the_top_keeps_the_pages() {
        let slab = slab(1000);
        let all: Vec<usize> = (0..100).map(|_| slab.take().unwrap()).collect();
        for &p in all[90..].iter().rev() {
            slab.give_back(p);
        }
        // Ten slots (~43 KiB) below TRIM_BYTES: resident still, for the cache to refill.
        assert_eq!(slab.usage().touched, slab.resident_bytes(100));
    }
}
