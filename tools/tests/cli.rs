//! The command line: usage lines and errors.

mod common;

use std::process::{Command, Output};

use common::{with_timeout, BIN};

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run pipeconnect")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn help_prints_a_usage_line() {
    with_timeout(|_| help_prints_a_usage_line_body());
}

fn help_prints_a_usage_line_body() {
    for (args, prefix) in [
        (&["--help"][..], "usage: pipeconnect "),
        (&["serve", "--help"][..], "usage: pipeconnect serve "),
        (&["delay", "--help"][..], "usage: pipeconnect delay "),
    ] {
        let output = run(args);
        assert_eq!(output.status.code(), Some(0), "{args:?}");
        let text = stdout(&output);
        assert!(text.starts_with(prefix), "{args:?}: {text:?}");
        assert_eq!(text.lines().count(), 1, "{args:?}: {text:?}");
    }
}

#[test]
fn unknown_options_exit_2_with_a_clear_error() {
    with_timeout(|_| unknown_options_body());
}

fn unknown_options_body() {
    for (args, message) in [
        (&["serve", "--bogus"][..], "unknown option --bogus"),
        (&["delay", "--bogus", "1"][..], "unknown option --bogus"),
        (&["serve", "--starttls", "maybe"][..], "takes on or off"),
        (&["serve", "--size"][..], "needs a value"),
        (
            &["delay", "--upstream", "127.0.0.1:1"][..],
            "--one-way-ms is required",
        ),
        (&["frobnicate"][..], "unknown command"),
        (&[][..], "usage: pipeconnect"),
    ] {
        let output = run(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let text = stderr(&output);
        assert!(text.contains(message), "{args:?}: {text:?}");
        assert!(stdout(&output).is_empty(), "{args:?}");
    }
}
