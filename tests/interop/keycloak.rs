//! Against Keycloak (what VGS runs), started by `run.sh` in dev mode with an in-memory database.
//! The first test to run creates, through the admin REST API, a realm `vgs` (as VGS names
//! theirs), a client scope `payments`, and a resource-server client `cv-introspector` that every
//! test client's tokens name as audience (Keycloak 26 only introspects for a client in the
//! audience). Each test makes its own confidential clients, with secrets holding `+/=&`, and
//! talks to Keycloak through its own `wire::Recorder`; Keycloak takes its issuer from the `Host`
//! the recorder passes on, so discovery and introspection go through the recorder too.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use credvault::ffi::{
    vault_get_token_into, vault_provider_free, vault_provider_new, vault_try_get_token_into,
};
use credvault::Status;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::wire::Recorder;
use crate::*;

pub(crate) const REALM: &str = "vgs";
pub(crate) const TOKEN_PATH: &str = "/realms/vgs/protocol/openid-connect/token";
const INTROSPECT_PATH: &str = "/realms/vgs/protocol/openid-connect/token/introspect";

pub(crate) struct Keycloak {
    pub(crate) base: String,
    agent: ureq::Agent,
    introspector_secret: String,
}

fn base() -> String {
    env("CREDVAULT_INTEROP_KEYCLOAK_URL")
}

impl Keycloak {
    fn admin_token(&self) -> String {
        let body = format!(
            "grant_type=password&client_id=admin-cli&username={}&password={}",
            form_encode(&env("KC_BOOTSTRAP_ADMIN_USERNAME")),
            form_encode(&env("KC_BOOTSTRAP_ADMIN_PASSWORD"))
        );
        let resp = self
            .agent
            .post(format!(
                "{}/realms/master/protocol/openid-connect/token",
                self.base
            ))
            .content_type("application/x-www-form-urlencoded")
            .send(body.as_bytes())
            .expect("admin token request");
        assert_eq!(resp.status().as_u16(), 200, "admin login refused");
        let v: Value = serde_json::from_str(&resp.into_body().read_to_string().unwrap()).unwrap();
        v["access_token"]
            .as_str()
            .expect("admin access_token")
            .to_string()
    }

    /// POSTs a representation to the admin API; 201 expected.
    pub(crate) fn admin_post(&self, path: &str, body: Value) {
        let resp = self
            .agent
            .post(format!("{}/admin/realms{path}", self.base))
            .header("Authorization", &format!("Bearer {}", self.admin_token()))
            .content_type("application/json")
            .send(body.to_string().as_bytes())
            .expect("admin request");
        let status = resp.status().as_u16();
        let text = resp.into_body().read_to_string().unwrap_or_default();
        assert_eq!(status, 201, "admin POST {path}: {text}");
    }

    /// Creates a confidential client for the client credentials grant whose access tokens live
    /// `lifespan_s` seconds and name `cv-introspector` as audience; `payments` is an optional
    /// scope when `with_payments`. Returns its secret.
    fn client(&self, client_id: &str, lifespan_s: u32, with_payments: bool) -> String {
        let secret = reserved_secret();
        let optional: Vec<&str> = if with_payments {
            vec!["payments"]
        } else {
            vec![]
        };
        self.admin_post(
            &format!("/{REALM}/clients"),
            json!({
                "clientId": client_id,
                "enabled": true,
                "publicClient": false,
                "serviceAccountsEnabled": true,
                "standardFlowEnabled": false,
                "directAccessGrantsEnabled": false,
                "clientAuthenticatorType": "client-secret",
                "secret": secret,
                "optionalClientScopes": optional,
                "attributes": { "access.token.lifespan": lifespan_s.to_string() },
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
        secret
    }
}

pub(crate) fn kc() -> &'static Keycloak {
    static KC: OnceLock<Keycloak> = OnceLock::new();
    KC.get_or_init(|| {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        let mut kc = Keycloak {
            base: base(),
            agent,
            introspector_secret: reserved_secret(),
        };
        kc.admin_post(
            "",
            json!({ "realm": REALM, "enabled": true, "accessTokenLifespan": 60 }),
        );
        kc.admin_post(
            &format!("/{REALM}/client-scopes"),
            json!({
                "name": "payments",
                "protocol": "openid-connect",
                "attributes": { "include.in.token.scope": "true" }
            }),
        );
        let secret = kc.introspector_secret.clone();
        kc.admin_post(
            &format!("/{REALM}/clients"),
            json!({
                "clientId": "cv-introspector",
                "enabled": true,
                "publicClient": false,
                "serviceAccountsEnabled": false,
                "standardFlowEnabled": false,
                "clientAuthenticatorType": "client-secret",
                "secret": secret,
            }),
        );
        kc.introspector_secret = secret;
        kc
    })
}

/// Keycloak's introspection of `token`, asked through `rec` (the issuer it was minted under).
pub(crate) fn introspect_via(rec: &Recorder, token: &str) -> Value {
    let kc = kc();
    let answer = introspect(
        &format!("{}{INTROSPECT_PATH}", rec.base()),
        "cv-introspector",
        &kc.introspector_secret,
        token,
    );
    rec.take(INTROSPECT_PATH);
    answer
}

/// Keycloak puts the client in `azp` and (for service accounts) `client_id`.
pub(crate) fn assert_keycloak_active_for(answer: &Value, client_id: &str) {
    assert_active_for(answer, client_id);
    assert_eq!(answer["azp"].as_str(), Some(client_id), "{answer}");
}

pub(crate) fn token_url(rec: &Recorder) -> String {
    format!("{}{TOKEN_PATH}", rec.base())
}

/// The one token request this test made, checked to have used `method` as RFC 6749 2.3 says.
fn check_wire(rec: &Recorder, client_id: &str, secret: &str, method: &str, http: u16) {
    let seen = rec.take(TOKEN_PATH);
    assert_eq!(seen.len(), 1, "exactly one token request: {seen:?}");
    let r = &seen[0];
    assert_eq!((r.method.as_str(), r.status), ("POST", http), "{r:?}");
    assert_eq!(r.auth_method(), method, "{r:?}");
    assert_eq!(r.field("grant_type"), Some("client_credentials"), "{r:?}");
    match method {
        "client_secret_basic" => {
            let (user, pass) = r.basic.as_ref().unwrap();
            assert_eq!(user, client_id, "{r:?}");
            assert!(
                rfc6749_encoded(pass, secret),
                "{client_id}: the Basic password is not the secret form-urlencoded (RFC 6749 2.3.1)"
            );
            assert_eq!(r.field("client_id"), None, "client_id sent twice: {r:?}");
        }
        _ => {
            assert_eq!(r.field("client_id"), Some(client_id), "{r:?}");
            assert!(
                r.form_secret.as_deref().map(|s| s.as_str()) == Some(secret),
                "{client_id}: client_secret in the body does not decode to the secret"
            );
        }
    }
}

#[test]
#[ignore = "needs the interop servers: bash tests/interop/run.sh"]
fn keycloak_vgs_preset() {
    let kc = kc();
    let rec = Recorder::start(&kc.base);
    let secret = kc.client("cv-vgs-preset", 60, false);
    let p = provider(json!({
        "preset": "vgs",
        "token_url": token_url(&rec),
        "client_id": "cv-vgs-preset",
        "client_secret": secret,
    }));
    let method = p.config().auth_method.name();
    let t = token_ok(&p);
    assert_eq!(t.token_type(), "Bearer");
    check_wire(&rec, "cv-vgs-preset", &secret, method, 200);
    assert_keycloak_active_for(&introspect_via(&rec, t.secret()), "cv-vgs-preset");
    // Served from the cache: no second request.
    let again = token_ok(&p);
    assert_eq!(again.generation(), t.generation());
    assert!(rec.take(TOKEN_PATH).is_empty());

    // The preset with Basic instead: the preset's Basic encoding must be the one Keycloak
    // decodes (RFC 6749 2.3.1), or this +/=& secret is refused.
    let p = provider(json!({
        "preset": "vgs",
        "token_url": token_url(&rec),
        "client_id": "cv-vgs-preset",
        "client_secret": secret,
        "auth_method": "client_secret_basic",
    }));
    let t = token_ok(&p);
    check_wire(&rec, "cv-vgs-preset", &secret, "client_secret_basic", 200);
    assert_keycloak_active_for(&introspect_via(&rec, t.secret()), "cv-vgs-preset");
}

#[test]
#[ignore = "needs the interop servers: bash tests/interop/run.sh"]
fn keycloak_issuer_discovery() {
    let kc = kc();
    let rec = Recorder::start(&kc.base);
    let secret = kc.client("cv-discovery", 60, false);
    let p = provider(json!({
        "issuer": format!("{}/realms/{REALM}", rec.base()),
        "client_id": "cv-discovery",
        "client_secret": secret,
    }));
    let t = token_ok(&p);
    let meta = rec.take("/realms/vgs/.well-known/openid-configuration");
    assert_eq!(meta.len(), 1, "one metadata lookup: {meta:?}");
    assert_eq!((meta[0].method.as_str(), meta[0].status), ("GET", 200));
    check_wire(&rec, "cv-discovery", &secret, "client_secret_basic", 200);
    assert_keycloak_active_for(&introspect_via(&rec, t.secret()), "cv-discovery");
}

#[test]
#[ignore = "needs the interop servers: bash tests/interop/run.sh"]
fn keycloak_client_secret_basic_with_reserved_characters() {
    let kc = kc();
    let rec = Recorder::start(&kc.base);
    let secret = kc.client("cv-basic", 60, false);
    let p = provider(json!({
        "token_url": token_url(&rec),
        "client_id": "cv-basic",
        "client_secret": secret,
        "auth_method": "client_secret_basic",
    }));
    let t = token_ok(&p);
    check_wire(&rec, "cv-basic", &secret, "client_secret_basic", 200);
    assert_keycloak_active_for(&introspect_via(&rec, t.secret()), "cv-basic");
}

#[test]
#[ignore = "needs the interop servers: bash tests/interop/run.sh"]
fn keycloak_refuses_plain_basic_with_reserved_characters() {
    // Keycloak form-decodes both halves of Basic (RFC 6749 2.3.1): `+` becomes a space and the
    // secret no longer matches. This is why the VGS preset must not use the plain encoding.
    let kc = kc();
    let rec = Recorder::start(&kc.base);
    let secret = kc.client("cv-basic-plain", 60, false);
    let p = provider(json!({
        "token_url": token_url(&rec),
        "client_id": "cv-basic-plain",
        "client_secret": secret,
        "auth_method": "client_secret_basic",
        "basic_encoding": "plain",
    }));
    let e = token_err(&p);
    assert_error(&e, Status::CredentialsRejected, "unauthorized_client");
    let seen = rec.take(TOKEN_PATH);
    assert_eq!(
        seen.len(),
        1,
        "a rejected credential is not retried: {seen:?}"
    );
    assert_eq!(seen[0].auth_method(), "client_secret_basic");
    let (_, pass) = seen[0].basic.as_ref().unwrap();
    assert!(pass.as_str() == secret, "plain means the secret as is");
}

#[test]
#[ignore = "needs the interop servers: bash tests/interop/run.sh"]
fn keycloak_client_secret_post_with_reserved_characters() {
    let kc = kc();
    let rec = Recorder::start(&kc.base);
    let secret = kc.client("cv-post", 60, false);
    let p = provider(json!({
        "token_url": token_url(&rec),
        "client_id": "cv-post",
        "client_secret": secret,
        "auth_method": "client_secret_post",
    }));
    let t = token_ok(&p);
    check_wire(&rec, "cv-post", &secret, "client_secret_post", 200);
    assert_keycloak_active_for(&introspect_via(&rec, t.secret()), "cv-post");
}

#[test]
#[ignore = "needs the interop servers: bash tests/interop/run.sh"]
fn keycloak_scope_granted_and_refused() {
    let kc = kc();
    let rec = Recorder::start(&kc.base);
    let secret = kc.client("cv-scoped", 60, true);
    let p = provider(json!({
        "token_url": token_url(&rec),
        "client_id": "cv-scoped",
        "client_secret": secret,
        "scope": "payments",
    }));
    let t = token_ok(&p);
    let seen = rec.take(TOKEN_PATH);
    assert_eq!(seen[0].field("scope"), Some("payments"), "{seen:?}");
    let answer = introspect_via(&rec, t.secret());
    assert_keycloak_active_for(&answer, "cv-scoped");
    assert!(scopes(&answer).contains("payments"), "{answer}");

    // A client that was not given the scope.
    let other = kc.client("cv-unscoped", 60, false);
    for method in ["client_secret_basic", "client_secret_post"] {
        let p = provider(json!({
            "token_url": token_url(&rec),
            "client_id": "cv-unscoped",
            "client_secret": other,
            "auth_method": method,
            "scope": "payments",
        }));
        let e = token_err(&p);
        assert_error(&e, Status::ScopeRejected, "invalid_scope");
        let seen = rec.take(TOKEN_PATH);
        assert_eq!(seen.len(), 1, "a refused scope is not retried: {seen:?}");
        assert_eq!(seen[0].status, 400, "{seen:?}");
    }
}

#[test]
#[ignore = "needs the interop servers: bash tests/interop/run.sh"]
fn keycloak_wrong_secret() {
    let kc = kc();
    let rec = Recorder::start(&kc.base);
    let _ = kc.client("cv-wrong", 60, false);
    for method in ["client_secret_basic", "client_secret_post"] {
        let p = provider(json!({
            "token_url": token_url(&rec),
            "client_id": "cv-wrong",
            "client_secret": reserved_secret(),
            "auth_method": method,
        }));
        let e = token_err(&p);
        assert_error(&e, Status::CredentialsRejected, "unauthorized_client");
        let seen = rec.take(TOKEN_PATH);
        assert_eq!(
            seen.len(),
            1,
            "a rejected credential is not retried: {seen:?}"
        );
        assert_eq!(seen[0].status, 401, "{seen:?}");
        assert_eq!(seen[0].auth_method(), method, "{seen:?}");
    }
}

#[test]
#[ignore = "needs the interop servers: bash tests/interop/run.sh"]
fn keycloak_unknown_realm() {
    let kc = kc();
    let rec = Recorder::start(&kc.base);
    // Token endpoint of a realm that does not exist: HTTP 404 {"error":"Realm does not exist"}.
    let p = provider(json!({
        "token_url": format!("{}/realms/no-such-realm/protocol/openid-connect/token", rec.base()),
        "client_id": "cv-nowhere",
        "client_secret": reserved_secret(),
    }));
    // Not an RFC 6749 error code, but an `error` member all the same: credvault reports it as an
    // OAuth error with the HTTP status, and does not retry (a realm does not appear by retrying).
    let e = token_err(&p);
    assert_error(&e, Status::OauthError, "Realm does not exist");
    assert!(e.message().contains("HTTP 404"), "{}", e.message());
    let seen = rec.take("/realms/no-such-realm/protocol/openid-connect/token");
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].status, 404, "{seen:?}");
    // Discovery of that realm's issuer.
    let p = provider(json!({
        "issuer": format!("{}/realms/no-such-realm", rec.base()),
        "client_id": "cv-nowhere",
        "client_secret": reserved_secret(),
    }));
    let e = token_err(&p);
    assert_eq!(e.status(), Status::DiscoveryFailed, "{}", e.message());
    assert!(
        rec.take("/realms/no-such-realm/protocol/openid-connect/token")
            .is_empty(),
        "no token request without metadata"
    );
}

/// One call of the C ABI's `vault_get_token_into` (blocking) or `vault_try_get_token_into`
/// (never waits, never fetches on this thread): the token, or the status and message.
fn c_token(handle: u64, blocking: bool) -> Result<Zeroizing<String>, (Status, String)> {
    let mut buf = Zeroizing::new(vec![0u8; 16 * 1024]);
    let mut err = vec![0u8; 1024];
    let mut len = 0usize;
    let call = if blocking {
        vault_get_token_into
    } else {
        vault_try_get_token_into
    };
    // SAFETY: the buffers are valid for the lengths passed and outlive the call.
    let status = unsafe {
        call(
            handle,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut len,
            err.as_mut_ptr().cast(),
            err.len(),
        )
    };
    if status == Status::Ok {
        Ok(Zeroizing::new(
            String::from_utf8(buf[..len].to_vec()).unwrap(),
        ))
    } else {
        let end = err.iter().position(|&b| b == 0).unwrap_or(0);
        Err((status, String::from_utf8_lossy(&err[..end]).into_owned()))
    }
}

#[test]
#[ignore = "needs the interop servers: bash tests/interop/run.sh"]
fn keycloak_refresh_ahead_of_expiry() {
    // Keycloak issues 30-second tokens to this client; credvault is told to refresh at half the
    // lifetime Keycloak states (no jitter). After the first token, the test only calls
    // `vault_try_get_token_into`, which never fetches on the caller's thread and answers
    // WOULD_BLOCK when no servable token is cached: so a new token showing up proves a
    // background refresh, and never seeing WOULD_BLOCK proves it came before the old token
    // stopped being servable. Keycloak's clock then confirms it was issued before the old one
    // expired.
    const LIFESPAN: u64 = 30;
    let kc = kc();
    let rec = Recorder::start(&kc.base);
    let secret = kc.client("cv-refresh", LIFESPAN as u32, false);
    let config = json!({
        "token_url": token_url(&rec),
        "client_id": "cv-refresh",
        "client_secret": secret,
        "refresh_ratio": 0.5,
        "refresh_jitter": 0.0,
        "proxy": "none",
    });
    let mut config = Zeroizing::new(config.to_string().into_bytes());
    config.push(0);
    // SAFETY: a NUL-terminated string that outlives the call.
    let handle = unsafe { vault_provider_new(config.as_ptr().cast()) };
    assert_ne!(handle, 0, "vault_provider_new refused the config");

    let first =
        c_token(handle, true).unwrap_or_else(|(s, m)| panic!("first token: {}: {m}", s.name()));
    let a1 = introspect_via(&rec, &first);
    assert_keycloak_active_for(&a1, "cv-refresh");
    let (iat1, exp1) = (a1["iat"].as_u64().unwrap(), a1["exp"].as_u64().unwrap());
    assert_eq!(exp1 - iat1, LIFESPAN, "Keycloak's own lifetime: {a1}");

    // Bounded: four lifetimes (the refresh is due after half of one).
    let until = Instant::now() + Duration::from_secs(4 * LIFESPAN);
    let second = loop {
        match c_token(handle, false) {
            Ok(t) if *t != *first => break t,
            Ok(_) => {}
            Err((s, m)) => panic!(
                "vault_try_get_token_into: {}: {m} (the old token stopped being servable before a refresh replaced it)",
                s.name()
            ),
        }
        assert!(
            Instant::now() < until,
            "no refresh within four token lifetimes"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let a2 = introspect_via(&rec, &second);
    assert_keycloak_active_for(&a2, "cv-refresh");
    let iat2 = a2["iat"].as_u64().unwrap();
    assert!(
        iat2 < exp1,
        "refreshed at {iat2}, old token expired at {exp1}"
    );
    // One request per token: the refresh was a single fetch.
    let seen = rec.take(TOKEN_PATH);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen.iter().all(|r| r.status == 200), "{seen:?}");
    assert_eq!(vault_provider_free(handle), 0);
}
