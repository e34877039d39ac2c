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
    /// The server took responsibility for the message (2xx to the end of data or BDAT).
    pub message_accepted: bool,
    /// The reply cannot answer the command (a code of the wrong class for it): the
    /// conversation is out of step.
    pub out_of_step: bool,
}

/// Whether `code` is a reply code the library accepts as input (100 to 599).
pub fn valid_reply_code(code: u32) -> bool {
    (100..=599).contains(&code)
}

/// The meaning of reply `code` to `answered` in context `ctx`. The rules, in words (each
/// is a section of `docs/RULES.md`):
///
/// - the banner must be 2xx; EHLO 250; STARTTLS 220; AUTH 235 (or 334: a challenge);
///   MAIL, RCPT, BDAT and the end of data 2xx; DATA 354;
/// - a failed banner, EHLO or STARTTLS, and a failed required AUTH, invalidate in both
///   modes; after an early flight their verdict is [`Verdict::Reconnect`], otherwise
///   [`Verdict::Tempfail`] (4xx) or [`Verdict::HostError`] (5xx), and the connection is
///   done;
/// - any other 4xx or 5xx invalidates only in [`Invalidation::Strict`] mode and only when
///   early pipelining was used in this TLS phase; its verdict is [`Verdict::Tempfail`]
///   (4xx) or [`Verdict::Rejected`] (5xx); a failed optional AUTH lets the delivery
///   [`Verdict::Continue`] unauthenticated;
/// - 421 closes the connection wherever it comes;
/// - a reply of the wrong class (a 354 to MAIL, a 250 to DATA, any 1xx, a 334 to an AUTH
///   with commands pipelined after it) is out of step: the connection is done, and after
///   an early flight the entry is invalidated and the verdict is [`Verdict::Reconnect`].
pub fn outcome(answered: CommandKind, code: u16, ctx: &ReplyContext) -> Outcome {
    let class = code / 100;
    let mut o = Outcome {
        cache: CacheAction::Nothing,
        verdict: Verdict::Continue,
        connection_done: false,
        auth_challenge: false,
        message_accepted: false,
        out_of_step: false,
    };
    let failure = class == 4 || class == 5;
    let positive = match answered {
        CommandKind::Banner | CommandKind::Mail | CommandKind::Rcpt => class == 2,
        CommandKind::Ehlo => code == 250,
        CommandKind::StartTls => code == 220,
        CommandKind::Auth => class == 2 || (code == 334 && !ctx.commands_after_auth),
        CommandKind::Data => code == 354,
        CommandKind::BdatLast | CommandKind::Body => class == 2,
    };
    if positive {
        o.auth_challenge = answered == CommandKind::Auth && code == 334;
        o.message_accepted = matches!(answered, CommandKind::BdatLast | CommandKind::Body);
        return o;
    }
    let connection_step = match answered {
        CommandKind::Banner | CommandKind::Ehlo | CommandKind::StartTls => true,
        CommandKind::Auth => ctx.auth_required,
        _ => false,
    };
    if !failure {
        // Wrong class for the command: the two ends are out of step.
        o.out_of_step = true;
        o.connection_done = true;
        if ctx.early_used || connection_step {
            o.cache = CacheAction::Invalidate;
        }
        o.verdict = if ctx.early_used {
            Verdict::Reconnect
        } else {
            Verdict::Tempfail
        };
        return o;
    }
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
