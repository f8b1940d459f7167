//! SHA-256 of files, copies that hash what they write, and the `SHA256SUMS` format that
//! `sha256sum -c` reads. Shared by `ops::backup` and `ops::restore`.
//!
//! Files are streamed in fixed-size chunks, so memory use does not grow with file size. This
//! module never decides which files matter or what a mismatch means; callers do.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use ring::digest::{Context, SHA256};

/// Read/write chunk: large enough for SD-card throughput, small enough to be irrelevant.
const CHUNK: usize = 256 * 1024;

/// A file's SHA-256 (lowercase hex) and its length in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    pub hex: String,
    pub bytes: u64,
}

/// Hashes the file at `path`; `on_chunk(bytes)` is called as it reads (for progress bars).
pub fn hash_file(path: &Path, on_chunk: &mut dyn FnMut(u64)) -> std::io::Result<Digest> {
    let mut file = File::open(path)?;
    let mut ctx = Context::new(&SHA256);
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
        total += n as u64;
        on_chunk(n as u64);
    }
    Ok(Digest {
        hex: hex::encode(ctx.finish()),
        bytes: total,
    })
}

/// Copies `src` to the new file `dest` (mode `mode`, never overwriting), hashing the bytes
/// as they are read, and syncs it. Returns the digest of what was read. A hard link would be
/// cheaper but is not a copy: it shares the damage if the original's blocks go bad.
pub fn copy_hashed(
    src: &Path,
    dest: &Path,
    mode: u32,
    on_chunk: &mut dyn FnMut(u64),
) -> std::io::Result<Digest> {
    let mut input = File::open(src)?;
    let mut output = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(dest)?;
    let mut ctx = Context::new(&SHA256);
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0u64;
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
        output.write_all(&buf[..n])?;
        total += n as u64;
        on_chunk(n as u64);
    }
    output.sync_all()?;
    Ok(Digest {
        hex: hex::encode(ctx.finish()),
        bytes: total,
    })
}

/// Syncs a directory, so renames and new entries in it survive a power cut.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Whether `path` can be written into a `SHA256SUMS` line as is. GNU sha256sum escapes
/// names with a newline or backslash; Roost never makes such names, so it refuses them
/// instead of implementing the escape.
pub fn listable(path: &str) -> bool {
    !path.is_empty() && !path.contains(['\n', '\r', '\\'])
}

/// One `SHA256SUMS` line in sha256sum's text-mode form: `<hex>  <path>`.
pub fn sums_line(hex: &str, path: &str) -> String {
    format!("{hex}  {path}\n")
}

/// Parses one `SHA256SUMS` line into `(hex, path)`; accepts text (`  `) and binary (` *`)
/// mode. `Err` says what is wrong with it.
pub fn parse_sums_line(line: &str) -> Result<(String, String), &'static str> {
    let (hex, rest) = line
        .split_at_checked(64)
        .ok_or("too short for a SHA-256 line")?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("does not start with a 64-digit hex SHA-256");
    }
    let path = rest
        .strip_prefix("  ")
        .or_else(|| rest.strip_prefix(" *"))
        .ok_or("the hash is not followed by two spaces and a file name")?;
    if !listable(path) {
        return Err("the file name is empty or escaped");
    }
    Ok((hex.to_ascii_lowercase(), path.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_hashes_what_it_copies_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let (src, dest) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&src, b"abc").unwrap();
        let mut seen = 0;
        let d = copy_hashed(&src, &dest, 0o600, &mut |n| seen += n).unwrap();
        assert_eq!(
            d.hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!((d.bytes, seen), (3, 3));
        assert_eq!(std::fs::read(&dest).unwrap(), b"abc");
        assert_eq!(hash_file(&dest, &mut |_| {}).unwrap(), d);
        assert!(copy_hashed(&src, &dest, 0o600, &mut |_| {}).is_err());
    }

    #[test]
    fn sums_lines_round_trip_and_bad_ones_are_named() {
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let line = sums_line(hex, "attachments/ab/cd");
        assert_eq!(
            parse_sums_line(line.trim_end_matches('\n')).unwrap(),
            (hex.to_owned(), "attachments/ab/cd".to_owned())
        );
        assert!(parse_sums_line(&format!("{hex} *x")).is_ok());
        assert!(parse_sums_line(&format!("{hex} x")).is_err());
        assert!(parse_sums_line("zz").is_err());
        assert!(!listable("a\\b") && !listable("a\nb") && !listable(""));
    }
}
