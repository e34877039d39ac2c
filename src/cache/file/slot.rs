//! One slot of the store: a record written under a seqlock and verified by a checksum.
//!
//! Writers (holding the set's lock) make the version odd, write the record's words, and
//! make it even again. Readers take no lock: they read the version, copy the words, read
//! the version again, and accept the copy only if the version was even and unchanged and
//! the checksum matches; otherwise they retry a bounded number of times and then treat
//! the slot as empty. Every length read from the slot is checked against the slot's
//! size before it is used.
//!
//! A record is of one of two kinds (bits 32..40 of the lengths word): a capability
//! entry (key, encoded capabilities) or a hold-down record (key, encoded
//! [`crate::cache::HoldDown`]), which lives apart from the key's entry so that removing
//! the entry leaves it (a tombstone with its own expiry). A hold-down record's digest is
//! taken over a tag and the key, so it never matches the entry's.

use super::layout::{
    checksum_words, Geometry, CAPS_MAX, KEY_MAX, SLOT_WORDS, W_CHECKSUM, W_DATA, W_DIGEST,
    W_LAST_USED, W_LEARNED_AT, W_LENGTHS, W_VERSION,
};
use super::map::Mapping;
use std::sync::atomic::{fence, Ordering};

/// How many times a reader re-copies a slot that a writer is changing.
const READ_RETRIES: u32 = 64;

/// Bytes of key and capabilities a slot holds.
const DATA_BYTES: usize = (SLOT_WORDS - W_DATA) * 8;

/// What a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A capability entry: the key and its encoded capabilities.
    Entry = 0,
    /// A hold-down record: the key and its encoded hold-down.
    HoldDown = 1,
}

impl Kind {
    fn from_bits(b: u64) -> Option<Kind> {
        match b {
            0 => Some(Kind::Entry),
            1 => Some(Kind::HoldDown),
            _ => None,
        }
    }
}

/// A record copied out of a slot and verified (on the stack: no allocation).
#[derive(Clone)]
pub(crate) struct Record {
    /// The slot's version when copied (even).
    pub(crate) version: u64,
    pub(crate) digest: u64,
    pub(crate) learned_at: u64,
    kind: Kind,
    key_len: usize,
    caps_len: usize,
    data: [u8; DATA_BYTES],
}

impl Record {
    /// What the record holds.
    pub(crate) fn kind(&self) -> Kind {
        self.kind
    }
    /// Whether it is a capability entry.
    pub(crate) fn is_entry(&self) -> bool {
        self.kind == Kind::Entry
    }
    /// The key's canonical bytes.
    pub(crate) fn key(&self) -> &[u8] {
        &self.data[..self.key_len]
    }
    /// The encoded capabilities (of an entry) or hold-down (of a hold-down record).
    pub(crate) fn caps(&self) -> &[u8] {
        &self.data[self.key_len..self.key_len + self.caps_len]
    }
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("version", &self.version)
            .field("digest", &self.digest)
            .field("learned_at", &self.learned_at)
            .field("kind", &self.kind)
            .field("key", &self.key())
            .field("caps", &self.caps())
            .finish()
    }
}

/// What a slot holds.
// The record stays on the stack on purpose: a lookup allocates nothing for it.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub(crate) enum Read {
    /// No record: never written, cleared, or not valid (a writer died in it, or its
    /// bytes are damaged).
    Empty,
    /// A record for another digest than the one looked for (not copied).
    Other,
    /// A whole, verified record.
    Record(Record),
    /// A writer kept changing it; not read.
    Busy,
}

/// A slot's place in the mapping.
#[derive(Clone, Copy)]
pub(crate) struct Slot<'a> {
    map: &'a Mapping,
    off: usize,
}

fn lengths(w: u64) -> Option<(Kind, usize, usize)> {
    let key_len = (w & 0xffff) as usize;
    let caps_len = ((w >> 16) & 0xffff) as usize;
    let kind = Kind::from_bits(w >> 32)?;
    if key_len == 0 || key_len > KEY_MAX || caps_len == 0 || caps_len > CAPS_MAX {
        return None;
    }
    Some((kind, key_len, caps_len))
}

fn data_words(key_len: usize, caps_len: usize) -> usize {
    (key_len + caps_len).div_ceil(8)
}

impl<'a> Slot<'a> {
    pub(crate) fn at(map: &'a Mapping, g: Geometry, set: usize, way: usize) -> Slot<'a> {
        Slot {
            map,
            off: g.slot_offset(set, way),
        }
    }

    #[inline]
    fn w(&self, i: usize) -> &'a std::sync::atomic::AtomicU64 {
        debug_assert!(i < SLOT_WORDS);
        self.map.word(self.off + i * 8)
    }

    /// The last-use stamp (a hint; not part of the record).
    pub(crate) fn last_used(&self) -> u64 {
        self.w(W_LAST_USED).load(Ordering::Relaxed)
    }

    /// Set the last-use stamp.
    pub(crate) fn touch(&self, stamp: u64) {
        self.w(W_LAST_USED).store(stamp, Ordering::Relaxed)
    }

    /// Whether the slot's digest word equals `digest` right now (a cheap filter; not a
    /// verified read).
    pub(crate) fn digest_is(&self, digest: u64) -> bool {
        self.w(W_DIGEST).load(Ordering::Relaxed) == digest
    }

    /// Read the slot. With `want = Some(d)`, a slot holding another digest is `Other`
    /// without being copied.
    pub(crate) fn read(&self, want: Option<u64>) -> Read {
        let mut buf = [0u64; SLOT_WORDS];
        for attempt in 0..READ_RETRIES {
            if attempt > 0 {
                if attempt < READ_RETRIES / 2 {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
            }
            let v1 = self.w(W_VERSION).load(Ordering::Acquire);
            let digest = self.w(W_DIGEST).load(Ordering::Relaxed);
            if let Some(d) = want {
                if digest != d {
                    // Whatever is being written here, it is not the record looked for
                    // (or it is being written right now, and the reader was first).
                    return Read::Other;
                }
            }
            if v1 & 1 == 1 {
                continue;
            }
            let lens = self.w(W_LENGTHS).load(Ordering::Relaxed);
            let Some((kind, key_len, caps_len)) = lengths(lens) else {
                fence(Ordering::Acquire);
                if self.w(W_VERSION).load(Ordering::Relaxed) != v1 {
                    continue;
                }
                return Read::Empty;
            };
            let n = W_DATA + data_words(key_len, caps_len);
            for (i, slot) in buf.iter_mut().enumerate().take(n).skip(W_CHECKSUM) {
                *slot = self.w(i).load(Ordering::Relaxed);
            }
            fence(Ordering::Acquire);
            if self.w(W_VERSION).load(Ordering::Relaxed) != v1 {
                continue;
            }
            if buf[W_DIGEST] != digest
                || buf[W_LENGTHS] != lens
                || checksum_words(&buf[W_DIGEST..n]) != buf[W_CHECKSUM]
            {
                return Read::Empty;
            }
            let mut data = [0u8; DATA_BYTES];
            for (chunk, w) in data.chunks_exact_mut(8).zip(&buf[W_DATA..n]) {
                chunk.copy_from_slice(&w.to_le_bytes());
            }
            return Read::Record(Record {
                version: v1,
                digest,
                learned_at: buf[W_LEARNED_AT],
                kind,
                key_len,
                caps_len,
                data,
            });
        }
        Read::Busy
    }

    /// Whether the slot is empty and was emptied by a writer that finished (so clearing
    /// it again would change nothing).
    pub(crate) fn is_clean(&self) -> bool {
        self.w(W_VERSION).load(Ordering::Relaxed) & 1 == 0
            && self.w(W_LENGTHS).load(Ordering::Relaxed) == 0
            && self.w(W_DIGEST).load(Ordering::Relaxed) == 0
    }

    /// The version word now.
    pub(crate) fn version(&self) -> u64 {
        self.w(W_VERSION).load(Ordering::Acquire)
    }

    /// Write words `W_CHECKSUM..` under the seqlock. The caller holds the set's lock
    /// (or held it: a stalled writer may have lost it meanwhile). The version moves only
    /// by compare-and-swap: from `from` (the version the writer read) to `token` (the
    /// writer's lock word, odd), then from `token` to `next` (a fresh even version). If
    /// the first fails, another writer got here first: nothing is written and `false`
    /// is returned. While the version is `token`, no other writer touches the slot
    /// unless `token`'s process is known to be gone, so the words copied are this
    /// writer's alone.
    fn publish(&self, words: &[u64], stamp: u64, from: u64, token: u64, next: u64) -> bool {
        debug_assert!(token & 1 == 1 && next & 1 == 0);
        if self
            .w(W_VERSION)
            .compare_exchange(from, token, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return false;
        }
        fence(Ordering::Release);
        for (i, &x) in words.iter().enumerate() {
            self.w(W_CHECKSUM + i).store(x, Ordering::Relaxed);
            if i == 1 {
                hook::at(hook::Point::MidCopy);
            }
        }
        self.touch(stamp);
        self.w(W_VERSION)
            .compare_exchange(token, next, Ordering::Release, Ordering::Relaxed)
            .is_ok()
    }

    /// Write a capability entry (see [`Slot::write_kind`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn write(
        &self,
        digest: u64,
        learned_at: u64,
        key: &[u8],
        caps: &[u8],
        stamp: u64,
        from: u64,
        token: u64,
        next: u64,
    ) -> bool {
        self.write_kind(
            Kind::Entry,
            digest,
            learned_at,
            key,
            caps,
            stamp,
            from,
            token,
            next,
        )
    }

    /// Write a record of `kind`: its key and its payload (encoded capabilities or a
    /// hold-down), within their limits (checked by the caller; a longer one is not
    /// written). See [`Slot::publish`] for `from`, `token` and `next`. `false`: not
    /// written (another writer got to the slot first).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn write_kind(
        &self,
        kind: Kind,
        digest: u64,
        learned_at: u64,
        key: &[u8],
        caps: &[u8],
        stamp: u64,
        from: u64,
        token: u64,
        next: u64,
    ) -> bool {
        if key.is_empty() || key.len() > KEY_MAX || caps.is_empty() || caps.len() > CAPS_MAX {
            return false;
        }
        let n = data_words(key.len(), caps.len());
        let mut data = [0u8; DATA_BYTES];
        data[..key.len()].copy_from_slice(key);
        data[key.len()..key.len() + caps.len()].copy_from_slice(caps);
        let mut all = [0u64; SLOT_WORDS - W_CHECKSUM];
        let words = &mut all[..W_DATA - W_CHECKSUM + n];
        words[W_DIGEST - W_CHECKSUM] = digest;
        words[W_LEARNED_AT - W_CHECKSUM] = learned_at;
        words[W_LENGTHS - W_CHECKSUM] =
            key.len() as u64 | (caps.len() as u64) << 16 | (kind as u64) << 32;
        for (w, c) in words[W_DATA - W_CHECKSUM..]
            .iter_mut()
            .zip(data.chunks_exact(8))
        {
            let mut a = [0u8; 8];
            a.copy_from_slice(c);
            *w = u64::from_le_bytes(a);
        }
        words[0] = checksum_words(&words[W_DIGEST - W_CHECKSUM..]);
        self.publish(words, stamp, from, token, next)
    }

    /// Empty the slot (see [`Slot::publish`]). `false`: not cleared (another writer got
    /// to the slot first).
    pub(crate) fn clear(&self, from: u64, token: u64, next: u64) -> bool {
        self.publish(&[0, 0, 0, 0], 0, from, token, next)
    }
}

/// Points where a test may stop a writer (test builds only; nothing in others).
pub(crate) mod hook {
    /// Where the writer is.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(crate) enum Point {
        /// Under the set lock, having read the slot's version, before marking it odd.
        BeforeOdd,
        /// The version is odd; part of the record's words are written.
        MidCopy,
    }

    /// A test's hook: called with each point this thread's writes reach.
    #[cfg(test)]
    pub(crate) type Hook = Box<dyn FnMut(Point)>;

    #[cfg(test)]
    thread_local! {
        /// This thread's hook.
        pub(crate) static HOOK: std::cell::RefCell<Option<Hook>> =
            const { std::cell::RefCell::new(None) };
    }

    /// Call this thread's hook, if a test set one.
    #[inline(always)]
    pub(crate) fn at(_p: Point) {
        #[cfg(test)]
        HOOK.with(|h| {
            if let Some(f) = h.borrow_mut().as_mut() {
                f(_p)
            }
        });
    }
}
