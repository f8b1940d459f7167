//! Token-bucket arithmetic (GCRA form): one `u64` per bucket, no background refill.
//!
//! A bucket is stored as its *theoretical arrival time* (TAT): the instant at which it will be
//! full again. A bucket holding `burst` tokens that refill one per `interval` admits a request
//! at `now` when `max(tat, now) + interval - now <= burst * interval`, and then moves `tat` on
//! by one interval. `tat <= now` means "full", which is also what an absent key means, so
//! dropping full buckets from memory (pruning) changes nothing a client can observe.
//! All times are nanoseconds from the limiter's [`Clock`](super::clock::Clock).

/// A bucket's shape: `burst` tokens, one token back every `interval_nanos`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub burst: u32,
    pub interval_nanos: u64,
}

const NANOS_PER_MINUTE: u64 = 60_000_000_000;

impl Rate {
    /// `burst` tokens refilling at `per_minute` per minute (both at least 1).
    pub fn per_minute(burst: u32, per_minute: u32) -> Rate {
        Rate {
            burst: burst.max(1),
            interval_nanos: (NANOS_PER_MINUTE / u64::from(per_minute.max(1))).max(1),
        }
    }

    /// The same bucket `factor` times larger and faster (the per-IP allowance).
    pub fn scaled(self, factor: u32) -> Rate {
        let factor = factor.max(1);
        Rate {
            burst: self.burst.saturating_mul(factor),
            interval_nanos: (self.interval_nanos / u64::from(factor)).max(1),
        }
    }

    /// How far ahead of `now` a bucket's TAT may be while it still holds a token.
    fn capacity_nanos(self) -> u64 {
        u64::from(self.burst).saturating_mul(self.interval_nanos)
    }
}

/// The outcome of taking one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    /// Tokens left after this request (0 when refused).
    pub remaining: u32,
    /// Refused: nanoseconds until one token is back. Allowed: until the bucket is full again.
    pub wait_nanos: u64,
}

/// Takes one token from the bucket whose TAT is `tat`, if it has one.
pub fn acquire(tat: &mut u64, now: u64, rate: Rate) -> Verdict {
    let capacity = rate.capacity_nanos();
    let next = (*tat).max(now).saturating_add(rate.interval_nanos);
    let ahead = next - now;
    if ahead > capacity {
        return Verdict {
            allowed: false,
            remaining: 0,
            wait_nanos: ahead - capacity,
        };
    }
    *tat = next;
    Verdict {
        allowed: true,
        // At most `burst`, which is a u32.
        remaining: ((capacity - ahead) / rate.interval_nanos) as u32,
        wait_nanos: ahead,
    }
}

/// Gives back the token [`acquire`] took (when a second bucket refused the same request).
pub fn refund(tat: &mut u64, rate: Rate) {
    *tat = tat.saturating_sub(rate.interval_nanos);
}

/// A full bucket is indistinguishable from an absent one and may be forgotten.
pub fn is_full(tat: u64, now: u64) -> bool {
    tat <= now
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn burst_then_steady_rate() {
        // 2 tokens, 600/min = one every 100 ms.
        let rate = Rate::per_minute(2, 600);
        assert_eq!(rate.interval_nanos, 100 * MS);
        let mut tat = 0;
        let now = 1_000 * MS;
        let a = acquire(&mut tat, now, rate);
        assert_eq!((a.allowed, a.remaining, a.wait_nanos), (true, 1, 100 * MS));
        let b = acquire(&mut tat, now, rate);
        assert_eq!((b.allowed, b.remaining, b.wait_nanos), (true, 0, 200 * MS));
        let c = acquire(&mut tat, now, rate);
        assert_eq!((c.allowed, c.remaining, c.wait_nanos), (false, 0, 100 * MS));
        // A refusal does not cost anything.
        let c2 = acquire(&mut tat, now + 50 * MS, rate);
        assert_eq!((c2.allowed, c2.wait_nanos), (false, 50 * MS));
        // One interval later exactly one token is back.
        assert!(acquire(&mut tat, now + 100 * MS, rate).allowed);
        assert!(!acquire(&mut tat, now + 100 * MS, rate).allowed);
        // After a long quiet period the bucket is full again, never fuller.
        assert!(is_full(tat, now + 10_000 * MS));
        let later = now + 10_000 * MS;
        assert_eq!(acquire(&mut tat, later, rate).remaining, 1);
    }

    #[test]
    fn refund_returns_the_token() {
        let rate = Rate::per_minute(1, 60);
        let mut tat = 0;
        assert!(acquire(&mut tat, 5, rate).allowed);
        assert!(!acquire(&mut tat, 5, rate).allowed);
        refund(&mut tat, rate);
        assert!(acquire(&mut tat, 5, rate).allowed);
    }

    #[test]
    fn scaling_multiplies_burst_and_rate() {
        let rate = Rate::per_minute(5, 5).scaled(4);
        assert_eq!(rate, Rate::per_minute(20, 20));
        // Extremes stay finite.
        let huge = Rate::per_minute(u32::MAX, 1).scaled(u32::MAX);
        let mut tat = u64::MAX - 1;
        let v = acquire(&mut tat, 0, huge);
        assert!(v.allowed || v.wait_nanos > 0);
    }
}
