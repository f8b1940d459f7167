//! Checks a merged configuration and describes each problem with its key and a fix.
//!
//! Two passes: [`structure`] compares the raw TOML tree with the defaults (unknown keys, wrong
//! types) and drops what it cannot type, so [`check`] can still judge every other value.

use std::fmt;
use std::path::Path;

use super::{parse_addr, parse_cidr, Config, Profile};

/// One thing wrong with the configuration: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// `server.https_addr`, `ROOST_SERVER_HTTPS_ADDR (server.https_addr)` or a file path.
    pub location: String,
    pub message: String,
    pub hint: Option<String>,
}

impl Problem {
    pub fn key(key: &str, message: &str, hint: &str) -> Self {
        Problem {
            location: key.to_owned(),
            message: message.to_owned(),
            hint: Some(hint.to_owned()),
        }
    }
    pub fn file(path: &Path, message: &str) -> Self {
        Problem {
            location: path.display().to_string(),
            message: message.to_owned(),
            hint: None,
        }
    }
    pub fn env(var: &str, key: &str, message: &str) -> Self {
        Problem {
            location: format!("{var} ({key})"),
            message: message.to_owned(),
            hint: None,
        }
    }
    pub fn general(message: &str) -> Self {
        Problem {
            location: "config".into(),
            message: message.to_owned(),
            hint: None,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.location, self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " (fix: {h})")?;
        }
        Ok(())
    }
}

/// Reports keys the defaults do not have and values of the wrong type, removing them from
/// `tree` so that typing the rest succeeds.
pub(super) fn structure(
    defaults: &toml::Value,
    tree: &mut toml::Value,
    problems: &mut Vec<Problem>,
) {
    walk(&mut Vec::new(), defaults, tree, problems);
}

fn walk(
    path: &mut Vec<String>,
    defaults: &toml::Value,
    tree: &mut toml::Value,
    problems: &mut Vec<Problem>,
) {
    let (toml::Value::Table(d), toml::Value::Table(t)) = (defaults, tree) else {
        return;
    };
    let mut drop = Vec::new();
    for (k, v) in t.iter_mut() {
        path.push(k.clone());
        let name = path.join(".");
        match d.get(k) {
            None => {
                let known: Vec<&str> = d.keys().map(String::as_str).collect();
                let hint = closest(k, &known)
                    .map(|c| format!("did you mean `{c}`?"))
                    .unwrap_or_else(|| format!("known keys here: {}", known.join(", ")));
                problems.push(Problem::key(&name, "unknown key", &hint));
                drop.push(k.clone());
            }
            Some(dv) if dv.is_table() && v.is_table() => walk(path, dv, v, problems),
            Some(dv) if !same_type(dv, v) => {
                problems.push(Problem::key(
                    &name,
                    &format!("expected {}, got {}", dv.type_str(), v.type_str()),
                    &format!("for example `{k} = {dv}`"),
                ));
                drop.push(k.clone());
            }
            Some(_) => {}
        }
        path.pop();
    }
    for k in drop {
        t.remove(&k);
    }
}

fn same_type(a: &toml::Value, b: &toml::Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

/// The known key nearest to a misspelt one, if it is near enough to be a typo.
fn closest<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (edit_distance(word, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Value checks on the typed configuration.
pub(super) fn check(c: &Config, problems: &mut Vec<Problem>) {
    super::backup::check(c, problems);
    let mut addr = |key: &str, value: &str, optional: bool| {
        if optional && value.is_empty() {
            return None;
        }
        let parsed = parse_addr(value);
        if parsed.is_none() {
            problems.push(Problem::key(
                key,
                &format!("{value:?} is not an address:port"),
                "use e.g. \"[::]:443\", \"0.0.0.0:443\" or \"127.0.0.1:8443\"",
            ));
        }
        parsed
    };
    let https = addr("server.https_addr", &c.server.https_addr, false);
    let http = addr("server.http_addr", &c.server.http_addr, true);
    let internal = addr("server.internal_addr", &c.server.internal_addr, false);

    if let Some(internal) = internal {
        if !internal.ip().is_loopback() {
            problems.push(Problem::key(
                "server.internal_addr",
                &format!("{internal} is not a loopback address; it serves /metrics and webhooks"),
                "use 127.0.0.1:<port> or [::1]:<port>",
            ));
        }
    }
    let bound: Vec<_> = [
        ("server.https_addr", https),
        ("server.http_addr", http),
        ("server.internal_addr", internal),
    ]
    .into_iter()
    .filter_map(|(k, a)| a.map(|a| (k, a)))
    .collect();
    for (i, (k1, a1)) in bound.iter().enumerate() {
        for (k2, a2) in &bound[i + 1..] {
            if a1.port() != 0
                && a1.port() == a2.port()
                && (a1.ip() == a2.ip() || a1.ip().is_unspecified() || a2.ip().is_unspecified())
            {
                problems.push(Problem::key(
                    k2,
                    &format!("{a2} collides with {k1} ({a1})"),
                    "give each listener its own port",
                ));
            }
        }
    }

    for (i, cidr) in c.server.trusted_proxies.iter().enumerate() {
        if parse_cidr(cidr).is_none() {
            problems.push(Problem::key(
                &format!("server.trusted_proxies[{i}]"),
                &format!("{cidr:?} is not an IP address or CIDR"),
                "use e.g. \"127.0.0.1/32\" or \"fd00::/8\"",
            ));
        }
    }
    for (i, host) in c.server.allowed_hosts.iter().enumerate() {
        if host.is_empty()
            || host == "*"
            || host.contains('/')
            || host.contains(char::is_whitespace)
        {
            problems.push(Problem::key(
                &format!("server.allowed_hosts[{i}]"),
                &format!("{host:?} is not a host name"),
                "list the names clients use, e.g. \"chat.example.org\"; wildcards are not accepted",
            ));
        }
    }
    if !c.server.hostname.is_empty() && !valid_hostname(&c.server.hostname) {
        problems.push(Problem::key(
            "server.hostname",
            &format!("{:?} is not a valid host name", c.server.hostname),
            "use letters, digits, '-' and '.', e.g. \"roost\"",
        ));
    }
    if !c.server.public_url.is_empty() {
        let ok = c
            .server
            .public_url
            .strip_prefix("https://")
            .is_some_and(|rest| {
                let host = rest.split('/').next().unwrap_or("");
                !host.is_empty()
                    && rest
                        .trim_start_matches(host)
                        .trim_end_matches('/')
                        .is_empty()
            });
        if !ok {
            problems.push(Problem::key(
                "server.public_url",
                &format!("{:?} is not an https:// origin", c.server.public_url),
                "use e.g. \"https://chat.example.org\" (no path)",
            ));
        }
    }
    if c.server.max_connections == 0 || c.server.max_connections > 1_000_000 {
        problems.push(Problem::key(
            "server.max_connections",
            "must be between 1 and 1000000",
            "the default is 4096",
        ));
    }
    if c.server.max_connections_per_ip == 0 || c.server.max_connections_per_ip > 1_000_000 {
        problems.push(Problem::key(
            "server.max_connections_per_ip",
            "must be between 1 and 1000000",
            "the default is 256",
        ));
    }
    if c.server.shutdown_grace_secs > 600 {
        problems.push(Problem::key(
            "server.shutdown_grace_secs",
            "must be at most 600",
            "the default is 10",
        ));
    }

    match (c.tls.cert_file.is_empty(), c.tls.key_file.is_empty()) {
        (true, true) => {}
        (false, false) => {
            for (k, f) in [
                ("tls.cert_file", &c.tls.cert_file),
                ("tls.key_file", &c.tls.key_file),
            ] {
                if !Path::new(f).is_file() {
                    problems.push(Problem::key(
                        k,
                        &format!("{f} does not exist or is not a file"),
                        "point it at a PEM file, or leave both tls files empty for local CA mode",
                    ));
                }
            }
        }
        (cert_empty, _) => problems.push(Problem::key(
            if cert_empty {
                "tls.cert_file"
            } else {
                "tls.key_file"
            },
            "tls.cert_file and tls.key_file must be set together",
            "set both, or leave both empty for local CA mode",
        )),
    }
    if !(1..=365).contains(&c.tls.renew_before_days) {
        problems.push(Problem::key(
            "tls.renew_before_days",
            "must be between 1 and 365",
            "the default is 30",
        ));
    }

    if c.storage.data_dir.as_os_str().is_empty() {
        problems.push(Problem::key(
            "storage.data_dir",
            "must not be empty",
            "the default is /var/lib/roost",
        ));
    } else if c.profile() == Profile::Production && c.storage.data_dir.is_relative() {
        problems.push(Problem::key(
            "storage.data_dir",
            &format!(
                "{} is relative; the daemon's working directory is not stable",
                c.storage.data_dir.display()
            ),
            "use an absolute path such as /var/lib/roost",
        ));
    }
    if !(1..=64).contains(&c.storage.read_connections) {
        problems.push(Problem::key(
            "storage.read_connections",
            "must be between 1 and 64",
            "the default is 4",
        ));
    }
    if !(1..=10_000).contains(&c.storage.max_write_batch) {
        problems.push(Problem::key(
            "storage.max_write_batch",
            "must be between 1 and 10000",
            "the default is 256",
        ));
    }

    let l = &c.limits;
    if !(1024..=64 * 1024 * 1024).contains(&l.max_body_bytes) {
        problems.push(Problem::key(
            "limits.max_body_bytes",
            "must be between 1024 and 67108864",
            "the default is 1048576 (1 MiB)",
        ));
    }
    for (k, v) in [
        (
            "limits.header_read_timeout_secs",
            l.header_read_timeout_secs,
        ),
        ("limits.request_timeout_secs", l.request_timeout_secs),
        ("limits.idle_timeout_secs", l.idle_timeout_secs),
        (
            "limits.tls_handshake_timeout_secs",
            l.tls_handshake_timeout_secs,
        ),
    ] {
        if !(1..=3600).contains(&v) {
            problems.push(Problem::key(
                k,
                "must be between 1 and 3600 seconds",
                "keep the default unless clients are very slow",
            ));
        }
    }
    super::auth::check(&c.auth, problems);
    super::rate_limits::check(&c.rate_limits, problems);
    super::alerts::check(&c.alerts, problems);
    super::livekit::check(c, problems);
    super::chat::check(c, problems);
    super::gateway::check(c, problems);
    super::attachments::check(c, problems);
    super::retention::check(c, problems);
    super::webhooks::check(c, problems);
}

fn valid_hostname(h: &str) -> bool {
    h.len() <= 253
        && h.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
        })
}
