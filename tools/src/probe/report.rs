//! What a probe found, in words: the capabilities of each TLS state, whether early
//! pipelining is usable, and the round trips it would save.
//!
//! The saving follows the PIPE_CONNECT proposal (the project's seed): an early flight
//! takes 1.5 round trips out of a cleartext connection (the wait for the banner and for
//! the EHLO reply) and 2.5 out of a STARTTLS one (also the wait for the EHLO reply after
//! the handshake). With CHUNKING, `BDAT LAST` carries the body in the same flight as
//! MAIL and RCPT, which saves one more (the wait for DATA's 354).

use pipeconnect::caps::Extension;
use pipeconnect::Capabilities;

/// What the probe learned about one TLS state.
#[derive(Debug, Clone)]
pub struct StateReport {
    /// The capabilities read from the state's EHLO reply.
    pub caps: Capabilities,
    /// Whether `PIPECONNECT` counted only because legacy keywords were asked for.
    pub legacy_only: bool,
}

impl StateReport {
    /// PIPECONNECT and PIPELINING: what an early flight needs.
    pub fn early_usable(&self) -> bool {
        self.caps.has(Extension::PipeConnect) && self.caps.has(Extension::Pipelining)
    }
}

/// The saving, in half round trips, with what it is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Saving {
    /// Half round trips saved by the early flight(s).
    pub early_halves: u32,
    /// Whether one flight (BDAT LAST with the body) saves one more round trip.
    pub one_flight: bool,
}

impl Saving {
    /// Everything, in half round trips.
    pub fn total_halves(&self) -> u32 {
        self.early_halves + if self.one_flight { 2 } else { 0 }
    }
}

/// The saving for a client that uses what was probed: cleartext only, or STARTTLS when
/// the encrypted state was probed.
pub fn saving(cleartext: &StateReport, encrypted: Option<&StateReport>) -> Saving {
    if !cleartext.early_usable() {
        // Exim (and the library) send early in the encrypted state only on connections
        // whose cleartext phase went early.
        return Saving {
            early_halves: 0,
            one_flight: false,
        };
    }
    match encrypted {
        None => Saving {
            early_halves: 3,
            one_flight: cleartext.caps.has(Extension::Chunking),
        },
        Some(enc) if enc.early_usable() => Saving {
            early_halves: 5,
            one_flight: enc.caps.has(Extension::Chunking),
        },
        // Early EHLO and STARTTLS in cleartext; after the handshake, classic.
        Some(_) => Saving {
            early_halves: 3,
            one_flight: false,
        },
    }
}

/// Half round trips as text: `0`, `1.5`, `3`.
pub fn halves(n: u32) -> String {
    if n.is_multiple_of(2) {
        format!("{}", n / 2)
    } else {
        format!("{}.5", n / 2)
    }
}

/// The advertised extensions, one word each: `PIPELINING PIPECONNECT SIZE=52428800
/// AUTH=PLAIN,LOGIN LIMITS=RCPTMAX:10 ...`.
pub fn extensions(caps: &Capabilities) -> String {
    let mut words = Vec::new();
    for ext in Extension::ALL {
        if !caps.has(ext) {
            continue;
        }
        let word = match ext {
            Extension::Size => match caps.size_limit() {
                Some(n) => format!("SIZE={n}"),
                None => "SIZE".to_string(),
            },
            Extension::Auth => {
                let mechs = caps.auth_mechanisms();
                if mechs.is_empty() {
                    "AUTH".to_string()
                } else {
                    format!("AUTH={}", mechs.join(","))
                }
            }
            Extension::Limits => {
                let l = caps.limits();
                let mut parts = Vec::new();
                for (name, v) in [
                    ("MAILMAX", l.mail_max),
                    ("RCPTMAX", l.rcpt_max),
                    ("RCPTDOMAINMAX", l.rcpt_domain_max),
                ] {
                    if let Some(v) = v {
                        parts.push(format!("{name}:{v}"));
                    }
                }
                if parts.is_empty() {
                    "LIMITS".to_string()
                } else {
                    format!("LIMITS={}", parts.join(","))
                }
            }
            other => other.keyword().to_string(),
        };
        words.push(word);
    }
    if words.is_empty() {
        "(no extensions)".to_string()
    } else {
        words.join(" ")
    }
}

/// The sentence about early pipelining in one state.
pub fn early_sentence(state: &StateReport) -> String {
    let c = &state.caps;
    match (c.has(Extension::PipeConnect), c.has(Extension::Pipelining)) {
        (true, true) if state.legacy_only => {
            "usable (legacy keyword PIPE_CONNECT or X_PIPE_CONNECT, Exim 4.92 to 4.95)".into()
        }
        (true, true) => "usable (PIPECONNECT and PIPELINING advertised)".into(),
        (true, false) => "not usable (PIPECONNECT without PIPELINING)".into(),
        (false, _) => "not offered (no PIPECONNECT)".into(),
    }
}

/// The saving sentence.
pub fn saving_sentence(s: &Saving, starttls: bool) -> String {
    if s.early_halves == 0 {
        return "none: early pipelining is not offered in cleartext".into();
    }
    let what = if s.early_halves == 5 {
        "banner, EHLO, and EHLO after STARTTLS"
    } else if starttls {
        "banner and EHLO; after STARTTLS the encrypted EHLO lacks PIPECONNECT"
    } else {
        "banner and EHLO"
    };
    let mut text = format!(
        "{} round trips with an early flight ({what})",
        halves(s.early_halves)
    );
    if s.one_flight {
        text.push_str(&format!(
            ", +1 with the whole message in one flight (CHUNKING): {}",
            halves(s.total_halves())
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipeconnect::ParseOptions;

    fn state(lines: &[&str]) -> StateReport {
        let mut r = String::from("250-mx.example\r\n");
        for (i, l) in lines.iter().enumerate() {
            let sep = if i + 1 == lines.len() { ' ' } else { '-' };
            r.push_str(&format!("250{sep}{l}\r\n"));
        }
        StateReport {
            caps: Capabilities::parse_ehlo(r.as_bytes(), ParseOptions::default()).unwrap(),
            legacy_only: false,
        }
    }

    #[test]
    fn savings_follow_the_seed() {
        let full = state(&["PIPELINING", "PIPECONNECT", "CHUNKING", "STARTTLS"]);
        let plain = state(&["PIPELINING", "PIPECONNECT"]);
        let none = state(&["PIPELINING", "CHUNKING"]);
        assert_eq!(saving(&plain, None).total_halves(), 3);
        assert_eq!(saving(&full, None).total_halves(), 5);
        assert_eq!(saving(&full, Some(&full)).total_halves(), 7);
        assert_eq!(saving(&full, Some(&plain)).total_halves(), 5);
        assert_eq!(saving(&full, Some(&none)).total_halves(), 3);
        assert_eq!(saving(&none, Some(&full)).total_halves(), 0);
        assert_eq!(halves(7), "3.5");
        assert_eq!(halves(0), "0");
        assert_eq!(halves(4), "2");
    }

    #[test]
    fn extension_words() {
        let s = state(&[
            "PIPELINING",
            "SIZE 1000",
            "AUTH PLAIN LOGIN",
            "LIMITS RCPTMAX=5",
        ]);
        assert_eq!(
            extensions(&s.caps),
            "PIPELINING SIZE=1000 LIMITS=RCPTMAX:5 AUTH=PLAIN,LOGIN"
        );
        assert!(early_sentence(&s).starts_with("not offered"));
        let s = state(&["PIPECONNECT"]);
        assert!(early_sentence(&s).starts_with("not usable"));
    }
}
