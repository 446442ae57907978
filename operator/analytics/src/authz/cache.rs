//! [`DecisionCache`]: authorization decisions remembered for a short time, so a page and its
//! handful of API calls cost one review per namespace rather than one per request.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use fabricwatch_common::auth::Identity;
use sha2::{Digest, Sha256};

use super::Attributes;

/// Bounded cache of authorization decisions, keyed by a SHA-256 of user, groups, extras and
/// the question; entries live `ttl` (allowed and denied alike: a revoked RoleBinding takes
/// effect within `ttl`). Failures to ask are never cached. When `max_entries` are held,
/// expired entries go, then everything.
#[derive(Debug)]
pub struct DecisionCache {
    ttl: Duration,
    max_entries: usize,
    entries: Mutex<HashMap<[u8; 32], (Instant, bool)>>,
}

impl DecisionCache {
    /// A cache keeping decisions `ttl`, at most `max_entries` of them.
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        Self {
            ttl,
            max_entries: max_entries.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The cache key of `who` asking `what`.
    pub fn key(who: &Identity, what: &Attributes) -> [u8; 32] {
        let mut h = Sha256::new();
        // Length-prefixed fields, so no two different questions hash the same input.
        let mut field = |s: &str| {
            h.update((s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        };
        field(&who.username);
        field(who.uid.as_deref().unwrap_or(""));
        let mut groups = who.groups.clone();
        groups.sort();
        for g in &groups {
            field(g);
        }
        field("|");
        for (k, vs) in &who.extra {
            field(k);
            for v in vs {
                field(v);
            }
        }
        field("|");
        field(&what.verb);
        field(&what.resource);
        field(what.namespace.as_deref().unwrap_or("*"));
        field(what.name.as_deref().unwrap_or("*"));
        h.finalize().into()
    }

    /// The decision for `key` if it is younger than the TTL at `now`.
    pub fn get(&self, key: &[u8; 32], now: Instant) -> Option<bool> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries
            .get(key)
            .filter(|(expires, _)| *expires > now)
            .map(|(_, allowed)| *allowed)
    }

    /// Remembers `allowed` for `key` from `now`.
    pub fn put(&self, key: [u8; 32], allowed: bool, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.max_entries && !entries.contains_key(&key) {
            entries.retain(|_, (expires, _)| *expires > now);
            if entries.len() >= self.max_entries {
                entries.clear();
            }
        }
        entries.insert(key, (now + self.ttl, allowed));
    }

    /// Entries held (expired ones included until evicted).
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// No entries held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
