//! The replies an MTA read, judged: [`Tracker::on_reply`].

use super::{Mode, Tracker};
use crate::caps::{Capabilities, Extension, ParseOptions};
use crate::policy::{
    check_ehlo, outcome, positive_code, refuses_early_flight, CacheAction, CommandKind,
    ReplyContext, Verdict,
};
use crate::reply::ReplyLimits;
use crate::session::ehlo_record::record_ehlo;
use crate::session::event::{
    outcome_flags, EVENT_CACHE_INVALIDATED, EVENT_CACHE_STORED, EVENT_EARLY, EVENT_EARLY_STOPPED,
    EVENT_FOLLOWS_FAILURE,
};

/// What the MTA does after a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Handle the reply as the MTA always does (a rejected recipient is still rejected).
    Proceed = 0,
    /// The early flight failed before the server accepted anything: close the connection
    /// and connect to the same address again at once, classic. No bounce, no deferral.
    Reconnect = 1,
    /// The two ends are out of step and the body may have reached the server: close the
    /// connection and keep the message queued for a later try (resending now could
    /// deliver it twice).
    Defer = 2,
}

/// The tracker's answer to one reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// What to do.
    pub action: Action,
    /// The reply's meaning under the rules ([`crate::policy::outcome`]).
    pub verdict: Verdict,
    /// Event bits (`EVENT_*` of [`crate::session::event`]): cache stored or invalidated,
    /// early flight stopped, out of step, message accepted, follows a failure.
    pub flags: u32,
    /// After a 250 to EHLO: the extensions it advertised less the ignored ones (the MTA's
    /// features from now on); 0 otherwise.
    pub extensions: u32,
    /// After a 250 to EHLO: its SIZE limit, unless SIZE is ignored or absent.
    pub size_limit: Option<u64>,
}

impl Tracker {
    /// Judge reply `code` (100 to 599) to `answered`. `text` is the whole reply as the
    /// MTA holds it, read only for EHLO: its lines with their codes, ended by CRLF or LF,
    /// the last line end optional (Postfix keeps replies joined by LF, unended).
    ///
    /// After a step that said reconnect or defer, every later reply gets the same step
    /// (with [`EVENT_FOLLOWS_FAILURE`]): the connection is over.
    pub fn on_reply(&mut self, answered: CommandKind, code: u16, text: &[u8]) -> Step {
        if let Some(mut s) = self.settled {
            s.flags |= EVENT_FOLLOWS_FAILURE;
            return s;
        }
        let early = self.mode != Mode::Classic;
        let ctx = ReplyContext {
            early_used: early,
            auth_required: false,
            commands_after_auth: false,
            invalidation: self.settings.invalidation,
            body_sent: false,
        };
        let o = outcome(answered, code, &ctx);
        let mut step = Step {
            action: Action::Proceed,
            verdict: o.verdict,
            flags: outcome_flags(&o) | if early { EVENT_EARLY } else { 0 },
            extensions: 0,
            size_limit: None,
        };
        if o.cache == CacheAction::Invalidate {
            if early && refuses_early_flight(answered, code, &o) {
                self.refused();
            } else {
                self.forget();
            }
            step.flags |= EVENT_CACHE_INVALIDATED;
        }
        if answered == CommandKind::Ehlo && positive_code(answered, code) {
            self.on_ehlo(text, &mut step);
        }
        step.action = match step.verdict {
            Verdict::Reconnect => Action::Reconnect,
            Verdict::Tempfail if o.out_of_step => Action::Defer,
            _ => Action::Proceed,
        };
        if step.action != Action::Proceed {
            self.settled = Some(step);
        }
        step
    }

    /// A 250 to EHLO: compare it with the cache and learn it, as a session does; after an
    /// early flight, a reply that withdraws early pipelining or changes an extension the
    /// flight relied on sends the delivery round again, classic.
    fn on_ehlo(&mut self, text: &[u8], step: &mut Step) {
        let early = self.mode != Mode::Classic;
        let opts = ParseOptions {
            legacy_keywords: self.settings.legacy_keywords,
        };
        let Ok(fresh) = parse_held_reply(text, opts) else {
            if early {
                // What the early commands were built on cannot be checked.
                self.forget();
                step.flags |= EVENT_CACHE_INVALIDATED;
                step.verdict = Verdict::Reconnect;
            }
            return;
        };
        let check = check_ehlo(self.cached.as_ref(), &fresh, self.relied);
        let refused = early && check.stop_early;
        let done = record_ehlo(&self.cache, &self.key, &check, fresh.clone(), refused);
        if done.stored {
            step.flags |= EVENT_CACHE_STORED;
        }
        if done.removed {
            step.flags |= EVENT_CACHE_INVALIDATED;
        }
        if check.stop_early {
            step.flags |= EVENT_EARLY_STOPPED;
        }
        if early {
            if check.stop_early || check.used_changed != 0 {
                step.verdict = Verdict::Reconnect;
            } else {
                self.cache.note_early_success(&self.key);
            }
        }
        step.extensions = fresh.flags() & !self.ignored;
        step.size_limit = fresh
            .size_limit()
            .filter(|_| step.extensions & Extension::Size.bit() != 0);
    }
}

/// Parse a reply as an MTA holds it: CRLF or LF line ends, the last one optional.
///
/// A text longer than a reply may be is refused before anything is copied: the parser
/// would refuse it anyway, and a caller's length must not size an allocation.
fn parse_held_reply(text: &[u8], opts: ParseOptions) -> Result<Capabilities, crate::Error> {
    if text.len() > ReplyLimits::default().max_bytes {
        return Err(crate::Error::ReplyTooLarge);
    }
    if text.ends_with(b"\n") {
        return Capabilities::parse_ehlo(text, opts);
    }
    let mut ended = Vec::with_capacity(text.len() + 2);
    ended.extend_from_slice(text);
    ended.extend_from_slice(b"\r\n");
    Capabilities::parse_ehlo(&ended, opts)
}
