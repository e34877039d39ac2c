//! The `pipeconnect` command. Each subcommand lives in its own module and gets the arguments
//! that follow its name; it returns the process exit code.

mod cache_cmd;
mod cli;
mod delay;
mod demo;
mod fleet;
mod limit;
mod listen;
mod probe;
mod serve;
mod shared_cmd;

const USAGE: &str = "usage: pipeconnect <cache|serve|delay|probe|demo|fleet-demo> [options]  \
(cache: inspect a shared store file; serve: SMTP test sink; delay: slow-link TCP proxy; \
probe: what a server offers for early pipelining; demo: the saving on a slow link; \
fleet-demo: hosts sharing what they learn through Redis; \
pipeconnect <command> --help for options)";

fn main() {
    let mut args = std::env::args().skip(1);
    let command = args.next();
    let rest: Vec<String> = args.collect();
    let code = match command.as_deref() {
        Some("cache") => cache_cmd::main(rest),
        Some("serve") => serve::main(rest),
        Some("delay") => delay::main(rest),
        Some("probe") => probe::main(rest),
        Some("demo") => demo::main(rest),
        Some("fleet-demo") => fleet::main(rest),
        Some("--help" | "-h" | "help") => {
            println!("{USAGE}");
            0
        }
        Some(other) => {
            eprintln!("pipeconnect: unknown command '{other}'\n{USAGE}");
            cli::EXIT_USAGE
        }
        None => {
            eprintln!("{USAGE}");
            cli::EXIT_USAGE
        }
    };
    std::process::exit(code);
}
