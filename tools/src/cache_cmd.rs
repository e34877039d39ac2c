//! `pipeconnect cache`: look inside, and tidy, a shared store file, for operators.
//!
//! ```text
//! pipeconnect cache dump  --file PATH          one line per entry: key, TLS state, caps, age;
//!                                              then one per hold-down record
//! pipeconnect cache stats --file PATH          geometry and counters
//! pipeconnect cache forget --file PATH <ip[:port]>   drop a server's entries (both TLS states)
//! pipeconnect cache flush <PATH>               drop every entry
//! ```
//! `--file` may be left out when `PIPECONNECT_STORE` names the file.
//!
//! Run as root on a store another user owns (the MTA's): `dump` and `stats` read a copy
//! of the file with `pread` and never map it, so that user cannot make the tool fault by
//! truncating the file. `forget` and `flush` change the file under the store's lock
//! protocol (compare-and-swap on the mapped file), so they must map it: they first give
//! up root for the file's owner (user, group, no supplementary groups), so the mapping
//! is made by a process of that user, who can do it no harm it could not do already.

use crate::cli::{Arg, Args, EXIT_USAGE};
use pipeconnect::cache::file::{inspect, StoreOptions};
use pipeconnect::cache::qhlo_cookie;
use pipeconnect::caps::{Capabilities, Extension};
use pipeconnect::key::parse_address;
use pipeconnect::Cache;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const USAGE: &str = "usage: pipeconnect cache <dump|stats|forget <ip[:port]>|flush> \
[--file PATH | PATH]  (PIPECONNECT_STORE names the file when --file is absent); \
pipeconnect cache shared <stats|dump|forget> --url URL: the shared tier on Redis";

/// Entry point: the arguments after `cache`.
pub fn main(args: Vec<String>) -> i32 {
    match run(args) {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("pipeconnect cache: {msg}\n{USAGE}");
            EXIT_USAGE
        }
    }
}

fn run(args: Vec<String>) -> Result<i32, String> {
    if args.first().map(String::as_str) == Some("shared") {
        return crate::shared_cmd::run(args[1..].to_vec())
            .map_err(|e| format!("{e}\n{}", crate::shared_cmd::USAGE));
    }
    let mut file: Option<PathBuf> = std::env::var_os("PIPECONNECT_STORE").map(PathBuf::from);
    let mut positional = Vec::new();
    let mut a = Args::new(args);
    while let Some(arg) = a.next_arg().map_err(|e| e.to_string())? {
        match arg {
            Arg::Flag { name, .. } if name == "help" => {
                println!("{USAGE}");
                return Ok(0);
            }
            Arg::Flag { name, .. } if name == "file" => {
                file = Some(PathBuf::from(a.value().map_err(|e| e.to_string())?));
            }
            Arg::Flag { name, .. } => return Err(format!("unknown option --{name}")),
            Arg::Positional(p) => positional.push(p),
        }
    }
    let (command, rest) = positional
        .split_first()
        .ok_or_else(|| "which command?".to_string())?;
    // `flush <file>` (and any command) may name the file as its last argument.
    let wants_target = command == "forget";
    let mut rest = rest.to_vec();
    if rest.len() > usize::from(wants_target) {
        file = Some(PathBuf::from(rest.pop().expect("one more argument")));
    }
    let path = file.ok_or_else(|| "no store file: give --file PATH".to_string())?;
    match command.as_str() {
        "dump" if rest.is_empty() => dump(&path),
        "stats" if rest.is_empty() => stats(&path),
        "flush" if rest.is_empty() => flush(&path),
        "forget" if rest.len() == 1 => forget(&path, &rest[0]),
        "dump" | "stats" | "flush" | "forget" => Err(format!("wrong arguments for {command}")),
        other => Err(format!("unknown command '{other}'")),
    }
}

/// Open the store to change it. As root on a file of another user, become that user
/// first (for good: the tool does one thing and exits).
fn open(path: &Path) -> Result<Cache, String> {
    let md = std::fs::symlink_metadata(path)
        .map_err(|_| format!("no store file at {}", path.display()))?;
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } == 0 && md.uid() != 0 && md.file_type().is_file() {
        become_owner(md.uid(), md.gid())
            .map_err(|e| format!("cannot become the store's owner {}: {e}", md.uid()))?;
    }
    Cache::open_file(path, &StoreOptions::default())
        .map_err(|e| format!("{}: {}", path.display(), e.message()))
}

/// Drop root for `uid`/`gid`, with no supplementary groups, irrevocably.
fn become_owner(uid: u32, gid: u32) -> std::io::Result<()> {
    // SAFETY: plain system calls on this process's credentials; each result is checked.
    unsafe {
        if libc::setgroups(0, std::ptr::null()) != 0
            || libc::setgid(gid) != 0
            || libc::setuid(uid) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
        if libc::setuid(0) == 0 {
            return Err(std::io::Error::other("root could be regained"));
        }
    }
    Ok(())
}

/// Read a copy of the store (never mapped): what `dump` and `stats` look at.
fn read_copy(path: &Path) -> Result<Cache, String> {
    if std::fs::symlink_metadata(path).is_err() {
        return Err(format!("no store file at {}", path.display()));
    }
    Cache::open_file_copy(path, &StoreOptions::default())
        .map_err(|e| format!("{}: {}", path.display(), e.message()))
}

fn dump(path: &Path) -> Result<i32, String> {
    let cache = read_copy(path)?;
    let now = cache.clock().now();
    let mut entries = cache.entries();
    entries.sort_by_key(|(k, _, _)| k.to_string());
    for (key, entry, live) in entries {
        // A QHLO cookie (SMTP QUICKSTART, experimental) kept beside a server's entry.
        if let Some(cookie) = qhlo_cookie::is_cookie_key(&key)
            .then(|| qhlo_cookie::decode(&entry.caps))
            .flatten()
        {
            println!(
                "qhlo-cookie {key} age={} cookie={cookie}{}",
                age(now.saturating_sub(entry.learned_at)),
                if live { "" } else { " expired" }
            );
            continue;
        }
        println!(
            "{key} age={} {}{}",
            age(now.saturating_sub(entry.learned_at)),
            describe(&entry.caps),
            if live { "" } else { " expired" }
        );
    }
    let mut holds = cache.hold_downs();
    holds.sort_by_key(|(k, _, _)| k.to_string());
    for (key, h, holds_now) in holds {
        println!("{}", describe_hold_down(&key, &h, holds_now, now));
    }
    Ok(0)
}

/// A hold-down record as `hold-down ADDR:PORT/any-tls [from L] [as N] level=L
/// remaining=T|ended=T successes=N`. The key is the record's hold key, shown with
/// `any-tls`: one record covers both TLS states.
pub fn describe_hold_down(
    key: &pipeconnect::PeerKey,
    h: &pipeconnect::cache::HoldDown,
    holds_now: bool,
    now: u64,
) -> String {
    let key = key.to_string().replacen("/cleartext", "/any-tls", 1);
    let when = if holds_now {
        format!("remaining={}", age(h.until.saturating_sub(now)))
    } else {
        format!("ended={} ago", age(now.saturating_sub(h.until)))
    };
    format!(
        "hold-down {key} level={} {when} successes={}",
        h.level, h.successes
    )
}

/// The capabilities as `caps=A,B size=N auth=X,Y limits=…`.
pub fn describe(caps: &Capabilities) -> String {
    let names: Vec<&str> = Extension::ALL
        .iter()
        .filter(|e| caps.has(**e))
        .map(|e| e.keyword())
        .collect();
    let mut s = format!("caps={}", names.join(","));
    if let Some(size) = caps.size_limit() {
        s.push_str(&format!(" size={size}"));
    }
    if !caps.auth_mechanisms().is_empty() {
        s.push_str(&format!(" auth={}", caps.auth_mechanisms().join(",")));
    }
    let l = caps.limits();
    for (name, v) in [
        ("mailmax", l.mail_max),
        ("rcptmax", l.rcpt_max),
        ("rcptdomainmax", l.rcpt_domain_max),
    ] {
        if let Some(v) = v {
            s.push_str(&format!(" {name}={v}"));
        }
    }
    s.push_str(&format!(" fingerprint={:016x}", caps.fingerprint()));
    s
}

pub fn age(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        s => format!("{}d{:02}h", s / 86400, (s % 86400) / 3600),
    }
}

fn stats(path: &Path) -> Result<i32, String> {
    let info = inspect(path).map_err(|e| format!("{}: {}", path.display(), e.message()))?;
    let cache = read_copy(path)?;
    let s = cache.stats();
    println!(
        "file={} sets={} ways={} capacity={} slot_bytes={} file_bytes={} version={} created_at={}",
        path.display(),
        info.sets,
        info.ways,
        info.capacity,
        info.slot_size,
        info.file_size,
        info.version,
        info.created_at
    );
    println!(
        "entries={} hits={} misses={} inserts={} evictions={} expirations={} invalidations={} \
         writes_abandoned={}",
        s.entries,
        s.hits,
        s.misses,
        s.inserts,
        s.evictions,
        s.expirations,
        s.invalidations,
        s.writes_abandoned
    );
    println!(
        "hold_downs_entered={} early_skipped_held_down={} hold_downs_current={}",
        s.hold_downs_entered, s.early_skipped_held_down, s.hold_downs_current
    );
    Ok(0)
}

fn flush(path: &Path) -> Result<i32, String> {
    let cache = open(path)?;
    let before = cache.stats().entries;
    cache.clear();
    println!("flushed {before} entries from {}", path.display());
    Ok(0)
}

/// `192.0.2.1`, `192.0.2.1:25`, `2001:db8::1`, `[2001:db8::1]:25`.
pub fn parse_target(t: &str) -> Result<(IpAddr, Option<u16>), String> {
    let bad = || format!("'{t}' is not an address or address:port");
    if let Ok(a) = parse_address(t) {
        return Ok((a, None));
    }
    let (host, port) = t.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    if !host.starts_with('[') && host.contains(':') {
        return Err(bad());
    }
    Ok((parse_address(host).map_err(|_| bad())?, Some(port)))
}

fn forget(path: &Path, target: &str) -> Result<i32, String> {
    let (addr, port) = parse_target(target)?;
    let cache = open(path)?;
    let n = cache.forget_server(addr, port);
    println!("forgot {n} entries for {target}");
    Ok(if n > 0 { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(parse_target("192.0.2.1").unwrap().1, None);
        assert_eq!(parse_target("192.0.2.1:25").unwrap().1, Some(25));
        assert_eq!(parse_target("2001:db8::1").unwrap().1, None);
        assert_eq!(parse_target("[2001:db8::1]:587").unwrap().1, Some(587));
        assert!(parse_target("host.example:25").is_err());
        assert!(parse_target("192.0.2.1:x").is_err());
    }

    #[test]
    fn ages() {
        assert_eq!(age(5), "5s");
        assert_eq!(age(125), "2m05s");
        assert_eq!(age(7200 + 60), "2h01m");
        assert_eq!(age(90000), "1d01h");
    }
}
