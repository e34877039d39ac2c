//! The store's open path on arbitrary file contents: the input (after one choice byte)
//! is the whole file. Opening must fail with a clear error or give a cache whose every
//! operation works; with rebuild-if-invalid, a bad file is replaced by a working one.
//! "Works" allows for what the file may legitimately say: a learn whose set has every
//! way held by a writer that may be alive (an odd slot version naming a live process,
//! or any process once the file's foreign-pid-namespace flag is set) is abandoned and
//! counted in `writes_abandoned`, and then is not found.
//!
//! Offsets are those of format version 2 (docs/FILE_STORE.md): header 4096 bytes (ways
//! at 20, pid namespace word at 64, flags word at 72), each set a 64-byte set header
//! (lock word first) followed by `ways` slots of 768 bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pipeconnect::cache::file::StoreOptions;
use pipeconnect::{Cache, Capabilities, ParseOptions, PeerKey, TlsState};
use pipeconnect_fuzz::Cursor;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

fn scratch() -> PathBuf {
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    base.join(format!("pipeconnect-fuzz-open-{}", std::process::id()))
}

const HEADER_SIZE: usize = 4096;
const SET_HEADER_SIZE: usize = 64;
const SLOT_SIZE: usize = 768;
const MAX_WAYS: usize = 64;

/// The file with the set lock words of format version 2 cleared. A lock word naming a
/// live process (pid 1 is one) is waited out for half a second by design, which would
/// slow every input that holds one to two executions a second; the lock has its own
/// tests (tests/store_stress.rs, tests/store_hostile.rs).
fn without_locks(file: &[u8]) -> Vec<u8> {
    let mut f = file.to_vec();
    if f.len() < 24 || &f[..8] != b"PIPECSTO" {
        return f;
    }
    let ways = u32::from_le_bytes([f[20], f[21], f[22], f[23]]) as usize;
    let stride = SET_HEADER_SIZE + ways.min(MAX_WAYS) * SLOT_SIZE;
    let mut off = HEADER_SIZE;
    while off + 8 <= f.len() {
        f[off..off + 8].fill(0);
        off += stride;
    }
    f
}

fuzz_target!(|data: &[u8]| {
    let mut c = Cursor::new(data);
    let mode = c.u8();
    let file = without_locks(c.rest());
    let path = scratch();
    let _ = std::fs::remove_file(&path);
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .expect("scratch file");
        f.write_all(&file).expect("write");
    }
    let options = StoreOptions {
        // A rebuild makes a file of the asked geometry: keep it small.
        sets: if mode & 5 != 0 { 1 } else { 0 },
        ways: if mode & 6 != 0 { 2 } else { 0 },
        rebuild_if_invalid: mode & 4 != 0,
        ..StoreOptions::default()
    };
    let inspected = pipeconnect::cache::file::inspect(&path);
    match Cache::open_file(&path, &options) {
        Ok(cache) => {
            if !options.rebuild_if_invalid {
                assert!(inspected.is_ok(), "opened what inspect refused");
            }
            for (k, e, _) in cache.entries() {
                let _ = cache.lookup(&k);
                let _ = e.caps.encode();
            }
            let key = PeerKey::parse("192.0.2.7", 25, TlsState::Cleartext).unwrap();
            let caps = Capabilities::parse_ehlo(
                b"250-mx\r\n250-PIPELINING\r\n250 PIPECONNECT\r\n",
                ParseOptions::default(),
            )
            .unwrap();
            // The shared counters are the file's (any value; sums wrap): compare, not order.
            let abandoned = cache.stats().writes_abandoned;
            cache.learn(&key, caps.clone());
            match cache.lookup(&key) {
                Some(got) => {
                    assert_eq!(got.caps, caps);
                    assert!(cache.forget(&key));
                    assert!(cache.lookup(&key).is_none(), "forgotten key still found");
                }
                None => assert!(
                    cache.stats().writes_abandoned != abandoned,
                    "a learned key not found, and no write abandoned"
                ),
            }
            let _ = cache.note_early_refused(&key);
            let _ = cache.held_down(&key);
            let _ = cache.hold_downs();
            let _ = cache.stats();
        }
        Err(e) => {
            assert!(!e.message().is_empty());
        }
    }
    let _ = std::fs::remove_file(&path);
});
