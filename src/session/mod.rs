//! One connection's bookkeeping: the planned flights, the replies reaped in order, and
//! what the cache learns and forgets.
//!
//! A [`Session`] covers one connection carrying one transaction (one message, up to
//! [`intent::RCPTS_MAX`] recipients). The caller keeps the socket, the TLS and the
//! message; the session says what to send when, and what each reply means:
//!
//! 1. [`Session::begin`] looks up the cache and plans the early flight with
//!    [`crate::policy::early_flight`]; [`Session::next_commands`] hands it out (empty
//!    when the connection is classic: then wait for the banner).
//! 2. [`Session::feed`] takes reply bytes exactly as read (any split, several replies per
//!    buffer) and queues one [`Event`] per complete reply ([`Session::next_event`]); each
//!    reply may release more commands ([`Session::next_commands`] again). Every EHLO reply,
//!    early or classic, is compared with the cache ([`crate::policy::check_ehlo`]) and
//!    learned; every other reply is judged by [`crate::policy::outcome`].
//! 3. After a 220 to STARTTLS and a completed handshake, [`Session::tls_started`] plans
//!    the encrypted phase (with the key in the encrypted state).
//! 4. [`Session::finish`] ends it and returns a [`Summary`].
//!
//! Memory is bounded: the reply parser has limits, the queues of expected replies and of
//! events hold at most one entry per command of the intent (plus a few AUTH challenges),
//! and event text is cut at [`event::EVENT_TEXT_MAX`] bytes. A reply that answers no
//! command sent is an error ([`SessionError::UnexpectedReply`]), never growth.

pub mod event;
pub mod intent;

pub use event::{Event, PlannedCommand, SessionError, Summary};
pub use intent::{AuthIntent, Body, BodyMode, Intent, Recipients};

use crate::cache::{Cache, Learned};
use crate::caps::{Capabilities, Extension, ParseOptions};
use crate::key::{PeerKey, TlsState};
use crate::policy::flight::positive;
use crate::policy::{
    auth_pipelinable, check_ehlo, early_flight, outcome, used_extensions, CacheAction, Command,
    CommandKind, ConnPhase, Flight, ReplyContext, Settings, Situation, StopReason, Verdict,
};
use crate::reply::{Reply, ReplyLimits, ReplyParser};
use event::*;
use std::collections::VecDeque;
use std::sync::Arc;

/// The most 334 challenges one AUTH may get before the session calls the conversation
/// out of step (SASL mechanisms in use need two or three).
pub const AUTH_CHALLENGES_MAX: u32 = 8;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum St {
    #[default]
    NotYet,
    Sent,
    Ok,
    Failed,
}

#[derive(Debug, Clone, Copy)]
struct Expected {
    seq: usize,
    kind: CommandKind,
    rcpt_index: Option<usize>,
    early: bool,
    /// Handed to the caller (so it may have been sent). Commands not taken are withdrawn
    /// when the connection fails, and are not counted as outstanding.
    taken: bool,
}

#[derive(Debug, Default)]
struct Progress {
    ehlo: St,
    starttls: St,
    auth: St,
    mail: St,
    body: St,
    data_body: St,
    rcpts_released: usize,
    rcpt_replied: usize,
    accepted: usize,
    rejected: usize,
    deferred: usize,
    message_accepted: bool,
}

enum Next {
    StartTls,
    Auth,
    Mail,
    Rcpt,
    Body(CommandKind),
}

/// One connection's bookkeeping. See the module documentation. Not for use by two
/// threads at once (it is `Send`: it may move between threads).
#[derive(Debug)]
pub struct Session {
    cache: Arc<Cache>,
    key: PeerKey,
    intent: Intent,
    settings: Settings,
    phase: ConnPhase,
    parser: ReplyParser,
    scratch: Vec<Reply>,

    cached: Option<Capabilities>,
    fresh: Option<Capabilities>,
    flight: Flight,
    early_in_phase: bool,
    /// The caller took (so may have sent) a command of this phase's early flight.
    early_taken: bool,
    used_bits: u32,

    cleartext_early_used: bool,
    encrypted_early_used: bool,
    early_withdrawn: bool,
    awaiting_tls: bool,

    next_seq: usize,
    outbox: VecDeque<PlannedCommand>,
    expected: VecDeque<Expected>,
    events: VecDeque<Event>,
    p: Progress,

    abort: Option<Verdict>,
    /// The server said 421: it is closing, and nothing it sends after counts.
    server_closing: bool,
    tx_failure: Option<Verdict>,
    failed: Option<SessionError>,
    finished: bool,
    reconnect: bool,
    invalidated: bool,
    stored: bool,
    groups: usize,
    auth_challenges: u32,
}

impl Session {
    /// Start a connection to `key`'s server: a cleartext key for a plain or STARTTLS
    /// connection, an encrypted key for TLS on connect (port 465; begin after the
    /// handshake). Looks up the cache and plans the early flight; take it with
    /// [`Session::next_commands`] (empty: classic, wait for the banner).
    pub fn begin(
        cache: Arc<Cache>,
        key: PeerKey,
        intent: Intent,
        settings: Settings,
    ) -> Result<Session, SessionError> {
        intent.validate()?;
        let tls_on_connect = key.tls() == TlsState::Encrypted;
        if tls_on_connect && intent.starttls {
            return Err(SessionError::InvalidIntent(IntentProblem::field(
                "flags",
                "STARTTLS on a connection that is encrypted from the start",
            )));
        }
        if let (Some(k), Some(i)) = (key.ehlo_name(), intent.ehlo_name.as_deref()) {
            if !k.eq_ignore_ascii_case(i) {
                return Err(SessionError::InvalidIntent(IntentProblem::field(
                    "ehlo_name",
                    "the key is narrowed to another EHLO name than the intent's",
                )));
            }
        }
        let mut s = Session {
            cache,
            key,
            intent,
            settings,
            phase: if tls_on_connect {
                ConnPhase::TlsOnConnect
            } else {
                ConnPhase::Cleartext
            },
            parser: ReplyParser::new(ReplyLimits::default()),
            scratch: Vec::with_capacity(1),
            cached: None,
            fresh: None,
            flight: Flight {
                allowed: 0,
                reason: StopReason::NoEntry,
            },
            early_in_phase: false,
            early_taken: false,
            used_bits: 0,
            cleartext_early_used: false,
            encrypted_early_used: false,
            early_withdrawn: false,
            awaiting_tls: false,
            next_seq: 1,
            outbox: VecDeque::new(),
            expected: VecDeque::new(),
            events: VecDeque::new(),
            p: Progress::default(),
            abort: None,
            server_closing: false,
            tx_failure: None,
            failed: None,
            finished: false,
            reconnect: false,
            invalidated: false,
            stored: false,
            groups: 0,
            auth_challenges: 0,
        };
        s.start_phase()?;
        Ok(s)
    }

    /// The key of the current TLS phase.
    pub fn phase_key(&self) -> PeerKey {
        self.key.in_state(self.phase.tls())
    }

    /// Where the connection stands: cleartext, after STARTTLS, or TLS on connect.
    pub fn phase(&self) -> ConnPhase {
        self.phase
    }

    /// The policy's answer for the current phase's early flight: how many commands went
    /// early and why it stopped there.
    pub fn flight(&self) -> Flight {
        self.flight
    }

    /// Whether the current TLS phase used an early flight.
    pub fn early_in_phase(&self) -> bool {
        self.early_in_phase
    }

    /// The intent the session was begun with.
    pub fn intent(&self) -> &Intent {
        &self.intent
    }

    /// How many events wait in the queue.
    pub fn pending_events(&self) -> usize {
        self.events.len()
    }

    /// How many commands wait to be taken with [`Session::next_commands`].
    pub fn pending_commands(&self) -> usize {
        self.outbox.len()
    }

    /// Take every command that may be sent now, in order. The caller sends them (for
    /// BDAT LAST, the body right after the line; for [`CommandKind::Body`], the
    /// dot-stuffed body and `.\r\n`).
    pub fn next_commands(&mut self) -> Vec<PlannedCommand> {
        self.take_commands(usize::MAX)
    }

    /// As [`Session::next_commands`], at most `max` commands (the rest stay queued).
    pub fn take_commands(&mut self, max: usize) -> Vec<PlannedCommand> {
        let n = max.min(self.outbox.len());
        let taken: Vec<PlannedCommand> = self.outbox.drain(..n).collect();
        self.early_taken |= taken.iter().any(|c| c.early);
        if let Some(last) = taken.last() {
            for e in self.expected.iter_mut() {
                if e.seq <= last.seq {
                    e.taken = true;
                }
            }
        }
        taken
    }

    /// The command line for `cmd` (from this session), CRLF included: an optional
    /// helper for callers that do not format their own lines.
    pub fn command_line(&self, cmd: &PlannedCommand) -> Result<String, SessionError> {
        self.intent.command_line(cmd)
    }

    /// The oldest queued event.
    pub fn next_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Feed reply bytes exactly as read from the socket. Every complete reply becomes one
    /// event; returns how many. On error the session stops (the error repeats on every
    /// later call); events queued before it remain.
    pub fn feed(&mut self, data: &[u8]) -> Result<usize, SessionError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.finished {
            return Err(SessionError::BadState);
        }
        let mut count = 0;
        let mut rest = data;
        while !rest.is_empty() {
            if self.awaiting_tls {
                return Err(self.fail(SessionError::CleartextAfterStartTls));
            }
            // One line at a time, so the end of the STARTTLS reply is seen exactly.
            let cut = rest
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |i| i + 1);
            let (chunk, tail) = rest.split_at(cut);
            rest = tail;
            let mut replies = std::mem::take(&mut self.scratch);
            let parsed = self.parser.feed(chunk, &mut replies);
            let mut result = Ok(());
            for reply in replies.drain(..) {
                if result.is_ok() {
                    result = self.on_reply(reply);
                    count += 1;
                }
            }
            self.scratch = replies;
            result?;
            if let Err(e) = parsed {
                return Err(self.fail(SessionError::Reply(e)));
            }
        }
        Ok(count)
    }

    /// The TLS handshake after the 220 to STARTTLS completed: plan the encrypted phase
    /// with the key in the encrypted state (take the flight with
    /// [`Session::next_commands`]). Fails with [`SessionError::CleartextAfterStartTls`]
    /// when the reply parser holds bytes not yet part of a reply (and the session stops),
    /// with [`SessionError::BadState`] when no 220 to STARTTLS was seen.
    pub fn tls_started(&mut self) -> Result<(), SessionError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.finished || !self.awaiting_tls || !self.expected.is_empty() {
            return Err(SessionError::BadState);
        }
        if !self.parser.is_idle() {
            return Err(self.fail(SessionError::CleartextAfterStartTls));
        }
        self.awaiting_tls = false;
        self.parser.reset();
        self.phase = ConnPhase::AfterStartTls;
        self.start_phase()
    }

    /// Whether the session has nothing more to do: the transaction ended (or the
    /// connection failed) and no reply is awaited.
    pub fn is_done(&self) -> bool {
        if self.finished || self.failed.is_some() || self.abort.is_some() {
            return true;
        }
        if self.awaiting_tls || !self.expected.is_empty() || !self.outbox.is_empty() {
            return false;
        }
        match &self.fresh {
            Some(caps) => self.next_step(caps).is_none(),
            None => false,
        }
    }

    /// End the session and say what happened. A banner or EHLO reply still missing after
    /// an early flight was taken for sending invalidates the entry (verdict
    /// [`Verdict::Reconnect`]). Later calls
    /// return the same summary; feeding is then refused.
    pub fn finish(&mut self) -> Summary {
        if !self.finished {
            self.finished = true;
            let setup_missing = self
                .expected
                .iter()
                .any(|e| e.taken && matches!(e.kind, CommandKind::Banner | CommandKind::Ehlo));
            if self.early_taken && self.abort.is_none() && self.failed.is_none() && setup_missing {
                self.invalidate();
                self.reconnect = true;
            }
            self.outbox.clear();
            self.expected.retain(|e| e.taken);
        }
        self.summary()
    }

    fn summary(&self) -> Summary {
        let p = &self.p;
        // Once the server took the message, nothing may send it again.
        let verdict = if p.message_accepted {
            Verdict::Continue
        } else if self.reconnect || self.abort == Some(Verdict::Reconnect) {
            Verdict::Reconnect
        } else if let Some(v) = self.abort.or(self.tx_failure) {
            v
        } else if self.failed.is_none()
            && p.rcpts_released > 0
            && p.rcpt_replied == p.rcpts_released
            && p.accepted == 0
            && p.deferred == 0
        {
            Verdict::Rejected
        } else {
            Verdict::Tempfail
        };
        let mut flags = 0;
        for (on, bit) in [
            (p.message_accepted, SUMMARY_MESSAGE_ACCEPTED),
            (self.cleartext_early_used, SUMMARY_CLEARTEXT_EARLY),
            (self.encrypted_early_used, SUMMARY_ENCRYPTED_EARLY),
            (self.invalidated, SUMMARY_CACHE_INVALIDATED),
            (self.stored, SUMMARY_CACHE_STORED),
            (self.early_withdrawn, SUMMARY_EARLY_STOPPED),
            (self.failed.is_some(), SUMMARY_FAILED),
        ] {
            if on {
                flags |= bit;
            }
        }
        Summary {
            verdict,
            flags,
            rcpt_accepted: p.accepted,
            rcpt_rejected: p.rejected,
            rcpt_deferred: p.deferred,
            rcpt_not_attempted: self.intent.rcpts.len().saturating_sub(p.rcpts_released),
            replies_outstanding: self.expected.iter().filter(|e| e.taken).count(),
            groups: self.groups,
        }
    }

    // ---- planning ----

    fn start_phase(&mut self) -> Result<(), SessionError> {
        let key = self.phase_key();
        self.cached = self.cache.lookup(&key).map(|e| e.caps);
        self.fresh = None;
        self.p.ehlo = St::NotYet;
        self.early_taken = false;
        let cmds = self.phase_commands();
        let situation = Situation {
            phase: self.phase,
            cleartext_early_used: self.cleartext_early_used,
            ehlo_name_known: self.intent.ehlo_name.is_some(),
            early_withdrawn: self.early_withdrawn,
        };
        let flight = early_flight(self.cached.as_ref(), &situation, &self.settings, &cmds)
            .map_err(SessionError::Policy)?;
        self.flight = flight;
        let banner = self.phase != ConnPhase::AfterStartTls;
        // After STARTTLS the EHLO goes at once anyway; early means more than EHLO.
        self.early_in_phase = flight.allowed >= if banner { 1 } else { 2 };
        if banner {
            self.expected.push_back(Expected {
                seq: 0,
                kind: CommandKind::Banner,
                rcpt_index: None,
                early: false,
                taken: true,
            });
        }
        if self.early_in_phase {
            self.used_bits = used_extensions(&cmds[..flight.allowed]);
            let caps = self.cached.clone();
            for c in &cmds[..flight.allowed] {
                self.release_command(c, caps.as_ref(), true);
            }
            if self.phase == ConnPhase::Cleartext {
                self.cleartext_early_used = true;
            } else {
                self.encrypted_early_used = true;
            }
            self.groups += 1;
        } else {
            self.used_bits = 0;
            if !banner {
                self.release(CommandKind::Ehlo, None, 0, false);
                self.groups += 1;
            }
        }
        Ok(())
    }

    /// The commands of the current phase, as the policy sees them.
    fn phase_commands(&self) -> Vec<Command> {
        let mut v = vec![Command::Ehlo];
        if self.phase == ConnPhase::Cleartext && self.intent.starttls {
            v.push(Command::StartTls);
            return v;
        }
        if let Some(a) = &self.intent.auth {
            v.push(Command::auth(&a.mechanism, a.initial_response));
        }
        v.push(Command::Mail {
            size: Some(self.intent.body.size),
        });
        v.extend(std::iter::repeat_n(Command::Rcpt, self.intent.rcpts.len()));
        v.push(match self.body_kind(self.cached.as_ref()) {
            CommandKind::BdatLast => Command::BdatLast {
                size: self.intent.body.size,
            },
            _ => Command::Data,
        });
        v
    }

    /// DATA or BDAT LAST, for the capabilities in use.
    fn body_kind(&self, caps: Option<&Capabilities>) -> CommandKind {
        match self.intent.body.mode {
            BodyMode::Data => CommandKind::Data,
            BodyMode::Auto if caps.is_some_and(|c| c.has(Extension::Chunking)) => {
                CommandKind::BdatLast
            }
            BodyMode::Auto => CommandKind::Data,
        }
    }

    fn release_command(&mut self, c: &Command, caps: Option<&Capabilities>, early: bool) {
        let size = self.intent.body.size;
        match c {
            Command::Ehlo => self.release(CommandKind::Ehlo, None, 0, early),
            Command::StartTls => self.release(CommandKind::StartTls, None, 0, early),
            Command::Auth { .. } => self.release(CommandKind::Auth, None, 0, early),
            Command::Mail { .. } => {
                let declared = if caps.is_some_and(|c| c.has(Extension::Size)) {
                    size
                } else {
                    0
                };
                self.release(CommandKind::Mail, None, declared, early)
            }
            Command::Rcpt => {
                let i = self.p.rcpts_released;
                self.release(CommandKind::Rcpt, Some(i), 0, early)
            }
            Command::Data => self.release(CommandKind::Data, None, 0, early),
            Command::BdatLast { size } => self.release(CommandKind::BdatLast, None, *size, early),
        }
    }

    fn release(&mut self, kind: CommandKind, rcpt_index: Option<usize>, size: u64, early: bool) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.outbox.push_back(PlannedCommand {
            seq,
            kind,
            rcpt_index,
            size,
            early,
        });
        self.expected.push_back(Expected {
            seq,
            kind,
            rcpt_index,
            early,
            taken: false,
        });
        let p = &mut self.p;
        match kind {
            CommandKind::Ehlo => p.ehlo = St::Sent,
            CommandKind::StartTls => p.starttls = St::Sent,
            CommandKind::Auth => p.auth = St::Sent,
            CommandKind::Mail => p.mail = St::Sent,
            CommandKind::Rcpt => p.rcpts_released += 1,
            CommandKind::Data | CommandKind::BdatLast => p.body = St::Sent,
            CommandKind::Body => p.data_body = St::Sent,
            CommandKind::Banner => {}
        }
    }

    /// How many recipients this transaction sends: the intent's, up to the server's
    /// RCPTMAX, and never fewer than already sent.
    fn rcpt_target(&self, caps: &Capabilities) -> usize {
        let n = self.intent.rcpts.len();
        let limit = positive(caps.limits().rcpt_max).map_or(n, |m| m as usize);
        n.min(limit).max(self.p.rcpts_released)
    }

    fn auth_is_pipelinable(&self, caps: &Capabilities) -> bool {
        self.intent.auth.as_ref().is_some_and(|a| {
            auth_pipelinable(&a.mechanism, a.initial_response) && caps.has_auth(&a.mechanism)
        })
    }

    /// The next command that may go now under classic rules (RFC 2920 groups, RFC 4954
    /// §4 for AUTH), given the fresh EHLO capabilities.
    fn next_step(&self, caps: &Capabilities) -> Option<Next> {
        let p = &self.p;
        if self.tx_failure.is_some() {
            return None;
        }
        if self.phase == ConnPhase::Cleartext && self.intent.starttls {
            return (p.starttls == St::NotYet).then_some(Next::StartTls);
        }
        if self.intent.auth.is_some() {
            match p.auth {
                St::NotYet => return Some(Next::Auth),
                St::Sent if !self.auth_is_pipelinable(caps) => return None,
                _ => {}
            }
        }
        if p.mail == St::NotYet {
            return Some(Next::Mail);
        }
        if p.rcpts_released < self.rcpt_target(caps) {
            return Some(Next::Rcpt);
        }
        if p.body == St::NotYet && p.rcpts_released > 0 {
            let kind = self.body_kind(Some(caps));
            if kind == CommandKind::BdatLast
                && self.intent.body.size > self.settings.max_first_flight_body
                && (p.rcpt_replied < p.rcpts_released || p.accepted == 0)
            {
                // A large body waits until a recipient was accepted.
                return None;
            }
            return Some(Next::Body(kind));
        }
        None
    }

    /// Release what classic rules allow now.
    fn pump(&mut self) {
        if self.abort.is_some() || self.failed.is_some() || self.awaiting_tls || self.finished {
            return;
        }
        let Some(caps) = self.fresh.clone() else {
            return;
        };
        let pipelining = caps.has(Extension::Pipelining);
        let mut released = false;
        loop {
            if !pipelining && !self.expected.is_empty() {
                break;
            }
            let Some(next) = self.next_step(&caps) else {
                break;
            };
            released = true;
            match next {
                Next::StartTls => {
                    self.release(CommandKind::StartTls, None, 0, false);
                    break;
                }
                Next::Auth => {
                    self.release(CommandKind::Auth, None, 0, false);
                    if !self.auth_is_pipelinable(&caps) {
                        break;
                    }
                }
                Next::Mail => {
                    self.release_command(&Command::Mail { size: None }, Some(&caps), false)
                }
                Next::Rcpt => self.release_command(&Command::Rcpt, Some(&caps), false),
                Next::Body(kind) => {
                    let size = if kind == CommandKind::BdatLast {
                        self.intent.body.size
                    } else {
                        0
                    };
                    self.release(kind, None, size, false);
                    break;
                }
            }
        }
        if released {
            self.groups += 1;
        }
    }

    // ---- replies ----

    fn fail(&mut self, e: SessionError) -> SessionError {
        if self.failed.is_none() {
            self.failed = Some(e);
            // A broken stream after an early flight cannot be told apart from a server
            // confused by early input (once the message is accepted it no longer matters).
            if self.early_in_phase && !self.p.message_accepted {
                self.invalidate();
                self.reconnect = true;
            }
            self.outbox.clear();
            self.expected.retain(|x| x.taken);
        }
        e
    }

    fn invalidate(&mut self) {
        self.cache.forget(&self.phase_key());
        self.invalidated = true;
    }

    fn push(&mut self, ev: Event) {
        self.events.push_back(ev);
    }

    /// Stop the connection: commands not yet taken are withdrawn.
    fn abort_with(&mut self, v: Verdict) {
        self.abort = Some(v);
        self.outbox.clear();
        self.expected.retain(|e| e.taken);
    }

    fn on_reply(&mut self, reply: Reply) -> Result<(), SessionError> {
        let Some(exp) = self.expected.pop_front() else {
            return Err(self.fail(SessionError::UnexpectedReply));
        };
        if !exp.taken {
            // Answered before the caller took it (a replayed stream fed whole): there
            // is nothing left to send for it.
            self.outbox.retain(|c| c.seq != exp.seq);
        }
        let mut ev = Event::new(exp.seq, exp.kind, exp.rcpt_index, exp.early, &reply);
        self.server_closing |= reply.code() == 421;

        // Replies that follow an earlier failure repeat its verdict, unless the server
        // went on regardless (see `record_despite_failure`).
        if let Some(v) = self.abort {
            ev.flags |= EVENT_FOLLOWS_FAILURE;
            if !self.record_despite_failure(&exp, &reply, &mut ev) {
                ev.verdict = v;
                self.count_rcpt_as(&exp, v);
            }
            self.push(ev);
            return Ok(());
        }
        let in_tx = matches!(
            exp.kind,
            CommandKind::Rcpt | CommandKind::Data | CommandKind::BdatLast | CommandKind::Body
        );
        if let (true, Some(v)) = (in_tx, self.tx_failure) {
            ev.flags |= EVENT_FOLLOWS_FAILURE;
            if !self.record_despite_failure(&exp, &reply, &mut ev) {
                ev.verdict = v;
                self.count_rcpt_as(&exp, v);
            }
            self.push(ev);
            return Ok(());
        }
        let code = reply.code();
        let no_recipient = matches!(
            exp.kind,
            CommandKind::Data | CommandKind::BdatLast | CommandKind::Body
        ) && self.p.rcpt_replied == self.p.rcpts_released
            && self.p.accepted == 0;
        if no_recipient && !(exp.kind == CommandKind::Data && code == 354) {
            // Every recipient was refused: whatever the server says about the body
            // (normally 554 or 503), nothing was delivered.
            let v = if self.p.deferred > 0 {
                Verdict::Tempfail
            } else {
                Verdict::Rejected
            };
            ev.verdict = v;
            ev.flags |= EVENT_FOLLOWS_FAILURE;
            self.tx_failure = Some(v);
            self.push(ev);
            return Ok(());
        }

        let ctx = ReplyContext {
            early_used: self.early_in_phase,
            auth_required: self.intent.auth.as_ref().is_some_and(|a| a.required),
            commands_after_auth: exp.kind == CommandKind::Auth && !self.expected.is_empty(),
            invalidation: self.settings.invalidation,
        };
        let mut o = outcome(exp.kind, code, &ctx);
        if o.auth_challenge {
            self.auth_challenges += 1;
            if self.auth_challenges > AUTH_CHALLENGES_MAX {
                o.auth_challenge = false;
                o.out_of_step = true;
                o.connection_done = true;
                o.verdict = Verdict::Tempfail;
            }
        }
        ev.verdict = o.verdict;
        for (on, bit) in [
            (o.connection_done, EVENT_CONNECTION_DONE),
            (o.auth_challenge, EVENT_AUTH_CHALLENGE),
            (o.message_accepted, EVENT_MESSAGE_ACCEPTED),
            (o.out_of_step, EVENT_OUT_OF_STEP),
        ] {
            if on {
                ev.flags |= bit;
            }
        }
        if o.cache == CacheAction::Invalidate {
            self.invalidate();
            ev.flags |= EVENT_CACHE_INVALIDATED;
        }
        let ok = o.verdict == Verdict::Continue && !o.out_of_step;
        match exp.kind {
            CommandKind::Banner => {
                if ok && self.p.ehlo == St::NotYet {
                    // Classic: the EHLO goes once the banner is in.
                    self.release(CommandKind::Ehlo, None, 0, false);
                    self.groups += 1;
                }
            }
            CommandKind::Ehlo => {
                if ok {
                    self.on_ehlo(&reply, &mut ev);
                    self.p.ehlo = St::Ok;
                } else {
                    self.p.ehlo = St::Failed;
                }
            }
            CommandKind::StartTls => {
                if ok {
                    self.p.starttls = St::Ok;
                    self.awaiting_tls = true;
                } else {
                    self.p.starttls = St::Failed;
                }
            }
            CommandKind::Auth => {
                if o.auth_challenge {
                    // The same AUTH answers again after the caller's SASL response.
                    self.expected.push_front(exp);
                } else if ok && (200..300).contains(&code) {
                    self.p.auth = St::Ok;
                } else {
                    self.p.auth = St::Failed;
                }
            }
            CommandKind::Mail => {
                if ok {
                    self.p.mail = St::Ok;
                } else {
                    self.p.mail = St::Failed;
                    self.tx_failure = Some(o.verdict);
                    self.outbox.clear();
                    self.expected.retain(|e| e.taken);
                }
            }
            CommandKind::Rcpt => {
                if ok {
                    self.p.rcpt_replied += 1;
                    self.p.accepted += 1;
                } else {
                    self.count_rcpt_as(&exp, o.verdict);
                }
            }
            CommandKind::Data => {
                if ok {
                    self.p.body = St::Ok;
                    self.release(CommandKind::Body, None, 0, false);
                    self.groups += 1;
                } else {
                    self.p.body = St::Failed;
                    self.tx_failure = Some(o.verdict);
                }
            }
            CommandKind::BdatLast | CommandKind::Body => {
                if ok {
                    self.p.message_accepted = true;
                    if exp.kind == CommandKind::Body {
                        self.p.data_body = St::Ok;
                    } else {
                        self.p.body = St::Ok;
                    }
                } else {
                    self.tx_failure = Some(o.verdict);
                }
            }
        }
        if o.connection_done {
            self.abort_with(o.verdict);
        }
        self.push(ev);
        self.pump();
        Ok(())
    }

    /// A pipelined command that follows a failure may still be carried out by the
    /// server: after a refused AUTH, a server may take MAIL, RCPT and the body without
    /// authentication. What the server says it did is what counts: a recipient it
    /// accepted is counted as accepted, and a 2xx to the body means the message was
    /// delivered and must never be sent again. Returns whether the reply was recorded so.
    /// Only within a transaction the server opened (MAIL accepted) and before it said it
    /// was closing (421): a 2xx outside those is out of step and proves nothing.
    fn record_despite_failure(&mut self, exp: &Expected, reply: &Reply, ev: &mut Event) -> bool {
        if !reply.is_positive() || self.server_closing {
            return false;
        }
        match exp.kind {
            CommandKind::Mail => {
                self.p.mail = St::Ok;
                return false;
            }
            CommandKind::Rcpt | CommandKind::BdatLast | CommandKind::Body
                if self.p.mail != St::Ok =>
            {
                return false;
            }
            CommandKind::Rcpt => {
                self.p.rcpt_replied += 1;
                self.p.accepted += 1;
            }
            CommandKind::BdatLast | CommandKind::Body => {
                self.p.message_accepted = true;
                ev.flags |= EVENT_MESSAGE_ACCEPTED;
            }
            _ => return false,
        }
        ev.verdict = Verdict::Continue;
        true
    }

    /// Count a RCPT reply that did not accept the recipient, under verdict `v`.
    fn count_rcpt_as(&mut self, exp: &Expected, v: Verdict) {
        if exp.kind != CommandKind::Rcpt {
            return;
        }
        self.p.rcpt_replied += 1;
        if v == Verdict::Rejected {
            self.p.rejected += 1;
        } else {
            self.p.deferred += 1;
        }
    }

    fn on_ehlo(&mut self, reply: &Reply, ev: &mut Event) {
        let opts = ParseOptions {
            legacy_keywords: self.settings.legacy_keywords,
        };
        let Ok(fresh) = Capabilities::from_reply(reply, opts) else {
            return;
        };
        let check = check_ehlo(self.cached.as_ref(), &fresh, self.used_bits);
        ev.changed_extensions = check.changed;
        match check.cache {
            CacheAction::Nothing => {}
            CacheAction::Invalidate => {
                self.invalidate();
                ev.flags |= EVENT_CACHE_INVALIDATED;
            }
            CacheAction::Store => match self.cache.learn(&self.phase_key(), fresh.clone()) {
                Learned::Stored => {
                    self.stored = true;
                    ev.flags |= EVENT_CACHE_STORED;
                }
                Learned::NotCached(removed) => {
                    if removed {
                        self.invalidated = true;
                        ev.flags |= EVENT_CACHE_INVALIDATED;
                    }
                }
            },
        }
        if check.stop_early {
            self.early_withdrawn = true;
            ev.flags |= EVENT_EARLY_STOPPED;
        }
        self.fresh = Some(fresh);
    }
}
