//! The names the server certificate must cover: the hostname and its mDNS `.local` form,
//! localhost, extra names, this machine's addresses and loopback.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The names the server certificate must cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerNames {
    /// `dns[0]` is the primary name (the certificate's CN); the rest are sorted.
    pub dns: Vec<String>,
    /// Sorted, deduplicated.
    pub ips: Vec<IpAddr>,
}

impl ServerNames {
    /// Every name a device on the LAN may use for this machine: the hostname, its mDNS
    /// `.local` form, localhost, `extra_dns` (IP literals in it are moved to `ips`), this
    /// machine's addresses and both loopback addresses.
    pub fn for_host(hostname: &str, extra_dns: &[String]) -> ServerNames {
        ServerNames::from_parts(hostname, extra_dns, machine_ips())
    }

    /// `for_host` without asking the kernel, so the naming rules are testable anywhere.
    pub(super) fn from_parts(
        hostname: &str,
        extra_dns: &[String],
        machine_ips: Vec<IpAddr>,
    ) -> ServerNames {
        let hostname = normalize_name(hostname);
        let mut dns = vec!["localhost".to_owned()];
        let mut ips = machine_ips;
        ips.extend([
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ]);

        // A hostname that is an address (`hostname = "10.0.0.2"`) is an IP SAN, not a DNS
        // one, and has no `.local` form.
        let primary = match hostname.parse::<IpAddr>() {
            Ok(ip) => {
                ips.push(ip);
                None
            }
            Err(_) if hostname.is_empty() => None,
            Err(_) => {
                if hostname != "localhost" && !hostname.ends_with(".local") {
                    dns.push(format!("{hostname}.local"));
                }
                Some(hostname)
            }
        };
        for name in extra_dns.iter().map(|name| normalize_name(name)) {
            match name.parse::<IpAddr>() {
                Ok(ip) => ips.push(ip),
                Err(_) if name.is_empty() => {}
                Err(_) => dns.push(name),
            }
        }

        dns.sort();
        dns.dedup();
        if let Some(primary) = primary {
            dns.retain(|name| *name != primary);
            dns.insert(0, primary);
        }
        ips.sort();
        ips.dedup();
        ServerNames { dns, ips }
    }

    /// The certificate's CN: the hostname if there is one. CN is only what cert viewers
    /// display; clients match against the SANs.
    pub(super) fn primary(&self) -> Option<String> {
        self.dns
            .first()
            .cloned()
            .or_else(|| self.ips.first().map(IpAddr::to_string))
    }
}

/// DNS names compare case-insensitively and a trailing dot means the same name.
pub(super) fn normalize_name(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// This machine's interface addresses, so `https://192.168.1.20` works as well as the name.
/// Link-local IPv6 is skipped: it needs a zone (`%eth0`) that browsers cannot put in a URL.
/// On failure this logs and returns nothing rather than failing startup: the names and the
/// loopback addresses still work.
pub fn machine_ips() -> Vec<IpAddr> {
    let interfaces = match nix::ifaddrs::getifaddrs() {
        Ok(interfaces) => interfaces,
        Err(err) => {
            tracing::warn!(error = %err, "cannot list network interfaces; the server certificate will cover only names and loopback");
            return Vec::new();
        }
    };
    let mut ips: Vec<IpAddr> = interfaces
        .filter_map(|interface| {
            let address = interface.address?;
            if let Some(v4) = address.as_sockaddr_in() {
                Some(IpAddr::V4(v4.ip()))
            } else {
                address.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
            }
        })
        .filter(|ip| !is_link_local_v6(ip))
        .collect();
    ips.sort();
    ips.dedup();
    ips
}

// `Ipv6Addr::is_unicast_link_local` is newer than our MSRV (1.80).
pub(super) fn is_link_local_v6(ip: &IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
}
