//! `[auth]`: the access-token key, token lifetimes, password hashing cost and password rules.
//!
//! Only the typed values and their validation live here; `auth` turns them into keys and
//! hashers. Nothing here reads the data directory (the generated key file is `auth`'s job).

use serde::{Deserialize, Serialize};

use super::{Problem, Secret};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Auth {
    /// HS256 key for access tokens. Empty: the key `roost init` generated in the data dir.
    pub jwt_secret: Secret,
    pub jwt_secret_file: String,
    /// Lifetime of an access token (JWT), in seconds.
    pub access_token_ttl_secs: u64,
    /// Lifetime of a refresh token, in days; each refresh issues a new one.
    pub refresh_token_ttl_days: u64,
    /// argon2id memory cost in KiB (each hash in progress holds this much memory).
    pub argon2_memory_kib: u32,
    /// argon2id passes over memory.
    pub argon2_iterations: u32,
    /// argon2id lanes.
    pub argon2_parallelism: u32,
    /// Shortest password accepted for new passwords.
    pub min_password_length: usize,
    /// Longest password accepted, so hashing cost per request stays bounded.
    pub max_password_length: usize,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            jwt_secret: Secret::default(),
            jwt_secret_file: String::new(),
            access_token_ttl_secs: 900,
            refresh_token_ttl_days: 30,
            argon2_memory_kib: 19_456,
            argon2_iterations: 2,
            argon2_parallelism: 1,
            min_password_length: 10,
            max_password_length: 1024,
        }
    }
}

/// Value checks for `[auth]`, called from `validate::check`.
pub(super) fn check(a: &Auth, problems: &mut Vec<Problem>) {
    let mut range = |key: &str, value: u64, lo: u64, hi: u64, default: u64| {
        if !(lo..=hi).contains(&value) {
            problems.push(Problem::key(
                key,
                &format!("must be between {lo} and {hi}"),
                &format!("the default is {default}"),
            ));
        }
    };
    let d = Auth::default();
    // 60 s .. 24 h: shorter makes clients refresh constantly, longer defeats revocation lag
    // for clients that cache tokens elsewhere.
    range(
        "auth.access_token_ttl_secs",
        a.access_token_ttl_secs,
        60,
        86_400,
        d.access_token_ttl_secs,
    );
    range(
        "auth.refresh_token_ttl_days",
        a.refresh_token_ttl_days,
        1,
        365,
        d.refresh_token_ttl_days,
    );
    // argon2 itself needs at least 8 KiB per lane; 1 GiB is far beyond what a Pi can spare
    // per concurrent hash.
    range(
        "auth.argon2_memory_kib",
        u64::from(a.argon2_memory_kib),
        8 * u64::from(a.argon2_parallelism.max(1)),
        1_048_576,
        u64::from(d.argon2_memory_kib),
    );
    range(
        "auth.argon2_iterations",
        u64::from(a.argon2_iterations),
        1,
        16,
        u64::from(d.argon2_iterations),
    );
    range(
        "auth.argon2_parallelism",
        u64::from(a.argon2_parallelism),
        1,
        16,
        u64::from(d.argon2_parallelism),
    );
    range(
        "auth.min_password_length",
        a.min_password_length as u64,
        8,
        128,
        d.min_password_length as u64,
    );
    range(
        "auth.max_password_length",
        a.max_password_length as u64,
        a.min_password_length.max(64) as u64,
        4096,
        d.max_password_length as u64,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_and_out_of_range_values_are_named() {
        let mut problems = Vec::new();
        check(&Auth::default(), &mut problems);
        assert!(problems.is_empty(), "{problems:?}");

        let bad = Auth {
            access_token_ttl_secs: 5,
            argon2_memory_kib: 4,
            argon2_iterations: 0,
            max_password_length: 1_000_000,
            ..Auth::default()
        };
        check(&bad, &mut problems);
        let keys: Vec<&str> = problems.iter().map(|p| p.location.as_str()).collect();
        assert_eq!(
            keys,
            [
                "auth.access_token_ttl_secs",
                "auth.argon2_memory_kib",
                "auth.argon2_iterations",
                "auth.max_password_length"
            ]
        );
    }
}
