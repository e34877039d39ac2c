//! QUIT: planned on request once nothing else will follow it, answered by 221.

use super::{Expected, Session, SessionError, St, StartTls};
use crate::policy::CommandKind;
use crate::reply::Reply;

impl Session {
    /// Plan a QUIT (take it with [`Session::next_commands`]); its reply is expected to be
    /// 221, and is judged like any other (a 221 where another code was due puts the
    /// stream out of step, so a reply stream shifted by one never delivers a message).
    /// Allowed once nothing more can follow it: the body command was released (QUIT may
    /// then be pipelined behind it), or the transaction ended (delivered, failed, or the
    /// connection done). Otherwise [`SessionError::BadState`], as after a QUIT already
    /// planned, during a STARTTLS handshake, or after [`Session::finish`].
    pub fn quit(&mut self) -> Result<(), SessionError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        if self.finished || self.p.starttls == StartTls::Handshake || self.p.quit != St::NotYet {
            return Err(SessionError::BadState);
        }
        let settled = self.abort.is_some() || self.tx_failure.is_some() || self.p.delivered();
        let body_last = self
            .expected
            .back()
            .is_some_and(|e| matches!(e.kind, CommandKind::BdatLast | CommandKind::Body));
        if !(settled || body_last || self.is_done()) {
            return Err(SessionError::BadState);
        }
        self.release(CommandKind::Quit, None, 0, false);
        Ok(())
    }

    /// The QUIT reply: the connection is over either way.
    pub(super) fn on_quit(&mut self, ok: bool) {
        self.p.quit = if ok { St::Ok } else { St::Failed };
        self.outbox.clear();
    }

    /// A 221 when nothing is awaited and the transaction is over: the caller sent QUIT
    /// without planning it (pipelined behind the body, say). Taken as that QUIT's reply
    /// rather than as a reply to nothing.
    pub(super) fn unannounced_quit(&mut self, reply: &Reply) -> Option<Expected> {
        if reply.code() != 221 || self.p.quit != St::NotYet || !self.is_done() {
            return None;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.p.quit = St::Sent;
        Some(Expected {
            seq,
            kind: CommandKind::Quit,
            rcpt_index: None,
            early: false,
            taken: true,
        })
    }
}
