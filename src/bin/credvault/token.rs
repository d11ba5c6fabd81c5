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

pub fn run(args: &[String]) -> i32 {
    let mut name = None;
    let mut config = None;
    let mut header = false;
    let mut force = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => {
                println!("{HELP}\n\n{}", cli::EXIT_CODES);
                return exit::OK;
            }
            "--header" => header = true,
            "--force" => force = true,
            "--config" => match it.next() {
                Some(p) => config = Some(p.as_str()),
                None => return usage("--config needs a file"),
            },
            s if s.starts_with("--config=") => config = Some(&s["--config=".len()..]),
            s if s.starts_with('-') => return usage("unknown option"),
            s if name.is_none() => name = Some(s),
            _ => return usage("one provider name at a time"),
        }
    }
    let Some(name) = name else {
        return usage("which provider? (NAME)");
    };
    if cli::is_terminal(1) && !force {
        eprintln!(
            "credvault token: refusing to print a token to a terminal (pipe it into the command \
             that needs it, or pass --force)"
        );
        return exit::REFUSED;
    }
    let path = match cli::config_path(config) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("credvault token: {e}");
            return exit::CONFIG;
        }
    };
    if let Err(code) = cli::load(&path) {
        return code;
    }
    let Some(provider) = credvault::configfile::provider(name) else {
        eprintln!(
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
        Ok(token) => {
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
                Err(e) => {
                    eprintln!("credvault token: cannot write the token ({})", e.kind());
                    exit::FAILED
                }
            }
        }
        Err(e) => {
            eprintln!(
                "credvault token: {name}: {}: {}",
                e.status().name(),
                e.message()
            );
            exit::FAILED
        }
    }
}

fn usage(what: &str) -> i32 {
    eprintln!("credvault token: {what}\n\n{HELP}\n\n{}", cli::EXIT_CODES);
    exit::USAGE
}
