//! The in-process backing: sharded LRU maps, one `parking_lot` mutex per shard, so
//! threads that look up different servers rarely wait on one another.

use super::backend::Backend;
use super::{CacheStats, Entry};
use crate::key::PeerKey;
use lru::LruCache;
use parking_lot::Mutex;
use std::hash::BuildHasher;
use std::num::NonZeroUsize;

#[derive(Debug)]
struct Shard {
    map: LruCache<PeerKey, Entry>,
    stats: CacheStats,
}

/// An in-process, bounded, thread-safe store.
#[derive(Debug)]
pub struct MemoryBackend {
    shards: Box<[Mutex<Shard>]>,
    hasher: std::collections::hash_map::RandomState,
}

impl MemoryBackend {
    /// At most `capacity` entries (at least 1) spread over `shards` locks (rounded up to a
    /// power of two, at most `capacity`).
    pub fn new(capacity: usize, shards: usize) -> MemoryBackend {
        let capacity = capacity.max(1);
        let shards = shards
            .clamp(1, 1024)
            .next_power_of_two()
            .min(capacity.next_power_of_two());
        let per_shard = capacity.div_ceil(shards).max(1);
        let per_shard = NonZeroUsize::new(per_shard).expect("at least one");
        let shards = (0..shards)
            .map(|_| {
                Mutex::new(Shard {
                    map: LruCache::new(per_shard),
                    stats: CacheStats::default(),
                })
            })
            .collect();
        MemoryBackend {
            shards,
            hasher: Default::default(),
        }
    }

    fn shard(&self, key: &PeerKey) -> &Mutex<Shard> {
        let i = (self.hasher.hash_one(key) as usize) & (self.shards.len() - 1);
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
