//! Recently confirmed sessions, so an authenticated request does not need a database read
//! (and a hop to a blocking thread) every time.
//!
//! An entry says "session S of user U was live, and U looked like this, when the store's
//! generation was G". It is used only while the store is still at G — any committed change
//! to `users` or `sessions` made through this daemon (logout, password change, disable, role
//! change, refresh-token reuse) moves the generation before the change is acknowledged, so
//! such a change is seen by the very next request — and only for [`TTL_MS`], because
//! changes made by another process (the `roost` command line) do not move it. It must not
//! widen access: a miss, a full cache or a stale entry always means "ask the database".

use std::collections::HashMap;
use std::sync::Mutex;

use super::users::User;

/// How long an entry is trusted without asking the database: the longest a change made by
/// another process (`roost user disable`, `roost user passwd`) takes to reach requests.
pub const TTL_MS: i64 = 1_000;

/// Most sessions remembered. At the limit, entries older than [`TTL_MS`] (which can never
/// vouch again) are dropped; if that frees nothing, the cache is emptied and refills from the
/// database. Either way memory stays small and nothing but speed is lost: an entry is only
/// worth keeping for the one second it may be used.
const MAX_ENTRIES: usize = 1_024;

/// Tables whose changes invalidate every entry; the store must watch them.
pub const WATCHED_TABLES: &[&str] = &["users", "sessions"];

#[derive(Debug, Clone)]
struct Entry {
    user: User,
    /// When the session itself expires (Unix seconds).
    expires_at: i64,
    /// The store generation read before the database confirmed the session.
    generation: u64,
    /// When the database confirmed it (Unix milliseconds).
    confirmed_ms: i64,
}

#[derive(Debug, Default)]
pub struct SessionCache {
    entries: Mutex<HashMap<String, Entry>>,
}

impl SessionCache {
    /// The live session `sid` of `user_id`, if the cache can vouch for it at `generation`
    /// and the given times.
    pub fn get(
        &self,
        sid: &str,
        user_id: i64,
        generation: u64,
        now_secs: i64,
        now_ms: i64,
    ) -> Option<User> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let entry = entries.get(sid)?;
        let fresh = entry.generation == generation
            && entry.user.id == user_id
            && entry.expires_at > now_secs
            && (entry.confirmed_ms..entry.confirmed_ms + TTL_MS).contains(&now_ms);
        fresh.then(|| entry.user.clone())
    }

    /// Remembers that the database found `sid` live for `user` at `generation` (read
    /// before the database was asked).
    pub fn insert(&self, sid: &str, user: &User, expires_at: i64, generation: u64, now_ms: i64) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(sid) {
            entries.retain(|_, e| (e.confirmed_ms..e.confirmed_ms + TTL_MS).contains(&now_ms));
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            // Give back what the dropped entries held: a burst of sign-ins is not a reason
            // to keep its high-water mark.
            entries.shrink_to(MAX_ENTRIES);
        }
        entries.insert(
            sid.to_owned(),
            Entry {
                user: user.clone(),
                expires_at,
                generation,
                confirmed_ms: now_ms,
            },
        );
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;

    fn ada() -> User {
        User {
            id: 7,
            username: "ada".into(),
            display_name: "Ada".into(),
            role: Role::Member,
            disabled: false,
            created_at: "2026-01-01T00:00:00Z".into(),
            bot: false,
        }
    }

    #[test]
    fn an_entry_vouches_only_at_its_generation_within_the_ttl() {
        let cache = SessionCache::default();
        cache.insert("s1", &ada(), 2_000, 5, 1_000_000);

        assert_eq!(cache.get("s1", 7, 5, 1_000, 1_000_000).unwrap().id, 7);
        assert_eq!(cache.get("s1", 7, 5, 1_000, 1_000_999).unwrap().id, 7);
        assert!(
            cache.get("s1", 7, 6, 1_000, 1_000_001).is_none(),
            "a change committed since"
        );
        assert!(
            cache.get("s1", 7, 5, 1_000, 1_001_000).is_none(),
            "older than the TTL"
        );
        assert!(
            cache.get("s1", 7, 5, 1_000, 999_999).is_none(),
            "the clock went back"
        );
        assert!(
            cache.get("s1", 8, 5, 1_000, 1_000_000).is_none(),
            "another user's token"
        );
        assert!(
            cache.get("s1", 7, 5, 2_000, 1_000_000).is_none(),
            "the session expired"
        );
        assert!(cache.get("s2", 7, 5, 1_000, 1_000_000).is_none());
    }

    #[test]
    fn a_full_cache_drops_entries_past_the_ttl_first() {
        let cache = SessionCache::default();
        for i in 0..MAX_ENTRIES - 1 {
            cache.insert(&format!("old{i}"), &ada(), 2_000, 1, 0);
        }
        cache.insert("recent", &ada(), 2_000, 1, 5_000);
        assert_eq!(cache.len(), MAX_ENTRIES);
        cache.insert("new", &ada(), 2_000, 1, 5_500);
        assert_eq!(
            cache.len(),
            2,
            "only the entries still within the TTL are kept"
        );
        assert!(cache.get("recent", 7, 1, 1_000, 5_500).is_some());
        assert!(cache.get("new", 7, 1, 1_000, 5_500).is_some());
    }

    #[test]
    fn a_full_cache_starts_over_instead_of_growing() {
        let cache = SessionCache::default();
        for i in 0..MAX_ENTRIES {
            cache.insert(&format!("s{i}"), &ada(), 2_000, 1, 0);
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
        cache.insert("one more", &ada(), 2_000, 1, 0);
        assert_eq!(cache.len(), 1);
        assert!(cache.get("one more", 7, 1, 1_000, 0).is_some());
    }
}
