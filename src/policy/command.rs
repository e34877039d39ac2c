//! The commands a client means to send, and the order SMTP allows them in.

use std::fmt;

/// The longest command sequence the policy looks at. Longer sequences are refused
/// ([`SequenceProblem::TooLong`]), so a caller's mistake cannot make the library allocate
/// without bound.
pub const SEQUENCE_MAX: usize = 4096;

/// What a command is, or which command a reply answers. The numbers are the C values
/// (`PIPECONNECT_CMD_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum CommandKind {
    /// Not a command: the server's greeting, the first reply of a connection (and of a
    /// TLS-on-connect connection after its handshake).
    Banner = 0,
    /// `EHLO name`.
    Ehlo = 1,
    /// `STARTTLS` (RFC 3207).
    StartTls = 2,
    /// `AUTH mechanism [initial-response]` (RFC 4954).
    Auth = 3,
    /// `MAIL FROM:<...>`.
    Mail = 4,
    /// `RCPT TO:<...>`.
    Rcpt = 5,
    /// `DATA`; its reply is 354 when the server wants the body.
    Data = 6,
    /// `BDAT <size> LAST` followed by the whole body (RFC 3030).
    BdatLast = 7,
    /// Not a command line: the message body after a 354, ending with `CRLF.CRLF`. Its
    /// reply is the end-of-data reply.
    Body = 8,
    /// `QUIT`: ends the conversation; its reply is 221. Sessions plan it on request
    /// (`Session::quit`); early-flight sequences do not hold it.
    Quit = 9,
}

impl CommandKind {
    /// Every kind, in numeric order.
    pub const ALL: [CommandKind; 10] = [
        CommandKind::Banner,
        CommandKind::Ehlo,
        CommandKind::StartTls,
        CommandKind::Auth,
        CommandKind::Mail,
        CommandKind::Rcpt,
        CommandKind::Data,
        CommandKind::BdatLast,
        CommandKind::Body,
        CommandKind::Quit,
    ];

    /// The kind with this C value.
    pub fn from_u32(v: u32) -> Option<CommandKind> {
        Self::ALL.get(usize::try_from(v).ok()?).copied()
    }

    /// An upper-case name for logs: `BANNER`, `EHLO`, ..., `BDAT_LAST`, `BODY`, `QUIT`.
    pub fn name(self) -> &'static str {
        match self {
            CommandKind::Banner => "BANNER",
            CommandKind::Ehlo => "EHLO",
            CommandKind::StartTls => "STARTTLS",
            CommandKind::Auth => "AUTH",
            CommandKind::Mail => "MAIL",
            CommandKind::Rcpt => "RCPT",
            CommandKind::Data => "DATA",
            CommandKind::BdatLast => "BDAT_LAST",
            CommandKind::Body => "BODY",
            CommandKind::Quit => "QUIT",
        }
    }
}

impl fmt::Display for CommandKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One command of an intended sequence, with what the rules need to know about it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Command {
    /// `EHLO`.
    Ehlo,
    /// `STARTTLS`.
    StartTls,
    /// `AUTH`, with its mechanism name and whether it carries an initial response.
    Auth {
        /// The SASL mechanism (`PLAIN`, `EXTERNAL`, `LOGIN`, ...), any case.
        mechanism: String,
        /// Whether the command line carries the initial response (RFC 4954 §4).
        initial_response: bool,
    },
    /// `MAIL FROM`, with the message size when the client declares it (`SIZE=`).
    Mail {
        /// The message size in bytes, when known.
        size: Option<u64>,
    },
    /// `RCPT TO`: one command per recipient.
    Rcpt,
    /// `DATA` (the body waits for the 354).
    Data,
    /// `BDAT <size> LAST` with the whole body.
    BdatLast {
        /// The body size in bytes.
        size: u64,
    },
}

impl Command {
    /// What kind of command this is.
    pub fn kind(&self) -> CommandKind {
        match self {
            Command::Ehlo => CommandKind::Ehlo,
            Command::StartTls => CommandKind::StartTls,
            Command::Auth { .. } => CommandKind::Auth,
            Command::Mail { .. } => CommandKind::Mail,
            Command::Rcpt => CommandKind::Rcpt,
            Command::Data => CommandKind::Data,
            Command::BdatLast { .. } => CommandKind::BdatLast,
        }
    }

    /// `AUTH` with this mechanism and initial-response flag.
    pub fn auth(mechanism: &str, initial_response: bool) -> Command {
        Command::Auth {
            mechanism: mechanism.to_string(),
            initial_response,
        }
    }
}

/// Why a sequence is not one SMTP allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SequenceProblem {
    /// No commands at all.
    Empty,
    /// More than [`SEQUENCE_MAX`] commands.
    TooLong,
    /// The sequence (or the part after STARTTLS) does not start with EHLO.
    EhloNotFirst,
    /// A second EHLO without a STARTTLS between.
    EhloRepeated,
    /// STARTTLS on a connection that is already encrypted, or a second STARTTLS.
    StartTlsNotAllowed,
    /// AUTH inside a transaction, or a second AUTH.
    AuthMisplaced,
    /// An AUTH mechanism name that is empty, over 20 characters, or not made of letters,
    /// digits, `-` and `_`.
    MechanismInvalid,
    /// MAIL inside a transaction (before its DATA or BDAT LAST).
    MailInTransaction,
    /// RCPT without a MAIL before it.
    RcptWithoutMail,
    /// DATA or BDAT LAST without a RCPT before it.
    BodyWithoutRcpt,
    /// STARTTLS inside a transaction.
    StartTlsInTransaction,
}

impl SequenceProblem {
    /// A sentence for logs.
    pub fn message(self) -> &'static str {
        match self {
            SequenceProblem::Empty => "the command sequence is empty",
            SequenceProblem::TooLong => "the command sequence is longer than the library accepts",
            SequenceProblem::EhloNotFirst => {
                "the sequence must start with EHLO (and EHLO must follow STARTTLS)"
            }
            SequenceProblem::EhloRepeated => "a second EHLO without STARTTLS between",
            SequenceProblem::StartTlsNotAllowed => "STARTTLS on an encrypted connection or twice",
            SequenceProblem::AuthMisplaced => "AUTH inside a transaction or twice",
            SequenceProblem::MechanismInvalid => {
                "the AUTH mechanism name is not a SASL mechanism name"
            }
            SequenceProblem::MailInTransaction => "MAIL inside a transaction",
            SequenceProblem::RcptWithoutMail => "RCPT without MAIL",
            SequenceProblem::BodyWithoutRcpt => "DATA or BDAT LAST without RCPT",
            SequenceProblem::StartTlsInTransaction => "STARTTLS inside a transaction",
        }
    }
}

/// Whether `name` is a SASL mechanism name as RFC 4422 spells them (1 to 20 letters,
/// digits, `-`, `_`).
pub fn valid_mechanism(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= crate::caps::AUTH_MECH_NAME_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Check that `cmds` keeps SMTP's order: EHLO first; STARTTLS (only when `encrypted` is
/// false, at most once, outside a transaction) followed by a new EHLO; at most one AUTH
/// per TLS phase, outside a transaction; MAIL, one or more RCPT, then DATA or BDAT LAST.
/// A sequence may end anywhere (a prefix of a conversation is fine). On failure, the
/// index of the first offending command and what is wrong with it.
pub fn validate_sequence(
    cmds: &[Command],
    encrypted: bool,
) -> Result<(), (usize, SequenceProblem)> {
    if cmds.is_empty() {
        return Err((0, SequenceProblem::Empty));
    }
    if cmds.len() > SEQUENCE_MAX {
        return Err((SEQUENCE_MAX, SequenceProblem::TooLong));
    }
    #[derive(PartialEq)]
    enum Tx {
        None,
        Mail,
        Rcpt,
    }
    let mut need_ehlo = true;
    let mut tls_done = encrypted;
    let mut auth_seen = false;
    let mut tx = Tx::None;
    for (i, c) in cmds.iter().enumerate() {
        if need_ehlo && *c != Command::Ehlo {
            return Err((i, SequenceProblem::EhloNotFirst));
        }
        match c {
            Command::Ehlo => {
                if !need_ehlo {
                    return Err((i, SequenceProblem::EhloRepeated));
                }
                need_ehlo = false;
            }
            Command::StartTls => {
                if tls_done {
                    return Err((i, SequenceProblem::StartTlsNotAllowed));
                }
                if tx != Tx::None {
                    return Err((i, SequenceProblem::StartTlsInTransaction));
                }
                tls_done = true;
                need_ehlo = true;
                auth_seen = false;
            }
            Command::Auth { mechanism, .. } => {
                if auth_seen || tx != Tx::None {
                    return Err((i, SequenceProblem::AuthMisplaced));
                }
                if !valid_mechanism(mechanism) {
                    return Err((i, SequenceProblem::MechanismInvalid));
                }
                auth_seen = true;
            }
            Command::Mail { .. } => {
                if tx != Tx::None {
                    return Err((i, SequenceProblem::MailInTransaction));
                }
                tx = Tx::Mail;
            }
            Command::Rcpt => {
                if tx == Tx::None {
                    return Err((i, SequenceProblem::RcptWithoutMail));
                }
                tx = Tx::Rcpt;
            }
            Command::Data | Command::BdatLast { .. } => {
                if tx != Tx::Rcpt {
                    return Err((i, SequenceProblem::BodyWithoutRcpt));
                }
                tx = Tx::None;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail() -> Command {
        Command::Mail { size: None }
    }

    #[test]
    fn good_sequences() {
        let ok: &[&[Command]] = &[
            &[Command::Ehlo],
            &[Command::Ehlo, Command::StartTls],
            &[Command::Ehlo, Command::StartTls, Command::Ehlo, mail()],
            &[
                Command::Ehlo,
                Command::auth("plain", true),
                mail(),
                Command::Rcpt,
                Command::Rcpt,
                Command::BdatLast { size: 10 },
                mail(),
                Command::Rcpt,
                Command::Data,
            ],
            &[Command::Ehlo, mail(), Command::Rcpt],
        ];
        for s in ok {
            assert_eq!(validate_sequence(s, false), Ok(()), "{s:?}");
        }
    }

    #[test]
    fn bad_sequences_name_the_first_offender() {
        use SequenceProblem as P;
        let cases: Vec<(Vec<Command>, bool, usize, P)> = vec![
            (vec![], false, 0, P::Empty),
            (vec![mail()], false, 0, P::EhloNotFirst),
            (
                vec![Command::Ehlo, Command::Ehlo],
                false,
                1,
                P::EhloRepeated,
            ),
            (
                vec![Command::Ehlo, Command::StartTls],
                true,
                1,
                P::StartTlsNotAllowed,
            ),
            (
                vec![Command::Ehlo, Command::StartTls, mail()],
                false,
                2,
                P::EhloNotFirst,
            ),
            (
                vec![Command::Ehlo, mail(), Command::auth("PLAIN", true)],
                false,
                2,
                P::AuthMisplaced,
            ),
            (
                vec![Command::Ehlo, Command::auth("PL AIN", true)],
                false,
                1,
                P::MechanismInvalid,
            ),
            (
                vec![Command::Ehlo, mail(), mail()],
                false,
                2,
                P::MailInTransaction,
            ),
            (
                vec![Command::Ehlo, Command::Rcpt],
                false,
                1,
                P::RcptWithoutMail,
            ),
            (
                vec![Command::Ehlo, mail(), Command::Data],
                false,
                2,
                P::BodyWithoutRcpt,
            ),
            (
                vec![Command::Ehlo, mail(), Command::Rcpt, Command::StartTls],
                false,
                3,
                P::StartTlsInTransaction,
            ),
        ];
        for (s, enc, i, p) in cases {
            assert_eq!(validate_sequence(&s, enc), Err((i, p)), "{s:?}");
        }
        let long = vec![Command::Ehlo; SEQUENCE_MAX + 1];
        assert_eq!(
            validate_sequence(&long, false),
            Err((SEQUENCE_MAX, P::TooLong))
        );
    }

    #[test]
    fn kinds_round_trip_through_their_c_values() {
        for k in CommandKind::ALL {
            assert_eq!(CommandKind::from_u32(k as u32), Some(k));
        }
        assert_eq!(CommandKind::from_u32(9), Some(CommandKind::Quit));
        assert_eq!(CommandKind::from_u32(10), None);
        assert_eq!(CommandKind::from_u32(u32::MAX), None);
    }
}
