//! The `Range` header of `GET /api/v1/attachments/{id}` (`files::download::parse_range`),
//! against files of every size from 0 to `u64::MAX`.
//!
//! Must hold for any header: nothing panics; a range to serve lies inside the file
//! (`first <= last < size`, so the handler's `last - first + 1` and `Content-Range` cannot
//! overflow); 416 only names the file's own size. And for a well-formed single range built
//! from the input, the answer is RFC 9110's: `a-b` with `a > b` is ignored (whole file), a first
//! byte at or past the end is 416, a last byte past the end is clamped, `-n` is the last `n`
//! bytes (416 for `-0` or an empty file).
#![no_main]

use libfuzzer_sys::fuzz_target;
use roost::files::download::parse_range;
use roost::files::FilesError;

type Answer = Result<Option<(u64, u64)>, u64>;

fn answer(value: &str, size: u64) -> Answer {
    match parse_range(value, size) {
        Ok(Some((first, last))) => {
            assert!(
                first <= last && last < size,
                "{value:?} on {size} bytes gave {first}-{last}"
            );
            Ok(Some((first, last)))
        }
        Ok(None) => Ok(None),
        Err(FilesError::RangeNotSatisfiable(s)) => {
            assert_eq!(s, size, "416 names the file's size");
            Err(s)
        }
        Err(e) => panic!("{value:?}: unexpected error {e:?}"),
    }
}

/// RFC 9110 section 14.1.2 / 14.1.1 for one well-formed range.
fn expected(first: Option<u64>, last: Option<u64>, size: u64) -> Answer {
    match (first, last) {
        (Some(a), Some(b)) if a > b => Ok(None),
        (Some(a), _) if a >= size => Err(size),
        (Some(a), Some(b)) => Ok(Some((a, b.min(size - 1)))),
        (Some(a), None) => Ok(Some((a, size - 1))),
        (None, Some(n)) if n == 0 || size == 0 => Err(size),
        (None, Some(n)) => Ok(Some((size - n.min(size), size - 1))),
        (None, None) => Ok(None),
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 18 {
        return;
    }
    let num = |b: &[u8]| u64::from_le_bytes(b.try_into().expect("8 bytes"));
    let (sel, size, a, b, rest) = (
        data[0],
        num(&data[1..9]),
        num(&data[9..17]),
        data[17],
        &data[18..],
    );
    // Small files are where the edge cases live; keep many sizes near zero.
    let size = if sel & 0x80 == 0 { size % 1024 } else { size };

    // Any header text.
    if let Ok(text) = std::str::from_utf8(rest) {
        let _ = answer(text, size);
    }

    // A well-formed single range from the numbers.
    let b = if sel & 0x40 == 0 {
        a.wrapping_add(u64::from(b))
    } else {
        u64::from(b)
    };
    let a = if sel & 0x20 == 0 { a % 2048 } else { a };
    let (first, last) = match sel & 0x03 {
        0 => (Some(a), Some(b)),
        1 => (Some(a), None),
        _ => (None, Some(b)),
    };
    let header = format!(
        "bytes={}-{}",
        first.map(|v| v.to_string()).unwrap_or_default(),
        last.map(|v| v.to_string()).unwrap_or_default()
    );
    assert_eq!(
        answer(&header, size),
        expected(first, last, size),
        "{header} on {size} bytes"
    );
});
