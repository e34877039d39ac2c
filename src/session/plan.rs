//! Planning: which commands go now. The early flight of each TLS phase comes from
//! [`crate::policy::early_flight`]; after the EHLO reply, classic rules (RFC 2920 groups,
//! RFC 4954 §4 for AUTH) release the rest, one group per wait.

use super::event::PlannedCommand;
use super::intent::BodyMode;
use super::{Expected, Message, Next, Session, SessionError, St, StartTls};
use crate::caps::{Capabilities, Extension};
use crate::key::PeerKey;
use crate::policy::flight::positive;
use crate::policy::{
    auth_pipelinable, early_flight, hold_down_gate, used_extensions, Command, CommandKind,
    ConnPhase, Flight, Situation, StopReason,
};

impl Session {
    pub(super) fn start_phase(&mut self) -> Result<(), SessionError> {
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
        let flight = self.hold_down_gate(&key, flight);
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

    /// A server in a hold-down (docs/RULES.md §3.10) gets no early flight: the phase
    /// starts classic with reason `HeldDown`, and the skip is counted.
    fn hold_down_gate(&self, key: &PeerKey, flight: Flight) -> Flight {
        let f = hold_down_gate(flight, self.phase, || self.cache.held_down(key).is_some());
        if f.reason == StopReason::HeldDown {
            self.cache.note_early_skipped(key);
        }
        f
    }

    /// The commands of the current phase, as the policy sees them.
    pub(super) fn phase_commands(&self) -> Vec<Command> {
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
    pub(super) fn body_kind(&self, caps: Option<&Capabilities>) -> CommandKind {
        match self.intent.body.mode {
            BodyMode::Data => CommandKind::Data,
            BodyMode::Auto if caps.is_some_and(|c| c.has(Extension::Chunking)) => {
                CommandKind::BdatLast
            }
            BodyMode::Auto => CommandKind::Data,
        }
    }

    pub(super) fn release_command(
        &mut self,
        c: &Command,
        caps: Option<&Capabilities>,
        early: bool,
    ) {
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

    pub(super) fn release(
        &mut self,
        kind: CommandKind,
        rcpt_index: Option<usize>,
        size: u64,
        early: bool,
    ) {
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
            CommandKind::StartTls => p.starttls = StartTls::Sent,
            CommandKind::Auth => p.auth = St::Sent,
            CommandKind::Mail => p.mail = St::Sent,
            CommandKind::Rcpt => p.rcpts_released += 1,
            CommandKind::Data => p.message = Message::AwaitingGoAhead,
            CommandKind::BdatLast | CommandKind::Body => p.message = Message::AwaitingVerdict,
            CommandKind::Quit => p.quit = St::Sent,
            CommandKind::Banner => {}
        }
    }

    /// How many recipients this transaction sends: the intent's, up to the server's
    /// RCPTMAX, and never fewer than already sent.
    pub(super) fn rcpt_target(&self, caps: &Capabilities) -> usize {
        let n = self.intent.rcpts.len();
        let limit = positive(caps.limits().rcpt_max).map_or(n, |m| m as usize);
        n.min(limit).max(self.p.rcpts_released)
    }

    pub(super) fn auth_is_pipelinable(&self, caps: &Capabilities) -> bool {
        self.intent.auth.as_ref().is_some_and(|a| {
            auth_pipelinable(&a.mechanism, a.initial_response) && caps.has_auth(&a.mechanism)
        })
    }

    /// The next command that may go now under classic rules (RFC 2920 groups, RFC 4954
    /// §4 for AUTH), given the fresh EHLO capabilities.
    pub(super) fn next_step(&self, caps: &Capabilities) -> Option<Next> {
        let p = &self.p;
        if self.tx_failure.is_some() {
            return None;
        }
        if self.phase == ConnPhase::Cleartext && self.intent.starttls {
            return (p.starttls == StartTls::NotSent).then_some(Next::StartTls);
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
        if p.message == Message::NotSent && p.rcpts_released > 0 {
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
    pub(super) fn pump(&mut self) {
        if self.abort.is_some()
            || self.failed.is_some()
            || self.p.starttls == StartTls::Handshake
            || self.finished
            || self.p.quit != St::NotYet
        {
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
}
