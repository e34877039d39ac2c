//! The replies that set a connection up: the banner, EHLO (compared with the cache and
//! learned), STARTTLS and AUTH.

use super::ehlo_record::record_ehlo;
use super::event::{Event, EVENT_CACHE_INVALIDATED, EVENT_CACHE_STORED, EVENT_EARLY_STOPPED};
use super::{Expected, Session, St, StartTls};
use crate::caps::{Capabilities, ParseOptions};
use crate::policy::{check_ehlo, CommandKind, Outcome};
use crate::reply::Reply;

impl Session {
    /// The banner (220). Classic: the EHLO goes once it is in.
    pub(super) fn on_banner(&mut self, ok: bool) {
        if ok && self.p.ehlo == St::NotYet {
            self.release(CommandKind::Ehlo, None, 0, false);
            self.groups += 1;
        }
    }

    /// The EHLO reply (250): what it advertises is compared with the cache and learned.
    pub(super) fn on_ehlo(&mut self, ok: bool, reply: &Reply, ev: &mut Event) {
        if !ok {
            self.p.ehlo = St::Failed;
            return;
        }
        self.learn_ehlo(reply, ev);
        self.p.ehlo = St::Ok;
    }

    /// The STARTTLS reply (220): the caller starts the handshake; nothing may be read
    /// until [`Session::tls_started`].
    pub(super) fn on_starttls(&mut self, ok: bool) {
        self.p.starttls = if ok {
            StartTls::Handshake
        } else {
            StartTls::Refused
        };
    }

    /// The AUTH reply: 235, or a 334 challenge (the same AUTH answers again after the
    /// caller's SASL response).
    pub(super) fn on_auth(&mut self, exp: Expected, ok: bool, code: u16, o: &Outcome) {
        if o.auth_challenge {
            self.expected.push_front(exp);
        } else if ok && code / 100 == 2 {
            self.p.auth = St::Ok;
        } else {
            self.p.auth = St::Failed;
        }
    }

    fn learn_ehlo(&mut self, reply: &Reply, ev: &mut Event) {
        let opts = ParseOptions {
            legacy_keywords: self.settings.legacy_keywords,
        };
        let Ok(fresh) = Capabilities::from_reply(reply, opts) else {
            return;
        };
        let check = check_ehlo(self.cached.as_ref(), &fresh, self.used_bits);
        ev.changed_extensions = check.changed;
        // A reply that withdraws early pipelining after this phase's early flight is a
        // refusal: record_ehlo also starts the hold-down.
        let refused = self.early_in_phase && check.stop_early;
        let done = record_ehlo(
            &self.cache,
            &self.phase_key(),
            &check,
            fresh.clone(),
            refused,
        );
        if done.stored {
            self.stored = true;
            ev.flags |= EVENT_CACHE_STORED;
        }
        if done.removed {
            self.invalidated = true;
            ev.flags |= EVENT_CACHE_INVALIDATED;
        }
        if check.stop_early {
            self.early_withdrawn = true;
            ev.flags |= EVENT_EARLY_STOPPED;
        } else if self.early_in_phase {
            // The early flight was taken as it should be: a success counts toward
            // shortening a past hold-down.
            self.cache.note_early_success(&self.phase_key());
        }
        self.fresh = Some(fresh);
    }
}
