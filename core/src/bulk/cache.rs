//! The verified-digest cache: the outcome of a certificate already verified, keyed by the BLAKE3
//! digest of its exact bytes, so that a repeat is answered without a signature check.
//!
//! An outcome depends on the bytes and on the verification context: the trust bundle, the status
//! snapshots and the time. Every lookup names the context ([`FastVerifier::context`]); a shard
//! that holds entries of another context drops them all first, so a status or trust change (or a
//! new `now`) can never be answered from old outcomes.
//!
//! [`FastVerifier::context`]: crate::bulk::FastVerifier::context

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::bulk::Outcome;

/// Shards, so that worker threads rarely wait on one another's lookups.
const SHARDS: usize = 16;

/// A bounded map of two generations: when the current one is full it becomes the previous one and
/// the old previous one is dropped. Entries used since the last turn survive it (a hit in the
/// previous generation moves the entry to the current one), so repeats stay while one-off
/// certificates age out, at O(1) per operation and no per-entry bookkeeping.
#[derive(Default)]
struct Shard {
    context: [u8; 32],
    current: HashMap<[u8; 32], Outcome>,
    previous: HashMap<[u8; 32], Outcome>,
}

impl Shard {
    fn enter(&mut self, context: &[u8; 32]) {
        if &self.context != context {
            self.current.clear();
            self.previous.clear();
            self.context = *context;
        }
    }
}

fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(|poisoned| {
        // A thread panicked while holding the shard: forget what it held rather than trust it.
        let mut guard = poisoned.into_inner();
        *guard = Shard::default();
        guard
    })
}

/// A bounded, thread-safe verified-digest cache.
pub struct DigestCache {
    shards: Vec<Mutex<Shard>>,
    /// Entries per generation per shard.
    generation: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl DigestCache {
    /// A cache holding at most about `capacity` outcomes (at least one per shard and generation).
    pub fn new(capacity: usize) -> DigestCache {
        DigestCache {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            generation: (capacity / (2 * SHARDS)).max(1),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The most outcomes the cache ever holds.
    pub fn capacity(&self) -> usize {
        self.generation * 2 * SHARDS
    }

    /// The cache key of `bytes`.
    pub fn key(bytes: &[u8]) -> [u8; 32] {
        *blake3::hash(bytes).as_bytes()
    }

    fn shard(&self, key: &[u8; 32]) -> MutexGuard<'_, Shard> {
        lock(&self.shards[usize::from(key[0]) % SHARDS])
    }

    /// The outcome recorded for `key` under `context`, if any.
    pub fn get(&self, context: &[u8; 32], key: &[u8; 32]) -> Option<Outcome> {
        let mut shard = self.shard(key);
        shard.enter(context);
        let found = match shard.current.get(key) {
            Some(outcome) => Some(outcome.clone()),
            None => match shard.previous.remove(key) {
                Some(outcome) => {
                    let copy = outcome.clone();
                    self.store(&mut shard, *key, outcome);
                    Some(copy)
                }
                None => None,
            },
        };
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Records `outcome` for `key` under `context`.
    pub fn insert(&self, context: &[u8; 32], key: [u8; 32], outcome: Outcome) {
        let mut shard = self.shard(&key);
        shard.enter(context);
        self.store(&mut shard, key, outcome);
    }

    fn store(&self, shard: &mut Shard, key: [u8; 32], outcome: Outcome) {
        if shard.current.len() >= self.generation && !shard.current.contains_key(&key) {
            shard.previous = std::mem::take(&mut shard.current);
        }
        shard.current.insert(key, outcome);
    }

    /// Outcomes held now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                let shard = lock(shard);
                shard.current.len() + shard.previous.len()
            })
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// (hits, misses) since the cache was made.
    pub fn counts(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::Verdict;
    use crate::codes::Code;

    fn outcome(code: Code) -> Outcome {
        Outcome {
            verdict: if code == Code::Ok {
                Verdict::Valid
            } else {
                Verdict::Invalid
            },
            code,
            id: None,
        }
    }

    fn key(i: u32) -> [u8; 32] {
        DigestCache::key(&i.to_be_bytes())
    }

    #[test]
    fn answers_within_its_context_only() {
        let cache = DigestCache::new(1000);
        let (a, b) = ([1u8; 32], [2u8; 32]);
        cache.insert(&a, key(1), outcome(Code::Ok));
        assert_eq!(cache.get(&a, &key(1)), Some(outcome(Code::Ok)));
        // Another context (a new snapshot, say) empties what it touches.
        assert_eq!(cache.get(&b, &key(1)), None);
        assert_eq!(cache.get(&a, &key(1)), None);
    }

    #[test]
    fn stays_bounded_and_keeps_what_is_used() {
        let cache = DigestCache::new(320);
        let context = [7u8; 32];
        cache.insert(&context, key(0), outcome(Code::Expired));
        for i in 1..10_000 {
            cache.insert(&context, key(i), outcome(Code::Ok));
            // Key 0 is asked for often; it must survive every generation turn.
            if i % 5 == 0 {
                assert_eq!(cache.get(&context, &key(0)), Some(outcome(Code::Expired)));
            }
        }
        assert!(cache.len() <= cache.capacity(), "{}", cache.len());
        assert!(cache.len() >= cache.capacity() / 2);
        let (hits, _) = cache.counts();
        assert_eq!(hits, 1999);
    }
}
