//! Input that arrived before the banner: a well-formed early flight, input to answer with
//! the banner first, or a pregreet violation.
//!
//! A [`Prebanner`] is fed the bytes a server found waiting before it wrote its banner (in
//! any pieces: the verdict depends only on the bytes, never on how they were split) and
//! looks at no more than its [`PrebannerLimits`]. It keeps one partial line (at most
//! [`PREBANNER_LINE_MAX`] bytes) and one small record per command, so its memory is
//! bounded by the limits, whatever arrives.
//!
//! The table (docs/RULES.md, "The server side", gives the sources):
//!
//! | input                                                         | offered     | not offered |
//! |---------------------------------------------------------------|-------------|-------------|
//! | nothing                                                       | Nothing     | Nothing     |
//! | EHLO, then what the early-flight rules allow, QUIT last       | EarlyFlight | Pregreet (NotOffered) |
//! | EHLO, then a command the rules keep out of a flight (RSET,    | BannerFirst | Pregreet (NotOffered) |
//! |  NOOP, BDAT without LAST), input after STARTTLS, QUIT, or an  |             |             |
//! |  AUTH that waits for a challenge, a body or input over limits |             |             |
//! | HELO, MAIL or any other command first; garbage; binary; a     | Pregreet    | Pregreet    |
//! |  line over 1000 bytes; commands out of SMTP's order; input    |             |             |
//! |  after DATA (the body must wait for the 354)                  |             |             |

use crate::policy::{auth_pipelinable, validate_sequence, Command, DEFAULT_MAX_FIRST_FLIGHT_BODY};

/// The longest line looked at, line ending included (RFC 5321 allows 512 for a command
/// line; servers accept more). A longer line before the banner is a pregreet violation.
pub const PREBANNER_LINE_MAX: usize = 1000;
/// The default of [`PrebannerLimits::max_bytes`].
pub const PREBANNER_DEFAULT_MAX_BYTES: u64 = 64 * 1024;
/// The default of [`PrebannerLimits::max_commands`].
pub const PREBANNER_DEFAULT_MAX_COMMANDS: u32 = 100;
/// The largest [`PrebannerLimits::max_commands`] accepted (the policy's own bound).
pub const PREBANNER_MAX_COMMANDS_LIMIT: u32 = crate::policy::SEQUENCE_MAX as u32;

/// How much a [`Prebanner`] looks at. Input beyond a limit is not looked at: the verdict
/// becomes [`Class::BannerFirst`] (unless it was already [`Class::Pregreet`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PrebannerLimits {
    /// Bytes looked at in all, BDAT bodies included.
    pub max_bytes: u64,
    /// Command lines looked at.
    pub max_commands: u32,
    /// The largest BDAT LAST body in an early flight (the client side's
    /// `max_first_flight_body`).
    pub max_body: u64,
}

impl Default for PrebannerLimits {
    fn default() -> Self {
        PrebannerLimits {
            max_bytes: PREBANNER_DEFAULT_MAX_BYTES,
            max_commands: PREBANNER_DEFAULT_MAX_COMMANDS,
            max_body: DEFAULT_MAX_FIRST_FLIGHT_BODY,
        }
    }
}

/// What the server should do with the input. The numbers are the C values
/// (`PIPECONNECT_PREBANNER_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum Class {
    /// No input: write the banner as usual.
    Nothing = 0,
    /// A well-formed early flight (so far, when `incomplete`): write the banner, then
    /// process the commands as usual; the banner may leave in one write with the EHLO
    /// reply.
    EarlyFlight = 1,
    /// A client that talks SMTP but went beyond what may go early: write the banner
    /// first, then process the input as usual (each command gets its usual reply;
    /// input after STARTTLS is discarded as RFC 3207 says).
    BannerFirst = 2,
    /// A pregreet violation: an early talker that is not an early-pipelining client (or
    /// one this server did not offer PIPECONNECT to). Exim answers
    /// `554 SMTP synchronization error` and closes; a postscreen-like test scores it.
    Pregreet = 3,
}

impl Class {
    /// Every class, in numeric order.
    pub const ALL: [Class; 4] = [
        Class::Nothing,
        Class::EarlyFlight,
        Class::BannerFirst,
        Class::Pregreet,
    ];

    /// The class with this C value.
    pub fn from_u32(v: u32) -> Option<Class> {
        Self::ALL.get(usize::try_from(v).ok()?).copied()
    }

    /// A lower-case name for logs: `nothing`, `early_flight`, `banner_first`, `pregreet`.
    pub fn name(self) -> &'static str {
        match self {
            Class::Nothing => "nothing",
            Class::EarlyFlight => "early_flight",
            Class::BannerFirst => "banner_first",
            Class::Pregreet => "pregreet",
        }
    }
}

/// Why the input got its class. The numbers are the C values
/// (`PIPECONNECT_PREBANNER_REASON_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum Reason {
    /// Nothing wrong (no input, or a well-formed early flight).
    None = 0,
    /// Input from a client this server does not offer PIPECONNECT to; the input itself
    /// would have been acceptable from a client it offers it to.
    NotOffered = 1,
    /// The first line is HELO: an RFC 821 client waits for the banner.
    HeloFirst = 2,
    /// The first line is an SMTP command other than EHLO (a bot's MAIL, QUIT, ...).
    CommandFirst = 3,
    /// A line that is no SMTP command: garbage, binary (a TLS ClientHello), HTTP,
    /// control characters, an empty line.
    NotSmtp = 4,
    /// A known command with unusable arguments (EHLO without a name, `MAIL` without
    /// `FROM:`, BDAT without a size).
    BadSyntax = 5,
    /// Known commands in an order SMTP does not allow (RCPT before MAIL, a second EHLO,
    /// HELO after EHLO, ...).
    OutOfOrder = 6,
    /// A line longer than [`PREBANNER_LINE_MAX`] bytes.
    LineTooLong = 7,
    /// Input after DATA: the body must wait for the 354.
    BodyBeforeReply = 8,
    /// Input after STARTTLS (the server discards it, RFC 3207).
    AfterStartTls = 9,
    /// Input after an AUTH that waits for a challenge (no initial response, or a
    /// mechanism that needs more than one round trip).
    AfterAuthChallenge = 10,
    /// Input after QUIT.
    AfterQuit = 11,
    /// A command the early-flight rules keep out of a flight (RSET, NOOP, HELP, VRFY,
    /// EXPN, BDAT without LAST).
    NotEarlyCommand = 12,
    /// A BDAT LAST body larger than [`PrebannerLimits::max_body`].
    BodyTooLarge = 13,
    /// More command lines than [`PrebannerLimits::max_commands`].
    TooManyCommands = 14,
    /// More bytes than [`PrebannerLimits::max_bytes`].
    TooMuchInput = 15,
}

impl Reason {
    /// Every reason, in numeric order.
    pub const ALL: [Reason; 16] = [
        Reason::None,
        Reason::NotOffered,
        Reason::HeloFirst,
        Reason::CommandFirst,
        Reason::NotSmtp,
        Reason::BadSyntax,
        Reason::OutOfOrder,
        Reason::LineTooLong,
        Reason::BodyBeforeReply,
        Reason::AfterStartTls,
        Reason::AfterAuthChallenge,
        Reason::AfterQuit,
        Reason::NotEarlyCommand,
        Reason::BodyTooLarge,
        Reason::TooManyCommands,
        Reason::TooMuchInput,
    ];

    /// The reason with this C value.
    pub fn from_u32(v: u32) -> Option<Reason> {
        Self::ALL.get(usize::try_from(v).ok()?).copied()
    }

    /// A lower-case name for logs (`helo_first`, `after_starttls`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Reason::None => "none",
            Reason::NotOffered => "not_offered",
            Reason::HeloFirst => "helo_first",
            Reason::CommandFirst => "command_first",
            Reason::NotSmtp => "not_smtp",
            Reason::BadSyntax => "bad_syntax",
            Reason::OutOfOrder => "out_of_order",
            Reason::LineTooLong => "line_too_long",
            Reason::BodyBeforeReply => "body_before_reply",
            Reason::AfterStartTls => "after_starttls",
            Reason::AfterAuthChallenge => "after_auth_challenge",
            Reason::AfterQuit => "after_quit",
            Reason::NotEarlyCommand => "not_early_command",
            Reason::BodyTooLarge => "body_too_large",
            Reason::TooManyCommands => "too_many_commands",
            Reason::TooMuchInput => "too_much_input",
        }
    }
}

/// The classification of the input so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Verdict {
    /// What to do.
    pub class: Class,
    /// Why.
    pub reason: Reason,
    /// Complete command lines accepted as part of the flight.
    pub commands: u32,
    /// Bytes looked at (at most `max_bytes`).
    pub bytes: u64,
    /// The input ends inside a line or a BDAT body: more is on its way.
    pub incomplete: bool,
}

/// A state after which any further byte decides the class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Last {
    Data,
    StartTls,
    Quit,
    AuthChallenge,
}

impl Last {
    fn then(self) -> (Class, Reason) {
        match self {
            Last::Data => (Class::Pregreet, Reason::BodyBeforeReply),
            Last::StartTls => (Class::BannerFirst, Reason::AfterStartTls),
            Last::Quit => (Class::BannerFirst, Reason::AfterQuit),
            Last::AuthChallenge => (Class::BannerFirst, Reason::AfterAuthChallenge),
        }
    }
}

/// One command line, as far as the classifier needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    /// A command of the early-flight rules, and whether it ends what may follow.
    Flight(Command),
    Helo,
    Quit,
    /// BDAT with a body of this size that is not the last chunk.
    BdatMore,
    /// RSET, NOOP, HELP, VRFY, EXPN, ETRN.
    NotEarly,
    BadSyntax,
    NotSmtp,
}

/// The incremental classifier of pre-banner input. See the module's table.
#[derive(Debug, Clone)]
pub struct Prebanner {
    offered: bool,
    /// QHLO counts as EHLO (QUICKSTART, experimental).
    quickstart: bool,
    limits: PrebannerLimits,
    /// The current line, without its LF; never over [`PREBANNER_LINE_MAX`] bytes.
    partial: Vec<u8>,
    /// The commands of the flight so far, for the policy's order check.
    flight: Vec<Command>,
    /// Complete command lines looked at.
    lines: u32,
    bytes: u64,
    /// Bytes of a BDAT LAST body still to skip.
    body_left: u64,
    last: Option<Last>,
    /// Decided: further input is not looked at.
    decided: Option<(Class, Reason)>,
}

impl Prebanner {
    /// A classifier for one connection. `offered`: whether this server advertises
    /// PIPECONNECT to this client (its own per-connection decision).
    pub fn new(offered: bool, limits: PrebannerLimits) -> Prebanner {
        Prebanner {
            offered,
            quickstart: false,
            limits,
            partial: Vec::new(),
            flight: Vec::new(),
            lines: 0,
            bytes: 0,
            body_left: 0,
            last: None,
            decided: None,
        }
    }

    /// Also take `QHLO name [cookie]` (SMTP QUICKSTART, experimental) where EHLO may stand.
    pub fn with_quickstart(mut self, on: bool) -> Prebanner {
        self.quickstart = on;
        self
    }

    /// Whether the verdict can no longer change, whatever follows.
    pub fn is_decided(&self) -> bool {
        self.decided.is_some()
    }

    /// Look at more input. Returns how many of `data`'s bytes were looked at: fewer than
    /// `data.len()` once the verdict is decided or the byte limit is reached.
    pub fn feed(&mut self, data: &[u8]) -> usize {
        let mut used = 0;
        while used < data.len() && self.decided.is_none() {
            if self.bytes >= self.limits.max_bytes {
                self.decide_over_limit(Reason::TooMuchInput);
                break;
            }
            let room = usize::try_from(self.limits.max_bytes - self.bytes).unwrap_or(usize::MAX);
            let rest = &data[used..];
            let n = if self.body_left > 0 {
                let n = usize::try_from(self.body_left)
                    .unwrap_or(usize::MAX)
                    .min(rest.len())
                    .min(room);
                self.body_left -= n as u64;
                n
            } else {
                self.byte(rest[0]);
                1
            };
            used += n;
            self.bytes += n as u64;
        }
        used
    }

    /// The classification of what was fed so far.
    pub fn verdict(&self) -> Verdict {
        let (class, reason) = self.as_offered();
        let (class, reason) = match (self.offered, class) {
            (_, Class::Nothing) | (true, _) | (false, Class::Pregreet) => (class, reason),
            (false, _) => (Class::Pregreet, Reason::NotOffered),
        };
        Verdict {
            class,
            reason,
            commands: u32::try_from(self.flight.len()).unwrap_or(u32::MAX),
            bytes: self.bytes,
            incomplete: self.decided.is_none() && (!self.partial.is_empty() || self.body_left > 0),
        }
    }

    /// The class as if PIPECONNECT were offered.
    fn as_offered(&self) -> (Class, Reason) {
        if let Some(d) = self.decided {
            return d;
        }
        if self.bytes == 0 {
            return (Class::Nothing, Reason::None);
        }
        // A first line still arriving that can no longer be EHLO.
        if self.lines == 0
            && !self.partial.is_empty()
            && !could_be_ehlo(&self.partial, self.quickstart)
        {
            return first_line_class(&parse(&self.partial, self.quickstart));
        }
        (Class::EarlyFlight, Reason::None)
    }

    fn decide(&mut self, class: Class, reason: Reason) {
        self.decided = Some((class, reason));
        self.partial = Vec::new();
    }

    /// A limit was reached: what was looked at keeps a pregreet verdict, anything else
    /// is answered with the banner first.
    fn decide_over_limit(&mut self, reason: Reason) {
        match self.as_offered() {
            (Class::Pregreet, r) => self.decide(Class::Pregreet, r),
            _ => self.decide(Class::BannerFirst, reason),
        }
    }

    fn byte(&mut self, b: u8) {
        if let Some(last) = self.last {
            let (class, reason) = last.then();
            self.decide(class, reason);
            return;
        }
        if b == b'\n' {
            let mut line = std::mem::take(&mut self.partial);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            self.line(&line);
            return;
        }
        // A CR not followed by LF, or a control character: not a command line.
        let after_cr = self.partial.last() == Some(&b'\r');
        if after_cr || (b.is_ascii_control() && b != b'\r' && b != b'\t') {
            self.decide_not_smtp();
            return;
        }
        if self.partial.len() + 1 >= PREBANNER_LINE_MAX {
            // The LF would make the line longer than allowed.
            self.decide(Class::Pregreet, Reason::LineTooLong);
            return;
        }
        self.partial.push(b);
    }

    fn decide_not_smtp(&mut self) {
        self.decide(Class::Pregreet, Reason::NotSmtp);
    }

    fn line(&mut self, text: &[u8]) {
        if self.lines >= self.limits.max_commands {
            self.decide_over_limit(Reason::TooManyCommands);
            return;
        }
        self.lines += 1;
        let parsed = parse(text, self.quickstart);
        if self.lines == 1 && parsed != Line::Flight(Command::Ehlo) {
            let (class, reason) = first_line_class(&parsed);
            self.decide(class, reason);
            return;
        }
        let command = match parsed {
            Line::Flight(c) => c,
            Line::Quit => {
                self.last = Some(Last::Quit);
                return;
            }
            Line::Helo => return self.decide(Class::Pregreet, Reason::OutOfOrder),
            Line::BdatMore | Line::NotEarly => {
                return self.decide(Class::BannerFirst, Reason::NotEarlyCommand)
            }
            Line::BadSyntax => return self.decide(Class::Pregreet, Reason::BadSyntax),
            Line::NotSmtp => return self.decide_not_smtp(),
        };
        self.flight.push(command);
        if validate_sequence(&self.flight, false).is_err() {
            self.flight.pop();
            return self.decide(Class::Pregreet, Reason::OutOfOrder);
        }
        match self.flight.last() {
            Some(Command::StartTls) => self.last = Some(Last::StartTls),
            Some(Command::Data) => self.last = Some(Last::Data),
            Some(Command::Auth {
                mechanism,
                initial_response,
            }) if !auth_pipelinable(mechanism, *initial_response) => {
                self.last = Some(Last::AuthChallenge)
            }
            Some(Command::BdatLast { size }) => {
                if *size > self.limits.max_body {
                    self.flight.pop();
                    self.decide(Class::BannerFirst, Reason::BodyTooLarge);
                } else {
                    self.body_left = *size;
                }
            }
            _ => {}
        }
    }
}

/// What a first line other than EHLO means.
fn first_line_class(line: &Line) -> (Class, Reason) {
    let reason = match line {
        Line::Helo => Reason::HeloFirst,
        Line::NotSmtp => Reason::NotSmtp,
        Line::Flight(Command::Ehlo) | Line::BadSyntax => Reason::BadSyntax,
        _ => Reason::CommandFirst,
    };
    (Class::Pregreet, reason)
}

/// Whether a line that has begun could still turn out to be `EHLO name` (or `QHLO name`
/// with QUICKSTART).
fn could_be_ehlo(partial: &[u8], quickstart: bool) -> bool {
    let prefix_of = |want: &[u8]| {
        let n = partial.len().min(want.len());
        partial[..n].eq_ignore_ascii_case(&want[..n])
    };
    prefix_of(b"EHLO ") || (quickstart && prefix_of(b"QHLO "))
}

/// The verb of a line and what follows it (after one or more spaces).
fn split_verb(line: &[u8]) -> (&[u8], &[u8]) {
    let end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    let rest = &line[end..];
    let skip = rest.iter().take_while(|&&b| b == b' ').count();
    (&line[..end], &rest[skip..])
}

fn starts_with_ignore_case(s: &[u8], prefix: &[u8]) -> bool {
    s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// A decimal size of at most 20 digits that fits a u64.
fn size(word: &[u8]) -> Option<u64> {
    if word.is_empty() || word.len() > 20 || !word.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(word).ok()?.parse().ok()
}

/// What one complete line (without its line ending) is.
fn parse(line: &[u8], quickstart: bool) -> Line {
    let (verb, args) = split_verb(line);
    let verb = verb.to_ascii_uppercase();
    let words: Vec<&[u8]> = args
        .split(|&b| b == b' ')
        .filter(|w| !w.is_empty())
        .collect();
    match verb.as_slice() {
        b"EHLO" if words.is_empty() => Line::BadSyntax,
        b"EHLO" => Line::Flight(Command::Ehlo),
        b"QHLO" if quickstart && (1..=2).contains(&words.len()) => Line::Flight(Command::Ehlo),
        b"HELO" => Line::Helo,
        b"STARTTLS" if words.is_empty() => Line::Flight(Command::StartTls),
        b"QUIT" if words.is_empty() => Line::Quit,
        b"DATA" if words.is_empty() => Line::Flight(Command::Data),
        b"AUTH" => match words.as_slice() {
            [mech] => Line::Flight(Command::auth(&String::from_utf8_lossy(mech), false)),
            [mech, _] => Line::Flight(Command::auth(&String::from_utf8_lossy(mech), true)),
            _ => Line::BadSyntax,
        },
        b"MAIL" if starts_with_ignore_case(args, b"FROM:") => {
            let declared = words
                .iter()
                .skip(1)
                .find(|w| starts_with_ignore_case(w, b"SIZE="))
                .and_then(|w| size(&w[5..]));
            Line::Flight(Command::Mail { size: declared })
        }
        b"RCPT" if starts_with_ignore_case(args, b"TO:") => Line::Flight(Command::Rcpt),
        b"BDAT" => match words.as_slice() {
            [n] if size(n).is_some() => Line::BdatMore,
            [n, last] if last.eq_ignore_ascii_case(b"LAST") => match size(n) {
                Some(size) => Line::Flight(Command::BdatLast { size }),
                None => Line::BadSyntax,
            },
            _ => Line::BadSyntax,
        },
        b"RSET" | b"NOOP" | b"HELP" | b"VRFY" | b"EXPN" | b"ETRN" => Line::NotEarly,
        b"STARTTLS" | b"QUIT" | b"DATA" | b"MAIL" | b"RCPT" => Line::BadSyntax,
        _ => Line::NotSmtp,
    }
}

/// Classify `input` in one call.
pub fn classify(offered: bool, limits: PrebannerLimits, input: &[u8]) -> Verdict {
    let mut p = Prebanner::new(offered, limits);
    p.feed(input);
    p.verdict()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered(input: &str) -> Verdict {
        classify(true, PrebannerLimits::default(), input.as_bytes())
    }

    fn class_reason(v: Verdict) -> (Class, Reason) {
        (v.class, v.reason)
    }

    #[test]
    fn nothing_is_nothing_either_way() {
        for o in [true, false] {
            let v = classify(o, PrebannerLimits::default(), b"");
            assert_eq!(class_reason(v), (Class::Nothing, Reason::None));
            assert!(!v.incomplete);
        }
    }

    #[test]
    fn early_flights_as_exim_and_the_library_send_them() {
        let flights = [
            "EHLO client.test\r\n",
            "EHLO client.test\r\nSTARTTLS\r\n",
            "EHLO c\r\nMAIL FROM:<a@b> SIZE=12\r\nRCPT TO:<x@y>\r\nRCPT TO:<z@y>\r\nDATA\r\n",
            "EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\nBDAT 5 LAST\r\nhello\
             QUIT\r\n",
            "EHLO c\r\nAUTH PLAIN AGEAYg==\r\nMAIL FROM:<>\r\nRCPT TO:<x@y>\r\nDATA\r\n",
            "EHLO c\r\nAUTH LOGIN\r\n",
            "ehlo c\nmail from:<a@b>\n",
            "EHLO c\r\nQUIT\r\n",
        ];
        for f in flights {
            let v = offered(f);
            assert_eq!(class_reason(v), (Class::EarlyFlight, Reason::None), "{f:?}");
            assert!(!v.incomplete, "{f:?}");
        }
        assert_eq!(offered(flights[2]).commands, 5);
    }

    #[test]
    fn a_flight_still_arriving_is_early_and_incomplete() {
        for f in [
            "E",
            "ehl",
            "EHLO cli",
            "EHLO c\r\nMAIL FR",
            "EHLO c\r\nMAIL FROM:<a@b>\r\nRCPT TO:<x@y>\r\nBDAT 10 LAST\r\nabc",
        ] {
            let v = offered(f);
            assert_eq!(class_reason(v), (Class::EarlyFlight, Reason::None), "{f:?}");
            assert!(v.incomplete, "{f:?}");
        }
    }

    #[test]
    fn pregreet_violations() {
        let cases = [
            ("HELO bot\r\n", Reason::HeloFirst),
            ("HELO", Reason::HeloFirst),
            ("MAIL FROM:<spam@x>\r\n", Reason::CommandFirst),
            ("QUIT\r\n", Reason::CommandFirst),
            ("GET / HTTP/1.0\r\n", Reason::NotSmtp),
            ("\x16\x03\x01\x02\x00", Reason::NotSmtp),
            ("\r\n", Reason::NotSmtp),
            ("EHLO\r\n", Reason::BadSyntax),
            ("EHLO c\r\nRCPT TO:<x@y>\r\n", Reason::OutOfOrder),
            ("EHLO c\r\nEHLO c\r\n", Reason::OutOfOrder),
            ("EHLO c\r\nHELO c\r\n", Reason::OutOfOrder),
            ("EHLO c\r\nMAIL FROM:<a>\r\nDATA\r\n", Reason::OutOfOrder),
            ("EHLO c\r\nMAIL <a>\r\n", Reason::BadSyntax),
            ("EHLO c\r\nBDAT x LAST\r\n", Reason::BadSyntax),
            ("EHLO c\r\nXYZZY\r\n", Reason::NotSmtp),
            ("EHLO c\rMAIL\r\n", Reason::NotSmtp),
            (
                "EHLO c\r\nMAIL FROM:<a>\r\nRCPT TO:<b>\r\nDATA\r\nSubject: x\r\n",
                Reason::BodyBeforeReply,
            ),
        ];
        for (input, reason) in cases {
            assert_eq!(
                class_reason(offered(input)),
                (Class::Pregreet, reason),
                "{input:?}"
            );
        }
        let long = format!("EHLO {}\r\n", "a".repeat(PREBANNER_LINE_MAX));
        assert_eq!(
            class_reason(offered(&long)),
            (Class::Pregreet, Reason::LineTooLong)
        );
    }

    #[test]
    fn banner_first() {
        let cases = [
            ("EHLO c\r\nSTARTTLS\r\n\x16\x03\x01", Reason::AfterStartTls),
            ("EHLO c\r\nQUIT\r\nNOOP\r\n", Reason::AfterQuit),
            (
                "EHLO c\r\nAUTH LOGIN\r\ndXNlcg==\r\n",
                Reason::AfterAuthChallenge,
            ),
            (
                "EHLO c\r\nAUTH CRAM-MD5 abc\r\nMAIL FROM:<>\r\n",
                Reason::AfterAuthChallenge,
            ),
            ("EHLO c\r\nRSET\r\n", Reason::NotEarlyCommand),
            ("EHLO c\r\nNOOP\r\n", Reason::NotEarlyCommand),
            (
                "EHLO c\r\nMAIL FROM:<a>\r\nRCPT TO:<b>\r\nBDAT 3\r\nabc",
                Reason::NotEarlyCommand,
            ),
            (
                "EHLO c\r\nMAIL FROM:<a>\r\nRCPT TO:<b>\r\nBDAT 70000 LAST\r\n",
                Reason::BodyTooLarge,
            ),
        ];
        for (input, reason) in cases {
            assert_eq!(
                class_reason(offered(input)),
                (Class::BannerFirst, reason),
                "{input:?}"
            );
        }
    }

    #[test]
    fn not_offered_is_pregreet_and_keeps_the_worse_reason() {
        let limits = PrebannerLimits::default();
        let v = classify(false, limits, b"EHLO client.test\r\n");
        assert_eq!(class_reason(v), (Class::Pregreet, Reason::NotOffered));
        let v = classify(false, limits, b"EHLO c\r\nRSET\r\n");
        assert_eq!(class_reason(v), (Class::Pregreet, Reason::NotOffered));
        let v = classify(false, limits, b"HELO bot\r\n");
        assert_eq!(class_reason(v), (Class::Pregreet, Reason::HeloFirst));
    }

    #[test]
    fn limits_bound_what_is_looked_at() {
        let limits = PrebannerLimits {
            max_bytes: 30,
            max_commands: 3,
            max_body: 10,
        };
        let mut p = Prebanner::new(true, limits);
        let input = b"EHLO c\r\nMAIL FROM:<a>\r\nRCPT TO:<b>\r\nRCPT TO:<c>\r\n";
        let used = p.feed(input);
        assert_eq!(used, 30);
        assert_eq!(p.verdict().bytes, 30);
        assert_eq!(
            class_reason(p.verdict()),
            (Class::BannerFirst, Reason::TooMuchInput)
        );
        assert_eq!(p.feed(b"more"), 0);
        let limits = PrebannerLimits {
            max_commands: 2,
            ..PrebannerLimits::default()
        };
        let v = classify(true, limits, input);
        assert_eq!(
            class_reason(v),
            (Class::BannerFirst, Reason::TooManyCommands)
        );
        assert_eq!(v.commands, 2);
        // Garbage stays a violation when it also runs over a limit.
        let limits = PrebannerLimits {
            max_bytes: 4,
            ..PrebannerLimits::default()
        };
        let v = classify(true, limits, b"HELO bot\r\n");
        assert_eq!(class_reason(v), (Class::Pregreet, Reason::HeloFirst));
    }

    #[test]
    fn qhlo_counts_as_ehlo_only_with_quickstart() {
        let input = b"QHLO c 0123abcd\r\nMAIL FROM:<a>\r\n";
        let mut p = Prebanner::new(true, PrebannerLimits::default()).with_quickstart(true);
        p.feed(input);
        assert_eq!(
            class_reason(p.verdict()),
            (Class::EarlyFlight, Reason::None)
        );
        let mut p = Prebanner::new(true, PrebannerLimits::default()).with_quickstart(true);
        p.feed(b"QHL");
        assert_eq!(
            class_reason(p.verdict()),
            (Class::EarlyFlight, Reason::None)
        );
        let v = classify(true, PrebannerLimits::default(), input);
        assert_eq!(class_reason(v), (Class::Pregreet, Reason::NotSmtp));
    }

    #[test]
    fn names_and_values() {
        for c in Class::ALL {
            assert_eq!(Class::from_u32(c as u32), Some(c));
            assert!(!c.name().is_empty());
        }
        for r in Reason::ALL {
            assert_eq!(Reason::from_u32(r as u32), Some(r));
            assert!(!r.name().is_empty());
        }
        assert_eq!(Class::from_u32(4), None);
        assert_eq!(Reason::from_u32(16), None);
    }
}
