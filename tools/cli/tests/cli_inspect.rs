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
    // Nothing to inspect is a usage error (2); 1 means a fetch or check failed.
    for (args, stdin) in [
        (&[][..], "  \n"),
        (&["-"][..], ""),
        (&[" \u{a0} "][..], ""),
        (&["Bearer"][..], ""),
        (&[][..], "Bearer\u{a0}\u{3000}\n"),
    ] {
        let out = inspect(args, stdin);
        assert_eq!(out.status.code(), Some(2), "{args:?} {stdin:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("empty"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = inspect(&["--verify"], "");
    assert_eq!(out.status.code(), Some(2));
    let out = inspect(&["a", "b"], "");
    assert_eq!(out.status.code(), Some(2));
}

/// The token as copied from a web page: `Bearer`, a no-break space (2 bytes in UTF-8, so byte 7
/// falls inside it) and the token, on standard input and as an argument. This
/// panicked (exit 101) with the input in the panic message on stderr.
#[test]
fn unicode_spaces_around_the_token_neither_panic_nor_show_it() {
    let t = sample_jwt();
    for (prefix, suffix) in [
        ("Bearer\u{a0}", ""),
        ("bearer\u{a0}\u{a0}", "\u{a0}"),
        ("\u{feff}BEARER\u{3000}", "\u{2028}\n"),
        ("Authorization: Bearer\u{202f}", "\r\n"),
        ("\u{a0}", "\u{200b}"),
    ] {
        let input = format!("{prefix}{t}{suffix}");
        for out in [inspect(&[], &input), inspect(&[&input], "")] {
            let (stdout, stderr) = (
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
            );
            assert!(
                !stdout.contains(&t) && !stderr.contains(&t) && !stderr.contains(SIGNATURE),
                "the token was printed for {prefix:?}"
            );
            assert!(!stderr.contains("panicked"), "{prefix:?}: {stderr}");
            assert_eq!(out.status.code(), Some(0), "{prefix:?}: {stderr}");
            assert!(
                stdout.contains("vgs-key-7"),
                "decoded for {prefix:?}: {stdout}"
            );
        }
    }
    // Multi-byte characters where the prefix would be cut, and text that is not a token.
    for input in [
        "Bearé\u{a0}xyz",
        "Beare\u{e9}xyzabc",
        "\u{1f600}\u{1f600}",
        "ab\u{a0}cd",
    ] {
        let out = inspect(&[], input);
        assert_eq!(out.status.code(), Some(0), "{input:?}");
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    }
}

/// An argument that is not UTF-8 is a usage error, not a panic that quotes it.
#[test]
fn an_argument_that_is_not_text_is_a_usage_error_without_echo() {
    use std::os::unix::ffi::OsStrExt;
    let t = sample_jwt();
    let mut bytes = b"Bearer\xa0".to_vec();
    bytes.extend_from_slice(t.as_bytes());
    let out = Command::new(env!("CARGO_BIN_EXE_credvault"))
        .arg("inspect")
        .arg(std::ffi::OsStr::from_bytes(&bytes))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        !stderr.contains(SIGNATURE) && !String::from_utf8_lossy(&out.stdout).contains(SIGNATURE)
    );
}

/// A panic (a bug) prints a fixed message, never its payload, which could hold the input. Debug
/// builds panic on purpose with `CREDVAULT_TEST_PANIC` set, to test the hook.
#[test]
fn a_panic_prints_no_payload() {
    let payload = "eyJhbGciOiJFUzI1NiJ9.payload-that-could-be-a-token";
    let out = Command::new(env!("CARGO_BIN_EXE_credvault"))
        .args(["inspect", "--json"])
        .env("CREDVAULT_TEST_PANIC", payload)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(101), "{stderr}");
    assert!(stderr.contains("internal error"), "{stderr}");
    assert!(!stderr.contains(payload), "{stderr}");
    assert!(!stderr.contains("payload-that"), "{stderr}");
}

/// `--json` escapes C1 controls (U+0080 to U+009F, e.g. U+009B, a terminal's CSI), bidi controls
/// and line separators from the claims as `\\uXXXX`: the values are the same, the bytes on the
/// terminal are not control characters.
#[test]
fn json_escapes_c1_and_bidi_controls() {
    let header = r#"{"alg":"ES256","kid":"k\u009b31m"}"#;
    let claims =
        r#"{"sub":"a\u0085b\u009b2Jc","iss":"x\u202ey\u2066z\u2028w","x\u200fk":"\u061c\u007f"}"#;
    let t = format!(
        "{}.{}.{SIGNATURE}",
        B64URL.encode(header),
        B64URL.encode(claims)
    );
    let out = inspect(&["--json"], &t);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    for c in stdout.chars() {
        let raw_control = (c.is_control() && c != '\n')
            || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}'
                | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        assert!(!raw_control, "raw {c:?} in {stdout:?}");
    }
    assert!(
        stdout.contains("\\u009b") && stdout.contains("\\u202e"),
        "{stdout}"
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        v["claims"]["sub"], "a\u{85}b\u{9b}2Jc",
        "the values are unchanged"
    );
    assert_eq!(v["header"]["kid"], "k\u{9b}31m");
    assert_eq!(v["claims"]["x\u{200f}k"], "\u{61c}\u{7f}");
}

#[test]
fn decodes_a_client_assertion_and_says_what_it_is() {
    // A private_key_jwt assertion signed by the library, pasted alone or as the form field it
    // travels in: decoded like a token, labelled as a client assertion.
    let pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/keys/p256.pkcs8.pem"
    ))
    .unwrap();
    let key = credvault::jwt::AssertionKey::new(
        &pem,
        None,
        Some("k1".into()),
        credvault::jwt::Audience::TokenEndpoint,
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let jwt = key
        .sign("cv-client", "https://idp.example/token", now)
        .unwrap();
    let signature = jwt.rsplit('.').next().unwrap().to_string();
    for input in [
        jwt.to_string(),
        format!("grant_type=client_credentials&client_id=cv-client&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={}", *jwt),
    ] {
        let out = inspect(&[], &input);
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("client assertion"), "{text}");
        assert!(text.contains("cv-client") && text.contains("https://idp.example/token"), "{text}");
        assert!(!text.contains(&signature), "the signature was printed");
        let out = inspect(&["--json"], &input);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["kind"], "client_assertion", "{v}");
        assert_eq!(v["header"]["kid"], "k1");
    }
    // An access token is not labelled as one.
    let out = inspect(&["--json"], &sample_jwt());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "access_token", "{v}");
}
