//! The reply rules of docs/RULES.md (what a reply means for the cache and the MTA), and
//! the EHLO comparison, one test per rule, strict and relaxed where they differ.

use pipeconnect::policy::*;
use pipeconnect::{Capabilities, Extension, ParseOptions};

const MODES: [Invalidation; 2] = [Invalidation::Strict, Invalidation::Relaxed];
const TX: [CommandKind; 5] = [
    CommandKind::Mail,
    CommandKind::Rcpt,
    CommandKind::Data,
    CommandKind::BdatLast,
    CommandKind::Body,
];

fn ctx(early: bool, mode: Invalidation) -> ReplyContext {
    ReplyContext {
        early_used: early,
        invalidation: mode,
        ..ReplyContext::default()
    }
}

fn caps(lines: &[&str]) -> Capabilities {
    let mut r = String::from("250-mx.example.org\r\n");
    for (i, l) in lines.iter().enumerate() {
        let sep = if i + 1 == lines.len() { ' ' } else { '-' };
        r.push_str(&format!("250{sep}{l}\r\n"));
    }
    Capabilities::parse_ehlo(r.as_bytes(), ParseOptions::default()).unwrap()
}

/// The banner must be exactly 220 (RFC 5321 §4.2, §4.3.2). Until issue 9 this rule
/// took any 2xx, as Exim's client does; a 250 or 299 banner is now out of step, since a
/// stream whose first reply is not 220 may be answering early commands ahead of the
/// banner.
#[test]
fn rule_banner_must_be_220() {
    for mode in MODES {
        for early in [false, true] {
            let o = outcome(CommandKind::Banner, 220, &ctx(early, mode));
            assert_eq!(o.verdict, Verdict::Continue);
            assert_eq!(o.cache, CacheAction::Nothing);
            assert!(!o.connection_done);
            for code in [250, 299, 221] {
                let o = outcome(CommandKind::Banner, code, &ctx(early, mode));
                assert!(o.out_of_step && o.connection_done, "{code}");
                assert!(!o.message_accepted);
                assert_eq!(o.cache, CacheAction::Invalidate, "{code} {early}");
                let want = if early {
                    Verdict::Reconnect
                } else {
                    Verdict::Tempfail
                };
                assert_eq!(o.verdict, want, "{code} {early}");
            }
            for code in [421, 554, 354] {
                let o = outcome(CommandKind::Banner, code, &ctx(early, mode));
                assert_ne!(o.verdict, Verdict::Continue, "{code}");
                assert_eq!(o.cache, CacheAction::Invalidate, "{code} {early}");
                assert!(o.connection_done);
            }
        }
    }
}

#[test]
fn rule_554_banner_after_early_flight_reconnects_and_invalidates() {
    for mode in MODES {
        for code in [554, 421, 550] {
            let o = outcome(CommandKind::Banner, code, &ctx(true, mode));
            assert_eq!(o.verdict, Verdict::Reconnect, "{mode:?} {code}");
            assert_eq!(o.cache, CacheAction::Invalidate);
            assert!(o.connection_done);
        }
    }
}

#[test]
fn rule_bad_banner_without_early_flight_is_a_host_matter() {
    for mode in MODES {
        let o = outcome(CommandKind::Banner, 554, &ctx(false, mode));
        assert_eq!(o.verdict, Verdict::HostError);
        let o = outcome(CommandKind::Banner, 421, &ctx(false, mode));
        assert_eq!(o.verdict, Verdict::Tempfail);
    }
}

#[test]
fn rule_failed_ehlo_after_early_flight_reconnects_and_invalidates() {
    for mode in MODES {
        for code in [500, 550, 451] {
            let o = outcome(CommandKind::Ehlo, code, &ctx(true, mode));
            assert_eq!(o.verdict, Verdict::Reconnect);
            assert_eq!(o.cache, CacheAction::Invalidate);
            assert!(o.connection_done);
            let o = outcome(CommandKind::Ehlo, code, &ctx(false, mode));
            assert_eq!(o.cache, CacheAction::Invalidate);
            assert_ne!(o.verdict, Verdict::Reconnect);
        }
        // EHLO wants exactly 250.
        let o = outcome(CommandKind::Ehlo, 250, &ctx(true, mode));
        assert_eq!(
            (o.verdict, o.cache),
            (Verdict::Continue, CacheAction::Nothing)
        );
        assert!(outcome(CommandKind::Ehlo, 251, &ctx(true, mode)).out_of_step);
    }
}

#[test]
fn rule_early_starttls_error_invalidates_and_reconnects() {
    for mode in MODES {
        for code in [454, 554, 500] {
            let o = outcome(CommandKind::StartTls, code, &ctx(true, mode));
            assert_eq!(o.verdict, Verdict::Reconnect);
            assert_eq!(o.cache, CacheAction::Invalidate);
            assert!(o.connection_done);
        }
        assert_eq!(
            outcome(CommandKind::StartTls, 220, &ctx(true, mode)).verdict,
            Verdict::Continue
        );
    }
}

#[test]
fn rule_rejected_rcpt_invalidates_strict_not_relaxed() {
    for kind in TX {
        for code in [550, 552, 554] {
            let strict = outcome(kind, code, &ctx(true, Invalidation::Strict));
            let relaxed = outcome(kind, code, &ctx(true, Invalidation::Relaxed));
            assert_eq!(strict.cache, CacheAction::Invalidate, "{kind} {code}");
            assert_eq!(relaxed.cache, CacheAction::Nothing, "{kind} {code}");
            assert_eq!(strict.verdict, Verdict::Rejected);
            assert_eq!(relaxed.verdict, Verdict::Rejected);
            assert!(!strict.connection_done);
        }
    }
}

/// Greylisting: a 4xx in an early transaction wipes the entry only in strict mode.
#[test]
fn rule_tempfail_in_early_transaction_invalidates_strict_not_relaxed() {
    for kind in TX {
        let strict = outcome(kind, 451, &ctx(true, Invalidation::Strict));
        let relaxed = outcome(kind, 451, &ctx(true, Invalidation::Relaxed));
        assert_eq!(strict.cache, CacheAction::Invalidate, "{kind}");
        assert_eq!(relaxed.cache, CacheAction::Nothing, "{kind}");
        assert_eq!(strict.verdict, Verdict::Tempfail);
    }
}

#[test]
fn rule_classic_transaction_errors_never_invalidate() {
    for mode in MODES {
        for kind in TX {
            for code in [451, 550] {
                assert_eq!(
                    outcome(kind, code, &ctx(false, mode)).cache,
                    CacheAction::Nothing
                );
            }
        }
    }
}

#[test]
fn rule_required_auth_failure_invalidates_both_modes() {
    for mode in MODES {
        for early in [false, true] {
            let c = ReplyContext {
                auth_required: true,
                ..ctx(early, mode)
            };
            let o = outcome(CommandKind::Auth, 535, &c);
            assert_eq!(o.cache, CacheAction::Invalidate);
            assert_eq!(o.verdict, Verdict::HostError);
            assert!(o.connection_done);
            assert_eq!(
                outcome(CommandKind::Auth, 454, &c).verdict,
                Verdict::Tempfail
            );
        }
    }
}

#[test]
fn rule_optional_auth_failure_invalidates_strict_only_and_continues() {
    let o = outcome(CommandKind::Auth, 535, &ctx(true, Invalidation::Strict));
    assert_eq!(
        (o.verdict, o.cache),
        (Verdict::Continue, CacheAction::Invalidate)
    );
    let o = outcome(CommandKind::Auth, 535, &ctx(true, Invalidation::Relaxed));
    assert_eq!(
        (o.verdict, o.cache),
        (Verdict::Continue, CacheAction::Nothing)
    );
    assert!(!o.connection_done);
}

/// A 334 is a challenge only when nothing was pipelined after the AUTH (RFC 4954 §4);
/// otherwise the pipelined commands were read as SASL data: out of step.
#[test]
fn rule_auth_challenge_only_when_nothing_follows() {
    let o = outcome(CommandKind::Auth, 334, &ctx(false, Invalidation::Strict));
    assert!(o.auth_challenge);
    assert_eq!(o.verdict, Verdict::Continue);
    for early in [false, true] {
        let c = ReplyContext {
            commands_after_auth: true,
            ..ctx(early, Invalidation::Relaxed)
        };
        let o = outcome(CommandKind::Auth, 334, &c);
        assert!(o.out_of_step && o.connection_done && !o.auth_challenge);
        let want = if early {
            Verdict::Reconnect
        } else {
            Verdict::Tempfail
        };
        assert_eq!(o.verdict, want);
    }
}

#[test]
fn rule_out_of_step_reply_ends_the_connection() {
    for (kind, code) in [
        (CommandKind::Mail, 354),
        (CommandKind::Data, 250),
        (CommandKind::Rcpt, 150),
        (CommandKind::Body, 354),
        (CommandKind::StartTls, 250),
    ] {
        for mode in MODES {
            let o = outcome(kind, code, &ctx(true, mode));
            assert!(o.out_of_step && o.connection_done, "{kind} {code}");
            // A reply to the end of data means the body went out: the server may hold
            // the message, so no reconnect-and-resend (issue 9).
            let want = if kind == CommandKind::Body {
                Verdict::Tempfail
            } else {
                Verdict::Reconnect
            };
            assert_eq!(o.verdict, want);
            assert_eq!(o.cache, CacheAction::Invalidate);
            let o = outcome(kind, code, &ctx(false, mode));
            assert_eq!(o.verdict, Verdict::Tempfail);
        }
    }
}

#[test]
fn rule_421_closes_the_connection() {
    for kind in TX {
        let o = outcome(kind, 421, &ctx(false, Invalidation::Relaxed));
        assert!(o.connection_done, "{kind}");
        assert_eq!(o.verdict, Verdict::Tempfail);
    }
}

#[test]
fn rule_data_wants_354_and_the_body_2xx() {
    let c = ctx(true, Invalidation::Strict);
    assert_eq!(
        outcome(CommandKind::Data, 354, &c).verdict,
        Verdict::Continue
    );
    assert!(!outcome(CommandKind::Data, 354, &c).message_accepted);
    for k in [CommandKind::Body, CommandKind::BdatLast] {
        let o = outcome(k, 250, &c);
        assert!(o.message_accepted && o.verdict == Verdict::Continue);
    }
}

#[test]
fn rule_pipeconnect_gone_invalidates_and_stops_early() {
    let cached = caps(&["PIPELINING", "PIPECONNECT", "CHUNKING"]);
    let fresh = caps(&["PIPELINING", "CHUNKING"]);
    let used = used_extensions(&[Command::Ehlo, Command::Mail { size: None }]);
    let c = check_ehlo(Some(&cached), &fresh, used);
    assert_eq!(c.cache, CacheAction::Invalidate);
    assert!(c.stop_early);
    assert_eq!(c.changed, Extension::PipeConnect.bit());
    // PIPELINING gone is as bad: early pipelining needs both.
    let c = check_ehlo(Some(&cached), &caps(&["PIPECONNECT", "CHUNKING"]), used);
    assert_eq!(c.cache, CacheAction::Invalidate);
    assert!(c.stop_early);
}

#[test]
fn rule_changed_extension_rewrites_entry() {
    let cached = caps(&["PIPELINING", "PIPECONNECT", "CHUNKING", "SIZE 1000"]);
    let fresh = caps(&["PIPELINING", "PIPECONNECT", "CHUNKING", "SIZE 2000"]);
    let used = used_extensions(&[Command::Ehlo, Command::Mail { size: Some(10) }]);
    let c = check_ehlo(Some(&cached), &fresh, used);
    assert_eq!(c.cache, CacheAction::Store);
    assert!(!c.stop_early);
    assert_eq!(c.changed, Extension::Size.bit());
    assert_eq!(c.used_changed, Extension::Size.bit());
    // An extension the flight did not use changed: still rewritten, so the next flight
    // that uses it is not misled.
    let fresh = caps(&["PIPELINING", "PIPECONNECT", "SIZE 1000"]);
    let c = check_ehlo(Some(&cached), &fresh, used);
    assert_eq!(c.cache, CacheAction::Store);
    assert_eq!(c.used_changed, 0);
}

#[test]
fn rule_unchanged_ehlo_leaves_entry() {
    let cached = caps(&["PIPELINING", "PIPECONNECT", "CHUNKING"]);
    let c = check_ehlo(Some(&cached), &cached.clone(), 0b11);
    assert_eq!(c.cache, CacheAction::Nothing);
    assert!(!c.stop_early);
}

#[test]
fn rule_only_replies_worth_caching_are_learned() {
    let worth = caps(&["PIPELINING", "PIPECONNECT"]);
    let not = caps(&["PIPELINING", "CHUNKING"]);
    assert_eq!(check_ehlo(None, &worth, 0).cache, CacheAction::Store);
    assert_eq!(check_ehlo(None, &not, 0).cache, CacheAction::Nothing);
}

/// Each command has exactly one positive reply (two for RCPT); any other 2xx or 3xx is
/// out of step, never an acceptance, and the verdict says whether a body went out.
#[test]
fn rule_each_command_takes_only_its_own_positive_code() {
    let right: [(CommandKind, &[u16]); 10] = [
        (CommandKind::Banner, &[220]),
        (CommandKind::Ehlo, &[250]),
        (CommandKind::StartTls, &[220]),
        (CommandKind::Auth, &[235, 334]),
        (CommandKind::Mail, &[250]),
        (CommandKind::Rcpt, &[250, 251]),
        (CommandKind::Data, &[354]),
        (CommandKind::BdatLast, &[250]),
        (CommandKind::Body, &[250]),
        (CommandKind::Quit, &[221]),
    ];
    for (kind, good) in right {
        for code in [
            200, 211, 214, 220, 221, 235, 250, 251, 252, 299, 334, 354, 399,
        ] {
            for early in [false, true] {
                for body_sent in [false, true] {
                    let c = ReplyContext {
                        body_sent,
                        ..ctx(early, Invalidation::Relaxed)
                    };
                    let o = outcome(kind, code, &c);
                    if good.contains(&code) {
                        assert!(!o.out_of_step, "{kind} {code}");
                        assert_eq!(o.verdict, Verdict::Continue, "{kind} {code}");
                        assert_eq!(
                            o.message_accepted,
                            matches!(kind, CommandKind::BdatLast | CommandKind::Body)
                        );
                        continue;
                    }
                    assert!(o.out_of_step && o.connection_done, "{kind} {code}");
                    assert!(!o.message_accepted, "{kind} {code}");
                    assert_eq!(o.cache, CacheAction::Invalidate, "{kind} {code}");
                    let body =
                        body_sent || matches!(kind, CommandKind::BdatLast | CommandKind::Body);
                    let want = if early && !body {
                        Verdict::Reconnect
                    } else {
                        Verdict::Tempfail
                    };
                    assert_eq!(
                        o.verdict, want,
                        "{kind} {code} early={early} body={body_sent}"
                    );
                }
            }
        }
    }
}

/// QUIT wants 221; the connection is done whatever comes, and a failed QUIT says nothing
/// about the message.
#[test]
fn rule_quit_wants_221() {
    for early in [false, true] {
        let c = ctx(early, Invalidation::Strict);
        let o = outcome(CommandKind::Quit, 221, &c);
        assert!(o.connection_done && !o.out_of_step);
        assert_eq!(
            (o.verdict, o.cache),
            (Verdict::Continue, CacheAction::Nothing)
        );
        for code in [421, 451, 500, 554] {
            let o = outcome(CommandKind::Quit, code, &c);
            assert!(o.connection_done && !o.out_of_step, "{code}");
            assert_eq!(
                (o.verdict, o.cache),
                (Verdict::Continue, CacheAction::Nothing)
            );
        }
    }
}
