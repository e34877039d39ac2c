//! Reading one reply: which command it answers, whether an earlier failure already
//! decided it, what the rules say about it ([`crate::policy::outcome`]), and then the
//! handler of that command's kind (`setup.rs`, `transaction.rs`, `quit.rs`).

use super::event::{
    outcome_flags, Event, EVENT_CACHE_INVALIDATED, EVENT_FOLLOWS_FAILURE, EVENT_MESSAGE_ACCEPTED,
};
use super::{Expected, Message, Refusal, Session, SessionError, St, AUTH_CHALLENGES_MAX};
use crate::policy::Verdict;
use crate::policy::{
    outcome, positive_code, refuses_early_flight, CacheAction, CommandKind, Outcome, ReplyContext,
};
use crate::reply::Reply;

impl Session {
    /// One complete reply, in order.
    pub(super) fn on_reply(&mut self, reply: Reply) -> Result<(), SessionError> {
        let exp = match self.expected.pop_front() {
            Some(exp) => exp,
            None => match self.unannounced_quit(&reply) {
                Some(exp) => exp,
                None => return Err(self.fail(SessionError::UnexpectedReply)),
            },
        };
        if !exp.taken {
            // A reply to a command the caller has not taken, so never sent: no server
            // can answer it, and taking it as its answer could report a message
            // accepted that never went out. The stream is out of step.
            self.expected.push_front(exp);
            return Err(self.fail(SessionError::UnexpectedReply));
        }
        let mut ev = Event::new(exp.seq, exp.kind, exp.rcpt_index, exp.early, &reply);
        let code = reply.code();
        self.server_closing |= code == 421;
        if self.decided_by_earlier_failure(&exp, code, &mut ev) {
            self.push(ev);
            return Ok(());
        }

        let o = self.judge(&exp, code);
        ev.verdict = o.verdict;
        ev.flags |= outcome_flags(&o);
        if o.cache == CacheAction::Invalidate {
            self.invalidate_for(&exp, code, &o);
            ev.flags |= EVENT_CACHE_INVALIDATED;
        }
        if o.out_of_step {
            self.out_of_step = true;
        }
        let ok = o.verdict == Verdict::Continue && !o.out_of_step;
        match exp.kind {
            CommandKind::Banner => self.on_banner(ok),
            CommandKind::Ehlo => self.on_ehlo(ok, &reply, &mut ev),
            CommandKind::StartTls => self.on_starttls(ok),
            CommandKind::Auth => self.on_auth(exp, ok, code, &o),
            CommandKind::Mail => self.on_mail(ok, &o),
            CommandKind::Rcpt => self.on_rcpt(ok, &exp, &o),
            CommandKind::Data => self.on_data(ok, &o),
            CommandKind::BdatLast | CommandKind::Body => self.on_end_of_data(ok, &o),
            CommandKind::Quit => self.on_quit(ok),
        }
        // Every reply to QUIT ends the connection, but only an out-of-step one says
        // anything about the message.
        if o.connection_done && (exp.kind != CommandKind::Quit || o.out_of_step) {
            self.abort_with(o.verdict);
        }
        self.push(ev);
        self.pump();
        Ok(())
    }

    /// What the rules say about `code` answering `exp`, in this connection's context.
    fn judge(&mut self, exp: &Expected, code: u16) -> Outcome {
        let ctx = ReplyContext {
            early_used: self.early_in_phase,
            auth_required: self.intent.auth.as_ref().is_some_and(|a| a.required),
            commands_after_auth: exp.kind == CommandKind::Auth && !self.expected.is_empty(),
            invalidation: self.settings.invalidation,
            body_sent: self.body_sent,
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
        o
    }

    /// Carry out an invalidation the rules asked for. The cases that say the server did
    /// not expect an early flight go through [`Session::early_flight_refused`]; the others
    /// (4xx to the banner or EHLO, 421, a failed STARTTLS or AUTH, a strict-mode
    /// transaction failure) only remove the entry.
    fn invalidate_for(&mut self, exp: &Expected, code: u16, o: &Outcome) {
        if !self.early_in_phase {
            self.invalidate();
        } else if refuses_early_flight(exp.kind, code, o) {
            self.early_flight_refused(if o.out_of_step {
                Refusal::OutOfStep {
                    answered: exp.kind,
                    code,
                }
            } else {
                Refusal::BannerRefused { code }
            });
        } else {
            self.invalidate();
        }
    }

    /// Replies that follow an earlier failure repeat its verdict, unless the server went
    /// on regardless (see [`Session::record_despite_failure`]). Returns whether the reply
    /// was decided so (the event is then complete).
    fn decided_by_earlier_failure(&mut self, exp: &Expected, code: u16, ev: &mut Event) -> bool {
        if let Some(v) = self.abort {
            ev.flags |= EVENT_FOLLOWS_FAILURE;
            if !self.record_despite_failure(exp, code, ev) {
                ev.verdict = v;
                self.count_rcpt_as(exp, v);
            }
            return true;
        }
        let in_tx = matches!(
            exp.kind,
            CommandKind::Rcpt | CommandKind::Data | CommandKind::BdatLast | CommandKind::Body
        );
        if let (true, Some(v)) = (in_tx, self.tx_failure) {
            ev.flags |= EVENT_FOLLOWS_FAILURE;
            if !self.record_despite_failure(exp, code, ev) {
                ev.verdict = v;
                self.count_rcpt_as(exp, v);
            }
            return true;
        }
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
            return true;
        }
        false
    }

    /// A pipelined command that follows a failure may still be carried out by the
    /// server: after a refused AUTH, a server may take MAIL, RCPT and the body without
    /// authentication. What the server says it did is what counts: a recipient it
    /// accepted is counted as accepted, and a 250 to the body means the message was
    /// delivered and must never be sent again. Returns whether the reply was recorded so.
    /// Only the exact positive code of the command counts, on a connection the server
    /// greeted and whose EHLO it accepted, within a transaction it opened (MAIL
    /// accepted), before it said it was closing (421), and while the stream is in step:
    /// anything else proves nothing (and a message not counted as delivered is at worst
    /// sent twice, never lost).
    fn record_despite_failure(&mut self, exp: &Expected, code: u16, ev: &mut Event) -> bool {
        if self.out_of_step
            || self.server_closing
            || self.p.ehlo != St::Ok
            || !positive_code(exp.kind, code)
        {
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
                self.p.message = Message::Delivered;
                ev.flags |= EVENT_MESSAGE_ACCEPTED;
            }
            _ => return false,
        }
        ev.verdict = Verdict::Continue;
        true
    }

    /// Count a RCPT reply that did not accept the recipient, under verdict `v`.
    pub(super) fn count_rcpt_as(&mut self, exp: &Expected, v: Verdict) {
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
}
