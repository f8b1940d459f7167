//! The rate limiter: per-family buckets keyed by client IP and by account, its reloadable
//! settings, its metrics and its pruning task.
//!
//! A request passes only if both its IP bucket and (when authenticated) its account bucket
//! have a token; a token taken from the IP bucket is given back when the account bucket
//! refuses, so a refused request costs nothing. IPv4 clients are keyed by address, IPv6
//! clients by their /64 (one household or one host can hold a whole /64).
//!
//! There is one limiter per daemon, made in `daemon::run` and handed to the surfaces that run
//! its step; nothing here is global. This module does not know HTTP (that is [`super::layer`]).

use std::net::IpAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use ipnet::IpNet;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family as MetricFamily;
use tokio_util::sync::CancellationToken;

use super::alerts::AlertSink;
use super::bucket::{Rate, Verdict};
use super::clock::Clock;
use super::table::{self, Slot, Table};
use super::{Account, Family};
use crate::config::rate_limits::RateLimits;
use crate::metrics::Metrics;

/// What the limiter says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The family is disabled or the client is in an exempt network.
    Unlimited,
    Allowed(Quota),
    Refused {
        quota: Quota,
        reason: Reason,
    },
}

/// The state of the bucket that bound the decision (the one with fewer tokens left).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// The bucket's size (`RateLimit-Limit`).
    pub limit: u32,
    pub remaining: u32,
    /// Allowed: until the bucket is full again. Refused: until the next token.
    pub wait: Duration,
}

/// Which bucket refused a request (the `reason` label of `roost_rate_limit_hits_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Ip,
    Account,
    /// The family was tracking as many keys as allowed; new keys share one bucket.
    Overflow,
}

impl Reason {
    pub fn name(self) -> &'static str {
        match self {
            Reason::Ip => "ip",
            Reason::Account => "account",
            Reason::Overflow => "overflow",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HitLabels {
    surface: &'static str,
    reason: &'static str,
}

/// Settings derived from `[rate_limits]`, swapped as a whole on reload.
#[derive(Debug, PartialEq)]
struct Settings {
    exempt: Vec<IpNet>,
    max_keys: usize,
    prune_interval: Duration,
    families: [FamilySettings; 8],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FamilySettings {
    enabled: bool,
    account: Rate,
    ip: Rate,
}

impl Settings {
    fn from_config(c: &RateLimits) -> Settings {
        let families = c.families().map(|(_, f)| {
            let account = Rate::per_minute(f.burst, f.per_minute);
            FamilySettings {
                enabled: f.enabled,
                account,
                ip: account.scaled(f.per_ip_multiplier),
            }
        });
        Settings {
            exempt: c.exempt_networks(),
            max_keys: c.max_keys_per_family,
            prune_interval: Duration::from_secs(c.prune_interval_secs.max(1)),
            families,
        }
    }
}

/// One family's buckets. `keys` counts the keys of both tables against `max_keys`.
#[derive(Default)]
struct FamilyState {
    ip: Table<u64>,
    account: Table<Box<str>>,
    keys: AtomicUsize,
}

pub struct Limiter {
    clock: Arc<dyn Clock>,
    settings: RwLock<Arc<Settings>>,
    families: [FamilyState; 8],
    hits: MetricFamily<HitLabels, Counter>,
    alerts: AlertSink,
}

impl Limiter {
    /// A limiter with `config`'s settings; registers `roost_rate_limit_hits_total` in
    /// `metrics` and reports every refusal to `alerts`.
    pub fn new(
        config: &RateLimits,
        clock: Arc<dyn Clock>,
        metrics: &Metrics,
        alerts: AlertSink,
    ) -> Limiter {
        let hits = MetricFamily::<HitLabels, Counter>::default();
        metrics.register(
            "rate_limit_hits",
            "Requests refused by the rate limiter, by action family and refusing bucket",
            hits.clone(),
        );
        Limiter {
            clock,
            settings: RwLock::new(Arc::new(Settings::from_config(config))),
            families: Default::default(),
            hits,
            alerts,
        }
    }

    fn settings(&self) -> Arc<Settings> {
        // Only whole Arcs are stored under this lock; a poisoned one still holds a valid one.
        self.settings
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Charges one request of `family` from `ip` (and `account`, when authenticated).
    pub fn check(&self, family: Family, ip: IpAddr, account: Option<&Account>) -> Decision {
        let settings = self.settings();
        let limits = settings.families[family.index()];
        let ip = ip.to_canonical();
        if !limits.enabled || settings.exempt.iter().any(|net| net.contains(&ip)) {
            return Decision::Unlimited;
        }
        let now = self.clock.now_nanos();
        let state = &self.families[family.index()];
        let cap = settings.max_keys;

        let ip_key = ip_key(ip);
        let (by_ip, ip_slot) = state
            .ip
            .acquire(&ip_key, |k| *k, now, limits.ip, &state.keys, cap);
        if !by_ip.allowed {
            return self.refuse(family, quota(by_ip, limits.ip), reason(ip_slot, Reason::Ip));
        }
        let Some(account) = account else {
            return Decision::Allowed(quota(by_ip, limits.ip));
        };
        let (by_account, account_slot) = state.account.acquire(
            account.0.as_str(),
            |id| id.into(),
            now,
            limits.account,
            &state.keys,
            cap,
        );
        if !by_account.allowed {
            state.ip.refund(&ip_key, ip_slot, limits.ip);
            return self.refuse(
                family,
                quota(by_account, limits.account),
                reason(account_slot, Reason::Account),
            );
        }
        Decision::Allowed(if by_account.remaining < by_ip.remaining {
            quota(by_account, limits.account)
        } else {
            quota(by_ip, limits.ip)
        })
    }

    fn refuse(&self, family: Family, quota: Quota, reason: Reason) -> Decision {
        self.hits
            .get_or_create(&HitLabels {
                surface: family.name(),
                reason: reason.name(),
            })
            .inc();
        self.alerts.rate_limited();
        Decision::Refused { quota, reason }
    }

    /// Applies new `[rate_limits]` settings. Families whose allowance changed start over with
    /// full buckets (a raised limit helps at once). Returns the names of those families.
    pub fn reconfigure(&self, config: &RateLimits) -> Vec<&'static str> {
        let new = Arc::new(Settings::from_config(config));
        let old = std::mem::replace(
            &mut *self
                .settings
                .write()
                .unwrap_or_else(PoisonError::into_inner),
            new.clone(),
        );
        let mut changed = Vec::new();
        for family in Family::ALL {
            let i = family.index();
            if old.families[i] != new.families[i] {
                let state = &self.families[i];
                state.ip.clear(&state.keys);
                state.account.clear(&state.keys);
                changed.push(family.name());
            }
        }
        changed
    }

    /// Drops every full bucket in every family; returns how many keys were dropped.
    pub fn prune(&self) -> usize {
        let now = self.clock.now_nanos();
        self.families
            .iter()
            .map(|s| s.ip.prune(now, &s.keys) + s.account.prune(now, &s.keys))
            .sum()
    }

    /// Keys tracked by one family (IPs and accounts).
    pub fn tracked_keys(&self, family: Family) -> usize {
        let s = &self.families[family.index()];
        s.ip.tracked() + s.account.tracked()
    }

    /// Bytes allocated for bucket maps across all families (excluding account id strings).
    pub fn allocated_bytes(&self) -> usize {
        self.families
            .iter()
            .map(|s| s.ip.allocated_bytes() + s.account.allocated_bytes())
            .sum()
    }

    /// Map bytes per tracked client-IP key at a full table (before load-factor slack).
    pub const BYTES_PER_IP_KEY: usize = table::slot_bytes::<u64>();

    /// Background task: prunes every `prune_interval_secs` (re-read after each round, so a
    /// reload applies) until `shutdown`.
    pub async fn run_pruner(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            let interval = self.settings().prune_interval;
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.cancelled() => return,
            }
            let removed = self.prune();
            if removed > 0 {
                tracing::debug!(removed, "pruned idle rate-limit buckets");
            }
        }
    }
}

fn quota(v: Verdict, rate: Rate) -> Quota {
    Quota {
        limit: rate.burst,
        remaining: v.remaining,
        wait: Duration::from_nanos(v.wait_nanos),
    }
}

fn reason(slot: Slot, own: Reason) -> Reason {
    match slot {
        Slot::Own => own,
        Slot::Overflow => Reason::Overflow,
    }
}

/// The bucket key of a client address: IPv4 by address, IPv6 by /64 prefix.
///
/// Both fit one u64. IPv4 addresses are placed under the prefix `ffff:ffff::/32`, which lies
/// in `ff00::/8` (multicast): no IPv6 client can send from there, so the two never collide.
pub fn ip_key(ip: IpAddr) -> u64 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => 0xffff_ffff_0000_0000 | u64::from(u32::from(v4)),
        IpAddr::V6(v6) => (u128::from(v6) >> 64) as u64,
    }
}

#[cfg(test)]
mod tests;
