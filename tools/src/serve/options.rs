//! The options of `pipeconnect serve`.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{unexpected_positional, unknown_flag, Arg, Args, Parsed, UsageError};

pub const USAGE: &str = "usage: pipeconnect serve [--listen 127.0.0.1:PORT] [--hostname NAME] \
[--pipeconnect on|off] [--pipelining on|off] [--chunking on|off] [--starttls on|off] \
[--auth-plain on|off] [--size N] [--limits-rcptmax N] [--reject-rcpt ADDR]... \
[--tempfail-rcpt ADDR]... [--banner-delay-ms N] [--pregreet log|reject] [--quickstart on|off] [--banner-code N] [--log FILE] \
[--max-connections N]";

/// The size limit for a message when `--size` is not given (not advertised).
pub const DEFAULT_MESSAGE_LIMIT: u64 = 50 * 1024 * 1024;

/// The most recipients accepted in one transaction, whatever `--limits-rcptmax` says.
pub const MAX_RCPTS: u32 = 1000;

/// How the sink behaves; see [`USAGE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Address to listen on; port 0 lets the kernel choose.
    pub listen: String,
    /// The name in the banner and the EHLO reply (and the certificate).
    pub hostname: String,
    /// Advertise PIPECONNECT and tolerate input sent before the banner.
    pub pipeconnect: bool,
    pub pipelining: bool,
    pub chunking: bool,
    pub starttls: bool,
    pub auth_plain: bool,
    /// Advertised `SIZE` and the message size limit.
    pub size: Option<u64>,
    /// Advertised `LIMITS RCPTMAX=` and enforced with 452.
    pub limits_rcptmax: Option<u32>,
    /// Recipients answered with 550.
    pub reject_rcpt: Vec<String>,
    /// Recipients answered with 451.
    pub tempfail_rcpt: Vec<String>,
    /// Wait this long after accepting before sending the banner.
    pub banner_delay: Duration,
    /// The banner's reply code: 2xx serves, 4xx says goodbye, 5xx refuses service (only QUIT works).
    pub banner_code: u16,
    /// A pregreet violation from a client offered PIPECONNECT is answered 554 and closed
    /// (`--pregreet reject`); by default it is logged and served, as Exim does.
    pub pregreet_reject: bool,
    /// SMTP QUICKSTART, experimental: capabilities and a QHLO cookie in a multi-line
    /// greeting, QHLO accepted, and no greet pause for a client whose QHLO cookie is valid.
    pub quickstart: bool,
    /// Log file; stderr when absent.
    pub log: Option<PathBuf>,
    /// Stop accepting after this many connections and exit once they are finished.
    pub max_connections: Option<u64>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            listen: "127.0.0.1:0".to_string(),
            hostname: "localhost".to_string(),
            pipeconnect: true,
            pipelining: true,
            chunking: true,
            starttls: false,
            auth_plain: false,
            size: None,
            limits_rcptmax: None,
            reject_rcpt: Vec::new(),
            tempfail_rcpt: Vec::new(),
            banner_delay: Duration::ZERO,
            banner_code: 220,
            pregreet_reject: false,
            quickstart: false,
            log: None,
            max_connections: None,
        }
    }
}

impl Options {
    pub fn parse(raw: Vec<String>) -> Result<Parsed<Options>, UsageError> {
        let mut options = Options::default();
        let mut args = Args::new(raw);
        while let Some(arg) = args.next_arg()? {
            let name = match arg {
                Arg::Flag { name, .. } => name,
                Arg::Positional(value) => return Err(unexpected_positional(&value)),
            };
            match name.as_str() {
                "help" => return Ok(Parsed::Help),
                "listen" => options.listen = args.value()?,
                "hostname" => options.hostname = args.value()?,
                "pipeconnect" => options.pipeconnect = args.on_off()?,
                "pipelining" => options.pipelining = args.on_off()?,
                "chunking" => options.chunking = args.on_off()?,
                "starttls" => options.starttls = args.on_off()?,
                "auth-plain" => options.auth_plain = args.on_off()?,
                "size" => options.size = Some(positive(args.parsed()?, "size")?),
                "limits-rcptmax" => {
                    let n: u32 = args.parsed()?;
                    options.limits_rcptmax = Some(positive(n.into(), "limits-rcptmax")? as u32);
                }
                "reject-rcpt" => options.reject_rcpt.push(args.value()?),
                "tempfail-rcpt" => options.tempfail_rcpt.push(args.value()?),
                "banner-delay-ms" => {
                    options.banner_delay = Duration::from_millis(args.parsed()?);
                }
                "banner-code" => options.banner_code = banner_code(args.parsed()?)?,
                "pregreet" => options.pregreet_reject = pregreet(&args.value()?)?,
                "quickstart" => options.quickstart = args.on_off()?,
                "log" => options.log = Some(PathBuf::from(args.value()?)),
                "max-connections" => {
                    options.max_connections = Some(positive(args.parsed()?, "max-connections")?);
                }
                _ => return Err(unknown_flag(&name)),
            }
        }
        if options.hostname.is_empty() || options.hostname.contains(char::is_whitespace) {
            return Err(UsageError(format!(
                "option --hostname: '{}' is not a host name",
                options.hostname
            )));
        }
        Ok(Parsed::Run(options))
    }

    /// Early input is tolerated only where PIPECONNECT is advertised, which needs PIPELINING.
    pub fn early_input_allowed(&self) -> bool {
        self.pipeconnect && self.pipelining
    }

    /// The largest message accepted, in bytes.
    pub fn message_limit(&self) -> u64 {
        self.size.unwrap_or(DEFAULT_MESSAGE_LIMIT)
    }

    /// The most recipients accepted in one transaction.
    pub fn rcpt_limit(&self) -> u32 {
        self.limits_rcptmax.map_or(MAX_RCPTS, |n| n.min(MAX_RCPTS))
    }
}

fn positive(n: u64, flag: &str) -> Result<u64, UsageError> {
    if n == 0 {
        return Err(UsageError(format!("option --{flag} must be at least 1")));
    }
    Ok(n)
}

fn pregreet(value: &str) -> Result<bool, UsageError> {
    match value {
        "log" => Ok(false),
        "reject" => Ok(true),
        _ => Err(UsageError(format!(
            "option --pregreet: '{value}' is neither log nor reject"
        ))),
    }
}

fn banner_code(code: u16) -> Result<u16, UsageError> {
    if !(200..=599).contains(&code) || (300..400).contains(&code) {
        return Err(UsageError(format!(
            "option --banner-code: {code} is not a 2xx, 4xx or 5xx reply code"
        )));
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(items: &[&str]) -> Result<Parsed<Options>, UsageError> {
        Options::parse(items.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn defaults() {
        let Parsed::Run(o) = parse(&[]).unwrap() else {
            panic!("help")
        };
        assert!(o.pipeconnect && o.pipelining && o.chunking);
        assert!(!o.starttls && !o.auth_plain);
        assert_eq!(o.banner_code, 220);
        assert!(!o.pregreet_reject);
        assert!(!o.quickstart, "QUICKSTART is off unless asked for");
        assert_eq!(o.message_limit(), DEFAULT_MESSAGE_LIMIT);
        assert_eq!(o.rcpt_limit(), MAX_RCPTS);
    }

    #[test]
    fn all_flags() {
        let Parsed::Run(o) = parse(&[
            "--listen=127.0.0.1:2525",
            "--hostname",
            "mx.test",
            "--pipeconnect",
            "off",
            "--starttls",
            "on",
            "--size",
            "1000",
            "--limits-rcptmax",
            "2",
            "--reject-rcpt",
            "a@x",
            "--reject-rcpt",
            "b@x",
            "--tempfail-rcpt",
            "c@x",
            "--banner-delay-ms",
            "40",
            "--banner-code",
            "554",
            "--max-connections",
            "3",
            "--pregreet",
            "reject",
        ])
        .unwrap() else {
            panic!("help")
        };
        assert_eq!(o.listen, "127.0.0.1:2525");
        assert_eq!(o.hostname, "mx.test");
        assert!(!o.pipeconnect && !o.early_input_allowed());
        assert!(o.starttls);
        assert_eq!(o.message_limit(), 1000);
        assert_eq!(o.rcpt_limit(), 2);
        assert_eq!(o.reject_rcpt, ["a@x", "b@x"]);
        assert_eq!(o.tempfail_rcpt, ["c@x"]);
        assert_eq!(o.banner_delay, Duration::from_millis(40));
        assert_eq!(o.banner_code, 554);
        assert_eq!(o.max_connections, Some(3));
        assert!(o.pregreet_reject);
    }

    #[test]
    fn rejects_bad_input() {
        assert!(parse(&["--bogus"]).is_err());
        assert!(parse(&["stray"]).is_err());
        assert!(parse(&["--banner-code", "354"]).is_err());
        assert!(parse(&["--banner-code", "99"]).is_err());
        assert!(parse(&["--size", "0"]).is_err());
        assert!(parse(&["--hostname", "a b"]).is_err());
        assert!(parse(&["--pregreet", "drop"]).is_err());
        assert_eq!(parse(&["--help"]), Ok(Parsed::Help));
    }

    #[test]
    fn pipeconnect_needs_pipelining() {
        let Parsed::Run(o) = parse(&["--pipelining", "off"]).unwrap() else {
            panic!("help")
        };
        assert!(!o.early_input_allowed());
    }
}
