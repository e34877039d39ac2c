//! Lookup latency of the shared file store with two processes looking up the same hot
//! keys at once: the tail (p99, p99.9) shows what writes into shared pages cost a
//! read-mostly workload.
//!
//! ```text
//! cargo run --release --example store_latency [LOOKUPS_PER_PROCESS]
//! ```
use pipeconnect::cache::file::StoreOptions;
use pipeconnect::{Cache, Capabilities, ParseOptions, PeerKey, TlsState};
use std::time::Instant;

const KEYS: u32 = 256;

fn key(i: u32) -> PeerKey {
    PeerKey::new(
        std::net::IpAddr::from((0x0a00_0000 + i).to_be_bytes()),
        25,
        TlsState::Cleartext,
    )
    .expect("key")
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join(format!("pc-store-latency-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let path = dir.join("store");
    let cache = Cache::open_file(&path, &StoreOptions::default()).expect("open");
    let caps = Capabilities::parse_ehlo(
        b"250-mx.example\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n250-AUTH PLAIN\r\n250 PIPECONNECT\r\n",
        ParseOptions::default(),
    )
    .expect("caps");
    for i in 0..KEYS {
        cache.learn(&key(i), caps.clone());
    }
    let keys: Vec<PeerKey> = (0..KEYS).map(key).collect();
    drop(cache);
    let mut children = Vec::new();
    for proc_no in 0..2u32 {
        let (r, w) = {
            let mut fds = [0; 2];
            // SAFETY: fds has room for two descriptors.
            assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
            (fds[0], fds[1])
        };
        // SAFETY: the child only runs this function's code and exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let cache = Cache::open_file(&path, &StoreOptions::default()).expect("open");
            let mut lat = Vec::with_capacity(n);
            for i in 0..n {
                let k = &keys[(i * 7 + proc_no as usize) % keys.len()];
                let t = Instant::now();
                let hit = cache.lookup(k).is_some();
                lat.push(t.elapsed().as_nanos() as u64);
                assert!(hit);
            }
            lat.sort_unstable();
            let line = format!(
                "{} {} {} {}\n",
                percentile(&lat, 0.5),
                percentile(&lat, 0.99),
                percentile(&lat, 0.999),
                lat[lat.len() - 1]
            );
            // SAFETY: w is the pipe's write end.
            unsafe { libc::write(w, line.as_ptr().cast(), line.len()) };
            // SAFETY: leave without running the parent's destructors.
            unsafe { libc::_exit(0) };
        }
        // SAFETY: the parent's copy of the write end is not needed.
        unsafe { libc::close(w) };
        children.push((pid, r));
    }
    for (i, (pid, r)) in children.into_iter().enumerate() {
        let mut buf = [0u8; 256];
        // SAFETY: reading into a local buffer.
        let got = unsafe { libc::read(r, buf.as_mut_ptr().cast(), buf.len()) };
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        let text = String::from_utf8_lossy(&buf[..got.max(0) as usize]);
        let v: Vec<&str> = text.split_whitespace().collect();
        if v.len() == 4 {
            println!(
                "process {i}: {n} lookups  p50 {} ns  p99 {} ns  p99.9 {} ns  max {} ns",
                v[0], v[1], v[2], v[3]
            );
        } else {
            println!("process {i}: no result (status {status})");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
