//! Capabilities in the greeting: a multi-line 220 banner whose lines after the first are
//! EHLO keywords, plus the QUICKSTART keyword and, for a client the server recognises
//! by address, `QHLO=<cookie>`.
//!
//! ```text
//! 220-mx.example ESMTP
//! 220-PIPELINING
//! 220-PIPECONNECT
//! 220-CHUNKING
//! 220-QUICKSTART
//! 220 QHLO=3f0c...
//! ```
//!
//! The client reads such a greeting into the same [`Capabilities`] an EHLO reply gives
//! (and caches it under the same key, with the same TTL and invalidation), with the
//! `QHLO=` line left out of the capabilities and their fingerprint: the cookie is per
//! client, the capability list is not.

use crate::caps::{Capabilities, ParseOptions};
use crate::reply::{Reply, ReplyLimits};
use crate::Error;

/// The keyword that says a server speaks QUICKSTART (QHLO accepted).
pub const QUICKSTART_KEYWORD: &str = "QUICKSTART";
/// The keyword of the cookie line: `QHLO=<cookie>`.
pub const QHLO_KEYWORD: &str = "QHLO";

/// What a greeting said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// The capabilities, as an EHLO reply with the same lines would give them.
    pub caps: Capabilities,
    /// The greeting carried the QUICKSTART keyword.
    pub quickstart: bool,
    /// The cookie of a `QHLO=<cookie>` line, when there was one.
    pub cookie: Option<String>,
}

/// The keyword of a capability line, upper case.
fn keyword(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let first = text.split_ascii_whitespace().next().unwrap_or("");
    first.split('=').next().unwrap_or("").to_ascii_uppercase()
}

/// Read a greeting exactly as received (one complete reply). A one-line 220 gives empty
/// capabilities; a reply that is not 220 is [`Error::NotAnEhloReply`] (the error of a
/// capability reply of the wrong code).
pub fn parse_greeting(bytes: &[u8], opts: ParseOptions) -> Result<Greeting, Error> {
    let reply = Reply::parse(bytes, ReplyLimits::default())?;
    if reply.code() != 220 {
        return Err(Error::NotAnEhloReply);
    }
    let mut cookie = None;
    let mut lines = Vec::with_capacity(reply.lines().len());
    for (i, line) in reply.lines().iter().enumerate() {
        if i > 0 && keyword(line) == QHLO_KEYWORD {
            let text = String::from_utf8_lossy(line);
            let value = text.split_once('=').map(|(_, v)| v.trim().to_string());
            cookie = value.filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic()));
            continue;
        }
        lines.push(line.clone());
    }
    let quickstart = lines
        .iter()
        .skip(1)
        .any(|l| keyword(l) == QUICKSTART_KEYWORD);
    let caps = Capabilities::from_reply(&Reply::new(250, lines), opts)?;
    Ok(Greeting {
        caps,
        quickstart,
        cookie,
    })
}

/// The fingerprint of a server's keyword list (the extension lines of its EHLO reply,
/// without the greeting line), as a client computes it from the greeting: the input of
/// the cookie.
pub fn keywords_fingerprint(keywords: &[String]) -> u64 {
    let mut lines: Vec<Vec<u8>> = vec![b"x".to_vec()];
    lines.extend(
        keywords
            .iter()
            .filter(|k| keyword(k.as_bytes()) != QHLO_KEYWORD)
            .map(|k| k.as_bytes().to_vec()),
    );
    Capabilities::from_reply(&Reply::new(250, lines), ParseOptions::default())
        .map(|c| c.fingerprint())
        .unwrap_or(0)
}

/// The text of a greeting: `first` (the host name and text), the keywords, and the
/// cookie line when there is one. CRLF line ends.
pub fn greeting_text(first: &str, keywords: &[String], cookie: Option<&str>) -> String {
    let mut lines: Vec<String> = vec![first.to_string()];
    lines.extend(keywords.iter().cloned());
    if let Some(c) = cookie {
        lines.push(format!("{QHLO_KEYWORD}={c}"));
    }
    let last = lines.len() - 1;
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| format!("220{}{l}\r\n", if i == last { ' ' } else { '-' }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::Extension;

    fn keywords() -> Vec<String> {
        [
            "PIPELINING",
            "PIPECONNECT",
            "CHUNKING",
            "SIZE 1000",
            QUICKSTART_KEYWORD,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    #[test]
    fn a_greeting_reads_like_the_ehlo_reply_with_the_same_lines() {
        let text = greeting_text("mx.test ESMTP", &keywords(), Some("00ff"));
        assert!(text.starts_with("220-mx.test ESMTP\r\n220-PIPELINING\r\n"));
        assert!(text.ends_with("220 QHLO=00ff\r\n"));
        let g = parse_greeting(text.as_bytes(), ParseOptions::default()).unwrap();
        assert!(g.quickstart);
        assert_eq!(g.cookie.as_deref(), Some("00ff"));
        assert!(g.caps.worth_caching() && g.caps.has(Extension::Chunking));
        assert_eq!(g.caps.size_limit(), Some(1000));
        let ehlo = "250-mx.test Hello\r\n250-PIPELINING\r\n250-PIPECONNECT\r\n\
                    250-CHUNKING\r\n250-SIZE 1000\r\n250 QUICKSTART\r\n";
        let from_ehlo = Capabilities::parse_ehlo(ehlo.as_bytes(), ParseOptions::default()).unwrap();
        assert_eq!(g.caps.fingerprint(), from_ehlo.fingerprint());
        assert_eq!(g.caps.flags(), from_ehlo.flags());
        assert_eq!(keywords_fingerprint(&keywords()), g.caps.fingerprint());
    }

    #[test]
    fn the_cookie_does_not_change_the_fingerprint() {
        let a = greeting_text("mx", &keywords(), Some("aaaa"));
        let b = greeting_text("mx", &keywords(), None);
        let a = parse_greeting(a.as_bytes(), ParseOptions::default()).unwrap();
        let b = parse_greeting(b.as_bytes(), ParseOptions::default()).unwrap();
        assert_eq!(a.caps, b.caps);
        assert_eq!(b.cookie, None);
    }

    #[test]
    fn a_classic_greeting_and_other_codes() {
        let g = parse_greeting(b"220 mx ESMTP\r\n", ParseOptions::default()).unwrap();
        assert!(!g.quickstart && g.cookie.is_none() && g.caps.flags() == 0);
        assert_eq!(
            parse_greeting(b"554 go away\r\n", ParseOptions::default()),
            Err(Error::NotAnEhloReply)
        );
        assert!(parse_greeting(b"220-mx\r\n", ParseOptions::default()).is_err());
        let g = parse_greeting(b"220-mx\r\n220 QHLO=\r\n", ParseOptions::default()).unwrap();
        assert_eq!(g.cookie, None);
    }
}
