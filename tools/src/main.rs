fn main() {
    eprintln!("pipeconnect: no subcommands yet");
    std::process::exit(2);
}
