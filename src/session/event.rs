//! What a session hands out: commands to send, one event per reply, a summary at the end,
//! and its errors.

use crate::error::Error;
use crate::policy::{CommandKind, Outcome, PolicyError, Verdict};
use crate::reply::{EnhancedCode, Reply};
use std::fmt;

/// The most bytes of reply text an [`Event`] keeps (longer text is cut and
/// [`EVENT_TEXT_TRUNCATED`] is set), so queued events stay small.
pub const EVENT_TEXT_MAX: usize = 2048;

/// Event flag: the rules removed this key's cache entry (for the current TLS state).
pub const EVENT_CACHE_INVALIDATED: u32 = 1 << 0;
/// Event flag: the fresh EHLO capabilities were stored (learned, or an entry rewritten).
pub const EVENT_CACHE_STORED: u32 = 1 << 1;
/// Event flag: the EHLO reply no longer advertises PIPECONNECT (or PIPELINING): nothing
/// more goes early on this connection; the rest is classic.
pub const EVENT_EARLY_STOPPED: u32 = 1 << 2;
/// Event flag: the connection can carry nothing more; close it (QUIT if still in step).
pub const EVENT_CONNECTION_DONE: u32 = 1 << 3;
/// Event flag: this reply follows from an earlier failure (a RCPT after a failed MAIL,
/// DATA after every recipient was refused, anything after a failed banner): its verdict
/// repeats that failure's, and it needs no action of its own.
pub const EVENT_FOLLOWS_FAILURE: u32 = 1 << 4;
/// Event flag: a 334 to AUTH. Send the next SASL response line yourself, then feed the
/// next reply (which answers the same AUTH).
pub const EVENT_AUTH_CHALLENGE: u32 = 1 << 5;
/// Event flag: the command this reply answers went in an early flight.
pub const EVENT_EARLY: u32 = 1 << 6;
/// Event flag: the server accepted the message (2xx to the end of data or BDAT LAST).
pub const EVENT_MESSAGE_ACCEPTED: u32 = 1 << 7;
/// Event flag: the reply cannot answer its command (wrong code class): out of step.
pub const EVENT_OUT_OF_STEP: u32 = 1 << 8;
/// Event flag: the text was cut at [`EVENT_TEXT_MAX`] bytes.
pub const EVENT_TEXT_TRUNCATED: u32 = 1 << 9;
/// Event flag: the raw reply was cut after its last whole line within
/// [`EVENT_RAW_MAX`] bytes.
pub const EVENT_RAW_TRUNCATED: u32 = 1 << 10;

/// The most bytes of raw reply an [`Event`] keeps (whole lines; see
/// [`EVENT_RAW_TRUNCATED`]).
pub const EVENT_RAW_MAX: usize = 4096;

/// OR of the bits whose condition holds.
pub(crate) fn bits(pairs: &[(bool, u32)]) -> u32 {
    pairs
        .iter()
        .filter(|(on, _)| *on)
        .fold(0, |acc, (_, bit)| acc | bit)
}

/// The event bits that say what the rules' [`Outcome`] asks of the caller:
/// [`EVENT_CONNECTION_DONE`], [`EVENT_AUTH_CHALLENGE`], [`EVENT_MESSAGE_ACCEPTED`],
/// [`EVENT_OUT_OF_STEP`]. The one mapping, used by sessions and by
/// `pipeconnect_policy_outcome()`. (Whether the cache entry was removed is the cache
/// action's to say, and a session's to report once done.)
pub fn outcome_flags(o: &Outcome) -> u32 {
    bits(&[
        (o.connection_done, EVENT_CONNECTION_DONE),
        (o.auth_challenge, EVENT_AUTH_CHALLENGE),
        (o.message_accepted, EVENT_MESSAGE_ACCEPTED),
        (o.out_of_step, EVENT_OUT_OF_STEP),
    ])
}

/// One command the caller may send now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlannedCommand {
    /// Its place in the conversation: 0 is the banner (not a command), commands count
    /// from 1 in the order they are sent. Events carry the same number.
    pub seq: usize,
    /// Which command.
    pub kind: CommandKind,
    /// For RCPT: which recipient of the intent (0-based).
    pub rcpt_index: Option<usize>,
    /// For BDAT LAST: the body size. For MAIL: the `SIZE=` value to declare, or 0 when
    /// the capabilities in use do not advertise SIZE. 0 otherwise.
    pub size: u64,
    /// Whether it goes in an early flight (before the banner, or after STARTTLS before
    /// the EHLO reply).
    pub early: bool,
}

/// One complete reply, and what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `seq` of the command answered (0 for the banner).
    pub seq: usize,
    /// The command answered ([`CommandKind::Banner`] for the greeting,
    /// [`CommandKind::Body`] for the end-of-data reply).
    pub kind: CommandKind,
    /// For RCPT: which recipient (0-based).
    pub rcpt_index: Option<usize>,
    /// The reply code.
    pub code: u16,
    /// The enhanced status code, when the reply has one.
    pub enhanced: Option<EnhancedCode>,
    /// The reply's text, lines joined with `\n`, at most [`EVENT_TEXT_MAX`] bytes.
    pub text: Vec<u8>,
    /// The reply as received, codes and enhanced status codes included, each line ending
    /// in CRLF (a bare LF read is given as CRLF), for callers that parse replies
    /// themselves; whole lines, at most [`EVENT_RAW_MAX`] bytes.
    pub raw: Vec<u8>,
    /// What the MTA should do.
    pub verdict: Verdict,
    /// `EVENT_*` bits.
    pub flags: u32,
    /// For EHLO replies: the extension bits whose facts differ from the cached entry.
    pub changed_extensions: u32,
}

impl Event {
    pub(crate) fn new(
        seq: usize,
        kind: CommandKind,
        rcpt_index: Option<usize>,
        early: bool,
        reply: &Reply,
    ) -> Event {
        let mut text = reply.text();
        let mut flags = if early { EVENT_EARLY } else { 0 };
        if text.len() > EVENT_TEXT_MAX {
            text.truncate(EVENT_TEXT_MAX);
            text.shrink_to_fit();
            flags |= EVENT_TEXT_TRUNCATED;
        }
        let (raw, raw_cut) = raw_lines(reply);
        if raw_cut {
            flags |= EVENT_RAW_TRUNCATED;
        }
        Event {
            seq,
            kind,
            rcpt_index,
            code: reply.code(),
            enhanced: reply.enhanced(),
            text,
            raw,
            verdict: Verdict::Continue,
            flags,
            changed_extensions: 0,
        }
    }

    /// Whether `flag` (an `EVENT_*` bit) is set.
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }
}

/// The reply's lines as they came (`250-...\r\n` up to `250 ...\r\n`), whole lines up to
/// [`EVENT_RAW_MAX`] bytes, and whether any were left out.
fn raw_lines(reply: &Reply) -> (Vec<u8>, bool) {
    let code = reply.code().to_string();
    let lines = reply.lines();
    let mut raw = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let sep = if i + 1 == lines.len() { b' ' } else { b'-' };
        if raw.len() + code.len() + 1 + line.len() + 2 > EVENT_RAW_MAX {
            return (raw, true);
        }
        raw.extend_from_slice(code.as_bytes());
        raw.push(sep);
        raw.extend_from_slice(line);
        raw.extend_from_slice(b"\r\n");
    }
    (raw, false)
}

/// Summary flag: the server accepted the message.
pub const SUMMARY_MESSAGE_ACCEPTED: u32 = 1 << 0;
/// Summary flag: the cleartext phase used an early flight.
pub const SUMMARY_CLEARTEXT_EARLY: u32 = 1 << 1;
/// Summary flag: the encrypted phase (after STARTTLS, or TLS on connect) used an early
/// flight.
pub const SUMMARY_ENCRYPTED_EARLY: u32 = 1 << 2;
/// Summary flag: the rules removed a cache entry during the session.
pub const SUMMARY_CACHE_INVALIDATED: u32 = 1 << 3;
/// Summary flag: the session stored capabilities in the cache.
pub const SUMMARY_CACHE_STORED: u32 = 1 << 4;
/// Summary flag: PIPECONNECT was withdrawn during the connection.
pub const SUMMARY_EARLY_STOPPED: u32 = 1 << 5;
/// Summary flag: the session stopped on an error (a malformed or unexpected reply, or
/// cleartext bytes after STARTTLS).
pub const SUMMARY_FAILED: u32 = 1 << 6;

/// What a session did, from [`super::Session::finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Summary {
    /// For the message as a whole: [`Verdict::Continue`] when the server accepted it (for
    /// the accepted recipients); [`Verdict::Reconnect`] when early pipelining failed
    /// (including a banner or EHLO reply still missing after an early flight); otherwise
    /// the failure that ended the transaction (an unfinished session is
    /// [`Verdict::Tempfail`]).
    pub verdict: Verdict,
    /// `SUMMARY_*` bits.
    pub flags: u32,
    /// Recipients the server accepted.
    pub rcpt_accepted: usize,
    /// Recipients refused permanently.
    pub rcpt_rejected: usize,
    /// Recipients refused for now (or not accepted because of an earlier transient or
    /// connection failure).
    pub rcpt_deferred: usize,
    /// Recipients of the intent never sent (beyond the server's RCPTMAX, or after a
    /// failure): deliver them in another transaction.
    pub rcpt_not_attempted: usize,
    /// Replies to commands that were sent but never arrived.
    pub replies_outstanding: usize,
    /// How many times the session released commands to send (the first flight counts);
    /// each later group is one wait for replies.
    pub groups: usize,
}

impl Summary {
    /// Whether `flag` (a `SUMMARY_*` bit) is set.
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }
}

/// What is wrong with an intent: the field (as the C struct names it), the recipient's
/// index for `rcpts`, and a sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IntentProblem {
    /// The field at fault: `ehlo_name`, `auth_mechanism`, `mail_from`, `rcpts`,
    /// `rcpt_count`, `flags`.
    pub field: &'static str,
    /// For `rcpts`: which recipient (0-based).
    pub index: Option<usize>,
    /// Why, in English.
    pub why: &'static str,
}

impl IntentProblem {
    /// A problem with `field`.
    pub const fn field(field: &'static str, why: &'static str) -> IntentProblem {
        IntentProblem {
            field,
            index: None,
            why,
        }
    }
}

impl fmt::Display for IntentProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(i) => write!(f, "{}[{i}]: {}", self.field, self.why),
            None => write!(f, "{}: {}", self.field, self.why),
        }
    }
}

/// Why a session call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SessionError {
    /// The reply stream is malformed or exceeds the parser's limits (the parser's error).
    Reply(Error),
    /// A reply arrived that answers no command sent.
    UnexpectedReply,
    /// Bytes arrived after the STARTTLS reply and before the TLS handshake: refused, as
    /// they could be injected by a third party (RFC 3207 §5).
    CleartextAfterStartTls,
    /// The intent is not usable: which field (and which recipient), and why.
    InvalidIntent(IntentProblem),
    /// The call does not fit the session's state (TLS started without a STARTTLS reply,
    /// a call after finish).
    BadState,
    /// The library cannot format this command line (AUTH with an initial response carries
    /// credentials the library never sees; the body is not a line; an address or the EHLO
    /// name was not given).
    CannotFormat,
    /// The policy refused the session's own sequence (a library bug; please report).
    Policy(PolicyError),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Reply(e) => write!(f, "reply stream: {e}"),
            SessionError::UnexpectedReply => f.write_str("a reply answers no command sent"),
            SessionError::CleartextAfterStartTls => {
                f.write_str("cleartext bytes after the STARTTLS reply")
            }
            SessionError::InvalidIntent(p) => write!(f, "invalid intent: {p}"),
            SessionError::BadState => f.write_str("the call does not fit the session's state"),
            SessionError::CannotFormat => f.write_str("the library cannot format this command"),
            SessionError::Policy(e) => write!(f, "policy: {e}"),
        }
    }
}

impl std::error::Error for SessionError {}
