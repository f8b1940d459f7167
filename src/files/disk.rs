//! Free space and size of the filesystem holding the data dir.
//!
//! Read with `statvfs` so it is the space available to the (unprivileged) daemon, not the
//! root-reserved blocks.

use std::path::Path;

/// Bytes available to unprivileged writers on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let st = nix::sys::statvfs::statvfs(path).map_err(std::io::Error::from)?;
    // Both are u64 (or u32 on 32-bit ARM), so the widening casts cannot truncate.
    #[allow(clippy::unnecessary_cast)]
    Ok(st.blocks_available() as u64 * st.fragment_size() as u64)
}

/// Size in bytes of the filesystem holding `path`.
pub fn total_bytes(path: &Path) -> std::io::Result<u64> {
    let st = nix::sys::statvfs::statvfs(path).map_err(std::io::Error::from)?;
    // As in `free_bytes`: widening casts only.
    #[allow(clippy::unnecessary_cast)]
    Ok(st.blocks() as u64 * st.fragment_size() as u64)
}
