//! The options of `pipeconnect probe`.

use std::time::Duration;

use crate::cli::{unknown_flag, Arg, Args, Parsed, UsageError};

pub const USAGE: &str = "usage: pipeconnect probe HOST:PORT [--starttls] [--ehlo NAME] \
[--timeout-ms N] [--legacy-keywords]";

/// The longest wait for one reply or connect accepted.
const MAX_TIMEOUT_MS: u64 = 600_000;

/// What to probe and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `host:port` (`[v6]:port` for IPv6).
    pub target: String,
    /// Also STARTTLS when offered, and probe the encrypted state.
    pub starttls: bool,
    /// The name given in EHLO.
    pub ehlo: String,
    /// Bound on the connect and on every reply.
    pub timeout: Duration,
    /// Also take the legacy keywords `PIPE_CONNECT` and `X_PIPE_CONNECT`.
    pub legacy_keywords: bool,
}

impl Options {
    pub fn parse(raw: Vec<String>) -> Result<Parsed<Options>, UsageError> {
        let mut target = None;
        let mut starttls = false;
        let mut ehlo = "probe.pipeconnect.invalid".to_string();
        let mut timeout_ms = 10_000u64;
        let mut legacy_keywords = false;
        let mut args = Args::new(raw);
        while let Some(arg) = args.next_arg()? {
            match arg {
                Arg::Positional(value) => {
                    if target.is_some() {
                        return Err(UsageError(format!("unexpected argument '{value}'")));
                    }
                    target = Some(value);
                }
                Arg::Flag { name, .. } => match name.as_str() {
                    "help" => return Ok(Parsed::Help),
                    "starttls" => starttls = true,
                    "legacy-keywords" => legacy_keywords = true,
                    "ehlo" => ehlo = args.value()?,
                    "timeout-ms" => timeout_ms = args.parsed()?,
                    _ => return Err(unknown_flag(&name)),
                },
            }
        }
        let target = target.ok_or_else(|| UsageError("HOST:PORT is required".into()))?;
        if !target.contains(':') {
            return Err(UsageError(format!("'{target}' is not HOST:PORT")));
        }
        if ehlo.is_empty() || ehlo.len() > 255 || !ehlo.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(UsageError(format!(
                "option --ehlo: '{ehlo}' is not a host name"
            )));
        }
        if timeout_ms == 0 || timeout_ms > MAX_TIMEOUT_MS {
            return Err(UsageError(format!(
                "option --timeout-ms: 1 to {MAX_TIMEOUT_MS}"
            )));
        }
        Ok(Parsed::Run(Options {
            target,
            starttls,
            ehlo,
            timeout: Duration::from_millis(timeout_ms),
            legacy_keywords,
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
        let Ok(Parsed::Run(o)) = parse(&["127.0.0.1:25", "--starttls", "--ehlo=me.example"]) else {
            panic!("should parse");
        };
        assert_eq!(o.target, "127.0.0.1:25");
        assert!(o.starttls);
        assert_eq!(o.ehlo, "me.example");
        assert_eq!(o.timeout, Duration::from_secs(10));
    }

    #[test]
    fn refuses_bad_lines() {
        assert!(parse(&[]).is_err());
        assert!(parse(&["localhost"]).is_err());
        assert!(parse(&["a:1", "b:2"]).is_err());
        assert!(parse(&["a:1", "--ehlo", "two words"]).is_err());
        assert!(parse(&["a:1", "--timeout-ms", "0"]).is_err());
        assert!(parse(&["a:1", "--starttls=yes"]).is_err());
        assert!(parse(&["a:1", "--frob"]).is_err());
        assert_eq!(parse(&["--help"]), Ok(Parsed::Help));
    }
}
