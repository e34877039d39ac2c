//! Slot decoding: a valid store file (1 set of 1 to 4 ways) whose slots hold
//! fuzzer-chosen words, with the slot checksum made valid (anyone who may write the file
//! may write a valid checksum, so nothing behind it may be trusted either). Listing,
//! looking up, learning and forgetting must neither crash nor return a record whose key
//! or capabilities do not decode, nor a hold-down record that does not decode; a learn
//! is found afterwards unless the store counted the write as abandoned (every way held
//! by a writer that may be alive: a fuzzer-chosen odd version naming a live process).
//!
//! The slot layout written here is the store's format version 2 (docs/FILE_STORE.md;
//! src/cache/file/layout.rs and slot.rs): version, last use, checksum (over the digest
//! to the end of the data), digest, learned-at, lengths (key | record << 16 | kind << 32,
//! kind 0 a capability entry, 1 a hold-down record), data. The crate keeps its layout
//! private, so the constants and the checksum are mirrored here; a seed that decodes
//! (fuzz/seeds/store_slot/) shows they still match.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeconnect::cache::file::{FileBackend, StoreOptions};
use pipeconnect::cache::HoldDown;
use pipeconnect::{Cache, Capabilities, ParseOptions, PeerKey, TlsState};
use pipeconnect_fuzz::Cursor;
use std::path::PathBuf;

const HEADER_SIZE: usize = 4096;
const SET_HEADER_SIZE: usize = 64;

/// Prepended to a key's canonical bytes for a hold-down record's digest.
const HOLD_DOWN_TAG: &[u8] = b"pipeconnect hold-down\0";
/// Record kinds (bits 32..40 of the lengths word).
const KIND_ENTRY: u64 = 0;
const KIND_HOLD_DOWN: u64 = 1;

/// FNV-1a 64 (the store's key digest).
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// The store's slot checksum (format version 2, unchanged from 1).
fn checksum_words(words: &[u64]) -> u64 {
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

fn scratch() -> PathBuf {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    base.join(format!("pipeconnect-fuzz-slot-{}", std::process::id()))
}

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let ways = 1 + (c.u8() % 4) as u32;
    let path = scratch();
    let _ = std::fs::remove_file(&path);
    let options = StoreOptions {
        sets: 1,
        ways,
        ..StoreOptions::default()
    };
    let slot_size = {
        let b = FileBackend::open(&path, &options).expect("new store");
        b.info().slot_size as usize
    };
    let mut file = std::fs::read(&path).expect("read store");
    let slot_words = slot_size / 8;
    for way in 0..ways as usize {
        if c.is_empty() {
            break;
        }
        let off = HEADER_SIZE + SET_HEADER_SIZE + way * slot_size;
        let mut w = vec![0u64; slot_words];
        let flags = c.u8();
        let body = c.slice(slot_size);
        // The data bytes: the fuzzer's, or a real key followed by the fuzzer's bytes as
        // the capability record.
        let (key_bytes, caps_bytes): (Vec<u8>, Vec<u8>) = if flags & 1 != 0 {
            let key = PeerKey::parse("192.0.2.7", 25, TlsState::Cleartext).unwrap();
            (key.canonical_bytes(), body.to_vec())
        } else {
            let k = (c.u16() as usize).min(body.len());
            (body[..k].to_vec(), body[k..].to_vec())
        };
        let mut bytes = key_bytes.clone();
        bytes.extend_from_slice(&caps_bytes);
        bytes.truncate((slot_words - 6) * 8);
        // The kind: an entry, a hold-down record, or a fuzzer-chosen (mostly unknown) one.
        let kind = match flags >> 5 {
            0..=3 => KIND_ENTRY,
            4..=6 => KIND_HOLD_DOWN,
            _ => c.u8() as u64,
        };
        let lens = if flags & 2 != 0 {
            c.u64()
        } else {
            key_bytes.len() as u64 | (caps_bytes.len() as u64) << 16 | kind << 32
        };
        let digest = if flags & 4 != 0 {
            c.u64()
        } else if kind == KIND_HOLD_DOWN {
            fnv1a(&[HOLD_DOWN_TAG, &key_bytes])
        } else {
            PeerKey::from_bytes(&key_bytes).map_or(0, |k| k.digest())
        };
        w[0] = if flags & 8 != 0 { c.u64() } else { 2 };
        w[1] = c.u64();
        w[3] = digest;
        w[4] = c.u64();
        w[5] = lens;
        for (i, chunk) in bytes.chunks(8).enumerate() {
            let mut a = [0u8; 8];
            a[..chunk.len()].copy_from_slice(chunk);
            w[6 + i] = u64::from_le_bytes(a);
        }
        let key_len = (lens & 0xffff) as usize;
        let caps_len = ((lens >> 16) & 0xffff) as usize;
        let n = (6 + (key_len + caps_len).div_ceil(8)).min(slot_words);
        w[2] = if flags & 16 != 0 {
            c.u64()
        } else {
            checksum_words(&w[3..n])
        };
        for (i, x) in w.iter().enumerate() {
            file[off + i * 8..off + i * 8 + 8].copy_from_slice(&x.to_ne_bytes());
        }
    }
    std::fs::write(&path, &file).expect("write store");
    let cache = Cache::open_file(&path, &options).expect("a valid header opens");
    if std::env::var_os("FUZZ_DEBUG").is_some() {
        // Whether the layout mirrored here still matches the store's: run the seeds
        // with FUZZ_DEBUG=1 and see their records listed.
        eprintln!(
            "ways {ways}: entries {:?} hold-downs {:?}",
            cache.entries(),
            cache.hold_downs()
        );
    }
    for (k, e, _) in cache.entries() {
        // What was listed decoded; looking it up must not crash (it may be expired).
        let _ = cache.lookup(&k);
        let enc = e.caps.encode();
        assert_eq!(Capabilities::decode(&enc).as_ref(), Ok(&e.caps));
    }
    for (k, h, _) in cache.hold_downs() {
        assert!(
            h.level >= 1 && h.since <= h.until,
            "a malformed hold-down listed: {h:?}"
        );
        assert_eq!(HoldDown::decode(&h.encode()), Some(h));
        let _ = cache.held_down(&k);
    }
    let key = PeerKey::parse("192.0.2.7", 25, TlsState::Cleartext).unwrap();
    let _ = cache.lookup(&key);
    let _ = cache.held_down(&key);
    let abandoned = cache.stats().writes_abandoned;
    if cache.note_early_refused(&key) && cache.stats().writes_abandoned == abandoned {
        assert!(
            cache.held_down(&key).is_some(),
            "a hold-down entered and not found"
        );
    }
    cache.note_early_success(&key);
    let caps = Capabilities::parse_ehlo(
        b"250-mx\r\n250-PIPELINING\r\n250 PIPECONNECT\r\n",
        ParseOptions::default(),
    )
    .unwrap();
    // The shared counters are the file's (any value; sums wrap): compare, not order.
    let abandoned = cache.stats().writes_abandoned;
    cache.learn(&key, caps.clone());
    match cache.lookup(&key) {
        Some(e) => assert_eq!(e.caps, caps),
        None => assert!(
            cache.stats().writes_abandoned != abandoned,
            "a learned key not found, and no write abandoned"
        ),
    }
    cache.forget(&key);
    assert!(cache.lookup(&key).is_none(), "forgotten key still found");
    let _ = cache.stats();
    let _ = std::fs::remove_file(&path);
});
