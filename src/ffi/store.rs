//! The C API of the shared file store: `pipeconnect_cache_open()` makes a
//! `pipeconnect_cache` backed by a memory-mapped file shared by every process that opens
//! the same path.
#![allow(non_camel_case_types)]

use super::cache::pipeconnect_cache;
use super::detail::{pipeconnect_error_detail, Failure};
use super::result::pipeconnect_result;
use super::result::pipeconnect_result as R;
use super::sized::{read_in, write_out, Versioned};
use super::{guard_detail, guard_on, into_handle, out, wrap_detail};
use crate::cache::file::{StoreError, StoreOptions, DEFAULT_MODE};
use crate::cache::Cache;
use std::ffi::{c_char, CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Flags of `pipeconnect_store_options.flags`, combined with `|`.
pub type pipeconnect_store_flags = u32;
/// Replace a store file of ours (a regular file owned by the process's effective user,
/// not writable by group or others) that is truncated, corrupt, of another format
/// version, or of another geometry than asked for, instead of refusing it. The new file
/// is built beside the old one and renamed over it, so no opener ever sees a half-built
/// file. A symbolic link, a file of another owner, a file writable by others and
/// anything that is not a regular file are always refused.
pub const PIPECONNECT_STORE_REBUILD_IF_INVALID: pipeconnect_store_flags = 1 << 0;

const KNOWN_FLAGS: pipeconnect_store_flags = PIPECONNECT_STORE_REBUILD_IF_INVALID;

/// How `pipeconnect_cache_open()` opens or creates a store file. Set `struct_size`,
/// fill it with `pipeconnect_store_options_default()`, then change the fields you need
/// (or zero-initialise it: every field's 0 is its default).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct pipeconnect_store_options {
    /// `sizeof(pipeconnect_store_options)`, set by the caller.
    pub struct_size: usize,
    /// Sets in the store (up to 1048576). 0: an existing file's, or 4096 for a new file.
    /// Otherwise an existing file must have exactly this many sets
    /// (`PIPECONNECT_ERR_STORE_GEOMETRY`), unless it is rebuilt.
    pub sets: u32,
    /// Slots per set (up to 64); a new key evicts the least recently used entry of its
    /// set. 0: an existing file's, or 8 for a new file. The store holds at most
    /// sets x ways entries; its file is about 4 KiB + sets x (64 + 768 x ways) bytes
    /// (at most 1 GiB), and never grows.
    pub ways: u32,
    /// Seconds an entry lives after it was learned; 0: 7 days, like Exim.
    pub ttl_seconds: u64,
    /// Permission bits of a new file; 0 or 0600 for the default, 0600. Must include
    /// 0600; may add group and other read (0640, 0644); nothing else (no write or
    /// execute for others, no set-id or sticky bits).
    pub mode: u32,
    /// `PIPECONNECT_STORE_*` flags.
    pub flags: pipeconnect_store_flags,
}

// SAFETY: repr(C), starts with a usize, integers only.
unsafe impl Versioned for pipeconnect_store_options {
    const NAME: &'static str = "pipeconnect_store_options";
}

fn default_options() -> pipeconnect_store_options {
    pipeconnect_store_options {
        struct_size: std::mem::size_of::<pipeconnect_store_options>(),
        sets: 0,
        ways: 0,
        ttl_seconds: 0,
        mode: DEFAULT_MODE,
        flags: 0,
    }
}

/// Fill `*out_options` (its `struct_size` set by the caller) with the default options:
/// geometry of the existing file (4096 sets x 8 ways for a new one), a time to live of
/// 7 days, mode 0600, no flags.
///
/// # Safety
/// `out_options` is writable for its `struct_size` bytes.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_store_options_default(
    out_options: *mut pipeconnect_store_options,
) -> pipeconnect_result {
    guard_on(&[], || {
        // SAFETY: checked by the helper; see the function's contract.
        unsafe { write_out(out_options, default_options()) }?;
        Ok(R::PIPECONNECT_OK)
    })
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        let f = Failure::new(e.into()).say(e.message());
        match e {
            StoreError::Io(errno) => f.errno(errno),
            _ => f,
        }
    }
}

impl From<StoreError> for pipeconnect_result {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Io(_) => R::PIPECONNECT_ERR_STORE_IO,
            StoreError::InvalidOptions => R::PIPECONNECT_ERR_INVALID_ARGUMENT,
            StoreError::Symlink => R::PIPECONNECT_ERR_STORE_SYMLINK,
            StoreError::NotRegular => R::PIPECONNECT_ERR_STORE_NOT_REGULAR,
            StoreError::WrongOwner => R::PIPECONNECT_ERR_STORE_WRONG_OWNER,
            StoreError::Permissions => R::PIPECONNECT_ERR_STORE_PERMISSIONS,
            StoreError::Truncated => R::PIPECONNECT_ERR_STORE_TRUNCATED,
            StoreError::BadMagic => R::PIPECONNECT_ERR_STORE_BAD_MAGIC,
            StoreError::Version => R::PIPECONNECT_ERR_STORE_VERSION,
            StoreError::Geometry => R::PIPECONNECT_ERR_STORE_GEOMETRY,
            StoreError::Checksum => R::PIPECONNECT_ERR_STORE_CHECKSUM,
        }
    }
}

/// Open the shared store file at `path` (NUL-terminated; any bytes a file name may hold)
/// as a capability cache, creating it (with `options->mode`, default 0600) if there is
/// none. `options` may be NULL for the defaults (see
/// `pipeconnect_store_options_default()`). On success `*cache_out` is a new
/// `pipeconnect_cache` the caller frees with `pipeconnect_cache_free()`; every
/// `pipeconnect_cache_*` function works on it, with the same meaning as for an in-process
/// cache (`pipeconnect_cache_get_stats()` counts since the file was created, for all its
/// users).
///
/// Every process of an MTA that opens the same path shares one cache: what one delivery
/// process learns, the next one finds. The file has a fixed size and never grows.
/// Lookups take no lock; writers lock one set at a time, with a lock a killed process
/// cannot keep; a process killed at any point leaves no torn entry readable.
///
/// The file is refused, each with its own result, when the path is a symbolic link
/// (`PIPECONNECT_ERR_STORE_SYMLINK`), not a regular file (`_NOT_REGULAR`), owned by
/// another user than the effective user (`_WRONG_OWNER`), writable by group or others
/// (`_PERMISSIONS`), shorter than its header or geometry (`_TRUNCATED`), not a store
/// (`_BAD_MAGIC`), of another format version (`_VERSION`), of another geometry than
/// asked for (`_GEOMETRY`), or with a damaged header (`_CHECKSUM`). With
/// `PIPECONNECT_STORE_REBUILD_IF_INVALID`, the last five are replaced by a new, empty
/// store instead. Options out of range, an empty path or unknown flags:
/// `PIPECONNECT_ERR_INVALID_ARGUMENT`; the file could not be made or mapped:
/// `PIPECONNECT_ERR_STORE_IO`.
///
/// fork(): a cache opened before `fork()` keeps working in the parent and in the child
/// (the mapping is shared; the lock owner is read with `getpid()` at each write). Each
/// process frees its own handle. Keep the file in a folder that only the MTA's user may
/// write to.
///
/// Thread-safety: as for every `pipeconnect_cache`: any threads at once. Not
/// async-signal-safe.
///
/// `detail_out` may be NULL; otherwise (its `struct_size` set) it receives what went
/// wrong: the errno value behind `PIPECONNECT_ERR_STORE_IO`, the option at fault.
///
/// # Safety
/// `path` is a NUL-terminated string; `options` is NULL or readable for its
/// `struct_size` bytes; `cache_out` is writable; `detail_out` is NULL or writable for
/// its `struct_size` bytes.
#[no_mangle]
#[must_use]
pub unsafe extern "C" fn pipeconnect_cache_open(
    path: *const c_char,
    options: *const pipeconnect_store_options,
    cache_out: *mut *mut pipeconnect_cache,
    detail_out: *mut pipeconnect_error_detail,
) -> pipeconnect_result {
    guard_detail(&[], unsafe { wrap_detail(detail_out) }, || {
        if path.is_null() {
            return Err(Failure::new(R::PIPECONNECT_ERR_NULL_POINTER).field("path"));
        }
        // SAFETY: non-NULL and NUL-terminated by the caller's promise.
        let path = Path::new(OsStr::from_bytes(
            unsafe { CStr::from_ptr(path) }.to_bytes(),
        ));
        let o = if options.is_null() {
            default_options()
        } else {
            // SAFETY: readable for its struct_size by the caller's promise.
            unsafe { read_in(options) }?
        };
        // SAFETY: checked by the helper; see the function's contract.
        let cache_out =
            unsafe { out(cache_out) }.map_err(|r| Failure::new(r).field("cache_out"))?;
        if o.flags & !KNOWN_FLAGS != 0 {
            return Err(Failure::new(R::PIPECONNECT_ERR_INVALID_ARGUMENT)
                .field("options.flags")
                .say(format!("unknown store flags {:#x}", o.flags & !KNOWN_FLAGS)));
        }
        let options = StoreOptions {
            sets: o.sets,
            ways: o.ways,
            ttl_secs: o.ttl_seconds,
            mode: if o.mode == 0 { DEFAULT_MODE } else { o.mode },
            rebuild_if_invalid: o.flags & PIPECONNECT_STORE_REBUILD_IF_INVALID != 0,
        };
        let cache = Cache::open_file(path, &options).map_err(|e| {
            let f = Failure::from(e);
            if e == StoreError::InvalidOptions {
                f.field("options")
            } else {
                f.field("path")
            }
        })?;
        *cache_out = into_handle(pipeconnect_cache::new(cache));
        Ok(R::PIPECONNECT_OK)
    })
}
