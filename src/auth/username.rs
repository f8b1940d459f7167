//! The rules for usernames, display names and new passwords, as pure functions.
//!
//! A username is stored normalized (trimmed, ASCII-lowercased), so uniqueness in the database
//! is case-insensitive by construction; being ASCII only, it cannot hide a control, invisible
//! or other-script character. A display name is any text in NFKC that `names::clean` accepts
//! (no control or invisible characters, one script per word). That no two accounts' names look
//! alike is checked against the database by `auth::users`. Nothing here touches the database
//! or hashes anything.

/// Why a username, display name or password was refused; the message is shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("a username must be 3 to 32 characters: letters a-z, digits, '.', '_' or '-', starting with a letter or digit")]
    Username,
    #[error("a display name must be 1 to 64 characters")]
    DisplayName,
    #[error("a display name may not contain {0}")]
    DisplayNameRefused(crate::names::Refused),
    #[error(
        "the password must be at least {0} characters long, not counting spaces at either end"
    )]
    PasswordTooShort(usize),
    #[error("the password may not contain control characters (such as NUL, tab, escape or a line break)")]
    PasswordControlCharacter,
    #[error("the password may not be one character repeated")]
    PasswordRepeated,
    #[error("the password must be at most {0} characters")]
    PasswordTooLong(usize),
}

pub const USERNAME_MIN: usize = 3;
pub const USERNAME_MAX: usize = 32;
pub const DISPLAY_NAME_MAX: usize = 64;

/// Trims and lowercases `raw`, then checks it: 3-32 of `[a-z0-9._-]`, first a letter or digit.
pub fn normalize_username(raw: &str) -> Result<String, RuleError> {
    let name = raw.trim().to_ascii_lowercase();
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c);
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if (USERNAME_MIN..=USERNAME_MAX).contains(&name.len()) && first_ok && name.chars().all(allowed)
    {
        Ok(name)
    } else {
        Err(RuleError::Username)
    }
}

/// A display name as stored: NFKC, trimmed, 1-64 characters, nothing `names::clean` refuses.
/// `None` or blank falls back to `default` (the username).
pub fn display_name(raw: Option<&str>, default: &str) -> Result<String, RuleError> {
    let name =
        crate::names::clean(raw.unwrap_or_default()).map_err(RuleError::DisplayNameRefused)?;
    let name = if name.is_empty() {
        default.to_owned()
    } else {
        name
    };
    if name.chars().count() > DISPLAY_NAME_MAX {
        return Err(RuleError::DisplayName);
    }
    Ok(name)
}

/// The one rule for a password being set (setup, registration, a password change, `roost user
/// add`/`passwd`), not for one being checked at login: at most `max` characters; no control
/// characters (a NUL or a line break cannot be typed back at a sign-in form); at least `min`
/// characters once the spaces at either end are left out (twelve spaces are not a password);
/// and not one character repeated. Counted in characters, not bytes. The password itself is
/// kept as given: the trimming is only for counting.
pub fn check_new_password(password: &str, min: usize, max: usize) -> Result<(), RuleError> {
    check_password_length(password, max)?;
    if password.chars().any(char::is_control) {
        return Err(RuleError::PasswordControlCharacter);
    }
    let counted = password.trim();
    if counted.chars().count() < min {
        return Err(RuleError::PasswordTooShort(min));
    }
    let mut chars = counted.chars();
    if let Some(first) = chars.next() {
        if chars.all(|c| c == first) {
            return Err(RuleError::PasswordRepeated);
        }
    }
    Ok(())
}

/// The upper bound every password meets before it is hashed, so hashing cost stays bounded.
pub fn check_password_length(password: &str, max: usize) -> Result<(), RuleError> {
    // Bytes first: cheap, and bounds the char count walk below.
    if password.len() > max * 4 || password.chars().count() > max {
        return Err(RuleError::PasswordTooLong(max));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_trimmed_and_lowercased() {
        assert_eq!(normalize_username("  Alice ").unwrap(), "alice");
        assert_eq!(
            normalize_username("BOB.smith-2_x").unwrap(),
            "bob.smith-2_x"
        );
        assert_eq!(normalize_username("abc").unwrap(), "abc");
        assert_eq!(normalize_username(&"a".repeat(32)).unwrap(), "a".repeat(32));
    }

    #[test]
    fn bad_usernames_are_refused() {
        for bad in [
            "",
            "ab",
            &"a".repeat(33),
            "al ice",
            "ålice",
            "alice@home",
            ".alice",
            "-alice",
            "_x_",
            "ａlice", // fullwidth a: no Unicode folding, refused rather than confused
            "al\u{0}ice",
        ] {
            assert_eq!(normalize_username(bad), Err(RuleError::Username), "{bad:?}");
        }
    }

    #[test]
    fn display_names_default_to_the_username_and_are_bounded() {
        assert_eq!(display_name(None, "alice").unwrap(), "alice");
        assert_eq!(display_name(Some("  "), "alice").unwrap(), "alice");
        assert_eq!(
            display_name(Some(" Alice W. "), "alice").unwrap(),
            "Alice W."
        );
        assert_eq!(display_name(Some("Zoë 🐦"), "z").unwrap(), "Zoë 🐦");
        assert!(display_name(Some(&"x".repeat(65)), "a").is_err());
        assert!(display_name(Some("a\nb"), "a").is_err());
    }

    #[test]
    fn display_names_are_nfkc_and_refuse_what_hides() {
        assert_eq!(display_name(Some("ＡＬＩＣＥ"), "a").unwrap(), "ALICE");
        let refused = display_name(Some("bob\u{202E}"), "b").unwrap_err();
        assert_eq!(
            refused.to_string(),
            "a display name may not contain an invisible character that changes the text's \
             direction (U+202E)"
        );
        assert!(
            display_name(Some("\u{200B}"), "b").is_err(),
            "not blank: hidden"
        );
        assert!(display_name(Some("\u{410}lice"), "b").is_err());
    }

    #[test]
    fn password_length_rules() {
        assert_eq!(
            check_new_password("short", 10, 1024),
            Err(RuleError::PasswordTooShort(10))
        );
        assert!(check_new_password("long enough!", 10, 1024).is_ok());
        assert_eq!(
            check_new_password(&"x".repeat(1025), 10, 1024),
            Err(RuleError::PasswordTooLong(1024))
        );
        // Multi-byte characters count as one each.
        assert!(check_new_password(&"éa".repeat(512), 10, 1024).is_ok());
        assert!(check_new_password("ééééééééé", 10, 1024).is_err());
    }

    #[test]
    fn weak_passwords_are_refused_with_the_rule_they_break() {
        assert_eq!(
            check_new_password(&"\0".repeat(20), 10, 1024),
            Err(RuleError::PasswordControlCharacter)
        );
        for with_control in [
            "correct horse\n",
            "tab\tseparated words",
            "esc\u{1b}[31m red!",
        ] {
            assert_eq!(
                check_new_password(with_control, 10, 1024),
                Err(RuleError::PasswordControlCharacter),
                "{with_control:?}"
            );
        }
        // Spaces at the ends do not count; spaces inside do.
        assert_eq!(
            check_new_password(&" ".repeat(12), 10, 1024),
            Err(RuleError::PasswordTooShort(10))
        );
        assert_eq!(
            check_new_password("   short    ", 10, 1024),
            Err(RuleError::PasswordTooShort(10))
        );
        assert!(check_new_password("  a b c d e  ", 9, 1024).is_ok());
        assert_eq!(
            check_new_password(&"a".repeat(20), 10, 1024),
            Err(RuleError::PasswordRepeated)
        );
        assert_eq!(
            check_new_password(&"🐦".repeat(12), 10, 1024),
            Err(RuleError::PasswordRepeated)
        );
        assert!(check_new_password("aaaaaaaaab", 10, 1024).is_ok());
        // The message states the rule.
        assert_eq!(
            RuleError::PasswordTooShort(10).to_string(),
            "the password must be at least 10 characters long, not counting spaces at either end"
        );
    }
}
