//! `private_key_jwt` (RFC 7523) against Keycloak and oidc-provider: a provider configured with a
//! private key from `tests/keys` gets tokens with RS256, PS256 and ES256 (each token
//! introspected), and the servers' refusals come back as `CREDENTIALS_REJECTED` with their OAuth
//! code: a key the client did not register, a `kid` it did not register, an expired assertion
//! and an assertion whose `jti` was already used.
//!
//! The library never signs an expired assertion nor reuses a `jti`, so for those two the
//! recording proxy swaps the assertion in the library's request for one signed here with an
//! old clock (`AssertionKey::sign` takes the time) or for the one of an earlier request; the
//! request, the server's answer and the error are the library's own.

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use credvault::jwt::{AssertionKey, Audience, SigningAlg};
use credvault::Status;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::keycloak::{
    assert_keycloak_active_for, introspect_via, kc, token_url, REALM, TOKEN_PATH,
};
use crate::wire::{form_decode, Recorder, Rewrite};
use crate::*;

const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

fn key(name: &str) -> String {
    let path = format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A public JWK from `tests/keys` with `kid`.
fn public_jwk(name: &str, kid: &str) -> Value {
    let mut jwk: Value = serde_json::from_str(&key(&format!("{name}.public.jwk.json"))).unwrap();
    jwk["kid"] = kid.into();
    jwk
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The `client_assertion` of a form body.
fn assertion_of(body: &[u8]) -> Option<String> {
    body.split(|&b| b == b'&').find_map(|pair| {
        let i = pair.iter().position(|&b| b == b'=')?;
        (&pair[..i] == b"client_assertion").then(|| form_decode(&pair[i + 1..]))
    })
}

/// `body` with its `client_assertion` replaced by `with` (a JWT needs no form encoding).
fn swap_assertion(body: &mut Zeroizing<Vec<u8>>, with: &str) {
    let mut out = Vec::new();
    for pair in body.split(|&b| b == b'&') {
        if !out.is_empty() {
            out.push(b'&');
        }
        if pair.starts_with(b"client_assertion=") {
            out.extend_from_slice(b"client_assertion=");
            out.extend_from_slice(with.as_bytes());
        } else {
            out.extend_from_slice(pair);
        }
    }
    **body = out;
}

/// A claim of a JWT, decoded here (no signature check: the servers do that).
fn claim(jwt: &str, name: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice::<Value>(&raw).unwrap()[name].clone()
}

/// Swaps the assertion of every token request for the one in `slot` once it holds one (the
/// proxy's address, which the audience names, is only known once the proxy runs).
fn expired_rewrite(slot: Arc<Mutex<Option<String>>>) -> Rewrite {
    Arc::new(move |path, body| {
        if let (Some(e), true) = (slot.lock().unwrap().as_ref(), path.ends_with("/token")) {
            swap_assertion(body, e);
        }
    })
}

/// Keeps the first assertion it sees; swaps it into every later request. `seen` gets each
/// assertion the library signed.
fn replay_rewrite(seen: Arc<Mutex<Vec<String>>>) -> Rewrite {
    Arc::new(move |path, body| {
        if !path.ends_with("/token") {
            return;
        }
        let Some(signed) = assertion_of(body) else {
            return;
        };
        let mut seen = seen.lock().unwrap();
        seen.push(signed);
        let first = seen[0].clone();
        swap_assertion(body, &first);
    })
}

/// An assertion signed with `pem` as if the clock were `age_s` seconds behind.
fn old_assertion(
    pem: &str,
    alg: &str,
    kid: &str,
    client_id: &str,
    aud: &str,
    age_s: u64,
) -> String {
    let key = AssertionKey::new(
        pem,
        SigningAlg::parse(alg),
        Some(kid.to_string()),
        Audience::TokenEndpoint,
    )
    .unwrap();
    let jwt = key.sign(client_id, aud, now_s() - age_s).unwrap();
    jwt.to_string()
}

/// The one token request `rec` saw, checked to be a `private_key_jwt` request for `client_id`.
fn check_jwt_wire(rec: &Recorder, path: &str, client_id: &str, http: u16) -> String {
    let seen = rec.take(path);
    assert_eq!(seen.len(), 1, "exactly one token request: {seen:?}");
    let r = &seen[0];
    assert_eq!((r.method.as_str(), r.status), ("POST", http), "{r:?}");
    assert_eq!(r.auth_method(), "private_key_jwt", "{r:?}");
    assert!(r.basic.is_none() && r.form_secret.is_none(), "{r:?}");
    assert_eq!(r.field("grant_type"), Some("client_credentials"), "{r:?}");
    assert_eq!(r.field("client_id"), Some(client_id), "{r:?}");
    assert_eq!(
        r.field("client_assertion_type"),
        Some(ASSERTION_TYPE),
        "{r:?}"
    );
    r.field("client_assertion").unwrap().to_string()
}

// ---------------------------------------------------------------------------------------------
// oidc-provider: clients cv-jwt-rs256, cv-jwt-ps256 (key rsa2048, kid rsa-1) and cv-jwt-es256
// (key p256, kid ec-1), each held to its algorithm (tests/interop/oidc-provider/server.mjs).
// It accepts as audience its issuer or its token endpoint URL as the request's Host names it
// (so through a recorder, the recorder's URL).

fn oidcp() -> String {
    env("CREDVAULT_INTEROP_OIDCP_URL")
}

fn oidcp_introspect(token: &str) -> Value {
    introspect(
        &format!("{}/token/introspection", oidcp()),
        "cv-basic",
        &env("OIDCP_BASIC_SECRET"),
        token,
    )
}

fn oidcp_jwt_config(client_id: &str, file: &str, kid: &str, alg: &str) -> Value {
    json!({
        "token_url": format!("{}/token", oidcp()),
        "client_id": client_id,
        "auth_method": "private_key_jwt",
        "private_key": key(file),
        "key_id": kid,
        "signing_alg": alg,
    })
}

#[test]
#[ignore = "needs the interop servers: bash tests/interop/run.sh"]
fn oidc_provider_private_key_jwt_each_algorithm() {
    // RS256 straight to the token endpoint, its URL as audience (the default).
    let p = provider(oidcp_jwt_config(
        "cv-jwt-rs256",
        "rsa2048.pkcs8.pem",
        "rsa-1",
        "RS256",
    ));
    let t = token_ok(&p);
    assert_active_for(&oidcp_introspect(t.secret()), "cv-jwt-rs256");

    // PS256 through the recorder, from a PKCS#1 PEM: what went on the wire.
    let rec = Recorder::start(&oidcp());
    let mut cfg = oidcp_jwt_config("cv-jwt-ps256", "rsa2048.pkcs1.pem", "rsa-1", "PS256");
    cfg["token_url"] = format!("{}/token", rec.base()).into();
    let t = token_ok(&provider(cfg));
    let sent = check_jwt_wire(&rec, "/token", "cv-jwt-ps256", 200);
    assert_eq!(claim(&sent, "iss"), "cv-jwt-ps256");
    assert_eq!(claim(&sent, "sub"), "cv-jwt-ps256");
    assert_active_for(&oidcp_introspect(t.secret()), "cv-jwt-ps256");

    // ES256 from a JWK, by issuer discovery (token_endpoint_auth_methods_supported checked), the
    // issuer as audience (FAPI 2.0).
    let mut jwk: Value = serde_json::from_str(&key("p256.jwk.json")).unwrap();
    jwk["kid"] = "ec-1".into();
    let p = provider(json!({
        "issuer": oidcp(),
        "client_id": "cv-jwt-es256",
        "auth_method": "private_key_jwt",
        "private_key": jwk.to_string(),
        "audience": "issuer",
    }));
    assert_eq!(p.config().auth_method.name(), "private_key_jwt");
    let t = token_ok(&p);
    assert_active_for(&oidcp_introspect(t.secret()), "cv-jwt-es256");
}

#[test]
#[ignore = "needs the interop servers: bash tests/interop/run.sh"]
fn oidc_provider_private_key_jwt_wrong_key_and_wrong_kid() {
    let rec = Recorder::start(&oidcp());
    for (file, kid) in [
        ("other-rsa2048.pkcs8.pem", "rsa-1"),
        ("rsa2048.pkcs8.pem", "rsa-2"),
    ] {
        let mut cfg = oidcp_jwt_config("cv-jwt-rs256", file, kid, "RS256");
        cfg["token_url"] = format!("{}/token", rec.base()).into();
        let e = token_err(&provider(cfg));
        assert_error(&e, Status::CredentialsRejected, "invalid_client");
        check_jwt_wire(&rec, "/token", "cv-jwt-rs256", 401);
    }
}

#[test]
#[ignore = "needs the interop servers: bash tests/interop/run.sh"]
fn oidc_provider_private_key_jwt_expired_assertion() {
    // Ten minutes old: far beyond oidc-provider's clock tolerance (15 s).
    let slot = Arc::new(Mutex::new(None));
    let rec = Recorder::start_rewriting(&oidcp(), expired_rewrite(slot.clone()));
    let aud = format!("{}/token", rec.base());
    let pem = key("p256.pkcs8.pem");
    let expired = old_assertion(&pem, "ES256", "ec-1", "cv-jwt-es256", &aud, 600);
    *slot.lock().unwrap() = Some(expired.clone());
    let mut cfg = oidcp_jwt_config("cv-jwt-es256", "p256.pkcs8.pem", "ec-1", "ES256");
    cfg["token_url"] = aud.into();
    let e = token_err(&provider(cfg));
    assert_error(&e, Status::CredentialsRejected, "invalid_client");
    assert_eq!(check_jwt_wire(&rec, "/token", "cv-jwt-es256", 401), expired);
}

#[test]
#[ignore = "needs the interop servers: bash tests/interop/run.sh"]
fn oidc_provider_private_key_jwt_replayed_jti() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let rec = Recorder::start_rewriting(&oidcp(), replay_rewrite(seen.clone()));
    let mut cfg = oidcp_jwt_config("cv-jwt-ps256", "rsa2048.pkcs8.pem", "rsa-1", "PS256");
    cfg["token_url"] = format!("{}/token", rec.base()).into();
    // The first provider's assertion is accepted; a second provider's request carries it again.
    let t = token_ok(&provider(cfg.clone()));
    assert_active_for(&oidcp_introspect(t.secret()), "cv-jwt-ps256");
    check_jwt_wire(&rec, "/token", "cv-jwt-ps256", 200);
    let e = token_err(&provider(cfg));
    assert_error(&e, Status::CredentialsRejected, "invalid_client");
    check_jwt_wire(&rec, "/token", "cv-jwt-ps256", 401);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_ne!(
        claim(&seen[0], "jti"),
        claim(&seen[1], "jti"),
        "the library signed a new jti for the second request"
    );
}

// ---------------------------------------------------------------------------------------------
// Keycloak: clients with the "Signed JWT" authenticator (`client-jwt`) and their public key as
// a JWKS (`use.jwks.string`), held to one algorithm; tokens name `cv-introspector` as audience.
// Keycloak refuses a client assertion with HTTP 400 and `invalid_client` (oidc-provider: 401).

/// Creates a `client-jwt` client that accepts `alg` with the public key `jwk` (with its kid;
/// Keycloak looks a key up by kid and alg, so the JWK names both, and its use).
fn kc_jwt_client(client_id: &str, alg: &str, mut jwk: Value) {
    jwk["alg"] = alg.into();
    jwk["use"] = "sig".into();
    kc().admin_post(
        &format!("/{REALM}/clients"),
        json!({
            "clientId": client_id,
            "enabled": true,
            "publicClient": false,
            "serviceAccountsEnabled": true,
            "standardFlowEnabled": false,
            "directAccessGrantsEnabled": false,
            "clientAuthenticatorType": "client-jwt",
            "attributes": {
                "use.jwks.url": "false",
                "use.jwks.string": "true",
                "jwks.string": json!({"keys": [jwk]}).to_string(),
                "token.endpoint.auth.signing.alg": alg,
                "access.token.lifespan": "60",
            },
            "protocolMappers": [{
                "name": "introspector-audience",
                "protocol": "openid-connect",
                "protocolMapper": "oidc-audience-mapper",
                "config": {
                    "included.client.audience": "cv-introspector",
                    "access.token.claim": "true",
                    "introspection.token.claim": "true"
                }
            }]
        }),
    );
}

fn kc_jwt_config(rec: &Recorder, client_id: &str, file: &str, kid: &str, alg: &str) -> Value {
    json!({
        "token_url": token_url(rec),
        "client_id": client_id,
        "auth_method": "private_key_jwt",
        "private_key": key(file),
        "key_id": kid,
        "signing_alg": alg,
    })
}

#[test]
#[ignore = "needs the interop servers: bash tests/interop/run.sh"]
fn keycloak_private_key_jwt_each_algorithm() {
    let kc = kc();
    let rec = Recorder::start(&kc.base);
    for (alg, file, public, kid) in [
        ("RS256", "rsa2048.pkcs8.pem", "rsa2048", "rsa-1"),
        ("PS256", "rsa2048.pkcs1.pem", "rsa2048", "rsa-1"),
        ("ES256", "p256.sec1.pem", "p256", "ec-1"),
    ] {
        let id = format!("cv-jwt-{}", alg.to_lowercase());
        kc_jwt_client(&id, alg, public_jwk(public, kid));
        let t = token_ok(&provider(kc_jwt_config(&rec, &id, file, kid, alg)));
        let sent = check_jwt_wire(&rec, TOKEN_PATH, &id, 200);
        assert_eq!(claim(&sent, "aud"), Value::String(token_url(&rec)));
        assert_keycloak_active_for(&introspect_via(&rec, t.secret()), &id);
    }
    // ES256 again by issuer discovery, the issuer as audience.
    let issuer = format!("{}/realms/{REALM}", rec.base());
    let p = provider(json!({
        "issuer": issuer,
        "client_id": "cv-jwt-es256",
        "auth_method": "private_key_jwt",
        "private_key": key("p256.pkcs8.pem"),
        "key_id": "ec-1",
        "audience": "issuer",
    }));
    let t = token_ok(&p);
    let sent = check_jwt_wire(&rec, TOKEN_PATH, "cv-jwt-es256", 200);
    assert_eq!(claim(&sent, "aud"), Value::String(issuer));
    assert_keycloak_active_for(&introspect_via(&rec, t.secret()), "cv-jwt-es256");
}

#[test]
#[ignore = "needs the interop servers: bash tests/interop/run.sh"]
fn keycloak_private_key_jwt_wrong_key_and_wrong_kid() {
    let kc = kc();
    let rec = Recorder::start(&kc.base);
    kc_jwt_client("cv-jwt-refused", "RS256", public_jwk("rsa2048", "rsa-1"));
    for (file, kid) in [
        ("other-rsa2048.pkcs8.pem", "rsa-1"),
        ("rsa2048.pkcs8.pem", "rsa-2"),
    ] {
        let e = token_err(&provider(kc_jwt_config(
            &rec,
            "cv-jwt-refused",
            file,
            kid,
            "RS256",
        )));
        assert_error(&e, Status::CredentialsRejected, "invalid_client");
        check_jwt_wire(&rec, TOKEN_PATH, "cv-jwt-refused", 400);
    }
}

#[test]
#[ignore = "needs the interop servers: bash tests/interop/run.sh"]
fn keycloak_private_key_jwt_expired_assertion() {
    let kc = kc();
    kc_jwt_client("cv-jwt-expired", "ES256", public_jwk("p256", "ec-1"));
    // Ten minutes old, the audience the request is for.
    let pem = key("p256.pkcs8.pem");
    let slot = Arc::new(Mutex::new(None));
    let rec = Recorder::start_rewriting(&kc.base, expired_rewrite(slot.clone()));
    let made = old_assertion(
        &pem,
        "ES256",
        "ec-1",
        "cv-jwt-expired",
        &token_url(&rec),
        600,
    );
    *slot.lock().unwrap() = Some(made.clone());
    let e = token_err(&provider(kc_jwt_config(
        &rec,
        "cv-jwt-expired",
        "p256.pkcs8.pem",
        "ec-1",
        "ES256",
    )));
    assert_error(&e, Status::CredentialsRejected, "invalid_client");
    assert_eq!(
        check_jwt_wire(&rec, TOKEN_PATH, "cv-jwt-expired", 400),
        made
    );
}

#[test]
#[ignore = "needs the interop servers: bash tests/interop/run.sh"]
fn keycloak_private_key_jwt_replayed_jti() {
    let kc = kc();
    kc_jwt_client("cv-jwt-replay", "PS256", public_jwk("rsa2048", "rsa-1"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let rec = Recorder::start_rewriting(&kc.base, replay_rewrite(seen.clone()));
    let cfg = kc_jwt_config(&rec, "cv-jwt-replay", "rsa2048.pkcs8.pem", "rsa-1", "PS256");
    let t = token_ok(&provider(cfg.clone()));
    check_jwt_wire(&rec, TOKEN_PATH, "cv-jwt-replay", 200);
    assert_keycloak_active_for(&introspect_via(&rec, t.secret()), "cv-jwt-replay");
    let e = token_err(&provider(cfg));
    assert_error(&e, Status::CredentialsRejected, "invalid_client");
    check_jwt_wire(&rec, TOKEN_PATH, "cv-jwt-replay", 400);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_ne!(claim(&seen[0], "jti"), claim(&seen[1], "jti"));
}
