//! The in-process backing: sharded LRU maps, one `parking_lot` mutex per shard, so
//! threads that look up different servers rarely wait on one another.

use super::backend::Backend;
use super::{CacheStats, Entry, HoldDown, HoldDownStore};
use crate::key::PeerKey;
use lru::LruCache;
use parking_lot::Mutex;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug)]
struct Shard {
    map: LruCache<PeerKey, Entry, KeyHasher>,
    stats: CacheStats,
    /// Hold-down records, apart from the entries (a tombstone outlives its entry).
    holds: LruCache<PeerKey, HoldDown, KeyHasher>,
}

/// A fast hasher for keys (a few dozen bytes): multiply-rotate over 8-byte words, seeded
/// per cache from the standard library's random state so that no one can precompute
/// colliding keys. Shared by the shard choice and the shards' maps.
#[derive(Debug, Clone, Copy)]
struct KeyHasher {
    seed: u64,
}

impl KeyHasher {
    fn random() -> KeyHasher {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(0x5eed);
        KeyHasher { seed: h.finish() }
    }
}

impl BuildHasher for KeyHasher {
    type Hasher = WordHasher;
    fn build_hasher(&self) -> WordHasher {
        WordHasher(self.seed)
    }
}

/// The state of one [`KeyHasher`] hash.
#[derive(Debug, Clone, Copy)]
struct WordHasher(u64);

impl WordHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl std::hash::Hasher for WordHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.mix(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.mix(i as u64);
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.mix(i as u64);
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.mix(i as u64);
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        // A final avalanche so that the low bits (the shard index) depend on every input.
        let mut x = self.0;
        x ^= x >> 32;
        x = x.wrapping_mul(0xd6e8_feb8_6659_fd93);
        x ^= x >> 32;
        x
    }
}

/// The fewest entries a shard holds: below that, sharding costs more exactness than it
/// saves in waiting.
pub const MIN_PER_SHARD: usize = 256;

/// The largest capacity an in-process cache accepts (16777216 entries, some 16 GiB if
/// ever full). Nothing is reserved up front: memory grows with the entries held, about
/// [`ENTRY_BYTES_APPROX`] each.
pub const CAPACITY_MAX: usize = 1 << 24;

/// Roughly what one held entry costs: the key and entry themselves, the LRU list node
/// and the hash table's slot (a key narrowed to an EHLO name adds the name's bytes).
pub const ENTRY_BYTES_APPROX: usize = 1024;

/// An in-process, bounded, thread-safe store.
#[derive(Debug)]
pub struct MemoryBackend {
    shards: Box<[Mutex<Shard>]>,
    hasher: KeyHasher,
    hold_downs_entered: AtomicU64,
    early_skipped: AtomicU64,
    /// The most entries one shard holds.
    per_shard: usize,
    /// The most hold-down records one shard holds.
    holds_per_shard: usize,
}

impl MemoryBackend {
    /// At most `capacity` entries (at least 1) spread over `shards` locks (rounded down to
    /// a power of two, and fewer for a small cache: every shard holds at least
    /// [`MIN_PER_SHARD`] entries). Each shard evicts its own least recently used entry
    /// when it is full, so with several shards eviction may begin a little before the
    /// whole cache holds `capacity` entries; a small cache is one shard and exact.
    ///
    /// The maps start empty and grow as entries arrive: a capacity is a bound, not an
    /// allocation (it is clamped to [`CAPACITY_MAX`]).
    pub fn new(capacity: usize, shards: usize) -> MemoryBackend {
        let capacity = capacity.clamp(1, CAPACITY_MAX);
        let most = (capacity / MIN_PER_SHARD).max(1);
        let shards = shards.clamp(1, 1024).min(most);
        let shards = 1usize << (usize::BITS - 1 - shards.leading_zeros());
        let per_shard = capacity.div_ceil(shards).max(1);
        // Hold-down records are few (servers that refused early input): a quarter of
        // the entries' room, evicted least recently used like them.
        let holds_per_shard = per_shard.div_ceil(4).max(1);
        let hasher = KeyHasher::random();
        let shards = (0..shards)
            .map(|_| {
                Mutex::new(Shard {
                    // Unbounded to the lru crate (a bounded map reserves its whole table);
                    // `insert` evicts at `per_shard` itself.
                    map: LruCache::unbounded_with_hasher(hasher),
                    stats: CacheStats::default(),
                    holds: LruCache::unbounded_with_hasher(hasher),
                })
            })
            .collect();
        MemoryBackend {
            shards,
            hasher,
            hold_downs_entered: AtomicU64::new(0),
            early_skipped: AtomicU64::new(0),
            per_shard,
            holds_per_shard,
        }
    }

    fn shard(&self, key: &PeerKey) -> &Mutex<Shard> {
        // The high bits choose the shard; the map inside uses the low ones.
        let i = (self.hasher.hash_one(key) >> 48) as usize & (self.shards.len() - 1);
        &self.shards[i]
    }
}

impl Backend for MemoryBackend {
    fn lookup(&self, key: &PeerKey, live: &dyn Fn(&Entry) -> bool) -> Option<Entry> {
        let mut s = self.shard(key).lock();
        let found = match s.map.get(key) {
            None => None,
            Some(e) if live(e) => Some(e.clone()),
            Some(_) => {
                s.map.pop(key);
                s.stats.expirations += 1;
                None
            }
        };
        if found.is_some() {
            s.stats.hits += 1;
        } else {
            s.stats.misses += 1;
        }
        found
    }

    fn insert(&self, key: &PeerKey, entry: Entry) {
        let mut s = self.shard(key).lock();
        s.stats.inserts += 1;
        if !s.map.contains(key) && s.map.len() >= self.per_shard && s.map.pop_lru().is_some() {
            s.stats.evictions += 1;
        }
        s.map.push(key.clone(), entry);
    }

    fn remove(&self, key: &PeerKey) -> bool {
        let mut s = self.shard(key).lock();
        let had = s.map.pop(key).is_some();
        if had {
            s.stats.invalidations += 1;
        }
        had
    }

    fn clear(&self) {
        for shard in self.shards.iter() {
            let mut s = shard.lock();
            s.stats.invalidations += s.map.len() as u64;
            s.map.clear();
        }
    }

    fn stats(&self) -> CacheStats {
        let mut t = CacheStats::default();
        for shard in self.shards.iter() {
            let s = shard.lock();
            t.entries += s.map.len() as u64;
            t.hits += s.stats.hits;
            t.misses += s.stats.misses;
            t.inserts += s.stats.inserts;
            t.evictions += s.stats.evictions;
            t.expirations += s.stats.expirations;
            t.invalidations += s.stats.invalidations;
        }
        t
    }

    fn for_each(&self, f: &mut dyn FnMut(&PeerKey, &Entry)) {
        for shard in self.shards.iter() {
            // Copy the shard out and let go of its lock before calling back: a callback
            // that uses the cache must not find the lock held.
            let copied: Vec<(PeerKey, Entry)> = shard
                .lock()
                .map
                .iter()
                .map(|(k, e)| (k.clone(), e.clone()))
                .collect();
            for (k, e) in &copied {
                f(k, e);
            }
        }
    }
}

impl HoldDownStore for MemoryBackend {
    fn hold_down(&self, key: &PeerKey) -> Option<HoldDown> {
        self.shard(key).lock().holds.peek(key).copied()
    }

    fn update_hold_down(
        &self,
        key: &PeerKey,
        f: &mut dyn FnMut(Option<HoldDown>) -> Option<HoldDown>,
    ) -> Option<HoldDown> {
        let mut s = self.shard(key).lock();
        let new = f(s.holds.peek(key).copied());
        match new {
            Some(h) => {
                if !s.holds.contains(key) && s.holds.len() >= self.holds_per_shard {
                    s.holds.pop_lru();
                }
                s.holds.push(key.clone(), h);
            }
            None => {
                s.holds.pop(key);
            }
        }
        new
    }

    fn for_each_hold_down(&self, f: &mut dyn FnMut(&PeerKey, &HoldDown)) {
        // Copied out first: `f` runs with no shard locked.
        let mut all = Vec::new();
        for shard in self.shards.iter() {
            let s = shard.lock();
            all.extend(s.holds.iter().map(|(k, h)| (k.clone(), *h)));
        }
        for (k, h) in &all {
            f(k, h);
        }
    }

    fn clear_hold_downs(&self) {
        for shard in self.shards.iter() {
            shard.lock().holds.clear();
        }
    }

    fn count_hold_down_entered(&self) {
        self.hold_downs_entered.fetch_add(1, Ordering::Relaxed);
    }

    fn count_early_skipped(&self) {
        self.early_skipped.fetch_add(1, Ordering::Relaxed);
    }

    fn hold_down_counters(&self) -> (u64, u64) {
        (
            self.hold_downs_entered.load(Ordering::Relaxed),
            self.early_skipped.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::{Capabilities, ParseOptions};
    use crate::key::TlsState;

    fn fill(b: &MemoryBackend, n: u32) {
        let caps = Capabilities::parse_ehlo(
            b"250-mx\r\n250-PIPELINING\r\n250 PIPECONNECT\r\n",
            ParseOptions::default(),
        )
        .unwrap();
        for i in 0..n {
            let k = PeerKey::new(
                std::net::Ipv4Addr::from(0x0a00_0000 + i).into(),
                25,
                TlsState::Cleartext,
            )
            .unwrap();
            b.insert(
                &k,
                Entry {
                    caps: caps.clone(),
                    learned_at: 1,
                },
            );
        }
    }

    #[test]
    fn a_huge_capacity_reserves_nothing_and_still_evicts_at_its_bound() {
        let b = MemoryBackend::new(usize::MAX, 16);
        assert_eq!(b.shards.len(), 16);
        assert!(b
            .shards
            .iter()
            .all(|s| s.lock().map.cap().get() == usize::MAX));
        fill(&b, 10);
        assert_eq!(b.stats().entries, 10);
        let small = MemoryBackend::new(3, 1);
        fill(&small, 5);
        assert_eq!(small.stats().entries, 3);
        assert_eq!(small.stats().evictions, 2);
    }

    #[test]
    fn an_entry_costs_about_what_the_docs_say() {
        // Key and entry inline, plus the LRU node's two links and the hash table's slot.
        let inline = std::mem::size_of::<PeerKey>() + std::mem::size_of::<Entry>();
        let per_entry = inline + 2 * std::mem::size_of::<usize>() + 16;
        assert!(per_entry <= ENTRY_BYTES_APPROX, "{per_entry}");
        assert!(
            per_entry >= ENTRY_BYTES_APPROX / 4,
            "{per_entry}: update the docs"
        );
    }

    #[test]
    fn clear_counts_the_dropped_entries_as_invalidations() {
        let b = MemoryBackend::new(100, 1);
        fill(&b, 7);
        b.clear();
        let st = b.stats();
        assert_eq!((st.entries, st.invalidations), (0, 7));
    }

    #[test]
    fn for_each_calls_back_without_holding_the_shard_lock() {
        let b = MemoryBackend::new(100, 1);
        fill(&b, 3);
        let mut seen = 0;
        // A callback that uses the cache (here: a lookup) would deadlock under the lock.
        b.for_each(&mut |k: &PeerKey, _e: &Entry| {
            seen += 1;
            assert!(b.lookup(k, &|_| true).is_some());
        });
        assert_eq!(seen, 3);
    }

    #[test]
    fn a_small_cache_is_exact() {
        let b = MemoryBackend::new(100, 16);
        assert_eq!(b.shards.len(), 1);
        fill(&b, 100);
        assert_eq!(b.stats().entries, 100);
        assert_eq!(b.stats().evictions, 0);
    }

    #[test]
    fn shards_are_a_power_of_two_with_enough_room_each() {
        for (cap, want, shards) in [
            (10_000, 16, 16),
            (1_000, 16, 2),
            (5_000, 12, 8),
            (255, 4, 1),
        ] {
            let b = MemoryBackend::new(cap, want);
            assert_eq!(b.shards.len(), shards, "capacity {cap}, asked {want}");
        }
    }
}
