//! How much may go early: the early flight.
//!
//! [`early_flight`] takes what is cached for the server in this TLS state, where the
//! connection stands, the caller's settings and the intended command sequence, and says
//! how many of those commands may be written before any reply has been read, and why the
//! flight stops where it stops. It counts commands, not bytes.

use super::command::{validate_sequence, Command, SequenceProblem};
use crate::caps::{Capabilities, Extension};
use crate::key::TlsState;
use std::fmt;

/// The default for [`Settings::max_first_flight_body`]: 64 KiB.
pub const DEFAULT_MAX_FIRST_FLIGHT_BODY: u64 = 64 * 1024;

/// The SASL mechanisms that finish in one round trip with no security layer when the
/// initial response rides on the AUTH line; only these may have commands pipelined after
/// them (RFC 4954 §4).
pub const ONE_ROUND_TRIP_MECHANISMS: [&str; 2] = ["PLAIN", "EXTERNAL"];

/// Where a connection stands, TLS-wise, when the flight is planned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnPhase {
    /// A new cleartext connection (it may go on to STARTTLS).
    Cleartext,
    /// Right after a successful STARTTLS handshake.
    AfterStartTls,
    /// A connection that started with TLS (port 465, RFC 8314), after its handshake.
    TlsOnConnect,
}

impl ConnPhase {
    /// The TLS state whose cached information applies.
    pub fn tls(self) -> TlsState {
        match self {
            ConnPhase::Cleartext => TlsState::Cleartext,
            ConnPhase::AfterStartTls | ConnPhase::TlsOnConnect => TlsState::Encrypted,
        }
    }
}

/// The connection's situation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Situation {
    /// Cleartext, after STARTTLS, or TLS on connect.
    pub phase: ConnPhase,
    /// Whether this connection's cleartext phase used an early flight (only read after
    /// STARTTLS: the encrypted flight needs it, as in Exim).
    pub cleartext_early_used: bool,
    /// Whether the EHLO name was known before connecting (it must be).
    pub ehlo_name_known: bool,
    /// Whether an earlier EHLO reply on this connection no longer advertised PIPECONNECT:
    /// then nothing more goes early on this connection.
    pub early_withdrawn: bool,
}

impl Situation {
    /// A fresh cleartext connection whose EHLO name is known.
    pub fn cleartext() -> Situation {
        Situation {
            phase: ConnPhase::Cleartext,
            cleartext_early_used: false,
            ehlo_name_known: true,
            early_withdrawn: false,
        }
    }

    /// Right after STARTTLS; `cleartext_early_used` as for the field.
    pub fn after_starttls(cleartext_early_used: bool) -> Situation {
        Situation {
            phase: ConnPhase::AfterStartTls,
            cleartext_early_used,
            ..Situation::cleartext()
        }
    }

    /// A TLS-on-connect connection after its handshake.
    pub fn tls_on_connect() -> Situation {
        Situation {
            phase: ConnPhase::TlsOnConnect,
            ..Situation::cleartext()
        }
    }
}

/// Which replies invalidate a cache entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Invalidation {
    /// The PIPE_CONNECT proposal's rule: also any 4xx or 5xx reply in a transaction that
    /// used early pipelining. The default.
    #[default]
    Strict,
    /// draft-harris-early-pipe-01's rule (and Exim's): only failures of the banner, EHLO,
    /// STARTTLS and a required AUTH, and capability changes.
    Relaxed,
}

/// The caller's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Settings {
    /// Whether early pipelining may be used with this host (Exim's `hosts_pipe_connect`).
    /// Default false: the MTA opts in per host.
    pub early_allowed: bool,
    /// Whether the legacy keywords `PIPE_CONNECT` and `X_PIPE_CONNECT` count when EHLO
    /// replies are read (by the session; the policy trusts the capabilities it is given).
    pub legacy_keywords: bool,
    /// Which replies invalidate.
    pub invalidation: Invalidation,
    /// The largest body sent with `BDAT LAST` before any recipient has been accepted
    /// (in the early flight, and in any group sent before the RCPT replies). Default
    /// [`DEFAULT_MAX_FIRST_FLIGHT_BODY`].
    pub max_first_flight_body: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            early_allowed: false,
            legacy_keywords: false,
            invalidation: Invalidation::Strict,
            max_first_flight_body: DEFAULT_MAX_FIRST_FLIGHT_BODY,
        }
    }
}

impl Settings {
    /// The defaults, with early pipelining allowed.
    pub fn early() -> Settings {
        Settings {
            early_allowed: true,
            ..Settings::default()
        }
    }
}

/// Why an early flight stops where it stops. The numbers are the C values
/// (`PIPECONNECT_REASON_*`). The first group (up to [`StopReason::PipeconnectWithdrawn`])
/// means "no early flight at all" (0 commands); the rest end a flight after some commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum StopReason {
    /// Every command of the sequence may go early.
    EndOfSequence = 0,
    /// The settings do not allow early pipelining with this host.
    NotAllowed = 1,
    /// The EHLO name is not known before connecting.
    EhloNameUnknown = 2,
    /// After STARTTLS, but this connection's cleartext phase had no early flight.
    EncryptedWithoutCleartextEarly = 3,
    /// Nothing (live) is cached for this key in this TLS state.
    NoEntry = 4,
    /// The cached reply lacks PIPECONNECT.
    NoPipeconnect = 5,
    /// The cached reply lacks PIPELINING.
    NoPipelining = 6,
    /// An EHLO reply earlier on this connection dropped PIPECONNECT.
    PipeconnectWithdrawn = 7,
    /// STARTTLS is the last command of the flight (it is included).
    StartTlsEndsFlight = 8,
    /// STARTTLS is intended but the cached reply does not offer it (stops before it).
    StartTlsNotOffered = 9,
    /// AUTH is the last command of the flight (included): no initial response, or a
    /// mechanism that needs more than one round trip.
    AuthEndsFlight = 10,
    /// The cached reply does not offer the AUTH mechanism (stops before AUTH).
    AuthNotOffered = 11,
    /// DATA is the last command of the flight (included; the body waits for 354).
    DataEndsFlight = 12,
    /// BDAT without CHUNKING cached (stops before BDAT).
    NoChunking = 13,
    /// The cached RCPTMAX is reached (stops before the next RCPT).
    RcptmaxReached = 14,
    /// The cached MAILMAX is reached (stops before the next MAIL).
    MailmaxReached = 15,
    /// The message is larger than the cached non-zero SIZE limit (stops before MAIL).
    SizeExceeded = 16,
    /// The body is larger than the settings allow in one flight (stops before BDAT LAST;
    /// send the body after the replies, with DATA or BDAT).
    BodyTooLargeForOneFlight = 17,
    /// The key's server refused an early flight not long ago and is held down: classic
    /// until the hold-down ends (docs/RULES.md, "Hold-down"). Set by the session, never
    /// by [`early_flight`], which knows nothing of the cache.
    HeldDown = 18,
    /// The message needs an extension the cached reply does not offer (SMTPUTF8 for an
    /// internationalised address): classic, so the MTA decides on the live EHLO reply.
    /// Set by the tracker, never by [`early_flight`], which knows nothing of messages.
    ExtensionMissing = 19,
}

impl StopReason {
    /// Every reason, in numeric order.
    pub const ALL: [StopReason; 20] = [
        StopReason::EndOfSequence,
        StopReason::NotAllowed,
        StopReason::EhloNameUnknown,
        StopReason::EncryptedWithoutCleartextEarly,
        StopReason::NoEntry,
        StopReason::NoPipeconnect,
        StopReason::NoPipelining,
        StopReason::PipeconnectWithdrawn,
        StopReason::StartTlsEndsFlight,
        StopReason::StartTlsNotOffered,
        StopReason::AuthEndsFlight,
        StopReason::AuthNotOffered,
        StopReason::DataEndsFlight,
        StopReason::NoChunking,
        StopReason::RcptmaxReached,
        StopReason::MailmaxReached,
        StopReason::SizeExceeded,
        StopReason::BodyTooLargeForOneFlight,
        StopReason::HeldDown,
        StopReason::ExtensionMissing,
    ];

    /// The reason with this C value.
    pub fn from_u32(v: u32) -> Option<StopReason> {
        Self::ALL.get(usize::try_from(v).ok()?).copied()
    }

    /// The upper-case name a C caller logs (`NO_ENTRY`, `STARTTLS_ENDS_FLIGHT`, ...).
    pub fn name(self) -> &'static str {
        self.name_nul().trim_end_matches('\0')
    }

    /// [`StopReason::name`] with a NUL, for C.
    pub fn name_nul(self) -> &'static str {
        match self {
            StopReason::EndOfSequence => "END_OF_SEQUENCE\0",
            StopReason::NotAllowed => "NOT_ALLOWED\0",
            StopReason::EhloNameUnknown => "EHLO_NAME_UNKNOWN\0",
            StopReason::EncryptedWithoutCleartextEarly => "ENCRYPTED_WITHOUT_CLEARTEXT_EARLY\0",
            StopReason::NoEntry => "NO_ENTRY\0",
            StopReason::NoPipeconnect => "NO_PIPECONNECT\0",
            StopReason::NoPipelining => "NO_PIPELINING\0",
            StopReason::PipeconnectWithdrawn => "PIPECONNECT_WITHDRAWN\0",
            StopReason::StartTlsEndsFlight => "STARTTLS_ENDS_FLIGHT\0",
            StopReason::StartTlsNotOffered => "STARTTLS_NOT_OFFERED\0",
            StopReason::AuthEndsFlight => "AUTH_ENDS_FLIGHT\0",
            StopReason::AuthNotOffered => "AUTH_NOT_OFFERED\0",
            StopReason::DataEndsFlight => "DATA_ENDS_FLIGHT\0",
            StopReason::NoChunking => "NO_CHUNKING\0",
            StopReason::RcptmaxReached => "RCPTMAX_REACHED\0",
            StopReason::MailmaxReached => "MAILMAX_REACHED\0",
            StopReason::SizeExceeded => "SIZE_EXCEEDED\0",
            StopReason::BodyTooLargeForOneFlight => "BODY_TOO_LARGE_FOR_ONE_FLIGHT\0",
            StopReason::HeldDown => "HELD_DOWN\0",
            StopReason::ExtensionMissing => "EXTENSION_MISSING\0",
        }
    }

    /// Whether this reason means "no early flight at all".
    pub fn is_classic(self) -> bool {
        ((self as u32) >= 1 && (self as u32) <= StopReason::PipeconnectWithdrawn as u32)
            || self == StopReason::HeldDown
            || self == StopReason::ExtensionMissing
    }
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The policy's answer: the first `allowed` commands may be written before reading any
/// reply; `reason` says why the flight stops there.
///
/// `allowed == 0` means no early flight: do what classic SMTP does (wait for the banner;
/// after STARTTLS, send EHLO and wait for its reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flight {
    /// How many of the sequence's commands may go early.
    pub allowed: usize,
    /// Why the flight stops there.
    pub reason: StopReason,
}

impl Flight {
    fn classic(reason: StopReason) -> Flight {
        Flight { allowed: 0, reason }
    }
}

/// Why the policy could not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyError {
    /// The sequence is not one SMTP allows: the index of the first offending command
    /// and what is wrong.
    BadSequence(usize, SequenceProblem),
    /// The cached information is for another TLS state than the connection is in
    /// (cleartext information never licenses early commands on an encrypted connection,
    /// nor the reverse).
    TlsStateMismatch,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyError::BadSequence(i, p) => write!(f, "command {i}: {}", p.message()),
            PolicyError::TlsStateMismatch => {
                f.write_str("the cached information is for another TLS state")
            }
        }
    }
}

impl std::error::Error for PolicyError {}

/// Whether an AUTH with this mechanism and initial-response flag may have commands
/// pipelined after it: only with an initial response, for PLAIN or EXTERNAL.
pub fn auth_pipelinable(mechanism: &str, initial_response: bool) -> bool {
    initial_response
        && ONE_ROUND_TRIP_MECHANISMS
            .iter()
            .any(|m| m.eq_ignore_ascii_case(mechanism))
}

/// A LIMITS value that limits: RFC 9422 values are positive, so 0 is ignored.
pub(crate) fn positive(v: Option<u32>) -> Option<u32> {
    v.filter(|&n| n > 0)
}

/// How many of `cmds` may be sent before waiting for any reply. See the module
/// documentation and `docs/RULES.md` for the rules, in the order they are checked:
///
/// 1. the sequence must be valid ([`PolicyError::BadSequence`] otherwise);
/// 2. no early flight when the settings forbid it, the EHLO name is unknown, PIPECONNECT
///    was withdrawn earlier on this connection, after STARTTLS when the cleartext phase
///    had no early flight (TLS on connect has no cleartext phase and needs none), or
///    when the cached information is missing or lacks PIPECONNECT or PIPELINING;
/// 3. walking the commands: STARTTLS ends the flight (included, needs cached STARTTLS);
///    AUTH needs the mechanism cached and ends the flight unless it carries an initial
///    response for PLAIN or EXTERNAL; MAIL stops at the cached MAILMAX or when the
///    message is larger than a non-zero cached SIZE limit; RCPT stops at the cached
///    RCPTMAX; DATA ends the flight (included); BDAT LAST needs CHUNKING and a body no
///    larger than [`Settings::max_first_flight_body`].
pub fn early_flight(
    cached: Option<&Capabilities>,
    situation: &Situation,
    settings: &Settings,
    cmds: &[Command],
) -> Result<Flight, PolicyError> {
    validate_sequence(cmds, situation.phase != ConnPhase::Cleartext)
        .map_err(|(i, p)| PolicyError::BadSequence(i, p))?;
    if !settings.early_allowed {
        return Ok(Flight::classic(StopReason::NotAllowed));
    }
    if !situation.ehlo_name_known {
        return Ok(Flight::classic(StopReason::EhloNameUnknown));
    }
    if situation.early_withdrawn {
        return Ok(Flight::classic(StopReason::PipeconnectWithdrawn));
    }
    if situation.phase == ConnPhase::AfterStartTls && !situation.cleartext_early_used {
        return Ok(Flight::classic(StopReason::EncryptedWithoutCleartextEarly));
    }
    let Some(caps) = cached else {
        return Ok(Flight::classic(StopReason::NoEntry));
    };
    if !caps.has(Extension::PipeConnect) {
        return Ok(Flight::classic(StopReason::NoPipeconnect));
    }
    if !caps.has(Extension::Pipelining) {
        return Ok(Flight::classic(StopReason::NoPipelining));
    }

    let limits = caps.limits();
    let rcpt_max = positive(limits.rcpt_max).map(|v| v as usize);
    let mail_max = positive(limits.mail_max).map(|v| v as usize);
    let size_limit = caps.size_limit().filter(|&l| l > 0);
    let mut mails = 0usize;
    let mut rcpts = 0usize;
    let stop = |allowed: usize, reason: StopReason| Ok(Flight { allowed, reason });

    for (i, cmd) in cmds.iter().enumerate() {
        match cmd {
            Command::Ehlo => {}
            Command::StartTls => {
                if !caps.has(Extension::StartTls) {
                    return stop(i, StopReason::StartTlsNotOffered);
                }
                return stop(i + 1, StopReason::StartTlsEndsFlight);
            }
            Command::Auth {
                mechanism,
                initial_response,
            } => {
                if !caps.has_auth(mechanism) {
                    return stop(i, StopReason::AuthNotOffered);
                }
                if !auth_pipelinable(mechanism, *initial_response) {
                    return stop(i + 1, StopReason::AuthEndsFlight);
                }
            }
            Command::Mail { size } => {
                if mail_max.is_some_and(|m| mails >= m) {
                    return stop(i, StopReason::MailmaxReached);
                }
                let message_size = size.or_else(|| transaction_body_size(&cmds[i + 1..]));
                if let (Some(limit), Some(s)) = (size_limit, message_size) {
                    if s > limit {
                        return stop(i, StopReason::SizeExceeded);
                    }
                }
                mails += 1;
                rcpts = 0;
            }
            Command::Rcpt => {
                if rcpt_max.is_some_and(|m| rcpts >= m) {
                    return stop(i, StopReason::RcptmaxReached);
                }
                rcpts += 1;
            }
            Command::Data => return stop(i + 1, StopReason::DataEndsFlight),
            Command::BdatLast { size } => {
                if !caps.has(Extension::Chunking) {
                    return stop(i, StopReason::NoChunking);
                }
                if *size > settings.max_first_flight_body {
                    return stop(i, StopReason::BodyTooLargeForOneFlight);
                }
            }
        }
    }
    stop(cmds.len(), StopReason::EndOfSequence)
}

/// As [`early_flight`], for information cached under a key in `key_tls` state: refuses
/// ([`PolicyError::TlsStateMismatch`]) information from another TLS state than the
/// connection's, so cleartext information never licenses early commands after STARTTLS
/// or on port 465, and encrypted information never licenses them in cleartext.
pub fn early_flight_for_key(
    cached: Option<&Capabilities>,
    key_tls: TlsState,
    situation: &Situation,
    settings: &Settings,
    cmds: &[Command],
) -> Result<Flight, PolicyError> {
    if key_tls != situation.phase.tls() {
        return Err(PolicyError::TlsStateMismatch);
    }
    early_flight(cached, situation, settings, cmds)
}

/// The body size of the BDAT LAST that ends the transaction starting at `rest`, if any.
fn transaction_body_size(rest: &[Command]) -> Option<u64> {
    for c in rest {
        match c {
            Command::BdatLast { size } => return Some(*size),
            Command::Data | Command::Mail { .. } => return None,
            _ => {}
        }
    }
    None
}

/// The extensions an early flight made of `flight` (the commands that went early) relied
/// on, as [`Extension`] bits: PIPECONNECT and PIPELINING always; STARTTLS, AUTH,
/// CHUNKING when those commands went; SIZE and LIMITS when a MAIL or RCPT went.
pub fn used_extensions(flight: &[Command]) -> u32 {
    if flight.is_empty() {
        return 0;
    }
    let mut bits = Extension::PipeConnect.bit() | Extension::Pipelining.bit();
    for c in flight {
        bits |= match c {
            Command::Ehlo | Command::Data => 0,
            Command::StartTls => Extension::StartTls.bit(),
            Command::Auth { .. } => Extension::Auth.bit(),
            Command::Mail { .. } => Extension::Size.bit() | Extension::Limits.bit(),
            Command::Rcpt => Extension::Limits.bit(),
            Command::BdatLast { .. } => Extension::Chunking.bit(),
        };
    }
    bits
}

/// The hold-down rule (docs/RULES.md §3.10) over a planned flight: when the flight would
/// be early and `held` says the server is held down, nothing goes early and the reason is
/// [`StopReason::HeldDown`]. After STARTTLS the EHLO goes at once anyway, so there early
/// means more than the EHLO. `held` is asked only when the flight would be early; the
/// caller counts a skip when the reason comes back `HeldDown`.
pub fn hold_down_gate(flight: Flight, phase: ConnPhase, held: impl FnOnce() -> bool) -> Flight {
    let least = if phase == ConnPhase::AfterStartTls {
        2
    } else {
        1
    };
    if flight.allowed >= least && held() {
        return Flight {
            allowed: 0,
            reason: StopReason::HeldDown,
        };
    }
    flight
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::caps::ParseOptions;

    fn caps(lines: &[&str]) -> Capabilities {
        let mut r = String::from("250-mx.example\r\n");
        for (i, l) in lines.iter().enumerate() {
            let sep = if i + 1 == lines.len() { ' ' } else { '-' };
            r.push_str(&format!("250{sep}{l}\r\n"));
        }
        Capabilities::parse_ehlo(r.as_bytes(), ParseOptions::default()).unwrap()
    }

    #[test]
    fn reason_names_and_values() {
        for (i, r) in StopReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
            assert_eq!(StopReason::from_u32(i as u32), Some(*r));
            assert!(!r.name().is_empty() && !r.name().contains('\0'));
            assert!(r.name_nul().ends_with('\0'));
        }
        assert_eq!(StopReason::from_u32(20), None);
        assert!(StopReason::NoEntry.is_classic());
        assert!(StopReason::HeldDown.is_classic());
        assert!(StopReason::ExtensionMissing.is_classic());
        assert!(!StopReason::EndOfSequence.is_classic());
        assert!(!StopReason::DataEndsFlight.is_classic());
    }

    #[test]
    fn size_from_the_bdat_when_mail_does_not_say() {
        let c = caps(&["PIPELINING", "PIPECONNECT", "CHUNKING", "SIZE 1000"]);
        let seq = [
            Command::Ehlo,
            Command::Mail { size: None },
            Command::Rcpt,
            Command::BdatLast { size: 1001 },
        ];
        let f = early_flight(Some(&c), &Situation::cleartext(), &Settings::early(), &seq);
        assert_eq!(
            f,
            Ok(Flight {
                allowed: 1,
                reason: StopReason::SizeExceeded
            })
        );
    }

    #[test]
    fn zero_limits_do_not_limit() {
        let c = caps(&[
            "PIPELINING",
            "PIPECONNECT",
            "SIZE 0",
            "LIMITS RCPTMAX=0 MAILMAX=0",
        ]);
        let seq = [
            Command::Ehlo,
            Command::Mail {
                size: Some(u64::MAX),
            },
            Command::Rcpt,
            Command::Data,
        ];
        let f = early_flight(Some(&c), &Situation::cleartext(), &Settings::early(), &seq);
        assert_eq!(f.unwrap().allowed, 4);
    }

    #[test]
    fn used_extensions_follow_the_commands() {
        assert_eq!(used_extensions(&[]), 0);
        let u = used_extensions(&[Command::Ehlo, Command::StartTls]);
        assert_eq!(
            u,
            Extension::PipeConnect.bit() | Extension::Pipelining.bit() | Extension::StartTls.bit()
        );
        let u = used_extensions(&[Command::Ehlo, Command::BdatLast { size: 1 }]);
        assert!(u & Extension::Chunking.bit() != 0);
    }
}
