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
//! 4. Once the body command is taken (or the transaction ended), [`Session::quit`] may
//!    plan a QUIT, pipelined behind it if the caller likes.
//! 5. [`Session::finish`] ends it and returns a [`Summary`].
//!
//! Each reply must be the code its command calls for ([`crate::policy::positive_code`]);
//! any other positive reply is out of step and never delivers a message. The reply path
//! is `answer.rs` (which command a reply answers, and whether an earlier failure decided
//! it), then one handler per command kind (`setup.rs`, `transaction.rs`, `quit.rs`);
//! planning is `plan.rs`.
//!
//! Memory is bounded: the reply parser has limits, the queues of expected replies and of
//! events hold at most one entry per command of the intent (plus a few AUTH challenges),
//! and event text is cut at [`event::EVENT_TEXT_MAX`] bytes. A reply that answers no
//! command sent is an error ([`SessionError::UnexpectedReply`]), never growth.

mod answer;
pub(crate) mod ehlo_record;
pub mod event;
pub mod intent;
mod plan;
mod quit;
mod setup;
mod transaction;

pub use event::{Event, PlannedCommand, SessionError, Summary};
pub use intent::{AuthIntent, Body, BodyMode, Intent, Recipients};

use crate::cache::Cache;
use crate::caps::Capabilities;
use crate::key::{PeerKey, TlsState};
use crate::policy::{CommandKind, ConnPhase, Flight, Settings, StopReason, Verdict};
use crate::reply::{Reply, ReplyLimits, ReplyParser};
use event::*;
use std::collections::VecDeque;
use std::sync::Arc;

/// The most 334 challenges one AUTH may get before the session calls the conversation
/// out of step (SASL mechanisms in use need two or three).
pub const AUTH_CHALLENGES_MAX: u32 = 8;

/// Where one setup or transaction command stands (EHLO, AUTH, MAIL, QUIT).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum St {
    #[default]
    NotYet,
    Sent,
    Ok,
    Failed,
}

/// A reply the session waits for: which command it answers.
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

/// How far the conversation got: each command's step, the message's phase, and the
/// recipients' counts.
#[derive(Debug, Default)]
struct Progress {
    ehlo: St,
    starttls: StartTls,
    auth: St,
    mail: St,
    message: Message,
    rcpts_released: usize,
    quit: St,
    rcpt_replied: usize,
    accepted: usize,
    rejected: usize,
    deferred: usize,
}

impl Progress {
    /// Whether the server took the message (a 250 to BDAT LAST or the end of data).
    fn delivered(&self) -> bool {
        self.message == Message::Delivered
    }
}

/// Where STARTTLS stands: a phase of its own, since between its 220 and the handshake no
/// byte may be read (RFC 3207 §5).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum StartTls {
    /// Not sent (or not asked for).
    #[default]
    NotSent,
    /// Sent: its 220 is awaited.
    Sent,
    /// The 220 came: the caller does the handshake; nothing may be fed until
    /// [`Session::tls_started`].
    Handshake,
    /// The handshake completed: the encrypted phase runs.
    Done,
    /// Refused (or answered out of step).
    Refused,
}

/// Where the message itself stands: a phase of its own, as each of its replies may only
/// come in one of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Message {
    /// Neither DATA nor BDAT LAST released yet.
    #[default]
    NotSent,
    /// DATA sent: its 354 is awaited.
    AwaitingGoAhead,
    /// BDAT LAST and the body, or the body after the 354, sent: the 250 is awaited.
    AwaitingVerdict,
    /// DATA, BDAT LAST or the end of data refused (or answered out of step).
    Refused,
    /// A 250 to BDAT LAST or to the end of data, in its place: never send it again.
    Delivered,
}

/// Why an early flight was refused (see [`Session::early_flight_refused`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// A 5xx banner.
    BannerRefused { code: u16 },
    /// A reply that is not the one its command calls for.
    OutOfStep { answered: CommandKind, code: u16 },
    /// A reply that answers no command sent.
    UnexpectedReply,
}

/// The next command classic rules allow (see `plan.rs`).
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

    next_seq: usize,
    outbox: VecDeque<PlannedCommand>,
    expected: VecDeque<Expected>,
    events: VecDeque<Event>,
    p: Progress,

    /// The caller took (so may have sent) BDAT LAST or the body: the server may hold the
    /// message whatever it says next.
    body_sent: bool,
    /// A reply came that its command does not allow: nothing read afterwards is trusted.
    out_of_step: bool,
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
            next_seq: 1,
            outbox: VecDeque::new(),
            expected: VecDeque::new(),
            events: VecDeque::new(),
            p: Progress::default(),
            body_sent: false,
            out_of_step: false,
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

    /// The capabilities of the current phase's real EHLO reply, once it is in (`None`
    /// before it, after a failed EHLO, and after STARTTLS until the new EHLO reply).
    pub fn server_caps(&self) -> Option<&Capabilities> {
        self.fresh.as_ref()
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
        self.body_sent |= taken
            .iter()
            .any(|c| matches!(c.kind, CommandKind::BdatLast | CommandKind::Body));
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
            if self.p.starttls == StartTls::Handshake {
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
        if self.finished || self.p.starttls != StartTls::Handshake || !self.expected.is_empty() {
            return Err(SessionError::BadState);
        }
        if !self.parser.is_idle() {
            return Err(self.fail(SessionError::CleartextAfterStartTls));
        }
        self.p.starttls = StartTls::Done;
        self.parser.reset();
        self.phase = ConnPhase::AfterStartTls;
        self.start_phase()
    }

    /// Whether the session has nothing more to do: the transaction ended (or the
    /// connection failed) and no reply is awaited but, perhaps, the 221 to a QUIT already
    /// taken (the delivery's outcome never depends on it: read it briefly if at all).
    pub fn is_done(&self) -> bool {
        if self.finished || self.failed.is_some() || self.abort.is_some() {
            return true;
        }
        let awaited = self.expected.iter().any(|e| e.kind != CommandKind::Quit);
        if self.p.starttls == StartTls::Handshake || awaited || !self.outbox.is_empty() {
            return false;
        }
        match &self.fresh {
            Some(caps) => self.next_step(caps).is_none(),
            None => false,
        }
    }

    /// End the session and say what happened. A banner or EHLO reply still missing after
    /// an early flight was taken for sending invalidates the entry (verdict
    /// [`Verdict::Reconnect`], or [`Verdict::Tempfail`] when BDAT LAST or the body was
    /// taken: the server may hold the message). Later calls
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
                if self.body_sent {
                    // The body went out: the server may hold the message even though no
                    // reply came, so it goes back to the queue rather than out again now.
                    self.abort = Some(Verdict::Tempfail);
                } else {
                    self.reconnect = true;
                }
            }
            self.outbox.clear();
            self.expected.retain(|e| e.taken);
        }
        self.summary()
    }

    fn summary(&self) -> Summary {
        let p = &self.p;
        // Once the server took the message, nothing may send it again.
        let verdict = if p.delivered() {
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
        let flags = bits(&[
            (p.delivered(), SUMMARY_MESSAGE_ACCEPTED),
            (self.cleartext_early_used, SUMMARY_CLEARTEXT_EARLY),
            (self.encrypted_early_used, SUMMARY_ENCRYPTED_EARLY),
            (self.invalidated, SUMMARY_CACHE_INVALIDATED),
            (self.stored, SUMMARY_CACHE_STORED),
            (self.early_withdrawn, SUMMARY_EARLY_STOPPED),
            (self.failed.is_some(), SUMMARY_FAILED),
        ]);
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

    // ---- shared by the reply handlers ----

    fn fail(&mut self, e: SessionError) -> SessionError {
        if self.failed.is_none() {
            self.failed = Some(e);
            // A broken stream after an early flight cannot be told apart from a server
            // confused by early input (once the message is accepted it no longer matters).
            if self.early_in_phase && !self.p.delivered() {
                if e == SessionError::UnexpectedReply && !self.out_of_step {
                    // (After an out-of-step reply the refusal was already recorded.)
                    self.early_flight_refused(Refusal::UnexpectedReply);
                } else {
                    self.invalidate();
                }
                self.reconnect = true;
            }
            self.outbox.clear();
            self.expected.retain(|x| x.taken);
        }
        e
    }

    /// Remove the current phase's entry.
    fn invalidate(&mut self) {
        self.cache.forget(&self.phase_key());
        self.invalidated = true;
    }

    /// The server showed it did not expect this phase's early flight: a 5xx banner (such
    /// as Exim's `554 SMTP synchronization error`) or a reply out of step with the
    /// commands (including one that answers no command), as
    /// [`crate::policy::refuses_early_flight`] says. These come here; the third kind, an
    /// EHLO reply without PIPECONNECT or PIPELINING where the entry had them, goes through
    /// `ehlo_record::record_ehlo`, which the tracker shares. Only these refuse: a 421, a 4xx banner or EHLO, a timeout or dropped connection (see
    /// [`Session::finish`]), a malformed stream and a TLS failure do not. It removes the
    /// entry and puts the server in a hold-down (docs/RULES.md §3.10), so the next
    /// deliveries go classic for a while instead of flapping.
    fn early_flight_refused(&mut self, _cause: Refusal) {
        self.invalidate();
        self.cache.note_early_refused(&self.phase_key());
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
}
