//! The buckets of one family and one dimension (client IPs or accounts): a sharded map from
//! key to TAT, with a hard cap on tracked keys and an overflow bucket beyond it.
//!
//! Bounds, and what happens at them:
//! - The family's key counter (shared by its IP and account tables) never exceeds
//!   `max_keys_per_family`. A key seen when the family is full is not stored: it is charged to
//!   this table's single overflow bucket, which all such keys share (refusals say `overflow`).
//!   Under a flood of distinct addresses this degrades to "new clients share one allowance"
//!   instead of growing memory; known clients keep their own buckets.
//! - Memory per tracked key is one map slot, `size_of::<(K, u64)>() + 1` control byte (17
//!   bytes for IP keys on 64-bit targets), at a load factor between 7/16 and 7/8 after growth:
//!   about 20-40 bytes per key, so 100k keys per family stay under 4 MB. Account keys also own
//!   their id string on the heap (accounts are as many as users, not as many as attackers).
//!   [`Table::prune`] gives memory back once most keys are idle.
//!
//! Shards are `std::sync::Mutex`es held only for one map operation (no await, no I/O).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::bucket::{self, Rate, Verdict};

/// Independent locks per table; enough that checks on 4 cores rarely meet on one.
const SHARDS: usize = 16;

/// Which bucket a request was charged to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Own,
    Overflow,
}

pub struct Table<K> {
    shards: Box<[Mutex<HashMap<K, u64>>]>,
    /// Picks the shard; random per process so clients cannot aim at one shard.
    hasher: RandomState,
    overflow: Mutex<u64>,
}

/// The maps hold only plain integers, which are valid whatever a panicking holder was doing,
/// so a poisoned lock is used as is.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<K: Hash + Eq> Default for Table<K> {
    fn default() -> Self {
        Table {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            overflow: Mutex::new(0),
        }
    }
}

impl<K: Hash + Eq> Table<K> {
    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> &Mutex<HashMap<K, u64>> {
        let h = self.hasher.hash_one(key);
        &self.shards[(h >> 32) as usize % SHARDS]
    }

    /// Takes one token from `key`'s bucket. A key not yet tracked is added if the family's
    /// counter `keys` is below `cap`; otherwise the overflow bucket is charged instead.
    pub fn acquire<Q>(
        &self,
        key: &Q,
        to_owned: impl FnOnce(&Q) -> K,
        now: u64,
        rate: Rate,
        keys: &AtomicUsize,
        cap: usize,
    ) -> (Verdict, Slot)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let mut shard = lock(self.shard(key));
        if let Some(tat) = shard.get_mut(key) {
            return (bucket::acquire(tat, now, rate), Slot::Own);
        }
        let reserved = keys
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cap).then_some(n + 1)
            })
            .is_ok();
        if reserved {
            let mut tat = 0;
            let verdict = bucket::acquire(&mut tat, now, rate);
            shard.insert(to_owned(key), tat);
            return (verdict, Slot::Own);
        }
        drop(shard);
        (
            bucket::acquire(&mut lock(&self.overflow), now, rate),
            Slot::Overflow,
        )
    }

    /// Returns the token [`Table::acquire`] took from `slot`.
    pub fn refund<Q>(&self, key: &Q, slot: Slot, rate: Rate)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        match slot {
            Slot::Own => {
                if let Some(tat) = lock(self.shard(key)).get_mut(key) {
                    bucket::refund(tat, rate);
                }
            }
            Slot::Overflow => bucket::refund(&mut lock(&self.overflow), rate),
        }
    }

    /// Forgets every full bucket (a forgotten key starts full, so nothing observable changes)
    /// and gives back map memory that is mostly unused. Returns how many keys were dropped.
    pub fn prune(&self, now: u64, keys: &AtomicUsize) -> usize {
        let mut removed = 0;
        for shard in self.shards.iter() {
            let mut map = lock(shard);
            let before = map.len();
            map.retain(|_, tat| !bucket::is_full(*tat, now));
            removed += before - map.len();
            let len = map.len();
            if map.capacity() > 64 && map.capacity() > 4 * len {
                map.shrink_to(2 * len);
            }
        }
        keys.fetch_sub(removed, Ordering::AcqRel);
        removed
    }

    /// Forgets every bucket, including the overflow bucket (a family's limits changed).
    pub fn clear(&self, keys: &AtomicUsize) {
        for shard in self.shards.iter() {
            let mut map = lock(shard);
            keys.fetch_sub(map.len(), Ordering::AcqRel);
            *map = HashMap::new();
        }
        *lock(&self.overflow) = 0;
    }

    /// Keys tracked now.
    pub fn tracked(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len()).sum()
    }

    /// Bytes of map storage allocated now (slots and control bytes; not the heap behind keys).
    pub fn allocated_bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let capacity = lock(s).capacity();
                // The std map keeps buckets = next power of two of capacity * 8/7.
                let buckets = if capacity == 0 {
                    0
                } else {
                    (capacity * 8 / 7).next_power_of_two()
                };
                buckets * slot_bytes::<K>()
            })
            .sum()
    }
}

/// One map slot: the key, the TAT and one control byte.
pub const fn slot_bytes<K>() -> usize {
    std::mem::size_of::<(K, u64)>() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_beyond_the_cap_share_the_overflow_bucket() {
        let table = Table::<u64>::default();
        let keys = AtomicUsize::new(0);
        let rate = Rate::per_minute(1, 1);
        for k in 0..3u64 {
            let (v, slot) = table.acquire(&k, |k| *k, 0, rate, &keys, 3);
            assert!(v.allowed);
            assert_eq!(slot, Slot::Own);
        }
        assert_eq!(keys.load(Ordering::Relaxed), 3);
        // Two new keys: the first gets the overflow bucket's only token, the second nothing.
        let (v, slot) = table.acquire(&100, |k| *k, 0, rate, &keys, 3);
        assert_eq!((v.allowed, slot), (true, Slot::Overflow));
        let (v, slot) = table.acquire(&101, |k| *k, 0, rate, &keys, 3);
        assert_eq!((v.allowed, slot), (false, Slot::Overflow));
        assert_eq!(table.tracked(), 3, "overflowing keys are not stored");
        // A tracked key still has its own bucket.
        assert_eq!(table.acquire(&0, |k| *k, 0, rate, &keys, 3).1, Slot::Own);
    }

    #[test]
    fn pruning_forgets_only_full_buckets_and_frees_room() {
        let table = Table::<u64>::default();
        let keys = AtomicUsize::new(0);
        let second = 1_000_000_000;
        let slow = Rate::per_minute(1, 1); // full again after 60 s
        let fast = Rate::per_minute(1, 60); // full again after 1 s
        table.acquire(&1, |k| *k, 0, slow, &keys, 10);
        table.acquire(&2, |k| *k, 0, fast, &keys, 10);
        assert_eq!(table.prune(2 * second, &keys), 1);
        assert_eq!((table.tracked(), keys.load(Ordering::Relaxed)), (1, 1));
        // Key 1 is still empty after the prune; its state was kept.
        assert!(
            !table
                .acquire(&1, |k| *k, 2 * second, slow, &keys, 10)
                .0
                .allowed
        );
        assert_eq!(table.prune(61 * second, &keys), 1);
        assert_eq!(keys.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn clear_resets_counts() {
        let table = Table::<Box<str>>::default();
        let keys = AtomicUsize::new(0);
        let rate = Rate::per_minute(1, 1);
        table.acquire("alice", |k| k.into(), 0, rate, &keys, 10);
        assert!(
            !table
                .acquire("alice", |k| k.into(), 0, rate, &keys, 10)
                .0
                .allowed
        );
        table.clear(&keys);
        assert_eq!(keys.load(Ordering::Relaxed), 0);
        assert!(
            table
                .acquire("alice", |k| k.into(), 0, rate, &keys, 10)
                .0
                .allowed
        );
    }
}
