//! Exponential backoff after failed logins, per username *and* client address, with a slower
//! ceiling per username across all addresses.
//!
//! Two trackers count consecutive failures:
//! - per username and client address (IPv6 by /64, as `limits` keys them): after
//!   [`Policy::free_failures`] failures from one address, further attempts from it for that
//!   name are refused without checking the password until a delay has passed: `base`, then
//!   doubling, up to `max`. Someone guessing from one address is slowed; the account's owner
//!   on another address is not.
//! - per username, across every address: the same with more free failures ([`Ceiling`]), so
//!   guessing one account's password from many addresses is slowed too. While it is in force,
//!   only addresses that have failed for that name (and not been forgotten) are refused: an
//!   address with no failures still has its password checked, so an attacker can never keep
//!   the owner of a correct password out, and each fresh address gets one guess, after which
//!   it is refused as well.
//!
//! A success clears its own address's entry (not the username ceiling, which is evidence of
//! guessing from elsewhere); an entry with no failure for `forget_after` is forgotten.
//! Usernames are tracked whether or not the account exists, so the backoff does not tell an
//! attacker which names are real.
//!
//! Memory is bounded: each tracker holds at most `max_entries` keys. At the cap, forgotten
//! entries are pruned first; if none are, the entry whose last failure is oldest is evicted
//! (its owner loses at most its current delay). This module is in-memory only and knows
//! nothing of HTTP or the database; the token buckets per IP live in `limits`.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::Clock;

#[derive(Debug, Clone)]
pub struct Policy {
    /// Failures allowed before any delay applies.
    pub free_failures: u32,
    /// Delay after the first failure past the free ones; doubles with each further failure.
    pub base: Duration,
    /// Longest delay.
    pub max: Duration,
    /// An entry with no failure for this long is forgotten.
    pub forget_after: Duration,
    /// Most keys tracked at once.
    pub max_entries: usize,
}

impl Default for Policy {
    /// Per username and address.
    fn default() -> Self {
        Policy {
            free_failures: 3,
            base: Duration::from_secs(1),
            max: Duration::from_secs(15 * 60),
            forget_after: Duration::from_secs(60 * 60),
            max_entries: 10_000,
        }
    }
}

/// The per-username ceiling's policy.
pub struct Ceiling;

impl Ceiling {
    /// Ten failures across all addresses before it applies: more than one person mistyping
    /// from a few devices, far fewer than a guessing run.
    pub fn policy() -> Policy {
        Policy {
            free_failures: 10,
            ..Policy::default()
        }
    }
}

/// Which tracker refused an attempt (the label of `roost_auth_login_backoff_refusals_total`
/// and the audit event's `scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// This username from this address.
    Address,
    /// This username from any address that has failed for it.
    Username,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Address => "address",
            Scope::Username => "username",
        }
    }
}

/// An attempt refused without checking the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused {
    pub scope: Scope,
    pub wait: Duration,
}

/// What one failure changed: the trackers that went into backoff with it (they were not
/// before), with the delay now in force. For the audit log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Failure {
    pub backed_off: Vec<(Scope, Duration)>,
}

/// A client address as the backoff keys it: IPv4 by address, IPv6 by /64; `None` when the
/// request carried none (router tests without a socket).
type AddressKey = Option<u64>;

pub struct LoginBackoff {
    per_address: Tracker<(String, AddressKey)>,
    per_username: Tracker<String>,
    clock: Arc<dyn Clock>,
}

impl LoginBackoff {
    pub fn new(per_address: Policy, per_username: Policy, clock: Arc<dyn Clock>) -> LoginBackoff {
        LoginBackoff {
            per_address: Tracker::new(per_address),
            per_username: Tracker::new(per_username),
            clock,
        }
    }

    /// `Err` while `username` from `ip` is in backoff: refuse the attempt without checking it.
    pub fn check(&self, username: &str, ip: Option<IpAddr>) -> Result<(), Refused> {
        let now = self.clock.now();
        let pair = pair_key(username, ip);
        if let Some(wait) = self.per_address.wait(&pair, now) {
            return Err(Refused {
                scope: Scope::Address,
                wait,
            });
        }
        // The ceiling never refuses an address that has not failed for this name.
        if self.per_address.has_failures(&pair, now) {
            if let Some(wait) = self.per_username.wait(username, now) {
                return Err(Refused {
                    scope: Scope::Username,
                    wait,
                });
            }
        }
        Ok(())
    }

    /// Records a failed attempt in both trackers.
    pub fn record_failure(&self, username: &str, ip: Option<IpAddr>) -> Failure {
        let now = self.clock.now();
        let mut failure = Failure::default();
        let pair = self.per_address.record_failure(pair_key(username, ip), now);
        if pair.started {
            failure.backed_off.push((Scope::Address, pair.delay));
        }
        let name = self.per_username.record_failure(username.to_owned(), now);
        if name.started {
            failure.backed_off.push((Scope::Username, name.delay));
        }
        failure
    }

    /// A successful login clears its address's record for the name.
    pub fn record_success(&self, username: &str, ip: Option<IpAddr>) {
        self.per_address.remove(&pair_key(username, ip));
    }

    /// Keys tracked now, per address and per username (tests).
    pub fn tracked(&self) -> (usize, usize) {
        (self.per_address.len(), self.per_username.len())
    }
}

fn pair_key(username: &str, ip: Option<IpAddr>) -> (String, AddressKey) {
    (username.to_owned(), ip.map(crate::limits::limiter::ip_key))
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: SystemTime,
    blocked_until: SystemTime,
}

/// A failure's effect on one key: the delay now in force, and whether it started with it.
struct Recorded {
    delay: Duration,
    started: bool,
}

/// Consecutive failures per key, bounded.
struct Tracker<K> {
    policy: Policy,
    entries: Mutex<HashMap<K, Entry>>,
}

impl<K: Hash + Eq + Clone> Tracker<K> {
    fn new(policy: Policy) -> Tracker<K> {
        Tracker {
            policy,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// How long `key` is still refused, if it is.
    fn wait<Q>(&self, key: &Q, now: SystemTime) -> Option<Duration>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let entries = self.lock();
        let e = entries.get(key)?;
        (e.blocked_until > now).then(|| {
            e.blocked_until
                .duration_since(now)
                .unwrap_or(Duration::ZERO)
        })
    }

    /// True if `key` failed and has not been forgotten since.
    fn has_failures(&self, key: &K, now: SystemTime) -> bool {
        self.lock()
            .get(key)
            .is_some_and(|e| e.failures > 0 && !self.forgotten(e, now))
    }

    fn record_failure(&self, key: K, now: SystemTime) -> Recorded {
        let mut entries = self.lock();
        if !entries.contains_key(&key) && entries.len() >= self.policy.max_entries {
            self.make_room(&mut entries, now);
        }
        let entry = entries.entry(key).or_insert(Entry {
            failures: 0,
            last_failure: now,
            blocked_until: now,
        });
        if self.forgotten(entry, now) {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last_failure = now;
        let delay = self.delay_after(entry.failures);
        entry.blocked_until = now + delay;
        Recorded {
            delay,
            started: entry.failures == self.policy.free_failures + 1,
        }
    }

    fn remove(&self, key: &K) {
        self.lock().remove(key);
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    /// `base * 2^(n - free - 1)` once `n` exceeds the free failures, capped at `max`.
    fn delay_after(&self, failures: u32) -> Duration {
        let Some(over) = failures.checked_sub(self.policy.free_failures + 1) else {
            return Duration::ZERO;
        };
        let factor = 1u32.checked_shl(over.min(31)).unwrap_or(u32::MAX);
        self.policy
            .base
            .checked_mul(factor)
            .unwrap_or(self.policy.max)
            .min(self.policy.max)
    }

    fn forgotten(&self, e: &Entry, now: SystemTime) -> bool {
        now.duration_since(e.last_failure)
            .is_ok_and(|idle| idle >= self.policy.forget_after)
            && e.blocked_until <= now
    }

    /// At the cap: drop forgotten entries, or else the one whose last failure is oldest.
    fn make_room(&self, entries: &mut HashMap<K, Entry>, now: SystemTime) {
        entries.retain(|_, e| !self.forgotten(e, now));
        if entries.len() < self.policy.max_entries {
            return;
        }
        if let Some(oldest) = entries
            .iter()
            .min_by_key(|(_, e)| e.last_failure)
            .map(|(k, _)| k.clone())
        {
            entries.remove(&oldest);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, Entry>> {
        self.entries
            .lock()
            .expect("backoff lock is never poisoned: nothing panics while holding it")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::FakeClock;

    const HOME: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 20)));
    const ATTACKER: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 9)));

    fn backoff(clock: &FakeClock, max_entries: usize) -> LoginBackoff {
        LoginBackoff::new(
            Policy {
                max_entries,
                ..Policy::default()
            },
            Policy {
                max_entries,
                ..Ceiling::policy()
            },
            Arc::new(clock.clone()),
        )
    }

    fn refused(scope: Scope, secs: u64) -> Result<(), Refused> {
        Err(Refused {
            scope,
            wait: Duration::from_secs(secs),
        })
    }

    #[test]
    fn delays_double_after_the_free_failures_and_cap() {
        let clock = FakeClock::at_unix(1_000_000);
        let b = backoff(&clock, 100);
        for _ in 0..3 {
            assert_eq!(b.record_failure("alice", ATTACKER), Failure::default());
            assert!(b.check("alice", ATTACKER).is_ok());
        }
        assert_eq!(
            b.record_failure("alice", ATTACKER).backed_off,
            vec![(Scope::Address, Duration::from_secs(1))]
        );
        assert_eq!(b.check("alice", ATTACKER), refused(Scope::Address, 1));
        clock.advance(Duration::from_millis(1500));
        assert!(b.check("alice", ATTACKER).is_ok(), "the delay has passed");
        assert!(b.record_failure("alice", ATTACKER).backed_off.is_empty());
        assert_eq!(b.check("alice", ATTACKER), refused(Scope::Address, 2));
        for _ in 0..20 {
            b.record_failure("alice", ATTACKER);
        }
        assert_eq!(b.check("alice", ATTACKER), refused(Scope::Address, 15 * 60));
        // Other usernames are not affected, nor this one from an address with no failures.
        assert!(b.check("bob", ATTACKER).is_ok());
        assert!(b.check("alice", HOME).is_ok());
    }

    #[test]
    fn ipv6_addresses_share_their_64() {
        let clock = FakeClock::at_unix(1_000_000);
        let b = backoff(&clock, 100);
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let other_host: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other_net: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        for _ in 0..4 {
            b.record_failure("alice", Some(one));
        }
        assert!(b.check("alice", Some(other_host)).is_err());
        assert!(b.check("alice", Some(other_net)).is_ok());
    }

    #[test]
    fn the_username_ceiling_slows_many_addresses_but_never_a_clean_one() {
        let clock = FakeClock::at_unix(1_000_000);
        let b = backoff(&clock, 100);
        let addr = |i: u8| Some(IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, i)));
        // Ten addresses, one failure each: no address is in backoff, the name's ceiling is
        // reached; the eleventh failure starts it.
        for i in 0..10 {
            assert!(b.record_failure("alice", addr(i)).backed_off.is_empty());
        }
        assert_eq!(
            b.record_failure("alice", addr(10)).backed_off,
            vec![(Scope::Username, Duration::from_secs(1))]
        );
        // Every address that failed is refused now, by the ceiling...
        assert_eq!(b.check("alice", addr(3)), refused(Scope::Username, 1));
        // ...but the owner's address, with no failures, still gets its password checked.
        assert!(b.check("alice", HOME).is_ok());
        b.record_success("alice", HOME);
        assert!(b.check("alice", HOME).is_ok());
        // A fresh address gets one guess, then the ceiling covers it too.
        assert!(b.check("alice", addr(50)).is_ok());
        b.record_failure("alice", addr(50));
        assert_eq!(b.check("alice", addr(50)), refused(Scope::Username, 2));
        // A success elsewhere does not lift the ceiling for the guessers.
        assert_eq!(b.check("alice", addr(3)), refused(Scope::Username, 2));
    }

    #[test]
    fn success_clears_and_idle_entries_are_forgotten() {
        let clock = FakeClock::at_unix(1_000_000);
        let b = backoff(&clock, 100);
        for _ in 0..5 {
            b.record_failure("alice", HOME);
        }
        assert!(b.check("alice", HOME).is_err());
        b.record_success("alice", HOME);
        assert!(b.check("alice", HOME).is_ok());
        b.record_failure("alice", HOME);
        assert!(b.check("alice", HOME).is_ok(), "counting starts over");

        for _ in 0..5 {
            b.record_failure("carol", HOME);
        }
        clock.advance(Duration::from_secs(2 * 60 * 60));
        assert!(b.check("carol", HOME).is_ok());
        for _ in 0..3 {
            b.record_failure("carol", HOME);
        }
        assert!(b.check("carol", HOME).is_ok(), "forgotten after an hour");
    }

    #[test]
    fn memory_stays_bounded_under_a_spray_of_usernames() {
        let clock = FakeClock::at_unix(1_000_000);
        let b = backoff(&clock, 1000);
        for _ in 0..10 {
            b.record_failure("victim", ATTACKER);
        }
        for i in 0..50_000 {
            clock.advance(Duration::from_millis(1));
            b.record_failure(&format!("spray{i}"), ATTACKER);
            let (pairs, names) = b.tracked();
            assert!(pairs <= 1000 && names <= 1000);
        }
        assert_eq!(b.tracked(), (1000, 1000));
        // The oldest entries went first; recent ones are still throttled after 4 failures.
        for _ in 0..4 {
            b.record_failure("recent", ATTACKER);
        }
        assert!(b.check("recent", ATTACKER).is_err());
    }
}
