//! How many connections one client address may hold open at once on a listener.
//!
//! The listener's connection cap (`server.max_connections`) bounds the total, but alone it lets
//! one address take every slot (slowloris, idle TLS handshakes, a flood) while everyone else
//! waits in the backlog. This count is checked right after `accept`: a connection over its
//! address's share is closed at once, before any TLS work, so the attacker's extra connections
//! cost a socket close and the slots stay free for other clients.
//!
//! IPv6 clients are counted per /64 (one household or phone gets a whole /64, as the rate
//! limiter does), except on this machine's own networks: every device on the LAN shares the
//! LAN's /64, so counted by /64 a few hundred phones reconnecting over IPv6 at once (the Pi
//! restarted) would have all but the first `max_connections_per_ip` closed. Peers in one of
//! the machine's own /64s ([`on_link_prefixes`]) and link-local peers (fe80::/10) are counted
//! per address, as IPv4 peers are: someone on the LAN could take that many addresses over IPv4
//! too. Trusted proxies (`server.trusted_proxies`: a tunnel, a reverse proxy) are exempt,
//! since every client behind them shares their address. This module knows nothing about HTTP
//! or TLS.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use ipnet::{IpNet, Ipv6Net};

/// The per-address share of one listener's connections.
#[derive(Debug)]
pub struct PerIpLimit {
    max_per_ip: usize,
    exempt: Vec<IpNet>,
    /// This machine's own IPv6 networks (/64s), whose peers are counted per address.
    on_link: Vec<Ipv6Net>,
    /// Open connections per address key. An entry exists only while its count is above zero,
    /// so the map never holds more entries than the listener has connections (itself bounded
    /// by `max_connections`).
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One counted connection; gives its slot back when dropped.
#[derive(Debug)]
pub struct PerIpGuard {
    limit: Arc<PerIpLimit>,
    key: IpAddr,
}

impl PerIpLimit {
    /// `on_link`: this machine's IPv6 /64s ([`on_link_prefixes`]).
    pub fn new(max_per_ip: usize, exempt: Vec<IpNet>, on_link: Vec<Ipv6Net>) -> Arc<PerIpLimit> {
        Arc::new(PerIpLimit {
            max_per_ip,
            exempt,
            on_link,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Counts a new connection from `peer`. `None`: the address already holds its share and the
    /// connection should be closed. Exempt addresses always get `Some` (uncounted).
    pub fn try_acquire(self: &Arc<Self>, peer: IpAddr) -> Option<Option<PerIpGuard>> {
        let peer = peer.to_canonical();
        if self.exempt.iter().any(|net| net.contains(&peer)) {
            return Some(None);
        }
        let key = self.key_of(peer);
        // A poisoned lock only means another connection task panicked mid-update of a counter;
        // the map itself is still a valid map, so keep counting with it.
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(key).or_insert(0);
        if *n >= self.max_per_ip {
            return None;
        }
        *n += 1;
        Some(Some(PerIpGuard {
            limit: self.clone(),
            key,
        }))
    }

    /// Connections `peer`'s address key holds now (for tests and diagnostics).
    pub fn open_for(&self, peer: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&self.key_of(peer.to_canonical()))
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for PerIpGuard {
    fn drop(&mut self) {
        let mut open = self.limit.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

impl PerIpLimit {
    /// IPv4 addresses as they are; IPv6 addresses by their /64, except link-local ones and
    /// those in this machine's own networks, which count alone.
    fn key_of(&self, ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(_) => ip,
            IpAddr::V6(v6) if is_link_local(v6) || self.on_link.iter().any(|n| n.contains(&v6)) => {
                ip
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        }
    }
}

/// fe80::/10: a peer on the same link, whatever the machine's other addresses.
fn is_link_local(ip: Ipv6Addr) -> bool {
    ip.segments()[0] & 0xffc0 == 0xfe80
}

/// The /64 of each of this machine's IPv6 addresses (`machine_ips`: its interface addresses),
/// loopback excluded: the LAN's networks, whose peers [`PerIpLimit`] counts per address.
pub fn on_link_prefixes(machine_ips: &[IpAddr]) -> Vec<Ipv6Net> {
    let mut nets: Vec<Ipv6Net> = machine_ips
        .iter()
        .filter_map(|ip| match ip {
            IpAddr::V6(v6) if !v6.is_loopback() => Ipv6Net::new(*v6, 64).ok(),
            _ => None,
        })
        .map(|net| net.trunc())
        .collect();
    nets.sort();
    nets.dedup();
    nets
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_share_and_gets_slots_back_on_close() {
        let limit = PerIpLimit::new(2, vec![], vec![]);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = limit.try_acquire(a).unwrap();
        let _second = limit.try_acquire(a).unwrap();
        assert!(limit.try_acquire(a).is_none(), "third connection from a");
        assert!(
            limit.try_acquire(b).is_some(),
            "another address is not affected"
        );
        drop(first);
        assert_eq!(limit.open_for(a), 1);
        assert!(
            limit.try_acquire(a).is_some(),
            "a closed connection frees its slot"
        );
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let limit = PerIpLimit::new(1, vec![], vec![]);
        let _one = limit
            .try_acquire("2001:db8:1:2::1".parse().unwrap())
            .unwrap();
        assert!(limit
            .try_acquire("2001:db8:1:2:ffff::9".parse().unwrap())
            .is_none());
        assert!(limit
            .try_acquire("2001:db8:1:3::1".parse().unwrap())
            .is_some());
        let _v4 = limit.try_acquire("198.51.100.4".parse().unwrap()).unwrap();
        assert!(limit
            .try_acquire("::ffff:198.51.100.4".parse().unwrap())
            .is_none());
    }

    #[test]
    fn trusted_proxies_are_not_counted_and_empty_entries_are_dropped() {
        let limit = PerIpLimit::new(1, vec!["127.0.0.0/8".parse().unwrap()], vec![]);
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        let held: Vec<_> = (0..10).map(|_| limit.try_acquire(proxy).unwrap()).collect();
        assert!(held.iter().all(Option::is_none), "exempt: no guard");
        let g = limit.try_acquire("192.0.2.9".parse().unwrap()).unwrap();
        drop(g);
        assert!(limit.open.lock().unwrap().is_empty());
    }

    /// Phones on the Pi's own LAN share its /64: each counts alone there, as link-local
    /// peers do, while a /64 elsewhere still counts as one client.
    #[test]
    fn ipv6_peers_on_the_machines_own_networks_count_per_address() {
        let machine: Vec<IpAddr> = ["2001:db8:1:2::10", "192.168.1.20", "::1"]
            .iter()
            .map(|ip| ip.parse().unwrap())
            .collect();
        let on_link = on_link_prefixes(&machine);
        assert_eq!(
            on_link,
            vec!["2001:db8:1:2::/64".parse::<Ipv6Net>().unwrap()]
        );
        let limit = PerIpLimit::new(1, vec![], on_link);
        let held: Vec<_> = (1..=300)
            .map(|i| format!("2001:db8:1:2::{i:x}").parse::<IpAddr>().unwrap())
            .chain((1..=300).map(|i| format!("fe80::{i:x}").parse().unwrap()))
            .map(|peer| {
                limit
                    .try_acquire(peer)
                    .expect("each LAN address has its own share")
            })
            .collect();
        assert_eq!(held.len(), 600);
        assert!(
            limit
                .try_acquire("2001:db8:1:2::1".parse().unwrap())
                .is_none(),
            "one address still holds only its share"
        );
        let _away = limit
            .try_acquire("2001:db8:9:9::1".parse().unwrap())
            .unwrap();
        assert!(
            limit
                .try_acquire("2001:db8:9:9::2".parse().unwrap())
                .is_none(),
            "a /64 that is not the machine's counts as one client"
        );
    }
}
