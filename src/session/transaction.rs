//! The replies of the transaction: MAIL (250), RCPT (250 or 251), DATA (354), and the
//! end of data or BDAT LAST (250: the message is delivered).

use super::{Expected, Message, Session, St};
use crate::policy::{CommandKind, Outcome};

impl Session {
    /// MAIL: a refusal ends the transaction; what was not taken is withdrawn.
    pub(super) fn on_mail(&mut self, ok: bool, o: &Outcome) {
        if ok {
            self.p.mail = St::Ok;
        } else {
            self.p.mail = St::Failed;
            self.tx_failure = Some(o.verdict);
            self.outbox.clear();
            self.expected.retain(|e| e.taken);
        }
    }

    /// RCPT: one recipient accepted, or counted under the reply's verdict.
    pub(super) fn on_rcpt(&mut self, ok: bool, exp: &Expected, o: &Outcome) {
        if ok {
            self.p.rcpt_replied += 1;
            self.p.accepted += 1;
        } else {
            self.count_rcpt_as(exp, o.verdict);
        }
    }

    /// DATA: a 354 releases the body.
    pub(super) fn on_data(&mut self, ok: bool, o: &Outcome) {
        if ok {
            self.release(CommandKind::Body, None, 0, false);
            self.groups += 1;
        } else {
            self.p.message = Message::Refused;
            self.tx_failure = Some(o.verdict);
        }
    }

    /// The end of data or BDAT LAST: a 250 in its place delivers the message.
    pub(super) fn on_end_of_data(&mut self, ok: bool, o: &Outcome) {
        if ok {
            self.p.message = Message::Delivered;
        } else {
            self.p.message = Message::Refused;
            self.tx_failure = Some(o.verdict);
        }
    }
}
