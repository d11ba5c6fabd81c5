//! The fuzz targets' entry points, shared by the libFuzzer binaries (`tests/fuzz/fuzz_targets/`)
//! and by the regression replay of the normal test suite (`tests/fuzz_regressions.rs`), so that a
//! saved crash replays through exactly the code that found it.
//!
//! Each entry runs one input through one parser that sees untrusted bytes and checks what must
//! hold for every input: no panic, the documented status, messages without control characters
//! and without the token, output within its documented bounds. A broken check panics, which
//! libFuzzer reports as a crash.

// Each fuzz binary uses one entry point.
#![allow(dead_code)]

use std::ffi::{c_char, CStr, CString};
use std::time::{Duration, UNIX_EPOCH};

use credvault::{ffi, fuzzing, Status};
use serde_json::Value;

// The command's own source: what `credvault inspect` does with its input (target `cli_input`).
#[allow(unused)]
#[path = "../../tools/cli/src/cli.rs"]
mod cli;
#[allow(unused)]
#[path = "../../tools/cli/src/inspect.rs"]
mod inspect;

/// A fuzz target's entry point.
pub type Target = fn(&[u8]);

/// Every target: its name (the folder under `corpus/` and `regressions/`) and its entry point.
pub const TARGETS: &[(&str, Target)] = &[
    ("config", config),
    ("token_response", token_response),
    ("error_response", error_response),
    ("discovery", discovery),
    ("retry_after", retry_after),
    ("ffi_config", ffi_config),
    ("cli_input", cli_input),
];

fn assert_no_control(what: &str, msg: &str) {
    assert!(
        !msg.chars().any(char::is_control),
        "{what}: control character in message {msg:?}"
    );
}

/// `credvault::fuzzing::config`: a rejected config is `InvalidConfig`.
pub fn config(data: &[u8]) {
    if let Err(e) = fuzzing::config(data) {
        assert_eq!(e.status(), Status::InvalidConfig, "config: {e:?}");
        assert!(!e.message().is_empty());
    }
}

/// The pieces of an `access_token` that must never show in an error message: every run of 20 or
/// more characters without whitespace or control characters (no message text has such a run).
fn token_pieces(data: &[u8]) -> Vec<String> {
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(data) else {
        return Vec::new();
    };
    let Some(Value::String(token)) = map.get("access_token") else {
        return Vec::new();
    };
    token
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|p| p.len() >= 20)
        .map(str::to_string)
        .collect()
}

/// `credvault::fuzzing::token_response`: a token within bounds, or `MalformedResponse` with a
/// clean message that never quotes the access token.
pub fn token_response(data: &[u8]) {
    match fuzzing::token_response(data) {
        Ok((len, token_type, lifetime)) => {
            assert!((1..=64 * 1024).contains(&len), "token length {len}");
            assert!(
                !token_type.is_empty()
                    && token_type.len() <= 32
                    && token_type.bytes().all(|b| b.is_ascii_graphic()),
                "token_type {token_type:?}"
            );
            assert!(
                lifetime > 0.0 && lifetime <= 10.0 * 365.0 * 86_400.0 + 1.0,
                "lifetime {lifetime}"
            );
        }
        Err(e) => {
            assert_eq!(e.status(), Status::MalformedResponse, "token: {e:?}");
            assert_no_control("token_response", e.message());
            for piece in token_pieces(data) {
                assert!(
                    !e.message().contains(&piece),
                    "token_response: the error quotes the access token: {:?}",
                    e.message()
                );
            }
        }
    }
}

/// `credvault::fuzzing::error_response`: the first two bytes pick the HTTP status (100 to 999),
/// the rest is the body. An OAuth error maps to one of its four statuses, with a bounded message
/// free of control characters (the description is server text that ends up in logs).
pub fn error_response(data: &[u8]) {
    let (status, body) = match data {
        [a, b, rest @ ..] => (100 + u16::from_le_bytes([*a, *b]) % 900, rest),
        _ => (400, data),
    };
    if let Some(e) = fuzzing::error_response(status, body) {
        assert!(
            matches!(
                e.status(),
                Status::CredentialsRejected
                    | Status::ScopeRejected
                    | Status::RateLimited
                    | Status::OauthError
            ),
            "error_response: {e:?}"
        );
        assert_no_control("error_response", e.message());
        assert!(
            e.message().chars().count() <= 420,
            "error_response: message of {} characters",
            e.message().chars().count()
        );
    }
}

/// `credvault::fuzzing::discovery` (issuer `https://idp.example/oidc/`): an https token endpoint
/// without spaces, or `DiscoveryFailed`/`MalformedResponse` with a clean message.
pub fn discovery(data: &[u8]) {
    match fuzzing::discovery(data) {
        Ok(url) => {
            assert!(url.starts_with("https://"), "discovery: endpoint {url:?}");
            assert!(
                url.len() <= 2048,
                "discovery: endpoint of {} bytes",
                url.len()
            );
            assert!(
                !url.chars().any(|c| c.is_whitespace() || c.is_control()),
                "discovery: endpoint {url:?}"
            );
        }
        Err(e) => {
            assert!(
                matches!(
                    e.status(),
                    Status::DiscoveryFailed | Status::MalformedResponse
                ),
                "discovery: {e:?}"
            );
            assert_no_control("discovery", e.message());
        }
    }
}

/// `credvault::fuzzing::retry_after` on the bytes as (lossy) UTF-8: never panics, at most a day
/// for delay seconds.
pub fn retry_after(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let got = fuzzing::retry_after(&text);
    if let Ok(secs) = text.trim().parse::<u64>() {
        assert_eq!(got, Some(Duration::from_secs(secs.min(86_400))), "{text:?}");
    }
}

/// `vault_provider_new_ex` with the bytes (up to the first NUL) as the config string; the handle
/// is freed (twice: the second must say `VAULT_STATUS_INVALID_HANDLE`). A panic caught at the C
/// boundary shows as `VAULT_STATUS_INTERNAL`, which fails here. The error buffer must be
/// NUL-terminated within its length and nothing past it written.
pub fn ffi_config(data: &[u8]) {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let config = CString::new(&data[..end]).expect("no NUL before end");
    const LEN: usize = 192;
    let mut err = [0x55 as c_char; LEN + 8];
    let mut handle = 0u64;
    // SAFETY: a NUL-terminated string, a writable u64, and LEN writable bytes.
    let status =
        unsafe { ffi::vault_provider_new_ex(config.as_ptr(), &mut handle, err.as_mut_ptr(), LEN) };
    assert!(
        err[LEN..].iter().all(|&b| b == 0x55),
        "ffi_config: wrote past err_len"
    );
    assert!(
        err[..LEN].contains(&0),
        "ffi_config: message not NUL-terminated"
    );
    // SAFETY: NUL-terminated within the array, checked above.
    let message = unsafe { CStr::from_ptr(err.as_ptr()) };
    assert!(message.to_str().is_ok(), "ffi_config: message is not UTF-8");
    assert_eq!(ffi::vault_last_status(), status);
    match status {
        Status::Ok => {
            assert_ne!(handle, 0);
            assert!(message.is_empty());
            assert_eq!(ffi::vault_provider_free(handle), Status::Ok as i32);
            assert_eq!(
                ffi::vault_provider_free(handle),
                Status::InvalidHandle as i32
            );
        }
        Status::InvalidConfig | Status::InvalidArgument => {
            assert_eq!(handle, 0);
            assert!(!message.is_empty());
            assert!(!ffi::vault_last_error().is_null());
        }
        other => panic!("ffi_config: unexpected status {other:?}: {message:?}"),
    }
}

/// `credvault inspect` on the bytes as standard input or an argument gives them
/// (tools/cli/src/inspect.rs: `token_text`, then `inspect` and both outputs). Never panics
/// (`Bearer` and a no-break space cut inside the character); the token found
/// has no padding around it and never shows in the output; the text has no control character
/// but its newlines and no bidirectional control; the JSON parses back to the same value and
/// has none of those raw either.
pub fn cli_input(data: &[u8]) {
    let Ok(token) = inspect::token_text(data) else {
        return;
    };
    assert!(!token.is_empty(), "cli_input: empty token");
    let padded = |c: Option<char>| c.is_some_and(char::is_whitespace);
    assert!(
        !padded(token.chars().next()) && !padded(token.chars().next_back()),
        "cli_input: white space around {token:?}"
    );
    let report = inspect::inspect(token, UNIX_EPOCH + Duration::from_secs(1_700_000_000));
    let text = report.to_text();
    let json = report.to_json_text();
    if let inspect::Report::Opaque { length } = report {
        // Only the length: the whole output is known.
        assert_eq!(length, token.len());
        assert_eq!(json, format!(r#"{{"format":"opaque","length":{length}}}"#));
        assert!(text.starts_with(&format!("opaque token ({length} bytes): not a JWT")));
    } else {
        // A JWT holds its header and claims base64-encoded, longer than any value in them.
        assert!(!text.contains(token), "cli_input: the text shows the token");
        assert!(!json.contains(token), "cli_input: the JSON shows the token");
    }
    let unsafe_char = |c: char| {
        matches!(c, '\u{7F}'..='\u{9F}' | '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{2028}'
            | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
            || c.is_control()
    };
    if let Some(c) = text.chars().find(|&c| c != '\n' && unsafe_char(c)) {
        panic!("cli_input: {c:?} in the text output");
    }
    if let Some(c) = json.chars().find(|&c| unsafe_char(c)) {
        panic!("cli_input: raw {c:?} in the JSON output");
    }
    let back: Value = serde_json::from_str(&json).expect("cli_input: the JSON parses");
    assert_eq!(
        back,
        report.to_json(),
        "cli_input: the escapes change the values"
    );
}
