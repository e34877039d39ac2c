//! Four worker processes hammer one store file while a supervisor SIGKILLs a random
//! worker every 100 ms and restarts it. No worker may ever read a torn or foreign
//! record, nobody may deadlock, and the file must open valid afterwards.
//!
//! Workers are this test binary started again with `PIPECONNECT_STRESS_WORKER` set (see
//! `worker_role`). Each record is self-describing: its SIZE is the key's digest, its
//! LIMITS and AUTH names derive from the digest and a generation number, so a reader can
//! tell that a record is whole and belongs to the key it looked up.

use pipeconnect::cache::file::{inspect, StoreOptions};
use pipeconnect::cache::Cache;
use pipeconnect::{Capabilities, ParseOptions, PeerKey, TlsState};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const WORKERS: usize = 4;
const OPS_PER_WORKER: u64 = 250_000;
const KEYS: u32 = 4000;
/// Keys that take half of all operations.
const HOT: u32 = 16;
/// A worker that read a torn or foreign record exits with this.
const TORN: i32 = 77;
const KILL_EVERY: Duration = Duration::from_millis(100);
const DEADLINE: Duration = Duration::from_secs(120);

fn options() -> StoreOptions {
    // 1024 slots for 4000 keys: evictions all the time.
    StoreOptions {
        sets: 256,
        ways: 4,
        ..StoreOptions::default()
    }
}

fn key(i: u32) -> PeerKey {
    let tls = if i % 2 == 0 {
        TlsState::Cleartext
    } else {
        TlsState::Encrypted
    };
    let k = PeerKey::new(
        std::net::IpAddr::from([10, (i >> 8) as u8, i as u8, 1]),
        25 + (i % 3) as u16,
        tls,
    )
    .unwrap();
    if i % 5 == 0 {
        k.with_ehlo_name(&format!("host{i}.example")).unwrap()
    } else {
        k
    }
}

fn mix32(a: u64, b: u64) -> u32 {
    let mut x = a ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    (x as u32) & 0x7fff_ffff
}

fn auth_names(digest: u64, generation: u32) -> Vec<String> {
    (0..=generation % 6)
        .map(|j| {
            format!(
                "M{}X{j}",
                mix32(digest, generation as u64 + j as u64) % 100_000
            )
        })
        .collect()
}

/// The record a writer stores for `k` in `generation`.
fn record(k: &PeerKey, generation: u32) -> Capabilities {
    let d = k.digest();
    let mut reply = format!(
        "250-mx.example\r\n250-PIPELINING\r\n250-SIZE {d}\r\n\
         250-LIMITS MAILMAX={} RCPTMAX={} RCPTDOMAINMAX={generation}\r\n",
        mix32(d, generation as u64),
        mix32(!d, generation as u64),
    );
    reply.push_str(&format!(
        "250-AUTH {}\r\n",
        auth_names(d, generation).join(" ")
    ));
    reply.push_str("250 PIPECONNECT\r\n");
    Capabilities::parse_ehlo(reply.as_bytes(), ParseOptions::default()).unwrap()
}

/// Whether `c` is a whole record written for `k`.
fn consistent(k: &PeerKey, c: &Capabilities) -> bool {
    let d = k.digest();
    let l = c.limits();
    let Some(g) = l.rcpt_domain_max else {
        return false;
    };
    c.worth_caching()
        && c.size_limit() == Some(d)
        && l.mail_max == Some(mix32(d, g as u64))
        && l.rcpt_max == Some(mix32(!d, g as u64))
        && c.auth_mechanisms() == auth_names(d, g)
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Map the progress file: one counter of completed operations per worker.
fn progress(path: &Path) -> &'static [AtomicU64] {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let len = WORKERS * 64;
    // SAFETY: a shared mapping of a file of `len` bytes, never unmapped (the process
    // ends first); only accessed as atomics.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            f.as_raw_fd(),
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        std::slice::from_raw_parts(p as *const AtomicU64, len / 8)
    }
}

fn counter(p: &'static [AtomicU64], worker: usize) -> &'static AtomicU64 {
    &p[worker * 8]
}

/// The worker side: runs only when started by the supervisor.
#[test]
fn worker_role() {
    let Ok(worker) = std::env::var("PIPECONNECT_STRESS_WORKER") else {
        return;
    };
    let worker: usize = worker.parse().unwrap();
    let store = PathBuf::from(std::env::var("PIPECONNECT_STRESS_STORE").unwrap());
    let prog = progress(Path::new(
        &std::env::var("PIPECONNECT_STRESS_PROGRESS").unwrap(),
    ));
    let done = counter(prog, worker);
    let cache = Cache::open_file(&store, &options()).unwrap_or_else(|e| {
        eprintln!("worker {worker}: open: {e}");
        std::process::exit(3)
    });
    let keys: Vec<PeerKey> = (0..KEYS).map(key).collect();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d ^ (std::process::id() as u64) << 20 ^ worker as u64);
    let mut n = done.load(Ordering::Relaxed);
    while n < OPS_PER_WORKER {
        let r = rng.next();
        // Half the operations go to 16 hot keys, so readers and writers of one record
        // meet often; the rest spread over the whole key space.
        let k = if r & (1 << 31) != 0 {
            &keys[(r % HOT as u64) as usize]
        } else {
            &keys[(r % KEYS as u64) as usize]
        };
        match (r >> 32) % 10 {
            0..=5 => {
                if let Some(e) = cache.lookup(k) {
                    if !consistent(k, &e.caps) {
                        eprintln!("worker {worker}: torn record for {k}: {:?}", e.caps);
                        std::process::exit(TORN);
                    }
                }
            }
            6..=8 => {
                let generation = (r >> 40) as u32 & 0xffff;
                cache.learn(k, record(k, generation));
            }
            _ => {
                cache.forget(k);
            }
        }
        n += 1;
        done.store(n, Ordering::Relaxed);
    }
    std::process::exit(0);
}

fn spawn(worker: usize, store: &Path, prog: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "worker_role",
            "--exact",
            "--test-threads=1",
            "--quiet",
            "--nocapture",
        ])
        .env("PIPECONNECT_STRESS_WORKER", worker.to_string())
        .env("PIPECONNECT_STRESS_STORE", store)
        .env("PIPECONNECT_STRESS_PROGRESS", prog)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn four_workers_under_sigkill() {
    let dir = std::env::temp_dir().join(format!("pipeconnect-store-stress-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let store = dir.join("store");
    let prog_path = dir.join("progress");
    std::fs::write(&prog_path, vec![0u8; WORKERS * 64]).unwrap();
    let prog = progress(&prog_path);
    // Create the store up front so workers race only on using it.
    drop(Cache::open_file(&store, &options()).unwrap());

    let start = Instant::now();
    let mut children: Vec<Option<Child>> = (0..WORKERS)
        .map(|w| Some(spawn(w, &store, &prog_path)))
        .collect();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut kills = 0u32;
    let mut restarts = 0u32;
    let mut next_kill = Instant::now() + KILL_EVERY;
    let mut failure = None;
    while children.iter().any(Option::is_some) {
        if start.elapsed() > DEADLINE {
            failure = Some(format!(
                "deadline of {DEADLINE:?} passed: deadlock or too slow"
            ));
            break;
        }
        for (w, slot) in children.iter_mut().enumerate() {
            if let Some(child) = slot {
                if let Some(status) = child.try_wait().unwrap() {
                    *slot = None;
                    match status.code() {
                        Some(0) => {}
                        Some(TORN) => failure = Some(format!("worker {w} read a torn record")),
                        _ => failure = Some(format!("worker {w} failed: {status}")),
                    }
                }
            }
        }
        if failure.is_some() {
            break;
        }
        if Instant::now() >= next_kill {
            next_kill += KILL_EVERY;
            let running: Vec<usize> = (0..WORKERS).filter(|&w| children[w].is_some()).collect();
            if !running.is_empty() {
                let w = running[(rng.next() % running.len() as u64) as usize];
                let mut child = children[w].take().unwrap();
                // SAFETY: signalling our own child, which is not yet reaped.
                unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGKILL) };
                let status = child.wait().unwrap();
                if status.code() == Some(TORN) {
                    failure = Some(format!("worker {w} read a torn record"));
                    break;
                }
                if status.code().is_none() {
                    kills += 1;
                }
                if counter(prog, w).load(Ordering::Relaxed) < OPS_PER_WORKER {
                    children[w] = Some(spawn(w, &store, &prog_path));
                    restarts += 1;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    for c in children.iter_mut().flatten() {
        let _ = c.kill();
        let _ = c.wait();
    }
    let elapsed = start.elapsed();
    if let Some(f) = failure {
        panic!("{f}");
    }
    let ops: u64 = (0..WORKERS)
        .map(|w| counter(prog, w).load(Ordering::Relaxed))
        .sum();
    assert_eq!(ops, OPS_PER_WORKER * WORKERS as u64);

    // The file opens valid, and every record in it is whole.
    let info = inspect(&store).unwrap();
    assert_eq!((info.sets, info.ways), (256, 4));
    let cache = Cache::open_file(&store, &options()).unwrap();
    let entries = cache.entries();
    assert!(!entries.is_empty());
    for (k, e, _) in &entries {
        assert!(consistent(k, &e.caps), "{k}: {:?}", e.caps);
    }
    let s = cache.stats();
    assert!(s.entries <= 1024);
    assert!(s.inserts > 0 && s.evictions > 0 && s.hits > 0, "{s:?}");
    // A set's count is rewritten by each writer; only a writer killed between its write
    // and its count leaves it off, by one.
    assert!(
        s.entries.abs_diff(entries.len() as u64) <= kills as u64,
        "{} counted, {} readable",
        s.entries,
        entries.len()
    );
    // Writes still work everywhere: every set's lock is free or can be taken over.
    cache.clear();
    assert!(cache.entries().is_empty());
    for i in 0..KEYS {
        cache.learn(&key(i), record(&key(i), 1));
    }
    let after = cache.entries();
    assert!(after.len() >= 1000, "{}", after.len());
    assert_eq!(cache.stats().entries, after.len() as u64);
    for (k, e, _) in after {
        assert!(consistent(&k, &e.caps));
    }
    eprintln!(
        "store stress: {} ops by {WORKERS} workers in {:.1} s, {kills} SIGKILLs, {restarts} restarts, {} entries, stats {s:?}",
        ops,
        elapsed.as_secs_f64(),
        entries.len()
    );
    assert!(kills >= 5, "the supervisor killed only {kills} workers");
    std::fs::remove_dir_all(&dir).unwrap();
}
