//! What the sink advertises in its EHLO reply.

use super::options::Options;

/// The EHLO keywords, in the order the sink advertises them (Exim's order, PIPECONNECT inside
/// the PIPELINING block): SIZE, 8BITMIME, PIPELINING, PIPECONNECT, AUTH PLAIN, CHUNKING,
/// STARTTLS (only before TLS), SMTPUTF8, LIMITS, HELP; with `--quickstart on`, QUICKSTART and
/// (with STARTTLS, before TLS) QTLS.
pub fn keywords(options: &Options, tls_active: bool) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(size) = options.size {
        out.push(format!("SIZE {size}"));
    }
    out.push("8BITMIME".to_string());
    if options.pipelining {
        out.push("PIPELINING".to_string());
        if options.pipeconnect {
            out.push("PIPECONNECT".to_string());
        }
    }
    if options.auth_plain {
        out.push("AUTH PLAIN".to_string());
    }
    if options.chunking {
        out.push("CHUNKING".to_string());
    }
    if options.starttls && !tls_active {
        out.push("STARTTLS".to_string());
    }
    out.push("SMTPUTF8".to_string());
    if let Some(max) = options.limits_rcptmax {
        out.push(format!("LIMITS RCPTMAX={max}"));
    }
    out.push("HELP".to_string());
    if options.quickstart {
        out.push(pipeconnect::server::quickstart::QUICKSTART_KEYWORD.to_string());
        if options.starttls && !tls_active {
            out.push(QTLS_KEYWORD.to_string());
        }
    }
    out
}

/// The keyword that offers QTLS (SMTP QUICKSTART, experimental): listed in cleartext with
/// `--quickstart on` and STARTTLS, never over TLS.
pub const QTLS_KEYWORD: &str = "QTLS";

/// The lines of the EHLO reply: the greeting line, then the keywords.
pub fn reply_lines(options: &Options, tls_active: bool, client: &str) -> Vec<String> {
    let mut lines = vec![format!("{} Hello {client}", options.hostname)];
    lines.extend(keywords(options, tls_active));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_on_in_order() {
        let options = Options {
            size: Some(1000),
            auth_plain: true,
            starttls: true,
            limits_rcptmax: Some(5),
            ..Options::default()
        };
        assert_eq!(
            keywords(&options, false),
            [
                "SIZE 1000",
                "8BITMIME",
                "PIPELINING",
                "PIPECONNECT",
                "AUTH PLAIN",
                "CHUNKING",
                "STARTTLS",
                "SMTPUTF8",
                "LIMITS RCPTMAX=5",
                "HELP"
            ]
        );
        assert!(!keywords(&options, true).contains(&"STARTTLS".to_string()));
    }

    #[test]
    fn qtls_only_with_quickstart_and_starttls_in_cleartext() {
        let options = Options {
            starttls: true,
            quickstart: true,
            ..Options::default()
        };
        let words = keywords(&options, false);
        assert_eq!(words[words.len() - 2..], ["QUICKSTART", "QTLS"]);
        assert!(!keywords(&options, true).contains(&"QTLS".to_string()));
        let no_tls = Options {
            quickstart: true,
            ..Options::default()
        };
        assert!(!keywords(&no_tls, false).contains(&"QTLS".to_string()));
    }

    #[test]
    fn minimal() {
        let options = Options {
            pipelining: false,
            chunking: false,
            ..Options::default()
        };
        assert_eq!(keywords(&options, false), ["8BITMIME", "SMTPUTF8", "HELP"]);
    }
}
