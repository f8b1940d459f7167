//! Where an outgoing webhook may deliver: receivers live on the LAN, so private addresses are
//! allowed, but loopback, link-local, unspecified, multicast and broadcast addresses are
//! refused unless `[webhooks]` allows loopback or link-local, and the cloud metadata addresses
//! (169.254.169.254, fd00:ec2::254) always are.
//!
//! The check runs on the addresses a name resolves to ([`CheckedResolver`], the HTTP client's
//! only resolver), so the client connects only to an address that passed: a name cannot pass
//! the check and then resolve elsewhere. An IP-literal URL is checked by [`check_url`] (the
//! client does not resolve those). Nothing here logs a URL.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::config::webhooks::Webhooks;

/// Which special addresses the configuration allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddressPolicy {
    pub allow_loopback: bool,
    pub allow_link_local: bool,
}

impl AddressPolicy {
    pub fn from_config(config: &Webhooks) -> AddressPolicy {
        AddressPolicy {
            allow_loopback: config.allow_loopback,
            allow_link_local: config.allow_link_local,
        }
    }

    /// `Err` with the reason in words if a delivery may not go to `ip`.
    pub fn check(self, ip: IpAddr) -> Result<(), &'static str> {
        // An IPv4 address written as IPv6 is judged as the IPv4 address it is.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        const METADATA_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
        const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);
        if ip == IpAddr::V4(METADATA_V4) || ip == IpAddr::V6(METADATA_V6) {
            return Err("a cloud metadata address");
        }
        if ip.is_unspecified() {
            return Err("an unspecified address");
        }
        if ip.is_multicast() {
            return Err("a multicast address");
        }
        if let IpAddr::V4(v4) = ip {
            if v4.is_broadcast() {
                return Err("a broadcast address");
            }
        }
        if ip.is_loopback() && !self.allow_loopback {
            return Err("a loopback address (see [webhooks] allow_loopback)");
        }
        let link_local = match ip {
            IpAddr::V4(v4) => v4.is_link_local(),
            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
        };
        if link_local && !self.allow_link_local {
            return Err("a link-local address (see [webhooks] allow_link_local)");
        }
        Ok(())
    }
}

/// Checks a webhook URL's form (http or https, a host, no credentials in it) and, when its
/// host is an IP address, that address. A host name is checked when it is resolved.
pub fn check_url(url: &str, policy: AddressPolicy) -> Result<(), String> {
    let uri: http::Uri = url.parse().map_err(|_| "the URL is not valid".to_owned())?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err("the URL must start with http:// or https://".into());
    }
    let Some(authority) = uri.authority() else {
        return Err("the URL has no host".into());
    };
    if authority.as_str().contains('@') {
        return Err("the URL may not carry a user name or password".into());
    }
    let host = authority.host();
    if host.is_empty() {
        return Err("the URL has no host".into());
    }
    if let Some(ip) = literal_ip(host) {
        policy
            .check(ip)
            .map_err(|why| format!("deliveries may not go to {why}"))?;
    }
    Ok(())
}

/// The address a URL's host names literally (`10.0.0.5`, `[fd00::1]`), if it is one.
pub fn literal_ip(host: &str) -> Option<IpAddr> {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// The HTTP client's resolver: the system's resolution, keeping only addresses the policy
/// allows; none left is an error (the attempt fails with "address refused").
#[derive(Debug, Clone, Copy)]
pub struct CheckedResolver(pub AddressPolicy);

/// Why a name resolved to no allowed address.
#[derive(Debug, thiserror::Error)]
#[error("the receiver's name resolves only to refused addresses ({0})")]
pub struct Refused(&'static str);

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refusal = "no address";
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match policy.check(a.ip()) {
                    Ok(()) => true,
                    Err(why) => {
                        refusal = why;
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                return Err(Box::new(Refused(refusal)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn lan_is_allowed_and_special_addresses_are_refused_by_default() {
        let p = AddressPolicy::default();
        for ok in [
            "192.168.1.20",
            "10.0.0.5",
            "172.16.3.4",
            "fd12:3456::1",
            "93.184.216.34",
        ] {
            assert_eq!(p.check(ip(ok)), Ok(()), "{ok}");
        }
        for refused in [
            "127.0.0.1",
            "::1",
            "::ffff:127.0.0.1",
            "169.254.10.1",
            "fe80::1",
            "169.254.169.254",
            "fd00:ec2::254",
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "255.255.255.255",
        ] {
            assert!(p.check(ip(refused)).is_err(), "{refused}");
        }
    }

    #[test]
    fn the_config_opens_loopback_and_link_local_but_never_metadata() {
        let p = AddressPolicy {
            allow_loopback: true,
            allow_link_local: true,
        };
        assert_eq!(p.check(ip("127.0.0.1")), Ok(()));
        assert_eq!(p.check(ip("fe80::1")), Ok(()));
        assert!(p.check(ip("169.254.169.254")).is_err());
        assert!(p.check(ip("fd00:ec2::254")).is_err());
    }

    #[test]
    fn urls_are_checked_by_form_and_literal_address() {
        let p = AddressPolicy::default();
        assert!(check_url("https://ha.lan:8123/api/webhook/x", p).is_ok());
        assert!(check_url("http://192.168.1.5/hook", p).is_ok());
        assert!(check_url("ftp://ha.lan/", p).is_err());
        assert!(check_url("http://user:pw@ha.lan/", p).is_err());
        assert!(check_url("http://127.0.0.1:8080/", p).is_err());
        assert!(check_url("http://[::1]:8080/", p).is_err());
        assert!(check_url("http://169.254.169.254/latest", p).is_err());
    }
}
