//! Against oidc-provider (`tests/interop/oidc-provider/server.mjs`): discovery, both client
//! authentication methods on the wire, scopes granted and refused, introspection of every token,
//! and the server's own error responses. Its clients: `cv-basic` (Basic, scopes `payments
//! reports`), `cv-post` (form body, scope `payments`), `cv-no-grant` (no client credentials
//! grant); the secrets hold `+/=&` and come from the environment.

use credvault::Status;
use serde_json::json;

use crate::wire::Recorder;
use crate::*;

fn issuer() -> String {
    env("CREDVAULT_INTEROP_OIDCP_URL")
}

fn basic_secret() -> String {
    env("OIDCP_BASIC_SECRET")
}

fn post_secret() -> String {
    env("OIDCP_POST_SECRET")
}

/// Introspects as `cv-basic` (oidc-provider lets any authenticated confidential client ask).
fn introspect_token(token: &str) -> serde_json::Value {
    introspect(
        &format!("{}/token/introspection", issuer()),
        "cv-basic",
        &basic_secret(),
        token,
    )
}

#[test]
#[ignore = "needs the interop servers: bash tests/interop/run.sh"]
fn oidc_provider_issuer_discovery() {
    let p = provider(json!({
        "issuer": issuer(),
        "client_id": "cv-basic",
        "client_secret": basic_secret(),
    }));
    let t = token_ok(&p);
    assert_eq!(t.token_type(), "Bearer");
    assert_active_for(&introspect_token(t.secret()), "cv-basic");
}

#[test]
#[ignore = "needs the interop servers: bash tests/interop/run.sh"]
fn oidc_provider_discovery_refuses_a_foreign_issuer() {
    // Through the recorder the metadata names the server's own issuer, not the one configured:
    // OpenID Connect Discovery 1.0 section 4.3 says the client must not use it.
    let rec = Recorder::start(&issuer());
    let p = provider(json!({
        "issuer": rec.base(),
        "client_id": "cv-basic",
        "client_secret": basic_secret(),
    }));
    let e = token_err(&p);
    assert_eq!(e.status(), Status::DiscoveryFailed, "{}", e.message());
    let seen = rec.take("/.well-known/openid-configuration");
    assert!(!seen.is_empty(), "discovery never asked");
    assert!(
        rec.take("/token").is_empty(),
        "a token was asked of an unverified issuer"
    );
}

#[test]
#[ignore = "needs the interop servers: bash tests/interop/run.sh"]
fn oidc_provider_client_secret_basic_on_the_wire() {
    let rec = Recorder::start(&issuer());
    let secret = basic_secret();
    let p = provider(json!({
        "token_url": format!("{}/token", rec.base()),
        "client_id": "cv-basic",
        "client_secret": secret,
        "auth_method": "client_secret_basic",
    }));
    let t = token_ok(&p);
    assert_active_for(&introspect_token(t.secret()), "cv-basic");

    let seen = rec.take("/token");
    assert_eq!(seen.len(), 1, "{seen:?}");
    let r = &seen[0];
    assert_eq!((r.method.as_str(), r.status), ("POST", 200), "{r:?}");
    assert_eq!(r.auth_method(), "client_secret_basic", "{r:?}");
    let (user, pass) = r.basic.as_ref().unwrap();
    assert_eq!(user, "cv-basic");
    assert!(
        rfc6749_encoded(pass, &secret),
        "the Basic password is not the secret form-urlencoded (RFC 6749 2.3.1)"
    );
    assert_eq!(r.field("grant_type"), Some("client_credentials"), "{r:?}");
    assert_eq!(r.field("client_id"), None, "client_id sent twice: {r:?}");
}

#[test]
#[ignore = "needs the interop servers: bash tests/interop/run.sh"]
fn oidc_provider_plain_basic_encoding_is_refused() {
    // The secret holds + / = &: sent unencoded in Basic, the server decodes it to something else.
    let rec = Recorder::start(&issuer());
    let p = provider(json!({
        "token_url": format!("{}/token", rec.base()),
        "client_id": "cv-basic",
        "client_secret": basic_secret(),
        "auth_method": "client_secret_basic",
        "basic_encoding": "plain",
    }));
    let e = token_err(&p);
    assert_error(&e, Status::CredentialsRejected, "invalid_client");
    let seen = rec.take("/token");
    assert_eq!(
        seen.len(),
        1,
        "a rejected credential must not be retried: {seen:?}"
    );
    assert_eq!(seen[0].status, 401, "{seen:?}");
}

#[test]
#[ignore = "needs the interop servers: bash tests/interop/run.sh"]
fn oidc_provider_client_secret_post_on_the_wire() {
    let rec = Recorder::start(&issuer());
    let secret = post_secret();
    let p = provider(json!({
        "token_url": format!("{}/token", rec.base()),
        "client_id": "cv-post",
        "client_secret": secret,
        "auth_method": "client_secret_post",
    }));
    let t = token_ok(&p);
    assert_active_for(&introspect_token(t.secret()), "cv-post");

    let seen = rec.take("/token");
    assert_eq!(seen.len(), 1, "{seen:?}");
    let r = &seen[0];
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.auth_method(), "client_secret_post", "{r:?}");
    assert_eq!(r.field("client_id"), Some("cv-post"), "{r:?}");
    assert!(
        r.form_secret.as_deref().map(|s| s.as_str()) == Some(secret.as_str()),
        "client_secret in the body does not decode to the secret"
    );
}

#[test]
#[ignore = "needs the interop servers: bash tests/interop/run.sh"]
fn oidc_provider_scopes_granted_and_refused() {
    let rec = Recorder::start(&issuer());
    let granted = provider(json!({
        "token_url": format!("{}/token", rec.base()),
        "client_id": "cv-basic",
        "client_secret": basic_secret(),
        "scope": "payments reports",
    }));
    let t = token_ok(&granted);
    let answer = introspect_token(t.secret());
    assert_active_for(&answer, "cv-basic");
    assert_eq!(
        scopes(&answer),
        ["payments", "reports"].map(String::from).into(),
        "{answer}"
    );
    let seen = rec.take("/token");
    assert_eq!(seen[0].field("scope"), Some("payments reports"), "{seen:?}");

    // `admin` is a scope the server knows but `cv-post` may not have.
    let refused = provider(json!({
        "token_url": format!("{}/token", rec.base()),
        "client_id": "cv-post",
        "client_secret": post_secret(),
        "auth_method": "client_secret_post",
        "scope": "payments admin",
    }));
    let e = token_err(&refused);
    assert_error(&e, Status::ScopeRejected, "invalid_scope");
    let seen = rec.take("/token");
    assert_eq!(
        seen.len(),
        1,
        "a refused scope must not be retried: {seen:?}"
    );
    assert_eq!(seen[0].status, 400, "{seen:?}");
}

#[test]
#[ignore = "needs the interop servers: bash tests/interop/run.sh"]
fn oidc_provider_error_responses() {
    let rec = Recorder::start(&issuer());
    let token_url = format!("{}/token", rec.base());
    let cases = [
        // wrong secret, both methods
        (
            "cv-basic",
            "not-the-secret",
            "client_secret_basic",
            Status::CredentialsRejected,
            "invalid_client",
            401,
        ),
        (
            "cv-post",
            "not-the-secret",
            "client_secret_post",
            Status::CredentialsRejected,
            "invalid_client",
            401,
        ),
        // a client the server never heard of
        (
            "cv-nobody",
            "whatever-secret",
            "client_secret_basic",
            Status::CredentialsRejected,
            "invalid_client",
            401,
        ),
        // a known client without the client credentials grant: oidc-provider answers
        // invalid_request (not unauthorized_client); it must surface as an OAuth error
        (
            "cv-no-grant",
            &env("OIDCP_NOGRANT_SECRET"),
            "client_secret_basic",
            Status::OauthError,
            "invalid_request",
            400,
        ),
    ];
    for (id, secret, method, status, code, http) in cases {
        let p = provider(json!({
            "token_url": token_url,
            "client_id": id,
            "client_secret": secret,
            "auth_method": method,
        }));
        let e = token_err(&p);
        assert_error(&e, status, code);
        let seen = rec.take("/token");
        assert_eq!(seen.len(), 1, "{id}: not retried: {seen:?}");
        assert_eq!(seen[0].status, http, "{id}: {seen:?}");
        assert_eq!(seen[0].auth_method(), method, "{id}: {seen:?}");
    }
}
