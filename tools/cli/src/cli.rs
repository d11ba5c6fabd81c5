//! What the operator subcommands (`token`, `check`) share: the configuration file they read,
//! their exit codes, and the progress line shown on a terminal.

use std::io::Write;

/// Exit codes of `credvault token` and `credvault check` (also in their `--help`).
pub mod exit {
    /// Done.
    pub const OK: i32 = 0;
    /// A token fetch or a provider check failed (the status and message are on stderr).
    pub const FAILED: i32 = 1;
    /// Wrong arguments.
    pub const USAGE: i32 = 2;
    /// The configuration file is missing, unreadable or invalid, or names no such provider.
    pub const CONFIG: i32 = 3;
    /// Refused: a token would have been printed to a terminal (use `--force`).
    pub const REFUSED: i32 = 4;
}

pub const EXIT_CODES: &str = "\
exit codes: 0 ok, 1 a fetch or check failed, 2 usage error, 3 configuration error
            (file missing or invalid, unknown provider name), 4 refused (token to a terminal)";

/// The configuration file: `--config FILE`, else `$CREDVAULT_CONFIG`.
pub fn config_path(flag: Option<&str>) -> Result<String, String> {
    match flag {
        Some(p) => Ok(p.to_string()),
        None => std::env::var("CREDVAULT_CONFIG").map_err(|_| {
            "no configuration file: pass --config FILE or set CREDVAULT_CONFIG".to_string()
        }),
    }
}

/// Loads the configuration file; on failure prints why and returns the exit code.
pub fn load(path: &str) -> Result<(), i32> {
    credvault::configfile::load(path).map(|_| ()).map_err(|e| {
        eprintln!("credvault: {}", e);
        exit::CONFIG
    })
}

pub fn is_terminal(fd: i32) -> bool {
    // SAFETY: isatty only reads the descriptor number.
    unsafe { libc::isatty(fd) == 1 }
}

/// A progress line on stderr, only when stderr is a terminal; cleared by `done`.
pub struct Progress(bool);

impl Progress {
    pub fn new() -> Progress {
        Progress(is_terminal(2))
    }

    pub fn show(&self, what: &str) {
        if self.0 {
            eprint!("\r\x1b[2K{what}");
            let _ = std::io::stderr().flush();
        }
    }

    pub fn done(&self) {
        if self.0 {
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
        }
    }
}
