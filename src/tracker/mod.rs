//! A tracker: the library's half of one connection whose commands and replies the MTA
//! handles itself.
//!
//! [`crate::session::Session`] suits a client that lets the library parse the server's
//! bytes and order the commands. An MTA with its own SMTP engine (Postfix's `smtp_chat`,
//! Sendmail's `reply()`) already writes its command lines and reads replies into its own
//! structures; it needs the rules, not another parser. A [`Tracker`] gives it them:
//!
//! 1. [`Tracker::begin`] looks the server up in the cache and plans the connection from
//!    what the MTA means to send ([`Request`]): classic, an early transaction (EHLO,
//!    MAIL, one RCPT per recipient, DATA, before the banner), an early STARTTLS (EHLO,
//!    STARTTLS), or an early EHLO alone (when the MTA says something between EHLO and MAIL). The plan says which cached extensions the MTA may build its MAIL and
//!    RCPT parameters from. The rules are [`crate::policy::early_flight`]'s and the
//!    hold-down's, all or nothing: a flight the policy would cut short stays classic.
//! 2. [`Tracker::on_reply`] takes each reply the MTA read, with the command it answers
//!    (`reply.rs`): the banner, the EHLO reply (compared with the cache and learned, early
//!    or classic), and the transaction's replies. The answer is a [`Step`]: proceed as
//!    the MTA always does, reconnect at once without early pipelining (nothing was
//!    accepted), or defer (out of step after the body may have gone).
//!
//! The tracker updates the cache itself: it learns every EHLO reply it is given, removes
//! the entry when the rules say so, and holds down a server that refused an early flight
//! (docs/RULES.md §3.10), exactly as a session does.

mod reply;

pub use reply::{Action, Step};

use crate::cache::Cache;
use crate::caps::{Capabilities, Extension};
use crate::key::PeerKey;
use crate::policy::{
    early_flight, hold_down_gate, used_extensions, Command, ConnPhase, PolicyError, Settings,
    Situation, StopReason, SEQUENCE_MAX,
};
use std::sync::Arc;

/// Whether the MTA would use STARTTLS with this server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StartTlsUse {
    /// Never (or the connection is already encrypted).
    #[default]
    Never,
    /// When the server offers it (Postfix's `may`, Exim's default).
    IfOffered,
    /// Always: without STARTTLS offered nothing goes early (the MTA will refuse to send).
    Required,
}

/// What the MTA means to send on this connection.
#[derive(Debug, Clone)]
pub struct Request {
    /// The server, in the TLS state of `phase` (cleartext, or encrypted after STARTTLS or
    /// on port 465).
    pub key: PeerKey,
    /// Where the connection stands.
    pub phase: ConnPhase,
    /// After STARTTLS: whether the cleartext phase of this connection had an early flight.
    pub cleartext_early_used: bool,
    /// STARTTLS, in the cleartext phase.
    pub starttls: StartTlsUse,
    /// Recipients of the transaction; 0 when the MTA sends no transaction early (it says
    /// something between EHLO and MAIL, such as AUTH or XFORWARD, or sends no message):
    /// then EHLO alone may go before the banner.
    pub rcpt_count: usize,
    /// The message size the MTA declares with MAIL (0: none).
    pub message_size: u64,
    /// Extensions whose cached facts the MTA builds its early commands from (BODY=8BITMIME,
    /// SMTPUTF8, DSN's RET and NOTIFY, SIZE=): a change to any of them in the real EHLO
    /// reply sends the delivery round again, classic.
    pub relies_on: u32,
    /// Extensions the message cannot go without (SMTPUTF8 for an internationalised
    /// address): without them cached, the connection stays classic.
    pub required: u32,
    /// Extensions the MTA discards from every EHLO reply of this server (Postfix's
    /// `smtp_discard_ehlo_keywords`): the tracker acts as if they were never offered.
    pub ignored: u32,
    /// The caller's settings (whether early flights are allowed for this server, strict
    /// or relaxed invalidation, legacy keywords).
    pub settings: Settings,
}

/// How the connection goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Classic: wait for the banner (after STARTTLS: send EHLO and wait for its reply).
    Classic = 0,
    /// EHLO, MAIL, one RCPT per recipient and DATA go now, before any reply.
    Transaction = 1,
    /// EHLO and STARTTLS go now; after the handshake, begin a tracker for the encrypted
    /// phase.
    StartTls = 2,
    /// EHLO alone goes now, before the banner; the rest waits for the EHLO reply.
    Ehlo = 3,
}

/// The tracker's plan for the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// What goes now.
    pub mode: Mode,
    /// Why the connection stays classic ([`StopReason::EndOfSequence`] when it does not).
    pub reason: StopReason,
    /// How many commands go now (0 when classic).
    pub commands: usize,
    /// The cached extensions less the ignored ones (0 without an entry): build the early
    /// commands' parameters from these, as from a live EHLO reply.
    pub extensions: u32,
    /// The cached SIZE limit (`None`: not advertised, not cached, or SIZE ignored).
    pub size_limit: Option<u64>,
}

/// One connection's early-pipelining state, for an MTA that does its own I/O.
#[derive(Debug)]
pub struct Tracker {
    cache: Arc<Cache>,
    key: PeerKey,
    mode: Mode,
    cached: Option<Capabilities>,
    ignored: u32,
    relied: u32,
    settings: Settings,
    /// The step that ended the early attempt (reconnect or defer); later replies repeat it.
    settled: Option<Step>,
}

/// The extension bits named in `words` (EHLO keywords separated by commas or white space,
/// any case); words that name no tracked extension are skipped.
pub fn keyword_bits(words: &str) -> u32 {
    words
        .split(|c: char| c == ',' || c.is_ascii_whitespace())
        .filter_map(|w| {
            Extension::ALL
                .iter()
                .find(|e| e.keyword().eq_ignore_ascii_case(w))
        })
        .fold(0, |bits, e| bits | e.bit())
}

impl Tracker {
    /// Look the server up and plan the connection. The key must be in the phase's TLS
    /// state ([`PolicyError::TlsStateMismatch`] otherwise).
    pub fn begin(cache: Arc<Cache>, req: &Request) -> Result<(Tracker, Plan), PolicyError> {
        if req.key.tls() != req.phase.tls() {
            return Err(PolicyError::TlsStateMismatch);
        }
        let cached = cache.lookup(&req.key).map(|e| e.caps);
        let mut t = Tracker {
            cache,
            key: req.key.clone(),
            mode: Mode::Classic,
            cached,
            ignored: req.ignored,
            relied: 0,
            settings: req.settings,
            settled: None,
        };
        let plan = t.plan(req)?;
        t.mode = plan.mode;
        Ok((t, plan))
    }

    /// How this connection goes.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    fn plan(&mut self, req: &Request) -> Result<Plan, PolicyError> {
        let ext = self
            .cached
            .as_ref()
            .map_or(0, |c| c.flags() & !self.ignored);
        let size_limit = self
            .cached
            .as_ref()
            .and_then(|c| c.size_limit())
            .filter(|_| ext & Extension::Size.bit() != 0);
        let classic = |reason| Plan {
            mode: Mode::Classic,
            reason,
            commands: 0,
            extensions: ext,
            size_limit,
        };
        let Some(caps) = self.cached.clone() else {
            let reason = if req.settings.early_allowed {
                StopReason::NoEntry
            } else {
                StopReason::NotAllowed
            };
            return Ok(classic(reason));
        };
        if !req.settings.early_allowed {
            return Ok(classic(StopReason::NotAllowed));
        }
        if self.ignored & Extension::PipeConnect.bit() != 0 {
            return Ok(classic(StopReason::NoPipeconnect));
        }
        if self.ignored & Extension::Pipelining.bit() != 0 {
            return Ok(classic(StopReason::NoPipelining));
        }
        if req.required & !ext != 0 {
            return Ok(classic(StopReason::ExtensionMissing));
        }
        let cleartext = req.phase == ConnPhase::Cleartext;
        let offered = ext & Extension::StartTls.bit() != 0;
        let starttls = cleartext && offered && req.starttls != StartTlsUse::Never;
        if cleartext && !offered && req.starttls == StartTlsUse::Required {
            return Ok(classic(StopReason::StartTlsNotOffered));
        }
        let mut cmds = vec![Command::Ehlo];
        let mode = if starttls {
            cmds.push(Command::StartTls);
            Mode::StartTls
        } else if req.rcpt_count == 0 {
            // After STARTTLS the EHLO goes at once anyway: nothing to gain.
            if req.phase == ConnPhase::AfterStartTls {
                return Ok(classic(StopReason::NotAllowed));
            }
            Mode::Ehlo
        } else {
            if req.rcpt_count > SEQUENCE_MAX - 3 {
                return Ok(classic(StopReason::RcptmaxReached));
            }
            cmds.push(Command::Mail {
                size: (req.message_size > 0).then_some(req.message_size),
            });
            cmds.extend(std::iter::repeat_n(Command::Rcpt, req.rcpt_count));
            cmds.push(Command::Data);
            Mode::Transaction
        };
        let situation = Situation {
            phase: req.phase,
            cleartext_early_used: req.cleartext_early_used,
            ehlo_name_known: true,
            early_withdrawn: false,
        };
        let flight = early_flight(Some(&caps), &situation, &self.settings, &cmds)?;
        let flight = hold_down_gate(flight, req.phase, || {
            self.cache.held_down(&self.key).is_some()
        });
        if flight.reason == StopReason::HeldDown {
            self.cache.note_early_skipped(&self.key);
        }
        if flight.allowed < cmds.len() {
            return Ok(classic(flight.reason));
        }
        self.relied = used_extensions(&cmds)
            | if mode == Mode::Transaction {
                req.relies_on
            } else {
                0
            };
        Ok(Plan {
            mode,
            reason: StopReason::EndOfSequence,
            commands: cmds.len(),
            extensions: ext,
            size_limit,
        })
    }

    /// Remove the entry.
    fn forget(&self) {
        self.cache.forget(&self.key);
    }

    /// The server did not expect the early flight: remove the entry and hold it down.
    fn refused(&self) {
        self.cache.forget(&self.key);
        self.cache.note_early_refused(&self.key);
    }
}
