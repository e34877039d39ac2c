//! Hand-rolled parsing of long options (`--name value` or `--name=value`).
//!
//! Small on purpose: every subcommand walks its arguments with [`Args`], converts values with
//! the helpers below, and turns a [`UsageError`] into a message plus its usage line, exit code 2.

use std::fmt;
use std::str::FromStr;

/// Exit code for a command line that could not be understood.
pub const EXIT_USAGE: i32 = 2;

/// A command line problem, reported to the user together with the usage line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// What a subcommand's option parser found: options to run with, or a request for help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<T> {
    Run(T),
    Help,
}

/// One item of the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// `--name` or `--name=value` (the name is given without the dashes).
    Flag {
        name: String,
        inline: Option<String>,
    },
    /// Anything that does not start with `--`.
    Positional(String),
}

/// A cursor over the arguments of one subcommand.
#[derive(Debug)]
pub struct Args {
    items: std::vec::IntoIter<String>,
    current_flag: String,
    pending_inline: Option<String>,
}

impl Args {
    pub fn new(items: Vec<String>) -> Self {
        Args {
            items: items.into_iter(),
            current_flag: String::new(),
            pending_inline: None,
        }
    }

    /// The next flag or positional argument; `None` at the end.
    ///
    /// An inline value (`--x=1`) that the caller did not take with [`Args::value`] is an error
    /// reported on the following call, so `--help=yes` does not slip through.
    pub fn next_arg(&mut self) -> Result<Option<Arg>, UsageError> {
        if self.pending_inline.take().is_some() {
            return Err(UsageError(format!(
                "option --{} takes no value",
                self.current_flag
            )));
        }
        let Some(item) = self.items.next() else {
            return Ok(None);
        };
        match item.strip_prefix("--") {
            Some("") => Err(UsageError("unexpected argument '--'".to_string())),
            Some(rest) => {
                let (name, inline) = match rest.split_once('=') {
                    Some((name, value)) => (name.to_string(), Some(value.to_string())),
                    None => (rest.to_string(), None),
                };
                self.current_flag = name.clone();
                self.pending_inline = inline.clone();
                Ok(Some(Arg::Flag { name, inline }))
            }
            None if item.starts_with('-') && item.len() > 1 => Err(UsageError(format!(
                "unknown option '{item}' (options are long: --name)"
            ))),
            None => Ok(Some(Arg::Positional(item))),
        }
    }

    /// The value of the flag just returned by [`Args::next_arg`]: inline, or the next argument.
    pub fn value(&mut self) -> Result<String, UsageError> {
        if let Some(inline) = self.pending_inline.take() {
            return Ok(inline);
        }
        self.items
            .next()
            .ok_or_else(|| UsageError(format!("option --{} needs a value", self.current_flag)))
    }

    /// The value of the current flag, converted with [`FromStr`].
    pub fn parsed<T: FromStr>(&mut self) -> Result<T, UsageError> {
        let raw = self.value()?;
        raw.parse().map_err(|_| {
            UsageError(format!(
                "option --{}: cannot use '{raw}' here",
                self.current_flag
            ))
        })
    }

    /// The value of the current flag as `on` or `off`.
    pub fn on_off(&mut self) -> Result<bool, UsageError> {
        let raw = self.value()?;
        match raw.as_str() {
            "on" => Ok(true),
            "off" => Ok(false),
            _ => Err(UsageError(format!(
                "option --{} takes on or off, not '{raw}'",
                self.current_flag
            ))),
        }
    }
}

/// The error for a flag that the subcommand does not know.
pub fn unknown_flag(name: &str) -> UsageError {
    UsageError(format!("unknown option --{name}"))
}

/// The error for a positional argument that the subcommand does not take.
pub fn unexpected_positional(value: &str) -> UsageError {
    UsageError(format!("unexpected argument '{value}'"))
}

/// The shape every subcommand's `main` shares: parse, print help or a usage error (exit 2),
/// then run. `run` gives the exit code, or an error that is printed after the command's
/// name (exit 1).
pub fn run_subcommand<T, E: fmt::Display>(
    name: &str,
    usage: &str,
    parsed: Result<Parsed<T>, UsageError>,
    run: impl FnOnce(T) -> Result<i32, E>,
) -> i32 {
    let options = match parsed {
        Ok(Parsed::Run(options)) => options,
        Ok(Parsed::Help) => {
            println!("{usage}");
            return 0;
        }
        Err(e) => {
            eprintln!("pipeconnect {name}: {e}\n{usage}");
            return EXIT_USAGE;
        }
    };
    match run(options) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pipeconnect {name}: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(items: &[&str]) -> Args {
        Args::new(items.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn flags_with_separate_and_inline_values() {
        let mut a = args(&["--size", "10", "--log=x.log", "--starttls", "on"]);
        assert!(matches!(a.next_arg(), Ok(Some(Arg::Flag { ref name, .. })) if name == "size"));
        assert_eq!(a.parsed::<u64>(), Ok(10));
        assert!(matches!(a.next_arg(), Ok(Some(Arg::Flag { ref name, .. })) if name == "log"));
        assert_eq!(a.value(), Ok("x.log".to_string()));
        assert!(a.next_arg().unwrap().is_some());
        assert_eq!(a.on_off(), Ok(true));
        assert_eq!(a.next_arg(), Ok(None));
    }

    #[test]
    fn errors() {
        let mut a = args(&["--size"]);
        a.next_arg().unwrap();
        assert!(a.parsed::<u64>().is_err());

        let mut a = args(&["--size", "ten"]);
        a.next_arg().unwrap();
        assert!(a.parsed::<u64>().is_err());

        let mut a = args(&["--chunking", "yes"]);
        a.next_arg().unwrap();
        assert!(a.on_off().is_err());

        let mut a = args(&["--help=1"]);
        a.next_arg().unwrap();
        assert!(a.next_arg().is_err());

        assert!(args(&["-x"]).next_arg().is_err());
        assert_eq!(
            args(&["word"]).next_arg(),
            Ok(Some(Arg::Positional("word".to_string())))
        );
    }
}
