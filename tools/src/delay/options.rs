//! The options of `pipeconnect delay`.

use std::time::Duration;

use crate::cli::{unexpected_positional, unknown_flag, Arg, Args, Parsed, UsageError};

pub const USAGE: &str =
    "usage: pipeconnect delay [--listen 127.0.0.1:PORT] --upstream HOST:PORT --one-way-ms N [--log FILE]";

/// The longest one-way delay accepted.
const MAX_ONE_WAY_MS: u64 = 60_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Address to listen on; port 0 lets the kernel choose.
    pub listen: String,
    /// Where each accepted connection is forwarded.
    pub upstream: String,
    /// Added to every byte in each direction, and to the connect.
    pub one_way: Duration,
    /// Where to append one line per connection (see `trace.rs`), if anywhere.
    pub log: Option<String>,
}

impl Options {
    pub fn parse(raw: Vec<String>) -> Result<Parsed<Options>, UsageError> {
        let mut listen = "127.0.0.1:0".to_string();
        let mut upstream = None;
        let mut one_way_ms = None;
        let mut log = None;
        let mut args = Args::new(raw);
        while let Some(arg) = args.next_arg()? {
            let name = match arg {
                Arg::Flag { name, .. } => name,
                Arg::Positional(value) => return Err(unexpected_positional(&value)),
            };
            match name.as_str() {
                "help" => return Ok(Parsed::Help),
                "listen" => listen = args.value()?,
                "upstream" => upstream = Some(args.value()?),
                "one-way-ms" => one_way_ms = Some(args.parsed::<u64>()?),
                "log" => log = Some(args.value()?),
                _ => return Err(unknown_flag(&name)),
            }
        }
        let upstream = upstream.ok_or_else(|| UsageError("--upstream is required".into()))?;
        let one_way_ms = one_way_ms.ok_or_else(|| UsageError("--one-way-ms is required".into()))?;
        if one_way_ms > MAX_ONE_WAY_MS {
            return Err(UsageError(format!(
                "option --one-way-ms: at most {MAX_ONE_WAY_MS}"
            )));
        }
        Ok(Parsed::Run(Options {
            listen,
            upstream,
            one_way: Duration::from_millis(one_way_ms),
            log,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(items: &[&str]) -> Result<Parsed<Options>, UsageError> {
        Options::parse(items.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn parses() {
        assert_eq!(
            parse(&["--upstream", "127.0.0.1:25", "--one-way-ms=30"]),
            Ok(Parsed::Run(Options {
                listen: "127.0.0.1:0".into(),
                upstream: "127.0.0.1:25".into(),
                one_way: Duration::from_millis(30),
                log: None,
            }))
        );
    }

    #[test]
    fn requires_upstream_and_delay() {
        assert!(parse(&["--one-way-ms", "30"]).is_err());
        assert!(parse(&["--upstream", "127.0.0.1:25"]).is_err());
        assert!(parse(&["--upstream", "x:1", "--one-way-ms", "-1"]).is_err());
        assert!(parse(&["--upstream", "x:1", "--one-way-ms", "99999999"]).is_err());
        assert!(parse(&["--frobnicate"]).is_err());
    }
}
