//! Per-username exponential backoff after failed logins, so guessing one account's password
//! from many IP addresses is slowed as much as guessing from one.
//!
//! After [`Policy::free_failures`] consecutive failures for a username, further attempts are
//! refused without checking the password until a delay has passed: `base`, then doubling, up
//! to `max`. A success clears the entry; an entry with no failure for `forget_after` is
//! forgotten. Usernames are tracked whether or not the account exists, so the backoff does
//! not tell an attacker which names are real.
//!
//! Memory is bounded: at most `max_entries` usernames are tracked. At the cap, forgotten
//! entries are pruned first; if none are, the entry whose last failure is oldest is evicted
//! (its owner loses at most its current delay). This module is in-memory only and knows
//! nothing of HTTP or the database; the token buckets per IP live in `limits`.

use std::collections::HashMap;
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
    /// Most usernames tracked at once.
    pub max_entries: usize,
}

impl Default for Policy {
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

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: SystemTime,
    blocked_until: SystemTime,
}

pub struct LoginBackoff {
    policy: Policy,
    clock: Arc<dyn Clock>,
    entries: Mutex<HashMap<String, Entry>>,
}

impl LoginBackoff {
    pub fn new(policy: Policy, clock: Arc<dyn Clock>) -> LoginBackoff {
        LoginBackoff {
            policy,
            clock,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// `Err(wait)` while `username` is in backoff: refuse the attempt without checking it.
    pub fn check(&self, username: &str) -> Result<(), Duration> {
        let now = self.clock.now();
        let entries = self.lock();
        match entries.get(username) {
            Some(e) if e.blocked_until > now => Err(e
                .blocked_until
                .duration_since(now)
                .unwrap_or(Duration::ZERO)),
            _ => Ok(()),
        }
    }

    /// Records a failed attempt; returns the delay now in force (zero while failures are free).
    pub fn record_failure(&self, username: &str) -> Duration {
        let now = self.clock.now();
        let mut entries = self.lock();
        if !entries.contains_key(username) && entries.len() >= self.policy.max_entries {
            self.make_room(&mut entries, now);
        }
        let entry = entries.entry(username.to_owned()).or_insert(Entry {
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
        delay
    }

    /// A successful login clears the username's record.
    pub fn record_success(&self, username: &str) {
        self.lock().remove(username);
    }

    /// Usernames tracked now (tests, status).
    pub fn tracked(&self) -> usize {
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
    fn make_room(&self, entries: &mut HashMap<String, Entry>, now: SystemTime) {
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries
            .lock()
            .expect("backoff lock is never poisoned: nothing panics while holding it")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::FakeClock;

    fn backoff(clock: &FakeClock, max_entries: usize) -> LoginBackoff {
        LoginBackoff::new(
            Policy {
                max_entries,
                ..Policy::default()
            },
            Arc::new(clock.clone()),
        )
    }

    #[test]
    fn delays_double_after_the_free_failures_and_cap() {
        let clock = FakeClock::at_unix(1_000_000);
        let b = backoff(&clock, 100);
        for _ in 0..3 {
            assert_eq!(b.record_failure("alice"), Duration::ZERO);
            assert!(b.check("alice").is_ok());
        }
        assert_eq!(b.record_failure("alice"), Duration::from_secs(1));
        assert_eq!(b.check("alice"), Err(Duration::from_secs(1)));
        clock.advance(Duration::from_millis(1500));
        assert!(b.check("alice").is_ok(), "the delay has passed");
        assert_eq!(b.record_failure("alice"), Duration::from_secs(2));
        assert_eq!(b.record_failure("alice"), Duration::from_secs(4));
        for _ in 0..20 {
            b.record_failure("alice");
        }
        assert_eq!(b.check("alice"), Err(Duration::from_secs(15 * 60)));
        // Other usernames are not affected.
        assert!(b.check("bob").is_ok());
    }

    #[test]
    fn success_clears_and_idle_entries_are_forgotten() {
        let clock = FakeClock::at_unix(1_000_000);
        let b = backoff(&clock, 100);
        for _ in 0..5 {
            b.record_failure("alice");
        }
        assert!(b.check("alice").is_err());
        b.record_success("alice");
        assert!(b.check("alice").is_ok());
        assert_eq!(
            b.record_failure("alice"),
            Duration::ZERO,
            "counting starts over"
        );

        for _ in 0..5 {
            b.record_failure("carol");
        }
        clock.advance(Duration::from_secs(2 * 60 * 60));
        assert!(b.check("carol").is_ok());
        assert_eq!(
            b.record_failure("carol"),
            Duration::ZERO,
            "forgotten after an hour"
        );
    }

    #[test]
    fn memory_stays_bounded_under_a_spray_of_usernames() {
        let clock = FakeClock::at_unix(1_000_000);
        let b = backoff(&clock, 1000);
        for _ in 0..10 {
            b.record_failure("victim");
        }
        for i in 0..50_000 {
            clock.advance(Duration::from_millis(1));
            b.record_failure(&format!("spray{i}"));
            assert!(b.tracked() <= 1000);
        }
        assert_eq!(b.tracked(), 1000);
        // The oldest entries went first; recent ones are still throttled after 4 failures.
        for _ in 0..4 {
            b.record_failure("recent");
        }
        assert!(b.check("recent").is_err());
    }
}
