//! What makes a name safe to show to other people: the characters it may not hold, its
//! normal form, and the key two names that look alike share.
//!
//! A name (a display name, a room name) is stored in NFKC, so a fullwidth or ligature form is
//! kept as the plain letters it shows. It may not hold a control character, nor an invisible
//! one (Unicode's format characters and default-ignorable code points: zero-width spaces and
//! joiners, the marks and overrides that change the text's direction such as U+202E, word
//! joiners, the byte order mark, variation selectors, tags), except the joiner and variation
//! selectors inside an emoji sequence (`❤️`, `👩‍💻`), which only pick how a pictograph is drawn.
//! Each word is written in one script, so `Аlice` with a Cyrillic `А` is refused while
//! `Алиса` and `Li 李` are not.
//!
//! Two names that look alike have the same [`key`]: NFKC, lowercased, then UTS #39's
//! confusable skeleton, lowercased again, with runs of spaces as one. `auth::users` keeps one
//! account per key (`name_keys`); migration 11 fills it by calling [`key`] from SQL.
//!
//! Pure text functions: this module calls nothing else in the crate (so `store` may use it for
//! that migration) and knows nothing about accounts or rooms.

use std::fmt;

use unicode_normalization::UnicodeNormalization;
use unicode_security::mixed_script::AugmentedScriptSet;

/// Why a name was refused; shown to the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// A control character (Unicode category Cc), such as NUL, escape or a line break.
    Control(char),
    /// A character that changes the direction of the text around it (U+202E, U+200F, ...).
    Direction(char),
    /// Another invisible character: a zero-width space or joiner, a byte order mark, a
    /// variation selector outside an emoji, a tag, a line or paragraph separator.
    Invisible(char),
    /// A word that mixes scripts, as look-alike names do.
    MixedScripts(String),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Control(c) => write!(f, "a control character (U+{:04X})", u32::from(*c)),
            Refused::Direction(c) => write!(
                f,
                "an invisible character that changes the text's direction (U+{:04X})",
                u32::from(*c)
            ),
            Refused::Invisible(c) => {
                write!(f, "an invisible character (U+{:04X})", u32::from(*c))
            }
            Refused::MixedScripts(word) => write!(
                f,
                "the word {word:?}, which mixes letters of different scripts (each word must be \
                 in one script, so that it cannot pass for another name)"
            ),
        }
    }
}

/// `raw` in NFKC with the spaces at either end removed, if it holds no refused character and
/// no word mixing scripts. Lengths are the caller's rule (count the result's characters).
pub fn clean(raw: &str) -> Result<String, Refused> {
    let name: String = raw.nfkc().collect();
    let name = name.trim();
    if let Some(refused) = find_refused(name, &[]) {
        return Err(refused);
    }
    if let Some(word) = name
        .split_whitespace()
        .find(|word| AugmentedScriptSet::for_str(word).is_empty())
    {
        return Err(Refused::MixedScripts(word.to_owned()));
    }
    Ok(name.to_owned())
}

/// The first character of `text` a name or a line of text shown to others may not hold,
/// other than those in `allowed` (a room topic allows newline and tab).
pub fn find_refused(text: &str, allowed: &[char]) -> Option<Refused> {
    let chars: Vec<char> = text.chars().collect();
    chars.iter().enumerate().find_map(|(i, &c)| {
        if allowed.contains(&c) {
            return None;
        }
        if c.is_control() {
            return Some(Refused::Control(c));
        }
        if changes_direction(c) {
            return Some(Refused::Direction(c));
        }
        let prev = i.checked_sub(1).map(|p| chars[p]);
        let next = chars.get(i + 1).copied();
        (is_invisible(c) && !inside_emoji(prev, c, next)).then_some(Refused::Invisible(c))
    })
}

/// The key two look-alike names share (see the module comment). Never shown; only compared.
pub fn key(name: &str) -> String {
    let folded: String = name.nfkc().flat_map(char::to_lowercase).collect();
    let skeleton: String = unicode_security::skeleton(&folded)
        .flat_map(char::to_lowercase)
        .collect();
    skeleton.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The bidirectional marks, embeddings, overrides and isolates.
fn changes_direction(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Format characters (category Cf) and default-ignorable code points (Unicode's
/// DerivedCoreProperties), plus the line and paragraph separators: nothing a reader sees.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// A pictograph or other symbol outside ASCII: what an emoji sequence is made of.
fn is_pictograph(c: char) -> bool {
    u32::from(c) >= 0xA9
        && !c.is_alphanumeric()
        && !c.is_whitespace()
        && !c.is_control()
        && !is_invisible(c)
}

/// The zero-width joiner between two pictographs (`👩‍💻`) and the text/emoji variation
/// selectors right after one (`❤️`) only choose how an emoji is drawn; anywhere else they hide.
fn inside_emoji(prev: Option<char>, c: char, next: Option<char>) -> bool {
    match c {
        '\u{FE0E}' | '\u{FE0F}' => prev.is_some_and(is_pictograph),
        '\u{200D}' => {
            prev.is_some_and(|p| is_pictograph(p) || p == '\u{FE0F}')
                && next.is_some_and(is_pictograph)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_in_any_one_script_pass_in_nfkc() {
        for ok in [
            "Alice W.",
            "Zoë 🐦",
            "Алиса",
            "Li 李",
            "山田 はなこ",
            "Jean-Luc O'Neil",
            "Mom ❤️",
            "dev 👩🏽‍💻",
            "שלום",
        ] {
            assert_eq!(clean(ok).as_deref(), Ok(ok), "{ok:?}");
        }
        // Compatibility forms become the letters they show.
        assert_eq!(clean("  ａｌｉｃｅ ").unwrap(), "alice");
        assert_eq!(clean("ﬁona").unwrap(), "fiona");
    }

    #[test]
    fn control_direction_and_invisible_characters_are_named() {
        assert_eq!(clean("a\u{0}b"), Err(Refused::Control('\u{0}')));
        assert_eq!(clean("a\nb"), Err(Refused::Control('\n')));
        assert_eq!(
            clean("evil\u{202E}gpj.exe"),
            Err(Refused::Direction('\u{202E}'))
        );
        for c in ['\u{200E}', '\u{200F}', '\u{2066}', '\u{2069}', '\u{061C}'] {
            assert_eq!(
                clean(&format!("a{c}b")),
                Err(Refused::Direction(c)),
                "{c:?}"
            );
        }
        for c in [
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{2060}',
            '\u{2064}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{180E}',
            '\u{115F}',
            '\u{FE0F}',
            '\u{E0041}',
            '\u{2028}',
        ] {
            assert_eq!(
                clean(&format!("al{c}ice")),
                Err(Refused::Invisible(c)),
                "{c:?}"
            );
        }
        // A joiner between letters, or before a letter, is not part of an emoji.
        assert!(clean("🐦\u{200D}a").is_err());
        let message = Refused::Direction('\u{202E}').to_string();
        assert!(message.contains("U+202E"), "{message}");
    }

    #[test]
    fn a_word_that_mixes_scripts_is_refused() {
        // Cyrillic А (U+0410) among Latin letters.
        assert_eq!(
            clean("\u{410}lice Smith"),
            Err(Refused::MixedScripts("\u{410}lice".into()))
        );
        assert!(
            clean("p\u{430}ypal").is_err(),
            "Cyrillic a inside a Latin word"
        );
        assert!(clean("Ο\u{43E}").is_err(), "Greek and Cyrillic");
    }

    #[test]
    fn look_alike_names_share_a_key() {
        let alice = key("alice");
        for same in [
            "Alice",
            "ALICE",
            "ａｌｉｃｅ",
            "\u{430}lice",
            "\u{410}LICE",
            "alice ",
        ] {
            assert_eq!(key(same), alice, "{same:?}");
        }
        assert_eq!(key("bill"), key("bi11"));
        assert_eq!(key("Jane  Doe"), key("jane doe"));
        assert_ne!(key("alice"), key("alicia"));
        assert_ne!(key("bob"), key("rob"));
    }
}
