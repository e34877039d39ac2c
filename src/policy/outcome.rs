//! What a reply means: for the cache, and for the MTA.
//!
//! [`outcome`] looks at one reply: which command it answers, its code, and the
//! connection's context (was early pipelining used in this TLS phase, is AUTH required,
//! were commands pipelined after the AUTH, strict or relaxed invalidation). A 250 reply
//! to EHLO says nothing here: what it advertised is compared with the cache by
//! [`super::ehlo::check_ehlo`].

use super::command::CommandKind;
use super::flight::Invalidation;
use std::fmt;

/// What the MTA should do about a reply. The numbers are the C values
/// (`PIPECONNECT_VERDICT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum Verdict {
    /// The reply is the one hoped for: go on.
    Continue = 0,
    /// A permanent failure specific to the message (5xx to MAIL, DATA, BDAT or the end of
    /// data) or to one recipient (5xx to RCPT): bounce it, or that recipient.
    Rejected = 1,
    /// A transient failure (4xx), of the message, a recipient, or the connection: defer
    /// and retry later.
    Tempfail = 2,
    /// Early pipelining failed on this connection (a bad banner or EHLO reply after an
    /// early flight, such as Exim's `554 SMTP synchronization error`): close, reconnect
    /// at once without early pipelining, and do not bounce or defer the message for it.
    Reconnect = 3,
    /// A permanent failure of the connection, not of the message (5xx to the banner,
    /// EHLO, STARTTLS or a required AUTH without early pipelining): the MTA's host-error
    /// handling applies (try another host); never a reason to bounce by itself.
    HostError = 4,
}

impl Verdict {
    /// Every verdict, in numeric order.
    pub const ALL: [Verdict; 5] = [
        Verdict::Continue,
        Verdict::Rejected,
        Verdict::Tempfail,
        Verdict::Reconnect,
        Verdict::HostError,
    ];

    /// The verdict with this C value.
    pub fn from_u32(v: u32) -> Option<Verdict> {
        Self::ALL.get(usize::try_from(v).ok()?).copied()
    }

    /// The upper-case name, with a NUL for C.
    pub fn name_nul(self) -> &'static str {
        match self {
            Verdict::Continue => "CONTINUE\0",
            Verdict::Rejected => "REJECTED\0",
            Verdict::Tempfail => "TEMPFAIL\0",
            Verdict::Reconnect => "RECONNECT\0",
            Verdict::HostError => "HOST_ERROR\0",
        }
    }

    /// The upper-case name: `CONTINUE`, `REJECTED`, `TEMPFAIL`, `RECONNECT`, `HOST_ERROR`.
    pub fn name(self) -> &'static str {
        self.name_nul().trim_end_matches('\0')
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the cache must do. The numbers are the C values (`PIPECONNECT_CACHE_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum CacheAction {
    /// Leave the entry as it is.
    Nothing = 0,
    /// Remove the entry for this key in this TLS state.
    Invalidate = 1,
    /// Store the fresh EHLO capabilities (learn them, in place of any entry).
    Store = 2,
}

/// The connection's context for [`outcome`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ReplyContext {
    /// Whether an early flight was sent in the current TLS phase (cleartext, or encrypted
    /// after STARTTLS or on connect).
    pub early_used: bool,
    /// For AUTH replies: whether the delivery needs AUTH to succeed.
    pub auth_required: bool,
    /// For AUTH replies: whether commands were pipelined after this AUTH.
    pub commands_after_auth: bool,
    /// Strict or relaxed invalidation.
    pub invalidation: Invalidation,
    /// Whether any byte of the message body went out on this connection (BDAT LAST and
    /// its body, or the body after a 354). A reply to BDAT LAST or to the end of data
    /// implies it. After an out-of-step reply the server may hold the message, so the
    /// verdict is then [`Verdict::Tempfail`], never [`Verdict::Reconnect`].
    pub body_sent: bool,
}

/// What one reply means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Outcome {
    /// What the cache must do ([`CacheAction::Nothing`] or [`CacheAction::Invalidate`]).
    pub cache: CacheAction,
    /// What the MTA should do.
    pub verdict: Verdict,
    /// The connection can carry nothing more: close it (QUIT if it is still in step).
    pub connection_done: bool,
    /// A 334 to AUTH: send the next SASL response line, then read the next reply.
    pub auth_challenge: bool,
    /// The server took responsibility for the message (250 to the end of data or to
    /// BDAT LAST).
    pub message_accepted: bool,
    /// The reply cannot answer the command (a positive code other than the one the
    /// command calls for, or a code of no class the command can get): the conversation
    /// is out of step.
    pub out_of_step: bool,
}

/// Whether `code` is the positive reply `answered` calls for (RFC 5321 §4.3.2, RFC 3207,
/// RFC 4954, RFC 3030): the banner 220, EHLO 250, STARTTLS 220, AUTH 235 (334 is a
/// challenge, see [`outcome`]), MAIL 250, RCPT 250 or 251, DATA 354, the end of data
/// 250, BDAT LAST 250, QUIT 221. Any other 1yz, 2yz or 3yz reply to it means the two
/// ends are out of step. Stricter than Exim's client, which takes any 2yz: an MTA that
/// believes a message was delivered deletes it (`docs/RULES.md` §3.1).
pub fn positive_code(answered: CommandKind, code: u16) -> bool {
    match answered {
        CommandKind::Banner | CommandKind::StartTls => code == 220,
        CommandKind::Ehlo | CommandKind::Mail => code == 250,
        CommandKind::Rcpt => code == 250 || code == 251,
        CommandKind::Auth => code == 235,
        CommandKind::Data => code == 354,
        CommandKind::BdatLast | CommandKind::Body => code == 250,
        CommandKind::Quit => code == 221,
    }
}

/// Whether a reply that invalidates after an early flight says the server refused the
/// flight (docs/RULES.md §3.10): a reply out of step, or a 5xx banner (Exim's
/// `554 SMTP synchronization error`). A 421, a 4xx banner or EHLO and a strict-mode
/// transaction failure only remove the entry. Sessions and trackers both ask this.
pub fn refuses_early_flight(answered: CommandKind, code: u16, o: &Outcome) -> bool {
    o.out_of_step || (answered == CommandKind::Banner && code / 100 == 5)
}

/// Whether `code` is a reply code the library accepts as input (100 to 599).
pub fn valid_reply_code(code: u32) -> bool {
    (100..=599).contains(&code)
}

/// The meaning of reply `code` to `answered` in context `ctx`. The rules, in words (each
/// is a section of `docs/RULES.md`):
///
/// - each command has exactly one positive code ([`positive_code`]): the banner 220,
///   EHLO 250, STARTTLS 220, AUTH 235 (or 334: a challenge, when nothing was pipelined
///   after the AUTH), MAIL 250, RCPT 250 or 251, DATA 354, the end of data and BDAT LAST
///   250, QUIT 221;
/// - a failed banner, EHLO or STARTTLS, and a failed required AUTH, invalidate in both
///   modes; after an early flight their verdict is [`Verdict::Reconnect`], otherwise
///   [`Verdict::Tempfail`] (4xx) or [`Verdict::HostError`] (5xx), and the connection is
///   done;
/// - any other 4xx or 5xx invalidates only in [`Invalidation::Strict`] mode and only when
///   early pipelining was used in this TLS phase; its verdict is [`Verdict::Tempfail`]
///   (4xx) or [`Verdict::Rejected`] (5xx); a failed optional AUTH lets the delivery
///   [`Verdict::Continue`] unauthenticated; a failed QUIT changes nothing (the message's
///   fate was settled before it);
/// - 421 closes the connection wherever it comes, and so does any reply to QUIT;
/// - any other reply (a 250 banner, a 220 to BDAT LAST, a 354 to RCPT, a 250 to DATA,
///   any 1xx, a 334 to an AUTH with commands pipelined after it) is out of step: the
///   message is never accepted, the entry is invalidated, the connection is done, and
///   the verdict is [`Verdict::Tempfail`] when any body byte went out (the server may
///   hold the message), [`Verdict::Reconnect`] after an early flight otherwise, and
///   [`Verdict::Tempfail`] on a classic connection.
pub fn outcome(answered: CommandKind, code: u16, ctx: &ReplyContext) -> Outcome {
    let class = code / 100;
    let mut o = Outcome {
        cache: CacheAction::Nothing,
        verdict: Verdict::Continue,
        connection_done: answered == CommandKind::Quit,
        auth_challenge: false,
        message_accepted: false,
        out_of_step: false,
    };
    let failure = class == 4 || class == 5;
    let challenge = answered == CommandKind::Auth && code == 334 && !ctx.commands_after_auth;
    if positive_code(answered, code) || challenge {
        o.auth_challenge = challenge;
        o.message_accepted = matches!(answered, CommandKind::BdatLast | CommandKind::Body);
        return o;
    }
    if !failure {
        // Not the code this command calls for: the two ends are out of step.
        let body_sent =
            ctx.body_sent || matches!(answered, CommandKind::BdatLast | CommandKind::Body);
        o.out_of_step = true;
        o.connection_done = true;
        o.cache = CacheAction::Invalidate;
        o.verdict = if ctx.early_used && !body_sent {
            Verdict::Reconnect
        } else {
            Verdict::Tempfail
        };
        return o;
    }
    let connection_step = match answered {
        CommandKind::Banner | CommandKind::Ehlo | CommandKind::StartTls => true,
        CommandKind::Auth => ctx.auth_required,
        _ => false,
    };
    if connection_step {
        o.cache = CacheAction::Invalidate;
        o.connection_done = true;
        o.verdict = if ctx.early_used && answered != CommandKind::Auth {
            Verdict::Reconnect
        } else if class == 4 {
            Verdict::Tempfail
        } else {
            Verdict::HostError
        };
        return o;
    }
    if answered == CommandKind::Quit {
        // The server closes either way; what it thinks of QUIT says nothing of the message.
        return o;
    }
    if ctx.early_used && ctx.invalidation == Invalidation::Strict {
        o.cache = CacheAction::Invalidate;
    }
    o.verdict = match answered {
        // An optional AUTH that failed: go on without it.
        CommandKind::Auth => Verdict::Continue,
        _ if class == 4 => Verdict::Tempfail,
        _ => Verdict::Rejected,
    };
    if code == 421 {
        o.connection_done = true;
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_values() {
        for (i, v) in Verdict::ALL.iter().enumerate() {
            assert_eq!(*v as usize, i);
            assert_eq!(Verdict::from_u32(i as u32), Some(*v));
        }
        assert_eq!(Verdict::from_u32(5), None);
    }

    #[test]
    fn code_validity() {
        assert!(valid_reply_code(100) && valid_reply_code(599));
        assert!(!valid_reply_code(99) && !valid_reply_code(600) && !valid_reply_code(0));
    }

    #[test]
    fn a_421_to_a_transaction_command_closes_the_connection() {
        let o = outcome(CommandKind::Rcpt, 421, &ReplyContext::default());
        assert!(o.connection_done);
        assert_eq!(o.verdict, Verdict::Tempfail);
    }
}
