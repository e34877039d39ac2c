//! The capability cache: key → what the server said, with LRU eviction and a TTL.
//!
//! [`Cache`] is one type with two backings: in-process ([`memory`]) and the file store
//! shared by every process of an MTA (`file`). The rules that are the same for both live
//! here: the TTL (an expired entry is a miss and is removed), what is worth caching, and
//! the one clock.

pub mod backend;
pub mod file;
pub mod memory;

use crate::caps::Capabilities;
use crate::clock::Clock;
use crate::key::PeerKey;
pub use backend::Backend;
pub use memory::MemoryBackend;
use std::net::IpAddr;

/// Default time to live: 7 days from learning, like Exim's `retry_data_expire`.
pub const DEFAULT_TTL_SECS: u64 = 7 * 24 * 3600;
/// Default capacity of an in-process cache, in entries.
pub const DEFAULT_CAPACITY: usize = 10_000;
/// An entry whose learning time is further than this in the future is not trusted: the
/// clock went back, or the record is forged.
pub const FUTURE_SLACK_SECS: u64 = 300;

/// What the cache holds for one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// What the server's EHLO reply advertised.
    pub caps: Capabilities,
    /// When it was learned, in Unix seconds.
    pub learned_at: u64,
}

/// Counters since the cache was made (for the file store: since the file was created).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Entries held now.
    pub entries: u64,
    /// Lookups that found a live entry.
    pub hits: u64,
    /// Lookups that found nothing, or an expired entry.
    pub misses: u64,
    /// Entries written (new or replaced).
    pub inserts: u64,
    /// Entries dropped to make room.
    pub evictions: u64,
    /// Entries dropped because their TTL had passed.
    pub expirations: u64,
    /// Entries dropped on request (forget) or by the rules (a reply that invalidates).
    pub invalidations: u64,
    /// Writes the file store gave up because another writer had taken the set over
    /// from this one (a writer stalled past the lock's takeover time), or because every
    /// slot of the set was being written by a stalled writer. Always 0 in memory.
    pub writes_abandoned: u64,
}

/// How to build an in-process cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheConfig {
    /// The most entries held (at least 1).
    pub capacity: usize,
    /// Seconds an entry lives after it was learned (at least 1).
    pub ttl_secs: u64,
    /// Independent locks; threads touching different shards never wait on each other.
    pub shards: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            capacity: DEFAULT_CAPACITY,
            ttl_secs: DEFAULT_TTL_SECS,
            shards: 16,
        }
    }
}

/// What [`Cache::learn`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learned {
    /// The reply advertised PIPECONNECT and PIPELINING: stored.
    Stored,
    /// Not worth caching (no PIPECONNECT or no PIPELINING); an older entry for the key,
    /// if there was one, was removed (`true`).
    NotCached(bool),
}

/// The capability cache. Any number of threads may use one at once.
#[derive(Debug)]
pub struct Cache {
    backend: Box<dyn Backend>,
    clock: Clock,
    ttl_secs: u64,
}

impl Cache {
    /// An in-process cache.
    pub fn in_memory(config: CacheConfig) -> Cache {
        Cache::with_backend(
            Box::new(MemoryBackend::new(config.capacity, config.shards)),
            config.ttl_secs,
        )
    }

    /// A cache over any backing store.
    pub fn with_backend(backend: Box<dyn Backend>, ttl_secs: u64) -> Cache {
        Cache {
            backend,
            clock: Clock::system(),
            ttl_secs: ttl_secs.max(1),
        }
    }

    /// The clock every age in this cache is measured with.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Seconds an entry lives after it was learned.
    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    /// The live entry for `key`, if any. An expired entry is removed and is a miss.
    pub fn lookup(&self, key: &PeerKey) -> Option<Entry> {
        let now = self.clock.now();
        self.backend.lookup(key, &|e: &Entry| self.is_live(e, now))
    }

    /// Whether an entry learned at `e.learned_at` is still valid at `now`.
    fn is_live(&self, e: &Entry, now: u64) -> bool {
        e.learned_at <= now.saturating_add(FUTURE_SLACK_SECS)
            && now < e.learned_at.saturating_add(self.ttl_secs)
    }

    /// Record what `key`'s server advertised. Only replies with PIPECONNECT and
    /// PIPELINING are stored; any other reply removes the key's entry, because the server
    /// no longer offers early pipelining in that state.
    pub fn learn(&self, key: &PeerKey, caps: Capabilities) -> Learned {
        if caps.worth_caching() {
            self.backend.insert(
                key,
                Entry {
                    caps,
                    learned_at: self.clock.now(),
                },
            );
            Learned::Stored
        } else {
            Learned::NotCached(self.backend.remove(key))
        }
    }

    /// Drop the entry for `key`; `true` if there was one. Counted as an invalidation.
    pub fn forget(&self, key: &PeerKey) -> bool {
        self.backend.remove(key)
    }

    /// Drop every entry.
    pub fn clear(&self) {
        self.backend.clear()
    }

    /// The counters.
    pub fn stats(&self) -> CacheStats {
        self.backend.stats()
    }

    /// Every entry held, live or not, with whether it is live now (for dumps).
    pub fn entries(&self) -> Vec<(PeerKey, Entry, bool)> {
        let now = self.clock.now();
        let mut out = Vec::new();
        self.backend.for_each(&mut |k: &PeerKey, e: &Entry| {
            out.push((k.clone(), e.clone(), self.is_live(e, now)));
        });
        out
    }

    /// Drop every entry about the server `addr` (any spelling; IPv4-mapped IPv6 is the
    /// IPv4 address), on `port` or on any port, in both TLS states and for any local
    /// address and EHLO name. Returns how many entries were dropped (each counted as an
    /// invalidation).
    pub fn forget_server(&self, addr: IpAddr, port: Option<u16>) -> usize {
        let addr = crate::key::normalise(addr);
        self.entries()
            .into_iter()
            .filter(|(k, _, _)| k.server() == addr && port.is_none_or(|p| k.port() == p))
            .filter(|(k, _, _)| self.forget(k))
            .count()
    }

    /// The backing store, for callers that need its specific operations.
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }
}
