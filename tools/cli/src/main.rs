//! The credvault command: the operator's tools (`token`, `check`, `inspect`), the end-to-end
//! `demo`, and `idp`, the local identity provider every test and the demo use (the
//! `credvault-idp` crate in tools/idp).

mod check;
mod cli;
mod demo;
mod inspect;
mod token;

const USAGE: &str = "\
usage: credvault COMMAND [ARGS]   (credvault COMMAND --help for each)

  token NAME [--config FILE] [--header]   print a provider's token or Authorization value
  check [--config FILE] [--json]          validate every provider and fetch one token each
  inspect [TOKEN|-] [--json]              decode a JWT locally (sent nowhere, not verified)
  demo                                    the end-to-end demo against the local identity provider
  idp [options]                           the local identity provider (loopback only, for tests)
  --version

The configuration file is --config FILE or $CREDVAULT_CONFIG: {\"providers\": {NAME: {...}}}
(see README, \"Configuration files\"). Errors go to stderr.";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let code = match args.get(1).map(String::as_str) {
        Some("idp") => credvault_idp::run(&args[2..]),
        Some("demo") => demo::run(),
        Some("inspect") => inspect::run(&args[2..]),
        Some("token") => token::run(&args[2..]),
        Some("check") => check::run(&args[2..]),
        Some("--version") => {
            println!("credvault {}", credvault::VERSION);
            0
        }
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            0
        }
        _ => {
            eprintln!("{USAGE}");
            2
        }
    };
    std::process::exit(code);
}
