//! Recognises a file's type from its first bytes (magic numbers), never from what the client
//! says. Only the types in `config::attachments::KNOWN_TYPES` are ever reported.

/// Bytes looked at; enough for every signature below and a fair test of "is this text".
pub const SNIFF_LEN: usize = 512;

/// What the first bytes say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    Type(&'static str),
    /// Not one of the known types.
    Unknown,
}

/// The type of a file starting with `head` (at most [`SNIFF_LEN`] bytes, fewer only when the
/// file is that short: `complete` says the file ends there).
pub fn sniff(head: &[u8], complete: bool) -> Sniffed {
    let starts = |sig: &[u8]| head.starts_with(sig);
    let at = |offset: usize, sig: &[u8]| head.get(offset..offset + sig.len()) == Some(sig);
    let t = if starts(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if starts(b"\xff\xd8\xff") {
        "image/jpeg"
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        "image/gif"
    } else if starts(b"RIFF") && at(8, b"WEBP") {
        "image/webp"
    } else if starts(b"%PDF-") {
        "application/pdf"
    } else if at(4, b"ftyp") {
        if at(8, b"M4A ") || at(8, b"M4B ") {
            "audio/mp4"
        } else {
            "video/mp4"
        }
    } else if starts(b"\x1a\x45\xdf\xa3") {
        // EBML: WebM says so in its DocType near the start; other Matroska files are refused.
        if head.windows(4).take(64).any(|w| w == b"webm") {
            "video/webm"
        } else {
            return Sniffed::Unknown;
        }
    } else if starts(b"OggS") {
        "audio/ogg"
    } else if starts(b"ID3") || (head.len() >= 2 && head[0] == 0xff && (head[1] & 0xe0) == 0xe0) {
        "audio/mpeg"
    } else if is_text(head, complete) {
        "text/plain"
    } else {
        return Sniffed::Unknown;
    };
    Sniffed::Type(t)
}

/// UTF-8 without NUL or control characters other than tab, newlines and form feed. A
/// multi-byte character cut by the end of the sniffed window is allowed unless the file ends
/// there.
fn is_text(head: &[u8], complete: bool) -> bool {
    if head.is_empty() {
        return false;
    }
    let text = match std::str::from_utf8(head) {
        Ok(t) => t,
        Err(e) if !complete && e.error_len().is_none() => {
            // Only an incomplete sequence at the very end: the prefix is checked.
            match std::str::from_utf8(&head[..e.valid_up_to()]) {
                Ok(t) => t,
                Err(_) => return false,
            }
        }
        Err(_) => return false,
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.chars()
        .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r' | '\x0c'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_signatures() {
        let cases: [(&[u8], &str); 11] = [
            (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "image/png"),
            (b"\xff\xd8\xff\xe0\0\x10JFIF", "image/jpeg"),
            (b"GIF89a\x01\0\x01\0", "image/gif"),
            (b"RIFF\x24\0\0\0WEBPVP8 ", "image/webp"),
            (b"%PDF-1.7\n", "application/pdf"),
            (b"\0\0\0\x20ftypisom\0\0\x02\0", "video/mp4"),
            (b"\0\0\0\x20ftypM4A \0\0\0\0", "audio/mp4"),
            (
                b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm",
                "video/webm",
            ),
            (b"OggS\0\x02", "audio/ogg"),
            (b"ID3\x04\0", "audio/mpeg"),
            ("plain text, ünïcödé\r\n\tok".as_bytes(), "text/plain"),
        ];
        for (bytes, want) in cases {
            assert_eq!(sniff(bytes, true), Sniffed::Type(want), "{want}");
        }
    }

    #[test]
    fn everything_else_is_unknown() {
        assert_eq!(
            sniff(b"MZ\x90\0\x03", true),
            Sniffed::Unknown,
            "a Windows executable"
        );
        assert_eq!(sniff(b"\x7fELF\x02\x01", true), Sniffed::Unknown);
        assert_eq!(sniff(b"PK\x03\x04", true), Sniffed::Unknown, "zip");
        assert_eq!(
            sniff(b"\x1a\x45\xdf\xa3\x9f\x42\x86matroska", true),
            Sniffed::Unknown
        );
        assert_eq!(sniff(b"text\0with nul", true), Sniffed::Unknown);
        assert_eq!(sniff(b"", true), Sniffed::Unknown);
        assert_eq!(
            sniff(b"\xc3", true),
            Sniffed::Unknown,
            "cut UTF-8 at the real end"
        );
        assert_eq!(
            sniff(b"ok \xc3", false),
            Sniffed::Type("text/plain"),
            "cut by the window"
        );
    }
}
