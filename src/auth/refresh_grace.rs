//! The refresh-reuse grace window: a client that sends the same refresh token twice at once
//! (a retry after a lost answer, two tabs racing) gets the pair the first exchange made,
//! instead of having its session revoked as if the token had been stolen.
//!
//! Each exchange this daemon makes is remembered for [`WINDOW_MS`] under the SHA-256 of the
//! token it consumed, with the client address it came from and the pair it returned. The
//! database keeps refresh tokens only as hashes, so the pair lives only here, in memory: a
//! retry after the daemon restarted finds nothing and is handled as reuse (the session is
//! revoked and the client signs in again). Reuse after the window, or from another address,
//! is reuse too.
//!
//! Memory is bounded: at most [`MAX_ENTRIES`] exchanges are kept; at the cap, expired ones are
//! dropped first, then the oldest (its client's retry would then count as reuse). This module
//! knows nothing of HTTP or the database; before it hands a remembered pair out again, the
//! handler checks that the session is still live and that the pair's refresh token has not
//! been exchanged in turn (then its holder got the answer, and this is no retry).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

/// How long after an exchange the same token, from the same address, gets the same pair.
pub const WINDOW_MS: i64 = 10_000;
/// Most exchanges remembered at once (a few hundred bytes each).
pub const MAX_ENTRIES: usize = 4096;

struct Entry<P> {
    ip: Option<IpAddr>,
    at_ms: i64,
    pair: P,
}

/// Exchanges of the last [`WINDOW_MS`]; `P` is what an exchange returned (the handler's
/// token response).
pub struct RefreshGrace<P> {
    /// By the SHA-256 of the refresh token the exchange consumed.
    entries: Mutex<HashMap<Vec<u8>, Entry<P>>>,
}

impl<P> Default for RefreshGrace<P> {
    fn default() -> Self {
        RefreshGrace {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<P: Clone> RefreshGrace<P> {
    /// Remembers that `old_hash` was exchanged for `pair` by `ip` at `at_ms`.
    pub fn remember(&self, old_hash: Vec<u8>, ip: Option<IpAddr>, at_ms: i64, pair: P) {
        let mut entries = self.lock();
        if !entries.contains_key(&old_hash) && entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| at_ms - e.at_ms <= WINDOW_MS);
            if entries.len() >= MAX_ENTRIES {
                let oldest = entries
                    .iter()
                    .min_by_key(|(_, e)| e.at_ms)
                    .map(|(k, _)| k.clone());
                if let Some(oldest) = oldest {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(old_hash, Entry { ip, at_ms, pair });
    }

    /// The pair `old_hash` was exchanged for, if that happened within the window and from the
    /// same address, with the whole seconds since (to count its lifetimes from now).
    pub fn replay(&self, old_hash: &[u8], ip: Option<IpAddr>, now_ms: i64) -> Option<(P, i64)> {
        let entries = self.lock();
        let e = entries.get(old_hash)?;
        let elapsed_ms = now_ms - e.at_ms;
        if e.ip != ip || !(0..=WINDOW_MS).contains(&elapsed_ms) {
            return None;
        }
        Some((e.pair.clone(), elapsed_ms / 1000))
    }

    /// Exchanges remembered now (tests).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Vec<u8>, Entry<P>>> {
        self.entries
            .lock()
            .expect("refresh grace lock is never poisoned: nothing panics while holding it")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 20)));
    const ELSEWHERE: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 9)));

    #[test]
    fn a_retry_within_the_window_from_the_same_address_gets_the_same_pair() {
        let grace = RefreshGrace::default();
        grace.remember(vec![1], HOME, 1_000_000, "new pair");
        assert_eq!(grace.replay(&[1], HOME, 1_003_500), Some(("new pair", 3)));
        assert_eq!(grace.replay(&[1], ELSEWHERE, 1_003_500), None);
        assert_eq!(grace.replay(&[1], HOME, 1_000_000 + WINDOW_MS + 1), None);
        assert_eq!(grace.replay(&[2], HOME, 1_000_001), None);
    }

    #[test]
    fn memory_stays_bounded() {
        let grace = RefreshGrace::default();
        for i in 0..(MAX_ENTRIES as i64 + 100) {
            grace.remember(i.to_be_bytes().to_vec(), HOME, 1_000_000 + i, i);
            assert!(grace.len() <= MAX_ENTRIES);
        }
        // The newest are kept, the oldest went.
        let newest = MAX_ENTRIES as i64 + 99;
        assert!(grace
            .replay(&newest.to_be_bytes(), HOME, 1_005_000)
            .is_some());
        assert_eq!(grace.replay(&0i64.to_be_bytes(), HOME, 1_000_000), None);
    }
}
