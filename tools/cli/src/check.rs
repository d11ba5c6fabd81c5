//! `credvault check [--config FILE] [--json] [--watch SECONDS]`: validates every provider of the
//! configuration file, runs discovery and fetches one token each, and prints per provider ok or
//! the status and message, the latency, the token's lifetime and where the endpoint came from.
//! Never prints a secret or a token. With `--watch` it checks again every SECONDS and reloads
//! the file (and the secrets it refers to) on SIGHUP, as a long-running process would.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use credvault::config::EndpointSource;
use serde_json::{json, Value};

use crate::cli::{self, exit, Progress};

const HELP: &str = "\
usage: credvault check [--config FILE] [--json] [--watch SECONDS]

Validates every provider of the configuration file, runs issuer discovery, fetches one token
each and prints per provider: ok or the status and message, the latency, the token's lifetime
and where the token endpoint comes from. Never prints a secret or a token. Exits non-zero if
any provider failed.

  --config FILE      the configuration file (default: $CREDVAULT_CONFIG)
  --json             one JSON object per check on standard output
  --watch SECONDS    check again every SECONDS until interrupted; SIGHUP reloads the file and
                     the secrets it refers to (what changed is reported), as in a service
  -h, --help";

static RELOAD: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sighup(_: libc::c_int) {
    RELOAD.store(true, Ordering::Relaxed);
}

pub fn run(args: &[String]) -> i32 {
    let mut config = None;
    let mut as_json = false;
    let mut watch = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => {
                outln!("{HELP}\n\n{}", cli::EXIT_CODES);
                return exit::OK;
            }
            "--json" => as_json = true,
            "--config" => match it.next() {
                Some(p) => config = Some(p.as_str()),
                None => return usage("--config needs a file"),
            },
            s if s.starts_with("--config=") => config = Some(&s["--config=".len()..]),
            "--watch" => match it.next().and_then(|s| s.parse::<u64>().ok()) {
                Some(n) if n > 0 => watch = Some(Duration::from_secs(n)),
                _ => return usage("--watch needs a number of seconds"),
            },
            _ => return usage("unknown argument"),
        }
    }
    // A service manager may send SIGHUP as soon as the process runs: the handler comes before
    // anything that takes time (the file, its secrets), so that such a signal is a reload (done
    // after the first check) and not the end of the process.
    if watch.is_some() {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { libc::signal(libc::SIGHUP, on_sighup as *const () as libc::sighandler_t) };
    }
    let path = match cli::config_path(config) {
        Ok(p) => p,
        Err(e) => {
            errln!("credvault check: {e}");
            return exit::CONFIG;
        }
    };
    if let Err(code) = cli::load(&path) {
        return code;
    }
    let Some(every) = watch else {
        return check_all(as_json);
    };
    loop {
        check_all(as_json);
        let next = Instant::now() + every;
        while Instant::now() < next {
            std::thread::sleep(Duration::from_millis(100));
            if RELOAD.swap(false, Ordering::Relaxed) {
                reload(as_json);
            }
        }
    }
}

fn reload(as_json: bool) {
    match credvault::configfile::reload() {
        Ok(c) if as_json => outln!(
            "{}",
            json!({"reload": "ok", "added": c.added, "changed": c.changed,
                   "unchanged": c.unchanged, "removed": c.removed})
        ),
        Ok(c) => outln!(
            "reloaded: added {:?}, changed {:?}, unchanged {:?}, removed {:?}",
            c.added,
            c.changed,
            c.unchanged,
            c.removed
        ),
        Err(e) if as_json => outln!(
            "{}",
            json!({"reload": "failed", "status": e.status().name(), "message": e.message()})
        ),
        Err(e) => errln!("reload failed, the providers in service are unchanged: {e}"),
    }
}

/// Checks every provider; returns the exit code.
fn check_all(as_json: bool) -> i32 {
    let names = credvault::configfile::names();
    let progress = Progress::new();
    let mut results = Vec::new();
    for (i, (name, _)) in names.iter().enumerate() {
        progress.show(&format!("checking {name} ({}/{})...", i + 1, names.len()));
        results.push(check_one(name));
    }
    progress.done();
    let failed = results.iter().filter(|r| r["ok"] == false).count();
    if as_json {
        outln!(
            "{}",
            json!({"providers": results, "failed": failed, "checked": names.len()})
        );
    } else {
        for r in &results {
            outln!("{}", line(r));
        }
        outln!("{} of {} providers ok", names.len() - failed, names.len());
    }
    if failed == 0 {
        exit::OK
    } else {
        exit::FAILED
    }
}

fn check_one(name: &str) -> Value {
    let Some(p) = credvault::configfile::provider(name) else {
        return json!({"name": name, "ok": false, "status": "VAULT_STATUS_INVALID_HANDLE",
                      "message": "removed while checking"});
    };
    let source = match &p.config().endpoint {
        EndpointSource::TokenUrl(u) => json!({"token_url": u}),
        EndpointSource::Issuer(i) => json!({"issuer": i, "discovered": true}),
    };
    // A fresh fetch each time, so that the check says something about the endpoint now.
    p.invalidate();
    let started = Instant::now();
    let result = p.token();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(_token) => {
            let (refresh_s, serve_s) = p
                .schedule()
                .map(|(_, r, s)| (r.as_secs(), s.as_secs()))
                .unwrap_or((0, 0));
            json!({"name": name, "ok": true, "latency_ms": (latency_ms * 10.0).round() / 10.0,
                   "servable_s": serve_s, "refresh_in_s": refresh_s, "endpoint": source})
        }
        Err(e) => json!({"name": name, "ok": false, "status": e.status().name(),
                         "message": e.message(), "latency_ms": (latency_ms * 10.0).round() / 10.0,
                         "endpoint": source}),
    }
}

fn line(r: &Value) -> String {
    let name = r["name"].as_str().unwrap_or("?");
    let source = match (&r["endpoint"]["token_url"], &r["endpoint"]["issuer"]) {
        (Value::String(u), _) => format!("token_url {u}"),
        (_, Value::String(i)) => format!("discovered from issuer {i}"),
        _ => String::new(),
    };
    if r["ok"] == true {
        format!(
            "ok    {name:<24} {:>8.1} ms  token servable for {} s (refresh in {} s)  {source}",
            r["latency_ms"].as_f64().unwrap_or(0.0),
            r["servable_s"],
            r["refresh_in_s"],
        )
    } else {
        format!(
            "FAIL  {name:<24} {:>8.1} ms  {}: {}  {source}",
            r["latency_ms"].as_f64().unwrap_or(0.0),
            r["status"].as_str().unwrap_or("?"),
            r["message"].as_str().unwrap_or(""),
        )
    }
}

fn usage(what: &str) -> i32 {
    errln!("credvault check: {what}\n\n{HELP}\n\n{}", cli::EXIT_CODES);
    exit::USAGE
}
