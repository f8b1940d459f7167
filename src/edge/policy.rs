//! Who may be answered and who is asking: the Host allowlist (421) and the client IP as seen
//! through trusted proxies.
//!
//! Built once at startup from configuration and the bound addresses. The client IP resolved
//! here ([`ClientIp`]) is the only one handlers, logs and the rate limiter may use; nothing
//! else reads `X-Forwarded-For`.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::Request;
use http::StatusCode;
use ipnet::IpNet;

use crate::config::Config;
use crate::http::ApiError;

/// The client's address after honouring trusted proxies. Always present on requests that
/// passed the edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

#[derive(Debug)]
pub struct EdgePolicy {
    allowed_hosts: BTreeSet<String>,
    trusted_proxies: Vec<IpNet>,
    /// The port HTTPS is actually bound to, for redirects (differs from config with port 0).
    pub https_port: u16,
    pub max_body_bytes: usize,
    /// The body cap of the upload route (`[attachments] max_bytes`), instead of the above.
    pub upload_max_bytes: u64,
}

impl EdgePolicy {
    /// The policy for the public listeners. `extra_ips` are this machine's addresses.
    pub fn public(config: &Config, https_port: u16, machine_ips: &[IpAddr]) -> Arc<EdgePolicy> {
        let mut allowed: BTreeSet<String> = BTreeSet::new();
        if config.server.allowed_hosts.is_empty() {
            let host = config.hostname().to_ascii_lowercase();
            if !host.ends_with(".local") {
                allowed.insert(format!("{host}.local"));
            }
            allowed.insert(host);
            allowed.insert("localhost".into());
            allowed.extend(machine_ips.iter().map(|ip| ip.to_string()));
            allowed.insert("127.0.0.1".into());
            allowed.insert("::1".into());
        } else {
            allowed.extend(
                config
                    .server
                    .allowed_hosts
                    .iter()
                    .map(|h| normalize_host(h)),
            );
        }
        if let Some(host) = public_url_host(&config.server.public_url) {
            allowed.insert(host);
        }
        Arc::new(EdgePolicy {
            allowed_hosts: allowed,
            trusted_proxies: config.trusted_proxies(),
            https_port,
            max_body_bytes: config.limits.max_body_bytes,
            upload_max_bytes: config.attachments.max_bytes,
        })
    }

    /// The internal (loopback) listener additionally always answers to loopback names, so
    /// local tools work whatever `allowed_hosts` says; other names are still refused, which
    /// keeps DNS-rebinding pages away from `/metrics`.
    pub fn internal(public: &EdgePolicy) -> Arc<EdgePolicy> {
        let mut allowed = public.allowed_hosts.clone();
        allowed.extend(["localhost", "127.0.0.1", "::1"].map(String::from));
        Arc::new(EdgePolicy {
            allowed_hosts: allowed,
            trusted_proxies: Vec::new(),
            https_port: public.https_port,
            max_body_bytes: public.max_body_bytes,
            upload_max_bytes: public.upload_max_bytes,
        })
    }

    pub fn host_allowed(&self, host: &str) -> bool {
        self.allowed_hosts.contains(&normalize_host(host))
    }

    /// The common case of the Host check without parsing or allocating: an HTTP/1 `Host` that
    /// is an allowed name exactly as listed (lower case, no trailing dot), with or without a
    /// port. `false` means "not decided here": [`request_host`] and [`Self::host_allowed`]
    /// decide, and never disagree with a `true` from here.
    fn host_listed_verbatim(&self, req: &Request) -> bool {
        if req.uri().host().is_some() {
            return false;
        }
        let Some(raw) = req.headers().get(http::header::HOST) else {
            return false;
        };
        let raw = raw.as_bytes();
        let (name, port) = match raw.iter().position(|&b| b == b':') {
            Some(colon) => (&raw[..colon], Some(&raw[colon + 1..])),
            None => (raw, None),
        };
        let plain_name = !name.is_empty()
            && name
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-'))
            && !name.ends_with(b".");
        let plain_port = port.is_none_or(|p| {
            (1..=5).contains(&p.len())
                && p.iter().all(u8::is_ascii_digit)
                && std::str::from_utf8(p).is_ok_and(|p| p.parse::<u16>().is_ok())
        });
        plain_name
            && plain_port
            && std::str::from_utf8(name).is_ok_and(|name| self.allowed_hosts.contains(name))
    }

    pub fn allowed_hosts(&self) -> impl Iterator<Item = &str> {
        self.allowed_hosts.iter().map(String::as_str)
    }

    fn trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }

    /// The client IP for a request from `peer` carrying these headers: forwarding headers are
    /// believed only when `peer` is a trusted proxy, and then the rightmost address that is not
    /// itself a trusted proxy wins (earlier entries are client-controlled).
    pub fn client_ip(&self, peer: IpAddr, headers: &http::HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.trusted(peer) {
            return peer;
        }
        let chain = forwarded_chain(headers);
        for ip in chain.iter().rev() {
            let ip = ip.to_canonical();
            if !self.trusted(ip) {
                return ip;
            }
        }
        chain
            .first()
            .copied()
            .map(|ip| ip.to_canonical())
            .unwrap_or(peer)
    }
}

/// The request's host without port, lowercased: `:authority` for HTTP/2, else `Host`.
pub fn request_host(req: &Request) -> Option<String> {
    if let Some(h) = req.uri().host() {
        return Some(normalize_host(h));
    }
    let raw = req.headers().get(http::header::HOST)?.to_str().ok()?;
    let auth: http::uri::Authority = raw.parse().ok()?;
    Some(normalize_host(auth.host()))
}

fn normalize_host(h: &str) -> String {
    let h = h.trim().trim_end_matches('.');
    let h = h
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(h);
    h.to_ascii_lowercase()
}

fn public_url_host(url: &str) -> Option<String> {
    let rest = url.strip_prefix("https://")?;
    let auth: http::uri::Authority = rest.trim_end_matches('/').parse().ok()?;
    Some(normalize_host(auth.host()))
}

/// Addresses named by `Forwarded: for=` (preferred) or `X-Forwarded-For`, in order.
fn forwarded_chain(headers: &http::HeaderMap) -> Vec<IpAddr> {
    let forwarded: Vec<IpAddr> = headers
        .get_all(http::header::FORWARDED)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|elem| {
            elem.split(';').find_map(|pair| {
                let (k, v) = pair.trim().split_once('=')?;
                if !k.eq_ignore_ascii_case("for") {
                    return None;
                }
                parse_forwarded_ip(v.trim().trim_matches('"'))
            })
        })
        .collect();
    if !forwarded.is_empty() {
        return forwarded;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| parse_forwarded_ip(s.trim()))
        .collect()
}

/// `1.2.3.4`, `1.2.3.4:5678`, `[2001:db8::1]:443` or `2001:db8::1`.
fn parse_forwarded_ip(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse() {
        return Some(ip);
    }
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    s.strip_prefix('[')
        .and_then(|x| x.split(']').next())
        .and_then(|x| x.parse().ok())
}

/// A step of every request (`api::Surface`): resolves the client IP (put in the request's
/// extensions as [`ClientIp`]) and refuses a request whose Host is not allowed (421), absent
/// or given more than once (400).
pub fn admit(policy: &EdgePolicy, peer: IpAddr, req: &mut Request) -> Result<(), ApiError> {
    let ip = policy.client_ip(peer, req.headers());
    req.extensions_mut().insert(ClientIp(ip));
    // Two Host fields make the request ambiguous (RFC 9112, 3.2: answer 400): this check reads
    // the first, a proxy or cache in front may act on the other.
    if req
        .headers()
        .get_all(http::header::HOST)
        .iter()
        .nth(1)
        .is_some()
    {
        return Err(ApiError::bad_request(
            "duplicate_host",
            "the request has more than one Host header",
        ));
    }
    if policy.host_listed_verbatim(req) {
        return Ok(());
    }
    match request_host(req) {
        Some(host) if policy.host_allowed(&host) => Ok(()),
        Some(_) => Err(ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            "unknown_host",
            "this server does not answer for that host name",
        )),
        None => Err(ApiError::bad_request(
            "missing_host",
            "the request has no Host",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(trusted: &[&str]) -> EdgePolicy {
        EdgePolicy {
            allowed_hosts: ["roost", "roost.local", "localhost"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            trusted_proxies: trusted.iter().map(|s| s.parse().unwrap()).collect(),
            https_port: 443,
            max_body_bytes: 1024,
            upload_max_bytes: 2048,
        }
    }

    /// The fast path only ever says yes where the full parse says yes too.
    #[test]
    fn the_verbatim_host_check_agrees_with_the_full_one() {
        let p = policy(&[]);
        let cases = [
            ("localhost", true),
            ("localhost:8443", true),
            ("roost.local:443", true),
            ("LOCALHOST:8443", true),
            ("localhost.:8443", true),
            ("localhost:99999", true), // the full parse takes any digits
            ("localhost:", true),      // an empty port is no port
            ("evil.example:443", false),
            ("localhost@evil:443", false),
            ("[::1]:443", false),
            ("", false),
        ];
        for (host, allowed) in cases {
            let req = Request::builder()
                .uri("/health")
                .header(http::header::HOST, host)
                .body(axum::body::Body::empty())
                .unwrap();
            let full = request_host(&req).is_some_and(|h| p.host_allowed(&h));
            let fast = p.host_listed_verbatim(&req);
            assert!(
                !fast || full,
                "{host}: the fast path allowed what the full check refuses"
            );
            assert_eq!(fast || full, allowed, "{host}");
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn forwarding_headers_from_untrusted_peers_are_ignored() {
        let p = policy(&[]);
        let ip = p.client_ip(
            "203.0.113.9".parse().unwrap(),
            &headers(&[("x-forwarded-for", "1.1.1.1")]),
        );
        assert_eq!(ip, "203.0.113.9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn rightmost_untrusted_address_wins_behind_a_trusted_proxy() {
        let p = policy(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.0.0.3")]);
        assert_eq!(
            p.client_ip("10.0.0.2".parse().unwrap(), &h),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn forwarded_header_is_preferred_and_parsed() {
        let p = policy(&["127.0.0.1/32"]);
        let h = headers(&[
            ("forwarded", "for=\"[2001:db8::7]:4711\";proto=https"),
            ("x-forwarded-for", "9.9.9.9"),
        ]);
        assert_eq!(
            p.client_ip("127.0.0.1".parse().unwrap(), &h),
            "2001:db8::7".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn ipv4_mapped_peers_are_canonical() {
        let p = policy(&[]);
        let ip = p.client_ip("::ffff:192.0.2.1".parse().unwrap(), &http::HeaderMap::new());
        assert_eq!(ip, "192.0.2.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn host_matching_ignores_case_port_and_trailing_dot() {
        let p = policy(&[]);
        assert!(p.host_allowed("Roost.Local."));
        assert!(!p.host_allowed("evil.example"));
        let req = Request::builder()
            .uri("/")
            .header("host", "ROOST.local:8443")
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(request_host(&req).as_deref(), Some("roost.local"));
    }
}
