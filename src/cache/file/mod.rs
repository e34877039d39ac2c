//! The shared file store (see docs/FILE_STORE.md): the capability cache in a fixed-size,
//! memory-mapped file that every process of an MTA opens by path, so what one delivery
//! process learned serves the next one.
//!
//! [`Cache::open_file`] returns the same [`Cache`] as the in-process one, over a
//! [`FileBackend`]: lookups, learning, forgetting, the TTL, eviction and the counters mean
//! the same. The file is set-associative (a key's digest picks a set; a set has a fixed
//! number of slots, evicted in approximate least-recently-used order); readers take no
//! lock, writers lock one set with a lock that a killed process cannot keep; nothing
//! read from the file is trusted before it is checked.

mod breaker;
mod hold_down;
mod layout;
mod lock;
mod map;
mod slot;

pub use layout::{DEFAULT_SETS, DEFAULT_WAYS, FORMAT_VERSION, MAX_FILE_SIZE, MAX_SETS, MAX_WAYS};

use super::backend::Backend;
use super::{Cache, CacheStats, Entry, HoldDownConfig, DEFAULT_TTL_SECS};
use crate::caps::Capabilities;
use crate::key::{Fnv64, PeerKey};
use layout::{
    Geometry, COUNTERS, C_ABANDONED, C_EVICTIONS, C_EXPIRATIONS, C_HITS, C_INSERTS,
    C_INVALIDATIONS, C_MISSES, SET_W_LOCK, SET_W_TICK, SET_W_USED, STATS_OFFSET, STATS_STRIPES,
    STATS_STRIPE_SIZE,
};
use map::Mapping;
use slot::{hook, Read, Record, Slot};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Hits and misses a handle counts before adding them to the file's shared counters: a
/// read-mostly workload then writes to the shared header once per this many lookups
/// rather than at each one.
const COUNT_BATCH: u64 = 64;

/// Bumped in the child at every `fork()`, so a handle inherited by a child drops the
/// counts its parent had not yet added to the file (the parent adds them).
static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);

extern "C" fn forked_child() {
    FORK_GENERATION.fetch_add(1, Ordering::Relaxed);
}

fn watch_forks() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: registers a handler that only bumps an atomic (async-signal-safe).
        // glibc ties the handler to this library and removes it if the library is
        // unloaded.
        unsafe {
            libc::pthread_atfork(None, None, Some(forked_child));
        }
    });
}

/// The open handles of this process (addresses of boxed backends), so that their
/// counts reach the file when the process calls `exit()` without closing them.
static OPEN_HANDLES: std::sync::Mutex<Vec<usize>> = std::sync::Mutex::new(Vec::new());

extern "C" fn flush_at_exit() {
    // Never wait at exit (a thread may be opening or closing a handle right now).
    let Ok(handles) = OPEN_HANDLES.try_lock() else {
        return;
    };
    for &h in handles.iter() {
        // SAFETY: a registered address is a live boxed backend: it is removed from the
        // list (under this lock) before the backend is dropped.
        let b = unsafe { &*(h as *const FileBackend) };
        b.flush_counts(0);
    }
}

fn register(b: &FileBackend) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: registers a function run at exit (or when this library is unloaded).
        unsafe {
            libc::atexit(flush_at_exit);
        }
    });
    if let Ok(mut handles) = OPEN_HANDLES.lock() {
        handles.push(b as *const FileBackend as usize);
    }
}

fn unregister(b: &FileBackend) {
    let me = b as *const FileBackend as usize;
    if let Ok(mut handles) = OPEN_HANDLES.lock() {
        handles.retain(|&h| h != me);
    }
}

/// A handle's own hit and miss counts, not yet in the file.
#[derive(Debug, Default)]
struct LocalCounts {
    hits: AtomicU64,
    misses: AtomicU64,
    generation: AtomicU64,
}

/// The default file mode of a new store: read and write for its owner only.
pub const DEFAULT_MODE: u32 = 0o600;

/// How to open a store file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// Sets in the store. 0: the existing file's, or [`DEFAULT_SETS`] for a new file.
    /// Otherwise an existing file must have exactly this many (or be rebuilt).
    pub sets: u32,
    /// Slots per set. 0: the existing file's, or [`DEFAULT_WAYS`] for a new file.
    pub ways: u32,
    /// Seconds an entry lives after it was learned; 0 means [`DEFAULT_TTL_SECS`].
    pub ttl_secs: u64,
    /// Permission bits of a new file (default 0o600). Must include owner read and
    /// write; may add group and other read (0o640, 0o644); nothing else.
    pub mode: u32,
    /// Replace a file of ours that is truncated, corrupt, of another format version or
    /// of another geometry than asked for, instead of refusing it (sets or ways given as
    /// 0 are the old file's when its header still says them). A symbolic link, a file
    /// that is not a regular file, one this process may not open (see [`StoreError::WrongOwner`])
    /// or writable by others is always refused.
    pub rebuild_if_invalid: bool,
    /// How long this opener's hold-downs last (kept in the file, shared by every
    /// opener; each opener decides the length of those it starts).
    pub hold_down: HoldDownConfig,
    /// The owner a new file gets (user id, group id), for a process running as root that
    /// creates the store its MTA's unprivileged processes use. `None`: the creator's.
    /// A file rebuilt by root keeps the owner of the file it replaces unless this names
    /// one. A process that is not root can only name its own user (and one of its
    /// groups); anything else fails as the system refuses it (`Io(EPERM)`).
    pub owner: Option<(u32, u32)>,
    /// Group mode: the group whose members share the store. A new file gets this group
    /// and may have mode 0o660; an existing file owned by another user is accepted when
    /// its group is this one, the process is a member, and nobody else may write it.
    /// `None`: only the owner (and root) may open a file.
    pub group: Option<u32>,
    /// Accept a store on a network or other non-local filesystem (NFS, CIFS, FUSE…).
    /// Refused by default ([`StoreError::RemoteFilesystem`]): the store's locks are
    /// compare-and-swap operations in shared memory and its liveness checks are process
    /// ids, neither of which means anything across hosts. Allow it only when every
    /// process that opens the file runs on one host.
    pub allow_remote_fs: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            sets: 0,
            ways: 0,
            ttl_secs: 0,
            mode: DEFAULT_MODE,
            rebuild_if_invalid: false,
            hold_down: HoldDownConfig::default(),
            owner: None,
            group: None,
            allow_remote_fs: false,
        }
    }
}

impl StoreOptions {
    fn check(&self) -> Result<(), StoreError> {
        if (self.sets != 0 && self.sets > MAX_SETS) || (self.ways != 0 && self.ways > MAX_WAYS) {
            return Err(StoreError::InvalidOptions);
        }
        // Group write only in group mode; never anything for others but read.
        let allowed = if self.group.is_some() { 0o664 } else { 0o644 };
        if self.mode & 0o600 != 0o600 || self.mode & !allowed != 0 || !self.hold_down.is_valid() {
            return Err(StoreError::InvalidOptions);
        }
        if self.group == Some(u32::MAX)
            || self
                .owner
                .is_some_and(|(u, g)| u == u32::MAX || g == u32::MAX)
        {
            return Err(StoreError::InvalidOptions);
        }
        let g = Geometry {
            sets: if self.sets == 0 {
                DEFAULT_SETS
            } else {
                self.sets
            },
            ways: if self.ways == 0 {
                DEFAULT_WAYS
            } else {
                self.ways
            },
        };
        g.check().map_err(|_| StoreError::InvalidOptions)?;
        Ok(())
    }
}

/// Why a store file could not be opened. Each has its own C result code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreError {
    /// The file could not be opened, created, sized or mapped; the `errno` value.
    Io(i32),
    /// Options out of range (a mode that lets others write, a geometry too large, an
    /// empty path or one with a NUL byte).
    InvalidOptions,
    /// The path is a symbolic link.
    Symlink,
    /// The path is not a regular file (a directory, a FIFO, a device, a socket).
    NotRegular,
    /// The file is owned by another user than the process's effective user (and the
    /// process is not root, and not a member of the store's group in group mode).
    WrongOwner,
    /// The file is writable by others, or by its group outside group mode.
    Permissions,
    /// The file is shorter than its header, or than its geometry needs.
    Truncated,
    /// The file does not start with the store's magic.
    BadMagic,
    /// The file has another format version.
    Version,
    /// The file's geometry is out of range, or not the one asked for.
    Geometry,
    /// The header's checksum does not match.
    Checksum,
    /// The file is on a network or other non-local filesystem, where the store's locks
    /// and liveness checks do not hold (see [`StoreOptions::allow_remote_fs`]).
    RemoteFilesystem,
}

impl StoreError {
    /// A sentence saying what went wrong.
    pub fn message(self) -> &'static str {
        match self {
            StoreError::Io(_) => "the store file could not be opened, created, sized or mapped",
            StoreError::InvalidOptions => "the store options are out of range",
            StoreError::Symlink => "the store path is a symbolic link; refused",
            StoreError::NotRegular => "the store path is not a regular file; refused",
            StoreError::WrongOwner => "the store file is owned by another user; refused",
            StoreError::Permissions => "the store file is writable by group or others; refused",
            StoreError::Truncated => "the store file is shorter than its header says",
            StoreError::BadMagic => "the file is not a pipeconnect store (bad magic)",
            StoreError::Version => "the store file has another format version",
            StoreError::Geometry => {
                "the store file's geometry differs from the one asked for or is out of range"
            }
            StoreError::Checksum => "the store file's header checksum does not match",
            StoreError::RemoteFilesystem => {
                "the store file is on a network or non-local filesystem; refused"
            }
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Io(e) => write!(
                f,
                "{}: {}",
                self.message(),
                std::io::Error::from_raw_os_error(*e)
            ),
            _ => f.write_str(self.message()),
        }
    }
}

impl std::error::Error for StoreError {}

/// What a store file's header says (see [`inspect`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreInfo {
    /// Number of sets.
    pub sets: u32,
    /// Slots per set.
    pub ways: u32,
    /// The most entries the store holds (sets × ways).
    pub capacity: u64,
    /// Bytes per slot.
    pub slot_size: u32,
    /// The file's size in bytes.
    pub file_size: u64,
    /// The format version.
    pub version: u32,
    /// When the file was made, in Unix seconds (as its maker wrote it).
    pub created_at: u64,
}

/// Read the header of the store file at `path` and say what it is, without mapping or
/// changing it. The same file checks as [`Cache::open_file`] apply (symbolic link,
/// owner, permissions, magic, version, checksum, geometry, size).
pub fn inspect(path: &Path) -> Result<StoreInfo, StoreError> {
    let (h, file_size) = map::inspect(path)?;
    Ok(info_of(h, file_size))
}

fn info_of(h: layout::Header, file_size: u64) -> StoreInfo {
    StoreInfo {
        sets: h.geometry.sets,
        ways: h.geometry.ways,
        capacity: h.geometry.sets as u64 * h.geometry.ways as u64,
        slot_size: layout::SLOT_SIZE as u32,
        file_size,
        version: FORMAT_VERSION,
        created_at: h.created_at,
    }
}

/// The cache's backing in a shared, memory-mapped store file. Any threads of any
/// processes may use one file at once; a handle stays valid in both processes across
/// `fork()`.
pub struct FileBackend {
    map: Mapping,
    geometry: Geometry,
    path: PathBuf,
    info: StoreInfo,
    local: LocalCounts,
}

impl fmt::Debug for FileBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileBackend")
            .field("path", &self.path)
            .field("sets", &self.geometry.sets)
            .field("ways", &self.geometry.ways)
            .finish()
    }
}

/// A key's placement: its canonical bytes, digest, and set.
struct Placed {
    bytes: Vec<u8>,
    digest: u64,
    set: usize,
}

/// What one scan of a set (under its lock) found.
struct SetScan {
    /// The version each way had when read (meaningful for the ways in `writable`).
    versions: [u64; layout::MAX_WAYS as usize],
    /// Ways that may be written (bit per way): every way but those a writer that may
    /// still be alive left in the middle of a write.
    writable: u64,
    /// Ways holding the key looked for.
    matches: Vec<usize>,
    /// First way holding no valid record.
    free: Option<usize>,
    /// The valid record of another key (or kind) used longest ago: (way, stamp, whether
    /// it is a capability entry).
    oldest: Option<(usize, u64, bool)>,
    /// Capability entries in the set (hold-down records take room but are not entries).
    used: u64,
}

impl FileBackend {
    /// Open (or create) the store file at `path`; see [`Cache::open_file`], which most
    /// callers use instead.
    pub fn open(path: &Path, options: &StoreOptions) -> Result<FileBackend, StoreError> {
        let opened = map::open(path, options)?;
        map::note_pid_namespace(&opened.mapping);
        watch_forks();
        Ok(Self::over(opened, path))
    }

    fn over(opened: map::Opened, path: &Path) -> FileBackend {
        let info = info_of(opened.header, opened.mapping.len() as u64);
        FileBackend {
            geometry: opened.header.geometry,
            map: opened.mapping,
            path: path.to_path_buf(),
            info,
            local: LocalCounts {
                generation: AtomicU64::new(FORK_GENERATION.load(Ordering::Relaxed)),
                ..LocalCounts::default()
            },
        }
    }

    /// A private copy of the store file at `path`, read with `pread` and never mapped,
    /// so that nothing another user does to the file (truncating it, say) can fault the
    /// reading process; see [`Cache::open_file_copy`].
    pub fn read_copy(path: &Path, options: &StoreOptions) -> Result<FileBackend, StoreError> {
        let opened = map::read_copy(path, options)?;
        Ok(Self::over(opened, path))
    }

    /// What the store's header says.
    pub fn info(&self) -> StoreInfo {
        self.info
    }

    /// The path the store was opened by.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn place(&self, key: &PeerKey) -> Placed {
        let bytes = key.canonical_bytes();
        let mut h = Fnv64::new();
        h.write(&bytes);
        let digest = h.finish();
        Placed {
            set: self.set_of(digest),
            bytes,
            digest,
        }
    }

    fn set_of(&self, digest: u64) -> usize {
        // Mix the digest (FNV's low bits are weak), then map it onto 0..sets with a
        // multiply, which is uniform for any number of sets.
        let mut x = digest;
        x ^= x >> 30;
        x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^= x >> 27;
        x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
        x ^= x >> 31;
        ((x as u128 * self.geometry.sets as u128) >> 64) as usize
    }

    fn slot(&self, set: usize, way: usize) -> Slot<'_> {
        Slot::at(&self.map, self.geometry, set, way)
    }

    fn ways(&self) -> usize {
        self.geometry.ways as usize
    }

    fn set_word(&self, set: usize, w: usize) -> &std::sync::atomic::AtomicU64 {
        self.map.word(self.geometry.set_offset(set) + w * 8)
    }

    fn count(&self, set: usize, c: usize) {
        self.count_n(set, c, 1);
    }

    fn count_n(&self, set: usize, c: usize, n: u64) {
        if n == 0 {
            return;
        }
        let stripe = set % STATS_STRIPES;
        self.map
            .word(STATS_OFFSET + stripe * STATS_STRIPE_SIZE + c * 8)
            .fetch_add(n, Ordering::Relaxed);
    }

    /// This handle's counts, after dropping those a parent process left it at `fork()`.
    fn local_counts(&self) -> &LocalCounts {
        let now = FORK_GENERATION.load(Ordering::Relaxed);
        if self.local.generation.load(Ordering::Relaxed) != now {
            self.local.hits.store(0, Ordering::Relaxed);
            self.local.misses.store(0, Ordering::Relaxed);
            self.local.generation.store(now, Ordering::Relaxed);
        }
        &self.local
    }

    /// Count a lookup in this handle; add the handle's counts to the file's every
    /// [`COUNT_BATCH`] lookups.
    fn count_lookup(&self, set: usize, hit: bool) {
        let l = self.local_counts();
        let c = if hit { &l.hits } else { &l.misses };
        if c.fetch_add(1, Ordering::Relaxed) + 1 >= COUNT_BATCH {
            self.flush_counts(set);
        }
    }

    /// Add this handle's hit and miss counts to the file's.
    fn flush_counts(&self, set: usize) {
        let l = self.local_counts();
        self.count_n(set, C_HITS, l.hits.swap(0, Ordering::Relaxed));
        self.count_n(set, C_MISSES, l.misses.swap(0, Ordering::Relaxed));
    }

    /// The version to write `slot` from, or `None` while a writer that may still be
    /// alive is in the middle of writing it (its lock word is the slot's odd version).
    fn writable_from(&self, slot: &Slot<'_>) -> Option<u64> {
        let v = slot.version();
        (v & 1 == 0 || lock::holder_is_gone(&self.map, v)).then_some(v)
    }

    /// A fresh even version for a slot of `set` (from the set's tick, which only grows,
    /// so no slot of the set ever returns to an even version a reader may hold).
    fn next_version(&self, set: usize) -> u64 {
        self.tick(set).wrapping_shl(1)
    }

    fn tick(&self, set: usize) -> u64 {
        self.set_word(set, SET_W_TICK)
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_add(1)
    }

    fn lock(&self, set: usize) -> lock::SetLock<'_> {
        lock::lock(&self.map, self.geometry.set_offset(set) + SET_W_LOCK * 8)
    }

    fn try_lock(&self, set: usize) -> Option<lock::SetLock<'_>> {
        lock::try_lock(&self.map, self.geometry.set_offset(set) + SET_W_LOCK * 8)
    }

    /// Look at every slot of a set for `p`'s capability entry; the caller holds the set's
    /// lock.
    fn scan(&self, p: &Placed) -> SetScan {
        self.scan_set(p.set, |r| {
            r.is_entry() && r.digest == p.digest && r.key() == p.bytes
        })
    }

    /// Look at every slot of `set` for the records `wanted` picks; the caller holds the
    /// set's lock.
    fn scan_set(&self, set: usize, wanted: impl Fn(&Record) -> bool) -> SetScan {
        let mut s = SetScan {
            versions: [0; layout::MAX_WAYS as usize],
            writable: 0,
            matches: Vec::new(),
            free: None,
            oldest: None,
            used: 0,
        };
        for way in 0..self.ways() {
            let slot = self.slot(set, way);
            let Some(from) = self.writable_from(&slot) else {
                // A stalled writer's slot: neither free nor evictable while it may
                // still write there.
                continue;
            };
            s.versions[way] = from;
            s.writable |= 1 << way;
            match slot.read(None) {
                Read::Record(r) => {
                    s.versions[way] = r.version;
                    s.used += u64::from(r.is_entry());
                    if wanted(&r) {
                        s.matches.push(way);
                    } else {
                        let stamp = slot.last_used();
                        if s.oldest.is_none_or(|(_, o, _)| stamp < o) {
                            s.oldest = Some((way, stamp, r.is_entry()));
                        }
                    }
                }
                // Under the lock a slot is busy only if its writer died (checked above)
                // or the lock was taken over from a stalled writer: then the write
                // below finds the version changed and gives up.
                Read::Empty | Read::Busy | Read::Other => {
                    if s.free.is_none() {
                        s.free = Some(way);
                    }
                }
            }
        }
        s
    }

    fn set_used(&self, set: usize, used: u64) {
        self.set_word(set, SET_W_USED)
            .store(used, Ordering::Relaxed);
    }
}

impl Drop for FileBackend {
    fn drop(&mut self) {
        unregister(self);
        self.flush_counts(0);
    }
}

impl Backend for FileBackend {
    fn lookup(&self, key: &PeerKey, live: &dyn Fn(&Entry) -> bool) -> Option<Entry> {
        let p = self.place(key);
        for way in 0..self.ways() {
            let slot = self.slot(p.set, way);
            let Read::Record(r) = slot.read(Some(p.digest)) else {
                continue;
            };
            if r.key() != p.bytes || !r.is_entry() {
                continue;
            }
            let Ok(caps) = Capabilities::decode(r.caps()) else {
                continue; // checksummed but undecodable: treat as absent
            };
            let entry = Entry {
                caps,
                learned_at: r.learned_at,
            };
            if live(&entry) {
                // The use stamp is coarse: it is renewed only once the set has seen
                // more uses than it has ways since, so a read-mostly workload does not
                // write to the shared file at each hit (a write dirties a shared page
                // and takes its cache line from the other CPUs).
                let now = self.set_word(p.set, SET_W_TICK).load(Ordering::Relaxed);
                if now.wrapping_sub(slot.last_used()) > self.ways() as u64 {
                    slot.touch(self.tick(p.set));
                }
                self.count_lookup(p.set, true);
                return Some(entry);
            }
            // Expired: remove it, unless a writer replaced it meanwhile. A lookup never
            // waits for a writer: if the set is locked, the entry is left for a writer
            // to clear (the next learn of this set does).
            if let Some(lock) = self.try_lock(p.set) {
                if slot.clear(r.version, lock.word(), self.next_version(p.set)) {
                    self.count(p.set, C_EXPIRATIONS);
                    let used = self.scan(&p).used;
                    self.set_used(p.set, used);
                }
            }
            break;
        }
        self.count_lookup(p.set, false);
        None
    }

    fn insert(&self, key: &PeerKey, entry: Entry) {
        let p = self.place(key);
        let caps = entry.caps.encode();
        if p.bytes.len() > layout::KEY_MAX || caps.len() > layout::CAPS_MAX {
            return; // cannot happen with this library's keys and records
        }
        self.flush_counts(p.set);
        let lock = self.lock(p.set);
        let scan = self.scan(&p);
        let mut used = scan.used;
        let (way, evicted) = match (scan.matches.first(), scan.free, scan.oldest) {
            (Some(&w), _, _) => (w, false),
            (None, Some(w), _) => {
                used += 1;
                (w, false)
            }
            (None, None, Some((w, _, was_entry))) => {
                // Evicting a hold-down record adds an entry to the set's count.
                used += u64::from(!was_entry);
                (w, true)
            }
            // Every way is held by a stalled writer.
            (None, None, None) => {
                self.count(p.set, C_ABANDONED);
                return;
            }
        };
        hook::at(hook::Point::BeforeOdd);
        let stamp = self.tick(p.set);
        let wrote = self.slot(p.set, way).write(
            p.digest,
            entry.learned_at,
            &p.bytes,
            &caps,
            stamp,
            scan.versions[way],
            lock.word(),
            self.next_version(p.set),
        );
        if !wrote {
            // The set was taken over from this writer and the slot written meanwhile.
            self.count(p.set, C_ABANDONED);
            return;
        }
        for &dup in scan.matches.iter().skip(1) {
            if self.slot(p.set, dup).clear(
                scan.versions[dup],
                lock.word(),
                self.next_version(p.set),
            ) {
                used -= 1;
            }
        }
        self.set_used(p.set, used);
        self.count(p.set, C_INSERTS);
        if evicted {
            self.count(p.set, C_EVICTIONS);
        }
    }

    fn remove(&self, key: &PeerKey) -> bool {
        let p = self.place(key);
        // Without a slot carrying the key's digest there is nothing to remove, and no
        // need to lock.
        if !(0..self.ways()).any(|w| self.slot(p.set, w).digest_is(p.digest)) {
            return false;
        }
        let lock = self.lock(p.set);
        let scan = self.scan(&p);
        let mut removed = 0u64;
        for &w in &scan.matches {
            if self
                .slot(p.set, w)
                .clear(scan.versions[w], lock.word(), self.next_version(p.set))
            {
                removed += 1;
            } else {
                self.count(p.set, C_ABANDONED);
            }
        }
        self.set_used(p.set, scan.used - removed);
        if removed == 0 {
            return false;
        }
        self.count(p.set, C_INVALIDATIONS);
        true
    }

    fn clear(&self) {
        for set in 0..self.geometry.sets as usize {
            let lock = self.lock(set);
            let mut used = 0;
            for way in 0..self.ways() {
                let slot = self.slot(set, way);
                if slot.is_clean() {
                    continue;
                }
                // A slot a writer that may be alive is writing is left to it.
                let cleared = self
                    .writable_from(&slot)
                    .is_some_and(|from| slot.clear(from, lock.word(), self.next_version(set)));
                if !cleared {
                    used += 1;
                }
            }
            self.set_used(set, used);
        }
    }

    fn stats(&self) -> CacheStats {
        let mut c = [0u64; COUNTERS];
        for stripe in 0..STATS_STRIPES {
            for (i, v) in c.iter_mut().enumerate() {
                *v = v.wrapping_add(
                    self.map
                        .word(STATS_OFFSET + stripe * STATS_STRIPE_SIZE + i * 8)
                        .load(Ordering::Relaxed),
                );
            }
        }
        let l = self.local_counts();
        let ways = self.geometry.ways as u64;
        let entries = (0..self.geometry.sets as usize)
            .map(|s| {
                self.set_word(s, SET_W_USED)
                    .load(Ordering::Relaxed)
                    .min(ways)
            })
            .sum();
        CacheStats {
            entries,
            hits: c[C_HITS].wrapping_add(l.hits.load(Ordering::Relaxed)),
            misses: c[C_MISSES].wrapping_add(l.misses.load(Ordering::Relaxed)),
            inserts: c[C_INSERTS],
            evictions: c[C_EVICTIONS],
            expirations: c[C_EXPIRATIONS],
            invalidations: c[C_INVALIDATIONS],
            writes_abandoned: c[C_ABANDONED],
            ..CacheStats::default()
        }
    }

    fn for_each(&self, f: &mut dyn FnMut(&PeerKey, &Entry)) {
        for set in 0..self.geometry.sets as usize {
            for way in 0..self.ways() {
                let Read::Record(r) = self.slot(set, way).read(None) else {
                    continue;
                };
                if !r.is_entry() {
                    continue;
                }
                let (Ok(key), Ok(caps)) =
                    (PeerKey::from_bytes(r.key()), Capabilities::decode(r.caps()))
                else {
                    continue;
                };
                f(
                    &key,
                    &Entry {
                        caps,
                        learned_at: r.learned_at,
                    },
                );
            }
        }
    }

    fn shared_breaker(&self) -> Option<&AtomicU64> {
        Some(self.breaker_word())
    }
}

impl Cache {
    /// Open the store file at `path`, creating it if there is none, as a cache shared by
    /// every process and thread that opens the same path. See [`StoreOptions`] for the
    /// geometry, the time to live and what is done with an invalid file, and
    /// docs/FILE_STORE.md for the rules a file must pass.
    ///
    /// The handle stays valid across `fork()`: parent and child keep using the same
    /// shared mapping.
    pub fn open_file(path: &Path, options: &StoreOptions) -> Result<Cache, StoreError> {
        let backend = Box::new(FileBackend::open(path, options)?);
        // Its address is stable from here on: counts not yet in the file get there at
        // exit() too.
        register(&backend);
        let ttl = if options.ttl_secs == 0 {
            DEFAULT_TTL_SECS
        } else {
            options.ttl_secs
        };
        let cache = Cache::with_backend(backend, ttl);
        cache.set_hold_down_config(options.hold_down);
        Ok(cache)
    }

    /// A private copy of the store file at `path`, read with `pread` and never mapped:
    /// for operators' tools that read a store another user owns (`pipeconnect cache
    /// dump` and `stats` as root), since that user could truncate a mapped file and so
    /// make the mapping process fault (`SIGBUS`). The same file checks as
    /// [`Cache::open_file`] apply (`options.rebuild_if_invalid` is ignored: nothing is
    /// ever written to the file). Lookups, entries and counters read the copy as it was
    /// when read; changes made through the returned cache stay in the copy.
    pub fn open_file_copy(path: &Path, options: &StoreOptions) -> Result<Cache, StoreError> {
        let backend = FileBackend::read_copy(path, options)?;
        let ttl = if options.ttl_secs == 0 {
            DEFAULT_TTL_SECS
        } else {
            options.ttl_secs
        };
        let cache = Cache::with_backend(Box::new(backend), ttl);
        cache.set_hold_down_config(options.hold_down);
        Ok(cache)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::TlsState;
    use std::time::{Duration, Instant};

    fn backend(name: &str, sets: u32, ways: u32) -> (FileBackend, PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("pc-file-unit-{}-{}", name, std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let b = FileBackend::open(
            &dir.join("s"),
            &StoreOptions {
                sets,
                ways,
                ..Default::default()
            },
        )
        .unwrap();
        (b, dir)
    }

    fn key(i: u32) -> PeerKey {
        PeerKey::new(
            std::net::IpAddr::from(i.to_be_bytes()),
            25,
            TlsState::Cleartext,
        )
        .unwrap()
    }

    fn entry() -> Entry {
        Entry {
            caps: Capabilities::parse_ehlo(
                b"250-mx\r\n250-PIPELINING\r\n250-AUTH PLAIN\r\n250 PIPECONNECT\r\n",
                Default::default(),
            )
            .unwrap(),
            learned_at: 1_700_000_000,
        }
    }

    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn set_of_spreads_keys() {
        let (b, dir) = backend("spread", 7, 1);
        let mut seen = [0u32; 7];
        for i in 0..7000u32 {
            seen[b.place(&key(i)).set] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_lock_left_by_a_dead_process_is_taken_over_at_once() {
        let (b, dir) = backend("deadlock", 4, 2);
        let k = key(1);
        let set = b.place(&k).set;
        let word = (dead_pid() as u64) << 32 | 7;
        b.set_word(set, SET_W_LOCK).store(word, Ordering::Relaxed);
        let start = Instant::now();
        b.insert(&k, entry());
        assert!(start.elapsed() < lock::STALE_AFTER, "{:?}", start.elapsed());
        assert!(b.lookup(&k, &|_| true).is_some());
        assert_eq!(
            b.set_word(set, SET_W_LOCK).load(Ordering::Relaxed),
            0,
            "released"
        );
        // Garbage that names no possible process is taken over at once too.
        b.set_word(set, SET_W_LOCK)
            .store(u64::MAX, Ordering::Relaxed);
        let start = Instant::now();
        assert!(b.remove(&k));
        assert!(start.elapsed() < lock::STALE_AFTER);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_lock_held_too_long_by_a_live_process_is_taken_over_after_a_while() {
        let (b, dir) = backend("stale", 4, 2);
        let k = key(2);
        let set = b.place(&k).set;
        // Process 1 is alive; so is this process.
        for holder in [1u64, std::process::id() as u64] {
            b.set_word(set, SET_W_LOCK)
                .store(holder << 32 | 9, Ordering::Relaxed);
            let start = Instant::now();
            b.insert(&k, entry());
            let waited = start.elapsed();
            assert!(waited >= lock::STALE_AFTER, "{holder}: {waited:?}");
            assert!(waited < Duration::from_secs(10), "{holder}: {waited:?}");
            assert!(b.lookup(&k, &|_| true).is_some());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_slot_left_mid_write_reads_empty_and_is_reclaimed() {
        let (b, dir) = backend("midwrite", 1, 1);
        let k = key(3);
        b.insert(&k, entry());
        let slot = b.slot(0, 0);
        let off = b.geometry.slot_offset(0, 0);
        let v = b.map.word(off).load(Ordering::Relaxed);
        b.map.word(off).store(v + 1, Ordering::Relaxed); // a writer died here
        assert!(matches!(slot.read(None), Read::Busy));
        assert!(b.lookup(&k, &|_| true).is_none());
        let mut n = 0;
        b.for_each(&mut |_, _| n += 1);
        assert_eq!(n, 0);
        b.insert(&key(4), entry());
        assert!(b.lookup(&key(4), &|_| true).is_some());
        assert_eq!(b.map.word(off).load(Ordering::Relaxed) & 1, 0);
        assert_eq!(b.stats().evictions, 0, "a dead slot is free, not evicted");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn entry_from(writer: u64) -> Entry {
        let reply = format!(
            "250-mx\r\n250-PIPELINING\r\n250-SIZE {}\r\n250 PIPECONNECT\r\n",
            1000 + writer
        );
        Entry {
            caps: Capabilities::parse_ehlo(reply.as_bytes(), Default::default()).unwrap(),
            learned_at: 1_700_000_000 + writer,
        }
    }

    /// A slot's words, but for the use stamp (a hint that lookups may renew).
    fn raw_slot(b: &FileBackend, set: usize, way: usize) -> Vec<u64> {
        let off = b.geometry.slot_offset(set, way);
        (0..layout::SLOT_WORDS)
            .filter(|&i| i != layout::W_LAST_USED)
            .map(|i| b.map.word(off + i * 8).load(Ordering::Relaxed))
            .collect()
    }

    /// Stop a writer at `point` while another writer takes its set over and writes the
    /// same key, with readers looking the key up all along; then let the stopped writer
    /// go on. Returns the backend, the ways' words just before the stopped writer went
    /// on and just after it finished, and every entry the readers saw.
    #[allow(clippy::type_complexity)]
    fn stall_a_writer(
        name: &str,
        ways: u32,
        point: hook::Point,
    ) -> (
        std::sync::Arc<FileBackend>,
        Vec<Vec<u64>>,
        Vec<Vec<u64>>,
        Vec<Entry>,
        PathBuf,
    ) {
        use std::sync::atomic::AtomicBool;
        use std::sync::{mpsc, Arc};
        let (b, dir) = backend(name, 1, ways);
        let b = Arc::new(b);
        let k = key(7);
        let (stopped_tx, stopped_rx) = mpsc::channel::<()>();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let writer = {
            let b = Arc::clone(&b);
            let k = k.clone();
            std::thread::spawn(move || {
                let mut first = true;
                hook::HOOK.with(|h| {
                    *h.borrow_mut() = Some(Box::new(move |p| {
                        if p == point && first {
                            first = false;
                            stopped_tx.send(()).unwrap();
                            go_rx.recv().unwrap();
                        }
                    }))
                });
                b.insert(&k, entry_from(1));
            })
        };
        stopped_rx.recv().unwrap();
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let (b, k, done) = (Arc::clone(&b), k.clone(), Arc::clone(&done));
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                while !done.load(Ordering::Relaxed) {
                    if let Some(e) = b.lookup(&k, &|_| true) {
                        seen.push(e);
                    }
                }
                seen
            })
        };
        // The stopped writer holds the set's lock: this one takes it over after
        // STALE_AFTER (the holder is this very process, so alive) and writes.
        let start = Instant::now();
        b.insert(&k, entry_from(2));
        assert!(
            start.elapsed() >= lock::STALE_AFTER,
            "{:?}",
            start.elapsed()
        );
        let before: Vec<_> = (0..ways as usize).map(|w| raw_slot(&b, 0, w)).collect();
        go_tx.send(()).unwrap();
        writer.join().unwrap();
        let after: Vec<_> = (0..ways as usize).map(|w| raw_slot(&b, 0, w)).collect();
        std::thread::sleep(Duration::from_millis(20));
        done.store(true, Ordering::Relaxed);
        let seen = reader.join().unwrap();
        (b, before, after, seen, dir)
    }

    #[test]
    fn a_writer_stalled_before_marking_odd_gives_up_and_leaves_the_later_record() {
        let (b, before, after, seen, dir) = stall_a_writer("stall-odd", 2, hook::Point::BeforeOdd);
        // The stalled writer read the slot's version before the other wrote it: its
        // compare-and-swap from that version fails, and it writes nothing.
        assert_eq!(before, after, "the later writer's record is untouched");
        assert_eq!(b.stats().writes_abandoned, 1);
        assert_eq!(b.lookup(&key(7), &|_| true), Some(entry_from(2)));
        assert!(!seen.is_empty());
        assert!(seen.iter().all(|e| *e == entry_from(2)), "{seen:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_writer_stalled_mid_copy_keeps_its_slot_and_no_reader_sees_a_mix() {
        let (b, before, after, seen, dir) = stall_a_writer("stall-copy", 2, hook::Point::MidCopy);
        // The later writer left the stalled writer's slot (odd, its holder alive) alone
        // and wrote the other way; the stalled writer then finished its own slot only.
        let (a_way, b_way) = if before[0][layout::W_VERSION] & 1 == 1 {
            (0, 1)
        } else {
            (1, 0)
        };
        assert_eq!(before[a_way][layout::W_VERSION] & 1, 1, "{before:?}");
        assert_eq!(before[b_way], after[b_way], "the later record is untouched");
        assert_eq!(after[a_way][layout::W_VERSION] & 1, 0, "finished");
        let records: Vec<Entry> = [a_way, b_way]
            .iter()
            .filter_map(|&w| match b.slot(0, w).read(None) {
                Read::Record(r) => Some(Entry {
                    caps: Capabilities::decode(r.caps()).unwrap(),
                    learned_at: r.learned_at,
                }),
                _ => None,
            })
            .collect();
        assert_eq!(records, vec![entry_from(1), entry_from(2)]);
        assert!(
            seen.iter()
                .all(|e| *e == entry_from(1) || *e == entry_from(2)),
            "a reader saw a record of neither writer"
        );
        assert_eq!(b.stats().writes_abandoned, 0);
        // The next writer keeps one record of the key.
        b.insert(&key(7), entry_from(3));
        assert_eq!(b.lookup(&key(7), &|_| true), Some(entry_from(3)));
        assert_eq!(b.scan(&b.place(&key(7))).matches.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_set_whose_only_slot_a_stalled_writer_holds_is_not_written() {
        let (b, before, after, seen, dir) = stall_a_writer("stall-full", 1, hook::Point::MidCopy);
        // The later writer found no slot it could write: it gave up, and the stalled
        // writer's record is whole once it finished.
        assert_eq!(before[0][layout::W_VERSION] & 1, 1);
        assert_eq!(after[0][layout::W_VERSION] & 1, 0);
        assert_eq!(b.stats().writes_abandoned, 1);
        assert_eq!(b.lookup(&key(7), &|_| true), Some(entry_from(1)));
        assert!(seen.iter().all(|e| *e == entry_from(1)), "{seen:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_expired_hit_does_not_wait_for_a_held_lock() {
        let (b, dir) = backend("expire-busy", 2, 2);
        let k = key(8);
        b.insert(&k, entry());
        let set = b.place(&k).set;
        let held = (std::process::id() as u64) << 32 | 3;
        b.set_word(set, SET_W_LOCK).store(held, Ordering::Relaxed);
        let start = Instant::now();
        assert!(b.lookup(&k, &|_| false).is_none());
        assert!(
            start.elapsed() < Duration::from_millis(100),
            "{:?}",
            start.elapsed()
        );
        assert_eq!(b.stats().expirations, 0, "left for a writer");
        assert!(b.lookup(&k, &|_| true).is_some(), "still there");
        b.set_word(set, SET_W_LOCK).store(0, Ordering::Relaxed);
        assert!(b.lookup(&k, &|_| false).is_none());
        assert_eq!(b.stats().expirations, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_foreign_pid_namespace_turns_the_dead_holder_shortcut_off_for_good() {
        let (b, dir) = backend("pidns", 4, 2);
        assert!(lock::esrch_is_trusted(&b.map), "one namespace so far");
        assert_ne!(b.map.word(layout::H_PID_NS).load(Ordering::Relaxed), 0);
        // An opener from another namespace (as recorded by the first opener).
        b.map.word(layout::H_PID_NS).store(12345, Ordering::Relaxed);
        let again = FileBackend::open(&b.path, &StoreOptions::default()).unwrap();
        assert!(!lock::esrch_is_trusted(&b.map));
        // Set the first opener's namespace back: the flag stays.
        b.map
            .word(layout::H_PID_NS)
            .store(map::pid_namespace_id(), Ordering::Relaxed);
        drop(FileBackend::open(&b.path, &StoreOptions::default()).unwrap());
        assert!(!lock::esrch_is_trusted(&again.map), "sticky");
        // A lock word naming a pid that does not exist here may be a live process of
        // the other namespace: it is waited for, not taken at once.
        let k = key(9);
        let set = b.place(&k).set;
        let word = (dead_pid() as u64) << 32 | 7;
        b.set_word(set, SET_W_LOCK).store(word, Ordering::Relaxed);
        let start = Instant::now();
        b.insert(&k, entry());
        assert!(
            start.elapsed() >= lock::STALE_AFTER,
            "{:?}",
            start.elapsed()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hits_are_counted_in_the_handle_and_reach_the_file() {
        let (b, dir) = backend("counts", 4, 2);
        let k = key(10);
        b.insert(&k, entry());
        let shared = |b: &FileBackend| -> u64 {
            (0..STATS_STRIPES)
                .map(|s| {
                    b.map
                        .word(STATS_OFFSET + s * STATS_STRIPE_SIZE + C_HITS * 8)
                        .load(Ordering::Relaxed)
                })
                .sum()
        };
        for _ in 0..COUNT_BATCH - 1 {
            assert!(b.lookup(&k, &|_| true).is_some());
        }
        assert_eq!(shared(&b), 0, "nothing written to the file yet");
        assert_eq!(b.stats().hits, COUNT_BATCH - 1, "but counted");
        assert!(b.lookup(&k, &|_| true).is_some());
        assert_eq!(shared(&b), COUNT_BATCH);
        assert!(b.lookup(&k, &|_| true).is_some());
        let other = FileBackend::open(&b.path, &StoreOptions::default()).unwrap();
        assert_eq!(other.stats().hits, COUNT_BATCH);
        drop(b);
        assert_eq!(other.stats().hits, COUNT_BATCH + 1, "added when closed");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn read_mostly_lookups_do_not_write_the_shared_file() {
        let (b, dir) = backend("quiet", 1, 4);
        let k = key(11);
        b.insert(&k, entry());
        let tick = || b.set_word(0, SET_W_TICK).load(Ordering::Relaxed);
        let t0 = tick();
        let stamp = b.slot(0, 0).last_used();
        for _ in 0..(COUNT_BATCH - 2) {
            assert!(b.lookup(&k, &|_| true).is_some());
        }
        assert_eq!(tick(), t0, "no use stamp written");
        assert_eq!(b.slot(0, 0).last_used(), stamp);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_expired_entry_is_removed_and_counted() {
        let (b, dir) = backend("expire", 2, 2);
        b.insert(&key(5), entry());
        assert!(b.lookup(&key(5), &|_| false).is_none());
        assert!(b.lookup(&key(5), &|_| true).is_none(), "removed");
        let s = b.stats();
        assert_eq!((s.expirations, s.misses, s.entries), (1, 2, 0));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
