//! The credvault command: the operator's tools (`token`, `check`, `inspect`), the end-to-end
//! `demo`, and `idp`, the local identity provider every test and the demo use (the
//! `credvault-idp` crate in tools/idp).
//!
//! Output goes through `outln!` and `errln!` (never `println!`, which panics when the reader of
//! standard output has gone): a closed pipe ends the command quietly with exit status 141.
#![deny(clippy::print_stdout, clippy::print_stderr)]

/// `println!` to standard output that ends the process quietly (exit 141) when its reader has
/// gone (`cli::out_or_exit`).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::out_or_exit(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` that never panics (`cli::err`).
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::cli::err(&format!("{}\n", format_args!($($arg)*)))
    };
}

mod check;
mod cli;
mod demo;
mod inspect;
mod token;

const USAGE: &str = "\
usage: credvault COMMAND [ARGS]   (credvault COMMAND --help for each)

  token NAME [--config FILE] [--header] [--force]
      print a provider's token or Authorization value (refused on a terminal without --force)
  check [--config FILE] [--json] [--watch SECONDS]
      validate every provider and fetch one token each; --watch again every SECONDS,
      SIGHUP reloads the file
  inspect [TOKEN|-] [--json]
      decode a JWT locally (sent nowhere, not verified)
  demo
      the end-to-end demo against the local identity provider
  idp [options]
      the local identity provider (loopback only, for tests)
  --version
  -h, --help

The configuration file is --config FILE or $CREDVAULT_CONFIG: {\"providers\": {NAME: {...}}}
(see README, \"Configuration files\"). Errors go to stderr.";

/// A panic is a bug, and its message could quote what the command was given (a token, on the
/// command line or standard input): print where it happened, never the message. The exit status
/// stays 101.
fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        errln!(
            "credvault: internal error (a bug){at}; its message is not shown, as it could hold \
             the input"
        );
    }));
}

fn main() {
    quiet_panics();
    // Debug builds only: a panic on request, so that the tests can see what the hook prints.
    #[cfg(debug_assertions)]
    if let Some(v) = std::env::var_os("CREDVAULT_TEST_PANIC") {
        panic!("{}", v.to_string_lossy());
    }
    // Arguments that are not UTF-8 (std::env::args would panic, quoting the argument).
    let args: Vec<String> = match std::env::args_os()
        .skip(1)
        .map(std::ffi::OsString::into_string)
        .collect()
    {
        Ok(args) => args,
        Err(_) => {
            errln!("credvault: an argument is not UTF-8 text (not shown)\n\n{USAGE}");
            std::process::exit(cli::exit::USAGE);
        }
    };
    let rest = args.get(1..).unwrap_or_default();
    let code = match args.first().map(String::as_str) {
        Some("idp") => credvault_idp::run(rest),
        Some("demo") => demo::run(rest),
        Some("inspect") => inspect::run(rest),
        Some("token") => token::run(rest),
        Some("check") => check::run(rest),
        Some("--version") => {
            outln!("credvault {}", credvault::VERSION);
            0
        }
        Some("-h" | "--help" | "help") => {
            outln!("{USAGE}");
            0
        }
        _ => {
            errln!("{USAGE}");
            2
        }
    };
    std::process::exit(code);
}
