//! The capability cache: key → what the server said, with LRU eviction and a TTL.
//!
//! [`Cache`] is one type with two backings: in-process ([`memory`]) and the file store
//! shared by every process of an MTA (`file`). The rules that are the same for both live
//! here: the TTL (an expired entry is a miss and is removed), what is worth caching, and
//! the one clock.

pub mod backend;
pub mod file;
pub mod hold_down;
pub mod memory;
pub mod qhlo_cookie;
#[cfg(feature = "shared-redis")]
pub mod shared;

use crate::caps::Capabilities;
use crate::clock::Clock;
use crate::key::PeerKey;
pub use backend::Backend;
pub use hold_down::{HoldDown, HoldDownConfig, HoldDownStore};
pub use memory::MemoryBackend;
use parking_lot::RwLock;
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
    /// Hold-downs entered (an early flight refused; see [`Cache::note_early_refused`]).
    pub hold_downs_entered: u64,
    /// Early flights not sent because their key was held down.
    pub early_skipped_held_down: u64,
    /// Keys held down now.
    pub hold_downs_current: u64,
    /// Writes the file store gave up because another writer had taken the set over
    /// from this one (a writer stalled past the lock's takeover time), or because every
    /// slot of the set was being written by a stalled writer. Always 0 in memory.
    pub writes_abandoned: u64,
    /// Shared tier (this process's calls): local misses Redis answered with an entry.
    pub shared_hits: u64,
    /// Shared tier: local misses Redis did not answer with an entry either.
    pub shared_misses: u64,
    /// Shared tier: calls that failed (refused, broken, an error reply).
    pub shared_errors: u64,
    /// Shared tier: calls that ran out of their deadline.
    pub shared_timeouts: u64,
    /// Shared tier: calls not made because the circuit breaker was open.
    pub shared_skipped_open: u64,
    /// Shared tier: values refused (malformed, a bad checksum, a bad or missing
    /// signature).
    pub shared_rejected: u64,
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
    /// How long hold-downs last ([`HoldDownConfig::OFF`] turns them off).
    pub hold_down: HoldDownConfig,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            capacity: DEFAULT_CAPACITY,
            ttl_secs: DEFAULT_TTL_SECS,
            shards: 16,
            hold_down: HoldDownConfig::default(),
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
    hold_down: RwLock<HoldDownConfig>,
    #[cfg(feature = "shared-redis")]
    shared: RwLock<Option<std::sync::Arc<shared::SharedTier>>>,
}

impl Cache {
    /// An in-process cache.
    pub fn in_memory(config: CacheConfig) -> Cache {
        let c = Cache::with_backend(
            Box::new(MemoryBackend::new(config.capacity, config.shards)),
            config.ttl_secs,
        );
        c.set_hold_down_config(config.hold_down);
        c
    }

    /// A cache over any backing store (hold-downs with the default lengths).
    pub fn with_backend(backend: Box<dyn Backend>, ttl_secs: u64) -> Cache {
        Cache {
            backend,
            clock: Clock::system(),
            ttl_secs: ttl_secs.max(1),
            hold_down: RwLock::new(HoldDownConfig::default()),
            #[cfg(feature = "shared-redis")]
            shared: RwLock::new(None),
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
        let found = self.backend.lookup(key, &|e: &Entry| self.is_live(e, now));
        #[cfg(feature = "shared-redis")]
        if found.is_none() {
            return self.lookup_shared(key, now);
        }
        found
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
            let entry = Entry {
                caps,
                learned_at: self.clock.now(),
            };
            #[cfg(feature = "shared-redis")]
            self.store_shared(key, &entry);
            self.backend.insert(key, entry);
            Learned::Stored
        } else {
            #[cfg(feature = "shared-redis")]
            self.delete_shared(key);
            Learned::NotCached(self.backend.remove(key))
        }
    }

    /// Drop the entry for `key`; `true` if there was one. Counted as an invalidation.
    /// With a shared tier attached, the entry is deleted there too.
    pub fn forget(&self, key: &PeerKey) -> bool {
        #[cfg(feature = "shared-redis")]
        self.delete_shared(key);
        self.backend.remove(key)
    }

    /// Drop every entry and every hold-down record.
    pub fn clear(&self) {
        self.backend.clear();
        self.backend.clear_hold_downs();
    }

    /// The counters.
    pub fn stats(&self) -> CacheStats {
        let mut s = self.backend.stats();
        let (entered, skipped) = self.backend.hold_down_counters();
        s.hold_downs_entered = entered;
        s.early_skipped_held_down = skipped;
        let now = self.clock.now();
        let mut current = 0;
        self.backend
            .for_each_hold_down(&mut |_, h: &HoldDown| current += u64::from(h.holds(now)));
        s.hold_downs_current = current;
        #[cfg(feature = "shared-redis")]
        if let Some(t) = self.shared_tier() {
            let t = t.stats();
            s.shared_hits = t.hits;
            s.shared_misses = t.misses;
            s.shared_errors = t.errors;
            s.shared_timeouts = t.timeouts;
            s.shared_skipped_open = t.skipped_open;
            s.shared_rejected = t.rejected;
        }
        s
    }

    // ---- hold-downs (docs/RULES.md, "Hold-down") ----

    /// How long this handle's hold-downs last.
    pub fn hold_down_config(&self) -> HoldDownConfig {
        *self.hold_down.read()
    }

    /// Change how long this handle's hold-downs last (records already kept keep their
    /// end). [`HoldDownConfig::OFF`] turns them off for this handle.
    pub fn set_hold_down_config(&self, config: HoldDownConfig) {
        *self.hold_down.write() = config;
    }

    /// The running hold-down that covers `key` (either TLS state), if any: no early
    /// flight may go to the key's server until it ends. `None` when hold-downs are off.
    pub fn held_down(&self, key: &PeerKey) -> Option<HoldDown> {
        if !self.hold_down_config().enabled() {
            return None;
        }
        let now = self.clock.now();
        self.backend
            .hold_down(&hold_down::hold_key(key))
            .filter(|h| h.holds(now))
    }

    /// An early flight to `key` was refused in a way that says the server did not
    /// expect it. Enters a hold-down (longer after earlier ones) unless one is running.
    /// Returns whether a new hold-down began. Does nothing when hold-downs are off.
    pub fn note_early_refused(&self, key: &PeerKey) -> bool {
        let config = self.hold_down_config();
        if !config.enabled() {
            return false;
        }
        let now = self.clock.now();
        let mut entered = false;
        self.backend
            .update_hold_down(
                &hold_down::hold_key(key),
                &mut |old| match hold_down::on_refused(old, now, &config) {
                    hold_down::Refused::Entered(h) => {
                        entered = true;
                        Some(h)
                    }
                    hold_down::Refused::AlreadyHeld(h) => Some(h),
                },
            );
        if entered {
            self.backend.count_hold_down_entered();
            #[cfg(feature = "shared-redis")]
            self.store_shared_hold_down(key, &config);
        }
        entered
    }

    /// An early flight to `key` went through (its EHLO reply still advertised
    /// PIPECONNECT). After a hold-down ended, enough of these take a step off the next
    /// one. Takes no lock when the key has no record.
    pub fn note_early_success(&self, key: &PeerKey) {
        let config = self.hold_down_config();
        let hk = hold_down::hold_key(key);
        if !config.enabled() || self.backend.hold_down(&hk).is_none() {
            return;
        }
        let now = self.clock.now();
        self.backend
            .update_hold_down(&hk, &mut |old| hold_down::on_success(old, now, &config));
    }

    /// Count an early flight to `key` that was not sent because of a hold-down.
    pub fn note_early_skipped(&self, _key: &PeerKey) {
        self.backend.count_early_skipped();
    }

    /// Every hold-down record kept (running or not), keyed by its hold key (the
    /// cleartext state), with whether it holds now (for dumps).
    pub fn hold_downs(&self) -> Vec<(PeerKey, HoldDown, bool)> {
        let now = self.clock.now();
        let mut out = Vec::new();
        self.backend
            .for_each_hold_down(&mut |k: &PeerKey, h: &HoldDown| {
                out.push((k.clone(), *h, h.holds(now)))
            });
        out
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
    /// invalidation). The server's hold-down records are dropped too (an operator who
    /// forgets a server starts it afresh); they are not counted.
    pub fn forget_server(&self, addr: IpAddr, port: Option<u16>) -> usize {
        let addr = crate::key::normalise(addr);
        let matches = |k: &PeerKey| k.server() == addr && port.is_none_or(|p| k.port() == p);
        for (k, _, _) in self.hold_downs() {
            if matches(&k) {
                self.backend.update_hold_down(&k, &mut |_| None);
            }
        }
        self.entries()
            .into_iter()
            .filter(|(k, _, _)| matches(k))
            .filter(|(k, _, _)| self.forget(k))
            .count()
    }

    /// The backing store, for callers that need its specific operations.
    pub fn backend(&self) -> &dyn Backend {
        self.backend.as_ref()
    }
}
