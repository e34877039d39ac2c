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
use crate::cache::{Cache, HoldDownConfig};

use std::ffi::{c_char, CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Flags of `pipeconnect_store_options.flags`, combined with `|`.
pub type pipeconnect_store_flags = u32;
/// Replace a store file this process may open (a regular file of its effective user, or
/// any user's for root, or its group's in group mode; not writable by others) that is
/// truncated, corrupt, of another format version, or of another geometry than asked for,
/// instead of refusing it. Sets or ways given as 0 are the old file's when its header
/// still says them; a file root rebuilds keeps its owner. The new file
/// is built beside the old one and renamed over it, so no opener ever sees a half-built
/// file. A symbolic link, a file of another owner (to a process that is not root), a file
/// writable by others and anything that is not a regular file are always refused.
pub const PIPECONNECT_STORE_REBUILD_IF_INVALID: pipeconnect_store_flags = 1 << 0;

/// Accept a store file on a network or other non-local filesystem (NFS, CIFS, FUSE…),
/// which is otherwise refused with `PIPECONNECT_ERR_STORE_REMOTE_FS`: the store's locks
/// are compare-and-swap operations in shared memory and its liveness checks are process
/// ids, neither of which holds across hosts. Give it only when every process that opens
/// the file runs on the same host.
pub const PIPECONNECT_STORE_ALLOW_REMOTE_FS: pipeconnect_store_flags = 1 << 1;

/// `pipeconnect_store_options.owner_uid` and `.owner_gid` name the owner a new file gets
/// (for a process running as root that creates the store its MTA's unprivileged
/// processes use). Without it, a new file is the creator's.
pub const PIPECONNECT_STORE_SET_OWNER: pipeconnect_store_flags = 1 << 2;

/// Group mode: `pipeconnect_store_options.group_gid` names the group whose members share
/// the store. A new file gets that group and `mode` may be 0660; a file owned by another
/// user is opened when its group is this one, the process is a member of it, and others
/// may not write it. Without it, only the file's owner (and root) may open a file.
pub const PIPECONNECT_STORE_GROUP_MODE: pipeconnect_store_flags = 1 << 3;

const KNOWN_FLAGS: pipeconnect_store_flags = PIPECONNECT_STORE_REBUILD_IF_INVALID
    | PIPECONNECT_STORE_ALLOW_REMOTE_FS
    | PIPECONNECT_STORE_SET_OWNER
    | PIPECONNECT_STORE_GROUP_MODE;

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
    /// 0600; may add group and other read (0640, 0644), and group write in group mode
    /// (0660, 0664); nothing else (no write or execute for others, no set-id or sticky
    /// bits).
    pub mode: u32,
    /// `PIPECONNECT_STORE_*` flags.
    pub flags: pipeconnect_store_flags,
    /// With `PIPECONNECT_STORE_SET_OWNER`: the user a new file gets. A process that is
    /// not root may only name itself (else `PIPECONNECT_ERR_STORE_IO`, errno EPERM). A
    /// file root rebuilds keeps its old owner unless this names one.
    pub owner_uid: u32,
    /// With `PIPECONNECT_STORE_SET_OWNER`: the group a new file gets.
    pub owner_gid: u32,
    /// With `PIPECONNECT_STORE_GROUP_MODE`: the group whose members share the store.
    pub group_gid: u32,
    /// Reserved; must be 0.
    pub reserved: u32,
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
        owner_uid: 0,
        owner_gid: 0,
        group_gid: 0,
        reserved: 0,
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
            StoreError::RemoteFilesystem => R::PIPECONNECT_ERR_STORE_REMOTE_FS,
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
/// Users: the file's owner opens it; so does root, whoever owns it, without changing
/// its owner (but see docs/FILE_STORE.md on what a root process that maps a file another
/// user may write risks); in group mode (`PIPECONNECT_STORE_GROUP_MODE`), so do the
/// group's members. Hold-downs use the default lengths; change them for this handle with
/// `pipeconnect_cache_set_hold_down()`.
///
/// The file is refused, each with its own result, when the path is a symbolic link
/// (`PIPECONNECT_ERR_STORE_SYMLINK`), not a regular file (`_NOT_REGULAR`), owned by
/// another user than the effective user, who is not root nor a member of the store's
/// group in group mode (`_WRONG_OWNER`), writable by others or, outside group mode, by
/// its group (`_PERMISSIONS`), on a network or non-local filesystem (`_REMOTE_FS`), shorter than its header or geometry (`_TRUNCATED`), not a store
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
        if o.reserved != 0 {
            return Err(Failure::new(R::PIPECONNECT_ERR_INVALID_ARGUMENT)
                .field("options.reserved")
                .say("options.reserved must be 0"));
        }
        let owner =
            (o.flags & PIPECONNECT_STORE_SET_OWNER != 0).then_some((o.owner_uid, o.owner_gid));
        let group = (o.flags & PIPECONNECT_STORE_GROUP_MODE != 0).then_some(o.group_gid);
        let options = StoreOptions {
            sets: o.sets,
            ways: o.ways,
            ttl_secs: o.ttl_seconds,
            mode: if o.mode == 0 { DEFAULT_MODE } else { o.mode },
            rebuild_if_invalid: o.flags & PIPECONNECT_STORE_REBUILD_IF_INVALID != 0,
            hold_down: HoldDownConfig::default(),
            owner,
            group,
            allow_remote_fs: o.flags & PIPECONNECT_STORE_ALLOW_REMOTE_FS != 0,
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
