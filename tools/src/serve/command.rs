//! Parsing one SMTP command line into a [`Command`].

/// A command the sink understands, or why a line is not one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Helo(String),
    Ehlo(String),
    /// `QHLO name [cookie]` (SMTP QUICKSTART, experimental): EHLO that may come before
    /// the banner, with the cookie of an earlier greeting.
    Qhlo {
        name: String,
        cookie: Option<String>,
    },
    StartTls,
    /// `QTLS` (SMTP QUICKSTART, experimental): STARTTLS without the 220; the bytes behind
    /// it are the start of the TLS stream, and the greeting comes over TLS.
    Qtls,
    Auth {
        mechanism: String,
        /// The initial response, as sent (`=` stands for an empty one).
        initial: Option<String>,
    },
    Mail {
        path: String,
        /// The `SIZE=` parameter.
        size: Option<u64>,
    },
    Rcpt {
        path: String,
    },
    Data,
    Bdat {
        size: u64,
        last: bool,
    },
    Rset,
    Noop,
    Help,
    Quit,
    /// A known verb with bad arguments; the text is the 501 reply's explanation.
    Syntax(&'static str),
    Unknown,
}

/// Parses a line without its line ending.
pub fn parse(line: &str) -> Command {
    let (verb, rest) = match line.split_once(' ') {
        Some((verb, rest)) => (verb, rest.trim()),
        None => (line, ""),
    };
    match verb.to_ascii_uppercase().as_str() {
        "HELO" => greeting(rest).map_or(Command::Syntax("HELO needs a domain"), Command::Helo),
        "EHLO" => greeting(rest).map_or(Command::Syntax("EHLO needs a domain"), Command::Ehlo),
        "QHLO" => qhlo(rest),
        "STARTTLS" => no_arguments(rest, Command::StartTls),
        "QTLS" => no_arguments(rest, Command::Qtls),
        "AUTH" => auth(rest),
        "MAIL" => mail(rest),
        "RCPT" => rcpt(rest),
        "DATA" => no_arguments(rest, Command::Data),
        "BDAT" => bdat(rest),
        "RSET" => no_arguments(rest, Command::Rset),
        "NOOP" => Command::Noop,
        "HELP" => Command::Help,
        "QUIT" => no_arguments(rest, Command::Quit),
        _ => Command::Unknown,
    }
}

fn greeting(rest: &str) -> Option<String> {
    let name = rest.split_whitespace().next()?;
    Some(name.to_string())
}

fn qhlo(rest: &str) -> Command {
    let mut words = rest.split_whitespace();
    let Some(name) = words.next() else {
        return Command::Syntax("QHLO needs a domain");
    };
    let cookie = words.next().map(str::to_string);
    if words.next().is_some() {
        return Command::Syntax("QHLO takes a domain and at most one cookie");
    }
    Command::Qhlo {
        name: name.to_string(),
        cookie,
    }
}

fn no_arguments(rest: &str, command: Command) -> Command {
    if rest.is_empty() {
        command
    } else {
        Command::Syntax("this command takes no arguments")
    }
}

fn auth(rest: &str) -> Command {
    let mut words = rest.split_whitespace();
    let Some(mechanism) = words.next() else {
        return Command::Syntax("AUTH needs a mechanism");
    };
    let initial = words.next().map(str::to_string);
    if words.next().is_some() {
        return Command::Syntax("AUTH takes a mechanism and at most one response");
    }
    Command::Auth {
        mechanism: mechanism.to_ascii_uppercase(),
        initial,
    }
}

fn mail(rest: &str) -> Command {
    let Some((path, params)) = path_after(rest, "FROM:") else {
        return Command::Syntax("use MAIL FROM:<address>");
    };
    let mut size = None;
    for param in params.split_whitespace() {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        if key.eq_ignore_ascii_case("SIZE") {
            match value.parse() {
                Ok(n) => size = Some(n),
                Err(_) => return Command::Syntax("SIZE needs a number"),
            }
        }
    }
    Command::Mail { path, size }
}

fn rcpt(rest: &str) -> Command {
    match path_after(rest, "TO:") {
        Some((path, _)) if !path.is_empty() => Command::Rcpt { path },
        _ => Command::Syntax("use RCPT TO:<address>"),
    }
}

/// `FROM:<path> params` (or `FROM: path`) → the path without brackets, and the parameters.
fn path_after<'a>(rest: &'a str, keyword: &str) -> Option<(String, &'a str)> {
    let head = rest.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let rest = rest[keyword.len()..].trim_start();
    if let Some(inner) = rest.strip_prefix('<') {
        let end = inner.find('>')?;
        return Some((inner[..end].to_string(), &inner[end + 1..]));
    }
    let (path, params) = rest.split_once(' ').unwrap_or((rest, ""));
    if path.is_empty() {
        return None;
    }
    Some((path.to_string(), params))
}

fn bdat(rest: &str) -> Command {
    let mut words = rest.split_whitespace();
    let size = match words.next().map(|w| (w, w.parse::<u64>())) {
        Some((w, Ok(n))) if w.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => return Command::Syntax("use BDAT <size> [LAST]"),
    };
    let last = match words.next() {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Command::Syntax("use BDAT <size> [LAST]"),
    };
    if words.next().is_some() {
        return Command::Syntax("use BDAT <size> [LAST]");
    }
    Command::Bdat { size, last }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greetings() {
        assert_eq!(
            parse("EHLO client.test"),
            Command::Ehlo("client.test".into())
        );
        assert_eq!(parse("helo x"), Command::Helo("x".into()));
        assert!(matches!(parse("EHLO"), Command::Syntax(_)));
    }

    #[test]
    fn mail_and_rcpt() {
        assert_eq!(
            parse("MAIL FROM:<a@b.test> SIZE=120 BODY=8BITMIME"),
            Command::Mail {
                path: "a@b.test".into(),
                size: Some(120)
            }
        );
        assert_eq!(
            parse("mail from:<>"),
            Command::Mail {
                path: String::new(),
                size: None
            }
        );
        assert_eq!(
            parse("RCPT TO: <x@y.test>"),
            Command::Rcpt {
                path: "x@y.test".into()
            }
        );
        assert_eq!(
            parse("RCPT TO:x@y.test"),
            Command::Rcpt {
                path: "x@y.test".into()
            }
        );
        assert!(matches!(parse("MAIL TO:<a@b>"), Command::Syntax(_)));
        assert!(matches!(parse("RCPT TO:<>"), Command::Syntax(_)));
        assert!(matches!(parse("RCPT TO:<a@b"), Command::Syntax(_)));
        assert!(matches!(
            parse("MAIL FROM:<a@b> SIZE=x"),
            Command::Syntax(_)
        ));
    }

    #[test]
    fn bdat() {
        assert_eq!(
            parse("BDAT 10 LAST"),
            Command::Bdat {
                size: 10,
                last: true
            }
        );
        assert_eq!(
            parse("bdat 0"),
            Command::Bdat {
                size: 0,
                last: false
            }
        );
        assert!(matches!(parse("BDAT -1"), Command::Syntax(_)));
        assert!(matches!(parse("BDAT +1"), Command::Syntax(_)));
        assert!(matches!(parse("BDAT 1 FIRST"), Command::Syntax(_)));
    }

    #[test]
    fn auth() {
        assert_eq!(
            parse("AUTH plain AHUAcA=="),
            Command::Auth {
                mechanism: "PLAIN".into(),
                initial: Some("AHUAcA==".into())
            }
        );
        assert_eq!(
            parse("AUTH PLAIN"),
            Command::Auth {
                mechanism: "PLAIN".into(),
                initial: None
            }
        );
    }

    #[test]
    fn others() {
        assert_eq!(parse("DATA"), Command::Data);
        assert_eq!(parse("QUIT"), Command::Quit);
        assert_eq!(parse("NOOP anything"), Command::Noop);
        assert_eq!(parse("STARTTLS"), Command::StartTls);
        assert_eq!(parse("qtls"), Command::Qtls);
        assert!(matches!(parse("QTLS now"), Command::Syntax(_)));
        assert!(matches!(parse("DATA now"), Command::Syntax(_)));
        assert_eq!(parse("VRFY x"), Command::Unknown);
        assert_eq!(parse(""), Command::Unknown);
    }
}
