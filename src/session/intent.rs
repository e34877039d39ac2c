//! What the caller means to do on one connection, and the command lines for it.

use super::event::{IntentProblem, PlannedCommand, SessionError};
use crate::key::EHLO_NAME_MAX;
use crate::policy::command::valid_mechanism;
use crate::policy::CommandKind;

/// The most recipients one session (one transaction) takes.
pub const RCPTS_MAX: usize = 1000;
/// The longest address (RFC 5321 §4.5.3.1.3: a path is at most 256 octets).
pub const ADDRESS_MAX: usize = 256;

/// The AUTH the caller means to do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuthIntent {
    /// The SASL mechanism (`PLAIN`, `EXTERNAL`, `LOGIN`, ...).
    pub mechanism: String,
    /// Whether the AUTH line carries the initial response.
    pub initial_response: bool,
    /// Whether the delivery needs AUTH to succeed (a failure then ends the connection
    /// and, in both invalidation modes, removes the entry). When false, a failed AUTH
    /// lets the delivery go on unauthenticated.
    pub required: bool,
}

/// How the body goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum BodyMode {
    /// `BDAT <size> LAST` when the capabilities in use offer CHUNKING, DATA otherwise.
    #[default]
    Auto,
    /// Always DATA.
    Data,
}

/// The message body: its size in bytes (as sent: after dot-stuffing for DATA) and how it
/// goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Body {
    /// Bytes.
    pub size: u64,
    /// DATA or BDAT.
    pub mode: BodyMode,
}

/// The recipients: their addresses (so that the library can format RCPT lines), or only
/// how many there are (the caller formats its own lines).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Recipients {
    /// This many recipients.
    Count(usize),
    /// These addresses, without angle brackets.
    Addresses(Vec<String>),
}

impl Recipients {
    /// How many recipients.
    pub fn len(&self) -> usize {
        match self {
            Recipients::Count(n) => *n,
            Recipients::Addresses(v) => v.len(),
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One connection's plan: one transaction (one message) to one server.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Intent {
    /// The EHLO name, when known before connecting. `None` means it depends on the
    /// connection (its local address, say): then nothing goes early.
    pub ehlo_name: Option<String>,
    /// Whether to STARTTLS on a cleartext connection (AUTH and the transaction then
    /// happen after the handshake).
    pub starttls: bool,
    /// The AUTH to do, if any.
    pub auth: Option<AuthIntent>,
    /// The envelope sender without angle brackets (`""` for the null sender), when the
    /// library should format MAIL lines.
    pub mail_from: Option<String>,
    /// The recipients (1 to [`RCPTS_MAX`]).
    pub rcpts: Recipients,
    /// The body.
    pub body: Body,
}

impl Intent {
    /// An intent with an EHLO name, `rcpt_count` recipients and a body of `body_size`
    /// bytes; no STARTTLS, no AUTH, addresses not given, body mode [`BodyMode::Auto`].
    pub fn new(ehlo_name: &str, rcpt_count: usize, body_size: u64) -> Intent {
        Intent {
            ehlo_name: Some(ehlo_name.to_string()),
            starttls: false,
            auth: None,
            mail_from: None,
            rcpts: Recipients::Count(rcpt_count),
            body: Body {
                size: body_size,
                mode: BodyMode::Auto,
            },
        }
    }

    /// Check every field; the error names the first bad one (and the recipient).
    pub fn validate(&self) -> Result<(), SessionError> {
        let bad = |field, why| SessionError::InvalidIntent(IntentProblem::field(field, why));
        if let Some(n) = &self.ehlo_name {
            if n.is_empty() || n.len() > EHLO_NAME_MAX || !n.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(bad(
                    "ehlo_name",
                    "the EHLO name is empty, too long or not printable ASCII",
                ));
            }
        }
        if let Some(a) = &self.auth {
            if !valid_mechanism(&a.mechanism) {
                return Err(bad(
                    "auth_mechanism",
                    "the AUTH mechanism is not a SASL mechanism name",
                ));
            }
        }
        if let Some(f) = &self.mail_from {
            if !valid_address(f, true) {
                return Err(bad(
                    "mail_from",
                    "the sender address has a control character, <, > or is too long",
                ));
            }
        }
        let n = self.rcpts.len();
        if n == 0 || n > RCPTS_MAX {
            return Err(bad("rcpt_count", "there must be 1 to 1000 recipients"));
        }
        if let Recipients::Addresses(v) = &self.rcpts {
            if let Some(i) = v.iter().position(|a| !valid_address(a, false)) {
                return Err(SessionError::InvalidIntent(IntentProblem {
                    field: "rcpts",
                    index: Some(i),
                    why:
                        "a recipient address is empty, has a control character, <, > or is too long",
                }));
            }
        }
        Ok(())
    }

    /// The command line for `cmd`, with its CRLF. See [`SessionError::CannotFormat`] for
    /// what the library cannot format.
    pub fn command_line(&self, cmd: &PlannedCommand) -> Result<String, SessionError> {
        let no = SessionError::CannotFormat;
        Ok(match cmd.kind {
            CommandKind::Ehlo => format!("EHLO {}\r\n", self.ehlo_name.as_ref().ok_or(no)?),
            CommandKind::StartTls => "STARTTLS\r\n".to_string(),
            CommandKind::Auth => {
                let a = self.auth.as_ref().ok_or(no)?;
                if a.initial_response {
                    return Err(no);
                }
                format!("AUTH {}\r\n", a.mechanism)
            }
            CommandKind::Mail => {
                let from = self.mail_from.as_ref().ok_or(no)?;
                if cmd.size > 0 {
                    format!("MAIL FROM:<{from}> SIZE={}\r\n", cmd.size)
                } else {
                    format!("MAIL FROM:<{from}>\r\n")
                }
            }
            CommandKind::Rcpt => match (&self.rcpts, cmd.rcpt_index) {
                (Recipients::Addresses(v), Some(i)) => {
                    format!("RCPT TO:<{}>\r\n", v.get(i).ok_or(no)?)
                }
                _ => return Err(no),
            },
            CommandKind::Data => "DATA\r\n".to_string(),
            CommandKind::BdatLast => format!("BDAT {} LAST\r\n", cmd.size),
            CommandKind::Quit => "QUIT\r\n".to_string(),
            CommandKind::Banner | CommandKind::Body => return Err(no),
        })
    }
}

/// An address fit for a MAIL or RCPT line: no control characters (so no CR or LF that
/// could smuggle a command), no angle brackets, at most [`ADDRESS_MAX`] bytes; empty only
/// for the sender.
fn valid_address(a: &str, may_be_empty: bool) -> bool {
    (may_be_empty || !a.is_empty())
        && a.len() <= ADDRESS_MAX
        && !a.chars().any(|c| c.is_control() || c == '<' || c == '>')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_cannot_smuggle_commands() {
        let mut i = Intent::new("client.example", 1, 10);
        i.rcpts = Recipients::Addresses(vec!["a@b\r\nDATA".into()]);
        assert!(i.validate().is_err());
        i.rcpts = Recipients::Addresses(vec!["a@b>".into()]);
        assert!(i.validate().is_err());
        i.rcpts = Recipients::Addresses(vec!["".into()]);
        assert!(i.validate().is_err());
        i.rcpts = Recipients::Addresses(vec!["a".repeat(257)]);
        assert!(i.validate().is_err());
        i.rcpts = Recipients::Addresses(vec!["ü@example".into()]);
        assert!(i.validate().is_ok());
        i.mail_from = Some(String::new());
        assert!(i.validate().is_ok());
        i.mail_from = Some("x\ny".into());
        assert!(i.validate().is_err());
    }

    #[test]
    fn recipient_count_is_bounded() {
        assert!(Intent::new("c.example", 0, 1).validate().is_err());
        assert!(Intent::new("c.example", RCPTS_MAX, 1).validate().is_ok());
        assert!(Intent::new("c.example", RCPTS_MAX + 1, 1)
            .validate()
            .is_err());
        let mut i = Intent::new("c.example", 1, 1);
        i.ehlo_name = Some("bad name".into());
        assert!(i.validate().is_err());
    }

    #[test]
    fn lines() {
        let mut i = Intent::new("client.example", 1, 10);
        i.mail_from = Some("a@x".into());
        i.rcpts = Recipients::Addresses(vec!["b@y".into()]);
        let c = |kind, rcpt_index, size| PlannedCommand {
            seq: 1,
            kind,
            rcpt_index,
            size,
            early: false,
        };
        assert_eq!(
            i.command_line(&c(CommandKind::Ehlo, None, 0)).unwrap(),
            "EHLO client.example\r\n"
        );
        assert_eq!(
            i.command_line(&c(CommandKind::Mail, None, 10)).unwrap(),
            "MAIL FROM:<a@x> SIZE=10\r\n"
        );
        assert_eq!(
            i.command_line(&c(CommandKind::Mail, None, 0)).unwrap(),
            "MAIL FROM:<a@x>\r\n"
        );
        assert_eq!(
            i.command_line(&c(CommandKind::Rcpt, Some(0), 0)).unwrap(),
            "RCPT TO:<b@y>\r\n"
        );
        assert_eq!(
            i.command_line(&c(CommandKind::Rcpt, Some(1), 0)),
            Err(SessionError::CannotFormat)
        );
        assert_eq!(
            i.command_line(&c(CommandKind::BdatLast, None, 2048))
                .unwrap(),
            "BDAT 2048 LAST\r\n"
        );
        assert_eq!(
            i.command_line(&c(CommandKind::Body, None, 0)),
            Err(SessionError::CannotFormat)
        );
        i.auth = Some(AuthIntent {
            mechanism: "PLAIN".into(),
            initial_response: true,
            required: true,
        });
        assert_eq!(
            i.command_line(&c(CommandKind::Auth, None, 0)),
            Err(SessionError::CannotFormat)
        );
    }
}
