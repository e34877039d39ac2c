//! `pipeconnect fleet-demo`: a fleet of hosts sharing what each learned through Redis.
//!
//! Starts `redis-server` on a free loopback port with its own folder, then H host
//! processes, each with its own store file, running one deterministic stream of
//! deliveries (Zipf over D destinations, each delivery given to a host at random): look
//! up; on a miss deliver classic and learn; on a hit go early. Three runs: local only,
//! shared, and shared with Redis stopped (SIGSTOP) mid-run and then killed (SIGKILL),
//! measuring the longest any lookup waited. Deliveries are paced on one clock shared by
//! the hosts, so they happen in the stream's order across processes.
//!
//! Last line: `summary: hosts=H deliveries=N early_local=a early_shared=b
//! redis_down_stall_ms=m`.

mod worker;
pub mod zipf;

use crate::cli::{Arg, Args, EXIT_USAGE};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const USAGE: &str = "usage: pipeconnect fleet-demo [--hosts H] [--deliveries N] \
[--destinations D] [--zipf S] [--seed X] [--rate PER_SEC] [--deadline-ms MS] [--backoff-ms MS] [--keep]";

/// What the demo is asked to do.
#[derive(Debug, Clone)]
pub struct Plan {
    pub hosts: usize,
    pub deliveries: usize,
    pub destinations: usize,
    pub zipf: f64,
    pub seed: u64,
    /// Deliveries per second across the fleet (the pacing clock).
    pub rate: u64,
    pub deadline_ms: u32,
    /// The breaker's back-off. Shorter than the library's default (30 s) so that a
    /// call that runs late on a loaded test machine does not leave a host local-only
    /// for the rest of a run of a few seconds.
    pub backoff_ms: u32,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            hosts: 10,
            deliveries: 30_000,
            destinations: 5_000,
            zipf: 1.0,
            seed: 1,
            rate: 6_000,
            deadline_ms: 20,
            backoff_ms: 1000,
        }
    }
}

pub fn main(args: Vec<String>) -> i32 {
    if args.first().map(String::as_str) == Some("--worker") {
        return worker::main(&args[1..]);
    }
    match parse(args).and_then(|(plan, keep)| run(&plan, keep)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pipeconnect fleet-demo: {e}\n{USAGE}");
            EXIT_USAGE
        }
    }
}

fn parse(args: Vec<String>) -> Result<(Plan, bool), String> {
    let mut p = Plan::default();
    let mut keep = false;
    let mut a = Args::new(args);
    while let Some(arg) = a.next_arg().map_err(|e| e.to_string())? {
        let Arg::Flag { name, .. } = arg else {
            return Err("no positional arguments".into());
        };
        let mut num = || -> Result<String, String> { a.value().map_err(|e| e.to_string()) };
        let bad = |n: &str| format!("bad --{n}");
        match name.as_str() {
            "help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            "hosts" => p.hosts = num()?.parse().map_err(|_| bad("hosts"))?,
            "deliveries" => p.deliveries = num()?.parse().map_err(|_| bad("deliveries"))?,
            "destinations" => p.destinations = num()?.parse().map_err(|_| bad("destinations"))?,
            "zipf" => p.zipf = num()?.parse().map_err(|_| bad("zipf"))?,
            "seed" => p.seed = num()?.parse().map_err(|_| bad("seed"))?,
            "rate" => p.rate = num()?.parse().map_err(|_| bad("rate"))?,
            "deadline-ms" => p.deadline_ms = num()?.parse().map_err(|_| bad("deadline-ms"))?,
            "backoff-ms" => p.backoff_ms = num()?.parse().map_err(|_| bad("backoff-ms"))?,
            "keep" => keep = true,
            other => return Err(format!("unknown option --{other}")),
        }
    }
    if p.hosts == 0 || p.hosts > 256 || p.deliveries == 0 || p.destinations == 0 || p.rate == 0 {
        return Err("hosts 1..256, deliveries, destinations and rate above 0".into());
    }
    if p.destinations > 65_000 {
        return Err("at most 65000 destinations".into());
    }
    Ok((p, keep))
}

/// A redis-server of our own, killed when dropped.
struct Redis {
    child: Option<Child>,
    port: u16,
}

impl Redis {
    fn start(dir: &Path) -> Result<Redis, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--dir"])
            .arg(dir)
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start redis-server: {e}"))?;
        let r = Redis {
            child: Some(child),
            port,
        };
        let until = Instant::now() + Duration::from_secs(10);
        while Instant::now() < until {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(r);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err("redis-server did not start".into())
    }

    fn signal(&self, sig: i32) {
        if let Some(c) = &self.child {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(c.id() as i32, sig) };
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            self.signal(libc::SIGCONT);
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// What one host reported.
#[derive(Debug, Default, Clone, Copy)]
pub struct Report {
    pub deliveries: u64,
    pub early: u64,
    pub max_lookup_us: u64,
    pub max_learn_us: u64,
    /// The longest lookup that made no call to Redis (the local tier, and the machine's
    /// scheduling noise).
    pub max_local_us: u64,
    pub first_shared_us: u64,
    pub warm_shared_us: u64,
    pub shared_hits: u64,
    pub timeouts: u64,
    pub errors: u64,
    pub skipped: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Run the H hosts once; `down` gives the times (ms after the start) to stop and kill
/// Redis.
fn run_hosts(
    plan: &Plan,
    work: &Path,
    name: &str,
    url: Option<&str>,
    redis: Option<&Redis>,
    down: Option<(u64, u64)>,
) -> Result<Vec<Report>, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let start_ms = now_ms() + 300;
    let mut children = Vec::new();
    for h in 0..plan.hosts {
        let store = work.join(format!("{name}-host{h}.store"));
        let mut cmd = Command::new(&exe);
        cmd.args(["fleet-demo", "--worker"])
            .arg(h.to_string())
            .arg(store)
            .arg(url.unwrap_or("-"))
            .arg(format!(
                "{},{},{},{},{},{},{},{},{}",
                plan.hosts,
                plan.deliveries,
                plan.destinations,
                plan.zipf,
                plan.seed,
                plan.rate,
                plan.deadline_ms,
                start_ms,
                plan.backoff_ms
            ))
            .arg(format!("fleet-{name}-{}:", std::process::id()))
            .stdout(Stdio::piped());
        children.push(
            cmd.spawn()
                .map_err(|e| format!("cannot start a host: {e}"))?,
        );
    }
    if let (Some((stop_at, kill_at)), Some(r)) = (down, redis) {
        let wait_until = |t: u64| {
            let n = now_ms();
            if n < start_ms + t {
                std::thread::sleep(Duration::from_millis(start_ms + t - n));
            }
        };
        wait_until(stop_at);
        r.signal(libc::SIGSTOP);
        println!("  redis stopped (SIGSTOP) at {stop_at} ms");
        wait_until(kill_at);
        r.signal(libc::SIGKILL);
        println!("  redis killed (SIGKILL) at {kill_at} ms");
    }
    let mut reports = Vec::new();
    for c in children {
        let out = c.wait_with_output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!("a host failed: {}", out.status));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        reports.push(worker::parse_report(&text).ok_or_else(|| format!("bad report: {text}"))?);
    }
    Ok(reports)
}

fn sum(r: &[Report], f: impl Fn(&Report) -> u64) -> u64 {
    r.iter().map(f).sum()
}

fn max(r: &[Report], f: impl Fn(&Report) -> u64) -> u64 {
    r.iter().map(f).max().unwrap_or(0)
}

fn run(plan: &Plan, keep: bool) -> Result<i32, String> {
    let work = std::env::temp_dir().join(format!("pipeconnect-fleet-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
    let result = run_in(plan, &work);
    if !keep {
        let _ = std::fs::remove_dir_all(&work);
    }
    result
}

fn clean(work: &Path, name: &str) {
    if let Ok(rd) = std::fs::read_dir(work) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with(name) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

fn run_in(plan: &Plan, work: &Path) -> Result<i32, String> {
    let redis = Redis::start(work)?;
    let url = format!("redis://127.0.0.1:{}", redis.port);
    let secs = plan.deliveries as f64 / plan.rate as f64;
    println!(
        "fleet-demo: {} hosts, {} deliveries over {} destinations (Zipf s={}), {:.1} s a run, \
         redis on {url}, deadline {} ms, back-off {} ms",
        plan.hosts,
        plan.deliveries,
        plan.destinations,
        plan.zipf,
        secs,
        plan.deadline_ms,
        plan.backoff_ms
    );

    let local = run_hosts(plan, work, "local", None, None, None)?;
    clean(work, "local");
    let a = sum(&local, |r| r.early);
    println!(
        "local only: early {a} of {} ({:.1}%)",
        plan.deliveries,
        pct(a, plan)
    );

    let shared = run_hosts(plan, work, "shared", Some(&url), None, None)?;
    clean(work, "shared");
    let b = sum(&shared, |r| r.early);
    println!(
        "shared:     early {b} of {} ({:.1}%), shared hits {}, timeouts {}, errors {}",
        plan.deliveries,
        pct(b, plan),
        sum(&shared, |r| r.shared_hits),
        sum(&shared, |r| r.timeouts),
        sum(&shared, |r| r.errors)
    );
    println!(
        "  a fresh process's first shared call (connect and MGET): worst {} us, mean {} us; \
         a warm call: mean {} us",
        max(&shared, |r| r.first_shared_us),
        sum(&shared, |r| r.first_shared_us) / plan.hosts as u64,
        sum(&shared, |r| r.warm_shared_us) / plan.hosts as u64
    );
    println!(
        "  longest lookup with redis up: {} us",
        max(&shared, |r| r.max_lookup_us)
    );

    let run_ms = (secs * 1000.0) as u64;
    let down = run_hosts(
        plan,
        work,
        "down",
        Some(&url),
        Some(&redis),
        Some((run_ms * 2 / 5, run_ms * 7 / 10)),
    )?;
    clean(work, "down");
    let m_us = max(&down, |r| r.max_lookup_us);
    println!(
        "redis down: early {} of {}, timeouts {}, errors {}, skipped while open {}, \
         longest lookup {} us, longest learn {} us, longest lookup without a call to redis {} us",
        sum(&down, |r| r.early),
        plan.deliveries,
        sum(&down, |r| r.timeouts),
        sum(&down, |r| r.errors),
        sum(&down, |r| r.skipped),
        m_us,
        max(&down, |r| r.max_learn_us),
        max(&down, |r| r.max_local_us)
    );
    drop(redis);
    println!(
        "summary: hosts={} deliveries={} early_local={a} early_shared={b} redis_down_stall_ms={}",
        plan.hosts,
        plan.deliveries,
        m_us.div_ceil(1000)
    );
    Ok(0)
}

fn pct(n: u64, plan: &Plan) -> f64 {
    100.0 * n as f64 / plan.deliveries as f64
}
