//! The byte layout of a store file, and the checks that decide whether a header can be
//! trusted. Pure functions over bytes: no I/O here.
//!
//! ```text
//! offset 0      header (HEADER_SIZE bytes)
//!                 0  magic            8 bytes  "PIPECSTO"
//!                 8  format version   u32 LE
//!                12  header size      u32 LE   (HEADER_SIZE)
//!                16  sets             u32 LE
//!                20  ways             u32 LE
//!                24  slot size        u32 LE   (SLOT_SIZE)
//!                28  set header size  u32 LE   (SET_HEADER_SIZE)
//!                32  key bytes max    u32 LE   (KEY_MAX)
//!                36  caps bytes max   u32 LE   (CAPS_MAX)
//!                40  created at       u64 LE   (Unix seconds; informational)
//!                48  file size        u64 LE
//!                56  header checksum  u64 LE   (over bytes 0..56)
//!                64  pid namespace    atomic u64 (the first opener's; not checksummed)
//!                72  flags            atomic u64 (sticky bits; not checksummed)
//!                80  shared breaker   atomic u64 (the shared tier's circuit breaker:
//!                                     0 closed, else open until, Unix milliseconds)
//!              1024  STATS_STRIPES stripes of 128 bytes, each up to 16 atomic u64 counters
//! HEADER_SIZE   set 0: set header (SET_HEADER_SIZE bytes), then `ways` slots
//!               set 1 ...
//! ```
//! The header's integers are little-endian. Everything after the header's checked bytes
//! (counters, lock words, slots) is read and written as native 64-bit atomics, so the
//! slots of a file moved to a machine of the other byte order fail their checksums and
//! read as empty (a store is a cache on local disk; it is never meant to be copied).

use super::StoreError;
use crate::caps::ENCODED_MAX;

/// The first eight bytes of every store file.
pub const MAGIC: [u8; 8] = *b"PIPECSTO";
/// The format version this library reads and writes. Version 2: capability records with
/// presence bits and hold-down records; slot versions move by compare-and-swap with the
/// writer's lock word as the odd value; the header holds the pid namespace word and the
/// flags word; stats stripes of 128 bytes with nine counters.
pub const FORMAT_VERSION: u32 = 2;
/// Bytes before the first set: the header, the counters, room to grow.
pub const HEADER_SIZE: usize = 4096;
/// The bytes of the header covered by its checksum.
pub const HEADER_CHECKED: usize = 56;
/// Where the header's pid namespace word is: the identity of the pid namespace of the
/// first process that opened the file (0 until then).
pub const H_PID_NS: usize = 64;
/// Where the header's flags word is (bits only ever set, never cleared).
pub const H_FLAGS: usize = 72;
/// Where the shared tier's circuit-breaker word is (see `breaker.rs`).
pub const H_SHARED_BREAKER: usize = 80;
/// Flag: a process of another pid namespace than the first opener's (or one whose
/// namespace could not be told) has opened the file, so "no such process" from
/// `kill(pid, 0)` no longer proves a lock holder dead.
pub const FLAG_FOREIGN_PID_NS: u64 = 1 << 0;
/// Where the shared counters start.
pub const STATS_OFFSET: usize = 1024;
/// Counter stripes (a lookup counts in the stripe of its set, so processes touching
/// different sets rarely write the same cache line).
pub const STATS_STRIPES: usize = 16;
/// Bytes per counter stripe (one cache line).
pub const STATS_STRIPE_SIZE: usize = 128;
/// Bytes at the start of each set: the writers' lock word, the use tick, the count of
/// records held.
pub const SET_HEADER_SIZE: usize = 64;
/// The longest canonical key a slot holds (a key's canonical bytes are at most 294).
pub const KEY_MAX: usize = 296;
/// The longest encoded capability record a slot holds.
pub const CAPS_MAX: usize = ENCODED_MAX;
/// Words (u64) before a slot's data: version, last use, checksum, digest, learned at,
/// lengths.
pub const SLOT_META_WORDS: usize = 6;
/// Words of key and capability bytes a slot can hold.
pub const SLOT_DATA_WORDS: usize = (KEY_MAX + CAPS_MAX).div_ceil(8);
/// Bytes per slot, rounded up to whole cache lines.
pub const SLOT_SIZE: usize = ((SLOT_META_WORDS + SLOT_DATA_WORDS) * 8).div_ceil(64) * 64;
/// Words per slot.
pub const SLOT_WORDS: usize = SLOT_SIZE / 8;

// A slot holds the largest key and record, in whole cache lines.
const _: () = assert!(SLOT_SIZE % 64 == 0);
const _: () = assert!((SLOT_WORDS - W_DATA) * 8 >= KEY_MAX + CAPS_MAX);
const _: () = assert!(STATS_OFFSET + STATS_STRIPES * STATS_STRIPE_SIZE <= HEADER_SIZE);
const _: () = assert!(HEADER_CHECKED + 8 <= H_PID_NS && H_FLAGS + 8 <= STATS_OFFSET);
const _: () = assert!(H_FLAGS + 8 <= H_SHARED_BREAKER && H_SHARED_BREAKER + 8 <= STATS_OFFSET);

/// Slot word indexes.
pub const W_VERSION: usize = 0;
/// Last use stamp (a hint for eviction; not covered by the checksum).
pub const W_LAST_USED: usize = 1;
/// Checksum over words `W_DIGEST..` up to the end of the data.
pub const W_CHECKSUM: usize = 2;
/// The key's digest.
pub const W_DIGEST: usize = 3;
/// When the record was learned (Unix seconds).
pub const W_LEARNED_AT: usize = 4;
/// Key length (bits 0..16), payload length (bits 16..32), record kind (bits 32..40:
/// 0 capability entry, 1 hold-down record).
pub const W_LENGTHS: usize = 5;
/// First data word.
pub const W_DATA: usize = SLOT_META_WORDS;

/// Set header word indexes.
pub const SET_W_LOCK: usize = 0;
/// The set's use tick (a counter that orders uses for the approximate LRU).
pub const SET_W_TICK: usize = 1;
/// The records held in the set, as last counted by a writer.
pub const SET_W_USED: usize = 2;

/// Counter indexes within a stripe.
pub const C_HITS: usize = 0;
/// Lookups that missed.
pub const C_MISSES: usize = 1;
/// Records written.
pub const C_INSERTS: usize = 2;
/// Records dropped to make room.
pub const C_EVICTIONS: usize = 3;
/// Records dropped because their time to live had passed.
pub const C_EXPIRATIONS: usize = 4;
/// Records dropped on request.
pub const C_INVALIDATIONS: usize = 5;
/// Hold-downs entered.
pub const C_HOLD_DOWNS: usize = 6;
/// Early flights not sent because of a hold-down.
pub const C_EARLY_SKIPPED: usize = 7;
/// Writes given up (the set was taken over from the writer, or every slot was held by
/// a stalled writer).
pub const C_ABANDONED: usize = 8;
/// Counters in use per stripe.
pub const COUNTERS: usize = 9;
const _: () = assert!(COUNTERS * 8 <= STATS_STRIPE_SIZE);

/// The default number of sets.
pub const DEFAULT_SETS: u32 = 4096;
/// The default number of ways (slots per set).
pub const DEFAULT_WAYS: u32 = 8;
/// The most sets a store may have.
pub const MAX_SETS: u32 = 1 << 20;
/// The most ways a store may have.
pub const MAX_WAYS: u32 = 64;
/// The largest store file, in bytes.
pub const MAX_FILE_SIZE: u64 = 1 << 30;

/// The shape of a store: sets × ways slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// Number of sets.
    pub sets: u32,
    /// Slots per set.
    pub ways: u32,
}

impl Geometry {
    /// Whether the geometry is within the store's limits.
    pub fn check(self) -> Result<Geometry, StoreError> {
        if self.sets == 0
            || self.sets > MAX_SETS
            || self.ways == 0
            || self.ways > MAX_WAYS
            || self.file_size() > MAX_FILE_SIZE
        {
            return Err(StoreError::Geometry);
        }
        Ok(self)
    }

    /// Bytes from one set to the next.
    pub fn set_stride(self) -> usize {
        SET_HEADER_SIZE + self.ways as usize * SLOT_SIZE
    }

    /// The size of a store file of this geometry.
    pub fn file_size(self) -> u64 {
        HEADER_SIZE as u64 + self.sets as u64 * self.set_stride() as u64
    }

    /// The byte offset of set `set`'s header.
    pub fn set_offset(self, set: usize) -> usize {
        HEADER_SIZE + set * self.set_stride()
    }

    /// The byte offset of slot `way` of set `set`.
    pub fn slot_offset(self, set: usize, way: usize) -> usize {
        self.set_offset(set) + SET_HEADER_SIZE + way * SLOT_SIZE
    }
}

/// What a header says, once checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The store's geometry.
    pub geometry: Geometry,
    /// When the file was made (Unix seconds, as written by its maker; informational).
    pub created_at: u64,
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

fn u64_at(b: &[u8], i: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(a)
}

/// A 64-bit checksum over words (a multiply-xorshift mix; detects torn and corrupted
/// records, not forgeries: anyone who may write the file may write a valid record).
pub fn checksum_words(words: &[u64]) -> u64 {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15 ^ (words.len() as u64);
    for &w in words {
        h = (h ^ w).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 31;
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

fn header_checksum(b: &[u8]) -> u64 {
    let words: Vec<u64> = b[..HEADER_CHECKED]
        .chunks_exact(8)
        .map(|c| u64_at(c, 0))
        .collect();
    checksum_words(&words)
}

/// The first `HEADER_CHECKED + 8` bytes of a new store file's header.
pub fn encode_header(geometry: Geometry, created_at: u64) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEADER_CHECKED + 8);
    b.extend_from_slice(&MAGIC);
    b.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    b.extend_from_slice(&(HEADER_SIZE as u32).to_le_bytes());
    b.extend_from_slice(&geometry.sets.to_le_bytes());
    b.extend_from_slice(&geometry.ways.to_le_bytes());
    b.extend_from_slice(&(SLOT_SIZE as u32).to_le_bytes());
    b.extend_from_slice(&(SET_HEADER_SIZE as u32).to_le_bytes());
    b.extend_from_slice(&(KEY_MAX as u32).to_le_bytes());
    b.extend_from_slice(&(CAPS_MAX as u32).to_le_bytes());
    b.extend_from_slice(&created_at.to_le_bytes());
    b.extend_from_slice(&geometry.file_size().to_le_bytes());
    let sum = header_checksum(&b);
    b.extend_from_slice(&sum.to_le_bytes());
    b
}

/// Check a header read from a file of `file_len` bytes (`bytes` holds the file's first
/// bytes, up to [`HEADER_SIZE`]). `wanted` is the geometry asked for, 0 in a field
/// meaning "any". Checks run from the most basic to the most specific, so a file that
/// is not a store at all says so rather than "bad checksum".
pub fn check_header(bytes: &[u8], file_len: u64, wanted: Geometry) -> Result<Header, StoreError> {
    if bytes.len() < HEADER_CHECKED + 8 || file_len < HEADER_SIZE as u64 {
        // Too short even for the header: say "bad magic" when the bytes present already
        // show it is not a store, "truncated" otherwise.
        let n = bytes.len().min(MAGIC.len());
        if bytes[..n] != MAGIC[..n] {
            return Err(StoreError::BadMagic);
        }
        return Err(StoreError::Truncated);
    }
    if bytes[..8] != MAGIC {
        return Err(StoreError::BadMagic);
    }
    if u32_at(bytes, 8) != FORMAT_VERSION {
        return Err(StoreError::Version);
    }
    if u64_at(bytes, HEADER_CHECKED) != header_checksum(bytes) {
        return Err(StoreError::Checksum);
    }
    let geometry = Geometry {
        sets: u32_at(bytes, 16),
        ways: u32_at(bytes, 20),
    }
    .check()?;
    if u32_at(bytes, 12) as usize != HEADER_SIZE
        || u32_at(bytes, 24) as usize != SLOT_SIZE
        || u32_at(bytes, 28) as usize != SET_HEADER_SIZE
        || u32_at(bytes, 32) as usize != KEY_MAX
        || u32_at(bytes, 36) as usize != CAPS_MAX
        || u64_at(bytes, 48) != geometry.file_size()
    {
        return Err(StoreError::Geometry);
    }
    if (wanted.sets != 0 && wanted.sets != geometry.sets)
        || (wanted.ways != 0 && wanted.ways != geometry.ways)
    {
        return Err(StoreError::Geometry);
    }
    if file_len < geometry.file_size() {
        return Err(StoreError::Truncated);
    }
    Ok(Header {
        geometry,
        created_at: u64_at(bytes, 40),
    })
}

/// The geometry a file's header names, when it starts with the magic and names one
/// within the limits, whatever else is wrong with it (another version, a bad checksum):
/// what a rebuild asked for "the file's" sets or ways keeps.
pub fn geometry_hint(bytes: &[u8]) -> Option<Geometry> {
    if bytes.len() < 24 || bytes[..8] != MAGIC {
        return None;
    }
    Geometry {
        sets: u32_at(bytes, 16),
        ways: u32_at(bytes, 20),
    }
    .check()
    .ok()
}

/// The geometry to build: each field asked for, or where 0 was asked, the file's (from
/// `hint`), or else the default.
pub fn build_geometry(wanted: Geometry, hint: Option<Geometry>) -> Geometry {
    let pick = |asked: u32, file: Option<u32>, default: u32| {
        if asked != 0 {
            asked
        } else {
            file.unwrap_or(default)
        }
    };
    Geometry {
        sets: pick(wanted.sets, hint.map(|g| g.sets), DEFAULT_SETS),
        ways: pick(wanted.ways, hint.map(|g| g.ways), DEFAULT_WAYS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: Geometry = Geometry { sets: 16, ways: 4 };

    fn full(g: Geometry) -> Vec<u8> {
        let mut b = encode_header(g, 1_700_000_000);
        b.resize(HEADER_SIZE, 0);
        b
    }

    #[test]
    fn slot_layout_is_the_documented_one() {
        assert_eq!(SLOT_SIZE, 768);
        assert_eq!(
            Geometry {
                sets: 4096,
                ways: 8
            }
            .file_size(),
            4096 + 4096 * (64 + 8 * 768)
        );
    }

    #[test]
    fn a_fresh_header_checks() {
        let b = full(G);
        let h = check_header(&b, G.file_size(), Geometry { sets: 0, ways: 0 }).unwrap();
        assert_eq!(h.geometry, G);
        assert_eq!(h.created_at, 1_700_000_000);
        assert_eq!(check_header(&b, G.file_size(), G).unwrap().geometry, G);
    }

    #[test]
    fn each_defect_has_its_error() {
        let b = full(G);
        let size = G.file_size();
        let any = Geometry { sets: 0, ways: 0 };
        assert_eq!(check_header(&b, size - 1, any), Err(StoreError::Truncated));
        assert_eq!(check_header(&b[..30], 30, any), Err(StoreError::Truncated));
        assert_eq!(check_header(b"hello", 5, any), Err(StoreError::BadMagic));
        let mut m = b.clone();
        m[0] ^= 1;
        assert_eq!(check_header(&m, size, any), Err(StoreError::BadMagic));
        let mut v = b.clone();
        v[8] ^= 0x40;
        assert_eq!(check_header(&v, size, any), Err(StoreError::Version));
        // A file of the format before capability presence bits and hold-down records.
        let mut v1 = b.clone();
        v1[8..12].copy_from_slice(&1u32.to_le_bytes());
        assert_eq!(check_header(&v1, size, any), Err(StoreError::Version));
        let mut c = b.clone();
        c[17] ^= 0x40;
        assert_eq!(check_header(&c, size, any), Err(StoreError::Checksum));
        assert_eq!(
            check_header(&b, size, Geometry { sets: 32, ways: 4 }),
            Err(StoreError::Geometry)
        );
        assert_eq!(
            check_header(&b, size, Geometry { sets: 0, ways: 8 }),
            Err(StoreError::Geometry)
        );
        let bad = full(Geometry { sets: 0, ways: 4 });
        assert_eq!(check_header(&bad, size, any), Err(StoreError::Geometry));
    }

    #[test]
    fn a_rebuild_keeps_the_files_geometry_where_0_is_asked() {
        let mut b = full(Geometry { sets: 32, ways: 2 });
        b[8] ^= 0x40; // another version: the fields still say what the file was
        let hint = geometry_hint(&b);
        assert_eq!(hint, Some(Geometry { sets: 32, ways: 2 }));
        let any = Geometry { sets: 0, ways: 0 };
        assert_eq!(build_geometry(any, hint), Geometry { sets: 32, ways: 2 });
        assert_eq!(
            build_geometry(Geometry { sets: 64, ways: 0 }, hint),
            Geometry { sets: 64, ways: 2 }
        );
        assert_eq!(
            build_geometry(Geometry { sets: 0, ways: 4 }, hint),
            Geometry { sets: 32, ways: 4 }
        );
        assert_eq!(
            build_geometry(any, geometry_hint(b"garbage garbage garbage!")),
            Geometry {
                sets: DEFAULT_SETS,
                ways: DEFAULT_WAYS
            }
        );
    }

    #[test]
    fn geometry_limits() {
        assert!(Geometry { sets: 1, ways: 1 }.check().is_ok());
        assert!(Geometry {
            sets: MAX_SETS,
            ways: 1
        }
        .check()
        .is_ok());
        assert!(Geometry {
            sets: MAX_SETS,
            ways: MAX_WAYS
        }
        .check()
        .is_err());
        assert!(Geometry {
            sets: 1,
            ways: MAX_WAYS + 1
        }
        .check()
        .is_err());
    }
}
