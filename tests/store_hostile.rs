//! A store file is never trusted: each hostile case is refused with its own error (or
//! rebuilt when asked and allowed), damaged records read as misses, and the file never
//! grows.

mod common;

use pipeconnect::cache::file::{inspect, StoreError, StoreOptions};
use pipeconnect::cache::{Cache, Learned};
use pipeconnect::{Capabilities, ParseOptions, PeerKey, TlsState};
use std::ffi::CString;
use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

const T0: u64 = 1_700_000_000;
/// Bytes before the first set (see docs/FILE_STORE.md).
const HEADER_SIZE: u64 = 4096;

fn scratch(name: &str) -> PathBuf {
    common::scratch(&format!("store-hostile-{name}"))
}

fn small() -> StoreOptions {
    StoreOptions {
        sets: 16,
        ways: 4,
        ..StoreOptions::default()
    }
}

fn rebuild() -> StoreOptions {
    StoreOptions {
        rebuild_if_invalid: true,
        ..small()
    }
}

fn caps(extra: &str) -> Capabilities {
    let reply = format!(
        "250-mx.example\r\n250-PIPELINING\r\n250-AUTH PLAIN LOGIN\r\n{extra}250 PIPECONNECT\r\n"
    );
    Capabilities::parse_ehlo(reply.as_bytes(), ParseOptions::default()).unwrap()
}

fn key(i: u32) -> PeerKey {
    PeerKey::new(
        std::net::IpAddr::from(i.to_be_bytes()),
        25,
        TlsState::Cleartext,
    )
    .unwrap()
}

/// A valid store at `dir/name` with a few entries.
fn valid_store(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    let c = Cache::open_file(&p, &small()).unwrap();
    c.clock().set(T0);
    for i in 0..10 {
        c.learn(&key(0x0a00_0000 + i), caps(""));
    }
    p
}

fn open_err(p: &Path, o: &StoreOptions) -> Option<StoreError> {
    Cache::open_file(p, o).err()
}

/// Flip the bits of `mask` in the byte at `offset` (a flip always changes the byte,
/// whatever it held; setting a fixed value would change nothing 1 time in 256).
fn flip(p: &Path, offset: u64, mask: u8) {
    assert_ne!(mask, 0, "a flip must change something");
    let f = OpenOptions::new().read(true).write(true).open(p).unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, offset).unwrap();
    f.write_at(&[b[0] ^ mask], offset).unwrap();
}

fn ino(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().ino()
}

/// With `rebuild_if_invalid` the damaged file is replaced by a new, valid, empty one.
fn assert_rebuilt(p: &Path) {
    let before = ino(p);
    let c = Cache::open_file(p, &rebuild()).expect("rebuilt");
    assert_ne!(ino(p), before, "a new file was renamed into place");
    assert_eq!(c.stats().entries, 0);
    c.clock().set(T0);
    assert_eq!(c.learn(&key(1), caps("")), Learned::Stored);
    assert!(c.lookup(&key(1)).is_some());
    let info = inspect(p).unwrap();
    assert_eq!((info.sets, info.ways), (16, 4));
    let md = std::fs::metadata(p).unwrap();
    assert_eq!(md.permissions().mode() & 0o7777, 0o600);
    assert_eq!(md.len(), info.file_size);
    assert!(
        Cache::open_file(p, &small()).is_ok(),
        "valid without rebuilding now"
    );
}

#[test]
fn a_symlink_is_refused_even_to_a_valid_store() {
    let d = scratch("symlink");
    let target = valid_store(&d, "real");
    let link = d.join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert_eq!(open_err(&link, &small()), Some(StoreError::Symlink));
    assert_eq!(open_err(&link, &rebuild()), Some(StoreError::Symlink));
    assert_eq!(inspect(&link).err(), Some(StoreError::Symlink));
    // A dangling link is not followed to create a file either.
    let dangling = d.join("dangling");
    std::os::unix::fs::symlink(d.join("nowhere"), &dangling).unwrap();
    assert_eq!(open_err(&dangling, &rebuild()), Some(StoreError::Symlink));
    assert!(!d.join("nowhere").exists());
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_directory_is_refused() {
    let d = scratch("directory");
    let p = d.join("dir");
    std::fs::create_dir(&p).unwrap();
    assert_eq!(open_err(&p, &small()), Some(StoreError::NotRegular));
    assert_eq!(open_err(&p, &rebuild()), Some(StoreError::NotRegular));
    assert!(p.is_dir());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    let d = scratch("fifo");
    let p = d.join("fifo");
    let c = CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    assert_eq!(open_err(&p, &small()), Some(StoreError::NotRegular));
    assert_eq!(open_err(&p, &rebuild()), Some(StoreError::NotRegular));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_device_is_refused() {
    assert_eq!(
        open_err(Path::new("/dev/null"), &rebuild()),
        Some(StoreError::NotRegular)
    );
}

/// The user id the tests use as "another user".
const NOBODY: u32 = 65534;

/// The child side of `a_file_of_another_owner_is_refused`: runs only when that test
/// starts this binary as another user with the variable set; exits with 0 when the file
/// is refused as another owner's, to open and to inspect.
#[test]
fn other_user_role() {
    let Ok(path) = std::env::var("PIPECONNECT_OTHER_USER_STORE") else {
        return;
    };
    let p = PathBuf::from(path);
    let code = match (
        open_err(&p, &small()),
        open_err(&p, &rebuild()),
        inspect(&p).err(),
    ) {
        (
            Some(StoreError::WrongOwner),
            Some(StoreError::WrongOwner),
            Some(StoreError::WrongOwner),
        ) => 0,
        other => {
            eprintln!("as uid {}: {other:?}", unsafe { libc::geteuid() });
            1
        }
    };
    std::process::exit(code);
}

#[test]
fn a_file_of_another_owner_is_refused() {
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        // Without root no file can be given away, but a file of root's is another
        // user's: the owner check must refuse it before reading a byte.
        let p = Path::new("/etc/passwd");
        let owner = std::fs::metadata(p).expect("/etc/passwd exists").uid();
        assert_ne!(
            owner, euid,
            "this test needs a file of another user than {euid}"
        );
        assert_eq!(open_err(p, &small()), Some(StoreError::WrongOwner));
        assert_eq!(inspect(p).err(), Some(StoreError::WrongOwner));
        return;
    }
    // As root: a store of root's is another user's to `nobody`, who is refused (in a
    // child process that runs as nobody), and the file is left alone.
    let d = scratch("owner");
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
    let p = valid_store(&d, "store");
    let before = std::fs::read(&p).unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "other_user_role",
            "--exact",
            "--test-threads=1",
            "--nocapture",
        ])
        .env("PIPECONNECT_OTHER_USER_STORE", &p)
        .uid(NOBODY)
        .gid(NOBODY)
        .status()
        .expect("run the test binary as nobody (it must be readable by nobody)");
    assert_eq!(
        status.code(),
        Some(0),
        "nobody is refused a store of root's"
    );
    let md = std::fs::metadata(&p).unwrap();
    assert_eq!((md.uid(), md.gid()), (0, 0), "left alone");
    assert_eq!(std::fs::read(&p).unwrap(), before, "not a byte changed");
    // Root itself may open another user's store, and leaves its owner as it is.
    std::os::unix::fs::chown(&p, Some(NOBODY), Some(NOBODY)).unwrap();
    let c = Cache::open_file(&p, &small()).expect("root opens nobody's store");
    c.clock().set(T0);
    assert!(c.lookup(&key(0x0a00_0001)).is_some());
    drop(c);
    assert_eq!(
        std::fs::metadata(&p).unwrap().uid(),
        NOBODY,
        "owner unchanged"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_file_writable_by_group_or_others_is_refused() {
    let d = scratch("perms");
    let p = valid_store(&d, "store");
    for mode in [0o620, 0o602, 0o666, 0o622] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        assert_eq!(
            open_err(&p, &small()),
            Some(StoreError::Permissions),
            "{mode:o}"
        );
        assert_eq!(
            open_err(&p, &rebuild()),
            Some(StoreError::Permissions),
            "{mode:o}"
        );
    }
    // Readable by group is the operator's choice, and fine.
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert!(Cache::open_file(&p, &small()).is_ok());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_truncated_file_is_refused_or_rebuilt() {
    let d = scratch("truncated");
    for len in [0u64, 1, 8, 63, 64, 4095, HEADER_SIZE, HEADER_SIZE + 1000] {
        let p = valid_store(&d, &format!("store{len}"));
        let full = std::fs::metadata(&p).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&p)
            .unwrap()
            .set_len(len)
            .unwrap();
        assert_eq!(open_err(&p, &small()), Some(StoreError::Truncated), "{len}");
        assert_eq!(inspect(&p).err(), Some(StoreError::Truncated), "{len}");
        assert_eq!(
            std::fs::metadata(&p).unwrap().len(),
            len,
            "refusal leaves it"
        );
        assert_rebuilt(&p);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), full);
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn bad_magic_is_refused_or_rebuilt() {
    let d = scratch("magic");
    let p = valid_store(&d, "store");
    flip(&p, 0, 0x08);
    assert_eq!(open_err(&p, &small()), Some(StoreError::BadMagic));
    assert_rebuilt(&p);
    // A text file that happens to be at the path.
    let t = d.join("text");
    std::fs::write(&t, "not a store at all\n").unwrap();
    std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(open_err(&t, &small()), Some(StoreError::BadMagic));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn another_version_is_refused_or_rebuilt() {
    let d = scratch("version");
    let p = valid_store(&d, "store");
    // Format 1 (capabilities with sentinel values, no hold-down records) is refused.
    flip(&p, 8, 0x02 ^ 0x01); // version 2 becomes 1
    assert_eq!(open_err(&p, &small()), Some(StoreError::Version));
    assert_eq!(
        open_err(&p, &StoreOptions::default()),
        Some(StoreError::Version)
    );
    assert_rebuilt(&p);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn another_geometry_is_refused_or_rebuilt() {
    let d = scratch("geometry");
    let p = valid_store(&d, "store");
    let asked = StoreOptions {
        sets: 32,
        ..small()
    };
    assert_eq!(open_err(&p, &asked), Some(StoreError::Geometry));
    assert_eq!(
        open_err(&p, &StoreOptions { ways: 2, ..small() }),
        Some(StoreError::Geometry)
    );
    // 0 accepts the file's own.
    assert!(Cache::open_file(
        &p,
        &StoreOptions {
            sets: 0,
            ways: 0,
            ..small()
        }
    )
    .is_ok());
    let before = ino(&p);
    let c = Cache::open_file(
        &p,
        &StoreOptions {
            rebuild_if_invalid: true,
            ..asked
        },
    )
    .unwrap();
    assert_ne!(ino(&p), before);
    drop(c);
    let info = inspect(&p).unwrap();
    assert_eq!((info.sets, info.ways), (32, 4));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_rebuild_asked_for_0_sets_or_ways_keeps_the_files() {
    let d = scratch("rebuild-zero");
    let p = d.join("store");
    let made = StoreOptions {
        sets: 32,
        ways: 2,
        ..StoreOptions::default()
    };
    drop(Cache::open_file(&p, &made).unwrap());
    flip(&p, 8, 0x40); // another format version: rebuilt
    let any = StoreOptions {
        sets: 0,
        ways: 0,
        rebuild_if_invalid: true,
        ..StoreOptions::default()
    };
    let before = ino(&p);
    drop(Cache::open_file(&p, &any).unwrap());
    assert_ne!(ino(&p), before, "rebuilt");
    let info = inspect(&p).unwrap();
    assert_eq!(
        (info.sets, info.ways),
        (32, 2),
        "the file's geometry, both fields"
    );
    // One field asked for, the other the file's.
    flip(&p, 40, 0x01); // a bad checksum: rebuilt
    drop(Cache::open_file(&p, &StoreOptions { ways: 4, ..any }).unwrap());
    let info = inspect(&p).unwrap();
    assert_eq!((info.sets, info.ways), (32, 4));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_bad_header_checksum_is_refused_or_rebuilt() {
    let d = scratch("checksum");
    // A changed geometry field without a matching checksum, a changed timestamp, a
    // changed checksum: each byte's bits are flipped, so it changes whatever it held.
    for (offset, mask) in [(16u64, 0x20u8), (20, 0x02), (40, 0x55), (56, 0x01)] {
        let p = valid_store(&d, &format!("store{offset}"));
        flip(&p, offset, mask);
        assert_eq!(
            open_err(&p, &small()),
            Some(StoreError::Checksum),
            "{offset}"
        );
        assert_eq!(inspect(&p).err(), Some(StoreError::Checksum), "{offset}");
        assert_rebuilt(&p);
    }
    std::fs::remove_dir_all(&d).unwrap();
}

/// A small deterministic generator, so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

#[test]
fn random_garbage_of_any_size_is_refused_then_rebuilt() {
    let d = scratch("garbage");
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let sizes = [
        0usize, 1, 7, 8, 55, 63, 64, 100, 4095, 4096, 4097, 65536, 200_000,
    ];
    for (i, &n) in sizes.iter().enumerate() {
        let p = d.join(format!("g{i}"));
        std::fs::write(&p, rng.bytes(n)).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = open_err(&p, &small());
        assert!(
            matches!(e, Some(StoreError::BadMagic | StoreError::Truncated)),
            "{n} bytes: {e:?}"
        );
        assert_rebuilt(&p);
        // Garbage behind a correct magic goes further before it is refused.
        let mut g = b"PIPECSTO".to_vec();
        g.extend(rng.bytes(n));
        std::fs::write(&p, &g).unwrap();
        let e = open_err(&p, &small());
        assert!(
            matches!(
                e,
                Some(StoreError::Truncated | StoreError::Version | StoreError::Checksum)
            ),
            "magic + {n} bytes: {e:?}"
        );
        assert_rebuilt(&p);
    }
    std::fs::remove_dir_all(&d).unwrap();
}

/// Where `k`'s record starts in the file: its key bytes follow 48 bytes of slot header.
fn record_offset(p: &Path, k: &PeerKey) -> u64 {
    let file = std::fs::read(p).unwrap();
    let kb = k.canonical_bytes();
    let at = file[HEADER_SIZE as usize..]
        .windows(kb.len())
        .position(|w| w == kb.as_slice())
        .expect("record in the file");
    HEADER_SIZE + at as u64 - 48
}

#[test]
fn every_bit_flip_in_a_record_reads_as_a_miss_or_the_record() {
    let d = scratch("bitflip");
    let p = d.join("store");
    let c = Cache::open_file(&p, &small()).unwrap();
    c.clock().set(T0);
    let k = PeerKey::parse("2001:db8::7", 465, TlsState::Encrypted)
        .unwrap()
        .with_ehlo_name("client.example")
        .unwrap();
    let good = caps("250-SIZE 123456\r\n250-LIMITS RCPTMAX=10\r\n");
    c.learn(&k, good.clone());
    let original = c.lookup(&k).unwrap();
    let at = record_offset(&p, &k);
    let len = 48 + k.canonical_bytes().len() + good.encode().len();
    let file = OpenOptions::new().read(true).write(true).open(&p).unwrap();
    let (mut misses, mut hits) = (0, 0);
    for byte in 0..len as u64 {
        for bit in 0..8 {
            let mut b = [0u8];
            file.read_exact_at(&mut b, at + byte).unwrap();
            let flipped = [b[0] ^ (1 << bit)];
            file.write_at(&flipped, at + byte).unwrap();
            match c.lookup(&k) {
                None => misses += 1,
                Some(e) => {
                    assert_eq!(e, original, "byte {byte} bit {bit}");
                    hits += 1;
                }
            }
            let _ = c.entries(); // a dump copes too
            file.write_at(&b, at + byte).unwrap();
        }
    }
    // Flips in the version (even to even) or in the last-use stamp change nothing; every
    // other flip is caught by the checksum.
    assert!(hits <= 16 * 8, "{hits} hits");
    assert!(misses >= (len - 16) * 8, "{misses} misses");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn garbage_slots_read_as_misses_and_are_reclaimed() {
    let d = scratch("slots");
    let p = d.join("store");
    let c = Cache::open_file(&p, &small()).unwrap();
    c.clock().set(T0);
    for i in 0..40 {
        c.learn(&key(i), caps(""));
    }
    let size = std::fs::metadata(&p).unwrap().len();
    let mut rng = Rng(99);
    // Overwrite every set header and slot with random bytes, in place.
    let file = OpenOptions::new().write(true).open(&p).unwrap();
    file.write_at(&rng.bytes((size - HEADER_SIZE) as usize), HEADER_SIZE)
        .unwrap();
    for i in 0..40 {
        assert_eq!(c.lookup(&key(i)), None);
    }
    assert!(c.entries().is_empty());
    let s = c.stats();
    assert!(
        s.entries <= 64,
        "the count is bounded by the geometry: {s:?}"
    );
    // Writers reclaim garbage (random lock words included: no live process holds them).
    let start = std::time::Instant::now();
    for i in 0..64 {
        assert_eq!(c.learn(&key(1000 + i), caps("")), Learned::Stored);
        assert!(c.lookup(&key(1000 + i)).is_some(), "learned over garbage");
    }
    assert!(
        start.elapsed().as_secs() < 30,
        "garbage lock words were taken over"
    );
    // Every readable record is one of ours (garbage never passes as a record), and the
    // sets written to were recounted.
    let listed = c.entries();
    let found = (0..64)
        .filter(|&i| c.lookup(&key(1000 + i)).is_some())
        .count();
    assert_eq!(listed.len(), found);
    assert!(found >= 32, "{found}");
    assert!(listed.iter().all(|(k, e, live)| {
        let n = u32::from_be_bytes(match k.server() {
            std::net::IpAddr::V4(a) => a.octets(),
            _ => [0; 4],
        });
        (1000..1064).contains(&n) && e.caps == caps("") && *live
    }));
    c.clear();
    assert_eq!(c.stats().entries, 0);
    assert!(c.entries().is_empty());
    drop(c);
    // The header was left alone, so the file still opens.
    assert!(Cache::open_file(&p, &small()).is_ok());
    assert_eq!(std::fs::metadata(&p).unwrap().len(), size);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_million_keys_never_grow_the_file() {
    let d = scratch("size");
    let p = d.join("store");
    let c = Cache::open_file(&p, &small()).unwrap();
    c.clock().set(T0);
    let size = std::fs::metadata(&p).unwrap().len();
    assert_eq!(size, 4096 + 16 * (64 + 4 * 768));
    let caps = caps("");
    const N: u32 = 1_000_000;
    for i in 0..N {
        c.learn(&key(i), caps.clone());
        if i % 100_000 == 0 {
            assert_eq!(std::fs::metadata(&p).unwrap().len(), size);
            assert!(c.stats().entries <= 64);
        }
    }
    let s = c.stats();
    assert_eq!(std::fs::metadata(&p).unwrap().len(), size);
    assert_eq!(s.inserts, N as u64);
    assert_eq!(s.entries, 64, "every slot in use: {s:?}");
    assert_eq!(s.evictions, N as u64 - 64, "{s:?}");
    assert_eq!(c.entries().len(), 64);
    // The most recent keys are held (LRU within each set: the last four learned are
    // held whatever sets they fell in).
    let recent = (N - 4..N).filter(|&i| c.lookup(&key(i)).is_some()).count();
    assert_eq!(recent, 4);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_copy_read_for_tools_survives_the_file_being_truncated() {
    let d = scratch("copy");
    let p = valid_store(&d, "store");
    let copy = Cache::open_file_copy(&p, &StoreOptions::default()).unwrap();
    copy.clock().set(T0);
    // The owner truncates the file: a mapping would fault on the next touch (SIGBUS);
    // the copy was read with pread and is not affected.
    OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(100)
        .unwrap();
    assert_eq!(copy.entries().len(), 10);
    assert!(copy.lookup(&key(0x0a00_0003)).is_some());
    assert_eq!(copy.stats().entries, 10);
    // The truncated file itself is refused as a copy too, as it is to open.
    assert_eq!(
        Cache::open_file_copy(&p, &StoreOptions::default()).err(),
        Some(StoreError::Truncated)
    );
    // The same file checks as an open.
    let link = d.join("link");
    std::os::unix::fs::symlink(&p, &link).unwrap();
    assert_eq!(
        Cache::open_file_copy(&link, &StoreOptions::default()).err(),
        Some(StoreError::Symlink)
    );
    std::fs::remove_dir_all(&d).unwrap();
}
