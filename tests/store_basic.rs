//! The file store behaves as the in-process cache does, across processes and across
//! fork().

mod common;

use pipeconnect::cache::file::{inspect, StoreError, StoreOptions};
use pipeconnect::cache::{Cache, CacheConfig, Learned};
use pipeconnect::{Capabilities, ParseOptions, PeerKey, TlsState};
use std::net::IpAddr;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

const T0: u64 = 1_700_000_000;

fn scratch(name: &str) -> PathBuf {
    common::scratch(&format!("store-basic-{name}"))
}

fn small() -> StoreOptions {
    StoreOptions {
        sets: 64,
        ways: 4,
        ..StoreOptions::default()
    }
}

fn caps(extra: &str) -> Capabilities {
    let reply = format!(
        "250-mx.example\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-AUTH PLAIN\r\n\
         {extra}250 PIPECONNECT\r\n"
    );
    Capabilities::parse_ehlo(reply.as_bytes(), ParseOptions::default()).unwrap()
}

/// A record without AUTH: the shortest encoding there is.
fn bare_caps() -> Capabilities {
    Capabilities::parse_ehlo(
        b"250-mx.example\r\n250-PIPELINING\r\n250 PIPECONNECT\r\n",
        ParseOptions::default(),
    )
    .unwrap()
}

#[test]
fn the_shortest_record_round_trips() {
    let d = scratch("bare");
    let c = Cache::open_file(&d.join("store"), &small()).unwrap();
    let k = key("192.0.2.4", 25, TlsState::Cleartext);
    c.clock().set(T0);
    assert_eq!(c.learn(&k, bare_caps()), Learned::Stored);
    assert_eq!(c.lookup(&k).map(|e| e.caps), Some(bare_caps()));
    std::fs::remove_dir_all(&d).unwrap();
}

fn plain_caps() -> Capabilities {
    Capabilities::parse_ehlo(
        b"250-mx.example\r\n250 PIPELINING\r\n",
        ParseOptions::default(),
    )
    .unwrap()
}

fn key(addr: &str, port: u16, tls: TlsState) -> PeerKey {
    PeerKey::parse(addr, port, tls).unwrap()
}

/// One scenario, run on any cache; returns what was observed.
fn scenario(c: &Cache) -> Vec<String> {
    let mut log = Vec::new();
    c.clock().set(T0);
    let k = key("192.0.2.1", 25, TlsState::Cleartext);
    let v6 = key("[2001:db8::1]", 25, TlsState::Encrypted);
    log.push(format!("{:?}", c.learn(&k, caps(""))));
    log.push(format!("{:?}", c.learn(&v6, caps("250-CHUNKING\r\n"))));
    let probes = [
        k.clone(),
        k.in_state(TlsState::Encrypted),
        key("192.0.2.1", 587, TlsState::Cleartext),
        key("192.0.2.2", 25, TlsState::Cleartext),
        k.clone().with_local("198.51.100.1").unwrap(),
        k.clone().with_ehlo_name("client.example").unwrap(),
        key("2001:0db8:0:0::1", 25, TlsState::Encrypted),
        key("::ffff:192.0.2.1", 25, TlsState::Cleartext),
    ];
    for p in &probes {
        log.push(format!("{p} -> {:?}", c.lookup(p)));
    }
    log.push(format!("{:?}", c.learn(&k, plain_caps())));
    log.push(format!("{:?}", c.lookup(&k)));
    log.push(format!("{:?}", c.learn(&k, plain_caps())));
    log.push(format!("{:?}", c.learn(&k, caps("250-DSN\r\n"))));
    c.clock().set(T0 + 10);
    log.push(format!("{:?}", c.learn(&k, caps("250-PRDR\r\n"))));
    log.push(format!("{:?}", c.lookup(&k)));
    log.push(format!("forget {}", c.forget(&v6)));
    log.push(format!("forget {}", c.forget(&v6)));
    log.push(format!("{:?}", c.stats()));
    c.clear();
    log.push(format!("{:?}", c.lookup(&k)));
    log.push(format!("{:?}", c.stats().entries));
    log
}

#[test]
fn same_answers_as_the_in_process_cache() {
    let d = scratch("same");
    let file = Cache::open_file(&d.join("store"), &small()).unwrap();
    let mem = Cache::in_memory(CacheConfig::default());
    let a = scenario(&file);
    let b = scenario(&mem);
    assert_eq!(a, b);
    // And the scenario says what it should.
    assert_eq!(a[0], "Stored");
    assert!(a[2].contains("Some(Entry"), "{}", a[2]);
    assert!(a[2].contains("learned_at: 1700000000"), "{}", a[2]);
    for miss in &a[3..7] {
        assert!(miss.ends_with("-> None"), "{miss}");
    }
    assert!(
        a[8].contains("Some(Entry"),
        "IPv6 spellings are one key: {}",
        a[8]
    );
    assert!(a[9].contains("Some(Entry"), "IPv4-mapped is IPv4: {}", a[9]);
    assert_eq!(a[10], "NotCached(true)");
    assert_eq!(a[11], "None");
    assert_eq!(a[12], "NotCached(false)");
    assert!(a[15].contains("learned_at: 1700000010"), "{}", a[15]);
    assert_eq!(a[16], "forget true");
    assert_eq!(a[17], "forget false");
    assert_eq!(a[20], "0");
    let s = file.stats();
    assert_eq!((s.hits, s.inserts, s.invalidations), (4, 4, 2));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn ttl_with_a_pinned_clock() {
    let d = scratch("ttl");
    let c = Cache::open_file(
        &d.join("store"),
        &StoreOptions {
            ttl_secs: 100,
            ..small()
        },
    )
    .unwrap();
    assert_eq!(c.ttl_secs(), 100);
    let k = key("192.0.2.9", 25, TlsState::Encrypted);
    c.clock().set(T0);
    c.learn(&k, caps(""));
    c.clock().set(T0 + 99);
    assert_eq!(c.lookup(&k).unwrap().learned_at, T0);
    c.clock().set(T0 + 100);
    assert_eq!(c.lookup(&k), None);
    let s = c.stats();
    assert_eq!((s.hits, s.misses, s.expirations, s.entries), (1, 1, 1, 0));
    // The expired entry was removed, not only hidden.
    c.clock().set(T0);
    assert_eq!(c.lookup(&k), None);

    // A record learned "in the future" (a clock that went back) is not trusted.
    c.clock().set(T0 + 10_000);
    c.learn(&k, caps(""));
    c.clock().set(T0 + 10_000 - 301);
    assert_eq!(c.lookup(&k), None);
    c.clock().set(T0 + 10_000 - 299);
    assert_eq!(c.lookup(&k), None, "removed by the previous lookup");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn reopen_keeps_entries_and_counters() {
    let d = scratch("reopen");
    let path = d.join("store");
    let k = key("192.0.2.3", 2525, TlsState::Cleartext);
    {
        let c = Cache::open_file(&path, &small()).unwrap();
        c.clock().set(T0);
        assert_eq!(c.learn(&k, caps("250-8BITMIME\r\n")), Learned::Stored);
        assert!(c.lookup(&k).is_some());
    }
    let c = Cache::open_file(&path, &StoreOptions::default()).unwrap();
    c.clock().set(T0 + 1);
    let e = c.lookup(&k).unwrap();
    assert_eq!(e.caps, caps("250-8BITMIME\r\n"));
    assert_eq!(e.learned_at, T0);
    let s = c.stats();
    assert_eq!((s.hits, s.inserts, s.entries), (2, 1, 1));
    let info = inspect(&path).unwrap();
    assert_eq!((info.sets, info.ways, info.capacity), (64, 4, 256));
    assert_eq!(info.file_size, std::fs::metadata(&path).unwrap().len());
    assert!(info.created_at > T0 - 10_000_000);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn entries_and_forget_server() {
    let d = scratch("forget-server");
    let c = Cache::open_file(&d.join("store"), &small()).unwrap();
    c.clock().set(T0);
    let base = key("192.0.2.1", 25, TlsState::Cleartext);
    let same_server = [
        base.clone(),
        base.in_state(TlsState::Encrypted),
        base.clone().with_local("198.51.100.7").unwrap(),
        base.clone().with_ehlo_name("out.example").unwrap(),
    ];
    let other_port = key("192.0.2.1", 587, TlsState::Cleartext);
    let other_server = key("192.0.2.2", 25, TlsState::Cleartext);
    let v6 = key("2001:db8::25", 25, TlsState::Encrypted);
    for k in same_server.iter().chain([&other_port, &other_server, &v6]) {
        assert_eq!(c.learn(k, caps("")), Learned::Stored);
    }
    let listed = c.entries();
    assert_eq!(listed.len(), 7);
    assert!(listed
        .iter()
        .all(|(_, e, live)| *live && e.learned_at == T0));
    assert!(listed.iter().any(|(k, _, _)| k == &same_server[3]));

    assert_eq!(c.forget_server("192.0.2.1".parse().unwrap(), Some(25)), 4);
    for k in &same_server {
        assert_eq!(c.lookup(k), None);
    }
    assert!(c.lookup(&other_port).is_some());
    // The IPv4-mapped spelling names the same server.
    let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
    assert_eq!(c.forget_server(mapped, None), 1);
    assert_eq!(c.lookup(&other_port), None);
    assert!(c.lookup(&other_server).is_some());
    assert_eq!(
        c.forget_server("2001:db8::25".parse().unwrap(), Some(26)),
        0
    );
    assert_eq!(c.forget_server("2001:db8::25".parse().unwrap(), None), 1);
    assert_eq!(c.stats().invalidations, 6);
    assert_eq!(c.stats().entries, 1);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn new_files_get_the_configured_mode_whatever_the_umask() {
    let d = scratch("mode");
    // SAFETY: umask only changes this process's file creation mask.
    let old = unsafe { libc::umask(0o077) };
    let a = Cache::open_file(
        &d.join("a"),
        &StoreOptions {
            mode: 0o640,
            ..small()
        },
    );
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    a.unwrap();
    let b = Cache::open_file(&d.join("b"), &small()).unwrap();
    drop(b);
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode(&d.join("a")), 0o640);
    assert_eq!(mode(&d.join("b")), 0o600);
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn options_out_of_range_are_refused() {
    let d = scratch("options");
    let p = d.join("store");
    for bad in [
        StoreOptions {
            mode: 0o666,
            ..small()
        },
        StoreOptions {
            mode: 0o400,
            ..small()
        },
        StoreOptions {
            mode: 0o4600,
            ..small()
        },
        StoreOptions {
            mode: 0o700,
            ..small()
        },
        StoreOptions {
            sets: u32::MAX,
            ..small()
        },
        StoreOptions {
            ways: 65,
            ..small()
        },
        StoreOptions {
            sets: 1 << 20,
            ways: 64,
            ..small()
        },
    ] {
        assert_eq!(
            Cache::open_file(&p, &bad).err(),
            Some(StoreError::InvalidOptions),
            "{bad:?}"
        );
    }
    assert!(!p.exists());
    assert_eq!(
        Cache::open_file(Path::new(""), &small()).err(),
        Some(StoreError::InvalidOptions)
    );
    assert!(matches!(
        Cache::open_file(&d.join("no/such/dir/store"), &small()).err(),
        Some(StoreError::Io(libc::ENOENT))
    ));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn geometry_zero_means_the_files_own_and_defaults_for_new_files() {
    let d = scratch("geometry");
    let p = d.join("store");
    drop(Cache::open_file(&p, &StoreOptions::default()).unwrap());
    let info = inspect(&p).unwrap();
    assert_eq!((info.sets, info.ways), (4096, 8));
    assert_eq!(info.file_size, 4096 + 4096 * (64 + 8 * 768));
    let q = d.join("small");
    drop(Cache::open_file(&q, &small()).unwrap());
    assert!(Cache::open_file(&q, &StoreOptions::default()).is_ok());
    assert!(Cache::open_file(
        &q,
        &StoreOptions {
            sets: 64,
            ..StoreOptions::default()
        }
    )
    .is_ok());
    assert_eq!(
        Cache::open_file(
            &q,
            &StoreOptions {
                ways: 8,
                ..StoreOptions::default()
            }
        )
        .err(),
        Some(StoreError::Geometry)
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn racing_creators_share_one_file() {
    let d = scratch("race");
    let p = Arc::new(d.join("store"));
    let barrier = Arc::new(std::sync::Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let p = p.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let c = Cache::open_file(&p, &small()).unwrap();
                c.clock().set(T0);
                let k = key(&format!("192.0.2.{}", 10 + i), 25, TlsState::Cleartext);
                assert_eq!(c.learn(&k, caps("")), Learned::Stored);
                c
            })
        })
        .collect();
    let caches: Vec<Cache> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    // Every handle sees every other's entry: they share one file.
    for c in &caches {
        c.clock().set(T0);
        for i in 0..8 {
            let k = key(&format!("192.0.2.{}", 10 + i), 25, TlsState::Cleartext);
            assert!(c.lookup(&k).is_some(), "192.0.2.{}", 10 + i);
        }
    }
    let names: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "no temporary files left: {names:?}");
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn threads_share_one_handle() {
    let d = scratch("threads");
    let c = Arc::new(Cache::open_file(&d.join("store"), &small()).unwrap());
    c.clock().set(T0);
    let hs: Vec<_> = (0..4u8)
        .map(|t| {
            let c = c.clone();
            std::thread::spawn(move || {
                let mut misses = 0;
                for i in 0..2000u32 {
                    let k = key(
                        &format!("10.{t}.{}.{}", (i / 50) % 256, i % 50),
                        25,
                        TlsState::Cleartext,
                    );
                    c.learn(&k, caps(""));
                    match c.lookup(&k) {
                        Some(e) => assert_eq!(e.caps, caps("")),
                        None => misses += 1,
                    }
                }
                assert!(misses < 100, "{misses} of 2000 just-learned keys missing");
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let s = c.stats();
    assert_eq!(s.inserts, 8000);
    assert!(s.entries <= 256);
    assert_eq!(s.entries + s.evictions, 8000, "{s:?}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// The child side of `learned_in_one_process_hit_in_another`: runs only when the parent
/// test starts this binary with the variables set.
#[test]
fn child_role() {
    let Ok(role) = std::env::var("PIPECONNECT_STORE_ROLE") else {
        return;
    };
    let path = PathBuf::from(std::env::var("PIPECONNECT_STORE_PATH").unwrap());
    let c = Cache::open_file(&path, &StoreOptions::default()).unwrap();
    c.clock().set(T0 + 5);
    let k = key("192.0.2.77", 25, TlsState::Encrypted);
    let code = match role.as_str() {
        "lookup" => match c.lookup(&k) {
            Some(e) if e.caps == caps("250-DSN\r\n") && e.learned_at == T0 => 0,
            Some(_) => 3,
            None => 2,
        },
        "learn" => {
            c.learn(&k.in_state(TlsState::Cleartext), caps(""));
            0
        }
        _ => 9,
    };
    std::process::exit(code);
}

fn run_child(role: &str, path: &Path) -> i32 {
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["child_role", "--exact", "--test-threads=1", "--nocapture"])
        .env("PIPECONNECT_STORE_ROLE", role)
        .env("PIPECONNECT_STORE_PATH", path)
        .status()
        .unwrap();
    status.code().unwrap_or(-1)
}

#[test]
fn learned_in_one_process_hit_in_another() {
    let d = scratch("processes");
    let path = d.join("store");
    let c = Cache::open_file(&path, &small()).unwrap();
    c.clock().set(T0);
    let k = key("192.0.2.77", 25, TlsState::Encrypted);
    assert_eq!(run_child("lookup", &path), 2, "nothing learned yet: a miss");
    c.learn(&k, caps("250-DSN\r\n"));
    assert_eq!(run_child("lookup", &path), 0, "the other process hits");
    assert_eq!(run_child("learn", &path), 0);
    assert_eq!(
        c.lookup(&k.in_state(TlsState::Cleartext))
            .map(|e| e.learned_at),
        Some(T0 + 5),
        "what the other process learned is seen here"
    );
    let s = c.stats();
    assert_eq!(
        (s.hits, s.misses, s.inserts),
        (2, 1, 2),
        "counters are shared: {s:?}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_handle_survives_fork() {
    let d = scratch("fork");
    let c = Cache::open_file(&d.join("store"), &small()).unwrap();
    c.clock().set(T0);
    let before = key("192.0.2.50", 25, TlsState::Cleartext);
    let from_child = key("192.0.2.51", 25, TlsState::Cleartext);
    c.learn(&before, caps(""));
    // SAFETY: the child only uses the cache and leaves with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let code = match c.lookup(&before) {
            Some(e) if e.learned_at == T0 => {
                c.learn(&from_child, caps("250-CHUNKING\r\n"));
                if c.forget(&before) {
                    0
                } else {
                    4
                }
            }
            Some(_) => 3,
            None => 2,
        };
        // SAFETY: leave the child without running the parent's exit handlers.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(libc::WIFEXITED(status));
    assert_eq!(libc::WEXITSTATUS(status), 0);
    assert_eq!(c.lookup(&before), None, "the child's forget is seen");
    assert_eq!(
        c.lookup(&from_child).map(|e| e.caps),
        Some(caps("250-CHUNKING\r\n"))
    );
    // The parent keeps writing after the fork, too.
    c.learn(&before, caps(""));
    assert!(c.lookup(&before).is_some());
    assert_eq!(
        std::fs::metadata(d.join("store")).unwrap().nlink(),
        1,
        "one file, still in place"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn eviction_takes_the_entry_used_longest_ago() {
    let d = scratch("lru");
    let c = Cache::open_file(
        &d.join("store"),
        &StoreOptions {
            sets: 1,
            ways: 2,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    c.clock().set(T0);
    let (a, b, x) = (
        key("192.0.2.1", 25, TlsState::Cleartext),
        key("192.0.2.2", 25, TlsState::Cleartext),
        key("192.0.2.3", 25, TlsState::Cleartext),
    );
    c.learn(&a, caps(""));
    c.learn(&b, caps(""));
    assert!(c.lookup(&a).is_some()); // a is now the most recent
    c.learn(&x, caps(""));
    assert!(c.lookup(&a).is_some());
    assert_eq!(c.lookup(&b), None, "b was used longest ago");
    assert!(c.lookup(&x).is_some());
    // Replacing an entry is not an eviction.
    c.learn(&x, caps("250-DSN\r\n"));
    let s = c.stats();
    assert_eq!((s.entries, s.evictions, s.inserts), (2, 1, 4));
    std::fs::remove_dir_all(&d).unwrap();
}
