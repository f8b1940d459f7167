//! `roost doctor`'s view of LiveKit's media path: the address LiveKit will announce to
//! clients and the ports the firewall must pass. It only reads interface addresses; it binds,
//! sends and writes nothing.

use std::net::IpAddr;

use super::Check;

/// Interface names that belong to containers or VMs: an address there is not one phones on
/// the LAN can reach.
const VIRTUAL_INTERFACES: [&str; 7] = ["docker", "br-", "veth", "virbr", "cni", "podman", "lxc"];

/// This machine's addresses with their interface names, in the kernel's interface order (the
/// order LiveKit walks them in).
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

/// The address LiveKit announces for media and where it comes from: `livekit.node_ip`, else
/// what LiveKit picks itself (with `use_external_ip: false`): the first IPv4 address that is
/// neither loopback nor link-local in interface order, else such an IPv6 address, else
/// loopback.
pub fn announced_address(
    node_ip: &str,
    interfaces: &[(String, IpAddr)],
) -> Option<(IpAddr, String)> {
    if let Ok(ip) = node_ip.parse::<IpAddr>() {
        return Some((ip, "livekit.node_ip".to_owned()));
    }
    let link_local = |ip: &IpAddr| match ip {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
    };
    let usable = |v4: bool| {
        interfaces
            .iter()
            .find(|(_, ip)| ip.is_ipv4() == v4 && !ip.is_loopback() && !link_local(ip))
    };
    usable(true)
        .or_else(|| usable(false))
        .or_else(|| interfaces.iter().find(|(_, ip)| ip.is_loopback()))
        .map(|(name, ip)| (*ip, format!("detected on {name}")))
}

/// The media ports the firewall must pass and the address LiveKit will announce.
pub fn check_livekit_media(
    l: &crate::config::livekit::Livekit,
    interfaces: &[(String, IpAddr)],
) -> Check {
    let mut ports = vec![if l.uses_port_range() {
        format!("UDP {}-{}", l.rtc_port_range_start, l.rtc_port_range_end)
    } else {
        format!("UDP {}", l.rtc_udp_port)
    }];
    ports.push(format!("ICE/TCP {}", l.rtc_tcp_port));
    if l.turn_enabled {
        if l.turn_udp_port != 0 {
            ports.push(format!("TURN UDP {}", l.turn_udp_port));
        }
        if l.turn_tls_port != 0 {
            ports.push(format!("TURN/TLS {}", l.turn_tls_port));
        }
        ports.push("TURN relay UDP 30000-40000".to_owned());
    }
    let ports = ports.join(", ");
    let pin = "set livekit.node_ip to this machine's LAN address, e.g. \"192.168.1.20\"";
    match announced_address(&l.node_ip, interfaces) {
        None => Check::warn(
            "livekit media",
            format!("no address for LiveKit to announce; media ports {ports}"),
            pin,
        ),
        Some((ip, source)) if ip.is_loopback() => Check::warn(
            "livekit media",
            format!(
                "announces {ip} ({source}): only this machine can reach it; media ports {ports}"
            ),
            pin,
        ),
        Some((ip, source))
            if VIRTUAL_INTERFACES
                .iter()
                .any(|prefix| source.starts_with(&format!("detected on {prefix}"))) =>
        {
            Check::warn(
                "livekit media",
                format!("announces {ip} ({source}, a container or VM bridge); media ports {ports}"),
                pin,
            )
        }
        Some((ip, source)) => Check::ok(
            "livekit media",
            format!("announces {ip} ({source}); media ports {ports}"),
        ),
    }
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
    fn the_announced_address_is_node_ip_or_what_livekit_would_pick() {
        let here = ifs(&[
            ("lo", "127.0.0.1"),
            ("eth0", "fe80::1"),
            ("eth0", "fd00::5"),
            ("eth0", "192.168.1.20"),
            ("docker0", "172.17.0.1"),
        ]);
        assert_eq!(
            announced_address("", &here),
            Some(("192.168.1.20".parse().unwrap(), "detected on eth0".into()))
        );
        assert_eq!(
            announced_address("10.0.0.7", &here).unwrap().1,
            "livekit.node_ip"
        );
        let v6_only = ifs(&[("lo", "127.0.0.1"), ("wlan0", "fd00::5")]);
        assert_eq!(
            announced_address("", &v6_only).unwrap().0.to_string(),
            "fd00::5"
        );
        assert_eq!(announced_address("", &[]), None);
    }

    #[test]
    fn the_check_names_ports_and_warns_about_unreachable_addresses() {
        let mut l = crate::config::livekit::Livekit::default();
        let lan = check_livekit_media(&l, &ifs(&[("lo", "127.0.0.1"), ("eth0", "192.168.1.20")]));
        assert_eq!(lan.status, super::super::Level::Ok, "{lan:?}");
        assert_eq!(
            lan.message,
            "announces 192.168.1.20 (detected on eth0); media ports UDP 7882, ICE/TCP 7881"
        );
        let bridge =
            check_livekit_media(&l, &ifs(&[("lo", "127.0.0.1"), ("docker0", "172.17.0.1")]));
        assert_eq!(bridge.status, super::super::Level::Warn, "{bridge:?}");
        assert!(
            bridge.message.contains("container or VM bridge"),
            "{bridge:?}"
        );
        let alone = check_livekit_media(&l, &ifs(&[("lo", "127.0.0.1")]));
        assert_eq!(alone.status, super::super::Level::Warn, "{alone:?}");

        l.rtc_port_range_start = 50000;
        l.rtc_port_range_end = 50100;
        l.turn_enabled = true;
        l.turn_tls_port = 5349;
        l.node_ip = "192.168.1.20".into();
        let turn = check_livekit_media(&l, &[]);
        assert!(
            turn.message.ends_with(
                "media ports UDP 50000-50100, ICE/TCP 7881, TURN UDP 3478, TURN/TLS 5349, TURN relay UDP 30000-40000"
            ),
            "{turn:?}"
        );
    }
}
