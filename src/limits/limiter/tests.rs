use std::time::Duration;

use super::*;
use crate::config::rate_limits::FamilyLimit;
use crate::limits::clock::FakeClock;

fn config(f: impl FnOnce(&mut RateLimits)) -> RateLimits {
    let mut c = RateLimits::default();
    f(&mut c);
    c
}

fn limiter(c: &RateLimits) -> (Limiter, Arc<FakeClock>, Metrics) {
    let clock = FakeClock::new();
    let metrics = Metrics::new();
    let l = Limiter::new(c, clock.clone(), &metrics, AlertSink::disabled());
    (l, clock, metrics)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn allowed(d: Decision) -> bool {
    matches!(d, Decision::Allowed(_) | Decision::Unlimited)
}

/// login: 2 per account, x2 per IP, one token back per second per account.
fn small_login() -> RateLimits {
    config(|c| {
        c.login = FamilyLimit {
            burst: 2,
            per_minute: 60,
            per_ip_multiplier: 2,
            enabled: true,
        }
    })
}

#[test]
fn config_families_are_in_family_order() {
    let c = RateLimits::default();
    for (family, (name, _)) in Family::ALL.iter().zip(c.families()) {
        assert_eq!(family.name(), name);
    }
}

#[test]
fn ip_allowance_is_the_account_allowance_times_the_multiplier() {
    let (l, clock, _) = limiter(&small_login());
    let client = ip("192.0.2.1");
    let quotas: Vec<Decision> = (0..5)
        .map(|_| l.check(Family::Login, client, None))
        .collect();
    assert_eq!(
        quotas[0],
        Decision::Allowed(Quota {
            limit: 4,
            remaining: 3,
            wait: Duration::from_millis(500)
        })
    );
    assert!(quotas[..4].iter().all(|d| allowed(*d)));
    let Decision::Refused { quota, reason } = quotas[4] else {
        panic!("{quotas:?}")
    };
    assert_eq!(reason, Reason::Ip);
    assert_eq!((quota.limit, quota.remaining), (4, 0));
    assert_eq!(quota.wait, Duration::from_millis(500), "IP refills 2/s");
    // Other families and other clients are untouched.
    assert!(allowed(l.check(Family::Read, client, None)));
    assert!(allowed(l.check(Family::Login, ip("192.0.2.2"), None)));
    clock.advance(Duration::from_millis(500));
    assert!(allowed(l.check(Family::Login, client, None)));
}

#[test]
fn a_request_must_pass_both_buckets_and_a_refusal_costs_nothing() {
    let (l, _, metrics) = limiter(&small_login());
    let alice = Account("alice".into());
    let home = ip("198.51.100.7");
    assert!(allowed(l.check(Family::Login, home, Some(&alice))));
    let Decision::Allowed(q) = l.check(Family::Login, home, Some(&alice)) else {
        panic!()
    };
    assert_eq!(
        (q.limit, q.remaining),
        (2, 0),
        "the tighter bucket is reported"
    );
    // Alice is out of tokens from any address.
    let Decision::Refused { reason, quota } =
        l.check(Family::Login, ip("203.0.113.5"), Some(&alice))
    else {
        panic!()
    };
    assert_eq!((reason, quota.limit), (Reason::Account, 2));
    // The IP bucket was refunded for that refusal: the household still has 2 of its 4.
    let bob = Account("bob".into());
    assert!(allowed(l.check(Family::Login, home, Some(&bob))));
    assert!(allowed(l.check(Family::Login, home, Some(&bob))));
    let Decision::Refused { reason, .. } = l.check(Family::Login, home, None) else {
        panic!()
    };
    assert_eq!(reason, Reason::Ip);
    let text = metrics.encode();
    for line in [
        "roost_rate_limit_hits_total{surface=\"login\",reason=\"account\"} 1",
        "roost_rate_limit_hits_total{surface=\"login\",reason=\"ip\"} 1",
    ] {
        assert!(text.contains(line), "{line} missing in\n{text}");
    }
}

#[test]
fn ipv6_clients_are_grouped_by_slash_64() {
    let c = config(|c| {
        c.read = FamilyLimit {
            burst: 1,
            per_minute: 1,
            per_ip_multiplier: 1,
            enabled: true,
        }
    });
    let (l, _, _) = limiter(&c);
    assert!(allowed(l.check(Family::Read, ip("2001:db8:1:2::1"), None)));
    assert!(!allowed(l.check(
        Family::Read,
        ip("2001:db8:1:2:ffff:ffff:ffff:9"),
        None
    )));
    assert!(allowed(l.check(Family::Read, ip("2001:db8:1:3::1"), None)));
    // IPv4 is per address, and the mapped form is the same client.
    assert!(allowed(l.check(Family::Read, ip("192.0.2.1"), None)));
    assert!(!allowed(l.check(
        Family::Read,
        ip("::ffff:192.0.2.1"),
        None
    )));
    assert!(allowed(l.check(Family::Read, ip("192.0.2.2"), None)));
    assert_ne!(ip_key(ip("0.0.0.0")), ip_key(ip("::")));
}

#[test]
fn exempt_networks_and_disabled_families_are_unlimited() {
    let mut c = small_login();
    c.exempt_cidrs = vec!["10.0.0.0/8".into(), "fd00::/8".into()];
    c.write.enabled = false;
    let (l, _, _) = limiter(&c);
    for _ in 0..100 {
        assert_eq!(
            l.check(Family::Login, ip("10.1.2.3"), None),
            Decision::Unlimited
        );
        assert_eq!(
            l.check(Family::Login, ip("fd12::1"), None),
            Decision::Unlimited
        );
        assert_eq!(
            l.check(Family::Write, ip("192.0.2.1"), None),
            Decision::Unlimited
        );
    }
    assert_eq!(l.tracked_keys(Family::Login), 0);
}

#[test]
fn past_the_cap_new_keys_share_the_overflow_bucket() {
    let mut c = small_login();
    c.max_keys_per_family = 2;
    let (l, _, metrics) = limiter(&c);
    assert!(allowed(l.check(Family::Login, ip("192.0.2.1"), None)));
    assert!(allowed(l.check(Family::Login, ip("192.0.2.2"), None)));
    // Strangers 3..: one shared 4-token bucket.
    let outcomes: Vec<Decision> = (3..=7)
        .map(|i| l.check(Family::Login, ip(&format!("192.0.2.{i}")), None))
        .collect();
    assert!(outcomes[..4].iter().all(|d| allowed(*d)), "{outcomes:?}");
    assert!(matches!(
        outcomes[4],
        Decision::Refused {
            reason: Reason::Overflow,
            ..
        }
    ));
    assert_eq!(l.tracked_keys(Family::Login), 2);
    // Known clients keep their own buckets.
    assert!(allowed(l.check(Family::Login, ip("192.0.2.1"), None)));
    assert!(metrics
        .encode()
        .contains("roost_rate_limit_hits_total{surface=\"login\",reason=\"overflow\"} 1"));
}

#[test]
fn pruning_drops_idle_keys_and_makes_room() {
    let mut c = small_login();
    c.max_keys_per_family = 2;
    let (l, clock, _) = limiter(&c);
    l.check(Family::Login, ip("192.0.2.1"), None);
    l.check(Family::Login, ip("192.0.2.2"), None);
    assert_eq!(l.prune(), 0, "buckets just used are not full yet");
    clock.advance(Duration::from_secs(1));
    assert_eq!(l.prune(), 2);
    assert_eq!(l.tracked_keys(Family::Login), 0);
    l.check(Family::Login, ip("192.0.2.3"), None);
    assert_eq!(
        l.tracked_keys(Family::Login),
        1,
        "a new key is tracked again"
    );
}

#[test]
fn reconfigure_resets_only_changed_families() {
    let (l, _, _) = limiter(&small_login());
    let client = ip("192.0.2.1");
    for _ in 0..4 {
        l.check(Family::Login, client, None);
    }
    for _ in 0..3 {
        l.check(Family::Read, client, None);
    }
    assert!(!allowed(l.check(Family::Login, client, None)));
    let mut bigger = small_login();
    bigger.login.burst = 10;
    assert_eq!(l.reconfigure(&bigger), vec!["login"]);
    let Decision::Allowed(q) = l.check(Family::Login, client, None) else {
        panic!()
    };
    assert_eq!((q.limit, q.remaining), (20, 19));
    let Decision::Allowed(q) = l.check(Family::Read, client, None) else {
        panic!()
    };
    assert_eq!(q.remaining, 480 - 4, "read kept its state");
    assert!(l.reconfigure(&bigger).is_empty());
}

/// Item 13: a million distinct clients under a fake clock never grow the limiter past its cap.
#[test]
fn a_million_distinct_keys_stay_within_the_cap_and_bounded_memory() {
    const KEYS: u32 = 1_000_000;
    let cap = RateLimits::default().max_keys_per_family;
    let (l, clock, metrics) = limiter(&RateLimits::default());
    // Login buckets (20 per IP, 20/min) stay non-full for 3 s after one request; the scan
    // makes 100k new clients per fake second and prunes each second, so the cap is hit.
    let bound = cap * Limiter::BYTES_PER_IP_KEY * 5 / 2;
    let mut overflowed = 0u32;
    for i in 0..KEYS {
        let client = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
        if let Decision::Refused { reason, .. } = l.check(Family::Login, client, None) {
            assert_eq!(reason, Reason::Overflow);
            overflowed += 1;
        }
        if i % 10 == 0 {
            clock.advance(Duration::from_micros(100));
        }
        if i % 1_000 == 0 {
            let tracked = l.tracked_keys(Family::Login);
            assert!(tracked <= cap, "{tracked} keys tracked, cap {cap}");
            let bytes = l.allocated_bytes();
            assert!(
                bytes <= bound,
                "{bytes} bytes for {tracked} keys (bound {bound})"
            );
        }
        if i % 100_000 == 0 {
            l.prune();
        }
    }
    assert_eq!(l.tracked_keys(Family::Login), cap, "the cap was reached");
    assert!(
        overflowed > 0,
        "keys past the cap were refused from the overflow bucket"
    );
    assert!(metrics.encode().contains("reason=\"overflow\""));
    clock.advance(Duration::from_secs(60));
    l.prune();
    assert_eq!(l.tracked_keys(Family::Login), 0);
    assert!(
        l.allocated_bytes() < 64 * 1024,
        "memory is given back: {}",
        l.allocated_bytes()
    );
}
