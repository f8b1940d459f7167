//! `[rate_limits]`: token-bucket allowances per action family, exempt networks and the memory
//! bound of the limiter (see `limits`). Reloaded on SIGHUP.
//!
//! Each family is a real table in the defaults (`[rate_limits.login]`, ...) so that every key
//! has a `ROOST_RATE_LIMITS_<FAMILY>_<KEY>` environment override. This file only describes and
//! checks values; it knows nothing about how the limiter applies them.

use serde::{Deserialize, Serialize};

use super::parse_cidr;
use super::Problem;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimits {
    /// Client networks (CIDRs or single IPs) that are never rate limited.
    pub exempt_cidrs: Vec<String>,
    /// Most keys (client IPs and accounts) tracked per family; beyond it new keys share one
    /// overflow bucket per family instead of growing memory.
    pub max_keys_per_family: usize,
    /// How often idle, full buckets are dropped from memory.
    pub prune_interval_secs: u64,
    // Tables after plain values: TOML cannot put a value after a table.
    pub login: FamilyLimit,
    pub register: FamilyLimit,
    pub refresh: FamilyLimit,
    pub read: FamilyLimit,
    pub write: FamilyLimit,
    pub upload: FamilyLimit,
    pub media_token: FamilyLimit,
    pub gateway_connect: FamilyLimit,
}

/// One family's allowance for one account; one client IP gets `per_ip_multiplier` times it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FamilyLimit {
    /// Requests allowed at once after a quiet period (the bucket's size).
    pub burst: u32,
    /// Sustained requests per minute (the bucket's refill rate).
    pub per_minute: u32,
    /// Per-IP allowance = per-account allowance x this (households share one IP).
    pub per_ip_multiplier: u32,
    pub enabled: bool,
}

impl FamilyLimit {
    pub const fn new(burst: u32, per_minute: u32) -> FamilyLimit {
        FamilyLimit {
            burst,
            per_minute,
            per_ip_multiplier: 4,
            enabled: true,
        }
    }
}

impl Default for FamilyLimit {
    /// Only used for keys missing from a family table; each family has its own default below.
    fn default() -> Self {
        FamilyLimit::new(30, 120)
    }
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            exempt_cidrs: Vec::new(),
            max_keys_per_family: 100_000,
            prune_interval_secs: 60,
            // Guessing passwords: a person retries a few times, a script thousands.
            login: FamilyLimit::new(5, 5),
            // Setup and invite redemption happen once per person.
            register: FamilyLimit::new(3, 3),
            // A client refreshes every access-token lifetime (15 min), plus reconnects.
            refresh: FamilyLimit::new(10, 10),
            // Opening the app loads rooms, members and history at once.
            read: FamilyLimit::new(120, 600),
            // Sending messages, editing, reacting.
            write: FamilyLimit::new(30, 120),
            upload: FamilyLimit::new(10, 20),
            media_token: FamilyLimit::new(10, 30),
            gateway_connect: FamilyLimit::new(10, 30),
        }
    }
}

impl RateLimits {
    /// `exempt_cidrs` parsed (validated at load, so nothing is skipped in a loaded config).
    pub fn exempt_networks(&self) -> Vec<ipnet::IpNet> {
        self.exempt_cidrs
            .iter()
            .filter_map(|s| parse_cidr(s))
            .collect()
    }

    /// Every family with its config name, in a fixed order.
    pub fn families(&self) -> [(&'static str, &FamilyLimit); 8] {
        [
            ("login", &self.login),
            ("register", &self.register),
            ("refresh", &self.refresh),
            ("read", &self.read),
            ("write", &self.write),
            ("upload", &self.upload),
            ("media_token", &self.media_token),
            ("gateway_connect", &self.gateway_connect),
        ]
    }
}

/// Bounds keep the bucket arithmetic (nanoseconds in a u64) far from overflow and catch typos.
pub const MAX_BURST: u32 = 1_000_000;
pub const MAX_PER_MINUTE: u32 = 60_000_000;
pub const MAX_MULTIPLIER: u32 = 1_000;
pub const MAX_KEYS_PER_FAMILY: usize = 10_000_000;

pub(super) fn check(r: &RateLimits, problems: &mut Vec<Problem>) {
    for (i, cidr) in r.exempt_cidrs.iter().enumerate() {
        if parse_cidr(cidr).is_none() {
            problems.push(Problem::key(
                &format!("rate_limits.exempt_cidrs[{i}]"),
                &format!("{cidr:?} is not an IP address or CIDR"),
                "use e.g. \"192.168.1.0/24\" or \"fd00::/8\"",
            ));
        }
    }
    if !(1..=MAX_KEYS_PER_FAMILY).contains(&r.max_keys_per_family) {
        problems.push(Problem::key(
            "rate_limits.max_keys_per_family",
            &format!("must be between 1 and {MAX_KEYS_PER_FAMILY}"),
            "the default is 100000 (a few MB per family at most)",
        ));
    }
    if !(1..=3600).contains(&r.prune_interval_secs) {
        problems.push(Problem::key(
            "rate_limits.prune_interval_secs",
            "must be between 1 and 3600 seconds",
            "the default is 60",
        ));
    }
    for (name, f) in r.families() {
        let mut bad = |key: &str, max: u64, default: u32| {
            problems.push(Problem::key(
                &format!("rate_limits.{name}.{key}"),
                &format!("must be between 1 and {max}"),
                &format!("the default for {name} is {default}; use enabled = false to turn the limit off"),
            ))
        };
        let d = default_for(name);
        if !(1..=MAX_BURST).contains(&f.burst) {
            bad("burst", MAX_BURST.into(), d.burst);
        }
        if !(1..=MAX_PER_MINUTE).contains(&f.per_minute) {
            bad("per_minute", MAX_PER_MINUTE.into(), d.per_minute);
        }
        if !(1..=MAX_MULTIPLIER).contains(&f.per_ip_multiplier) {
            bad(
                "per_ip_multiplier",
                MAX_MULTIPLIER.into(),
                d.per_ip_multiplier,
            );
        }
    }
}

fn default_for(name: &str) -> FamilyLimit {
    let d = RateLimits::default();
    let found = d
        .families()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f);
    found.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io::Write;

    use super::super::{load_with_env, Config, LoadOptions, Problem, Problems};

    fn load_text(text: &str, env: &[(&str, &str)]) -> Result<Config, Problems> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let opts = LoadOptions {
            path: Some(f.path().to_path_buf()),
            dev: false,
        };
        load_with_env(&opts, &|k| env.get(k).cloned())
    }

    fn problems(text: &str, env: &[(&str, &str)]) -> Vec<Problem> {
        load_text(text, env).expect_err("expected problems").0
    }

    #[test]
    fn families_are_env_overridable_tables() {
        let c = load_text(
            "[rate_limits.login]\nburst = 7\n",
            &[
                ("ROOST_RATE_LIMITS_LOGIN_PER_MINUTE", "9"),
                ("ROOST_RATE_LIMITS_READ_ENABLED", "false"),
                ("ROOST_RATE_LIMITS_EXEMPT_CIDRS", "10.0.0.0/8"),
            ],
        )
        .unwrap();
        let r = &c.rate_limits;
        assert_eq!((r.login.burst, r.login.per_minute), (7, 9));
        assert_eq!(r.login.per_ip_multiplier, 4);
        assert!(!r.read.enabled);
        assert_eq!(
            r.read.burst, 120,
            "other keys keep the family's own default"
        );
        assert_eq!(r.exempt_cidrs, vec!["10.0.0.0/8"]);
    }

    #[test]
    fn bad_values_are_reported_by_key() {
        let p = problems(
            "[rate_limits]\nexempt_cidrs = [\"nope\"]\nmax_keys_per_family = 0\nprune_interval_secs = 0\n[rate_limits.upload]\nburst = 0\nper_minute = 0\nper_ip_multiplier = 0\n[rate_limits.chat]\n",
            &[],
        );
        let locations: Vec<&str> = p.iter().map(|p| p.location.as_str()).collect();
        for key in [
            "rate_limits.exempt_cidrs[0]",
            "rate_limits.max_keys_per_family",
            "rate_limits.prune_interval_secs",
            "rate_limits.upload.burst",
            "rate_limits.upload.per_minute",
            "rate_limits.upload.per_ip_multiplier",
            "rate_limits.chat",
        ] {
            assert!(locations.contains(&key), "missing {key} in {p:?}");
        }
        let burst = p
            .iter()
            .find(|p| p.location == "rate_limits.upload.burst")
            .unwrap();
        assert!(burst.hint.as_deref().unwrap().contains("10"), "{burst}");
    }

    /// The shipped file documents every key of these sections at its real default.
    #[test]
    fn shipped_comments_state_the_defaults() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/roost.toml");
        let text = std::fs::read_to_string(path).unwrap();
        let start = text
            .find("\n[rate_limits]")
            .expect("a [rate_limits] section");
        let uncommented: String = text[start..]
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(rest) if rest.contains(" = ") && !rest.starts_with(' ') => rest,
                _ => l,
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let c = load_text(&uncommented, &[]).unwrap();
        assert_eq!(c.rate_limits, super::RateLimits::default());
        assert_eq!(c.alerts, super::super::alerts::Alerts::default());
        for key in ["burst", "exempt_cidrs", "webhook_url", "min_interval_secs"] {
            assert!(uncommented.contains(&format!("\n{key} = ")), "{key}");
        }
    }
}
