//! The rules for usernames, display names and new passwords, as pure functions.
//!
//! A username is stored normalized (trimmed, ASCII-lowercased), so uniqueness in the database
//! is case-insensitive by construction. Nothing here touches the database or hashes anything.

/// Why a username, display name or password was refused; the message is shown to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    #[error("a username must be 3 to 32 characters: letters a-z, digits, '.', '_' or '-', starting with a letter or digit")]
    Username,
    #[error("a display name must be 1 to 64 characters without control characters")]
    DisplayName,
    #[error("the password must be at least {0} characters")]
    PasswordTooShort(usize),
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

/// A display name: trimmed, 1-64 characters, no control characters. `None` or blank falls
/// back to `default` (the username).
pub fn display_name(raw: Option<&str>, default: &str) -> Result<String, RuleError> {
    let name = raw
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(default);
    if name.chars().count() > DISPLAY_NAME_MAX || name.chars().any(char::is_control) {
        return Err(RuleError::DisplayName);
    }
    Ok(name.to_owned())
}

/// Length rules for a password being set (not for one being checked at login).
pub fn check_new_password(password: &str, min: usize, max: usize) -> Result<(), RuleError> {
    check_password_length(password, max)?;
    if password.chars().count() < min {
        return Err(RuleError::PasswordTooShort(min));
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
        assert!(check_new_password(&"é".repeat(1024), 10, 1024).is_ok());
    }
}
