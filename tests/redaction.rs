//! Identity-provider text that enters an error message (an OAuth `error` and
//! `error_description`, a gateway's `message`) never carries a credential the request sent (a
//! gateway may echo a request header or the body), and carries no Unicode bidirectional controls.
//! Against the local identity provider, with its fault injection answering what such a gateway
//! would.

mod common;

use common::Idp;
use credvault::{Provider, Status};
use serde_json::json;

const SECRET: &str = "redaction-Secret-4kQ9";
const HEADER_VALUE: &str = "redaction-header-value-77Zq";

fn provider(idp: &Idp, auth_method: &str) -> Provider {
    let cfg = json!({"token_url": idp.url("/oauth/token"), "client_id": "redaction-client",
        "client_secret": SECRET, "auth_method": auth_method,
        "headers": {"X-Api-Key": HEADER_VALUE}});
    Provider::new(&cfg.to_string()).unwrap()
}

/// The Basic credentials the provider sends (plain encoding: the secret has no special
/// characters, so both encodings agree).
fn basic_value() -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(format!("redaction-client:{SECRET}"))
}

fn refusal(idp: &Idp, status: u16, body: serde_json::Value, auth_method: &str) -> credvault::Error {
    idp.clear_faults();
    idp.fault(
        json!({"path": "/oauth/token", "kind": "status", "status": status,
        "body": body.to_string(), "count": 1}),
    );
    let err = provider(idp, auth_method).token().unwrap_err();
    idp.clear_faults();
    err
}

fn assert_clean(err: &credvault::Error, what: &str) {
    let msg = err.message();
    for (name, value) in [
        ("client secret", SECRET.to_string()),
        ("Basic value", basic_value()),
        ("header value", HEADER_VALUE.to_string()),
    ] {
        assert!(
            !msg.contains(&value),
            "{what}: the message contains the {name}"
        );
        assert!(
            !err.oauth_error().unwrap_or("").contains(&value),
            "{what}: the OAuth code contains the {name}"
        );
    }
    for c in ['\u{202E}', '\u{2066}', '\u{200F}'] {
        assert!(!msg.contains(c), "{what}: a bidi control is left: {c:?}");
    }
}

#[test]
fn echoed_credentials_are_redacted_from_messages() {
    let idp = Idp::start();
    let echo = format!(
        "client_secret={SECRET}; Authorization: Basic {}; X-Api-Key: {HEADER_VALUE}",
        basic_value()
    );
    // An RFC 6749 error whose description echoes the request.
    let e = refusal(
        &idp,
        400,
        json!({"error": "invalid_request", "error_description": echo}),
        "client_secret_basic",
    );
    assert_eq!(e.status(), Status::OauthError);
    assert!(
        e.message().contains("[redacted]"),
        "no [redacted] mark (message withheld: it may hold the secret)"
    );
    assert_eq!(e.oauth_error(), Some("invalid_request"));
    assert_clean(&e, "error_description");
    // The same through client_secret_post, and a secret echoed in the code itself.
    let e = refusal(
        &idp,
        401,
        json!({"error": SECRET, "error_description": echo}),
        "client_secret_post",
    );
    assert_clean(&e, "error code");
    // A gateway's `message` on a 401 (Azure APIM style).
    let e = refusal(&idp, 401, json!({"message": echo}), "client_secret_post");
    assert_eq!(e.status(), Status::CredentialsRejected);
    assert!(
        e.message().contains("[redacted]"),
        "no [redacted] mark (message withheld: it may hold the secret)"
    );
    assert_clean(&e, "gateway message");
    // The echo cut by the length bound: the start of the secret is not left behind.
    // (Words, not one run of letters: the test harness takes a long run for a token.)
    let long = format!("{}{SECRET}", "xy ".repeat(97));
    let e = refusal(
        &idp,
        400,
        json!({"error": "invalid_request", "error_description": long}),
        "client_secret_post",
    );
    assert!(!e.message().contains(&SECRET[..8]), "a cut secret is left");
}

#[test]
fn bidi_controls_are_removed_from_messages() {
    let idp = Idp::start();
    let e = refusal(
        &idp,
        400,
        json!({"error": "invalid_request",
            "error_description": "user \u{202E}nimda\u{202C} \u{2066}x\u{2069}\u{200F}"}),
        "client_secret_post",
    );
    assert!(e.message().contains("user nimda x"), "{}", e.message());
    assert_clean(&e, "bidi");
}
