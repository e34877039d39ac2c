//! The shared tier against a real Redis: two caches with their own stores share what one
//! learned; invalidation, TTL and hold-downs travel; a stopped, killed, restarted or
//! unreachable Redis never holds a lookup past its deadline; forged values are refused;
//! a forked child makes its own connection.
#![cfg(feature = "shared-redis")]

mod common;
mod redis_harness;

use pipeconnect::cache::file::StoreOptions;
use pipeconnect::cache::shared::SharedConfig;
use pipeconnect::cache::{Cache, CacheStats};
use pipeconnect::{Capabilities, ParseOptions, PeerKey, TlsState};
use redis_harness::{free_port, Redis};
use std::net::TcpListener;
use std::time::{Duration, Instant};

const DEADLINE_MS: u64 = 20;
/// What a loaded test machine may add to a deadline (scheduling, the local store).
const SLACK_MS: u64 = 40;

fn caps() -> Capabilities {
    Capabilities::parse_ehlo(
        b"250-mx.example\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 PIPECONNECT\r\n",
        ParseOptions::default(),
    )
    .unwrap()
}

fn key(n: u32) -> PeerKey {
    let ip = format!("192.0.2.{}", n % 250 + 1);
    PeerKey::parse(&ip, 25 + (n / 250) as u16, TlsState::Cleartext)
        .unwrap()
        .with_local("198.51.100.7")
        .unwrap()
}

fn config(prefix: &str) -> SharedConfig {
    SharedConfig {
        prefix: format!("test-{prefix}:"),
        deadline: Duration::from_millis(DEADLINE_MS),
        backoff: Duration::from_millis(300),
        ..SharedConfig::default()
    }
}

fn store(dir: &std::path::Path, name: &str, ttl: u64) -> Cache {
    let opts = StoreOptions {
        sets: 64,
        ways: 4,
        ttl_secs: ttl,
        ..StoreOptions::default()
    };
    Cache::open_file(&dir.join(name), &opts).unwrap()
}

fn host(dir: &std::path::Path, name: &str, r: &Redis, prefix: &str) -> Cache {
    let c = store(dir, name, 3600);
    c.attach_shared(&r.url(), config(prefix)).unwrap();
    c
}

/// The lookup and how long it took.
fn timed_lookup(c: &Cache, k: &PeerKey) -> (bool, Duration) {
    let t = Instant::now();
    let hit = c.lookup(k).is_some();
    (hit, t.elapsed())
}

fn within_deadline(d: Duration) -> bool {
    d <= Duration::from_millis(DEADLINE_MS + SLACK_MS)
}

fn stats(c: &Cache) -> CacheStats {
    c.stats()
}

#[test]
fn two_hosts_share_an_entry_and_an_invalidation() {
    let Some(r) = Redis::start("share", false) else {
        return;
    };
    let dir = common::scratch("shared-share");
    let a = host(&dir, "a.store", &r, "share");
    let b = host(&dir, "b.store", &r, "share");
    let k = key(1);
    assert!(b.lookup(&k).is_none());
    assert_eq!(stats(&b).shared_misses, 1);
    a.learn(&k, caps());
    let got = b.lookup(&k).expect("B finds what A learned");
    assert_eq!(got.caps, caps());
    assert_eq!(stats(&b).shared_hits, 1);
    // Now local in B: a second lookup does not ask Redis.
    assert!(b.lookup(&k).is_some());
    assert_eq!(stats(&b).shared_hits, 1);
    assert_eq!(stats(&b).hits, 1);
    // A forgets: the Redis copy goes; a third host no longer finds it.
    assert!(a.forget(&k));
    let c = host(&dir, "c.store", &r, "share");
    assert!(c.lookup(&k).is_none());
    assert_eq!(stats(&c).shared_misses, 1);
    // A reply without PIPECONNECT on A deletes it in Redis too.
    a.learn(&k, caps());
    let plain =
        Capabilities::parse_ehlo(b"250-mx\r\n250 PIPELINING\r\n", ParseOptions::default()).unwrap();
    a.learn(&k, plain);
    let d = host(&dir, "d.store", &r, "share");
    assert!(d.lookup(&k).is_none());
    // Another prefix is another namespace.
    a.learn(&k, caps());
    let other = host(&dir, "e.store", &r, "other");
    assert!(other.lookup(&k).is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn egress_addresses_apart_or_alike() {
    let Some(r) = Redis::start("egress", false) else {
        return;
    };
    let dir = common::scratch("shared-egress");
    let a = host(&dir, "a.store", &r, "egress");
    let b = host(&dir, "b.store", &r, "egress");
    let k = key(2);
    let k_other_local = PeerKey::parse("192.0.2.3", 25, TlsState::Cleartext)
        .unwrap()
        .with_local("198.51.100.8")
        .unwrap();
    a.learn(&k, caps());
    assert!(b.lookup(&k_other_local).is_none(), "apart by default");
    let alike = SharedConfig {
        across_local_addresses: true,
        ..config("egress-alike")
    };
    let a2 = store(&dir, "a2.store", 3600);
    a2.attach_shared(&r.url(), alike.clone()).unwrap();
    let b2 = store(&dir, "b2.store", 3600);
    b2.attach_shared(&r.url(), alike).unwrap();
    a2.learn(&k, caps());
    assert!(
        b2.lookup(&k_other_local).is_some(),
        "shared across egress addresses"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ttl_is_honoured_in_redis_and_capped_locally() {
    let Some(r) = Redis::start("ttl", false) else {
        return;
    };
    let dir = common::scratch("shared-ttl");
    let a = store(&dir, "a.store", 2);
    a.attach_shared(&r.url(), config("ttl")).unwrap();
    let b = host(&dir, "b.store", &r, "ttl");
    let k = key(3);
    a.learn(&k, caps());
    let pttl = match r.admin(&[
        b"PTTL",
        &a.shared_tier()
            .unwrap()
            .redis_key(pipeconnect::cache::shared::value::Kind::Entry, &k),
    ]) {
        pipeconnect::cache::shared::resp::Reply::Int(n) => n,
        other => panic!("{other:?}"),
    };
    assert!(pttl > 0 && pttl <= 2000, "PX from the TTL: {pttl}");
    // B (TTL 3600 of its own) keeps the copy no longer than A's TTL.
    let got = b.lookup(&k).unwrap();
    let now = b.clock().now();
    assert!(got.learned_at + b.ttl_secs() <= now + 2);
    // With a cap of 1 s on entries learned elsewhere, C keeps it 1 s.
    let c = store(&dir, "c.store", 3600);
    c.attach_shared(
        &r.url(),
        SharedConfig {
            local_ttl_cap_secs: 1,
            ..config("ttl")
        },
    )
    .unwrap();
    let got = c.lookup(&k).unwrap();
    assert!(got.learned_at + c.ttl_secs() <= c.clock().now() + 1);
    std::thread::sleep(Duration::from_millis(2600));
    let fresh = host(&dir, "d.store", &r, "ttl");
    assert!(fresh.lookup(&k).is_none(), "expired in Redis");
    assert!(b.lookup(&k).is_none(), "expired locally too");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hold_downs_travel_with_entries() {
    let Some(r) = Redis::start("hold", false) else {
        return;
    };
    let dir = common::scratch("shared-hold");
    let a = host(&dir, "a.store", &r, "hold");
    let b = host(&dir, "b.store", &r, "hold");
    let k = key(4);
    a.learn(&k, caps());
    assert!(a.note_early_refused(&k));
    assert!(b.held_down(&k).is_none());
    assert!(b.lookup(&k).is_some());
    let h = b.held_down(&k).expect("the hold-down came with the entry");
    assert_eq!(Some(h), a.held_down(&k));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn forged_or_corrupt_values_are_refused() {
    let Some(r) = Redis::start("forged", false) else {
        return;
    };
    let dir = common::scratch("shared-forged");
    let a = host(&dir, "a.store", &r, "forged");
    let k = key(5);
    let rkey = a
        .shared_tier()
        .unwrap()
        .redis_key(pipeconnect::cache::shared::value::Kind::Entry, &k);
    // Garbage.
    r.admin(&[b"SET", &rkey, b"not a record"]);
    assert!(a.lookup(&k).is_none());
    assert_eq!(stats(&a).shared_rejected, 1);
    // A good value, one bit flipped.
    let b = host(&dir, "b.store", &r, "forged");
    b.learn(&k, caps());
    let pipeconnect::cache::shared::resp::Reply::Bulk(Some(mut v)) = r.admin(&[b"GET", &rkey])
    else {
        panic!("no value")
    };
    v[10] ^= 0x40;
    r.admin(&[b"SET", &rkey, &v]);
    assert!(a.lookup(&k).is_none());
    assert_eq!(stats(&a).shared_rejected, 2);
    // A good value copied under another key.
    b.learn(&k, caps());
    let pipeconnect::cache::shared::resp::Reply::Bulk(Some(v)) = r.admin(&[b"GET", &rkey]) else {
        panic!("no value")
    };
    let k2 = key(6);
    let rkey2 = a
        .shared_tier()
        .unwrap()
        .redis_key(pipeconnect::cache::shared::value::Kind::Entry, &k2);
    r.admin(&[b"SET", &rkey2, &v]);
    assert!(a.lookup(&k2).is_none());
    assert_eq!(stats(&a).shared_rejected, 3);
    // Signed fleet: an unsigned value, or one signed with another secret, is refused.
    let signed = |secret: &[u8], name: &str| {
        let c = store(&dir, name, 3600);
        c.attach_shared(
            &r.url(),
            SharedConfig {
                secret: Some(secret.to_vec()),
                ..config("forged")
            },
        )
        .unwrap();
        c
    };
    let s1 = signed(b"fleet secret", "s1.store");
    let s2 = signed(b"fleet secret", "s2.store");
    let forger = signed(b"guessed", "f.store");
    let k3 = key(7);
    forger.learn(&k3, caps());
    assert!(s1.lookup(&k3).is_none());
    assert_eq!(stats(&s1).shared_rejected, 1);
    b.learn(&k3, caps()); // unsigned
    assert!(s1.lookup(&k3).is_none());
    assert_eq!(stats(&s1).shared_rejected, 2);
    s2.learn(&k3, caps());
    assert!(s1.lookup(&k3).is_some(), "signed with the fleet's secret");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Lookups of keys nobody learned, each timed; the local tier is checked between.
fn assert_no_wait_past_deadline(c: &Cache, base: u32, n: u32) -> Duration {
    let mut worst = Duration::ZERO;
    for i in 0..n {
        let (_, took) = timed_lookup(c, &key(base + i));
        worst = worst.max(took);
    }
    assert!(within_deadline(worst), "a lookup waited {worst:?}");
    worst
}

#[test]
fn stopped_killed_restarted_redis_never_holds_a_lookup() {
    let Some(mut r) = Redis::start("down", false) else {
        return;
    };
    let dir = common::scratch("shared-down");
    let a = host(&dir, "a.store", &r, "down");
    let local_key = key(900);
    a.learn(&local_key, caps());
    assert_no_wait_past_deadline(&a, 100, 5);

    // Stopped: the first call times out and opens the breaker; the rest are skipped.
    r.stop();
    assert_no_wait_past_deadline(&a, 200, 50);
    let s = stats(&a);
    assert_eq!(s.shared_timeouts, 1, "{s:?}");
    assert!(s.shared_skipped_open >= 49, "{s:?}");
    assert!(
        a.lookup(&local_key).is_some(),
        "the local tier keeps working"
    );
    // Learning while down: local only, no wait.
    let t = Instant::now();
    a.learn(&key(901), caps());
    assert!(within_deadline(t.elapsed()));
    assert!(a.lookup(&key(901)).is_some());

    // After the back-off, one probe (times out again); then skipped again.
    std::thread::sleep(Duration::from_millis(350));
    assert_no_wait_past_deadline(&a, 300, 20);
    assert_eq!(stats(&a).shared_timeouts, 2);

    // Killed: refused at once.
    r.resume();
    r.kill();
    std::thread::sleep(Duration::from_millis(350));
    assert_no_wait_past_deadline(&a, 400, 20);
    assert!(stats(&a).shared_errors >= 1);

    // Restarted: after the back-off the tier works again.
    r.restart();
    std::thread::sleep(Duration::from_millis(350));
    let b = host(&dir, "b.store", &r, "down");
    b.learn(&key(500), caps());
    assert!(a.lookup(&key(500)).is_some(), "back after a restart");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_breaker_in_the_store_is_seen_by_another_process_handle() {
    let Some(r) = Redis::start("breaker", false) else {
        return;
    };
    let dir = common::scratch("shared-breaker");
    // Two handles on one store file stand for two processes of one host.
    let a = host(&dir, "host.store", &r, "breaker");
    let b = host(&dir, "host.store", &r, "breaker");
    r.stop();
    assert_no_wait_past_deadline(&a, 10, 1);
    assert_eq!(stats(&a).shared_timeouts, 1);
    let (_, took) = timed_lookup(&b, &key(11));
    assert!(
        took < Duration::from_millis(DEADLINE_MS / 2),
        "skipped at once: {took:?}"
    );
    assert_eq!(stats(&b).shared_timeouts, 0);
    assert_eq!(stats(&b).shared_skipped_open, 1);
    // An in-process cache keeps a breaker of its own.
    let m = Cache::in_memory(Default::default());
    m.attach_shared(&r.url(), config("breaker")).unwrap();
    assert_no_wait_past_deadline(&m, 12, 1);
    assert_eq!(stats(&m).shared_timeouts, 1);
    r.resume();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unreachable_redis_never_holds_a_lookup() {
    if !redis_harness::available() {
        return;
    }
    let dir = common::scratch("shared-unreach");
    // Nothing listening.
    let closed = free_port();
    let a = store(&dir, "a.store", 3600);
    a.attach_shared(&format!("redis://127.0.0.1:{closed}"), config("x"))
        .unwrap();
    assert_no_wait_past_deadline(&a, 1, 10);
    assert_eq!(stats(&a).shared_errors, 1);
    // A listener that accepts (in the kernel) and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let b = store(&dir, "b.store", 3600);
    b.attach_shared(&format!("redis://127.0.0.1:{port}"), config("x"))
        .unwrap();
    assert_no_wait_past_deadline(&b, 1, 10);
    assert_eq!(stats(&b).shared_timeouts, 1);
    b.learn(&key(1), caps());
    assert!(b.lookup(&key(1)).is_some());
    // A black-holed address (TEST-NET, no route on loopback-only machines): connect
    // gives up by the deadline whatever the kernel does.
    let c = store(&dir, "c.store", 3600);
    c.attach_shared("redis://192.0.2.1:6379", config("x"))
        .unwrap();
    assert_no_wait_past_deadline(&c, 1, 5);
    drop(silent);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_background_save_does_not_stall_lookups() {
    let Some(r) = Redis::start("bgsave", true) else {
        return;
    };
    let dir = common::scratch("shared-bgsave");
    let a = host(&dir, "a.store", &r, "bgsave");
    // Enough data that the save's fork copies a real page table.
    for i in 0..20_000u32 {
        if i % 2000 == 0 {
            r.admin(&[b"SET", format!("filler:{i}").as_bytes(), &[7u8; 512]]);
        }
    }
    let mut big = Vec::new();
    for i in 0..20_000u32 {
        big.push(format!("filler:{i}").into_bytes());
        big.push(vec![7u8; 512]);
    }
    let mut args: Vec<&[u8]> = vec![b"MSET"];
    args.extend(big.iter().map(|v| v.as_slice()));
    r.admin(&args);
    let b = host(&dir, "b.store", &r, "bgsave");
    let mut worst = Duration::ZERO;
    for round in 0..5u32 {
        let _ = r.admin(&[b"BGSAVE"]);
        for i in 0..40u32 {
            let k = key(round * 100 + i);
            let t = Instant::now();
            a.learn(&k, caps());
            let _ = b.lookup(&k);
            worst = worst.max(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        worst <= Duration::from_millis(2 * DEADLINE_MS + SLACK_MS),
        "{worst:?}"
    );
    assert!(stats(&b).shared_hits > 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_forked_child_uses_its_own_connection() {
    let Some(r) = Redis::start("fork", false) else {
        return;
    };
    let dir = common::scratch("shared-fork");
    let a = host(&dir, "a.store", &r, "fork");
    let writer = host(&dir, "w.store", &r, "fork");
    for i in 0..200 {
        writer.learn(&key(i), caps());
    }
    // The parent connects.
    assert!(a.lookup(&key(0)).is_some());
    let clients_before = client_count(&r);
    // SAFETY: the test process forks; the child only runs this code and _exit()s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // Child and parent look up at once; a shared socket would mix their replies.
        let mut ok = 0;
        for i in 1..200 {
            ok += u32::from(a.lookup(&key(i)).is_some());
        }
        let s = a.stats();
        let code = if ok == 199 && s.shared_errors == 0 && s.shared_rejected == 0 {
            0
        } else {
            1
        };
        // SAFETY: leave the child without running the test harness's exit path.
        unsafe { libc::_exit(code) };
    }
    let mut ok = 0;
    for i in 1..200 {
        a.forget(&key(i)); // local and shared both; the child may see either
        ok += 1;
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status));
    assert_eq!(ok, 199);
    assert_eq!(stats(&a).shared_errors, 0);
    assert!(client_count(&r) >= clients_before);
    let _ = std::fs::remove_dir_all(&dir);
}

fn client_count(r: &Redis) -> usize {
    match r.admin(&[b"CLIENT", b"LIST"]) {
        pipeconnect::cache::shared::resp::Reply::Bulk(Some(b)) => {
            String::from_utf8_lossy(&b).lines().count()
        }
        other => panic!("{other:?}"),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// What a fresh process pays for its first call (connect, AUTH with an ACL user, SELECT,
/// MGET) and what a warm call costs; printed for docs/FLEET.md, checked only against the
/// deadline.
#[test]
fn connect_and_warm_call_costs() {
    let Some(r) = Redis::start_with("costs", false, &["--requirepass", "pw"]) else {
        return;
    };
    r.admin(&[
        b"ACL",
        b"SETUSER",
        b"fleet",
        b"on",
        b">fleetpw",
        b"~test-costs:*",
        b"+mget",
        b"+set",
        b"+del",
        b"+select",
    ]);
    let url = format!("redis://fleet:fleetpw@127.0.0.1:{}/1", r.port);
    let cfg = SharedConfig {
        deadline: Duration::from_millis(200),
        ..config("costs")
    };
    let k = key(1);
    let mut fresh = Vec::new();
    for _ in 0..30 {
        let c = Cache::in_memory(Default::default());
        c.attach_shared(&url, cfg.clone()).unwrap();
        let (_, took) = timed_lookup(&c, &k);
        fresh.push(took);
        assert_eq!(stats(&c).shared_misses, 1, "{:?}", stats(&c));
    }
    let c = Cache::in_memory(Default::default());
    c.attach_shared(&url, cfg).unwrap();
    let _ = c.lookup(&k);
    let warm: Vec<Duration> = (0..500).map(|_| timed_lookup(&c, &k).1).collect();
    let (f, w) = (median(fresh), median(warm));
    println!("fresh first call (connect, AUTH user, SELECT, MGET): median {f:?}");
    println!("warm call (MGET): median {w:?}");
    assert!(w < Duration::from_millis(DEADLINE_MS));
    assert!(f < Duration::from_millis(200));
}
