//! The sink's log: plain text, one line per event, meant to be grepped by tests and the demo.
//!
//! Format (exact; fields are `key=value` separated by one space, lines end with `\n`):
//!
//! ```text
//! conn=<n> accepted
//! conn=<n> prebanner t_ms=<ms> class=<class> reason=<reason> commands=<k> bytes=<b> incomplete=<0|1>
//! conn=<n> qhlo t_ms=<ms> cookie=<valid|invalid|none>
//! conn=<n> pipelined_tls t_ms=<ms> bytes=<b>
//! conn=<n> qtls t_ms=<ms> banner=<0|1> bytes=<b>
//! conn=<n> banner t_ms=<ms>
//! t_ms=<ms> conn=<n> tls=<0|1> early=<0|1> cmd=<command line>
//! conn=<n> message id=<id> bytes=<size> rcpts=<count>
//! conn=<n> closed
//! ```
//!
//! and, for the two ways a connection is turned away before any command:
//!
//! ```text
//! conn=<n> syncerror t_ms=<ms>   input before the banner while PIPECONNECT is off: 554, close
//! conn=<n> refused               too many concurrent connections: 421, close
//! ```
//!
//! - `prebanner` is written once per connection, just before the banner (or before the 554
//!   of a sync error): what the library's pre-banner classifier made of the input that had
//!   arrived by then (`pipeconnect::server::prebanner`). `class` is `nothing`, `early_flight`,
//!   `banner_first` or `pregreet`; `reason` one of its lower-case reason names (`none`,
//!   `not_offered`, `helo_first`, `not_smtp`, `after_starttls`, ...); `k` the complete
//!   commands of the flight; `b` the bytes looked at; `incomplete=1` when the input ended
//!   inside a line or a BDAT body.
//! - `qhlo` (only with `--quickstart on`, and only when the first line before the banner is
//!   `QHLO`, or after QTLS before the banner the first line over TLS): whether its cookie was
//!   this sink's for this client and capability list (in that TLS state); a `valid` cookie
//!   ends the greet pause at once (`banner t_ms` shows it).
//! - `pipelined_tls` (only with `--quickstart on`): `b` bytes had come behind STARTTLS before
//!   its 220 and were read as the start of the TLS handshake (a pipelined ClientHello).
//! - `qtls` (only with `--quickstart on` and STARTTLS): QTLS was read, and the `b` bytes that
//!   had come behind it are the start of the TLS handshake; `banner=0` when it came before the
//!   banner, which is then not written in cleartext at all (the greeting comes over TLS after
//!   the handshake), `banner=1` when the cleartext banner had already been written. For
//!   `banner=0` the `qhlo` and `prebanner` lines that follow are about the input that came
//!   over TLS before the greeting, and `banner` is when the greeting was written over TLS.
//! - `n` numbers connections from 1 in the order they were accepted.
//! - `ms` is whole milliseconds since this connection was accepted: for a command, when its
//!   first byte was read from the connection (so an early command's time is before the
//!   banner's); for the banner and a sync error, when the line is written.
//! - `tls=1` when the command came over TLS (after STARTTLS).
//! - `early=1` when the command's first byte had arrived before the banner was written.
//! - `cmd=` is the last field and runs to the end of the line: the command as received, without
//!   its CRLF, with control characters shown as `?`, and with AUTH credentials replaced by
//!   `<redacted>` (`AUTH PLAIN <redacted>`). The reply to a 334 challenge is not logged at all.
//!   A line over the length limit is logged as its first 64 bytes followed by `...`.
//! - `id` is the number given in `250 OK id=<id>` (unique per server process, from 1); `size` is
//!   the message's size in bytes (after dot-unstuffing for DATA, the sum of the chunks for BDAT);
//!   `count` is the number of accepted recipients.
//! - Every `accepted` line is followed, eventually, by a `closed` line for the same `n`.
//!
//! Lines are written whole with one write each, so lines of concurrent connections never mix.
//! A `--log` file is appended to (created if missing); without `--log` the lines go to stderr.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use pipeconnect::server::Verdict;

/// Where log lines go; shared by every connection thread.
pub struct Log {
    out: Mutex<Box<dyn Write + Send>>,
}

impl Log {
    /// Appends to `path` (created if missing), or writes to stderr when `path` is `None`.
    pub fn open(path: Option<&Path>) -> io::Result<Log> {
        let out: Box<dyn Write + Send> = match path {
            Some(path) => Box::new(append(path)?),
            None => Box::new(io::stderr()),
        };
        Ok(Log {
            out: Mutex::new(out),
        })
    }

    pub fn accepted(&self, conn: u64) {
        self.line(format!("conn={conn} accepted"));
    }

    pub fn banner(&self, conn: u64, t_ms: u128) {
        self.line(format!("conn={conn} banner t_ms={t_ms}"));
    }

    pub fn command(&self, conn: u64, t_ms: u128, tls: bool, early: bool, line: &[u8]) {
        self.line(command_line(conn, t_ms, tls, early, line));
    }

    pub fn prebanner(&self, conn: u64, t_ms: u128, v: &Verdict) {
        self.line(prebanner_line(conn, t_ms, v));
    }

    pub fn qhlo(&self, conn: u64, t_ms: u128, cookie: &str) {
        self.line(format!("conn={conn} qhlo t_ms={t_ms} cookie={cookie}"));
    }

    pub fn pipelined_tls(&self, conn: u64, t_ms: u128, bytes: usize) {
        self.line(format!(
            "conn={conn} pipelined_tls t_ms={t_ms} bytes={bytes}"
        ));
    }

    pub fn qtls(&self, conn: u64, t_ms: u128, after_banner: bool, bytes: usize) {
        self.line(format!(
            "conn={conn} qtls t_ms={t_ms} banner={} bytes={bytes}",
            u8::from(after_banner)
        ));
    }

    pub fn message(&self, conn: u64, id: u64, bytes: u64, rcpts: u32) {
        self.line(format!(
            "conn={conn} message id={id} bytes={bytes} rcpts={rcpts}"
        ));
    }

    pub fn syncerror(&self, conn: u64, t_ms: u128) {
        self.line(format!("conn={conn} syncerror t_ms={t_ms}"));
    }

    pub fn refused(&self, conn: u64) {
        self.line(format!("conn={conn} refused"));
    }

    pub fn closed(&self, conn: u64) {
        self.line(format!("conn={conn} closed"));
    }

    fn line(&self, mut text: String) {
        text.push('\n');
        let mut out = self.out.lock().unwrap_or_else(PoisonError::into_inner);
        // A log that cannot be written must not take the sink down.
        let _ = out.write_all(text.as_bytes());
        let _ = out.flush();
    }
}

fn append(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot open log {}: {e}", path.display())))
}

/// Formats a `prebanner` line.
pub fn prebanner_line(conn: u64, t_ms: u128, v: &Verdict) -> String {
    format!(
        "conn={conn} prebanner t_ms={t_ms} class={} reason={} commands={} bytes={} incomplete={}",
        v.class.name(),
        v.reason.name(),
        v.commands,
        v.bytes,
        u8::from(v.incomplete)
    )
}

/// The longest prefix of an over-long line that is logged.
pub const LOGGED_PREFIX: usize = 64;

/// Formats a `cmd=` line; `line` is the command without its line ending.
pub fn command_line(conn: u64, t_ms: u128, tls: bool, early: bool, line: &[u8]) -> String {
    format!(
        "t_ms={t_ms} conn={conn} tls={} early={} cmd={}",
        u8::from(tls),
        u8::from(early),
        loggable(line)
    )
}

/// The command as it may appear in the log: printable, one line, no credentials.
pub fn loggable(line: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(line)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    redact_auth(&text)
}

/// `AUTH <mechanism> <anything>` keeps the verb and mechanism only.
fn redact_auth(text: &str) -> String {
    let mut words = text.split_whitespace();
    let is_auth = words
        .next()
        .is_some_and(|verb| verb.eq_ignore_ascii_case("AUTH"));
    if !is_auth {
        return text.to_string();
    }
    match (words.next(), words.next()) {
        (Some(mechanism), Some(_)) => format!("AUTH {mechanism} <redacted>"),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_format() {
        assert_eq!(
            command_line(3, 17, false, true, b"EHLO client.test"),
            "t_ms=17 conn=3 tls=0 early=1 cmd=EHLO client.test"
        );
        assert_eq!(
            command_line(1, 0, true, false, b"MAIL FROM:<a@b>"),
            "t_ms=0 conn=1 tls=1 early=0 cmd=MAIL FROM:<a@b>"
        );
    }

    #[test]
    fn prebanner_line_format() {
        let v = pipeconnect::server::prebanner::classify(
            true,
            Default::default(),
            b"EHLO c\r\nMAIL FROM:<a>\r\nRCPT",
        );
        assert_eq!(
            prebanner_line(2, 5, &v),
            "conn=2 prebanner t_ms=5 class=early_flight reason=none commands=2 bytes=27 incomplete=1"
        );
    }

    #[test]
    fn credentials_are_redacted() {
        assert_eq!(
            loggable(b"AUTH PLAIN AHVzZXIAcGFzcw=="),
            "AUTH PLAIN <redacted>"
        );
        assert_eq!(loggable(b"auth plain ="), "AUTH plain <redacted>");
        assert_eq!(loggable(b"AUTH PLAIN"), "AUTH PLAIN");
        assert_eq!(loggable(b"AUTHX PLAIN abc"), "AUTHX PLAIN abc");
    }

    #[test]
    fn control_characters_cannot_break_lines() {
        assert_eq!(loggable(b"NOOP a\nb\x1bc"), "NOOP a?b?c");
        assert_eq!(loggable(b"NOOP \xff"), "NOOP \u{fffd}");
    }
}
