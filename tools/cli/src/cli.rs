//! What the subcommands share: the configuration file they read, their exit codes, output that
//! ends quietly when its reader has gone, and the progress line shown on a terminal.

use std::io::{ErrorKind, Write};

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
    /// Standard output was closed by its reader (EPIPE, as in `credvault demo | head -1`): the
    /// status a process ended by SIGPIPE has (128 + 13), without a message.
    pub const BROKEN_PIPE: i32 = 141;
}

pub const EXIT_CODES: &str = "\
exit codes: 0 ok, 1 a fetch or check failed, 2 usage error, 3 configuration error
            (file missing or invalid, unknown provider name), 4 refused (token to a terminal),
            141 standard output closed early (broken pipe)";

/// Writes `bytes` to standard output and flushes. `Err` is the exit code: `BROKEN_PIPE`, quietly,
/// when the reader has gone; `FAILED`, with the reason on stderr, on any other error.
pub fn out_bytes(bytes: &[u8]) -> Result<(), i32> {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Err(exit::BROKEN_PIPE),
        Err(e) => {
            err(&format!(
                "credvault: cannot write to standard output ({})\n",
                e.kind()
            ));
            Err(exit::FAILED)
        }
    }
}

/// `out_bytes` for text.
pub fn out(text: &str) -> Result<(), i32> {
    out_bytes(text.as_bytes())
}

/// `out`, ending the process with the exit code on failure: for output from memory that holds no
/// plaintext secret (usage, the demo, `check`). Used by `outln!`.
pub fn out_or_exit(text: &str) {
    if let Err(code) = out(text) {
        std::process::exit(code);
    }
}

/// Writes to standard error; a failure to do so is ignored (there is nowhere left to say it).
/// Used by `errln!`.
pub fn err(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

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
        err(&format!("credvault: {e}\n"));
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
            err(&format!("\r\x1b[2K{what}"));
        }
    }

    pub fn done(&self) {
        if self.0 {
            err("\r\x1b[2K");
        }
    }
}
