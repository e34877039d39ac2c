//! The options of `pipeconnect demo`.

use std::path::PathBuf;

use crate::cli::{unexpected_positional, unknown_flag, Arg, Args, Parsed, UsageError};

pub const USAGE: &str = "usage: pipeconnect demo [--rtt-ms 50] [--deliveries 7] \
[--client PATH] [--body-size 4096] [--keep] [--quickstart [--greet-pause-ms 1000]]";

/// The longest round trip time accepted (the delay proxy takes up to 60 s one way).
const MAX_RTT_MS: u64 = 10_000;
/// The most deliveries per mode.
const MAX_DELIVERIES: u32 = 1000;
/// The largest body (the sink's default limit is 50 MiB).
const MAX_BODY: u64 = 10 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The simulated round trip time; each direction gets half.
    pub rtt_ms: u64,
    /// Timed deliveries per mode (each mode also makes one learning delivery first).
    pub deliveries: u32,
    /// The C client; `None`: `pc-deliver` beside this program.
    pub client: Option<PathBuf>,
    /// Message body size in bytes.
    pub body_size: u64,
    /// Keep the work folder (store file, logs) instead of removing it.
    pub keep: bool,
    /// The SMTP QUICKSTART table (experimental) instead of the C client's modes.
    pub quickstart: bool,
    /// The sink's greet pause for `--quickstart`.
    pub greet_pause_ms: u64,
}

impl Options {
    pub fn parse(raw: Vec<String>) -> Result<Parsed<Options>, UsageError> {
        let mut o = Options {
            rtt_ms: 50,
            deliveries: 7,
            client: None,
            body_size: 4096,
            keep: false,
            quickstart: false,
            greet_pause_ms: 1000,
        };
        let mut args = Args::new(raw);
        while let Some(arg) = args.next_arg()? {
            let name = match arg {
                Arg::Flag { name, .. } => name,
                Arg::Positional(value) => return Err(unexpected_positional(&value)),
            };
            match name.as_str() {
                "help" => return Ok(Parsed::Help),
                "rtt-ms" => o.rtt_ms = args.parsed()?,
                "deliveries" => o.deliveries = args.parsed()?,
                "client" => o.client = Some(PathBuf::from(args.value()?)),
                "body-size" => o.body_size = args.parsed()?,
                "keep" => o.keep = true,
                "quickstart" => o.quickstart = true,
                "greet-pause-ms" => o.greet_pause_ms = args.parsed()?,
                _ => return Err(unknown_flag(&name)),
            }
        }
        if o.rtt_ms > MAX_RTT_MS {
            return Err(UsageError(format!("option --rtt-ms: at most {MAX_RTT_MS}")));
        }
        if o.rtt_ms % 2 == 1 {
            return Err(UsageError(
                "option --rtt-ms: give an even number (each direction gets half)".into(),
            ));
        }
        if o.deliveries == 0 || o.deliveries > MAX_DELIVERIES {
            return Err(UsageError(format!(
                "option --deliveries: 1 to {MAX_DELIVERIES}"
            )));
        }
        if o.greet_pause_ms > MAX_RTT_MS {
            return Err(UsageError(format!(
                "option --greet-pause-ms: at most {MAX_RTT_MS}"
            )));
        }
        if o.body_size == 0 || o.body_size > MAX_BODY {
            return Err(UsageError(format!("option --body-size: 1 to {MAX_BODY}")));
        }
        Ok(Parsed::Run(o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(items: &[&str]) -> Result<Parsed<Options>, UsageError> {
        Options::parse(items.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn defaults_and_values() {
        let Ok(Parsed::Run(o)) = parse(&[]) else {
            panic!("defaults")
        };
        assert_eq!((o.rtt_ms, o.deliveries, o.body_size), (50, 7, 4096));
        let Ok(Parsed::Run(o)) = parse(&["--rtt-ms", "20", "--deliveries=3", "--client", "/x"])
        else {
            panic!("values")
        };
        assert_eq!((o.rtt_ms, o.deliveries), (20, 3));
        assert_eq!(o.client, Some(PathBuf::from("/x")));
        assert!(!o.quickstart);
        let Ok(Parsed::Run(o)) = parse(&["--quickstart", "--greet-pause-ms", "500"]) else {
            panic!("quickstart")
        };
        assert!(o.quickstart && o.greet_pause_ms == 500);
    }

    #[test]
    fn refuses() {
        assert!(parse(&["--rtt-ms", "51"]).is_err());
        assert!(parse(&["--rtt-ms", "100000"]).is_err());
        assert!(parse(&["--deliveries", "0"]).is_err());
        assert!(parse(&["--body-size", "0"]).is_err());
        assert!(parse(&["extra"]).is_err());
        assert!(parse(&["--nope"]).is_err());
    }
}
