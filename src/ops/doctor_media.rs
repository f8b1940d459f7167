//! `roost doctor`'s view of LiveKit's media path: the address LiveKit will announce to
//! clients and the ports the firewall must pass. It only reads interface addresses; it binds,
//! sends and writes nothing.

use std::net::IpAddr;

use super::Check;
use crate::livekit::lan::{announced_address, Source};

/// The only port LiveKit names in the `turns:` URL it gives clients.
const TURN_TLS_ADVERTISED_PORT: u16 = 443;

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
    // LiveKit hands clients `turns:<turn_domain>:443` whatever its TLS port is: on any other
    // port, clients knock on Roost's HTTPS listener (or nothing) and TURN over TLS never works.
    if l.turn_enabled && l.turn_tls_port != 0 && l.turn_tls_port != TURN_TLS_ADVERTISED_PORT {
        return Check::warn(
            "livekit media",
            format!(
                "LiveKit tells clients TURN/TLS is on port 443, but livekit.turn_tls_port is {}; \
                 media ports {ports}",
                l.turn_tls_port
            ),
            "set livekit.turn_tls_port = 0 and use TURN over UDP, or 443 with \
             server.https_addr on another port",
        );
    }
    let pin = "set livekit.node_ip to this machine's LAN address, e.g. \"192.168.1.20\"";
    match announced_address(&l.node_ip, interfaces) {
        None => Check::warn(
            "livekit media",
            format!("no address for LiveKit to announce; media ports {ports}"),
            pin,
        ),
        Some(a) if a.ip.is_loopback() => Check::warn(
            "livekit media",
            format!(
                "announces {} ({}): only this machine can reach it; media ports {ports}",
                a.ip, a.source
            ),
            pin,
        ),
        Some(a)
            if matches!(
                a.source,
                Source::Detected {
                    virtual_bridge: true,
                    ..
                }
            ) =>
        {
            Check::warn(
                "livekit media",
                format!("announces {} ({}); media ports {ports}", a.ip, a.source),
                pin,
            )
        }
        Some(a) => Check::ok(
            "livekit media",
            format!("announces {} ({}); media ports {ports}", a.ip, a.source),
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
    fn the_check_names_ports_and_warns_about_unreachable_addresses() {
        let mut l = crate::config::livekit::Livekit::default();
        let lan = check_livekit_media(&l, &ifs(&[("lo", "127.0.0.1"), ("eth0", "192.168.1.20")]));
        assert_eq!(lan.status, super::super::Level::Ok, "{lan:?}");
        assert_eq!(
            lan.message,
            "announces 192.168.1.20 (detected on eth0); media ports UDP 7882, ICE/TCP 7881"
        );
        let behind_a_bridge = check_livekit_media(
            &l,
            &ifs(&[
                ("lo", "127.0.0.1"),
                ("docker0", "172.17.0.1"),
                ("eth0", "192.168.1.20"),
            ]),
        );
        assert_eq!(behind_a_bridge.message, lan.message, "{behind_a_bridge:?}");
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
        assert_eq!(turn.status, super::super::Level::Warn, "{turn:?}");
        assert!(
            turn.message.starts_with(
                "LiveKit tells clients TURN/TLS is on port 443, but livekit.turn_tls_port is 5349"
            ),
            "{turn:?}"
        );
        l.turn_tls_port = 443;
        let turn = check_livekit_media(&l, &[]);
        assert_eq!(turn.status, super::super::Level::Ok, "{turn:?}");
        assert!(
            turn.message.ends_with(
                "media ports UDP 50000-50100, ICE/TCP 7881, TURN UDP 3478, TURN/TLS 443, TURN relay UDP 30000-40000"
            ),
            "{turn:?}"
        );
    }
}
