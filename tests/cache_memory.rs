//! The in-process cache: LRU bound, TTL through the one clock, stats, threads.

use pipeconnect::cache::{Cache, CacheConfig, Learned};
use pipeconnect::caps::{Capabilities, ParseOptions};
use pipeconnect::key::{PeerKey, TlsState};
use std::sync::Arc;

const EXIM: &[u8] = b"250-mx.test.example Hello\r\n250-SIZE 52428800\r\n250-PIPELINING\r\n\
250-PIPECONNECT\r\n250-AUTH PLAIN\r\n250-CHUNKING\r\n250 STARTTLS\r\n";

fn caps() -> Capabilities {
    Capabilities::parse_ehlo(EXIM, ParseOptions::default()).unwrap()
}

fn key(i: u32) -> PeerKey {
    let a = std::net::Ipv4Addr::from(0xc000_0200 + i);
    PeerKey::new(a.into(), 25, TlsState::Cleartext).unwrap()
}

#[test]
fn capacity_bounds_the_entries_and_evictions_are_counted() {
    let c = Cache::in_memory(CacheConfig {
        capacity: 64,
        shards: 4,
        ..CacheConfig::default()
    });
    for i in 0..10_000 {
        assert_eq!(c.learn(&key(i), caps()), Learned::Stored);
    }
    let s = c.stats();
    assert!(s.entries <= 64, "{s:?}");
    assert_eq!(s.inserts, 10_000);
    assert_eq!(s.evictions, 10_000 - s.entries);
    // The most recent keys survive.
    assert!(c.lookup(&key(9_999)).is_some());
    assert!(c.lookup(&key(0)).is_none());
}

#[test]
fn ttl_counts_from_learning_not_from_use() {
    let c = Cache::in_memory(CacheConfig {
        ttl_secs: 100,
        ..CacheConfig::default()
    });
    c.clock().set(1_000);
    c.learn(&key(1), caps());
    c.clock().set(1_099);
    assert_eq!(c.lookup(&key(1)).unwrap().learned_at, 1_000);
    c.clock().set(1_100);
    assert!(c.lookup(&key(1)).is_none());
    let s = c.stats();
    assert_eq!((s.hits, s.misses, s.expirations, s.entries), (1, 1, 1, 0));
}

#[test]
fn an_entry_from_the_future_is_not_trusted() {
    let c = Cache::in_memory(CacheConfig::default());
    c.clock().set(1_000_000);
    c.learn(&key(1), caps());
    c.clock().set(1_000_000 - 301);
    assert!(c.lookup(&key(1)).is_none(), "learned 301 s in the future");
}

#[test]
fn replacing_an_entry_is_not_an_eviction() {
    let c = Cache::in_memory(CacheConfig::default());
    c.learn(&key(1), caps());
    c.learn(&key(1), caps());
    let s = c.stats();
    assert_eq!((s.entries, s.inserts, s.evictions), (1, 2, 0));
}

#[test]
fn a_reply_without_pipeconnect_removes_the_entry() {
    let c = Cache::in_memory(CacheConfig::default());
    c.learn(&key(1), caps());
    let plain =
        Capabilities::parse_ehlo(b"250-mx\r\n250 PIPELINING\r\n", ParseOptions::default()).unwrap();
    assert_eq!(c.learn(&key(1), plain.clone()), Learned::NotCached(true));
    assert_eq!(c.learn(&key(1), plain), Learned::NotCached(false));
    assert!(c.lookup(&key(1)).is_none());
    assert_eq!(c.stats().invalidations, 1);
}

#[test]
fn forget_clear_and_entries() {
    let c = Cache::in_memory(CacheConfig::default());
    for i in 0..5 {
        c.learn(&key(i), caps());
    }
    assert!(c.forget(&key(0)));
    assert!(!c.forget(&key(0)));
    assert_eq!(c.entries().len(), 4);
    assert!(c.entries().iter().all(|(_, _, live)| *live));
    c.clear();
    assert_eq!(c.stats().entries, 0);
}

#[test]
fn many_threads_at_once_agree_with_one() {
    let c = Arc::new(Cache::in_memory(CacheConfig::default()));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let c = Arc::clone(&c);
            std::thread::spawn(move || {
                for i in 0..2_000 {
                    let k = key(t * 10_000 + i);
                    c.learn(&k, caps());
                    assert!(c.lookup(&k).is_some());
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = c.stats();
    assert_eq!((s.entries, s.inserts, s.hits), (8_000, 8_000, 8_000));
}

#[test]
fn forget_server_drops_every_state_and_port_of_one_address() {
    let c = Cache::in_memory(CacheConfig::default());
    let k = PeerKey::parse("192.0.2.9", 25, TlsState::Cleartext).unwrap();
    c.learn(&k, caps());
    c.learn(&k.in_state(TlsState::Encrypted), caps());
    c.learn(
        &PeerKey::parse("192.0.2.9", 587, TlsState::Cleartext).unwrap(),
        caps(),
    );
    c.learn(&key(1), caps());
    let mapped: std::net::IpAddr = "::ffff:192.0.2.9".parse().unwrap();
    assert_eq!(c.forget_server(mapped, Some(25)), 2);
    assert_eq!(c.forget_server(mapped, None), 1);
    assert_eq!(c.stats().entries, 1);
}
