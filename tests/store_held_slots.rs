//! A store whose every way is held by a writer that may still be alive (an odd slot
//! version naming a live process): writes give up and say so in `writes_abandoned`,
//! for capability entries and hold-down records alike (found by the `store_slot` fuzz
//! target: a hold-down was given up without being counted).
use pipeconnect::cache::file::StoreOptions;
use pipeconnect::{Cache, Capabilities, ParseOptions, PeerKey, TlsState};
use std::path::PathBuf;

/// Where the first slot of set 0 starts: the 4096-byte header, the 64-byte set header.
const FIRST_SLOT: usize = 4096 + 64;

fn store_with_its_only_slot_held(name: &str) -> (PathBuf, StoreOptions) {
    let dir = std::env::temp_dir().join(format!("pc-held-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("store");
    let options = StoreOptions {
        sets: 1,
        ways: 1,
        ..StoreOptions::default()
    };
    drop(Cache::open_file(&path, &options).unwrap());
    let mut file = std::fs::read(&path).unwrap();
    // The slot's version: this (live) process's pid with an odd nonce, as a writer
    // stopped in the middle of its copy leaves it.
    let word = (std::process::id() as u64) << 32 | 1;
    file[FIRST_SLOT..FIRST_SLOT + 8].copy_from_slice(&word.to_ne_bytes());
    std::fs::write(&path, &file).unwrap();
    (path, options)
}

#[test]
fn a_hold_down_with_every_way_held_is_counted_abandoned() {
    let (path, options) = store_with_its_only_slot_held("hold");
    let cache = Cache::open_file(&path, &options).unwrap();
    let key = PeerKey::parse("192.0.2.7", 25, TlsState::Cleartext).unwrap();
    let before = cache.stats().writes_abandoned;
    cache.note_early_refused(&key);
    assert!(
        cache.held_down(&key).is_none(),
        "no way was free to hold it"
    );
    assert_eq!(cache.stats().writes_abandoned, before + 1);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn an_entry_with_every_way_held_is_counted_abandoned() {
    let (path, options) = store_with_its_only_slot_held("entry");
    let cache = Cache::open_file(&path, &options).unwrap();
    let key = PeerKey::parse("192.0.2.7", 25, TlsState::Cleartext).unwrap();
    let caps = Capabilities::parse_ehlo(
        b"250-mx\r\n250-PIPELINING\r\n250 PIPECONNECT\r\n",
        ParseOptions::default(),
    )
    .unwrap();
    let before = cache.stats().writes_abandoned;
    cache.learn(&key, caps);
    assert!(cache.lookup(&key).is_none(), "no way was free to store it");
    assert_eq!(cache.stats().writes_abandoned, before + 1);
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}
