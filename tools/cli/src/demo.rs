//! `credvault demo`: the end-to-end demo. Starts the local identity provider (this binary's
//! `idp --demo`), creates a provider for each of the five dialects through the C ABI, fetches a
//! token, serves it from cache, invalidates it, and shows the statuses of common failures.
//! Token values are never printed: only their length.

use std::ffi::{c_char, CStr, CString};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use credvault::ffi;

struct IdpChild(Child);

impl Drop for IdpChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_idp() -> Result<(IdpChild, String), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find own binary: {e}"))?;
    let mut child = Command::new(exe)
        .args(["idp", "--demo", "--exit-on-stdin-eof"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the identity provider: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let child = IdpChild(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| format!("identity provider did not start: {e}"))?;
    let base = line
        .trim()
        .strip_prefix("credvault-idp listening on ")
        .ok_or("unexpected banner from the identity provider")?
        .to_string();
    Ok((child, base))
}

fn status_name(s: credvault::Status) -> String {
    // SAFETY: vault_status_name returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(ffi::vault_status_name(s as i32)) }
        .to_string_lossy()
        .into_owned()
}

/// Creates a provider through the C ABI; on failure prints the status and message.
fn create(json: &str) -> Option<u64> {
    let cfg = CString::new(json).ok()?;
    let mut handle = 0u64;
    let mut err = [0 as c_char; 256];
    // SAFETY: valid string, writable out pointer and buffer of the given length.
    let st = unsafe {
        ffi::vault_provider_new_ex(cfg.as_ptr(), &mut handle, err.as_mut_ptr(), err.len())
    };
    if st == credvault::Status::Ok {
        Some(handle)
    } else {
        // SAFETY: the library NUL-terminated the message inside the buffer.
        let msg = unsafe { CStr::from_ptr(err.as_ptr()) }.to_string_lossy();
        outln!("    create            -> {} ({msg})", status_name(st));
        None
    }
}

/// Gets a token through the C ABI: (length, fingerprint, microseconds).
fn get(handle: u64) -> Result<(usize, String, f64), String> {
    let started = Instant::now();
    let p = ffi::vault_get_token(handle);
    let micros = started.elapsed().as_nanos() as f64 / 1000.0;
    if p.is_null() {
        // SAFETY: the thread's last error, valid until the next call on this thread.
        let msg = unsafe { CStr::from_ptr(ffi::vault_last_error()) }
            .to_string_lossy()
            .into_owned();
        return Err(format!("{} ({msg})", status_name(ffi::vault_last_status())));
    }
    // SAFETY: a NUL-terminated string from vault_get_token, freed (wiped) right after.
    let token = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    let fingerprint = fingerprint(&token);
    unsafe { ffi::vault_token_free(p) };
    Ok((token.len(), fingerprint, micros))
}

/// A short, non-reversible tag to show that two tokens are the same or differ.
fn fingerprint(token: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    d.as_ref()[..4].iter().map(|b| format!("{b:02x}")).collect()
}

const HELP: &str = "\
usage: credvault demo

The end-to-end demo: starts the local identity provider (credvault idp --demo, on 127.0.0.1),
creates a provider for each of the five dialects through the C ABI, fetches a token, serves it
from the cache, invalidates it, and shows the statuses of common failures. Tokens are never
printed, only their length and the first 4 bytes of their SHA-256.

  -h, --help

exit codes: 0 every dialect served tokens, 1 a step failed, 2 usage error,
            141 standard output closed early (broken pipe)";

pub fn run(args: &[String]) -> i32 {
    match args.first().map(String::as_str) {
        None => demo(),
        Some("-h" | "--help") => {
            outln!("{HELP}");
            0
        }
        Some(_) => {
            errln!("credvault demo: takes no arguments\n\n{HELP}");
            2
        }
    }
}

fn demo() -> i32 {
    let (_idp, base) = match start_idp() {
        Ok(v) => v,
        Err(e) => {
            errln!("demo: {e}");
            return 1;
        }
    };
    // SAFETY: a static NUL-terminated string.
    let version = unsafe { CStr::from_ptr(ffi::vault_version()) }.to_string_lossy();
    outln!("credvault {version} demo against the local identity provider at {base}");
    outln!("(tokens are never printed: 'sha256:xxxxxxxx' is the first 4 bytes of their SHA-256)\n");
    let dialects = dialects(&base);
    let mut failures = 0;
    for (name, json) in &dialects {
        failures += show_dialect(name, json);
    }
    outln!("\nFailures are statuses, with messages that never carry a secret:");
    for (name, json) in &failure_cases(&base) {
        failures += show_failure(name, json);
    }
    failures += show_double_free(&dialects[0].1);
    if failures == 0 {
        outln!("\ndemo: all five dialects served tokens");
        0
    } else {
        outln!("\ndemo: {failures} step(s) failed");
        1
    }
}

/// One provider configuration per dialect, against the idp at `base`.
fn dialects(base: &str) -> [(&'static str, String); 5] {
    [
        (
            "Vitesse (client_secret_post, scope API)",
            format!(
                r#"{{"preset":"vitesse-staging","token_url":"{base}/vitesse/connect/token","client_id":"demo-vitesse-client","client_secret":"demo-vitesse-secret"}}"#
            ),
        ),
        (
            "Apiture (OIDC discovery, Basic)",
            format!(
                r#"{{"preset":"apiture","issuer":"{base}/apiture/oidc/","client_id":"demo-apiture-client","client_secret":"demo-apiture-secret"}}"#
            ),
        ),
        (
            "Vipps MobilePay standard (secret headers)",
            format!(
                r#"{{"preset":"vipps-test","token_url":"{base}/vipps/accesstoken/get","client_id":"demo-vipps-client","client_secret":"demo-vipps-secret","headers":{{"Ocp-Apim-Subscription-Key":"demo-vipps-subscription-key","Merchant-Serial-Number":"123456"}}}}"#
            ),
        ),
        (
            "Vipps MobilePay partner (Basic)",
            format!(
                r#"{{"preset":"vipps-partner-test","token_url":"{base}/vipps/miami/v1/token","client_id":"demo-partner-client","client_secret":"demo-partner-secret"}}"#
            ),
        ),
        (
            "VGS (Keycloak, 5-minute tokens)",
            format!(
                r#"{{"preset":"vgs","token_url":"{base}/vgs/auth/realms/vgs/protocol/openid-connect/token","client_id":"demo-vgs-client","client_secret":"demo-vgs-secret"}}"#
            ),
        ),
    ]
}

/// Configurations that fail, at creation or at the fetch.
fn failure_cases(base: &str) -> [(&'static str, String); 4] {
    [
        ("wrong client secret",
         format!(r#"{{"token_url":"{base}/vitesse/connect/token","auth_method":"client_secret_post","client_id":"demo-vitesse-client","client_secret":"not-the-secret"}}"#)),
        ("scope not allowed",
         format!(r#"{{"preset":"vitesse-staging","token_url":"{base}/vitesse/connect/token","client_id":"demo-vitesse-client","client_secret":"demo-vitesse-secret","scope":"Payouts"}}"#)),
        ("plain http to a non-loopback host",
         r#"{"token_url":"http://identity.example.com/token","client_id":"abc","client_secret":"s"}"#.to_string()),
        ("Vipps Merchant-Serial-Number rule",
         format!(r#"{{"preset":"vipps-test","token_url":"{base}/vipps/accesstoken/get","client_id":"c","client_secret":"s","headers":{{"Ocp-Apim-Subscription-Key":"k","Merchant-Serial-Number":"12ab"}}}}"#)),
    ]
}

/// Creates a provider, fetches, serves from cache, invalidates and fetches; returns the failures.
fn show_dialect(name: &str, json: &str) -> usize {
    outln!("{name}");
    let Some(h) = create(json) else {
        return 1;
    };
    let mut failures = 0;
    let steps = [
        ("fetch", false),
        ("cache hit", false),
        ("invalidate+fetch", true),
    ];
    for (step, invalidate) in steps {
        if invalidate {
            ffi::vault_invalidate(h);
        }
        match get(h) {
            Ok((len, fp, us)) => {
                outln!("    {step:<18}-> VAULT_STATUS_OK  {len} chars  sha256:{fp}  {us:.1} µs")
            }
            Err(e) => {
                outln!("    {step:<18}-> {e}");
                failures += 1;
            }
        }
    }
    ffi::vault_provider_free(h);
    failures
}

/// Shows how a failing configuration fails; 1 if it unexpectedly served a token.
fn show_failure(name: &str, json: &str) -> usize {
    outln!("  {name}");
    let Some(h) = create(json) else {
        return 0;
    };
    let failures = match get(h) {
        Ok(_) => {
            outln!("    fetch             -> unexpectedly succeeded");
            1
        }
        Err(e) => {
            outln!("    fetch             -> {e}");
            0
        }
    };
    ffi::vault_provider_free(h);
    failures
}

/// Frees a provider twice: the second is `VAULT_STATUS_INVALID_HANDLE`, not a crash.
fn show_double_free(json: &str) -> usize {
    let Some(h) = create(json) else {
        return 0; // already counted by show_dialect
    };
    ffi::vault_provider_free(h);
    let again = ffi::vault_provider_free(h);
    let (st, failures) = if again == credvault::Status::InvalidHandle as i32 {
        (credvault::Status::InvalidHandle, 0)
    } else {
        (credvault::Status::Internal, 1)
    };
    outln!(
        "  a provider freed twice\n    free again        -> {}",
        status_name(st)
    );
    failures
}
