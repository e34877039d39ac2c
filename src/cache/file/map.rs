//! Opening, creating and mapping a store file: the only I/O of the file store.
//!
//! Every check a hostile file could defeat is made on the open descriptor (`fstat`), not
//! on the path; the path is opened with `O_NOFOLLOW`, and looked at with `lstat` first
//! only so that a FIFO or a device is never opened at all.

use super::layout::{self, Geometry, Header, HEADER_SIZE};
use super::{StoreError, StoreOptions};
use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

/// How many times an open goes round when the file changes under it (a racing creator
/// or rebuilder won; the next round opens the winner's file).
const OPEN_ROUNDS: usize = 8;
/// How long an opener waits for another process that is rebuilding the same file.
const REBUILD_WAIT: Duration = Duration::from_secs(5);

/// A shared, read-write mapping of a whole store file, or a private copy of one read
/// with `pread` (see [`read_copy`]).
pub(crate) struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    /// A heap copy (freed as a boxed slice of words), not a mapping.
    copy: bool,
}

// SAFETY: the mapping is only ever accessed through atomics (see `word`), so sharing it
// between threads is as safe as sharing `&[AtomicU64]`.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// The atomic word at byte offset `off`. Offsets come from the checked geometry; the
    /// bounds are checked again here, so a logic error is a panic (caught at the C
    /// boundary), never a stray access.
    #[inline]
    pub(crate) fn word(&self, off: usize) -> &AtomicU64 {
        assert!(
            off % 8 == 0 && off.checked_add(8).is_some_and(|end| end <= self.len),
            "store offset out of range"
        );
        // SAFETY: in bounds and 8-aligned (the mapping is page-aligned); the memory stays
        // mapped for the life of `self`; AtomicU64 has the size and alignment of u64, and
        // every access to the mapping goes through atomics, so other threads' and other
        // processes' writes are not data races in the Rust sense.
        unsafe { &*(self.ptr.as_ptr().add(off) as *const AtomicU64) }
    }

    /// The mapping's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        if self.copy {
            // SAFETY: ptr/len come from `Box::into_raw` of a boxed slice of len / 8
            // words in `from_words`; nothing borrows it any more.
            unsafe {
                drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                    self.ptr.as_ptr().cast::<AtomicU64>(),
                    self.len / 8,
                )));
            }
            return;
        }
        // SAFETY: ptr/len are exactly what mmap returned; nothing borrows the mapping any
        // more (every borrow is tied to `&self`).
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

impl Mapping {
    /// A private copy holding `words` (native byte order, as a mapping reads them).
    fn from_words(words: Vec<u64>) -> Mapping {
        let boxed: Box<[AtomicU64]> = words.into_iter().map(AtomicU64::new).collect();
        let len = boxed.len() * 8;
        let ptr = Box::into_raw(boxed).cast::<u8>();
        Mapping {
            // SAFETY: Box::into_raw never returns null (an empty slice gives a dangling,
            // non-null pointer; a store copy is never empty anyway).
            ptr: unsafe { NonNull::new_unchecked(ptr) },
            len,
            copy: true,
        }
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn io_err() -> StoreError {
    StoreError::Io(errno())
}

fn c_path(p: &Path) -> Result<CString, StoreError> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| StoreError::InvalidOptions)
}

/// An owned file descriptor, closed on drop.
struct Fd(i32);

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor.
        unsafe {
            libc::close(self.0);
        }
    }
}

fn lstat(p: &CString) -> Result<Option<libc::stat>, StoreError> {
    // SAFETY: a zeroed stat is a valid out-buffer; p is NUL-terminated.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::lstat(p.as_ptr(), &mut st) } == 0 {
        Ok(Some(st))
    } else if errno() == libc::ENOENT {
        Ok(None)
    } else {
        Err(io_err())
    }
}

fn fstat(fd: &Fd) -> Result<libc::stat, StoreError> {
    // SAFETY: as in `lstat`; fd is open.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd.0, &mut st) } == 0 {
        Ok(st)
    } else {
        Err(io_err())
    }
}

fn is_type(st: &libc::stat, t: libc::mode_t) -> bool {
    st.st_mode & libc::S_IFMT == t
}

/// Whether the process is a member of group `gid` (its effective or a supplementary
/// group).
fn in_group(gid: u32) -> bool {
    // SAFETY: getegid cannot fail.
    if unsafe { libc::getegid() } == gid {
        return true;
    }
    // SAFETY: a 0-length query returns the count.
    let n = unsafe { libc::getgroups(0, std::ptr::null_mut()) };
    if n <= 0 {
        return false;
    }
    let mut groups = vec![0 as libc::gid_t; n as usize];
    // SAFETY: the buffer holds n entries.
    let n = unsafe { libc::getgroups(n, groups.as_mut_ptr()) };
    n > 0 && groups[..n as usize].contains(&gid)
}

/// Who may open which file (see docs/FILE_STORE.md, "Users"): its owner; root, whoever
/// owns it (root's open changes nothing about the file); in group mode, a member of the
/// store's group when the file has that group. Writable by others: never; by the group:
/// only in group mode, with the store's group.
fn check_owner_and_mode(
    uid: u32,
    gid: u32,
    mode: u32,
    euid: u32,
    group: Option<u32>,
    member: &dyn Fn(u32) -> bool,
) -> Result<(), StoreError> {
    let group_ok = group.is_some_and(|g| g == gid);
    if uid != euid && euid != 0 && !(group_ok && member(gid)) {
        return Err(StoreError::WrongOwner);
    }
    if mode & 0o002 != 0 || (mode & 0o020 != 0 && !group_ok) {
        return Err(StoreError::Permissions);
    }
    Ok(())
}

/// The checks on the file itself, made on the open descriptor's `fstat`.
fn check_file(
    st: &libc::stat,
    euid: libc::uid_t,
    options: &StoreOptions,
) -> Result<(), StoreError> {
    if is_type(st, libc::S_IFLNK) {
        return Err(StoreError::Symlink);
    }
    if !is_type(st, libc::S_IFREG) {
        return Err(StoreError::NotRegular);
    }
    check_owner_and_mode(
        st.st_uid,
        st.st_gid,
        st.st_mode & 0o7777,
        euid,
        options.group,
        &in_group,
    )
}

/// Filesystem types (`statfs.f_type`) whose files are shared across hosts, or served by
/// a process (FUSE), where a mapping's compare-and-swap and a process id mean nothing
/// beyond one host.
const REMOTE_FS_TYPES: &[i64] = &[
    0x6969,      // NFS
    0x517b,      // SMB
    0xff53_4d42, // CIFS
    0xfe53_4d42, // SMB2
    0x7375_7245, // Coda
    0x5346_414f, // AFS
    0x6b41_4653, // kAFS
    0x0102_1997, // 9P
    0x00c3_6400, // Ceph
    0x0116_1970, // GFS2
    0x7461_636f, // OCFS2
    0x0bd0_0bd0, // Lustre
    0x4750_4653, // GPFS
    0x564c,      // NCP
    0x6573_5546, // FUSE
];

/// Whether a filesystem of type `f_type` is a network or otherwise non-local one.
pub(crate) fn is_remote_fs(f_type: i64) -> bool {
    REMOTE_FS_TYPES.contains(&f_type)
}

/// Refuse a file on a non-local filesystem unless the options allow it.
fn check_local(fd: &Fd, options: &StoreOptions) -> Result<(), StoreError> {
    if options.allow_remote_fs {
        return Ok(());
    }
    // SAFETY: a zeroed statfs is a valid out-buffer; fd is open.
    let mut sf: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs(fd.0, &mut sf) } != 0 {
        return Err(io_err());
    }
    #[allow(clippy::unnecessary_cast)]
    if is_remote_fs(sf.f_type as i64) {
        return Err(StoreError::RemoteFilesystem);
    }
    Ok(())
}

/// The identity of this process's pid namespace (0 when it cannot be told, as in a
/// chroot without /proc).
pub(crate) fn pid_namespace_id() -> u64 {
    // SAFETY: a zeroed stat is a valid out-buffer; the path is NUL-terminated.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::stat(c"/proc/self/ns/pid".as_ptr(), &mut st) } != 0 {
        return 0;
    }
    st.st_ino as u64
}

/// Record this process's pid namespace in the header (the first opener's stays), and
/// set the sticky "foreign namespace" flag when it differs or cannot be told: from then
/// on no process trusts `ESRCH` as proof that a lock holder is gone.
pub(crate) fn note_pid_namespace(m: &Mapping) {
    use std::sync::atomic::Ordering::Relaxed;
    let mine = pid_namespace_id();
    let recorded = m.word(layout::H_PID_NS);
    let foreign = mine == 0
        || match recorded.compare_exchange(0, mine, Relaxed, Relaxed) {
            Ok(_) => false,
            Err(first) => first != mine,
        };
    let flags = m.word(layout::H_FLAGS);
    if foreign && flags.load(Relaxed) & layout::FLAG_FOREIGN_PID_NS == 0 {
        flags.fetch_or(layout::FLAG_FOREIGN_PID_NS, Relaxed);
    }
}

/// Read up to `HEADER_SIZE` bytes from the start of the file.
fn read_header(fd: &Fd) -> Result<Vec<u8>, StoreError> {
    let mut buf = vec![0u8; HEADER_SIZE];
    let mut got = 0usize;
    while got < buf.len() {
        // SAFETY: the buffer has room for buf.len() - got bytes at got.
        let n = unsafe {
            libc::pread(
                fd.0,
                buf.as_mut_ptr().add(got).cast(),
                buf.len() - got,
                got as libc::off_t,
            )
        };
        if n < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return Err(io_err());
        }
        if n == 0 {
            break;
        }
        got += n as usize;
    }
    buf.truncate(got);
    Ok(buf)
}

fn map(fd: &Fd, len: usize) -> Result<Mapping, StoreError> {
    // SAFETY: a fresh shared mapping of an open descriptor; the result is checked.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd.0,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(io_err());
    }
    let ptr = NonNull::new(p.cast::<u8>()).ok_or(StoreError::Io(libc::ENOMEM))?;
    Ok(Mapping {
        ptr,
        len,
        copy: false,
    })
}

/// Check the header as mapped (the file could have changed between the read and the
/// map; the mapped bytes are the ones that count) and return it.
fn check_mapped(m: &Mapping, file_len: u64, wanted: Geometry) -> Result<Header, StoreError> {
    let mut bytes = Vec::with_capacity(layout::HEADER_CHECKED + 8);
    for i in 0..(layout::HEADER_CHECKED + 8) / 8 {
        let w = m.word(i * 8).load(std::sync::atomic::Ordering::Relaxed);
        bytes.extend_from_slice(&w.to_ne_bytes());
    }
    // The header is written little-endian; on a little-endian machine the native bytes
    // are the file's bytes. On a big-endian machine they differ and the header fails.
    layout::check_header(&bytes, file_len, wanted)
}

/// An opened store: the mapping and what its header says.
pub(crate) struct Opened {
    pub(crate) mapping: Mapping,
    pub(crate) header: Header,
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A fresh temporary name in the same folder as `path` (so a rename is atomic).
fn temp_path(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64 as Counter, Ordering};
    static SEQ: Counter = Counter::new(0);
    let mut name: OsString = OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    name.push(format!(
        ".tmp.{}.{}.{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed),
        nanos
    ));
    path.with_file_name(name)
}

/// Remove a file on drop unless disarmed.
struct Unlink(Option<CString>);

impl Drop for Unlink {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            // SAFETY: NUL-terminated path.
            unsafe {
                libc::unlink(p.as_ptr());
            }
        }
    }
}

/// Build a complete, valid store file under a temporary name beside `path`. The caller
/// then links or renames it into place.
fn build_temp(
    path: &Path,
    geometry: Geometry,
    mode: u32,
    owner: (Option<u32>, Option<u32>),
    options: &StoreOptions,
) -> Result<(Fd, CString, Unlink), StoreError> {
    let tmp = c_path(&temp_path(path))?;
    // SAFETY: NUL-terminated path; the result is checked.
    let fd = unsafe {
        libc::open(
            tmp.as_ptr(),
            libc::O_RDWR | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io_err());
    }
    let fd = Fd(fd);
    let guard = Unlink(Some(tmp.clone()));
    check_local(&fd, options)?;
    // The owner asked for (root making its MTA user's store; a group in group mode).
    if owner.0.is_some() || owner.1.is_some() {
        // SAFETY: fd is open; -1 leaves a field as it is.
        let r = unsafe {
            libc::fchown(
                fd.0,
                owner.0.unwrap_or(u32::MAX) as libc::uid_t,
                owner.1.unwrap_or(u32::MAX) as libc::gid_t,
            )
        };
        if r != 0 {
            return Err(io_err());
        }
    }
    // The umask may have narrowed the mode; set exactly what was asked for.
    // SAFETY: fd is open.
    if unsafe { libc::fchmod(fd.0, mode as libc::mode_t) } != 0 {
        return Err(io_err());
    }
    let size = geometry.file_size();
    let len = libc::off_t::try_from(size).map_err(|_| StoreError::Geometry)?;
    // Reserve the blocks now, so a full disk shows here as an error and not later as a
    // fault on first touch of a page; fall back to a sparse file where unsupported.
    // SAFETY: fd is open.
    let r = unsafe { libc::posix_fallocate(fd.0, 0, len) };
    if r != 0 {
        if r != libc::EOPNOTSUPP && r != libc::EINVAL {
            return Err(StoreError::Io(r));
        }
        // SAFETY: fd is open.
        if unsafe { libc::ftruncate(fd.0, len) } != 0 {
            return Err(io_err());
        }
    }
    let header = layout::encode_header(geometry, now_unix());
    // SAFETY: the buffer is header.len() bytes.
    let n = unsafe { libc::pwrite(fd.0, header.as_ptr().cast(), header.len(), 0) };
    if n != header.len() as isize {
        return Err(if n < 0 {
            io_err()
        } else {
            StoreError::Io(libc::EIO)
        });
    }
    // A cache may lose its content in a crash, but its header must not be lost while
    // the name already points at it.
    // SAFETY: fd is open.
    if unsafe { libc::fsync(fd.0) } != 0 {
        return Err(io_err());
    }
    Ok((fd, tmp, guard))
}

/// Create a new store at `path` if nothing is there. `Ok(None)` when another process
/// created it first (the caller opens theirs).
fn create_new(
    path: &CString,
    pathbuf: &Path,
    geometry: Geometry,
    options: &StoreOptions,
) -> Result<Option<Opened>, StoreError> {
    let (fd, tmp, guard) = build_temp(
        pathbuf,
        geometry,
        options.mode,
        new_owner(options, None),
        options,
    )?;
    // link() fails if the name exists, so of racing creators exactly one wins.
    // SAFETY: NUL-terminated paths.
    if unsafe { libc::link(tmp.as_ptr(), path.as_ptr()) } != 0 {
        return match errno() {
            libc::EEXIST => Ok(None),
            e => Err(StoreError::Io(e)),
        };
    }
    // The store is now reachable under its own name: drop the temporary one.
    drop(guard);
    let mapping = map(&fd, geometry.file_size() as usize)?;
    let header = check_mapped(&mapping, geometry.file_size(), geometry)?;
    Ok(Some(Opened { mapping, header }))
}

/// The owner to give a new file: the one the options name; else, for root rebuilding
/// another user's file, that file's; the group in group mode.
fn new_owner(options: &StoreOptions, old: Option<&libc::stat>) -> (Option<u32>, Option<u32>) {
    // SAFETY: geteuid cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let (uid, gid) = match (options.owner, old) {
        (Some((u, g)), _) => (Some(u), Some(g)),
        (None, Some(st)) if root => (Some(st.st_uid), Some(st.st_gid)),
        _ => (None, None),
    };
    (uid, options.group.or(gid))
}

/// Whether `rebuild_if_invalid` may replace a file that failed with `e`.
fn rebuildable(e: StoreError) -> bool {
    matches!(
        e,
        StoreError::Truncated
            | StoreError::BadMagic
            | StoreError::Version
            | StoreError::Geometry
            | StoreError::Checksum
    )
}

/// Replace the invalid store open as `old` with a new one. Holds `flock` on the old file
/// while building, so racing rebuilders replace it once; a rebuilder that finds the name
/// no longer points at its file returns `Ok(None)` and the caller opens the new one.
fn rebuild(
    old: &Fd,
    old_st: &libc::stat,
    path: &CString,
    pathbuf: &Path,
    wanted: Geometry,
    options: &StoreOptions,
) -> Result<Option<Opened>, StoreError> {
    let start = Instant::now();
    loop {
        // SAFETY: old is open.
        if unsafe { libc::flock(old.0, libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            break;
        }
        let e = errno();
        if e != libc::EWOULDBLOCK && e != libc::EINTR {
            return Err(StoreError::Io(e));
        }
        if start.elapsed() > REBUILD_WAIT {
            return Err(StoreError::Io(libc::EWOULDBLOCK));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    // The lock is released when `old` is closed by the caller.
    match lstat(path)? {
        Some(st) if st.st_dev == old_st.st_dev && st.st_ino == old_st.st_ino => {}
        _ => return Ok(None),
    }
    // Where 0 was asked, keep the file's own sets or ways when its header still says.
    let hint = read_header(old)
        .ok()
        .and_then(|b| layout::geometry_hint(&b));
    let geometry = layout::build_geometry(wanted, hint).check()?;
    let (fd, tmp, mut guard) = build_temp(
        pathbuf,
        geometry,
        options.mode,
        new_owner(options, Some(old_st)),
        options,
    )?;
    // SAFETY: NUL-terminated paths.
    if unsafe { libc::rename(tmp.as_ptr(), path.as_ptr()) } != 0 {
        return Err(io_err());
    }
    guard.0 = None;
    let mapping = map(&fd, geometry.file_size() as usize)?;
    let header = check_mapped(&mapping, geometry.file_size(), geometry)?;
    Ok(Some(Opened { mapping, header }))
}

/// Open (creating or rebuilding as `options` allow) the store at `path`.
pub(crate) fn open(path: &Path, options: &StoreOptions) -> Result<Opened, StoreError> {
    options.check()?;
    let cpath = c_path(path)?;
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    if path.as_os_str().is_empty() {
        return Err(StoreError::InvalidOptions);
    }
    let wanted = Geometry {
        sets: options.sets,
        ways: options.ways,
    };
    let create_geometry = layout::build_geometry(wanted, None).check()?;
    let mut last = StoreError::Io(libc::EAGAIN);
    for _ in 0..OPEN_ROUNDS {
        let st = match lstat(&cpath)? {
            None => match create_new(&cpath, path, create_geometry, options)? {
                Some(opened) => return Ok(opened),
                None => continue,
            },
            Some(st) => st,
        };
        // Refuse what is not a plain file before opening it: opening a FIFO or a
        // device may block or have effects.
        check_file(&st, euid, options)?;
        // SAFETY: NUL-terminated path; the result is checked.
        let fd = unsafe {
            libc::open(
                cpath.as_ptr(),
                libc::O_RDWR
                    | libc::O_NOFOLLOW
                    | libc::O_NONBLOCK
                    | libc::O_NOCTTY
                    | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            match errno() {
                libc::ENOENT => continue,
                libc::ELOOP => return Err(StoreError::Symlink),
                libc::EISDIR | libc::ENXIO => return Err(StoreError::NotRegular),
                e => return Err(StoreError::Io(e)),
            }
        }
        let fd = Fd(fd);
        // The decisive checks, on what was actually opened.
        let st = fstat(&fd)?;
        check_file(&st, euid, options)?;
        check_local(&fd, options)?;
        let file_len = st.st_size as u64;
        match check_open(&fd, file_len, wanted) {
            Ok(opened) => return Ok(opened),
            Err(e) if options.rebuild_if_invalid && rebuildable(e) => {
                if let Some(opened) = rebuild(&fd, &st, &cpath, path, wanted, options)? {
                    return Ok(opened);
                }
                last = e;
            }
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// Map an open file and check its header in the mapping (one system call fewer than
/// reading it first: opening is what a short-lived delivery process pays for). A file
/// too short for a header is read instead, to say why it is refused.
fn check_open(fd: &Fd, file_len: u64, wanted: Geometry) -> Result<Opened, StoreError> {
    if file_len < HEADER_SIZE as u64 {
        let bytes = read_header(fd)?;
        layout::check_header(&bytes, file_len, wanted)?;
        return Err(StoreError::Truncated); // not reached: a short file never checks
    }
    // A valid file is never longer than the largest geometry needs; a longer one is
    // mapped only as far as that.
    let len =
        usize::try_from(file_len.min(layout::MAX_FILE_SIZE)).map_err(|_| StoreError::Geometry)?;
    let mapping = map(fd, len)?;
    let header = check_mapped(&mapping, file_len, wanted)?;
    if header.geometry.file_size() > mapping.len() as u64 {
        return Err(StoreError::Truncated); // not reached: checked against file_len
    }
    Ok(Opened { mapping, header })
}

/// Open the store at `path` read-only, with the same file checks as [`open`].
fn open_read_only(path: &Path, options: &StoreOptions) -> Result<(Fd, libc::stat), StoreError> {
    let cpath = c_path(path)?;
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    let st = lstat(&cpath)?.ok_or(StoreError::Io(libc::ENOENT))?;
    check_file(&st, euid, options)?;
    // SAFETY: NUL-terminated path; the result is checked.
    let fd = unsafe {
        libc::open(
            cpath.as_ptr(),
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(match errno() {
            libc::ELOOP => StoreError::Symlink,
            e => StoreError::Io(e),
        });
    }
    let fd = Fd(fd);
    let st = fstat(&fd)?;
    check_file(&st, euid, options)?;
    Ok((fd, st))
}

/// Read and check the header of the store at `path` without mapping it or changing
/// anything (for operators' tools). The same file checks as [`open`] apply.
pub(crate) fn inspect(path: &Path) -> Result<(Header, u64), StoreError> {
    let (fd, st) = open_read_only(path, &StoreOptions::default())?;
    let file_len = st.st_size as u64;
    let bytes = read_header(&fd)?;
    let h = layout::check_header(&bytes, file_len, Geometry { sets: 0, ways: 0 })?;
    Ok((h, file_len))
}

/// Read the whole store at `path` with `pread` into a private copy, never mapping it
/// (a file another user may truncate cannot fault the reader). The same file checks as
/// [`open`] apply; the header is checked in the copy.
pub(crate) fn read_copy(path: &Path, options: &StoreOptions) -> Result<Opened, StoreError> {
    options.check()?;
    // No filesystem check: a copy takes no part in the locks, so reading one from a
    // network filesystem is harmless.
    let (fd, st) = open_read_only(path, options)?;
    let file_len = st.st_size as u64;
    let wanted = Geometry {
        sets: options.sets,
        ways: options.ways,
    };
    let header = layout::check_header(&read_header(&fd)?, file_len, wanted)?;
    let size = header.geometry.file_size() as usize;
    // Read straight into the words (a file size is a multiple of 8).
    let mut words = vec![0u64; size / 8];
    let base = words.as_mut_ptr().cast::<u8>();
    let mut got = 0usize;
    while got < size {
        // SAFETY: `words` holds `size` bytes; the buffer has room for size - got bytes at
        // got; any bytes are a valid u64.
        let n = unsafe { libc::pread(fd.0, base.add(got).cast(), size - got, got as libc::off_t) };
        if n < 0 {
            if errno() == libc::EINTR {
                continue;
            }
            return Err(io_err());
        }
        if n == 0 {
            return Err(StoreError::Truncated); // shortened while being read
        }
        got += n as usize;
    }
    let mapping = Mapping::from_words(words);
    // The copy's header is the one that counts (the file may have changed meanwhile).
    let header = check_mapped(&mapping, size as u64, header.geometry)?;
    Ok(Opened { mapping, header })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_may_open_which_file() {
        let none = |_| false;
        let all = |_| true;
        // The owner; root whoever owns it; nobody else.
        assert_eq!(
            check_owner_and_mode(100, 100, 0o600, 100, None, &none),
            Ok(())
        );
        assert_eq!(
            check_owner_and_mode(100, 100, 0o600, 0, None, &none),
            Ok(())
        );
        assert_eq!(
            check_owner_and_mode(100, 100, 0o600, 200, None, &all),
            Err(StoreError::WrongOwner)
        );
        // Group mode: a member, when the file has the store's group.
        assert_eq!(
            check_owner_and_mode(100, 50, 0o660, 200, Some(50), &all),
            Ok(())
        );
        assert_eq!(
            check_owner_and_mode(100, 50, 0o660, 200, Some(50), &none),
            Err(StoreError::WrongOwner)
        );
        assert_eq!(
            check_owner_and_mode(100, 51, 0o640, 200, Some(50), &all),
            Err(StoreError::WrongOwner)
        );
        // Group write only in group mode with the store's group; others never.
        assert_eq!(
            check_owner_and_mode(100, 50, 0o660, 100, None, &all),
            Err(StoreError::Permissions)
        );
        assert_eq!(
            check_owner_and_mode(100, 51, 0o660, 100, Some(50), &all),
            Err(StoreError::Permissions)
        );
        assert_eq!(
            check_owner_and_mode(100, 50, 0o662, 0, Some(50), &all),
            Err(StoreError::Permissions)
        );
        assert_eq!(
            check_owner_and_mode(100, 100, 0o602, 0, None, &all),
            Err(StoreError::Permissions)
        );
    }

    #[test]
    fn network_filesystems_are_told_apart() {
        assert!(is_remote_fs(0x6969));
        assert!(is_remote_fs(0xff53_4d42));
        assert!(!is_remote_fs(0xef53)); // ext4
        assert!(!is_remote_fs(0x0102_1994)); // tmpfs
        assert!(!is_remote_fs(0x5846_5342)); // xfs
    }
}
