//! Mentions: the room members a message names with `@username`.
//!
//! A mention is an `@` at the start of a word (the start of the body, or after white space or
//! one of `( [ { " '`) followed by a username (`a-z`, `0-9`, `.`, `_`, `-`, any case). Sentence
//! punctuation after it (`@bea.`) still names `bea`. Only members of the message's room *now*
//! count, so a name that is not a member's (or not an account's) is plain text, and the list
//! is worked out when a message is read, never stored: renaming is impossible for usernames,
//! and membership is what decides who is told. Each message looks up at most [`MAX_MENTIONS`]
//! names, so a body full of `@`s costs a bounded number of index lookups.

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::messages::MessageView;
use super::ChatError;
use crate::auth::username::{USERNAME_MAX, USERNAME_MIN};

/// Names looked up per message; later ones are plain text.
pub const MAX_MENTIONS: usize = 20;

/// A member a message names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Mention {
    pub user_id: i64,
    /// As stored (lowercase); the body may spell it in another case.
    pub username: String,
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// The usernames `body` may mention, lowercased, each once, in order of appearance: for a
/// name followed by punctuation, the name with it and without it (usernames may end in `.`,
/// `_` or `-`). At most [`MAX_MENTIONS`] names.
pub fn candidate_names(body: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut previous: Option<char> = None;
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let word_start =
            previous.is_none_or(|p| p.is_whitespace() || matches!(p, '(' | '[' | '{' | '"' | '\''));
        previous = Some(c);
        if c != '@' || !word_start {
            continue;
        }
        let start = i + 1;
        let mut end = start;
        while let Some(&(j, n)) = chars.peek() {
            if !is_name_char(n) {
                break;
            }
            end = j + n.len_utf8();
            previous = Some(n);
            chars.next();
        }
        let run = body[start..end].to_ascii_lowercase();
        let trimmed = run.trim_end_matches(['.', '_', '-']);
        for name in [run.as_str(), trimmed] {
            let fits = (USERNAME_MIN..=USERNAME_MAX).contains(&name.len())
                && name.starts_with(|c: char| c.is_ascii_alphanumeric());
            if fits && !names.iter().any(|n| n == name) {
                if names.len() == MAX_MENTIONS {
                    return names;
                }
                names.push(name.to_owned());
            }
        }
    }
    names
}

/// Fills in `mentions` of each message that is not deleted: the members of its room named in it.
pub fn fill(conn: &Connection, messages: &mut [MessageView]) -> Result<(), ChatError> {
    let mut member = conn.prepare_cached(
        "SELECT u.id, u.username FROM users u
           JOIN room_members m ON m.user_id = u.id AND m.room_id = ?1
          WHERE u.username = ?2",
    )?;
    for message in messages.iter_mut().filter(|m| !m.deleted) {
        for name in candidate_names(&message.body) {
            let found = member
                .query_row(params![message.room_id, name], |r| {
                    Ok(Mention {
                        user_id: r.get(0)?,
                        username: r.get(1)?,
                    })
                })
                .optional()?;
            if let Some(mention) = found {
                if !message.mentions.contains(&mention) {
                    message.mentions.push(mention);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{candidate_names, MAX_MENTIONS};

    #[test]
    fn names_start_words_and_lose_trailing_punctuation() {
        assert_eq!(
            candidate_names("hi @Bea, and @cy1"),
            ["bea", "cy1"].map(String::from)
        );
        assert_eq!(
            candidate_names("(@bea.)"),
            ["bea.", "bea"].map(String::from)
        );
        assert_eq!(
            candidate_names("@ann-marie"),
            ["ann-marie"].map(String::from)
        );
    }

    #[test]
    fn addresses_short_names_and_repeats_are_not_mentions() {
        assert!(candidate_names("mail bea@example.org").is_empty());
        assert!(candidate_names("@ab @ @.bea @_x").is_empty());
        assert_eq!(candidate_names("@bea @BEA @bea"), ["bea"].map(String::from));
        let too_long = format!("@{}", "a".repeat(33));
        assert!(candidate_names(&too_long).is_empty());
    }

    #[test]
    fn a_body_of_mentions_looks_up_a_bounded_number() {
        let body: String = (0..500).map(|i| format!("@user{i:03} ")).collect();
        assert_eq!(candidate_names(&body).len(), MAX_MENTIONS);
    }
}
