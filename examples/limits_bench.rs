//! Rate-limiter figures for `scripts/bench/limits.sh`: checks per second per core and bytes
//! per tracked key. A benchmark, not a test: it prints numbers and asserts nothing.
//!
//!   cargo run --release --example limits_bench [-- SECONDS_PER_CASE]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use roost::config::rate_limits::RateLimits;
use roost::limits::alerts::AlertSink;
use roost::limits::{Account, Family, Limiter, MonotonicClock};
use roost::metrics::Metrics;

fn limiter(max_keys: usize) -> Arc<Limiter> {
    let mut config = RateLimits {
        max_keys_per_family: max_keys,
        ..RateLimits::default()
    };
    // Large buckets so the steady-state cases measure admitted requests, the common path.
    config.read.burst = 1_000_000;
    config.read.per_minute = 60_000_000;
    Arc::new(Limiter::new(
        &config,
        MonotonicClock::new(),
        &Metrics::new(),
        AlertSink::disabled(),
    ))
}

fn client(i: u32) -> IpAddr {
    // 10.0.0.0/8 onwards: distinct IPv4 clients.
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
}

/// Runs `check(i)` for `secs` on each of `threads` threads; returns checks/s per thread.
fn rate(threads: usize, secs: f64, check: impl Fn(u64) + Sync) -> f64 {
    let total: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let check = &check;
                s.spawn(move || {
                    let deadline = Instant::now() + Duration::from_secs_f64(secs);
                    let mut n = 0u64;
                    let mut i = (t as u64) << 40;
                    while Instant::now() < deadline {
                        for _ in 0..1024 {
                            check(i);
                            i += 1;
                        }
                        n += 1024;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    total as f64 / secs / threads as f64
}

fn rss_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("limiter checks per second per core ({secs} s per case, {cores} core(s) available)");

    let known = limiter(100_000);
    let case = |name: &str, threads: usize, per_core: f64| {
        println!(
            "  {name:<46} {threads} thread(s)  {:>12.0} checks/s/core",
            per_core
        );
    };
    let one_ip = |i: u64| {
        black_box(known.check(Family::Read, client(0), None));
        black_box(i);
    };
    case("one client IP (hot key)", 1, rate(1, secs, one_ip));
    let many = |i: u64| {
        black_box(known.check(Family::Read, client((i % 10_000) as u32), None));
    };
    case("10k client IPs, tracked", 1, rate(1, secs, many));
    let accounts: Vec<Account> = (0..200).map(|i| Account(format!("user-{i:04}"))).collect();
    let authed = |i: u64| {
        let account = &accounts[(i % 200) as usize];
        black_box(known.check(Family::Read, client((i % 1_000) as u32), Some(account)));
    };
    case(
        "200 accounts behind 1k IPs (both buckets)",
        1,
        rate(1, secs, authed),
    );
    if cores > 1 {
        case("10k client IPs, tracked", cores, rate(cores, secs, many));
    }

    // The insert path, and the memory it takes: a million distinct IPv6 /64s in one family.
    const KEYS: u32 = 1_000_000;
    let sized = limiter(KEYS as usize);
    let rss_before = rss_bytes();
    let started = Instant::now();
    for i in 0..KEYS {
        let v6 = Ipv6Addr::from((u128::from(i) << 64) | 1);
        black_box(sized.check(Family::Login, IpAddr::V6(v6), None));
    }
    case(
        "a new IPv6 /64 every check (insert path)",
        1,
        f64::from(KEYS) / started.elapsed().as_secs_f64(),
    );
    let tracked = sized.tracked_keys(Family::Login);
    let map_bytes = sized.allocated_bytes();
    println!("memory per tracked client key ({tracked} keys in one family)");
    println!(
        "  map slot {} B; allocated maps {:.1} B/key ({:.1} MB)",
        Limiter::BYTES_PER_IP_KEY,
        map_bytes as f64 / tracked as f64,
        map_bytes as f64 / 1e6
    );
    if let (Some(before), Some(after)) = (rss_before, rss_bytes()) {
        println!(
            "  resident memory grew {:.1} B/key ({:.1} MB)",
            after.saturating_sub(before) as f64 / tracked as f64,
            after.saturating_sub(before) as f64 / 1e6
        );
    }
    println!(
        "  at the default cap (100000 keys x 8 families) the maps need at most ~{:.0} MB",
        map_bytes as f64 / tracked as f64 * 100_000.0 * 8.0 / 1e6
    );
}
