//! What an upload says about itself and what its first bytes say: the display name from
//! `?name=` (`files::upload::display_name`), the `Content-Disposition` built from it on download
//! (`files::download::disposition`), and the type from magic bytes (`files::sniff::sniff`) with
//! the allowlist decision (`files::upload::judge`).
//!
//! Must hold: nothing panics; a display name is never a path (no `/` or `\`, not `.` or `..`),
//! holds no control character and nothing that reorders how the rest of it displays (bidi
//! overrides and isolates, line and paragraph separators), is not empty, has at most 200
//! characters, has no surrounding whitespace, and is its own display name; the disposition
//! header is always built (never the fallback) and its `filename*` decodes to the name; sniffing
//! only ever reports a known type, the same one whether or not the file ends there (except for
//! text), and text only for UTF-8 without NUL; the upload is accepted exactly when the sniffed
//! type is allowed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use roost::config::attachments::KNOWN_TYPES;
use roost::files::download::disposition;
use roost::files::sniff::{sniff, Sniffed, SNIFF_LEN};
use roost::files::upload::{display_name, judge};
use roost::files::FilesError;

/// Characters that change how the text after them is shown (Trojan Source, CVE-2021-42574).
fn reorders(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{2028}' | '\u{2029}')
}

fn check_name(raw: &str) {
    let name = display_name(Some(raw));
    assert!(!name.is_empty());
    assert!(name.chars().count() <= 200, "{name:?}");
    assert!(!name.contains(['/', '\\']), "{name:?} is a path");
    assert!(name != "." && name != "..", "{name:?}");
    assert!(!name.chars().any(char::is_control), "{name:?}");
    assert!(!name.chars().any(reorders), "{raw:?} -> {name:?} reorders its display");
    assert_eq!(name.trim(), name, "surrounding whitespace in {name:?}");
    assert_eq!(display_name(Some(&name)), name, "a display name is its own");

    for kind in ["inline", "attachment"] {
        let header = disposition(kind, &name);
        let text = header.to_str().expect("visible ASCII");
        // The last marker: the quoted ASCII name before it may spell one too.
        let encoded = text
            .rsplit_once("filename*=UTF-8''")
            .map(|(_, e)| e)
            .unwrap_or_else(|| panic!("{text:?}: the fallback, for {name:?}"));
        let mut bytes = Vec::new();
        let mut it = encoded.bytes();
        while let Some(b) = it.next() {
            if b == b'%' {
                let hex = [it.next().expect("two hex digits"), it.next().expect("two hex digits")];
                let hex = std::str::from_utf8(&hex).expect("ASCII");
                bytes.push(u8::from_str_radix(hex, 16).expect("hex"));
            } else {
                bytes.push(b);
            }
        }
        assert_eq!(bytes, name.as_bytes(), "filename* of {name:?}");
    }
}

fn check_sniff(head: &[u8], allowed_mask: u16) {
    let head = &head[..head.len().min(SNIFF_LEN)];
    let ended = sniff(head, true);
    let cut = sniff(head, false);
    for s in [ended, cut] {
        if let Sniffed::Type(t) = s {
            assert!(KNOWN_TYPES.contains(&t), "{t} is not a known type");
        }
    }
    let text = Sniffed::Type("text/plain");
    if ended != text && cut != text {
        assert_eq!(ended, cut, "only text depends on whether the file ends there");
    }
    if ended == text {
        let s = std::str::from_utf8(head).expect("text is UTF-8 when the file ends there");
        assert!(!s.contains('\0'));
    }
    if cut == text {
        assert!(!head.contains(&0));
    }

    let allowed = |t: &'static str| {
        KNOWN_TYPES
            .iter()
            .position(|k| *k == t)
            .is_some_and(|i| allowed_mask & (1 << i) != 0)
    };
    for (complete, sniffed) in [(true, ended), (false, cut)] {
        match (judge(head, complete, &allowed), sniffed) {
            (Ok(t), Sniffed::Type(s)) => assert!(t == s && allowed(t)),
            (Err(FilesError::Unsupported(_)), Sniffed::Type(s)) => assert!(!allowed(s)),
            (Err(FilesError::Unsupported(_)), Sniffed::Unknown) => assert!(!head.is_empty()),
            (Err(FilesError::Empty), Sniffed::Unknown) => assert!(head.is_empty()),
            (r, s) => panic!("judge gave {r:?} for {s:?}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (mask, rest) = (u16::from_le_bytes([data[0], data[1]]), &data[2..]);
    // The query string is percent-decoded into a String by axum: any UTF-8.
    check_name(&String::from_utf8_lossy(rest));
    check_sniff(rest, mask);
});
