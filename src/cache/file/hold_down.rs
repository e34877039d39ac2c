//! Hold-down records in the store file: one slot per held key, apart from the key's
//! capability entry (so invalidating the entry leaves it), placed by a digest taken
//! over a tag and the key. Written under the set's lock like entries; read without one.

use super::layout::STATS_STRIPE_SIZE;
use super::layout::{self, C_EARLY_SKIPPED, C_HOLD_DOWNS, STATS_OFFSET, STATS_STRIPES};
use super::slot::{Kind, Read};
use super::{FileBackend, SetScan};
use crate::cache::{HoldDown, HoldDownStore};
use crate::key::{Fnv64, PeerKey};
use std::sync::atomic::Ordering;

/// Prepended to the key before hashing, so a hold-down record's digest differs from the
/// key's entry's.
const DIGEST_TAG: &[u8] = b"pipeconnect hold-down\0";

/// A key's hold-down placement.
struct Placed {
    bytes: Vec<u8>,
    digest: u64,
    set: usize,
}

impl FileBackend {
    fn place_hold_down(&self, key: &PeerKey) -> Placed {
        let bytes = key.canonical_bytes();
        let mut h = Fnv64::new();
        h.write(DIGEST_TAG);
        h.write(&bytes);
        let digest = h.finish();
        Placed {
            set: self.set_of(digest),
            bytes,
            digest,
        }
    }

    fn scan_hold_down(&self, p: &Placed) -> SetScan {
        self.scan_set(p.set, |r| {
            r.kind() == Kind::HoldDown && r.digest == p.digest && r.key() == p.bytes
        })
    }

    fn hold_counter(&self, c: usize) -> &std::sync::atomic::AtomicU64 {
        // Rare events: one stripe.
        self.map.word(STATS_OFFSET + c * 8)
    }
}

impl HoldDownStore for FileBackend {
    fn hold_down(&self, key: &PeerKey) -> Option<HoldDown> {
        let p = self.place_hold_down(key);
        for way in 0..self.ways() {
            let Read::Record(r) = self.slot(p.set, way).read(Some(p.digest)) else {
                continue;
            };
            if r.kind() == Kind::HoldDown && r.key() == p.bytes {
                if let Some(h) = HoldDown::decode(r.caps()) {
                    return Some(h);
                }
            }
        }
        None
    }

    fn update_hold_down(
        &self,
        key: &PeerKey,
        f: &mut dyn FnMut(Option<HoldDown>) -> Option<HoldDown>,
    ) -> Option<HoldDown> {
        let p = self.place_hold_down(key);
        if p.bytes.len() > layout::KEY_MAX {
            return None; // cannot happen with this library's keys
        }
        let lock = self.lock(p.set);
        let scan = self.scan_hold_down(&p);
        let old = scan
            .matches
            .iter()
            .find_map(|&w| match self.slot(p.set, w).read(None) {
                Read::Record(r) => HoldDown::decode(r.caps()),
                _ => None,
            });
        let new = f(old);
        let mut entries = scan.used;
        let mut dups = scan.matches.as_slice();
        if let Some(h) = new {
            let target = match (scan.matches.first(), scan.free, scan.oldest) {
                (Some(&w), _, _) => {
                    dups = &scan.matches[1..];
                    Some(w)
                }
                (None, Some(w), _) => Some(w),
                (None, None, Some((w, _, was_entry))) => {
                    entries -= u64::from(was_entry);
                    self.count(p.set, layout::C_EVICTIONS);
                    Some(w)
                }
                (None, None, None) => {
                    // Every way is held by a writer that may still be alive: give up,
                    // and count it, as a capability write does.
                    self.count(p.set, layout::C_ABANDONED);
                    None
                }
            };
            if let Some(w) = target {
                let stamp = self.tick(p.set);
                let wrote = self.slot(p.set, w).write_kind(
                    Kind::HoldDown,
                    p.digest,
                    h.since,
                    &p.bytes,
                    &h.encode(),
                    stamp,
                    scan.versions[w],
                    lock.word(),
                    self.next_version(p.set),
                );
                if !wrote {
                    // The set was taken over from this writer meanwhile.
                    self.count(p.set, layout::C_ABANDONED);
                }
            }
        }
        for &w in dups {
            let slot = self.slot(p.set, w);
            if !slot.clear(scan.versions[w], lock.word(), self.next_version(p.set)) {
                self.count(p.set, layout::C_ABANDONED);
            }
        }
        self.set_used(p.set, entries);
        new
    }

    fn for_each_hold_down(&self, f: &mut dyn FnMut(&PeerKey, &HoldDown)) {
        for set in 0..self.geometry.sets as usize {
            for way in 0..self.ways() {
                let Read::Record(r) = self.slot(set, way).read(None) else {
                    continue;
                };
                if r.kind() != Kind::HoldDown {
                    continue;
                }
                let (Ok(key), Some(h)) = (PeerKey::from_bytes(r.key()), HoldDown::decode(r.caps()))
                else {
                    continue;
                };
                f(&key, &h);
            }
        }
    }

    fn clear_hold_downs(&self) {
        for set in 0..self.geometry.sets as usize {
            let held = (0..self.ways()).any(|w| {
                matches!(self.slot(set, w).read(None), Read::Record(r) if r.kind() == Kind::HoldDown)
            });
            if !held {
                continue;
            }
            let lock = self.lock(set);
            for way in 0..self.ways() {
                let slot = self.slot(set, way);
                if let Read::Record(r) = slot.read(None) {
                    if r.kind() == Kind::HoldDown {
                        slot.clear(r.version, lock.word(), self.next_version(set));
                    }
                }
            }
        }
    }

    fn count_hold_down_entered(&self) {
        self.hold_counter(C_HOLD_DOWNS)
            .fetch_add(1, Ordering::Relaxed);
    }

    fn count_early_skipped(&self) {
        self.hold_counter(C_EARLY_SKIPPED)
            .fetch_add(1, Ordering::Relaxed);
    }

    fn hold_down_counters(&self) -> (u64, u64) {
        let sum = |c: usize| {
            (0..STATS_STRIPES).fold(0u64, |a, s| {
                a.wrapping_add(
                    self.map
                        .word(STATS_OFFSET + s * STATS_STRIPE_SIZE + c * 8)
                        .load(Ordering::Relaxed),
                )
            })
        };
        (sum(C_HOLD_DOWNS), sum(C_EARLY_SKIPPED))
    }
}
