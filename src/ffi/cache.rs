//! `pipeconnect_cache`: the capability cache, shared by any threads at once.
#![allow(non_camel_case_types)]

use super::caps::{parse_options, pipeconnect_caps, pipeconnect_parse_flags};
use super::detail::Failure;
use super::key::pipeconnect_key;
use super::result::pipeconnect_result;
use super::result::pipeconnect_result as R;
use super::sized::{read_in, write_out, Versioned};
use super::{
    bytes, free_handle, guard, guard_on, guard_void, handle, into_handle, mark, out, Poison,
};
use crate::cache::{
    Cache, CacheConfig, CacheStats, HoldDownConfig, Learned, DEFAULT_CAPACITY, DEFAULT_TTL_SECS,
};
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
    /// Hold-downs entered: early flights refused by a server that did not expect them.
    pub hold_downs_entered: u64,
    /// Early flights not sent because their server was held down.
    pub early_skipped_held_down: u64,
    /// Servers held down now.
    pub hold_downs_current: u64,
    /// File store only: writes given up because another writer had taken the set over
    /// from a writer that stalled past the lock's takeover time, or because every slot of
    /// the set was held by such a writer. Always 0 for an in-process cache.
    pub writes_abandoned: u64,
    /// Shared tier (this process's calls; see `pipeconnect_cache_attach_shared()`):
    /// local misses that Redis answered with a valid entry.
    pub shared_hits: u64,
    /// Shared tier: local misses that Redis did not answer with an entry either.
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

/// Flags of `pipeconnect_hold_down.flags`, combined with `|`.
pub type pipeconnect_hold_down_flags = u32;

/// No hold-downs for this handle: no refusal is recorded and no record holds an early
/// flight back.
pub const PIPECONNECT_HOLD_DOWN_OFF: pipeconnect_hold_down_flags = 1 << 0;

const KNOWN_HOLD_DOWN_FLAGS: pipeconnect_hold_down_flags = PIPECONNECT_HOLD_DOWN_OFF;

/// How long hold-downs last (see docs/RULES.md, "Hold-down"): after an early flight that
/// a server did not expect (a 5xx banner, an EHLO reply without PIPECONNECT, an
/// out-of-step reply), no early flight goes to it for `first_seconds`; each further
/// refusal after a hold-down ended multiplies the next one by `growth`, up to
/// `max_seconds`; every `decay_after` early successes after a hold-down ended take one
/// step off; a server's record is forgotten `remember_seconds` after its hold-down
/// ended. Set `struct_size`; every field's 0 is its default, so a zero-initialised
/// struct gives the defaults (`pipeconnect_hold_down_default()` writes them out).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct pipeconnect_hold_down {
    /// `sizeof(pipeconnect_hold_down)`, set by the caller.
    pub struct_size: usize,
    /// The first hold-down, in seconds; 0: 3600.
    pub first_seconds: u64,
    /// The longest hold-down, in seconds; 0: 86400. Not below `first_seconds`.
    pub max_seconds: u64,
    /// Seconds a server's record is kept after its hold-down ended; 0: 7 days.
    pub remember_seconds: u64,
    /// Growth from one hold-down to the next; 0: 4.
    pub growth: u32,
    /// Early successes after a hold-down that take one step off; 0: 20.
    pub decay_after: u32,
    /// `PIPECONNECT_HOLD_DOWN_*` flags.
    pub flags: pipeconnect_hold_down_flags,
    /// Reserved; must be 0.
    pub reserved: u32,
}

// SAFETY: repr(C), starts with a usize, integers only.
unsafe impl Versioned for pipeconnect_hold_down {
    const NAME: &'static str = "pipeconnect_hold_down";
}

impl From<HoldDownConfig> for pipeconnect_hold_down {
    fn from(c: HoldDownConfig) -> Self {
        pipeconnect_hold_down {
            struct_size: 0,
            first_seconds: c.first_secs,
            max_seconds: c.max_secs,
            remember_seconds: c.remember_secs,
            growth: c.growth,
            decay_after: c.decay_after,
            flags: if c.enabled() {
                0
            } else {
                PIPECONNECT_HOLD_DOWN_OFF
            },
            reserved: 0,
        }
    }
}

impl pipeconnect_hold_down {
    /// The configuration (0 fields take the defaults), when its values make sense.
    pub(crate) fn config(&self) -> Result<HoldDownConfig, Failure> {
        let bad = |field: &'static str, why: &str| {
            Failure::new(R::PIPECONNECT_ERR_INVALID_ARGUMENT)
                .field(field)
                .say(why.to_string())
        };
        if self.flags & !KNOWN_HOLD_DOWN_FLAGS != 0 {
            return Err(bad("flags", "unknown hold-down flags"));
        }
        if self.reserved != 0 {
            return Err(bad("reserved", "reserved must be 0"));
        }
        let d = HoldDownConfig::default();
        let or = |v: u64, dflt: u64| if v == 0 { dflt } else { v };
        let c = HoldDownConfig {
            first_secs: if self.flags & PIPECONNECT_HOLD_DOWN_OFF != 0 {
                0
            } else {
                or(self.first_seconds, d.first_secs)
            },
            growth: if self.growth == 0 {
                d.growth
            } else {
                self.growth
            },
            max_secs: or(self.max_seconds, d.max_secs.max(self.first_seconds)),
            decay_after: if self.decay_after == 0 {
                d.decay_after
            } else {
                self.decay_after
            },
            remember_secs: or(self.remember_seconds, d.remember_secs),
        };
        if c.is_valid() {
            Ok(c)
        } else {
            Err(bad(
                "max_seconds",
                "hold-down lengths out of range (max_seconds below first_seconds?)",
            ))
        }
    }
}

/// Fill `*out_config` (its `struct_size` set by the caller) with the default hold-down
/// lengths: 1 hour, then 4 times longer after each further refusal up to 1 day, 20 early
/// successes per step off, records kept 7 days.
///
/// # Safety
/// `out_config` is writable for its `struct_size` bytes.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_hold_down_default(
    out_config: *mut pipeconnect_hold_down,
) -> pipeconnect_result {
    guard_on(&[], || {
        // SAFETY: checked by the helper; see the function's contract.
        unsafe { write_out(out_config, HoldDownConfig::default().into()) }?;
        Ok(R::PIPECONNECT_OK)
    })
}

/// Set how long this cache handle's hold-downs last (an in-process cache, or this
/// process's handle of a store file; the records themselves are shared).
/// `PIPECONNECT_HOLD_DOWN_OFF` turns hold-downs off for this handle. Values out of
/// range: `PIPECONNECT_ERR_INVALID_ARGUMENT`.
///
/// # Safety
/// `cache` is a live handle; `config` is readable for its `struct_size` bytes.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_cache_set_hold_down(
    cache: *const pipeconnect_cache,
    config: *const pipeconnect_hold_down,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(cache) }], || {
        // SAFETY: checked by the helpers; see the function's contract.
        let cache = unsafe { handle(cache) }?;
        if config.is_null() {
            return Err(R::PIPECONNECT_ERR_NULL_POINTER);
        }
        // SAFETY: non-NULL, readable for its struct_size by the caller's promise.
        let config = unsafe { read_in(config) }
            .and_then(|c| c.config())
            .map_err(pipeconnect_result::from)?;
        cache.cache.set_hold_down_config(config);
        Ok(R::PIPECONNECT_OK)
    })
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
            hold_downs_entered: s.hold_downs_entered,
            early_skipped_held_down: s.early_skipped_held_down,
            hold_downs_current: s.hold_downs_current,
            writes_abandoned: s.writes_abandoned,
            shared_hits: s.shared_hits,
            shared_misses: s.shared_misses,
            shared_errors: s.shared_errors,
            shared_timeouts: s.shared_timeouts,
            shared_skipped_open: s.shared_skipped_open,
            shared_rejected: s.shared_rejected,
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

/// For MTAs that drive the policy functions themselves (a session does this on its own):
/// an early flight to `key` was refused in a way that says the server did not expect it
/// (a 5xx banner or EHLO reply, an EHLO reply without PIPECONNECT, an out-of-step reply;
/// not a 421, a timeout, a dropped connection or a TLS failure). The server is held down:
/// `pipeconnect_policy_early_flight_cached()` plans no early flight to it, in either TLS
/// state, until the hold-down ends (docs/RULES.md 3.10). `PIPECONNECT_OK` when a new
/// hold-down began; `PIPECONNECT_NOT_FOUND` when one was already running or hold-downs
/// are off for this handle.
///
/// # Safety
/// `cache` and `key` are live handles.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_cache_note_early_refused(
    cache: *const pipeconnect_cache,
    key: *const pipeconnect_key,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(cache) }, unsafe { mark(key) }], || {
        // SAFETY: checked by the helpers; see the function's contract.
        let cache = unsafe { handle(cache) }?;
        let key = unsafe { handle(key) }?;
        Ok(if cache.cache.note_early_refused(&key.inner) {
            R::PIPECONNECT_OK
        } else {
            R::PIPECONNECT_NOT_FOUND
        })
    })
}

/// For MTAs that drive the policy functions themselves: an early flight to `key` went
/// through (its EHLO reply still advertised PIPECONNECT). After a hold-down ended, enough
/// of these take a step off the next one.
///
/// # Safety
/// `cache` and `key` are live handles.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_cache_note_early_success(
    cache: *const pipeconnect_cache,
    key: *const pipeconnect_key,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(cache) }, unsafe { mark(key) }], || {
        // SAFETY: checked by the helpers; see the function's contract.
        let cache = unsafe { handle(cache) }?;
        let key = unsafe { handle(key) }?;
        cache.cache.note_early_success(&key.inner);
        Ok(R::PIPECONNECT_OK)
    })
}

/// Whether `key`'s server is held down now (either TLS state): `PIPECONNECT_OK` and
/// `*until_out` = when it ends (Unix seconds), or `PIPECONNECT_NOT_FOUND` (nothing
/// written) when it is not, or hold-downs are off for this handle.
///
/// # Safety
/// `cache` and `key` are live handles; `until_out` is writable.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_cache_held_down(
    cache: *const pipeconnect_cache,
    key: *const pipeconnect_key,
    until_out: *mut u64,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(cache) }, unsafe { mark(key) }], || {
        // SAFETY: checked by the helpers; see the function's contract.
        let cache = unsafe { handle(cache) }?;
        let key = unsafe { handle(key) }?;
        let until_out = unsafe { out(until_out) }?;
        match cache.cache.held_down(&key.inner) {
            Some(h) => {
                *until_out = h.until;
                Ok(R::PIPECONNECT_OK)
            }
            None => Ok(R::PIPECONNECT_NOT_FOUND),
        }
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
