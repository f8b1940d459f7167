//! `[chat]`: limits on rooms and messages (see `chat`).
//!
//! Only describes and checks values; rooms and messages themselves belong to `chat`.

use serde::{Deserialize, Serialize};

use super::{Config, Problem};

/// The largest `max_message_chars` accepted: an SQLite row and a websocket frame stay small.
pub const MAX_MESSAGE_CHARS: usize = 16_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Chat {
    /// Longest message body, in characters (Unicode scalar values); longer posts get 400.
    pub max_message_chars: usize,
}

impl Default for Chat {
    fn default() -> Self {
        Chat {
            max_message_chars: 4000,
        }
    }
}

pub(super) fn check(c: &Config, problems: &mut Vec<Problem>) {
    let n = c.chat.max_message_chars;
    if n == 0 || n > MAX_MESSAGE_CHARS {
        problems.push(Problem::key(
            "chat.max_message_chars",
            &format!("must be between 1 and {MAX_MESSAGE_CHARS}"),
            "the default is 4000",
        ));
    }
}
