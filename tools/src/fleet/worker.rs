//! One host of the fleet demo: its own store file, its share of the stream, paced on
//! the clock the parent gave, and one line of figures at the end.

use super::zipf::stream;
use super::Report;
use pipeconnect::cache::file::StoreOptions;
use pipeconnect::cache::shared::SharedConfig;
use pipeconnect::{Cache, Capabilities, ParseOptions, PeerKey, TlsState};
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const EHLO: &[u8] =
    b"250-mx.example\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n250-8BITMIME\r\n250 PIPECONNECT\r\n";

/// `--worker HOST STORE URL|- H,N,D,S,SEED,RATE,DEADLINE,START_MS,BACKOFF PREFIX`
pub fn main(args: &[String]) -> i32 {
    match run(args) {
        Ok(r) => {
            println!(
                "report deliveries={} early={} max_lookup_us={} max_learn_us={} \
                 max_local_us={} first_shared_us={} warm_shared_us={} shared_hits={} timeouts={} errors={} \
                 skipped={}",
                r.deliveries,
                r.early,
                r.max_lookup_us,
                r.max_learn_us,
                r.max_local_us,
                r.first_shared_us,
                r.warm_shared_us,
                r.shared_hits,
                r.timeouts,
                r.errors,
                r.skipped
            );
            0
        }
        Err(e) => {
            eprintln!("fleet-demo host: {e}");
            1
        }
    }
}

pub fn parse_report(text: &str) -> Option<Report> {
    let line = text.lines().find(|l| l.starts_with("report "))?;
    let mut r = Report::default();
    for kv in line.split_whitespace().skip(1) {
        let (k, v) = kv.split_once('=')?;
        let v: u64 = v.parse().ok()?;
        match k {
            "deliveries" => r.deliveries = v,
            "early" => r.early = v,
            "max_lookup_us" => r.max_lookup_us = v,
            "max_learn_us" => r.max_learn_us = v,
            "max_local_us" => r.max_local_us = v,
            "first_shared_us" => r.first_shared_us = v,
            "warm_shared_us" => r.warm_shared_us = v,
            "shared_hits" => r.shared_hits = v,
            "timeouts" => r.timeouts = v,
            "errors" => r.errors = v,
            "skipped" => r.skipped = v,
            _ => return None,
        }
    }
    Some(r)
}

/// The destination's server address: 10.x.y.z from its rank.
fn key(destination: usize) -> PeerKey {
    let n = destination as u32 + 1;
    let ip = Ipv4Addr::from(0x0a00_0000 | n);
    PeerKey::new(ip.into(), 25, TlsState::Cleartext).expect("a valid address")
}

fn run(args: &[String]) -> Result<Report, String> {
    let [host, store, url, nums, prefix] = args else {
        return Err("bad worker arguments".into());
    };
    let host: usize = host.parse().map_err(|_| "bad host")?;
    let n: Vec<&str> = nums.split(',').collect();
    let [hosts, deliveries, destinations, zipf, seed, rate, deadline, start_ms, backoff] = n[..]
    else {
        return Err("bad worker numbers".into());
    };
    let p = |s: &str| s.parse::<u64>().map_err(|_| format!("bad number {s}"));
    let (hosts, deliveries, destinations) = (p(hosts)?, p(deliveries)?, p(destinations)?);
    let zipf: f64 = zipf.parse().map_err(|_| "bad zipf")?;
    let (seed, rate, deadline, start_ms) = (p(seed)?, p(rate)?, p(deadline)?, p(start_ms)?);
    let backoff = p(backoff)?;
    let opts = StoreOptions {
        sets: (destinations as u32)
            .div_ceil(4)
            .next_power_of_two()
            .max(64),
        ways: 8,
        ..StoreOptions::default()
    };
    let cache = Cache::open_file(Path::new(store), &opts).map_err(|e| e.message().to_string())?;
    if url != "-" {
        cache.attach_shared(
            url,
            SharedConfig {
                prefix: prefix.clone(),
                deadline: Duration::from_millis(deadline),
                backoff: Duration::from_millis(backoff.max(1)),
                ..SharedConfig::default()
            },
        )?;
    }
    let caps =
        Capabilities::parse_ehlo(EHLO, ParseOptions::default()).map_err(|e| e.to_string())?;
    let all = stream(
        deliveries as usize,
        destinations as usize,
        zipf,
        hosts as usize,
        seed,
    );
    let now_ms = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0)
    };
    let start_us = start_ms * 1000;
    let mut r = Report::default();
    let (mut warm_total, mut warm_n) = (0u64, 0u64);
    let mut first = true;
    for (i, d) in all.iter().enumerate() {
        if d.host != host {
            continue;
        }
        // Pace on the fleet's clock: delivery i happens at start + i / rate.
        let due = start_us + i as u64 * 1_000_000 / rate;
        let now = now_ms();
        if due > now {
            std::thread::sleep(Duration::from_micros(due - now));
        }
        let k = key(d.destination);
        let asked = |c: &Cache| {
            c.shared_tier()
                .map(|t| t.stats())
                .map_or(0, |s| s.hits + s.misses)
        };
        let before = asked(&cache);
        let calls = |c: &Cache| {
            c.shared_tier()
                .map(|t| t.stats())
                .map_or(0, |s| s.hits + s.misses + s.errors + s.timeouts)
        };
        let calls_before = calls(&cache);
        let t = Instant::now();
        let hit = cache.lookup(&k).is_some();
        let took = t.elapsed().as_micros() as u64;
        r.max_lookup_us = r.max_lookup_us.max(took);
        let called = calls(&cache) > calls_before;
        if !called {
            r.max_local_us = r.max_local_us.max(took);
        }
        if asked(&cache) > before {
            if first {
                r.first_shared_us = took;
                first = false;
            } else {
                warm_total += took;
                warm_n += 1;
            }
        }
        r.deliveries += 1;
        if hit {
            r.early += 1;
        } else {
            let t = Instant::now();
            cache.learn(&k, caps.clone());
            r.max_learn_us = r.max_learn_us.max(t.elapsed().as_micros() as u64);
        }
    }
    if let Some(s) = cache.shared_tier().map(|t| t.stats()) {
        r.shared_hits = s.hits;
        r.timeouts = s.timeouts;
        r.errors = s.errors;
        r.skipped = s.skipped_open;
    }
    r.warm_shared_us = warm_total.checked_div(warm_n).unwrap_or(0);
    Ok(r)
}
