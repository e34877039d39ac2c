//! What a lookup and a learn cost in the shared file store, next to the in-process cache
//! and next to what a hints-database lookup costs a delivery (lock file + fcntl lock +
//! Berkeley DB hash open + get + close: benches/hintsdb/hintsdb.c, compiled here at
//! start with `cc ... -ldb`; skipped with a notice when that fails).
//!
//! Run with `cargo bench --bench store`. Besides criterion's figures, the bench prints a
//! summary with its own timing and the ratios, e.g.
//! `ratio hintsdb/filestore lookup = 250.0x`.

use criterion::{black_box, Criterion};
use pipeconnect::cache::file::StoreOptions;
use pipeconnect::cache::{Cache, CacheConfig};
use pipeconnect::{Capabilities, ParseOptions, PeerKey, TlsState};
use std::ffi::{c_char, c_int, CString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Entries in every store, and keys the lookups cycle through.
const KEYS: u32 = 1000;
const T0: u64 = 1_700_000_000;

const EHLO: &[u8] = b"250-mx.test.example Hello client.test [127.0.0.1]\r\n\
250-SIZE 52428800\r\n250-8BITMIME\r\n250-PIPELINING\r\n250-PIPECONNECT\r\n250-AUTH PLAIN\r\n\
250-CHUNKING\r\n250-STARTTLS\r\n250-SMTPUTF8\r\n250 HELP\r\n";

fn key(i: u32) -> PeerKey {
    PeerKey::new(
        std::net::IpAddr::from([198, 51, (i >> 8) as u8, i as u8]),
        25,
        TlsState::Cleartext,
    )
    .unwrap()
}

type FillFn = unsafe extern "C" fn(*const c_char, *const c_char, c_int, usize) -> c_int;
type LookupFn = unsafe extern "C" fn(*const c_char, *const c_char, usize) -> c_int;

/// The C baseline, loaded with dlopen.
struct HintsDb {
    dir: CString,
    lookup: LookupFn,
    keys: Vec<CString>,
}

impl HintsDb {
    fn build(work: &Path) -> Result<HintsDb, String> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/hintsdb/hintsdb.c");
        let so = work.join("libhintsdb.so");
        let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
        let out = Command::new(&cc)
            .args(["-O2", "-shared", "-fPIC", "-o"])
            .arg(&so)
            .arg(&src)
            .arg("-ldb")
            .output()
            .map_err(|e| format!("{cc}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{cc} failed (is libdb5.3-dev installed?): {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let so_c = CString::new(so.to_str().unwrap()).unwrap();
        // SAFETY: loading a library we just built; symbols are checked for NULL.
        let (fill, lookup) = unsafe {
            let h = libc::dlopen(so_c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
            if h.is_null() {
                return Err("dlopen failed".into());
            }
            let f = libc::dlsym(h, c"hintsdb_fill".as_ptr());
            let l = libc::dlsym(h, c"hintsdb_lookup".as_ptr());
            if f.is_null() || l.is_null() {
                return Err("dlsym failed".into());
            }
            (
                std::mem::transmute::<*mut libc::c_void, FillFn>(f),
                std::mem::transmute::<*mut libc::c_void, LookupFn>(l),
            )
        };
        let dir = work.join("hints");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let dir = CString::new(dir.to_str().unwrap()).unwrap();
        // Records of about the size a capability record has.
        // SAFETY: NUL-terminated strings.
        let r = unsafe { fill(dir.as_ptr(), c"pipelining-".as_ptr(), KEYS as c_int, 120) };
        if r != 0 {
            return Err(format!("filling the hints database failed: {r}"));
        }
        let keys = (0..KEYS)
            .map(|i| CString::new(format!("pipelining-{i}")).unwrap())
            .collect();
        let db = HintsDb { dir, lookup, keys };
        if db.get(7) != 120 {
            return Err("a stored record was not found".into());
        }
        Ok(db)
    }

    fn get(&self, i: usize) -> c_int {
        let k = &self.keys[i % self.keys.len()];
        // SAFETY: NUL-terminated strings; the length is the key's.
        unsafe { (self.lookup)(self.dir.as_ptr(), k.as_ptr(), k.as_bytes().len()) }
    }
}

/// Median nanoseconds per call of `f` over several timed batches.
fn ns_per_op(mut f: impl FnMut(usize)) -> f64 {
    let mut i = 0usize;
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(200) {
        f(i);
        i += 1;
    }
    let mut samples = Vec::new();
    for _ in 0..7 {
        let start = Instant::now();
        let mut n = 0usize;
        while start.elapsed() < Duration::from_millis(150) {
            for _ in 0..16 {
                f(i);
                i += 1;
                n += 1;
            }
        }
        samples.push(start.elapsed().as_nanos() as f64 / n as f64);
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    samples[samples.len() / 2]
}

fn main() {
    let work = std::env::temp_dir().join(format!("pipeconnect-bench-store-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let caps = Capabilities::parse_ehlo(EHLO, ParseOptions::default()).unwrap();
    let keys: Vec<PeerKey> = (0..KEYS).map(key).collect();

    let mem = Cache::in_memory(CacheConfig::default());
    let store_path: PathBuf = work.join("store");
    let file = Cache::open_file(&store_path, &StoreOptions::default()).unwrap();
    for c in [&mem, &file] {
        c.clock().set(T0);
        for k in &keys {
            c.learn(k, caps.clone());
        }
    }
    assert!(file.lookup(&keys[3]).is_some());
    let hints = match HintsDb::build(&work) {
        Ok(h) => Some(h),
        Err(e) => {
            eprintln!("hintsdb baseline skipped: {e}");
            None
        }
    };
    let open_lookup_close = |i: usize| {
        let c = Cache::open_file(&store_path, &StoreOptions::default()).unwrap();
        c.clock().set(T0);
        black_box(c.lookup(&keys[i % keys.len()]));
    };

    let mut crit = Criterion::default().configure_from_args();
    {
        let mut g = crit.benchmark_group("lookup");
        let mut i = 0usize;
        g.bench_function("in_process", |b| {
            b.iter(|| {
                i += 1;
                black_box(mem.lookup(&keys[i % keys.len()]))
            })
        });
        g.bench_function("file_store", |b| {
            b.iter(|| {
                i += 1;
                black_box(file.lookup(&keys[i % keys.len()]))
            })
        });
        g.bench_function("file_store_open_lookup_close", |b| {
            b.iter(|| {
                i += 1;
                open_lookup_close(i)
            })
        });
        if let Some(h) = &hints {
            g.bench_function("hintsdb", |b| {
                b.iter(|| {
                    i += 1;
                    black_box(h.get(i))
                })
            });
        }
        g.finish();
    }
    {
        let mut g = crit.benchmark_group("learn");
        let mut i = 0usize;
        g.bench_function("in_process", |b| {
            b.iter(|| {
                i += 1;
                black_box(mem.learn(&keys[i % keys.len()], caps.clone()))
            })
        });
        g.bench_function("file_store", |b| {
            b.iter(|| {
                i += 1;
                black_box(file.learn(&keys[i % keys.len()], caps.clone()))
            })
        });
        g.finish();
    }
    crit.final_summary();

    // The summary, timed here so the ratios come from one run.
    let n = keys.len();
    let mem_lookup = ns_per_op(|i| {
        black_box(mem.lookup(&keys[i % n]));
    });
    let file_lookup = ns_per_op(|i| {
        black_box(file.lookup(&keys[i % n]));
    });
    let file_cold = ns_per_op(open_lookup_close);
    let mem_learn = ns_per_op(|i| {
        black_box(mem.learn(&keys[i % n], caps.clone()));
    });
    let file_learn = ns_per_op(|i| {
        black_box(file.learn(&keys[i % n], caps.clone()));
    });
    println!();
    println!("summary (median ns per operation, {KEYS} entries, lookups cycling over all keys):");
    println!("  lookup  in-process           {mem_lookup:>12.1} ns");
    println!("  lookup  file store           {file_lookup:>12.1} ns");
    println!("  lookup  file store open+close{file_cold:>12.1} ns");
    println!("  learn   in-process           {mem_learn:>12.1} ns");
    println!("  learn   file store           {file_learn:>12.1} ns");
    println!(
        "ratio filestore/in-process lookup = {:.1}x",
        file_lookup / mem_lookup
    );
    if let Some(h) = &hints {
        let hints_lookup = ns_per_op(|i| {
            black_box(h.get(i));
        });
        println!("  lookup  hints DB (C, BDB)    {hints_lookup:>12.1} ns");
        println!(
            "ratio hintsdb/filestore lookup = {:.1}x",
            hints_lookup / file_lookup
        );
        println!(
            "ratio hintsdb/filestore(open+lookup+close) lookup = {:.1}x",
            hints_lookup / file_cold
        );
    }
    let _ = std::fs::remove_dir_all(&work);
}
