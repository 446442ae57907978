//! Answer cache keyed by a fingerprint of the anonymized context.
//!
//! It stores the model's validated answer text, not the findings: on a hit the answer is
//! parsed again with the current run's pseudonym mapping, so two situations that anonymize to
//! the same context (same shape, different node names) get findings with their own names.
//! Bounded in entries (oldest evicted first) and in age.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Hit and miss counters; map onto `AIAnalysis.status.cache`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CacheStats {
    /// Runs answered from the cache.
    pub hits: u64,
    /// Runs that had to ask the model.
    pub misses: u64,
}

/// A bounded, expiring map from fingerprint to answer text.
#[derive(Debug)]
pub struct AnswerCache {
    capacity: usize,
    ttl: Duration,
    entries: HashMap<String, (Instant, String)>,
    order: VecDeque<String>,
    stats: CacheStats,
}

impl AnswerCache {
    /// A cache of at most `capacity` answers, each valid for `ttl`.
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        AnswerCache {
            capacity,
            ttl,
            entries: HashMap::new(),
            order: VecDeque::new(),
            stats: CacheStats::default(),
        }
    }

    /// Cache key: hex SHA-256 over the parts (provider kind, model, prompt version, context
    /// fingerprint), each length-prefixed so no two part lists collide.
    pub fn key(parts: &[&str]) -> String {
        let mut h = Sha256::new();
        for p in parts {
            h.update((p.len() as u64).to_be_bytes());
            h.update(p.as_bytes());
        }
        hex::encode(h.finalize())
    }

    /// The answer stored under `key` if fresh at `now`; counts a hit or a miss.
    pub fn get(&mut self, key: &str, now: Instant) -> Option<String> {
        let fresh = match self.entries.get(key) {
            Some((at, answer)) if now.saturating_duration_since(*at) <= self.ttl => {
                Some(answer.clone())
            }
            _ => None,
        };
        match fresh {
            Some(a) => {
                self.stats.hits += 1;
                Some(a)
            }
            None => {
                self.stats.misses += 1;
                None
            }
        }
    }

    /// Stores a validated answer.
    pub fn put(&mut self, key: String, answer: String, now: Instant) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.insert(key.clone(), (now, answer)).is_none() {
            self.order.push_back(key);
        }
        while self.entries.len() > self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.entries.remove(&old);
                }
                None => break,
            }
        }
    }

    /// Counters since creation.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_misses_expiry_and_eviction() {
        let t0 = Instant::now();
        let mut c = AnswerCache::new(2, Duration::from_secs(60));
        assert_ne!(
            AnswerCache::key(&["ab", "c"]),
            AnswerCache::key(&["a", "bc"])
        );
        assert_eq!(c.get("a", t0), None);
        c.put("a".into(), "A".into(), t0);
        assert_eq!(c.get("a", t0 + Duration::from_secs(10)), Some("A".into()));
        assert_eq!(c.get("a", t0 + Duration::from_secs(61)), None);
        c.put("b".into(), "B".into(), t0);
        c.put("c".into(), "C".into(), t0);
        assert_eq!(c.get("a", t0), None, "evicted as oldest");
        assert_eq!(c.get("c", t0), Some("C".into()));
        assert_eq!(c.stats(), CacheStats { hits: 2, misses: 3 });
    }
}
