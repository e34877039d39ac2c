//! Lookup cost of the in-process cache with 1 and 2 threads, next to a plain
//! `lru::LruCache` behind one `std::sync::Mutex`, measured in the same run.
//!
//! Run: `cargo bench --bench cache_lookup`. The last lines print the ratios.

use criterion::{black_box, Criterion};
use pipeconnect::cache::{Cache, CacheConfig};
use pipeconnect::caps::{Capabilities, ParseOptions};
use pipeconnect::key::{PeerKey, TlsState};
use std::num::NonZeroUsize;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

const KEYS: u32 = 4096;
const EXIM: &[u8] = b"250-mx.test.example Hello\r\n250-SIZE 52428800\r\n250-PIPELINING\r\n\
250-PIPECONNECT\r\n250-AUTH PLAIN\r\n250-CHUNKING\r\n250 STARTTLS\r\n";

fn keys() -> Vec<PeerKey> {
    (0..KEYS)
        .map(|i| {
            let a = std::net::Ipv4Addr::from(0x0a00_0000 + i);
            PeerKey::new(a.into(), 25, TlsState::Cleartext).unwrap()
        })
        .collect()
}

trait Lookup: Send + Sync + 'static {
    fn get(&self, k: &PeerKey) -> bool;
}

impl Lookup for Cache {
    fn get(&self, k: &PeerKey) -> bool {
        black_box(self.lookup(k)).is_some()
    }
}

struct Baseline(Mutex<lru::LruCache<PeerKey, (Capabilities, u64)>>);

impl Lookup for Baseline {
    fn get(&self, k: &PeerKey) -> bool {
        // black_box: the copy a caller gets must really be made, as in every variant.
        black_box(self.0.lock().unwrap().get(k).cloned()).is_some()
    }
}

/// The baseline plus what a real cache must also do on every lookup: read the clock and
/// check the entry's age. Shows how much of the difference is the TTL itself.
struct BaselineWithTtl(Baseline, pipeconnect::Clock);

impl Lookup for BaselineWithTtl {
    fn get(&self, k: &PeerKey) -> bool {
        let now = self.1.now();
        let mut m = self.0 .0.lock().unwrap();
        match m.get(k) {
            Some(e) if now < e.1 + 7 * 86400 => {
                black_box(e.clone());
                true
            }
            _ => false,
        }
    }
}

fn ours(keys: &[PeerKey], caps: &Capabilities) -> Arc<Cache> {
    let c = Cache::in_memory(CacheConfig {
        capacity: KEYS as usize * 2,
        ..CacheConfig::default()
    });
    for k in keys {
        c.learn(k, caps.clone());
    }
    Arc::new(c)
}

fn baseline(keys: &[PeerKey], caps: &Capabilities) -> Arc<Baseline> {
    let mut m = lru::LruCache::new(NonZeroUsize::new(KEYS as usize * 2).unwrap());
    for k in keys {
        m.put(
            k.clone(),
            (caps.clone(), pipeconnect::Clock::system().now()),
        );
    }
    Arc::new(Baseline(Mutex::new(m)))
}

/// Time `iters` lookups on each of `threads` threads at once: the wall time of the whole
/// run (per lookup and thread, divide by `iters`). The clock starts before the threads
/// are released, so a short run cannot finish before it is timed.
fn run<L: Lookup>(
    cache: &Arc<L>,
    keys: &Arc<Vec<PeerKey>>,
    threads: usize,
    iters: u64,
) -> Duration {
    let barrier = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (cache, keys, barrier) =
                (Arc::clone(cache), Arc::clone(keys), Arc::clone(&barrier));
            std::thread::spawn(move || {
                barrier.wait();
                let mut i = t * 977;
                for _ in 0..iters {
                    black_box(cache.get(&keys[i % keys.len()]));
                    i += 7;
                }
            })
        })
        .collect();
    let start = Instant::now();
    barrier.wait();
    for h in handles {
        h.join().unwrap();
    }
    start.elapsed()
}

/// Nanoseconds per lookup per thread.
fn per_lookup(d: Duration, iters: u64) -> f64 {
    d.as_nanos() as f64 / iters as f64
}

fn main() {
    let caps = Capabilities::parse_ehlo(EXIM, ParseOptions::default()).unwrap();
    let keys = Arc::new(keys());
    let ours = ours(&keys, &caps);
    let base = baseline(&keys, &caps);
    let base_ttl = Arc::new(BaselineWithTtl(
        Arc::try_unwrap(baseline(&keys, &caps))
            .ok()
            .expect("sole owner"),
        pipeconnect::Clock::system(),
    ));
    let mut c = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(3));
    let mut results = Vec::new();
    for threads in [1usize, 2] {
        let mut g = c.benchmark_group(format!("lookup_{threads}_thread"));
        g.bench_function("pipeconnect_sharded", |b| {
            b.iter_custom(|iters| run(&ours, &keys, threads, iters))
        });
        g.bench_function("lru_behind_one_mutex", |b| {
            b.iter_custom(|iters| run(&base, &keys, threads, iters))
        });
        g.bench_function("lru_behind_one_mutex_with_ttl_check", |b| {
            b.iter_custom(|iters| run(&base_ttl, &keys, threads, iters))
        });
        g.finish();
        // A final side-by-side pass with equal work, interleaved, for the ratios.
        const N: u64 = 500_000;
        let (mut a, mut b, mut t) = (0.0, 0.0, 0.0);
        for _ in 0..5 {
            a += per_lookup(run(&ours, &keys, threads, N), N) / 5.0;
            b += per_lookup(run(&base, &keys, threads, N), N) / 5.0;
            t += per_lookup(run(&base_ttl, &keys, threads, N), N) / 5.0;
        }
        results.push((threads, a, b, t));
    }
    c.final_summary();
    for (threads, a, b, c) in results {
        println!(
            "summary: threads={threads} ns_per_lookup_per_thread: pipeconnect={a:.1} \
             lru_mutex={b:.1} lru_mutex_ttl={c:.1} ratio_mutex_over_ours={:.2} \
             ratio_mutex_ttl_over_ours={:.2}",
            b / a,
            c / a
        );
    }
}
