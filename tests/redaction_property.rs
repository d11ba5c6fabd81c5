//! Identity-provider text is redacted whole, before any cut, on every path that
//! builds a message from it. Whatever a response embeds (the client secret, the Basic value in
//! either encoding, the form-encoded secret or a secret header's value, whole or any 8-byte window
//! of it, at any position, with any status, in any field, on the token or the discovery
//! endpoint), no 8-byte window of any of them reaches an error message, an OAuth error code, an
//! event the log hook receives, or the stats' `last_error`.
//!
//! Against the local identity provider, whose fault injection answers with the generated status,
//! body and Content-Type. Each test installs its own log hook and collects every event's text.
//! `PROPTEST_CASES=N` sets the number of cases (default 128).

mod common;

use std::sync::{Mutex, MutexGuard, Once};

use base64::Engine as _;
use common::Idp;
use credvault::events::{self, Level};
use credvault::Provider;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestError, TestRunner};
use serde_json::{json, Value};

/// Every event's text, as the hook received it.
static EVENTS: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// One test at a time: each reads the events its own calls caused.
static SERIAL: Mutex<()> = Mutex::new(());

const CLIENT_ID: &str = "props-client";

/// Starts an idp, then installs the collecting hook (after the first `Idp::start`, which
/// installs the shared one of `common` once per process; this one replaces it for good).
fn start() -> (MutexGuard<'static, ()>, Idp) {
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let idp = Idp::start();
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        events::set_hook(
            Some(Box::new(|_, text: &str| {
                EVENTS
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(text.to_string());
            })),
            Level::Debug,
        );
    });
    (guard, idp)
}

fn take_events() -> Vec<String> {
    std::mem::take(&mut *EVENTS.lock().unwrap_or_else(|e| e.into_inner()))
}

/// application/x-www-form-urlencoded (RFC 6749 appendix B), as the client encodes.
fn form(value: &str) -> String {
    let mut out = String::new();
    for &b in value.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The credential values a request carries: the secret, form-encoded, the Basic value in both
/// encodings (plain and RFC 6749), and the secret header's value.
fn credentials(secret: &str, header: &str) -> Vec<String> {
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    vec![
        secret.to_string(),
        form(secret),
        b64(format!("{CLIENT_ID}:{secret}")),
        b64(format!("{}:{}", form(CLIENT_ID), form(secret))),
        header.to_string(),
    ]
}

/// Every 8-byte window of `value` (the value itself when shorter).
fn windows(value: &str) -> Vec<&[u8]> {
    let b = value.as_bytes();
    if b.len() <= 8 {
        vec![b]
    } else {
        b.windows(8).collect()
    }
}

/// Fails if any text holds an 8-byte window of any credential (naming where, not what).
fn check(texts: &[(String, String)], creds: &[String]) -> Result<(), TestCaseError> {
    for (where_, text) in texts {
        for (i, value) in creds.iter().enumerate() {
            for w in windows(value) {
                let found = text.as_bytes().windows(w.len()).any(|x| x == w);
                prop_assert!(
                    !found,
                    "{} holds 8 bytes of credential #{} (text withheld)",
                    where_,
                    i
                );
            }
        }
    }
    Ok(())
}

/// One request: the provider's credentials and the idp's answer.
struct Case<'a> {
    secret: &'a str,
    header: &'a str,
    auth_method: &'a str,
    /// The answer comes from the discovery document instead of the token endpoint.
    discovery: bool,
    status: u16,
    body: &'a str,
    content_type: Option<&'a str>,
    /// Room for at least one retry of a retried status (its event carries the first message).
    deadline_ms: u64,
}

/// One request against the idp answering the case's status, body (and Content-Type) on the
/// token endpoint or the discovery document: every text it produced.
fn run_case(idp: &Idp, case: &Case) -> Vec<(String, String)> {
    let Case {
        secret,
        header,
        auth_method,
        discovery,
        status,
        body,
        content_type,
        deadline_ms,
    } = *case;
    let (path, endpoint) = if discovery {
        (
            "/props/.well-known/openid-configuration".to_string(),
            json!({"issuer": idp.url("/props")}),
        )
    } else {
        (
            "/oauth/token".to_string(),
            json!({"token_url": idp.url("/oauth/token")}),
        )
    };
    idp.clear_faults();
    let mut rule = json!({"path": path, "kind": "status", "status": status, "body": body,
        "count": 0});
    if let Some(ct) = content_type {
        rule["content_type"] = json!(ct);
    }
    idp.fault(rule);
    let mut cfg = json!({"client_id": CLIENT_ID, "client_secret": secret,
        "auth_method": auth_method, "headers": {"X-Api-Key": header},
        "deadline_ms": deadline_ms, "cooldown_ms": 0});
    for (k, v) in endpoint.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    let p = Provider::new(&cfg.to_string()).expect("a valid provider");
    take_events();
    let mut texts = Vec::new();
    if let Err(e) = p.token() {
        texts.push(("the message".to_string(), e.message().to_string()));
        texts.push((
            "the OAuth code".to_string(),
            e.oauth_error().unwrap_or("").to_string(),
        ));
        texts.push(("the error's Display".to_string(), e.to_string()));
    }
    texts.push(("the stats".to_string(), p.stats().to_json().to_string()));
    for ev in take_events() {
        let name = serde_json::from_str::<Value>(&ev)
            .ok()
            .and_then(|v| v["event"].as_str().map(str::to_string))
            .unwrap_or_default();
        texts.push((format!("the event {name}"), ev));
    }
    idp.clear_faults();
    texts
}

/// The case: a 200 with no `access_token` whose `error` and `error_description` echo an
/// 81-character secret. The message, `fetch_finished`, `retry` and the stats' `last_error` held
/// its first 64 characters (the path cut before redaction); the same body with HTTP 400 did not.
#[test]
fn a_200_error_echoing_the_secret_is_redacted_everywhere() {
    let (_g, idp) = start();
    let secret =
        "S3cr3t-Value-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOPQRSTUVWXYZ-zzz";
    assert_eq!(secret.len(), 81);
    let header = "header-value-77Zq-qwerty";
    let creds = credentials(secret, header);
    for status in [200, 400] {
        let body = json!({"error": secret, "error_description": secret}).to_string();
        let case = Case {
            secret,
            header,
            auth_method: "client_secret_post",
            discovery: false,
            status,
            body: &body,
            content_type: None,
            // Several retries (from about 75 ms on), however loaded the machine.
            deadline_ms: 3000,
        };
        let texts = run_case(&idp, &case);
        for want in ["the message", "the stats", "the event fetch_finished"] {
            assert!(
                texts.iter().any(|(w, _)| w == want),
                "HTTP {status}: no {want}"
            );
        }
        if status == 200 {
            assert!(texts.iter().any(|(w, _)| w == "the event retry"));
        }
        if let Err(e) = check(&texts, &creds) {
            panic!("HTTP {status}: {e}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The property.

/// A secret: printable ASCII (with the characters that form- and JSON-encode) and a few
/// non-ASCII letters, 9 to 81 characters.
fn secret() -> impl Strategy<Value = String> {
    let mut chars: Vec<char> = (' '..='~').collect();
    chars.extend(['£', 'é', '€', 'ß', '中']);
    prop::collection::vec(select(chars), 9..=81).prop_map(String::from_iter)
}

/// Text around the echo: printable (often short, so that the echo falls within a message's
/// bound), sometimes with control or bidi characters.
fn filler() -> impl Strategy<Value = String> {
    prop_oneof![
        2 => "[ -~]{0,12}",
        2 => "[ -~]{0,200}",
        1 => "[ -~\r\n\t\u{202E}\u{2066}\u{200F}é]{0,120}",
    ]
}

/// The piece of `value` echoed: whole, or the 8-byte window at `at` (widened to whole characters).
fn piece(value: &str, whole: bool, at: usize) -> &str {
    if whole || value.len() <= 8 {
        return value;
    }
    let mut start = at % (value.len() - 7);
    while !value.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = start + 8;
    while !value.is_char_boundary(end) {
        end += 1;
    }
    &value[start..end]
}

/// A response body carrying `e` in one of the places a message can be built from.
fn body(shape: usize, e: &str) -> String {
    match shape {
        0 => json!({"error": e}).to_string(),
        1 => json!({"error": "invalid_request", "error_description": e}).to_string(),
        2 => json!({"error": e, "error_description": e, "error_uri": e}).to_string(),
        3 => json!({"message": e}).to_string(),
        4 => json!({"access_token": "tok", "token_type": e}).to_string(),
        5 => json!({"issuer": e, "token_endpoint": e}).to_string(),
        6 => e.to_string(),
        7 => format!("<html><body>{e}</body></html>"),
        8 => json!({"error": "server_error", "detail": e, "message": e}).to_string(),
        _ => json!({"access_token": e, "token_type": "Bearer", "expires_in": 60}).to_string(),
    }
}

/// A header value can carry the echo when it has no control characters.
fn header_safe(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7f).contains(&b))
}

#[test]
fn no_window_of_a_credential_reaches_any_message_event_or_stat() {
    let (_g, idp) = start();
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128);
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let strategy = (
        (
            secret(),
            "[A-Za-z0-9._~+/=-]{9,40}",
            select(vec!["client_secret_basic", "client_secret_post", "headers"]),
            prop::bool::weighted(0.2),
        ),
        (
            prop_oneof![
                3 => Just(200u16),
                4 => select(vec![400u16, 401, 403, 404, 429, 500, 502, 503]),
                2 => 200u16..600,
            ],
            0usize..10,
            prop::bool::weighted(0.2),
        ),
        (0usize..5, any::<bool>(), any::<usize>(), filler(), filler()),
    );
    runner
        .run(
            &strategy,
            |((secret, header, auth, discovery), (status, shape, in_content_type), echo)| {
                let (which, whole, at, before, after) = echo;
                let creds = credentials(&secret, &header);
                let e = format!("{before}{}{after}", piece(&creds[which], whole, at));
                let content_type =
                    (in_content_type && header_safe(&e)).then(|| format!("text/plain; x=\"{e}\""));
                let body = body(shape, &e);
                let case = Case {
                    secret: &secret,
                    header: &header,
                    auth_method: auth,
                    discovery,
                    status,
                    body: &body,
                    content_type: content_type.as_deref(),
                    // One retry when the machine is not too loaded (the test does not need it).
                    deadline_ms: 150,
                };
                let texts = run_case(&idp, &case);
                // The case is named by its shape, never by its values (they are secrets).
                check(&texts, &creds).map_err(|e| {
                    TestCaseError::fail(format!(
                        "{e}: HTTP {status}, body shape {shape}, credential #{which} {}, \
                         auth {auth}, discovery {discovery}, in Content-Type {}",
                        if whole { "whole" } else { "8-byte window" },
                        content_type.is_some()
                    ))
                })
            },
        )
        .unwrap_or_else(|e| match e {
            // Only the reason: the failing input holds the generated secrets.
            TestError::Fail(reason, _) => panic!("{reason}"),
            TestError::Abort(reason) => panic!("aborted: {reason}"),
        });
}
