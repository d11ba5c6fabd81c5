//! `private_key_jwt` (RFC 7523): a provider configured with a private key gets tokens from the
//! local identity provider, which verifies each assertion (signature, `kid`, `iss`/`sub`, `aud`,
//! lifetime, `jti` never reused) against the public keys registered for the client. Every key
//! form and algorithm; the refusals; discovery; and what the configuration refuses.

mod common;

use common::Idp;
use credvault::{Provider, Status};
use serde_json::{json, Value};

fn key(name: &str) -> String {
    let path = format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The JWK set that registers `pem`'s public key under `kid`.
fn jwks(pem: &str, kid: &str) -> Value {
    json!({"keys": [credvault::jwt::public_jwk(pem, Some(kid)).unwrap()]})
}

fn register(idp: &Idp, dialect: &str, id: &str, keys: Value) {
    idp.add_client(json!({"dialect": dialect, "client_id": id, "jwks": keys}));
}

fn jwt_config(idp: &Idp, path: &str, id: &str, pem: &str, extra: Value) -> Value {
    let mut cfg = json!({"token_url": idp.url(path), "client_id": id,
        "auth_method": "private_key_jwt", "private_key": pem, "key_id": "k1"});
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    cfg
}

fn provider(cfg: &Value) -> Provider {
    Provider::new(&cfg.to_string()).unwrap_or_else(|e| panic!("config rejected: {e}"))
}

fn config_error(cfg: &Value) -> credvault::Error {
    match Provider::new(&cfg.to_string()) {
        Ok(_) => panic!(
            "config accepted: {}",
            cfg["private_key"].as_str().map_or("", |_| "")
        ),
        Err(e) => e,
    }
}

#[test]
fn every_key_form_and_algorithm_gets_tokens_and_each_assertion_is_new() {
    let idp = Idp::start();
    let cases = [
        ("rsa2048.pkcs8.pem", None, "RS256"),
        ("rsa2048.pkcs8.pem", Some("PS256"), "PS256"),
        ("rsa2048.pkcs1.pem", Some("RS256"), "RS256"),
        ("rsa2048.pkcs1.pem", Some("PS256"), "PS256"),
        ("p256.pkcs8.pem", None, "ES256"),
        ("p256.sec1.pem", Some("ES256"), "ES256"),
    ];
    for (i, (file, alg, expected)) in cases.iter().enumerate() {
        let pem = key(file);
        let id = format!("jwt-client-{i}");
        register(&idp, "oauth", &id, jwks(&pem, "k1"));
        let mut extra = json!({});
        if let Some(a) = alg {
            extra["signing_alg"] = json!(a);
        }
        let p = provider(&jwt_config(&idp, "/oauth/token", &id, &pem, extra));
        let before = idp.tokens_issued();
        let t = p
            .token()
            .unwrap_or_else(|e| panic!("{file} {expected}: {e}"));
        assert!(!t.secret().is_empty());
        let form = &idp.last_request()["form_keys"];
        for k in ["client_assertion", "client_assertion_type", "client_id"] {
            assert!(
                form.as_array().unwrap().iter().any(|f| f == k),
                "{k} in {form}"
            );
        }
        assert!(!form
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "client_secret"));
        // A second token: the idp refuses a jti it has seen, so this passes only with a new one.
        assert!(p.invalidate());
        p.token()
            .unwrap_or_else(|e| panic!("{file} second token: {e}"));
        assert_eq!(idp.tokens_issued(), before + 2, "{file} {expected}");
    }
}

#[test]
fn a_jwk_private_key_works_and_its_kid_is_the_default_key_id() {
    let idp = Idp::start();
    for (i, name) in ["rsa2048", "p256"].iter().enumerate() {
        let jwk = key(&format!("{name}.jwk.json"));
        let id = format!("jwk-client-{i}");
        // Registered under the JWK's own kid; the config names no key_id.
        register(
            &idp,
            "oauth",
            &id,
            jwks(&key(&format!("{name}.pkcs8.pem")), "from-jwk"),
        );
        let mut cfg = jwt_config(&idp, "/oauth/token", &id, &jwk, json!({}));
        cfg.as_object_mut().unwrap().remove("key_id");
        provider(&cfg)
            .token()
            .unwrap_or_else(|e| panic!("{name} JWK: {e}"));
    }
}

#[test]
fn the_server_refuses_a_wrong_key_or_kid_and_the_error_says_credentials_rejected() {
    let idp = Idp::start();
    let rsa = key("rsa2048.pkcs8.pem");
    let ec = key("p256.pkcs8.pem");
    register(&idp, "oauth", "wrong-key", jwks(&rsa, "k1"));
    // Signed with the EC key while the RSA key is registered.
    let p = provider(&jwt_config(
        &idp,
        "/oauth/token",
        "wrong-key",
        &ec,
        json!({}),
    ));
    let e = p.token().expect_err("a wrong key is refused");
    assert_eq!(e.status(), Status::CredentialsRejected, "{e}");
    assert_eq!(e.oauth_error(), Some("invalid_client"));
    // The right key under another kid.
    register(&idp, "oauth", "wrong-kid", jwks(&rsa, "k1"));
    let p = provider(&jwt_config(
        &idp,
        "/oauth/token",
        "wrong-kid",
        &rsa,
        json!({"key_id": "k2"}),
    ));
    let e = p.token().expect_err("a wrong kid is refused");
    assert_eq!(e.status(), Status::CredentialsRejected, "{e}");
    assert!(e.message().contains("kid"), "{e}");
    // An audience the server is not.
    register(&idp, "oauth", "wrong-aud", jwks(&rsa, "k1"));
    let p = provider(&jwt_config(
        &idp,
        "/oauth/token",
        "wrong-aud",
        &rsa,
        json!({"audience": "https://elsewhere.example/token"}),
    ));
    let e = p.token().expect_err("a wrong audience is refused");
    assert_eq!(e.status(), Status::CredentialsRejected, "{e}");
}

#[test]
fn keycloak_dialect_and_discovery_with_the_issuer_as_audience() {
    let idp = Idp::start();
    let ec = key("p256.sec1.pem");
    register(&idp, "vgs", "vgs-jwt", jwks(&ec, "k1"));
    let p = provider(&json!({"preset": "vgs", "token_url":
        idp.url("/vgs/auth/realms/vgs/protocol/openid-connect/token"), "client_id": "vgs-jwt",
        "auth_method": "private_key_jwt", "private_key": ec, "key_id": "k1"}));
    p.token()
        .expect("VGS (a Keycloak realm) accepts private_key_jwt");

    // RFC 8414 metadata that lists private_key_jwt; the assertion's aud is the issuer.
    register(&idp, "oauth", "disc-jwt", jwks(&ec, "k1"));
    let p = provider(
        &json!({"issuer": idp.url("/rfc8414"), "client_id": "disc-jwt",
        "auth_method": "private_key_jwt", "private_key": ec, "key_id": "k1",
        "audience": "issuer"}),
    );
    p.token().expect("discovery, aud = issuer");

    // Metadata that lists only client_secret_basic: the provider says so, before any request.
    let before = idp.token_requests();
    let p = provider(
        &json!({"issuer": idp.url("/apiture/oidc/"), "client_id": "disc-jwt",
        "auth_method": "private_key_jwt", "private_key": ec, "deadline_ms": 500}),
    );
    let e = p
        .token()
        .expect_err("the issuer does not support private_key_jwt");
    assert_eq!(e.status(), Status::DiscoveryFailed, "{e}");
    assert!(
        e.message()
            .contains("token_endpoint_auth_methods_supported does not list private_key_jwt"),
        "{e}"
    );
    assert_eq!(idp.token_requests(), before, "no token request was sent");
}

#[test]
fn the_configuration_refuses_bad_keys_by_field_and_never_shows_key_material() {
    let rsa = key("rsa2048.pkcs8.pem");
    let body_window: String = rsa.lines().nth(3).unwrap()[..16].to_string();
    let base = json!({"token_url": "https://idp.example/token", "client_id": "c",
        "auth_method": "private_key_jwt"});
    let with = |extra: Value| {
        let mut c = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    let cases = [
        (
            with(json!({"private_key": key("rsa1024.pkcs8.pem")})),
            "private_key: an RSA key must have at least 2048 bits",
        ),
        (
            with(json!({"private_key": key("p384.pkcs8.pem")})),
            "private_key: not a usable RSA",
        ),
        (
            with(json!({"private_key": rsa.clone(), "signing_alg": "ES256"})),
            "signing_alg: ES256 needs an EC P-256 key",
        ),
        (
            with(json!({"private_key": rsa.clone(), "signing_alg": "HS256"})),
            "signing_alg: must be RS256, PS256 or ES256",
        ),
        (
            with(json!({"private_key": rsa.clone(), "client_secret": "s3cret"})),
            "client_secret: not used with auth_method private_key_jwt",
        ),
        (with(json!({})), "private_key: required"),
        (
            with(json!({"private_key": rsa.replace("PRIVATE KEY", "PUBLIC KEY")})),
            "private_key: the PEM is not a private key",
        ),
        (
            with(json!({"private_key": rsa.clone(), "audience": "issuer"})),
            "audience: \"issuer\" needs the issuer key",
        ),
        (
            json!({"token_url": "https://idp.example/token", "client_id": "c",
                "client_secret": "s", "private_key": rsa.clone()}),
            "private_key: only with auth_method private_key_jwt",
        ),
    ];
    for (cfg, expected) in cases {
        let e = config_error(&cfg);
        assert_eq!(e.status(), Status::InvalidConfig);
        assert!(e.message().starts_with(expected), "{e}");
        assert!(!e.message().contains(&body_window), "key material in {e}");
        assert!(!format!("{e:?}").contains(&body_window));
    }
}

#[test]
fn the_public_jwk_fixtures_are_the_public_halves_of_the_test_keys() {
    // tests/keys/*.public.jwk.json (exported with Node's crypto) register the keys in the Python,
    // Go, C++, C and interop tests; they must be what `public_jwk` derives.
    for name in ["rsa2048", "p256", "other-rsa2048"] {
        let fixture: Value =
            serde_json::from_str(&key(&format!("{name}.public.jwk.json"))).unwrap();
        let derived = credvault::jwt::public_jwk(&key(&format!("{name}.pkcs8.pem")), None).unwrap();
        assert_eq!(fixture, derived, "{name}");
    }
}

#[test]
fn stats_name_the_auth_method() {
    let idp = Idp::start();
    let pem = key("p256.pkcs8.pem");
    register(&idp, "oauth", "stats-jwt", jwks(&pem, "k1"));
    let p = provider(&jwt_config(
        &idp,
        "/oauth/token",
        "stats-jwt",
        &pem,
        json!({}),
    ));
    assert_eq!(p.stats().to_json()["auth_method"], "private_key_jwt");
    p.token().unwrap();
    let secret = provider(
        &json!({"token_url": idp.url("/oauth/token"), "client_id": "x",
        "client_secret": "y"}),
    );
    assert_eq!(
        secret.stats().to_json()["auth_method"],
        "client_secret_basic"
    );
}
