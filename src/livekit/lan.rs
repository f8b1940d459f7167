//! The address LiveKit announces to clients for media, chosen by Roost rather than by LiveKit.
//!
//! Left to itself (no `node_ip`), LiveKit offers an ICE candidate on every interface, container
//! bridges included, and adds public STUN servers to find an outside address. On a LAN
//! appliance both are wrong: a phone cannot reach `172.17.0.1`, and the Pi should not talk to
//! the internet to place a call between two rooms of one house. So Roost always writes
//! `node_ip` (configured, else the first LAN address found here) and lists the container and
//! VM bridges in `rtc.interfaces.excludes`. `roost doctor` shows the same choice.
//!
//! This module only reads interface addresses; it binds, sends and writes nothing.

use std::net::IpAddr;

/// Name prefixes of interfaces that belong to containers or VMs: an address there is not one
/// phones on the LAN can reach.
const VIRTUAL_INTERFACES: [&str; 7] = ["docker", "br-", "veth", "virbr", "cni", "podman", "lxc"];

/// Whether `interface` is a container or VM bridge (or one end of a container's veth pair).
pub fn is_virtual(interface: &str) -> bool {
    VIRTUAL_INTERFACES
        .iter()
        .any(|prefix| interface.starts_with(prefix))
}

/// This machine's addresses with their interface names, in the kernel's interface order.
pub fn interface_addresses() -> Vec<(String, IpAddr)> {
    let Ok(interfaces) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    interfaces
        .filter_map(|i| {
            let a = i.address?;
            let ip = match (a.as_sockaddr_in(), a.as_sockaddr_in6()) {
                (Some(v4), _) => IpAddr::V4(v4.ip()),
                (None, Some(v6)) => IpAddr::V6(v6.ip()),
                _ => return None,
            };
            Some((i.interface_name, ip))
        })
        .collect()
}

/// Where the announced address comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `livekit.node_ip`.
    Configured,
    /// Found on this interface; `virtual_bridge` when no LAN interface had one.
    Detected {
        interface: String,
        virtual_bridge: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    pub ip: IpAddr,
    pub source: Source,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Configured => f.write_str("livekit.node_ip"),
            Source::Detected {
                interface,
                virtual_bridge: false,
            } => write!(f, "detected on {interface}"),
            Source::Detected { interface, .. } => {
                write!(f, "detected on {interface}, a container or VM bridge")
            }
        }
    }
}

/// Link-local addresses (169.254/16, fe80::/10) are never announced: they do not route.
pub fn is_link_local(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// The address LiveKit will announce: `node_ip` when set, else the first IPv4 address (then
/// IPv6) that is neither loopback nor link-local on an interface that is not a container or VM
/// bridge, else such an address on a bridge, else loopback. `None` without any address.
pub fn announced_address(node_ip: &str, interfaces: &[(String, IpAddr)]) -> Option<Announced> {
    if let Ok(ip) = node_ip.parse::<IpAddr>() {
        return Some(Announced {
            ip,
            source: Source::Configured,
        });
    }
    let usable = |v4: bool, bridges: bool| {
        interfaces.iter().find(|(name, ip)| {
            ip.is_ipv4() == v4
                && !ip.is_loopback()
                && !ip.is_unspecified()
                && !is_link_local(ip)
                && is_virtual(name) == bridges
        })
    };
    usable(true, false)
        .or_else(|| usable(false, false))
        .or_else(|| usable(true, true))
        .or_else(|| usable(false, true))
        .or_else(|| interfaces.iter().find(|(_, ip)| ip.is_loopback()))
        .map(|(name, ip)| Announced {
            ip: *ip,
            source: Source::Detected {
                interface: name.clone(),
                virtual_bridge: is_virtual(name),
            },
        })
}

/// The interfaces LiveKit must not gather candidates on: every container or VM bridge here,
/// unless the announced address itself is on one (then excluding it would leave nothing).
pub fn excluded_interfaces(
    announced: Option<&Announced>,
    interfaces: &[(String, IpAddr)],
) -> Vec<String> {
    let on_bridge = announced.is_some_and(|a| {
        interfaces
            .iter()
            .any(|(name, ip)| *ip == a.ip && is_virtual(name))
    });
    if on_bridge {
        return Vec::new();
    }
    let mut names: Vec<String> = interfaces
        .iter()
        .filter(|(name, _)| is_virtual(name))
        .map(|(name, _)| name.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ifs(list: &[(&str, &str)]) -> Vec<(String, IpAddr)> {
        list.iter()
            .map(|(name, ip)| (name.to_string(), ip.parse().unwrap()))
            .collect()
    }

    #[test]
    fn a_bridge_listed_first_is_passed_over_for_the_lan() {
        let here = ifs(&[
            ("lo", "127.0.0.1"),
            ("docker0", "172.17.0.1"),
            ("eth0", "fe80::1"),
            ("eth0", "fd00::5"),
            ("eth0", "192.168.1.20"),
            ("veth12ab", "fe80::9"),
        ]);
        let a = announced_address("", &here).unwrap();
        assert_eq!(a.ip.to_string(), "192.168.1.20");
        assert_eq!(a.source.to_string(), "detected on eth0");
        assert_eq!(
            excluded_interfaces(Some(&a), &here),
            vec!["docker0".to_owned(), "veth12ab".to_owned()]
        );
    }

    #[test]
    fn node_ip_wins_and_a_lone_bridge_or_loopback_is_still_named() {
        let here = ifs(&[("lo", "127.0.0.1"), ("docker0", "172.17.0.1")]);
        let configured = announced_address("10.0.0.7", &here).unwrap();
        assert_eq!(configured.source, Source::Configured);
        assert_eq!(configured.source.to_string(), "livekit.node_ip");

        let bridge = announced_address("", &here).unwrap();
        assert_eq!(bridge.ip.to_string(), "172.17.0.1");
        assert!(matches!(
            bridge.source,
            Source::Detected {
                virtual_bridge: true,
                ..
            }
        ));
        assert!(excluded_interfaces(Some(&bridge), &here).is_empty());

        let v6_only = ifs(&[("lo", "127.0.0.1"), ("wlan0", "fd00::5")]);
        assert_eq!(
            announced_address("", &v6_only).unwrap().ip.to_string(),
            "fd00::5"
        );
        let alone = ifs(&[("lo", "127.0.0.1")]);
        assert!(announced_address("", &alone).unwrap().ip.is_loopback());
        assert_eq!(announced_address("", &[]), None);
    }
}
