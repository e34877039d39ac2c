//! The C API of the shared tier: `pipeconnect_cache_attach_shared()` puts a Redis server
//! behind a cache (in-process or file store), so that a fleet of hosts shares what each
//! learned (docs/FLEET.md).
#![allow(non_camel_case_types)]

use super::cache::pipeconnect_cache;
use super::detail::{pipeconnect_error_detail, Failure};
use super::result::pipeconnect_result;
use super::result::pipeconnect_result as R;
use super::sized::{read_in, Versioned};
use super::{guard_detail, guard_on, handle, mark, wrap_detail};
use std::ffi::{c_char, CStr};

/// Flags of `pipeconnect_shared_options.flags`, combined with `|`.
pub type pipeconnect_shared_flags = u32;

/// Share entries across local (egress) addresses: the key in Redis leaves the local
/// address out, so a host learns from hosts sending from other addresses. Only where
/// the servers treat every egress address of the fleet alike (Exim decides
/// `pipelining_connect_advertise_hosts` per client address). Without it, entries are
/// shared only among hosts sending from the same local address.
pub const PIPECONNECT_SHARED_ACROSS_LOCAL_ADDRESSES: pipeconnect_shared_flags = 1 << 0;

const KNOWN_SHARED_FLAGS: pipeconnect_shared_flags = PIPECONNECT_SHARED_ACROSS_LOCAL_ADDRESSES;

/// The longest shared secret accepted, in bytes.
pub const PIPECONNECT_SHARED_SECRET_MAX: usize = 1024;

/// How the shared tier behaves. Set `struct_size`; every field's 0 (or NULL) is its
/// default, so a zero-initialised struct gives the defaults. NULL options: all defaults.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct pipeconnect_shared_options {
    /// `sizeof(pipeconnect_shared_options)`, set by the caller.
    pub struct_size: usize,
    /// `PIPECONNECT_SHARED_*` flags.
    pub flags: pipeconnect_shared_flags,
    /// One absolute deadline for each call to Redis (connect, AUTH, SELECT and the
    /// command together), in milliseconds; 0: 20.
    pub deadline_ms: u32,
    /// After a call failed or ran out of time, calls are skipped for this long (for
    /// every process of the host when the cache is a file store), in milliseconds;
    /// 0: 30000.
    pub backoff_ms: u32,
    /// Reserved; must be 0.
    pub reserved: u32,
    /// The longest an entry learned by another host is kept locally, in seconds; 0: as
    /// long as the shared copy lives.
    pub local_ttl_cap_seconds: u64,
    /// Prefix of every Redis key (NUL-terminated, at most 128 bytes, no spaces); NULL:
    /// `pipeconnect:`. One prefix per fleet, or per group of egress addresses.
    pub key_prefix: *const c_char,
    /// A secret shared by the fleet (`secret_len` bytes): entries are signed with
    /// HMAC-SHA256 over the key, the value and its learned-at and expiry times, and
    /// unsigned or wrongly signed ones are refused. NULL: a checksum only.
    pub secret: *const u8,
    /// Bytes of `secret` (at most `PIPECONNECT_SHARED_SECRET_MAX`).
    pub secret_len: usize,
}

// SAFETY: repr(C), starts with a usize; integers and pointers, for which all-zero bytes
// are valid (0 and NULL).
unsafe impl Versioned for pipeconnect_shared_options {
    const NAME: &'static str = "pipeconnect_shared_options";
}

/// Put the Redis server at `url` behind `cache` as a shared tier (replacing any attached
/// before): a local miss asks it once (a hit is kept locally, no longer than the shared
/// copy lives), learning writes through, and an invalidation deletes there too. Nothing
/// is connected until the first lookup; each process makes its own connection (again
/// after `fork()`). A Redis that fails or answers late never holds a call past
/// `deadline_ms`: it is a miss, and calls are skipped for `backoff_ms`.
///
/// `url`: `redis://[[user]:password@]host[:port][/db]` (the host name is resolved now,
/// once), `rediss://…[/db][?ca=/path/ca.pem&sni=NAME]` (TLS through rustls, the system's
/// roots unless `ca` names a PEM file; in a library built with the `shared-redis-tls`
/// feature) or `unix://[[user]:password@]/path[?db=N]`. A malformed URL or option, a
/// `rediss://` URL where TLS is not built in, and any URL in a library built without the
/// `shared-redis` feature: `PIPECONNECT_ERR_INVALID_ARGUMENT`, with the detail.
///
/// `detail_out` may be NULL; otherwise (its `struct_size` set) it receives what went
/// wrong.
///
/// # Safety
/// `cache` is a live handle; `url` is a NUL-terminated string; `options` is NULL or
/// readable for its `struct_size` bytes (its `key_prefix` NULL or NUL-terminated, its
/// `secret` NULL or readable for `secret_len` bytes); `detail_out` is NULL or writable
/// for its `struct_size` bytes.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_cache_attach_shared(
    cache: *const pipeconnect_cache,
    url: *const c_char,
    options: *const pipeconnect_shared_options,
    detail_out: *mut pipeconnect_error_detail,
) -> pipeconnect_result {
    guard_detail(
        &[unsafe { mark(cache) }],
        unsafe { wrap_detail(detail_out) },
        || {
            // SAFETY: checked by the helper; see the function's contract.
            let cache = unsafe { handle(cache) }.map_err(|r| Failure::new(r).field("cache"))?;
            if url.is_null() {
                return Err(Failure::new(R::PIPECONNECT_ERR_NULL_POINTER).field("url"));
            }
            // SAFETY: non-NULL and NUL-terminated by the caller's promise.
            let url = unsafe { CStr::from_ptr(url) }.to_str().map_err(|_| {
                Failure::new(R::PIPECONNECT_ERR_INVALID_ARGUMENT)
                    .field("url")
                    .say("the URL is not UTF-8")
            })?;
            let o = if options.is_null() {
                None
            } else {
                // SAFETY: readable for its struct_size by the caller's promise.
                Some(unsafe { read_in(options) }?)
            };
            // SAFETY: the pointers inside the options, by the caller's promise.
            unsafe { attach(&cache.cache, url, o.as_ref()) }?;
            Ok(R::PIPECONNECT_OK)
        },
    )
}

fn invalid(field: &'static str, why: impl Into<String>) -> Failure {
    Failure::new(R::PIPECONNECT_ERR_INVALID_ARGUMENT)
        .field(field)
        .say(why)
}

#[cfg(feature = "shared-redis")]
unsafe fn attach(
    cache: &crate::cache::Cache,
    url: &str,
    o: Option<&pipeconnect_shared_options>,
) -> Result<(), Failure> {
    use crate::cache::shared::{SharedConfig, DEFAULT_BACKOFF_MS, DEFAULT_DEADLINE_MS};
    use std::time::Duration;
    let mut config = SharedConfig::default();
    if let Some(o) = o {
        if o.flags & !KNOWN_SHARED_FLAGS != 0 {
            return Err(invalid("options.flags", "unknown shared-tier flags"));
        }
        if o.reserved != 0 {
            return Err(invalid("options.reserved", "options.reserved must be 0"));
        }
        let ms = |v: u32, d: u32| Duration::from_millis(if v == 0 { d } else { v } as u64);
        config.deadline = ms(o.deadline_ms, DEFAULT_DEADLINE_MS);
        config.backoff = ms(o.backoff_ms, DEFAULT_BACKOFF_MS);
        config.local_ttl_cap_secs = o.local_ttl_cap_seconds;
        config.across_local_addresses = o.flags & PIPECONNECT_SHARED_ACROSS_LOCAL_ADDRESSES != 0;
        if !o.key_prefix.is_null() {
            // SAFETY: NUL-terminated by the caller's promise.
            let p = unsafe { CStr::from_ptr(o.key_prefix) };
            config.prefix = p
                .to_str()
                .map_err(|_| invalid("options.key_prefix", "the prefix is not UTF-8"))?
                .to_string();
        }
        if !o.secret.is_null() {
            if o.secret_len == 0 || o.secret_len > PIPECONNECT_SHARED_SECRET_MAX {
                return Err(invalid(
                    "options.secret_len",
                    "the secret must be 1 to 1024 bytes",
                ));
            }
            // SAFETY: readable for secret_len bytes by the caller's promise.
            let s = unsafe { std::slice::from_raw_parts(o.secret, o.secret_len) };
            config.secret = Some(s.to_vec());
        } else if o.secret_len != 0 {
            return Err(invalid("options.secret", "secret_len without a secret"));
        }
    }
    cache
        .attach_shared(url, config)
        .map_err(|why| invalid("url", why))
}

#[cfg(not(feature = "shared-redis"))]
unsafe fn attach(
    _cache: &crate::cache::Cache,
    _url: &str,
    _o: Option<&pipeconnect_shared_options>,
) -> Result<(), Failure> {
    let _ = (
        KNOWN_SHARED_FLAGS,
        PIPECONNECT_SHARED_ACROSS_LOCAL_ADDRESSES,
    );
    Err(invalid(
        "url",
        "this library was built without the shared tier (cargo feature shared-redis)",
    ))
}

/// Detach the shared tier from `cache`, if one is attached: local only again.
///
/// # Safety
/// `cache` is a live handle.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_cache_detach_shared(
    cache: *const pipeconnect_cache,
) -> pipeconnect_result {
    guard_on(&[unsafe { mark(cache) }], || {
        // SAFETY: checked by the helper; see the function's contract.
        let _cache = unsafe { handle(cache) }?;
        #[cfg(feature = "shared-redis")]
        _cache.cache.detach_shared();
        Ok(R::PIPECONNECT_OK)
    })
}
