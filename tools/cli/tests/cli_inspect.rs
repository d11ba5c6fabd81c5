//! `credvault inspect`: the command as a user runs it (standard input, arguments, exit codes),
//! on a token made here and on a real token from the local identity provider.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine as _;

fn inspect(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_credvault"))
        .arg("inspect")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn credvault inspect");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

const SIGNATURE: &str = "U0lHTkFUVVJFLW5ldmVyLXByaW50ZWQ";

fn sample_jwt() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = r#"{"alg":"ES256","kid":"vgs-key-7","typ":"JWT"}"#;
    let claims = format!(
        r#"{{"iss":"http://127.0.0.1/realms/vgs","sub":"service-account","aud":"payments","scope":"cards:read","iat":{},"exp":{}}}"#,
        now - 60,
        now + 240
    );
    format!(
        "{}.{}.{SIGNATURE}",
        B64URL.encode(header),
        B64URL.encode(claims)
    )
}

#[test]
fn decodes_from_stdin_without_printing_the_token() {
    let t = sample_jwt();
    let out = inspect(&[], &format!("Bearer {t}\n"));
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("signature NOT verified"), "{text}");
    assert!(
        text.contains("ES256") && text.contains("vgs-key-7"),
        "{text}"
    );
    assert!(text.contains("http://127.0.0.1/realms/vgs") && text.contains("cards:read"));
    assert!(text.contains(" left"), "expiry with time left: {text}");
    assert!(
        !text.contains(SIGNATURE) && !text.contains(&t),
        "token or signature printed"
    );

    let out = inspect(&["-", "--json"], &t);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["format"], "jwt");
    assert_eq!(v["verified"], false);
    assert_eq!(v["header"]["kid"], "vgs-key-7");
    assert_eq!(v["claims"]["sub"], "service-account");
    assert_eq!(v["expired"], false);
    let left = v["times"]["exp"]["seconds_from_now"].as_i64().unwrap();
    assert!((200..=240).contains(&left), "{left}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(SIGNATURE));
}

#[test]
fn a_real_token_from_the_identity_provider_is_reported_opaque() {
    let idp = common::Idp::start();
    let p = credvault::Provider::new(&format!(
        r#"{{"preset":"vgs","token_url":"{}","client_id":"demo-vgs-client","client_secret":"demo-vgs-secret"}}"#,
        idp.url("/vgs/auth/realms/vgs/protocol/openid-connect/token")
    ))
    .unwrap();
    let token = p.token().unwrap();
    let out = inspect(&["--json"], token.secret());
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["format"], "opaque");
    assert_eq!(v["length"], token.secret().len());
    assert!(!String::from_utf8_lossy(&out.stdout).contains(token.secret()));
}

#[test]
fn usage_and_input_errors_have_their_exit_codes() {
    let out = inspect(&["--help"], "");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("exit codes"));
    let out = inspect(&[], "  \n");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty"));
    let out = inspect(&["--verify"], "");
    assert_eq!(out.status.code(), Some(2));
    let out = inspect(&["a", "b"], "");
    assert_eq!(out.status.code(), Some(2));
}
