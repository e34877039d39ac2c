//! `pipeconnect delay --log FILE`: one line per proxied connection saying how long the client
//! waited and which of its commands crossed the proxy before the server's greeting did.
//!
//! ```text
//! conn=3 elapsed_ms=102.4 first_byte_ms=101.9 banner_ms=25.3 before_banner=EHLO,MAIL,RCPT,DATA
//! ```
//!
//! `elapsed_ms` runs from the accept (the client's connect) to the last byte the proxy wrote
//! back to the client, `first_byte_ms` from the client's first byte reaching the proxy to
//! that same last byte, `banner_ms` from the accept to the server's first byte reaching the
//! proxy. `before_banner` lists the command verbs of the client lines read before the
//! greeting arrived (`-` for none). Only cleartext before the greeting is parsed.

use std::fs::File;
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

/// Longest client line kept while waiting for its end.
const MAX_LINE: usize = 1024;
/// Most verbs listed in one record.
const MAX_VERBS: usize = 1100;

/// The shared log file.
pub type TraceLog = Arc<Mutex<File>>;

#[derive(Debug, Default)]
struct Seen {
    first_client: Option<Instant>,
    last_to_client: Option<Instant>,
    banner: Option<Instant>,
    line: Vec<u8>,
    in_body: bool,
    before_banner: Vec<String>,
}

/// One connection's record, written when the last handle is dropped.
#[derive(Debug)]
pub struct Trace {
    conn: u64,
    accepted_at: Instant,
    log: TraceLog,
    seen: Mutex<Seen>,
}

impl Trace {
    pub fn new(conn: u64, accepted_at: Instant, log: TraceLog) -> Self {
        Trace {
            conn,
            accepted_at,
            log,
            seen: Mutex::new(Seen::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes read from the client.
    pub fn client_sent(&self, bytes: &[u8]) {
        let mut seen = self.lock();
        seen.first_client.get_or_insert_with(Instant::now);
        if seen.banner.is_some() {
            return;
        }
        for &b in bytes {
            if b != b'\n' {
                if seen.line.len() < MAX_LINE {
                    seen.line.push(b);
                }
                continue;
            }
            let line = std::mem::take(&mut seen.line);
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches('\r');
            if seen.in_body {
                seen.in_body = text != ".";
                continue;
            }
            let verb: String = text
                .split([' ', ':'])
                .next()
                .unwrap_or("")
                .chars()
                .filter(char::is_ascii_alphabetic)
                .take(12)
                .collect::<String>()
                .to_ascii_uppercase();
            seen.in_body = verb == "DATA";
            if !verb.is_empty() && seen.before_banner.len() < MAX_VERBS {
                seen.before_banner.push(verb);
            }
        }
    }

    /// Bytes read from the server.
    pub fn server_sent(&self) {
        self.lock().banner.get_or_insert_with(Instant::now);
    }

    /// Bytes written to the client.
    pub fn client_received(&self) {
        self.lock().last_to_client = Some(Instant::now());
    }

    fn record(&self) -> String {
        let seen = self.lock();
        let ms = |from: Option<Instant>, to: Option<Instant>| match (from, to) {
            (Some(a), Some(b)) => {
                format!("{:.1}", b.saturating_duration_since(a).as_secs_f64() * 1e3)
            }
            _ => "-".to_string(),
        };
        let before = if seen.before_banner.is_empty() {
            "-".to_string()
        } else {
            seen.before_banner.join(",")
        };
        format!(
            "conn={} elapsed_ms={} first_byte_ms={} banner_ms={} before_banner={}\n",
            self.conn,
            ms(Some(self.accepted_at), seen.last_to_client),
            ms(seen.first_client, seen.last_to_client),
            ms(Some(self.accepted_at), seen.banner),
            before
        )
    }
}

impl Drop for Trace {
    fn drop(&mut self) {
        let line = self.record();
        let mut file = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = file.write_all(line.as_bytes());
        let _ = file.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace() -> Trace {
        let file = tempfile_in_target();
        Trace::new(1, Instant::now(), Arc::new(Mutex::new(file)))
    }

    fn tempfile_in_target() -> File {
        let path = std::env::temp_dir().join(format!("delay-trace-{}", std::process::id()));
        File::create(path).unwrap()
    }

    #[test]
    fn lists_commands_before_the_greeting_and_skips_the_body() {
        let t = trace();
        t.client_sent(b"EHLO c.example\r\nMAIL FROM:<a@b> SIZE=5\r\nRCPT TO:<c@d>\r\nDATA\r\n");
        t.client_sent(b"body line\r\n.\r\nQU");
        t.server_sent();
        t.client_sent(b"IT\r\n");
        t.client_received();
        let record = t.record();
        assert!(
            record.contains("before_banner=EHLO,MAIL,RCPT,DATA\n"),
            "{record}"
        );
        assert!(record.contains("banner_ms=") && !record.contains("banner_ms=-"));
    }

    #[test]
    fn classic_client_has_nothing_before_the_greeting() {
        let t = trace();
        t.server_sent();
        t.client_sent(b"EHLO c.example\r\n");
        t.client_received();
        assert!(t.record().contains("before_banner=-"), "{}", t.record());
    }
}
