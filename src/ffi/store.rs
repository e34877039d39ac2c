//! The C API of the shared file store: `pipeconnect_cache_open()` makes a
//! `pipeconnect_cache` backed by a memory-mapped file shared by every process that opens
//! the same path.
#![allow(non_camel_case_types)]

use super::cache::{pipeconnect_cache, pipeconnect_hold_down};
use super::result::pipeconnect_result;
use super::result::pipeconnect_result as R;
use super::{guard, into_handle, out};
use crate::cache::file::{StoreError, StoreOptions, DEFAULT_MODE};
use crate::cache::{Cache, HoldDownConfig};
use std::ffi::{c_char, CStr, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;

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

/// "No id" in `pipeconnect_store_options.owner_uid`, `.owner_gid` and `.group_gid`
/// (`(uid_t)-1`, as `chown()` reads it).
pub const PIPECONNECT_STORE_ID_NONE: u32 = 0xFFFF_FFFF;

const KNOWN_FLAGS: pipeconnect_store_flags =
    PIPECONNECT_STORE_REBUILD_IF_INVALID | PIPECONNECT_STORE_ALLOW_REMOTE_FS;

/// How `pipeconnect_cache_open()` opens or creates a store file. Fill it with
/// `pipeconnect_store_options_default()`, then change the fields you need.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct pipeconnect_store_options {
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
    /// Permission bits of a new file; default 0600. Must include 0600; may add group and
    /// other read (0640, 0644), and group write in group mode (0660, 0664); nothing else
    /// (no write or execute for others, no set-id or sticky bits).
    pub mode: u32,
    /// `PIPECONNECT_STORE_*` flags.
    pub flags: pipeconnect_store_flags,
    /// How long this opener's hold-downs last (the records are kept in the file and
    /// shared; see `pipeconnect_hold_down`). Default: `pipeconnect_hold_down_default()`.
    pub hold_down: pipeconnect_hold_down,
    /// The user a new file gets, for a process running as root that creates the store
    /// its MTA's unprivileged processes use (Exim's daemon for the exim user, say); set
    /// both `owner_uid` and `owner_gid`, or neither. `PIPECONNECT_STORE_ID_NONE` (the
    /// default): the creator's. A file root rebuilds keeps its old owner unless this
    /// names one. A process that is not root may only name itself (else
    /// `PIPECONNECT_ERR_STORE_IO`, errno EPERM).
    pub owner_uid: u32,
    /// The group a new file gets with `owner_uid`; `PIPECONNECT_STORE_ID_NONE`: the
    /// creator's.
    pub owner_gid: u32,
    /// Group mode, for MTAs whose processes run as different users of one group: the
    /// group's id. A new file gets this group, and `mode` may then be 0660. A file owned
    /// by another user is opened when its group is this one, the process is a member of
    /// it, and others may not write it. `PIPECONNECT_STORE_ID_NONE` (the default): only the
    /// file's owner (and root) may open it.
    pub group_gid: u32,
}

/// Fill `*out` with the default options: geometry of the existing file (4096 sets x 8
/// ways for a new one), a time to live of 7 days, mode 0600, no flags.
///
/// # Safety
/// `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn pipeconnect_store_options_default(
    out_options: *mut pipeconnect_store_options,
) -> pipeconnect_result {
    guard(|| {
        // SAFETY: checked by the helper; see the function's contract.
        let o = unsafe { out(out_options) }?;
        *o = pipeconnect_store_options {
            sets: 0,
            ways: 0,
            ttl_seconds: 0,
            mode: DEFAULT_MODE,
            flags: 0,
            hold_down: HoldDownConfig::default().into(),
            owner_uid: PIPECONNECT_STORE_ID_NONE,
            owner_gid: PIPECONNECT_STORE_ID_NONE,
            group_gid: PIPECONNECT_STORE_ID_NONE,
        };
        Ok(R::PIPECONNECT_OK)
    })
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
/// user may write risks); in group mode (`group_gid`), so do the group's members.
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
/// # Safety
/// `path` is a NUL-terminated string; `options` is NULL or readable; `cache_out` is
/// writable.
#[no_mangle]
pub unsafe extern "C" fn pipeconnect_cache_open(
    path: *const c_char,
    options: *const pipeconnect_store_options,
    cache_out: *mut *mut pipeconnect_cache,
) -> pipeconnect_result {
    guard(|| {
        if path.is_null() {
            return Err(R::PIPECONNECT_ERR_NULL_POINTER);
        }
        // SAFETY: non-NULL and NUL-terminated by the caller's promise.
        let path = Path::new(OsStr::from_bytes(
            unsafe { CStr::from_ptr(path) }.to_bytes(),
        ));
        // SAFETY: NULL or readable by the caller's promise.
        let o = match unsafe { options.as_ref() } {
            Some(o) => *o,
            None => {
                let mut d = std::mem::MaybeUninit::<pipeconnect_store_options>::uninit();
                // SAFETY: the out-pointer is valid for a write.
                unsafe { pipeconnect_store_options_default(d.as_mut_ptr()) };
                // SAFETY: written just above.
                unsafe { d.assume_init() }
            }
        };
        // SAFETY: checked by the helper; see the function's contract.
        let cache_out = unsafe { out(cache_out) }?;
        if o.flags & !KNOWN_FLAGS != 0 {
            return Err(R::PIPECONNECT_ERR_INVALID_ARGUMENT);
        }
        let id = |v: u32| (v != PIPECONNECT_STORE_ID_NONE).then_some(v);
        let owner = match (id(o.owner_uid), id(o.owner_gid)) {
            (Some(u), Some(g)) => Some((u, g)),
            (None, None) => None,
            _ => return Err(R::PIPECONNECT_ERR_INVALID_ARGUMENT),
        };
        let options = StoreOptions {
            sets: o.sets,
            ways: o.ways,
            ttl_secs: o.ttl_seconds,
            mode: o.mode,
            rebuild_if_invalid: o.flags & PIPECONNECT_STORE_REBUILD_IF_INVALID != 0,
            hold_down: o.hold_down.config()?,
            owner,
            group: id(o.group_gid),
            allow_remote_fs: o.flags & PIPECONNECT_STORE_ALLOW_REMOTE_FS != 0,
        };
        let cache = Cache::open_file(path, &options)?;
        *cache_out = into_handle(pipeconnect_cache {
            cache: Arc::new(cache),
        });
        Ok(R::PIPECONNECT_OK)
    })
}
