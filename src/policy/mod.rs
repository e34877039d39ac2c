//! The rules of PIPE_CONNECT as pure functions: no I/O, no clock, no cache access.
//!
//! Three questions, one file each:
//! - [`flight`]: how much of an intended command sequence may be sent before waiting for
//!   a reply (the *early flight*), and why it stops where it stops;
//! - [`outcome`]: what a reply means, for the cache (nothing, invalidate) and for the
//!   MTA (continue, rejected, tempfail, reconnect without early pipelining, host error);
//! - [`ehlo`]: what the real EHLO reply says about the cached one (PIPECONNECT gone:
//!   invalidate and stop; other facts changed: rewrite; unchanged: nothing).
//!
//! [`command`] names the commands and checks that a sequence keeps SMTP's order.
//! `docs/RULES.md` lists every rule with its source and the test that checks it.
//! The session helper (`crate::session`) applies these functions to one connection.

pub mod command;
pub mod ehlo;
pub mod flight;
pub mod outcome;

pub use command::{validate_sequence, Command, CommandKind, SequenceProblem, SEQUENCE_MAX};
pub use ehlo::{check_ehlo, EhloCheck};
pub use flight::{
    auth_pipelinable, early_flight, early_flight_for_key, hold_down_gate, used_extensions,
    ConnPhase, Flight, Invalidation, PolicyError, Settings, Situation, StopReason,
    DEFAULT_MAX_FIRST_FLIGHT_BODY, ONE_ROUND_TRIP_MECHANISMS,
};
pub use outcome::{
    outcome, positive_code, refuses_early_flight, valid_reply_code, CacheAction, Outcome,
    ReplyContext, Verdict,
};
