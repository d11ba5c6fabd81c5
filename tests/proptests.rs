//! Property tests of what sees untrusted input: the parsers behind `credvault::fuzzing` and the C
//! ABI with arbitrary arguments. Nothing panics, no secret or token reaches an error message,
//! valid input round-trips. The fuzz targets in `tests/fuzz/` drive the same entry points for far
//! longer; this file keeps a fast sample of it in every `cargo test`.
//!
//! `PROPTEST_CASES=N` sets the number of cases of each property (default 256).

mod common;

use std::ffi::{c_char, CStr, CString};
use std::ptr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use credvault::{ffi, fuzzing, Status};
use proptest::prelude::*;
use proptest::sample::{select, subsequence};
use serde_json::{json, Map, Value};

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256),
        // Failures are kept as files under tests/fuzz/regressions/, not proptest's own files.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies.

/// Every key the parsers look for: config keys, token response fields, error and discovery fields.
const KNOWN_KEYS: &[&str] = &[
    "preset",
    "token_url",
    "issuer",
    "client_id",
    "client_secret",
    "auth_method",
    "basic_encoding",
    "scope",
    "headers",
    "timeout_ms",
    "deadline_ms",
    "refresh_ratio",
    "refresh_jitter",
    "expiry_margin_ms",
    "default_lifetime_s",
    "cooldown_ms",
    "discovery_ttl_s",
    "ca_only",
    "proxy",
    "no_proxy",
    "access_token",
    "token_type",
    "expires_in",
    "expires_on",
    "ext_expires_in",
    "not_before",
    "resource",
    "refresh_token",
    "error",
    "error_description",
    "message",
    "token_endpoint",
];

/// The config keys that name files: given only values that are no path, so that a generated
/// config never reads a device such as /dev/zero.
const PATH_KEYS: &[&str] = &["ca_file", "client_cert_file", "client_key_file"];

/// Strings the parsers compare against, so that generated values often take the valid branches.
const INTERESTING: &[&str] = &[
    "",
    "Bearer",
    "bearer",
    "DPoP",
    "vgs",
    "vitesse-uk",
    "vipps-test",
    "apiture",
    "client_secret_basic",
    "client_secret_post",
    "headers",
    "plain",
    "rfc6749",
    "none",
    "http://127.0.0.1:9/t",
    "https://idp.example/oidc/",
    "https://idp.example/oidc/token",
    "http://idp.example/token",
    "invalid_client",
    "invalid_scope",
    "slow_down",
    "3600",
    " 60 ",
    "-1",
    "1e309",
    "NaN",
    "abc\r\ndef",
];

fn any_string() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::collection::vec(any::<char>(), 0..24).prop_map(String::from_iter),
        2 => select(INTERESTING).prop_map(str::to_string),
        1 => "-?[0-9]{1,22}(\\.[0-9]{1,6})?([eE][+-]?[0-9]{1,3})?",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (0u64..200_000).prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        any_string().prop_map(Value::String),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(KNOWN_KEYS).prop_map(str::to_string),
        1 => any_string(),
    ]
}

/// Any JSON value up to four levels deep, objects keyed mostly by the keys the parsers read.
fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A JSON object with the expected keys holding values of any type, and random other keys.
fn json_object() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(key(), json_value(), 0..10)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

/// A valid config with up to four fields replaced by arbitrary values, so that the validation of
/// each field sees wrong types and wrong values behind an otherwise valid config.
fn mutated_config() -> impl Strategy<Value = Value> {
    let base = prop_oneof![
        Just(json!({"token_url": "http://127.0.0.1:9/t", "client_id": "c", "client_secret": "s"})),
        Just(json!({"preset": "vgs", "client_id": "c", "client_secret": "s"})),
        Just(json!({"preset": "vitesse-uk", "client_id": "client-1", "client_secret": "secret-1"})),
        Just(
            json!({"preset": "vipps-test", "client_id": "c", "client_secret": "s",
            "headers": {"Ocp-Apim-Subscription-Key": "k", "Merchant-Serial-Number": "123456"}})
        ),
        Just(
            json!({"issuer": "https://idp.example/oidc/", "client_id": "c", "client_secret": "s",
            "auth_method": "client_secret_post", "scope": "a b", "proxy": "none"})
        ),
    ];
    let overrides = prop::collection::vec((select(KNOWN_KEYS), json_value()), 0..4);
    (base, overrides).prop_map(|(mut base, overrides)| {
        let obj = base.as_object_mut().expect("object");
        for (k, v) in overrides {
            obj.insert(k.to_string(), v);
        }
        for k in PATH_KEYS {
            obj.remove(*k);
        }
        base
    })
}

/// Like `mutated_config` for token responses.
fn mutated_token_response() -> impl Strategy<Value = Value> {
    let base = prop_oneof![
        Just(
            json!({"access_token": "abc", "token_type": "Bearer", "expires_in": 3600, "scope": "API"})
        ),
        Just(
            json!({"token_type": "Bearer", "expires_in": "3600", "ext_expires_in": "3600",
            "expires_on": "4102444800", "not_before": "1700000000", "resource": "00000002-0000",
            "access_token": "abc"})
        ),
        Just(
            json!({"access_token": "abc", "token_type": "bearer", "expires_in": 300,
            "refresh_expires_in": 0, "refresh_token": "r", "not-before-policy": 0})
        ),
    ];
    let overrides = prop::collection::vec((select(KNOWN_KEYS), json_value()), 0..4);
    (base, overrides).prop_map(|(mut base, overrides)| {
        let obj = base.as_object_mut().expect("object");
        for (k, v) in overrides {
            obj.insert(k.to_string(), v);
        }
        base
    })
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..512)
}

/// A secret-looking value: long enough that no message text contains it by chance.
fn secret() -> impl Strategy<Value = String> {
    "[A-Za-z0-9]{12,40}"
}

/// Every parser entry point on one input.
fn all_parsers(input: &[u8]) {
    let _ = fuzzing::config(input);
    let _ = fuzzing::token_response(input);
    let _ = fuzzing::error_response(400, input);
    let _ = fuzzing::error_response(503, input);
    let _ = fuzzing::discovery(input);
    let _ = fuzzing::retry_after(&String::from_utf8_lossy(input));
    if let Err(e) = fuzzing::service_account(&String::from_utf8_lossy(input)) {
        assert!(!e.chars().any(char::is_control), "{e:?}");
    }
}

#[path = "fuzz/targets.rs"]
mod targets;

// ---------------------------------------------------------------------------------------------
// No parser panics, and each keeps the invariants the fuzz targets check.

proptest! {
    #![proptest_config(config())]

    #[test]
    fn parsers_survive_arbitrary_bytes(input in bytes()) {
        all_parsers(&input);
        for (_, target) in targets::TARGETS {
            target(&input);
        }
    }

    #[test]
    fn parsers_survive_arbitrary_json(value in prop_oneof![json_value(), json_object()]) {
        let text = value.to_string();
        all_parsers(text.as_bytes());
        for (_, target) in targets::TARGETS {
            target(text.as_bytes());
        }
    }

    #[test]
    fn config_survives_mutated_configs(value in mutated_config()) {
        let text = value.to_string();
        if let Err(e) = fuzzing::config(text.as_bytes()) {
            prop_assert_eq!(e.status(), Status::InvalidConfig);
        }
        targets::ffi_config(text.as_bytes());
    }

    #[test]
    fn token_response_survives_mutated_responses(value in mutated_token_response()) {
        targets::token_response(value.to_string().as_bytes());
    }

    #[test]
    fn discovery_survives_mutated_metadata(
        issuer in prop_oneof![Just(json!("https://idp.example/oidc/")), json_value()],
        endpoint in prop_oneof![
            select(INTERESTING).prop_map(Value::from),
            "https://[a-z.]{1,12}(:[0-9]{1,5})?/[ -~]{0,20}".prop_map(Value::from),
            json_value(),
        ],
        extra in json_object(),
    ) {
        let mut doc = extra;
        doc["issuer"] = issuer;
        doc["token_endpoint"] = endpoint;
        targets::discovery(doc.to_string().as_bytes());
    }
}

// ---------------------------------------------------------------------------------------------
// Secrets never reach an error message.

/// Places where a secret can land in a config by mistake, each of which makes the config invalid.
fn misplaced(s: &str) -> Vec<(&'static str, Value)> {
    vec![
        ("timeout_ms", json!(s)),
        ("deadline_ms", json!(s)),
        ("refresh_ratio", json!(s)),
        ("ca_only", json!(s)),
        ("auth_method", json!(s)),
        ("basic_encoding", json!(s)),
        ("preset", json!(s)),
        ("scope", json!(format!("{s}\""))),
        ("headers", json!({"X-Num": 5, "X-Secret": format!("{s}\n")})),
        ("headers", json!({"X-Secret": format!("{s}\r\n")})),
        ("headers", json!({"X-List": [s]})),
        ("headers", json!(s)),
        ("token_url", json!(s)),
        ("token_url", json!({ "url": s })),
        ("issuer", json!([s])),
        ("proxy", json!(s)),
        ("no_proxy", json!({ "a": s })),
        ("client_id", json!([s])),
        ("client_id", json!(format!("{s}\u{7}"))),
        ("client_secret", json!([s])),
        ("client_secret", json!({ "value": s })),
        ("client_secret", json!(format!("{s}\u{0}"))),
        ("client_secret", json!(format!("{s}{}", "x".repeat(8200)))),
        ("x-unknown", json!(s)),
        ("Client_Secret", json!(s)),
    ]
}

/// `vault_provider_new_ex` on `json`: the status and the message it wrote.
fn ffi_new(json: &str) -> (Status, String) {
    let c = CString::new(json).expect("no NUL");
    let mut handle = 0u64;
    let mut err = vec![0 as c_char; 2048];
    // SAFETY: NUL-terminated string, writable handle, err.len() writable bytes.
    let status =
        unsafe { ffi::vault_provider_new_ex(c.as_ptr(), &mut handle, err.as_mut_ptr(), err.len()) };
    if status == Status::Ok {
        assert_eq!(ffi::vault_provider_free(handle), 0);
    }
    // SAFETY: err is NUL-terminated within its length (written by the call, or zeroed).
    let msg = unsafe { CStr::from_ptr(err.as_ptr()) };
    (status, msg.to_string_lossy().into_owned())
}

fn last_error() -> String {
    let p = ffi::vault_last_error();
    if p.is_null() {
        return String::new();
    }
    // SAFETY: a NUL-terminated string owned by the library, valid until the next call.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn config_errors_never_show_the_secret(
        s in secret(),
        base in 0usize..4,
        picks in subsequence((0..25).collect::<Vec<usize>>(), 1..=4),
        shuffle in any::<bool>(),
    ) {
        let mut cfg = match base {
            0 => json!({"token_url": "http://127.0.0.1:9/t", "client_id": "c"}),
            1 => json!({"preset": "vgs", "client_id": "c"}),
            2 => json!({"preset": "vitesse-uk", "client_id": "client-1"}),
            _ => json!({"preset": "vipps-test", "client_id": "c",
                "headers": {"Ocp-Apim-Subscription-Key": s}}),
        };
        cfg["client_secret"] = json!(s);
        let places = misplaced(&s);
        let mut picks = picks;
        if shuffle {
            picks.reverse();
        }
        for i in picks {
            let (k, v) = places[i].clone();
            cfg[k] = v;
        }
        let text = cfg.to_string();
        let err = fuzzing::config(text.as_bytes()).expect_err("every misplacement is invalid");
        prop_assert_eq!(err.status(), Status::InvalidConfig);
        for shown in [err.message().to_string(), err.to_string(), format!("{err:?}")] {
            prop_assert!(!shown.contains(&s), "secret in {shown:?}");
        }
        let (status, msg) = ffi_new(&text);
        prop_assert_eq!(status, Status::InvalidConfig);
        prop_assert!(!msg.contains(&s), "secret in {msg:?}");
        let last = last_error();
        prop_assert!(!last.is_empty() && !last.contains(&s), "secret in {last:?}");
    }

    #[test]
    fn invalid_tokens_never_show_in_errors(
        head in "[A-Za-z0-9]{12,30}",
        bad in prop_oneof![
            select(vec![" ", "\t", "\n", "\r\n", "\u{0}", "\u{7f}", "\u{1b}[0m", "é", "\u{2028}", "\u{feff}"])
                .prop_map(str::to_string),
            any::<char>().prop_filter("not a token character", |c| !(' '..='~').contains(c) || *c == ' ')
                .prop_map(String::from),
        ],
        tail in "[A-Za-z0-9]{12,30}",
        token_type in prop_oneof![Just(json!("Bearer")), json_value()],
        expires_in in prop_oneof![Just(json!(3600)), json_value()],
    ) {
        let token = format!("{head}{bad}{tail}");
        let body = json!({"access_token": token, "token_type": token_type, "expires_in": expires_in});
        let err = match fuzzing::token_response(body.to_string().as_bytes()) {
            Ok(_) => return Err(TestCaseError::fail("an invalid token was accepted")),
            Err(e) => e,
        };
        prop_assert_eq!(err.status(), Status::MalformedResponse);
        let shown = format!("{} {err:?}", err.message());
        for part in [&token, &head, &tail] {
            prop_assert!(!shown.contains(part.as_str()), "token in {shown:?}");
        }
    }

    #[test]
    fn valid_tokens_never_show_in_errors_about_other_fields(
        token in "[!-~]{20,200}",
        token_type in json_value(),
        expires_in in json_value(),
        expires_on in json_value(),
    ) {
        let body = json!({"access_token": token, "token_type": token_type,
            "expires_in": expires_in, "expires_on": expires_on});
        if let Err(e) = fuzzing::token_response(body.to_string().as_bytes()) {
            prop_assert_eq!(e.status(), Status::MalformedResponse);
            prop_assert!(!e.message().contains(&token), "token in {:?}", e.message());
        }
    }

    #[test]
    fn error_descriptions_come_out_without_control_characters(
        status in 100u16..1000,
        code in prop_oneof![
            select(vec!["invalid_client", "unauthorized_client", "invalid_scope", "slow_down",
                "invalid_request", "invalid_grant"]).prop_map(str::to_string),
            prop::collection::vec(any::<char>(), 0..80).prop_map(String::from_iter),
        ],
        before in prop::collection::vec(any::<char>(), 0..400).prop_map(String::from_iter),
        ctl in select(vec!["\r\n", "\n", "\r", "\u{0}", "\u{1b}[31m", "\u{85}", "\t"]),
        after in prop::collection::vec(any::<char>(), 0..40).prop_map(String::from_iter),
        extra in json_object(),
    ) {
        let mut body = extra;
        body["error"] = json!(code);
        body["error_description"] = json!(format!("{before}{ctl}{after}"));
        let e = fuzzing::error_response(status, body.to_string().as_bytes())
            .expect("an OAuth error body");
        prop_assert!(!e.message().chars().any(char::is_control), "{:?}", e.message());
        prop_assert!(e.message().chars().count() <= 420, "{:?}", e.message());
        let expected = match code.as_str() {
            "invalid_client" | "unauthorized_client" => Status::CredentialsRejected,
            "invalid_scope" => Status::ScopeRejected,
            "slow_down" => Status::RateLimited,
            _ => Status::OauthError,
        };
        prop_assert_eq!(e.status(), expected);
        let http = format!("HTTP {status}");
        prop_assert!(e.message().contains(&http), "{:?}", e.message());
    }
}

// ---------------------------------------------------------------------------------------------
// Valid input round-trips.

proptest! {
    #![proptest_config(config())]

    /// Any secret YAML can hold on one line, written as a double-quoted scalar (JSON's escaping,
    /// which YAML 1.2 reads), as a single-quoted one (`''`) and, where it is one, as a plain one,
    /// with or without a comment after it, reads back as it was; a message never
    /// holds it.
    #[test]
    fn vgs_credentials_scalars_round_trip(
        secret in "[^\\p{Cc}\\x{FEFF}\\x{FFFE}\\x{FFFF}]{1,64}",
        plain in "[A-Za-z0-9][A-Za-z0-9_.:/+=#-]{0,40}[A-Za-z0-9]",
        comment in select(vec!["", " # a comment", " # it's \"quoted\"", "   #'"]),
    ) {
        let forms = [
            (serde_json::to_string(&secret).unwrap(), secret.clone()),
            (format!("'{}'", secret.replace('\'', "''")), secret.clone()),
            (plain.clone(), plain.clone()),
        ];
        for (written, expected) in forms {
            let yaml = format!(
                "kind: ServiceAccount\ndata:\n  clientId: AC1\n  clientSecret: {written}{comment}\n  scopes:\n  - cards:read\n"
            );
            let (id, got, scopes) = fuzzing::service_account(&yaml)
                .map_err(|e| TestCaseError::fail(format!("{written}: {e}")))?;
            prop_assert_eq!(id, "AC1");
            prop_assert_eq!(got, expected);
            prop_assert_eq!(scopes, vec!["cards:read".to_string()]);
        }
        // Broken: the secret never shows in the message.
        let yaml = format!("kind: ServiceAccount\ndata:\n  clientSecret: \"{plain}\n");
        let e = fuzzing::service_account(&yaml).unwrap_err();
        prop_assert!(!e.contains(&plain), "{}", e);
    }

    #[test]
    fn valid_token_responses_round_trip(
        token in "[!-~]{1,2000}",
        token_type in select(vec![Some("Bearer"), Some("bearer"), Some("BEARER"), None, Some("DPoP")]),
        // DPoP (or any type but Bearer) is refused: credvault cannot make the per-request proof.
        secs in 1u32..=86_400,
        as_string in any::<bool>(),
        pad in select(vec!["", " ", "\t", "  "]),
        vipps_extras in any::<bool>(),
        leading_ws in select(vec!["", " ", "\n", "\r\n\t "]),
    ) {
        let mut body = Map::new();
        body.insert("access_token".into(), json!(token));
        if let Some(t) = token_type {
            body.insert("token_type".into(), json!(t));
        }
        let expires_in = if as_string { json!(format!("{pad}{secs}{pad}")) } else { json!(secs) };
        body.insert("expires_in".into(), expires_in);
        if vipps_extras {
            body.insert("ext_expires_in".into(), json!(secs.to_string()));
            body.insert("expires_on".into(), json!("1"));
            body.insert("not_before".into(), json!("1700000000"));
            body.insert("resource".into(), json!("00000002-0000-0000-c000-000000000000"));
        }
        let text = format!("{leading_ws}{}", Value::Object(body));
        if token_type == Some("DPoP") {
            let e = fuzzing::token_response(text.as_bytes()).expect_err("DPoP is refused");
            prop_assert_eq!(e.status(), Status::MalformedResponse);
            return Ok(());
        }
        let (len, ty, lifetime) = fuzzing::token_response(text.as_bytes())
            .map_err(|e| TestCaseError::fail(format!("{e:?} for {text}")))?;
        prop_assert_eq!(len, token.len());
        prop_assert_eq!(ty, "Bearer");
        prop_assert_eq!(lifetime, f64::from(secs));
    }

    #[test]
    fn expires_on_gives_the_remaining_lifetime(
        secs in 10u64..=86_400,
        as_string in any::<bool>(),
    ) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let on = now + secs;
        let on = if as_string { json!(on.to_string()) } else { json!(on) };
        let body = json!({"access_token": "tok", "token_type": "Bearer", "expires_on": on});
        let (_, _, lifetime) = fuzzing::token_response(body.to_string().as_bytes())
            .map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert!((lifetime - secs as f64).abs() <= 2.0, "{lifetime} for {secs}");
    }

    #[test]
    fn retry_after_seconds(secs in any::<u32>(), pad in select(vec!["", " ", "\t", "  "])) {
        let got = fuzzing::retry_after(&format!("{pad}{secs}{pad}"));
        prop_assert_eq!(got, Some(Duration::from_secs(u64::from(secs).min(86_400))));
    }

    #[test]
    fn retry_after_large_seconds(secs in any::<u64>()) {
        let got = fuzzing::retry_after(&secs.to_string());
        prop_assert_eq!(got, Some(Duration::from_secs(secs.min(86_400))));
    }

    #[test]
    fn retry_after_garbage_never_panics(text in any_string()) {
        if let Some(d) = fuzzing::retry_after(&text) {
            prop_assert!(d <= Duration::from_secs(86_400) || text.contains("GMT"), "{text:?} -> {d:?}");
        }
    }

    #[test]
    fn retry_after_dates(
        weekday in select(vec!["Sun", "Mon", "Tue", "Xyz"]),
        day in 0u32..40,
        month in select(vec!["Jan", "Feb", "Mar", "Jun", "Dec", "Foo"]),
        year in prop_oneof![1960u64..2200, 2200u64..=9999],
        h in 0u32..26, m in 0u32..62, s in 0u32..62,
    ) {
        let text = format!("{weekday}, {day:02} {month} {year} {h:02}:{m:02}:{s:02} GMT");
        let got = fuzzing::retry_after(&text);
        let valid = (1..=31).contains(&day) && month != "Foo" && year >= 1970
            && h <= 23 && m <= 59 && s <= 60;
        prop_assert_eq!(got.is_some(), valid, "{}", text);
        if year < 2020 {
            prop_assert!(got.is_none_or(|d| d.is_zero()), "a past date waits 0: {} -> {:?}", text, got);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The C ABI with arbitrary arguments.

/// Whether `handle` could name a provider this process created (generation from 1, a small slot).
fn could_be_live(handle: u64) -> bool {
    handle >> 32 != 0 && (handle & 0xFFFF_FFFF) < 1 << 16
}

/// A handle that names no provider: generation 0, a slot past the table's limit, or random.
fn dead_handle() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(u64::MAX),
        any::<u32>().prop_map(u64::from),
        any::<u64>().prop_map(|h| h | 1 << 31),
        any::<u64>().prop_filter("not a live handle", |h| !could_be_live(*h)),
    ]
}

/// Checks the message the library wrote into an error buffer of `len` bytes followed by canaries.
fn check_err_buf(buf: &[c_char], len: usize, expect_message: bool) {
    assert!(
        buf[len..].iter().all(|&b| b == 0x55),
        "wrote past err_len {len}"
    );
    if len == 0 {
        assert!(buf.iter().all(|&b| b == 0x55), "wrote into a 0-byte buffer");
        return;
    }
    let nul = buf[..len]
        .iter()
        .position(|&b| b == 0)
        .expect("NUL-terminated");
    let bytes: Vec<u8> = buf[..nul].iter().map(|&b| b as u8).collect();
    assert!(std::str::from_utf8(&bytes).is_ok(), "not UTF-8: {bytes:?}");
    if expect_message && len > 1 {
        assert!(nul > 0, "empty message");
    }
}

fn err_buf(len: usize) -> Vec<c_char> {
    vec![0x55 as c_char; len + 16]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ffi_new_with_arbitrary_bytes(
        input in prop_oneof![bytes(), json_object().prop_map(|v| v.to_string().into_bytes()),
            mutated_config().prop_map(|v| v.to_string().into_bytes())],
        err_len in prop_oneof![Just(0usize), 1usize..8, 8usize..300],
        null_err in any::<bool>(),
        simple in any::<bool>(),
    ) {
        let end = input.iter().position(|&b| b == 0).unwrap_or(input.len());
        let c = CString::new(&input[..end]).unwrap();
        let expected_config = std::str::from_utf8(&input[..end])
            .map_err(|_| ())
            .and_then(|t| fuzzing::config(t.as_bytes()).map_err(|_| ()));
        let (status, handle) = if simple {
            // SAFETY: a NUL-terminated string.
            let h = unsafe { ffi::vault_provider_new(c.as_ptr()) };
            (ffi::vault_last_status(), h)
        } else {
            let mut handle = 0u64;
            let mut err = err_buf(err_len);
            let buf = if null_err { ptr::null_mut() } else { err.as_mut_ptr() };
            // SAFETY: NUL-terminated string, writable handle, err_len writable bytes or NULL.
            let status = unsafe { ffi::vault_provider_new_ex(c.as_ptr(), &mut handle, buf, err_len) };
            if null_err {
                prop_assert!(err.iter().all(|&b| b == 0x55));
            } else {
                check_err_buf(&err, err_len, status != Status::Ok);
            }
            prop_assert_eq!(ffi::vault_last_status(), status);
            (status, handle)
        };
        match status {
            Status::Ok => {
                prop_assert!(expected_config.is_ok());
                prop_assert_ne!(handle, 0);
                prop_assert!(ffi::vault_last_error().is_null());
                prop_assert_eq!(ffi::vault_provider_free(handle), 0);
                prop_assert_eq!(ffi::vault_provider_free(handle), Status::InvalidHandle as i32);
                prop_assert_eq!(ffi::vault_invalidate(handle), Status::InvalidHandle as i32);
            }
            Status::InvalidConfig | Status::InvalidArgument => {
                prop_assert!(expected_config.is_err());
                prop_assert_eq!(handle, 0);
                prop_assert!(!ffi::vault_last_error().is_null());
            }
            other => return Err(TestCaseError::fail(format!("status {other:?}"))),
        }
    }

    #[test]
    fn ffi_calls_on_dead_handles(
        handle in dead_handle(),
        buf_len in 0usize..64,
        null_buf in any::<bool>(),
        null_out_len in any::<bool>(),
        err_len in prop_oneof![Just(0usize), 1usize..4, 4usize..200],
        token in prop::option::of(bytes()),
        authorization in any::<bool>(),
    ) {
        let invalid = Status::InvalidHandle as i32;
        prop_assert_eq!(ffi::vault_invalidate(handle), invalid);
        prop_assert_eq!(ffi::vault_last_status(), Status::InvalidHandle);
        prop_assert!(!last_error().is_empty());
        prop_assert_eq!(ffi::vault_provider_free(handle), invalid);
        prop_assert!(ffi::vault_get_token(handle).is_null());
        prop_assert_eq!(ffi::vault_last_status(), Status::InvalidHandle);
        prop_assert!(ffi::vault_get_authorization(handle).is_null());

        let mut buf = vec![0x55 as c_char; buf_len + 16];
        let mut out_len = usize::MAX;
        let mut err = err_buf(err_len);
        let buf_ptr = if null_buf { ptr::null_mut() } else { buf.as_mut_ptr() };
        let out_ptr = if null_out_len { ptr::null_mut() } else { &mut out_len as *mut usize };
        // SAFETY: buf is NULL or buf_len (+16) writable bytes; out_len and err likewise.
        let status = unsafe {
            if authorization {
                ffi::vault_get_authorization_into(handle, buf_ptr, buf_len, out_ptr, err.as_mut_ptr(), err_len)
            } else {
                ffi::vault_get_token_into(handle, buf_ptr, buf_len, out_ptr, err.as_mut_ptr(), err_len)
            }
        };
        let expected = if null_buf && buf_len > 0 { Status::InvalidArgument } else { Status::InvalidHandle };
        prop_assert_eq!(status, expected);
        prop_assert_eq!(ffi::vault_last_status(), expected);
        prop_assert!(buf.iter().all(|&b| b == 0x55), "token buffer written");
        prop_assert_eq!(out_len, usize::MAX);
        check_err_buf(&err, err_len, true);

        let mut dummy: c_char = 0;
        let mut out: *mut c_char = &mut dummy;
        let mut err = err_buf(err_len);
        // SAFETY: out is writable; err is err_len (+16) writable bytes.
        let status = unsafe { ffi::vault_get_token_ex(handle, &mut out, err.as_mut_ptr(), err_len) };
        prop_assert_eq!(status, Status::InvalidHandle);
        prop_assert!(out.is_null());
        check_err_buf(&err, err_len, true);

        let token = token.map(|t| {
            let end = t.iter().position(|&b| b == 0).unwrap_or(t.len());
            CString::new(&t[..end]).unwrap()
        });
        let mut err = err_buf(err_len);
        // SAFETY: token is NULL or NUL-terminated; err is err_len (+16) writable bytes.
        let status = unsafe {
            ffi::vault_invalidate_token(
                handle,
                token.as_ref().map_or(ptr::null(), |t| t.as_ptr()),
                err.as_mut_ptr(),
                err_len,
            )
        };
        prop_assert_eq!(status, Status::InvalidHandle);
        check_err_buf(&err, err_len, true);
    }

    #[test]
    fn ffi_calls_on_any_handle(handle in any::<u64>()) {
        // Random handles: InvalidHandle unless one happens to name a provider alive right now.
        let status = ffi::vault_invalidate(handle);
        prop_assert!(status == Status::InvalidHandle as i32 || (could_be_live(handle) && status == 0));
    }

    #[test]
    fn ffi_status_names(status in prop_oneof![any::<i32>(), -2i32..=100]) {
        let p = ffi::vault_status_name(status);
        prop_assert!(!p.is_null());
        // SAFETY: a static NUL-terminated string.
        let name = unsafe { CStr::from_ptr(p) }.to_str().unwrap();
        let known = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 99].contains(&status);
        if known {
            prop_assert!(name.starts_with("VAULT_STATUS_") && name != "VAULT_STATUS_UNKNOWN", "{}", name);
        } else {
            prop_assert_eq!(name, "VAULT_STATUS_UNKNOWN");
        }
    }
}

/// Freed handles stay invalid, whatever is created after them.
#[test]
fn ffi_freed_handles_stay_dead() {
    let cfg =
        CString::new(r#"{"token_url":"http://127.0.0.1:9/t","client_id":"c","client_secret":"s"}"#)
            .unwrap();
    let mut freed = Vec::new();
    for _ in 0..64 {
        // SAFETY: a NUL-terminated string.
        let h = unsafe { ffi::vault_provider_new(cfg.as_ptr()) };
        assert_ne!(h, 0, "{}", last_error());
        assert_eq!(ffi::vault_provider_free(h), 0);
        freed.push(h);
        for &old in &freed {
            assert_eq!(ffi::vault_invalidate(old), Status::InvalidHandle as i32);
            assert_eq!(ffi::vault_provider_free(old), Status::InvalidHandle as i32);
        }
    }
}

/// A live provider whose endpoint refuses connections: any buffer length, NULL or not, gets a
/// network status (or the argument error), a well-formed message, and an untouched buffer.
#[test]
fn ffi_get_into_a_failing_provider() {
    let cfg = CString::new(
        r#"{"token_url":"http://127.0.0.1:9/t","client_id":"c","client_secret":"s","deadline_ms":20,"timeout_ms":20,"proxy":"none"}"#,
    )
    .unwrap();
    // SAFETY: a NUL-terminated string.
    let h = unsafe { ffi::vault_provider_new(cfg.as_ptr()) };
    assert_ne!(h, 0, "{}", last_error());
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 32,
        ..config()
    });
    runner
        .run(
            &(
                0usize..80,
                any::<bool>(),
                prop_oneof![Just(0usize), 1usize..200],
                any::<bool>(),
                any::<bool>(),
            ),
            |(buf_len, null_buf, err_len, authorization, retry_now)| {
                let mut buf = vec![0x55 as c_char; buf_len + 16];
                let mut out_len = usize::MAX;
                let mut err = err_buf(err_len);
                let buf_ptr = if null_buf {
                    ptr::null_mut()
                } else {
                    buf.as_mut_ptr()
                };
                // SAFETY: buf NULL or buf_len writable bytes; out_len and err writable.
                let status = unsafe {
                    if authorization {
                        ffi::vault_get_authorization_into(
                            h,
                            buf_ptr,
                            buf_len,
                            &mut out_len,
                            err.as_mut_ptr(),
                            err_len,
                        )
                    } else {
                        ffi::vault_get_token_into(
                            h,
                            buf_ptr,
                            buf_len,
                            &mut out_len,
                            err.as_mut_ptr(),
                            err_len,
                        )
                    }
                };
                if null_buf && buf_len > 0 {
                    prop_assert_eq!(status, Status::InvalidArgument);
                } else {
                    prop_assert!(
                        matches!(status, Status::Network | Status::Timeout),
                        "status {:?}",
                        status
                    );
                }
                prop_assert!(buf.iter().all(|&b| b == 0x55), "token buffer written");
                prop_assert_eq!(out_len, usize::MAX);
                check_err_buf(&err, err_len, true);
                if retry_now {
                    // Ends the failure cool-down: the next call fetches again.
                    prop_assert_eq!(ffi::vault_invalidate(h), 0);
                }
                Ok(())
            },
        )
        .unwrap();
    assert_eq!(ffi::vault_provider_free(h), 0);
}

/// Real tokens from the local identity provider: every buffer length from 0 to past the token
/// gets `BUFFER_TOO_SMALL` with the needed length, or the exact NUL-terminated value.
#[test]
fn ffi_get_into_buffer_lengths() {
    let idp = common::Idp::start();
    let mut providers = Vec::new();
    for (i, token_bytes) in [1usize, 5, 32, 300, 3000].into_iter().enumerate() {
        let id = format!("prop-client-{i}");
        idp.add_client(
            json!({"dialect": "oauth", "client_id": id, "client_secret": "prop-secret",
            "token_bytes": token_bytes}),
        );
        let cfg = json!({"token_url": idp.url("/oauth/token"), "client_id": id,
            "client_secret": "prop-secret", "auth_method": "client_secret_post", "proxy": "none"});
        let cfg = CString::new(cfg.to_string()).unwrap();
        // SAFETY: a NUL-terminated string.
        let h = unsafe { ffi::vault_provider_new(cfg.as_ptr()) };
        assert_ne!(h, 0, "{}", last_error());
        let take = |p: *mut c_char| {
            assert!(!p.is_null(), "{}", last_error());
            // SAFETY: a NUL-terminated string from the library, freed right after.
            let s = unsafe { CStr::from_ptr(p) }.to_str().unwrap().to_string();
            // SAFETY: returned by vault_get_token/vault_get_authorization, freed once.
            unsafe { ffi::vault_token_free(p) };
            s
        };
        let token = take(ffi::vault_get_token(h));
        let authorization = take(ffi::vault_get_authorization(h));
        assert!(
            authorization.ends_with(&format!(" {token}")),
            "{authorization}"
        );
        providers.push((h, token, authorization));
    }
    let mut runner = proptest::test_runner::TestRunner::new(config());
    runner
        .run(
            &(
                0..providers.len(),
                any::<bool>(),
                any::<prop::sample::Index>(),
                any::<bool>(),
                0usize..64,
            ),
            |(which, authorization, len_pick, null_out_len, err_len)| {
                let (h, token, auth_value) = &providers[which];
                let value = if authorization { auth_value } else { token };
                let buf_len = len_pick.index(value.len() + 4);
                let mut buf = vec![0x55 as c_char; buf_len + 16];
                let mut out_len = usize::MAX;
                let out_ptr = if null_out_len {
                    ptr::null_mut()
                } else {
                    &mut out_len as *mut usize
                };
                let mut err = err_buf(err_len);
                let buf_ptr = if buf_len == 0 {
                    ptr::null_mut()
                } else {
                    buf.as_mut_ptr()
                };
                // SAFETY: buf NULL with 0 or buf_len writable bytes; out_len and err writable.
                let status = unsafe {
                    if authorization {
                        ffi::vault_get_authorization_into(
                            *h,
                            buf_ptr,
                            buf_len,
                            out_ptr,
                            err.as_mut_ptr(),
                            err_len,
                        )
                    } else {
                        ffi::vault_get_token_into(
                            *h,
                            buf_ptr,
                            buf_len,
                            out_ptr,
                            err.as_mut_ptr(),
                            err_len,
                        )
                    }
                };
                if !null_out_len {
                    prop_assert_eq!(out_len, value.len());
                }
                prop_assert!(
                    buf[buf_len..].iter().all(|&b| b == 0x55),
                    "wrote past buf_len"
                );
                if buf_len > value.len() {
                    prop_assert_eq!(status, Status::Ok);
                    let got: Vec<u8> = buf[..=value.len()].iter().map(|&b| b as u8).collect();
                    prop_assert_eq!(&got[..value.len()], value.as_bytes());
                    prop_assert_eq!(got[value.len()], 0);
                    check_err_buf(&err, err_len, false);
                } else {
                    prop_assert_eq!(status, Status::BufferTooSmall);
                    prop_assert!(
                        buf.iter().all(|&b| b == 0x55),
                        "a too-small buffer was written"
                    );
                    check_err_buf(&err, err_len, true);
                    let msg = last_error();
                    prop_assert!(
                        msg.contains(&format!("{} needed", value.len() + 1)),
                        "{}",
                        msg
                    );
                    prop_assert!(!msg.contains(token.as_str()));
                }
                Ok(())
            },
        )
        .unwrap();
    for (h, _, _) in providers {
        assert_eq!(ffi::vault_provider_free(h), 0);
    }
}
