//! `pipeconnect_cache`: the capability cache, shared by any threads at once.
#![allow(non_camel_case_types)]

use super::caps::{parse_options, pipeconnect_caps, pipeconnect_parse_flags};
use super::key::pipeconnect_key;
use super::result::pipeconnect_result;
use super::result::pipeconnect_result as R;
use super::sized::{write_out, Versioned};
use super::{
    bytes, free_handle, guard, guard_on, guard_void, handle, into_handle, mark, out, Poison,
};
use crate::cache::{Cache, CacheConfig, CacheStats, Learned, DEFAULT_CAPACITY, DEFAULT_TTL_SECS};
use crate::caps::Capabilities;
use std::sync::Arc;

/// The capability cache: what each server advertised, by key, with LRU eviction and a
/// time to live (an expired entry is a miss and is removed).
///
/// Thread-safety: every function that takes a `const pipeconnect_cache *` may be called
/// from any number of threads at once on one cache. `pipeconnect_cache_free()` must not
/// race with other calls on the same handle. Sessions made from a cache keep it alive
/// on their own, so the cache handle may be freed before them.
pub struct pipeconnect_cache {
    pub(crate) cache: Arc<Cache>,
    pub(crate) poisoned: Poison,
}

super::poisonable!(pipeconnect_cache);

impl pipeconnect_cache {
    pub(crate) fn new(cache: Cache) -> pipeconnect_cache {
        pipeconnect_cache {
            cache: Arc::new(cache),
            poisoned: Poison::default(),
        }
    }
}

/// The largest capacity `pipeconnect_cache_new()` accepts: 16777216 entries. Memory is
/// taken as entries arrive (about 1 KiB each, see docs/ARCHITECTURE.md), never reserved
/// for the whole capacity up front.
pub const PIPECONNECT_CACHE_CAPACITY_MAX: usize = 16_777_216;

const _: () = assert!(PIPECONNECT_CACHE_CAPACITY_MAX == crate::cache::memory::CAPACITY_MAX);

/// The cache's counters, filled by `pipeconnect_cache_get_stats()`. Set `struct_size`
/// to `sizeof(pipeconnect_cache_stats)` first.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct pipeconnect_cache_stats {
    /// `sizeof(pipeconnect_cache_stats)`, set by the caller.
    pub struct_size: usize,
    /// Entries held now.
    pub entries: u64,
    /// Lookups that found a live entry.
    pub hits: u64,
    /// Lookups that found nothing or an expired entry.
    pub misses: u64,
    /// Entries written (new or replaced).
    pub inserts: u64,
    /// Entries dropped to make room.
    pub evictions: u64,
    /// Entries dropped because their time to live had passed.
    pub expirations: u64,
    /// Entries dropped by `pipeconnect_cache_forget()` or by the protocol's rules.
    pub invalidations: u64,
}

// SAFETY: repr(C), starts with a usize, integers only.
unsafe impl Versioned for pipeconnect_cache_stats {
    const NAME: &'static str = "pipeconnect_cache_stats";
}

impl From<CacheStats> for pipeconnect_cache_stats {
    fn from(s: CacheStats) -> Self {
        pipeconnect_cache_stats {
            struct_size: 0,
            entries: s.entries,
            hits: s.hits,
            misses: s.misses,
            inserts: s.inserts,
            evictions: s.evictions,
            expirations: s.expirations,
            invalidations: s.invalidations,
        }
    }
}

/// Make an in-process cache holding at most `capacity` entries (0: 10000), each living
/// `ttl_seconds` after it was learned (0: 7 days, like Exim). A cache of 512 entries or
/// more is split into shards of at least 256 entries so that threads rarely wait on one
/// another; each shard evicts its own least recently used entry, so eviction may begin a
/// little before the whole cache is full. A smaller cache is exact. The caller frees
/// `*cache_out` with `pipeconnect_cache_free()`. For a cache shared by the processes of
/// a forking MTA, see `pipeconnect_cache_open()`.
///
/// A capacity over `PIPECONNECT_CACHE_CAPACITY_MAX` is
/// `PIPECONNECT_ERR_INVALID_ARGUMENT`. Memory grows with the entries held (about 1 KiB
/// each), not with the capacity asked for.
///
/// # Safety
/// `cache_out` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_cache_new(
    capacity: usize,
    ttl_seconds: u64,
    cache_out: *mut *mut pipeconnect_cache,
) -> pipeconnect_result {
    guard(|| {
        // SAFETY: checked by the helper; see the function's contract.
        let cache_out = unsafe { out(cache_out) }?;
        if capacity > PIPECONNECT_CACHE_CAPACITY_MAX {
            return Err(R::PIPECONNECT_ERR_INVALID_ARGUMENT);
        }
        let config = CacheConfig {
            capacity: if capacity == 0 {
                DEFAULT_CAPACITY
            } else {
                capacity
            },
            ttl_secs: if ttl_seconds == 0 {
                DEFAULT_TTL_SECS
            } else {
                ttl_seconds
            },
            ..CacheConfig::default()
        };
        *cache_out = into_handle(pipeconnect_cache::new(Cache::in_memory(config)));
        Ok(R::PIPECONNECT_OK)
    })
}

/// Learn from an EHLO reply of `len` bytes received from `key`'s server in `key`'s TLS
/// state (raw, exactly as received; `flags` as for `pipeconnect_caps_parse()`).
///
/// Returns `PIPECONNECT_OK` when stored. When the reply lacks PIPECONNECT or PIPELINING
/// nothing is stored and any older entry for the key is removed (the server no longer
/// offers early pipelining): `PIPECONNECT_NOT_CACHED_REMOVED` when there was one,
/// `PIPECONNECT_NOT_CACHED` when there was none. A parse error when the reply is not a
/// valid 250 reply (the cache is then unchanged).
///
/// # Safety
/// `cache` and `key` are live handles; `reply` is readable for `len` bytes.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_cache_learn(
    cache: *const pipeconnect_cache,
    key: *const pipeconnect_key,
    reply: *const u8,
    len: usize,
    flags: pipeconnect_parse_flags,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(cache) }, unsafe { mark(key) }], || {
        // SAFETY: checked by the helpers; see the function's contract.
        let cache = unsafe { handle(cache) }?;
        let key = unsafe { handle(key) }?;
        let reply = unsafe { bytes(reply, len) }?;
        let caps = Capabilities::parse_ehlo(reply, parse_options(flags)?)?;
        Ok(learned_result(cache.cache.learn(&key.inner, caps)))
    })
}

/// Learn from capabilities already parsed with `pipeconnect_caps_parse()`; as
/// `pipeconnect_cache_learn()` otherwise.
///
/// # Safety
/// `cache`, `key` and `caps` are live handles.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_cache_learn_caps(
    cache: *const pipeconnect_cache,
    key: *const pipeconnect_key,
    caps: *const pipeconnect_caps,
) -> pipeconnect_result {
    guard_on(
        &[unsafe { mark(cache) }, unsafe { mark(key) }, unsafe {
            mark(caps)
        }],
        || {
            // SAFETY: checked by the helpers; see the function's contract.
            let cache = unsafe { handle(cache) }?;
            let key = unsafe { handle(key) }?;
            let caps = unsafe { handle(caps) }?;
            Ok(learned_result(
                cache.cache.learn(&key.inner, caps.caps.clone()),
            ))
        },
    )
}

fn learned_result(l: Learned) -> pipeconnect_result {
    match l {
        Learned::Stored => R::PIPECONNECT_OK,
        Learned::NotCached(false) => R::PIPECONNECT_NOT_CACHED,
        Learned::NotCached(true) => R::PIPECONNECT_NOT_CACHED_REMOVED,
    }
}

/// Look up `key`. On a hit, `PIPECONNECT_OK` and `*caps_out` is a new snapshot the
/// caller frees; on a miss (nothing cached, or the entry expired and was removed),
/// `PIPECONNECT_NOT_FOUND` and nothing is written.
///
/// # Safety
/// `cache` and `key` are live handles; `caps_out` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_cache_lookup(
    cache: *const pipeconnect_cache,
    key: *const pipeconnect_key,
    caps_out: *mut *mut pipeconnect_caps,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(cache) }, unsafe { mark(key) }], || {
        // SAFETY: checked by the helpers; see the function's contract.
        let cache = unsafe { handle(cache) }?;
        let key = unsafe { handle(key) }?;
        let caps_out = unsafe { out(caps_out) }?;
        match cache.cache.lookup(&key.inner) {
            Some(entry) => {
                *caps_out = into_handle(pipeconnect_caps::from_entry(entry));
                Ok(R::PIPECONNECT_OK)
            }
            None => Ok(R::PIPECONNECT_NOT_FOUND),
        }
    })
}

/// Drop `key`'s entry: `PIPECONNECT_OK` if there was one, `PIPECONNECT_NOT_FOUND` if not.
///
/// # Safety
/// `cache` and `key` are live handles.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_cache_forget(
    cache: *const pipeconnect_cache,
    key: *const pipeconnect_key,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(cache) }, unsafe { mark(key) }], || {
        // SAFETY: checked by the helpers; see the function's contract.
        let cache = unsafe { handle(cache) }?;
        let key = unsafe { handle(key) }?;
        Ok(if cache.cache.forget(&key.inner) {
            R::PIPECONNECT_OK
        } else {
            R::PIPECONNECT_NOT_FOUND
        })
    })
}

/// Drop every entry (counted in the stats' `invalidations`).
///
/// # Safety
/// `cache` is a live handle.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_cache_clear(
    cache: *const pipeconnect_cache,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(cache) }], || {
        // SAFETY: checked by the helper; see the function's contract.
        unsafe { handle(cache) }?.cache.clear();
        Ok(R::PIPECONNECT_OK)
    })
}

/// Fill `*stats_out` with the cache's counters (set its `struct_size` first).
///
/// # Safety
/// `cache` is a live handle; `stats_out` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_cache_get_stats(
    cache: *const pipeconnect_cache,
    stats_out: *mut pipeconnect_cache_stats,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(cache) }], || {
        // SAFETY: checked by the helpers; see the function's contract.
        let cache = unsafe { handle(cache) }?;
        unsafe { write_out(stats_out, cache.cache.stats().into()) }?;
        Ok(R::PIPECONNECT_OK)
    })
}

/// Pin the cache's clock at `unix_seconds`, or return it to the system clock with 0.
/// Every age and expiry of this cache handle is measured with this clock. Meant for
/// tests and tools that replay time; an MTA never needs it.
///
/// # Safety
/// `cache` is a live handle.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_cache_set_time(
    cache: *const pipeconnect_cache,
    unix_seconds: u64,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(cache) }], || {
        // SAFETY: checked by the helper; see the function's contract.
        unsafe { handle(cache) }?.cache.clock().set(unix_seconds);
        Ok(R::PIPECONNECT_OK)
    })
}

/// Release a cache handle. NULL is allowed. Sessions made from it keep working.
///
/// # Safety
/// `cache` is NULL or a handle from this library not yet freed, not in use by another
/// thread, and not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn pipeconnect_cache_free(cache: *mut pipeconnect_cache) {
    // SAFETY: see the function's contract.
    guard_void(|| unsafe { free_handle(cache) })
}
