//! `pipeconnect cache shared`: look at, and tidy, the shared tier on Redis.
//!
//! ```text
//! pipeconnect cache shared stats  --url URL [--prefix P] [--secret-file F]
//!     round trip, records under the prefix by kind, refused values, bytes per entry
//! pipeconnect cache shared dump   --url URL [--prefix P] [--secret-file F]
//!     one line per record: key, kind, age, time left, capabilities or why refused
//! pipeconnect cache shared forget --url URL [--prefix P] <ip[:port] | --all>
//!     delete a server's records (both TLS states), or every record under the prefix
//! ```
//! `--url` may be left out when `PIPECONNECT_SHARED_URL` names the server. The secret is
//! read from a file (never the command line, where other users could see it).

use crate::cache_cmd::{age, describe, describe_hold_down, parse_target};
use crate::cli::{Arg, Args};
use pipeconnect::cache::shared::value::{Kind, Rejected};
use pipeconnect::cache::shared::{Scanned, SharedConfig, SharedTier};
use pipeconnect::cache::HoldDown;
use pipeconnect::Capabilities;
use std::time::Duration;

pub const USAGE: &str = "usage: pipeconnect cache shared <stats|dump|forget <ip[:port]|--all>> \
--url redis://HOST:PORT[/DB] [--prefix P] [--secret-file F] [--limit N]";

/// How long a tool's whole scan may take.
const TOOL_DEADLINE: Duration = Duration::from_secs(10);

pub fn run(args: Vec<String>) -> Result<i32, String> {
    let mut url = std::env::var("PIPECONNECT_SHARED_URL").ok();
    let mut config = SharedConfig {
        deadline: Duration::from_secs(2),
        ..SharedConfig::default()
    };
    let mut all = false;
    let mut limit = 100_000usize;
    let mut positional = Vec::new();
    let mut a = Args::new(args);
    while let Some(arg) = a.next_arg().map_err(|e| e.to_string())? {
        let mut value = || a.value().map_err(|e| e.to_string());
        match arg {
            Arg::Flag { name, .. } if name == "help" => {
                println!("{USAGE}");
                return Ok(0);
            }
            Arg::Flag { name, .. } if name == "url" => url = Some(value()?),
            Arg::Flag { name, .. } if name == "prefix" => config.prefix = value()?,
            Arg::Flag { name, .. } if name == "limit" => {
                limit = value()?.parse().map_err(|_| "bad --limit")?
            }
            Arg::Flag { name, .. } if name == "secret-file" => {
                let p = value()?;
                let mut s = std::fs::read(&p).map_err(|e| format!("{p}: {e}"))?;
                while s.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    s.pop();
                }
                config.secret = Some(s);
            }
            Arg::Flag { name, .. } if name == "all" => all = true,
            Arg::Flag { name, .. } => return Err(format!("unknown option --{name}")),
            Arg::Positional(p) => positional.push(p),
        }
    }
    let url = url.ok_or("no server: give --url (or set PIPECONNECT_SHARED_URL)")?;
    let tier = SharedTier::new(&url, config)?;
    match positional.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["stats"] => stats(&tier, limit),
        ["dump"] => dump(&tier, limit),
        ["forget"] if all => forget(&tier, None, limit),
        ["forget", target] => forget(&tier, Some(parse_target(target)?), limit),
        _ => Err("which command? stats, dump or forget".into()),
    }
}

fn scan(tier: &SharedTier, limit: usize) -> Result<Vec<Scanned>, String> {
    tier.scan(limit, TOOL_DEADLINE).ok_or_else(|| {
        format!(
            "{} did not answer (or failed) within {:?}",
            tier.display(),
            TOOL_DEADLINE
        )
    })
}

fn stats(tier: &SharedTier, limit: usize) -> Result<i32, String> {
    let rtt = tier.ping(Duration::from_secs(2))?;
    let records = scan(tier, limit)?;
    let count = |k: Kind| {
        records
            .iter()
            .filter(|r| r.record.as_ref().is_ok_and(|r| r.kind == k))
            .count()
    };
    let refused = records.iter().filter(|r| r.record.is_err()).count();
    println!("server: {}", tier.display());
    println!("prefix: {}", tier.config().prefix);
    println!(
        "round trip (connect and PING): {:.2} ms",
        rtt.as_secs_f64() * 1e3
    );
    println!("entries: {}", count(Kind::Entry));
    println!("hold-downs: {}", count(Kind::HoldDown));
    println!("refused (corrupt, unsigned or wrongly signed): {refused}");
    Ok(0)
}

fn why(r: Rejected) -> &'static str {
    match r {
        Rejected::Malformed => "malformed",
        Rejected::BadChecksum => "bad checksum",
        Rejected::BadSignature => "bad or missing signature",
    }
}

fn dump(tier: &SharedTier, limit: usize) -> Result<i32, String> {
    let now = pipeconnect::Clock::system().now();
    let mut records = scan(tier, limit)?;
    records.sort_by(|a, b| a.redis_key.cmp(&b.redis_key));
    for s in records {
        let name = s
            .key
            .as_ref()
            .map(|k| k.to_string())
            .unwrap_or_else(|| s.redis_key.clone());
        match s.record {
            Err(r) => println!("{name} refused: {}", why(r)),
            Ok(r) if r.kind == Kind::Entry => {
                let caps = Capabilities::decode(&r.payload)
                    .map(|c| describe(&c))
                    .unwrap_or_else(|_| "undecodable".into());
                println!(
                    "{name} age={} left={} {caps}",
                    age(now.saturating_sub(r.learned_at)),
                    age(r.expires_at.saturating_sub(now))
                );
            }
            Ok(r) => match (HoldDown::decode(&r.payload), &s.key) {
                (Some(h), Some(k)) => println!("{}", describe_hold_down(k, &h, h.holds(now), now)),
                _ => println!("{name} hold-down undecodable"),
            },
        }
    }
    Ok(0)
}

fn forget(
    tier: &SharedTier,
    target: Option<(std::net::IpAddr, Option<u16>)>,
    limit: usize,
) -> Result<i32, String> {
    let records = scan(tier, limit)?;
    let doomed: Vec<String> = records
        .into_iter()
        .filter(|s| match (&target, &s.key) {
            (None, _) => true,
            (Some((addr, port)), Some(k)) => {
                k.server() == *addr && port.is_none_or(|p| k.port() == p)
            }
            (Some(_), None) => false,
        })
        .map(|s| s.redis_key)
        .collect();
    let n = tier
        .delete_keys(&doomed, TOOL_DEADLINE)
        .ok_or("the server did not answer the delete")?;
    println!("forgot {n} records");
    Ok(if n > 0 { 0 } else { 1 })
}
