//! The early-flight rules of docs/RULES.md, one test per rule, over plain data.
//!
//! Transaction rules run in every TLS situation (cleartext, after STARTTLS with a
//! cleartext early flight, TLS on connect); rules about keys run with IPv4 and IPv6 keys.

use pipeconnect::policy::*;
use pipeconnect::{Cache, CacheConfig, Capabilities, ParseOptions, PeerKey, TlsState};

fn caps_with(lines: &[&str], legacy: bool) -> Capabilities {
    let mut r = String::from("250-mx.example.org Hello\r\n");
    for (i, l) in lines.iter().enumerate() {
        let sep = if i + 1 == lines.len() { ' ' } else { '-' };
        r.push_str(&format!("250{sep}{l}\r\n"));
    }
    Capabilities::parse_ehlo(
        r.as_bytes(),
        ParseOptions {
            legacy_keywords: legacy,
        },
    )
    .unwrap()
}

fn caps(lines: &[&str]) -> Capabilities {
    caps_with(lines, false)
}

/// What Exim 4.96 offers, plus STARTTLS in cleartext.
fn full() -> Capabilities {
    caps(&[
        "SIZE 52428800",
        "8BITMIME",
        "PIPELINING",
        "PIPECONNECT",
        "AUTH PLAIN EXTERNAL LOGIN",
        "CHUNKING",
        "STARTTLS",
    ])
}

/// The situations a transaction's early flight can be in.
fn situations() -> [(&'static str, Situation); 3] {
    [
        ("cleartext", Situation::cleartext()),
        ("after STARTTLS", Situation::after_starttls(true)),
        ("TLS on connect", Situation::tls_on_connect()),
    ]
}

fn keys(port: u16, tls: TlsState) -> [PeerKey; 2] {
    [
        PeerKey::parse("192.0.2.25", port, tls).unwrap(),
        PeerKey::parse("2001:db8::25", port, tls).unwrap(),
    ]
}

fn flight(c: Option<&Capabilities>, sit: &Situation, cmds: &[Command]) -> Flight {
    early_flight(c, sit, &Settings::early(), cmds).unwrap()
}

fn f(allowed: usize, reason: StopReason) -> Flight {
    Flight { allowed, reason }
}

fn tx(rcpts: usize, body: Command) -> Vec<Command> {
    let mut v = vec![Command::Ehlo, Command::Mail { size: None }];
    v.extend(std::iter::repeat_n(Command::Rcpt, rcpts));
    v.push(body);
    v
}

#[test]
fn rule_keyword_matched_whole_and_any_case() {
    let lower = caps(&["pipelining", "pipeconnect"]);
    let longer = caps(&["PIPELINING", "PIPECONNECTX"]);
    let seq = tx(1, Command::Data);
    for (name, sit) in situations() {
        assert_eq!(
            flight(Some(&lower), &sit, &seq),
            f(4, StopReason::DataEndsFlight),
            "{name}"
        );
        assert_eq!(
            flight(Some(&longer), &sit, &seq),
            f(0, StopReason::NoPipeconnect),
            "{name}"
        );
    }
}

#[test]
fn rule_legacy_keyword_only_when_asked() {
    for kw in ["PIPE_CONNECT", "X_PIPE_CONNECT"] {
        let plain = caps_with(&["PIPELINING", kw], false);
        let legacy = caps_with(&["PIPELINING", kw], true);
        let seq = [Command::Ehlo];
        for (name, sit) in situations() {
            assert_eq!(
                flight(Some(&plain), &sit, &seq).reason,
                StopReason::NoPipeconnect,
                "{name} {kw}"
            );
            assert_eq!(
                flight(Some(&legacy), &sit, &seq),
                f(1, StopReason::EndOfSequence),
                "{name} {kw}"
            );
        }
    }
}

#[test]
fn rule_pipeconnect_needs_pipelining() {
    let c = caps(&["PIPECONNECT", "CHUNKING"]);
    for (name, sit) in situations() {
        assert_eq!(
            flight(Some(&c), &sit, &tx(1, Command::Data)),
            f(0, StopReason::NoPipelining),
            "{name}"
        );
    }
}

#[test]
fn rule_no_entry_is_classic() {
    for (name, sit) in situations() {
        assert_eq!(
            flight(None, &sit, &tx(1, Command::Data)),
            f(0, StopReason::NoEntry),
            "{name}"
        );
    }
}

#[test]
fn rule_not_allowed_no_early() {
    for (name, sit) in situations() {
        let r = early_flight(
            Some(&full()),
            &sit,
            &Settings::default(),
            &tx(1, Command::Data),
        );
        assert_eq!(r, Ok(f(0, StopReason::NotAllowed)), "{name}");
    }
}

#[test]
fn rule_ehlo_name_unknown_no_early() {
    for (name, mut sit) in situations() {
        sit.ehlo_name_known = false;
        assert_eq!(
            flight(Some(&full()), &sit, &tx(1, Command::Data)),
            f(0, StopReason::EhloNameUnknown),
            "{name}"
        );
    }
}

#[test]
fn rule_pipeconnect_withdrawn_no_more_early_on_the_connection() {
    for (name, mut sit) in situations() {
        sit.early_withdrawn = true;
        assert_eq!(
            flight(Some(&full()), &sit, &tx(1, Command::Data)),
            f(0, StopReason::PipeconnectWithdrawn),
            "{name}"
        );
    }
}

/// Cleartext information must not license early commands after STARTTLS: looked up in
/// the encrypted state there is nothing, and handing cleartext information over anyway
/// is refused.
#[test]
fn rule_cleartext_info_not_used_after_starttls() {
    let cache = Cache::in_memory(CacheConfig::default());
    for key in keys(25, TlsState::Cleartext) {
        cache.learn(&key, full());
        let sit = Situation::after_starttls(true);
        let enc = key.in_state(TlsState::Encrypted);
        let found = cache.lookup(&enc).map(|e| e.caps);
        assert_eq!(found, None, "{key}");
        let r = early_flight_for_key(
            found.as_ref(),
            enc.tls(),
            &sit,
            &Settings::early(),
            &tx(1, Command::Data),
        );
        assert_eq!(r, Ok(f(0, StopReason::NoEntry)), "{key}");
        let clear = cache.lookup(&key).map(|e| e.caps);
        assert!(clear.is_some());
        let r = early_flight_for_key(
            clear.as_ref(),
            key.tls(),
            &sit,
            &Settings::early(),
            &tx(1, Command::Data),
        );
        assert_eq!(r, Err(PolicyError::TlsStateMismatch), "{key}");
    }
}

/// Port 465 has no cleartext phase: only encrypted information counts.
#[test]
fn rule_cleartext_info_not_used_on_port_465() {
    let cache = Cache::in_memory(CacheConfig::default());
    for key in keys(465, TlsState::Cleartext) {
        cache.learn(&key, full());
        let enc = key.in_state(TlsState::Encrypted);
        let sit = Situation::tls_on_connect();
        let found = cache.lookup(&enc).map(|e| e.caps);
        let r = early_flight_for_key(
            found.as_ref(),
            TlsState::Encrypted,
            &sit,
            &Settings::early(),
            &tx(1, Command::Data),
        );
        assert_eq!(r, Ok(f(0, StopReason::NoEntry)), "{key}");
        let r = early_flight_for_key(
            Some(&full()),
            TlsState::Cleartext,
            &sit,
            &Settings::early(),
            &tx(1, Command::Data),
        );
        assert_eq!(r, Err(PolicyError::TlsStateMismatch), "{key}");
    }
}

#[test]
fn rule_encrypted_info_not_used_in_cleartext() {
    for key in keys(25, TlsState::Encrypted) {
        let r = early_flight_for_key(
            Some(&full()),
            key.tls(),
            &Situation::cleartext(),
            &Settings::early(),
            &[Command::Ehlo],
        );
        assert_eq!(r, Err(PolicyError::TlsStateMismatch), "{key}");
    }
}

/// Exim uses the encrypted early flight only on connections whose cleartext phase was
/// early too.
#[test]
fn rule_encrypted_flight_after_starttls_needs_cleartext_early() {
    let seq = tx(2, Command::BdatLast { size: 10 });
    assert_eq!(
        flight(Some(&full()), &Situation::after_starttls(false), &seq),
        f(0, StopReason::EncryptedWithoutCleartextEarly)
    );
    assert_eq!(
        flight(Some(&full()), &Situation::after_starttls(true), &seq),
        f(5, StopReason::EndOfSequence)
    );
}

/// TLS on connect has no cleartext phase, so encrypted information alone suffices.
#[test]
fn rule_tls_on_connect_uses_encrypted_info_alone() {
    let sit = Situation::tls_on_connect();
    assert!(!sit.cleartext_early_used);
    assert_eq!(
        flight(Some(&full()), &sit, &tx(2, Command::BdatLast { size: 10 })),
        f(5, StopReason::EndOfSequence)
    );
}

#[test]
fn rule_starttls_ends_flight() {
    let seq = [
        Command::Ehlo,
        Command::StartTls,
        Command::Ehlo,
        Command::Mail { size: None },
        Command::Rcpt,
        Command::Data,
    ];
    assert_eq!(
        flight(Some(&full()), &Situation::cleartext(), &seq),
        f(2, StopReason::StartTlsEndsFlight)
    );
}

#[test]
fn rule_starttls_needs_cached_starttls() {
    let c = caps(&["PIPELINING", "PIPECONNECT"]);
    assert_eq!(
        flight(
            Some(&c),
            &Situation::cleartext(),
            &[Command::Ehlo, Command::StartTls]
        ),
        f(1, StopReason::StartTlsNotOffered)
    );
}

#[test]
fn rule_starttls_only_in_cleartext() {
    for (name, sit) in situations().into_iter().skip(1) {
        let r = early_flight(
            Some(&full()),
            &sit,
            &Settings::early(),
            &[Command::Ehlo, Command::StartTls],
        );
        assert_eq!(
            r,
            Err(PolicyError::BadSequence(
                1,
                SequenceProblem::StartTlsNotAllowed
            )),
            "{name}"
        );
    }
}

#[test]
fn rule_data_ends_flight() {
    let mut seq = tx(2, Command::Data);
    seq.extend([Command::Mail { size: None }, Command::Rcpt, Command::Data]);
    for (name, sit) in situations() {
        assert_eq!(
            flight(Some(&full()), &sit, &seq),
            f(5, StopReason::DataEndsFlight),
            "{name}"
        );
    }
}

#[test]
fn rule_bdat_only_with_chunking() {
    let c = caps(&["PIPELINING", "PIPECONNECT", "SIZE 1000000"]);
    for (name, sit) in situations() {
        assert_eq!(
            flight(Some(&c), &sit, &tx(2, Command::BdatLast { size: 100 })),
            f(4, StopReason::NoChunking),
            "{name}"
        );
    }
}

fn auth_tx(mech: &str, ir: bool, body: u64) -> Vec<Command> {
    vec![
        Command::Ehlo,
        Command::auth(mech, ir),
        Command::Mail { size: None },
        Command::Rcpt,
        Command::Rcpt,
        Command::BdatLast { size: body },
    ]
}

/// With CHUNKING cached: EHLO, AUTH PLAIN with its initial response, MAIL, 2 RCPT and
/// BDAT LAST with a 2 KiB body are one flight.
#[test]
fn rule_chunking_one_flight_2k_body() {
    for (name, sit) in situations() {
        assert_eq!(
            flight(Some(&full()), &sit, &auth_tx("PLAIN", true, 2048)),
            f(6, StopReason::EndOfSequence),
            "{name}"
        );
    }
}

/// A 1 MiB body does not go in the first flight: the flight keeps MAIL and RCPT and stops
/// before BDAT (DATA-style: the body goes once the replies are in).
#[test]
fn rule_1mib_body_ends_data_style() {
    for (name, sit) in situations() {
        assert_eq!(
            flight(Some(&full()), &sit, &auth_tx("PLAIN", true, 1 << 20)),
            f(5, StopReason::BodyTooLargeForOneFlight),
            "{name}"
        );
        let roomy = Settings {
            max_first_flight_body: 2 << 20,
            ..Settings::early()
        };
        assert_eq!(
            early_flight(
                Some(&full()),
                &sit,
                &roomy,
                &auth_tx("PLAIN", true, 1 << 20)
            ),
            Ok(f(6, StopReason::EndOfSequence)),
            "{name}"
        );
    }
    // The limit is inclusive.
    let exact = auth_tx("PLAIN", true, DEFAULT_MAX_FIRST_FLIGHT_BODY);
    assert_eq!(
        flight(Some(&full()), &Situation::cleartext(), &exact).allowed,
        6
    );
}

#[test]
fn rule_auth_plain_initial_response_continues() {
    for mech in ["PLAIN", "plain", "EXTERNAL"] {
        for (name, sit) in situations() {
            assert_eq!(
                flight(Some(&full()), &sit, &auth_tx(mech, true, 10)),
                f(6, StopReason::EndOfSequence),
                "{name} {mech}"
            );
        }
    }
}

#[test]
fn rule_auth_without_ir_ends_flight() {
    for (mech, ir) in [("PLAIN", false), ("LOGIN", true), ("LOGIN", false)] {
        for (name, sit) in situations() {
            assert_eq!(
                flight(Some(&full()), &sit, &auth_tx(mech, ir, 10)),
                f(2, StopReason::AuthEndsFlight),
                "{name} {mech} {ir}"
            );
        }
    }
}

#[test]
fn rule_auth_mechanism_must_be_cached() {
    for (name, sit) in situations() {
        assert_eq!(
            flight(Some(&full()), &sit, &auth_tx("CRAM-MD5", true, 10)),
            f(1, StopReason::AuthNotOffered),
            "{name}"
        );
    }
}

#[test]
fn rule_rcptmax_stops_flight() {
    let c = caps(&["PIPELINING", "PIPECONNECT", "CHUNKING", "LIMITS RCPTMAX=2"]);
    for (name, sit) in situations() {
        // EHLO, MAIL, RCPT, RCPT | RCPT ...
        assert_eq!(
            flight(Some(&c), &sit, &tx(5, Command::BdatLast { size: 10 })),
            f(4, StopReason::RcptmaxReached),
            "{name}"
        );
        assert_eq!(
            flight(Some(&c), &sit, &tx(2, Command::BdatLast { size: 10 })),
            f(5, StopReason::EndOfSequence),
            "{name}"
        );
    }
}

#[test]
fn rule_mailmax_stops_flight() {
    let c = caps(&["PIPELINING", "PIPECONNECT", "CHUNKING", "LIMITS MAILMAX=1"]);
    let mut seq = tx(1, Command::BdatLast { size: 10 });
    seq.extend([
        Command::Mail { size: None },
        Command::Rcpt,
        Command::BdatLast { size: 10 },
    ]);
    for (name, sit) in situations() {
        assert_eq!(
            flight(Some(&c), &sit, &seq),
            f(4, StopReason::MailmaxReached),
            "{name}"
        );
    }
}

#[test]
fn rule_size_limit_respected() {
    let c = caps(&["PIPELINING", "PIPECONNECT", "CHUNKING", "SIZE 1000"]);
    let unlimited = caps(&["PIPELINING", "PIPECONNECT", "CHUNKING", "SIZE 0"]);
    for (name, sit) in situations() {
        let declared = [
            Command::Ehlo,
            Command::Mail { size: Some(1001) },
            Command::Rcpt,
            Command::Data,
        ];
        assert_eq!(
            flight(Some(&c), &sit, &declared),
            f(1, StopReason::SizeExceeded),
            "{name}"
        );
        let fits = [
            Command::Ehlo,
            Command::Mail { size: Some(1000) },
            Command::Rcpt,
            Command::Data,
        ];
        assert_eq!(
            flight(Some(&c), &sit, &fits),
            f(4, StopReason::DataEndsFlight),
            "{name}"
        );
        assert_eq!(
            flight(Some(&unlimited), &sit, &declared),
            f(4, StopReason::DataEndsFlight),
            "{name}"
        );
        // Without a declared size, the BDAT's body size counts.
        assert_eq!(
            flight(Some(&c), &sit, &tx(1, Command::BdatLast { size: 5000 })),
            f(1, StopReason::SizeExceeded),
            "{name}"
        );
    }
}

#[test]
fn rule_flight_counts_commands_not_bytes() {
    let seq = tx(1000, Command::Data);
    for (name, sit) in situations() {
        assert_eq!(
            flight(Some(&full()), &sit, &seq),
            f(1003, StopReason::DataEndsFlight),
            "{name}"
        );
    }
}

#[test]
fn rule_commands_keep_the_traditional_order() {
    let bad: Vec<(Vec<Command>, usize, SequenceProblem)> = vec![
        (vec![], 0, SequenceProblem::Empty),
        (
            vec![Command::Mail { size: None }],
            0,
            SequenceProblem::EhloNotFirst,
        ),
        (
            vec![Command::Ehlo, Command::Rcpt],
            1,
            SequenceProblem::RcptWithoutMail,
        ),
        (
            vec![Command::Ehlo, Command::Mail { size: None }, Command::Data],
            2,
            SequenceProblem::BodyWithoutRcpt,
        ),
        (
            vec![
                Command::Ehlo,
                Command::Mail { size: None },
                Command::auth("PLAIN", true),
            ],
            2,
            SequenceProblem::AuthMisplaced,
        ),
        (
            vec![Command::Ehlo; SEQUENCE_MAX + 1],
            SEQUENCE_MAX,
            SequenceProblem::TooLong,
        ),
    ];
    for (seq, i, p) in bad {
        for (name, sit) in situations() {
            // Even when nothing may go early, a bad sequence is an error.
            for c in [None, Some(full())] {
                assert_eq!(
                    early_flight(c.as_ref(), &sit, &Settings::default(), &seq),
                    Err(PolicyError::BadSequence(i, p)),
                    "{name}"
                );
            }
        }
    }
}

#[test]
fn reason_names_are_what_c_callers_log() {
    assert_eq!(StopReason::NoEntry.name(), "NO_ENTRY");
    assert_eq!(
        StopReason::BodyTooLargeForOneFlight.name(),
        "BODY_TOO_LARGE_FOR_ONE_FLIGHT"
    );
    assert_eq!(
        StopReason::EncryptedWithoutCleartextEarly.to_string(),
        "ENCRYPTED_WITHOUT_CLEARTEXT_EARLY"
    );
}
