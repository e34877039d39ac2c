//! The in-process backing: sharded LRU maps, one `parking_lot` mutex per shard, so
//! threads that look up different servers rarely wait on one another.

use super::backend::Backend;
use super::{CacheStats, Entry, HoldDown, HoldDownStore};
use crate::key::PeerKey;
use lru::LruCache;
use parking_lot::Mutex;
use std::hash::BuildHasher;
use std::num::NonZeroUsize;
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

/// An in-process, bounded, thread-safe store.
#[derive(Debug)]
pub struct MemoryBackend {
    shards: Box<[Mutex<Shard>]>,
    hasher: KeyHasher,
    hold_downs_entered: AtomicU64,
    early_skipped: AtomicU64,
}

impl MemoryBackend {
    /// At most `capacity` entries (at least 1) spread over `shards` locks (rounded down to
    /// a power of two, and fewer for a small cache: every shard holds at least
    /// [`MIN_PER_SHARD`] entries). Each shard evicts its own least recently used entry
    /// when it is full, so with several shards eviction may begin a little before the
    /// whole cache holds `capacity` entries; a small cache is one shard and exact.
    pub fn new(capacity: usize, shards: usize) -> MemoryBackend {
        let capacity = capacity.max(1);
        let most = (capacity / MIN_PER_SHARD).max(1);
        let shards = shards.clamp(1, 1024).min(most);
        let shards = 1usize << (usize::BITS - 1 - shards.leading_zeros());
        let per_shard = capacity.div_ceil(shards).max(1);
        // Hold-down records are few (servers that refused early input): a quarter of
        // the entries' room, evicted least recently used like them.
        let holds_per_shard = NonZeroUsize::new(per_shard.div_ceil(4)).expect("at least one");
        let per_shard = NonZeroUsize::new(per_shard).expect("at least one");
        let hasher = KeyHasher::random();
        let shards = (0..shards)
            .map(|_| {
                Mutex::new(Shard {
                    map: LruCache::with_hasher(per_shard, hasher),
                    stats: CacheStats::default(),
                    holds: LruCache::with_hasher(holds_per_shard, hasher),
                })
            })
            .collect();
        MemoryBackend {
            shards,
            hasher,
            hold_downs_entered: AtomicU64::new(0),
            early_skipped: AtomicU64::new(0),
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
        if let Some((old_key, _)) = s.map.push(key.clone(), entry) {
            if &old_key != key {
                s.stats.evictions += 1;
            }
        }
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
            shard.lock().map.clear();
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
            let s = shard.lock();
            for (k, e) in s.map.iter() {
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
