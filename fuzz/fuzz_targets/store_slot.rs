//! Slot decoding: a valid store file (1 set of 1 to 4 ways) whose slots hold
//! fuzzer-chosen words, with the slot checksum made valid (anyone who may write the file
//! may write a valid checksum, so nothing behind it may be trusted either). Listing,
//! looking up, learning and forgetting must neither crash nor return a record whose key
//! or capabilities do not decode.
//!
//! The slot layout written here is the store's format version 1 (docs/FILE_STORE.md):
//! version, last use, checksum, digest, learned-at, lengths (key | caps << 16), data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeconnect::cache::file::{FileBackend, StoreOptions};
use pipeconnect::{Cache, Capabilities, ParseOptions, PeerKey, TlsState};
use pipeconnect_fuzz::Cursor;
use std::path::PathBuf;

const HEADER_SIZE: usize = 4096;
const SET_HEADER_SIZE: usize = 64;

/// The store's slot checksum (format version 1).
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
        let lens = if flags & 2 != 0 {
            c.u64()
        } else {
            key_bytes.len() as u64 | (caps_bytes.len() as u64) << 16
        };
        let digest = if flags & 4 != 0 {
            c.u64()
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
    for (k, e, _) in cache.entries() {
        // What was listed decoded; looking it up must not crash (it may be expired).
        let _ = cache.lookup(&k);
        let enc = e.caps.encode();
        assert_eq!(Capabilities::decode(&enc).as_ref(), Ok(&e.caps));
    }
    let key = PeerKey::parse("192.0.2.7", 25, TlsState::Cleartext).unwrap();
    let _ = cache.lookup(&key);
    let caps = Capabilities::parse_ehlo(
        b"250-mx\r\n250-PIPELINING\r\n250 PIPECONNECT\r\n",
        ParseOptions::default(),
    )
    .unwrap();
    cache.learn(&key, caps.clone());
    assert_eq!(cache.lookup(&key).expect("learned").caps, caps);
    cache.forget(&key);
    assert!(cache.lookup(&key).is_none(), "forgotten key still found");
    let _ = cache.stats();
    let _ = std::fs::remove_file(&path);
});
