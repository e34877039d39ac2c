//! The C API of the policy and session levels, driven from C programs compiled against
//! the committed header and the built library.

mod common;

/// A whole conversation through the session API: classic (learning), then one early
/// flight, then a server that dropped PIPECONNECT, then STARTTLS and its injection guard.
#[test]
fn c_session_conversations() {
    let out = common::run_c_test("test_session");
    assert!(String::from_utf8_lossy(&out.stdout).contains(" 0 failed"));
}

/// The policy functions from C: flights, outcomes, the EHLO check, names, bad input.
#[test]
fn c_policy_functions() {
    let out = common::run_c_test("test_policy");
    assert!(String::from_utf8_lossy(&out.stdout).contains(" 0 failed"));
}

/// Every pointer argument of the policy and session functions NULL in turn.
#[test]
fn c_null_pointers_policy_session() {
    let out = common::run_c_test("test_null_policy_session");
    assert!(String::from_utf8_lossy(&out.stdout).contains(" 0 failed"));
}

/// No false deliveries (issue 9): a reply of the wrong code for its command is out of
/// step, per command kind; the out-of-step stream of the issue with and without a body;
/// the final 250 and a 221 in one read; the raw reply and the server's capabilities.
#[test]
fn c_out_of_step_replies() {
    let out = common::run_c_test("test_out_of_step");
    assert!(String::from_utf8_lossy(&out.stdout).contains(" 0 failed"));
}

/// The server side from C: the pre-banner classifier fed in pieces, its table, limits,
/// bad options and names.
#[test]
fn c_server_prebanner() {
    let out = common::run_c_test("test_server");
    assert!(String::from_utf8_lossy(&out.stdout).contains(" 0 failed"));
}

/// Every pointer argument of the server functions NULL in turn.
#[test]
fn c_null_pointers_server() {
    let out = common::run_c_test("test_null_server");
    assert!(String::from_utf8_lossy(&out.stdout).contains(" 0 failed"));
}
