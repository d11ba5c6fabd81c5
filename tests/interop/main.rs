//! Interop: credvault against identity servers that someone else wrote.
//!
//! The local identity provider (`credvault idp`) speaks every dialect as we read the specs, so a
//! misreading would sit on both sides of the other tests. These tests run the library against
//! Keycloak (what VGS runs) and oidc-provider (the certified OpenID Connect server for Node), and
//! check what reached the wire (`wire::Recorder`) and what the servers say about the tokens
//! (their introspection endpoints, RFC 7662).
//!
//! `tests/interop/run.sh` installs and starts the servers and runs these tests with their
//! addresses in the environment; a plain `cargo test` lists them as ignored.

mod keycloak;
mod oidc_provider;
mod private_key_jwt;
mod wire;

use std::collections::BTreeSet;

use base64::Engine;
use credvault::{Error, Provider, Status, Token};
use serde_json::Value;

pub const IGNORED: &str = "needs the interop servers: bash tests/interop/run.sh";

/// A variable that `run.sh` sets.
pub fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run these tests with bash tests/interop/run.sh")
    })
}

/// A provider from a JSON config (`proxy` off: loopback only, whatever the environment says).
pub fn provider(mut config: Value) -> Provider {
    config["proxy"] = "none".into();
    Provider::new(&config.to_string())
        .unwrap_or_else(|e| panic!("config refused: {}: {}", e.status().name(), e.message()))
}

/// A token, or a failure that shows the status and the (secret-free) message.
pub fn token_ok(p: &Provider) -> Token {
    p.token()
        .unwrap_or_else(|e| panic!("token: {}: {}", e.status().name(), e.message()))
}

/// The error of a fetch that must fail.
pub fn token_err(p: &Provider) -> Error {
    match p.token() {
        Ok(t) => panic!("expected an error, got a token ({t:?})"),
        Err(e) => e,
    }
}

/// Asserts `e` has `status` and its message contains `needle` (the OAuth error code).
pub fn assert_error(e: &Error, status: Status, needle: &str) {
    assert_eq!(
        e.status(),
        status,
        "status of error with message {:?}",
        e.message()
    );
    assert!(
        e.message().contains(needle),
        "message {:?} should name {needle:?}",
        e.message()
    );
}

/// A secret made for this run: random, with the characters that form encoding must escape.
pub fn reserved_secret() -> String {
    let mut bytes = [0u8; 12];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).unwrap();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}+{}/{}={}&{}",
        &hex[..5],
        &hex[5..10],
        &hex[10..15],
        &hex[15..20],
        &hex[20..]
    )
}

/// `application/x-www-form-urlencoded` encoding, written here independently of the library.
pub fn form_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Whether `sent` (one half of a Basic credential as it was on the wire) is `value` encoded as
/// RFC 6749 section 2.3.1 requires: form-urlencoded, so no reserved character is left bare.
/// Compared, never printed.
pub fn rfc6749_encoded(sent: &str, value: &str) -> bool {
    !sent.contains(['+', '/', '=', '&', ':']) && wire::form_decode(sent.as_bytes()) == value
}

/// Asks an RFC 7662 introspection endpoint about `token`, authenticating as `client_id` with
/// Basic (RFC 6749 encoding). Returns the server's JSON answer.
pub fn introspect(url: &str, client_id: &str, client_secret: &str, token: &str) -> Value {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .build()
        .into();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        form_encode(client_id),
        form_encode(client_secret)
    ));
    let body = format!("token={}&token_type_hint=access_token", form_encode(token));
    let resp = agent
        .post(url)
        .header("Authorization", &format!("Basic {basic}"))
        .content_type("application/x-www-form-urlencoded")
        .send(body.as_bytes())
        .expect("introspection request");
    let status = resp.status().as_u16();
    let text = resp.into_body().read_to_string().unwrap_or_default();
    assert_eq!(status, 200, "introspection answered HTTP {status}");
    serde_json::from_str(&text).expect("introspection answer is JSON")
}

/// The scopes in an introspection answer's `scope`.
pub fn scopes(answer: &Value) -> BTreeSet<String> {
    answer["scope"]
        .as_str()
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// Checks an introspection answer: the token is active and was issued to `client_id`.
pub fn assert_active_for(answer: &Value, client_id: &str) {
    assert_eq!(
        answer["active"],
        Value::Bool(true),
        "token not active: {answer}"
    );
    assert_eq!(
        answer["client_id"].as_str(),
        Some(client_id),
        "token issued to another client: {answer}"
    );
}
