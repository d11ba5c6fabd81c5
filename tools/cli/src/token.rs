//! `credvault token NAME [--config FILE] [--header] [--force]`: prints a provider's token, or the
//! whole `Authorization` value, for scripts and curl:
//!
//! ```sh
//! curl -H "Authorization: $(credvault token vipps --header)" https://api.example/...
//! ```
//!
//! It refuses to print to a terminal (where a token ends up in the scrollback, screen shares and
//! recordings) unless `--force`.

use std::io::Write;

use crate::cli::{self, exit, Progress};

const HELP: &str = "\
usage: credvault token NAME [--config FILE] [--header] [--force]

Prints the access token of the provider NAME from the configuration file, or with --header the
whole Authorization value (\"Bearer ...\"), followed by a newline, for scripts and curl.
Refuses to print to a terminal unless --force.

  NAME            a provider name in the file's \"providers\" object
  --config FILE   the configuration file (default: $CREDVAULT_CONFIG)
  --header        print \"<token_type> <token>\" instead of the token
  --force         print even when standard output is a terminal
  -h, --help";

/// The command line of `credvault token`.
struct Args<'a> {
    name: &'a str,
    config: Option<&'a str>,
    header: bool,
    force: bool,
}

/// Parses the arguments; `Err` carries the exit status (0 after `--help`).
fn parse_args(args: &[String]) -> Result<Args<'_>, i32> {
    let (mut name, mut config, mut header, mut force) = (None, None, false, false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => {
                outln!("{HELP}\n\n{}", cli::EXIT_CODES);
                return Err(exit::OK);
            }
            "--header" => header = true,
            "--force" => force = true,
            "--config" => match it.next() {
                Some(p) => config = Some(p.as_str()),
                None => return Err(usage("--config needs a file")),
            },
            s if s.starts_with("--config=") => config = Some(&s["--config=".len()..]),
            s if s.starts_with('-') => return Err(usage("unknown option")),
            s if name.is_none() => name = Some(s),
            _ => return Err(usage("one provider name at a time")),
        }
    }
    let Some(name) = name else {
        return Err(usage("which provider? (NAME)"));
    };
    Ok(Args {
        name,
        config,
        header,
        force,
    })
}

pub fn run(args: &[String]) -> i32 {
    let args = match parse_args(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let name = args.name;
    if cli::is_terminal(1) && !args.force {
        errln!(
            "credvault token: refusing to print a token to a terminal (pipe it into the command \
             that needs it, or pass --force)"
        );
        return exit::REFUSED;
    }
    let path = match cli::config_path(args.config) {
        Ok(p) => p,
        Err(e) => {
            errln!("credvault token: {e}");
            return exit::CONFIG;
        }
    };
    if let Err(code) = cli::load(&path) {
        return code;
    }
    let Some(provider) = credvault::configfile::provider(name) else {
        errln!(
            "credvault token: no provider named {} in {}",
            credvault::error::clean(name, 128),
            credvault::error::clean(&path, 200)
        );
        return exit::CONFIG;
    };
    let progress = Progress::new();
    progress.show(&format!("fetching a token for {name}..."));
    let result = provider.token();
    progress.done();
    match result {
        Ok(token) => print_token(&token, args.header),
        Err(e) => {
            errln!(
                "credvault token: {name}: {}: {}",
                e.status().name(),
                e.message()
            );
            exit::FAILED
        }
    }
}

/// Writes the token (or its Authorization value) and a newline to standard output.
fn print_token(token: &credvault::Token, header: bool) -> i32 {
    let value = if header {
        token.authorization()
    } else {
        zeroize::Zeroizing::new(token.secret().to_string())
    };
    let mut out = std::io::stdout().lock();
    let written = out
        .write_all(value.as_bytes())
        .and_then(|_| out.write_all(b"\n"))
        .and_then(|_| out.flush());
    match written {
        Ok(()) => exit::OK,
        // The reader has gone (`credvault token x | head -c 0`): quietly, as for any output.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::BROKEN_PIPE,
        Err(e) => {
            errln!("credvault token: cannot write the token ({})", e.kind());
            exit::FAILED
        }
    }
}

fn usage(what: &str) -> i32 {
    errln!("credvault token: {what}\n\n{HELP}\n\n{}", cli::EXIT_CODES);
    exit::USAGE
}
