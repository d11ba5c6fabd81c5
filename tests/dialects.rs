//! Every provider dialect and every error of the token endpoint client, against the local
//! identity provider on loopback.

mod common;

use common::Idp;
use credvault::{Provider, Status};
use serde_json::json;

fn provider(cfg: serde_json::Value) -> Provider {
    Provider::new(&cfg.to_string()).unwrap_or_else(|e| panic!("config rejected: {e}"))
}

fn err_of(p: &Provider) -> credvault::Error {
    p.token().expect_err("expected the fetch to fail")
}

/// The error of a fetch against a fault that stays until cleared. Such a fetch is retried until
/// its deadline, and when the deadline cuts the last attempt short its error is that attempt's
/// `Timeout` rather than the fault's (endpoint::with_retries); so up to three fetches are made
/// and the first that is not such a `Timeout` is returned.
fn err_of_lasting_fault(p: &Provider) -> credvault::Error {
    let mut e = err_of(p);
    for _ in 0..2 {
        if e.status() != Status::Timeout {
            break;
        }
        e = err_of(p);
    }
    e
}

/// Gets a token twice (the second from cache) and checks the idp issued exactly one.
fn fetch_and_cache(idp: &Idp, p: &Provider) -> String {
    let before = idp.tokens_issued();
    let t1 = p.token().expect("token");
    let t2 = p.token().expect("cached token");
    assert!(
        t1.secret() == t2.secret(),
        "second call is served from cache"
    );
    assert!(!t1.secret().is_empty());
    assert_eq!(t1.token_type(), "Bearer");
    assert!(
        *t1.authorization() == format!("Bearer {}", t1.secret()),
        "authorization value"
    );
    assert_eq!(
        idp.tokens_issued(),
        before + 1,
        "one token request for two calls"
    );
    t1.secret().to_string()
}

#[test]
fn vitesse_client_secret_post_with_default_scope() {
    let idp = Idp::start();
    let p = provider(
        json!({"preset": "vitesse-staging", "token_url": idp.url("/vitesse/connect/token"),
        "client_id": "demo-vitesse-client", "client_secret": "demo-vitesse-secret"}),
    );
    fetch_and_cache(&idp, &p);
    let req = idp.last_request();
    let keys: Vec<&str> = req["form_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    for k in ["grant_type", "client_id", "client_secret", "scope"] {
        assert!(keys.contains(&k), "form has {k}: {req}");
    }
    assert_eq!(req["headers"]["accept"], "application/json");
    assert_eq!(req["auth_scheme"], "none");
    // A second scope is a second provider with its own token.
    let f = provider(
        json!({"preset": "vitesse-staging", "token_url": idp.url("/vitesse/connect/token"),
        "client_id": "demo-vitesse-client", "client_secret": "demo-vitesse-secret", "scope": "Foundations"}),
    );
    let a = fetch_and_cache(&idp, &f);
    assert!(
        a != p.token().unwrap().secret(),
        "another scope, another token"
    );
}

#[test]
fn apiture_discovery_and_basic_auth() {
    let idp = Idp::start();
    let p = provider(
        json!({"preset": "apiture", "issuer": idp.url("/apiture/oidc/"),
        "client_id": "demo-apiture-client", "client_secret": "demo-apiture-secret"}),
    );
    fetch_and_cache(&idp, &p);
    let stats = idp.stats();
    assert_eq!(stats["discovery_requests"], 1, "{stats}");
    assert_eq!(idp.last_request()["auth_scheme"], "basic");
    // Discovery is cached: a new token after invalidation needs no second lookup.
    assert!(p.invalidate());
    p.token().unwrap();
    assert_eq!(idp.stats()["discovery_requests"], 1);
}

#[test]
fn rfc8414_fallback_only_on_404() {
    // Any answer but 404 from openid-configuration is the answer (a 500 is
    // retried, then reported); only a 404 sends discovery on to the RFC 8414 document.
    let idp = Idp::start();
    idp.fault(
        json!({"path": "/rfc8414/.well-known/openid-configuration", "status": 500,
        "count": 0}),
    );
    let p = provider(
        json!({"issuer": idp.url("/rfc8414"), "client_id": "demo-oauth-client",
        "client_secret": "demo: secret+with%odd chars", "deadline_ms": 1000, "cooldown_ms": 0}),
    );
    let e = err_of(&p);
    assert!(e.message().contains("openid-configuration"), "{e}");
    let stats = idp.stats();
    let by_path = &stats["by_path"];
    assert!(
        by_path
            .get("/.well-known/oauth-authorization-server/rfc8414")
            .is_none(),
        "no RFC 8414 request after a 500: {stats}"
    );
    assert_eq!(idp.tokens_issued(), 0);
    idp.clear_faults();
    fetch_and_cache(&idp, &p);
}

#[test]
fn rfc8414_discovery_fallback() {
    let idp = Idp::start();
    let p = provider(
        json!({"issuer": idp.url("/rfc8414"), "client_id": "demo-oauth-client",
        "client_secret": "demo: secret+with%odd chars"}),
    );
    fetch_and_cache(&idp, &p);
    assert_eq!(
        idp.stats()["discovery_requests"],
        2,
        "openid-configuration 404, then RFC 8414"
    );
}

#[test]
fn discovery_rejects_issuer_mismatch() {
    let idp = Idp::start();
    // The metadata names `.../apiture/oidc/` as issuer; configuring it without the slash must fail.
    let p = provider(
        json!({"issuer": idp.url("/apiture/oidc"), "client_id": "demo-apiture-client",
        "client_secret": "demo-apiture-secret", "basic_encoding": "plain"}),
    );
    let e = err_of(&p);
    assert_eq!(e.status(), Status::DiscoveryFailed, "{e}");
    assert!(e.message().contains("issuer"), "{e}");
    assert_eq!(idp.tokens_issued(), 0);
}

#[test]
fn vipps_standard_headers_and_string_numbers() {
    let idp = Idp::start();
    let p = provider(
        json!({"preset": "vipps-test", "token_url": idp.url("/vipps/accesstoken/get"),
        "client_id": "demo-vipps-client", "client_secret": "demo-vipps-secret",
        "headers": {"Ocp-Apim-Subscription-Key": "demo-vipps-subscription-key",
                    "Merchant-Serial-Number": "123456", "Vipps-System-Name": "credvault-tests"}}),
    );
    fetch_and_cache(&idp, &p);
    let req = idp.last_request();
    assert_eq!(req["body_bytes"], 0, "Vipps takes an empty body: {req}");
    assert_eq!(req["headers"]["merchant-serial-number"], "123456");
    assert_eq!(req["headers"]["ocp-apim-subscription-key"], "<redacted>");
    // The string-typed expires_in (\"3600\") was understood: served for about an hour, and
    // (a first token) refreshed after 37.5 % to 75 % of it.
    let (_, refresh_in, serve_for) = p.schedule().unwrap();
    assert!(
        refresh_in.as_secs() > 1300 && serve_for.as_secs() > 3500,
        "{refresh_in:?} {serve_for:?}"
    );
}

#[test]
fn vipps_wrong_subscription_key_is_rejected_without_leaking_it() {
    let idp = Idp::start();
    let p = provider(
        json!({"preset": "vipps-test", "token_url": idp.url("/vipps/accesstoken/get"),
        "client_id": "demo-vipps-client", "client_secret": "demo-vipps-secret",
        "headers": {"Ocp-Apim-Subscription-Key": "wrong-key-Kq7v2Xw9Zr4m"}}),
    );
    let e = err_of(&p);
    assert_eq!(e.status(), Status::CredentialsRejected, "{e}");
    assert!(e.message().contains("subscription key"), "{e}");
    assert!(!e.to_string().contains("wrong-key-Kq7v2Xw9Zr4m"));
}

#[test]
fn vipps_partner_basic() {
    let idp = Idp::start();
    let p = provider(
        json!({"preset": "vipps-partner-test", "token_url": idp.url("/vipps/miami/v1/token"),
        "client_id": "demo-partner-client", "client_secret": "demo-partner-secret"}),
    );
    fetch_and_cache(&idp, &p);
    let (_, _, serve_for) = p.schedule().unwrap();
    assert!(
        serve_for.as_secs() > 800 && serve_for.as_secs() <= 900,
        "{serve_for:?}"
    );
}

#[test]
fn vgs_lowercase_token_type_and_ignored_refresh_token() {
    let idp = Idp::start();
    let p = provider(
        json!({"preset": "vgs", "token_url": idp.url("/vgs/auth/realms/vgs/protocol/openid-connect/token"),
        "client_id": "demo-vgs-client", "client_secret": "demo-vgs-secret"}),
    );
    fetch_and_cache(&idp, &p);
    // 5-minute tokens: the safety margin scales down to a tenth of the lifetime.
    let (_, refresh_in, serve_for) = p.schedule().unwrap();
    assert!(
        serve_for.as_secs() >= 265 && serve_for.as_secs() <= 270,
        "{serve_for:?}"
    );
    // A first token: refreshed after 37.5 % to 75 % of its lifetime.
    assert!(
        refresh_in.as_secs() >= 110 && refresh_in.as_secs() <= 225,
        "{refresh_in:?}"
    );
}

#[test]
fn vgs_switched_to_basic_sends_rfc6749_encoded_credentials() {
    // VGS runs Keycloak, which URL-decodes Basic credentials (RFC 6749 section 2.3.1), as the
    // idp's vgs dialect does: plain `id:secret` would turn this secret's `+` into a space.
    let idp = Idp::start();
    let secret = "vgs+secret/with=odd&chars%2B";
    idp.add_client(
        json!({"dialect": "vgs", "client_id": "vgs-basic-client", "client_secret": secret}),
    );
    let p = provider(
        json!({"preset": "vgs", "token_url": idp.url("/vgs/auth/realms/vgs/protocol/openid-connect/token"),
        "auth_method": "client_secret_basic", "client_id": "vgs-basic-client", "client_secret": secret}),
    );
    fetch_and_cache(&idp, &p);
    let last = idp.last_request();
    assert_eq!(last["auth_scheme"], "basic", "{last}");
    assert_eq!(last["auth_encoding_ok"], true, "{last}");
    // An explicit basic_encoding still wins: plain is what Keycloak refuses.
    let plain = provider(
        json!({"preset": "vgs", "token_url": idp.url("/vgs/auth/realms/vgs/protocol/openid-connect/token"),
        "auth_method": "client_secret_basic", "basic_encoding": "plain",
        "client_id": "vgs-basic-client", "client_secret": secret}),
    );
    assert_eq!(err_of(&plain).status(), Status::CredentialsRejected);
}

#[test]
fn rfc6749_basic_encoding_survives_odd_characters() {
    let idp = Idp::start();
    let p = provider(
        json!({"token_url": idp.url("/oauth/token"), "client_id": "demo-oauth-client",
        "client_secret": "demo: secret+with%odd chars"}),
    );
    fetch_and_cache(&idp, &p);
    assert_eq!(idp.last_request()["auth_encoding_ok"], true);
    // The plain encoding of the same secret is not what a strict RFC 6749 server expects.
    let plain = provider(
        json!({"token_url": idp.url("/oauth/token"), "client_id": "demo-oauth-client",
        "client_secret": "demo: secret+with%odd chars", "basic_encoding": "plain"}),
    );
    assert_eq!(err_of(&plain).status(), Status::CredentialsRejected);
    idp.add_client(
        json!({"dialect": "oauth", "client_id": "ü id:1", "client_secret": "pa ss:wörd+%/="}),
    );
    let unicode = provider(
        json!({"token_url": idp.url("/oauth/token"), "client_id": "ü id:1",
        "client_secret": "pa ss:wörd+%/="}),
    );
    fetch_and_cache(&idp, &unicode);
    let post = provider(
        json!({"token_url": idp.url("/oauth/token"), "client_id": "ü id:1",
        "client_secret": "pa ss:wörd+%/=", "auth_method": "client_secret_post"}),
    );
    fetch_and_cache(&idp, &post);
}

#[test]
fn ipv6_loopback() {
    let idp = Idp::start_with(&["--demo", "--listen", "[::1]:0"]);
    assert!(idp.base.starts_with("http://[::1]:"));
    let p = provider(
        json!({"token_url": idp.url("/oauth/token"), "client_id": "demo-oauth-client",
        "client_secret": "demo: secret+with%odd chars"}),
    );
    fetch_and_cache(&idp, &p);
}

#[test]
fn lifetime_fallbacks() {
    let idp = Idp::start();
    let base = json!({"client_id": "demo-oauth-client", "client_secret": "demo: secret+with%odd chars",
        "default_lifetime_s": 120});
    let with = |path: &str| {
        let mut c = base.clone();
        c["token_url"] = json!(idp.url(path));
        provider(c)
    };
    let p = with("/oauth/token-expires-on");
    p.token().unwrap();
    let (_, _, serve_for) = p.schedule().unwrap();
    assert!(serve_for.as_secs() > 3000, "expires_on used: {serve_for:?}");
    let p = with("/oauth/token-no-expiry");
    p.token().unwrap();
    let (_, _, serve_for) = p.schedule().unwrap();
    assert!(
        serve_for.as_secs() <= 108 && serve_for.as_secs() > 100,
        "default lifetime: {serve_for:?}"
    );
    let p = with("/oauth/token-no-type");
    assert_eq!(
        p.token().unwrap().token_type(),
        "Bearer",
        "absent token_type means Bearer"
    );
}

#[test]
fn oauth_errors_map_to_statuses() {
    let idp = Idp::start();
    let vitesse = |secret: &str, scope: &str| {
        provider(
            json!({"preset": "vitesse-staging", "token_url": idp.url("/vitesse/connect/token"),
            "client_id": "demo-vitesse-client", "client_secret": secret, "scope": scope, "cooldown_ms": 0}),
        )
    };
    let e = err_of(&vitesse("wrong-secret-value", "API"));
    assert_eq!(e.status(), Status::CredentialsRejected);
    assert!(e.message().contains("invalid_client"), "{e}");
    assert!(!e.to_string().contains("wrong-secret-value"));
    let e = err_of(&vitesse("demo-vitesse-secret", "Nope"));
    assert_eq!(e.status(), Status::ScopeRejected);
    assert!(
        e.message().contains("invalid_scope") && e.message().contains("Nope"),
        "{e}"
    );
    // Not retried: one request each.
    assert_eq!(idp.token_requests(), 2);

    idp.fault(json!({"path": "/oauth/token", "status": 400,
        "body": "{\"error\":\"unsupported_grant_type\",\"error_description\":\"no such grant\"}"}));
    let p = provider(
        json!({"token_url": idp.url("/oauth/token"), "client_id": "demo-oauth-client",
        "client_secret": "demo: secret+with%odd chars", "cooldown_ms": 0}),
    );
    let e = err_of(&p);
    assert_eq!(e.status(), Status::OauthError);
    assert!(
        e.message()
            .contains("unsupported_grant_type: no such grant"),
        "{e}"
    );
}

#[test]
fn malformed_200_responses_say_what_was_wrong() {
    let idp = Idp::start();
    // A 200 that is not a token is retried until the deadline: each fault stays until cleared.
    let p = provider(
        json!({"token_url": idp.url("/oauth/token"), "client_id": "demo-oauth-client",
        "client_secret": "demo: secret+with%odd chars", "cooldown_ms": 0, "deadline_ms": 1000}),
    );
    for (kind, needle) in [
        ("malformed", "not valid JSON"),
        ("html", "not a JSON object"),
        ("empty", "empty body"),
        ("no_token", "no access_token"),
        ("ctl_token", "could break an HTTP header"),
    ] {
        idp.clear_faults();
        idp.fault(json!({"path": "/oauth/token", "kind": kind, "count": 0}));
        let e = err_of_lasting_fault(&p);
        assert_eq!(e.status(), Status::MalformedResponse, "{kind}: {e}");
        assert!(e.message().contains(needle), "{kind}: {e}");
    }
    idp.clear_faults();
    idp.fault(json!({"path": "/oauth/token", "kind": "huge", "size": 2 << 20, "count": 0}));
    let e = err_of_lasting_fault(&p);
    assert_eq!(e.status(), Status::MalformedResponse, "{e}");
    assert!(e.message().contains("1 MiB"), "{e}");
    idp.clear_faults();
    // After the faults, the same provider works.
    p.token().unwrap();
}

#[test]
fn token_types_other_than_bearer_are_refused_not_sent() {
    // A DPoP- or MAC-bound token cannot be used without a per-request proof credvault does not
    // make: refused with a clear message, at once (a retry would get the same), and never served.
    let idp = Idp::start();
    let p = provider(
        json!({"token_url": idp.url("/oauth/token"), "client_id": "demo-oauth-client",
        "client_secret": "demo: secret+with%odd chars", "cooldown_ms": 0}),
    );
    for kind in ["DPoP", "mac", "N_A"] {
        idp.clear_faults();
        idp.reset();
        let body = json!({"access_token": "opaque-token-value-1234", "token_type": kind,
            "expires_in": 300});
        idp.fault(json!({"path": "/oauth/token", "status": 200, "count": 0,
            "content_type": "application/json", "body": body.to_string()}));
        let e = err_of(&p);
        assert_eq!(e.status(), Status::MalformedResponse, "{kind}: {e}");
        assert!(
            e.message()
                .contains(&format!("token_type {kind} is not supported"))
                && e.message().contains("Bearer"),
            "{kind}: {e}"
        );
        assert!(!e.message().contains("opaque-token-value-1234"), "{e}");
        assert_eq!(idp.token_requests(), 1, "{kind}: not retried");
    }
    idp.clear_faults();
    // Bearer in any case is Bearer.
    let body = json!({"access_token": "opaque-token-value-1234", "token_type": "BEARER"});
    idp.fault(
        json!({"path": "/oauth/token", "status": 200, "content_type": "application/json",
        "body": body.to_string()}),
    );
    let t = p.token().expect("bearer in capitals");
    assert_eq!(t.token_type(), "Bearer");
    assert_eq!(*t.authorization(), "Bearer opaque-token-value-1234");
}

#[test]
fn redirects_are_not_followed() {
    let idp = Idp::start();
    let other = Idp::start();
    idp.fault(
        json!({"path": "/oauth/token", "kind": "redirect", "location": other.url("/oauth/token")}),
    );
    let p = provider(
        json!({"token_url": idp.url("/oauth/token"), "client_id": "demo-oauth-client",
        "client_secret": "demo: secret+with%odd chars"}),
    );
    let e = err_of(&p);
    assert_eq!(e.status(), Status::HttpStatus, "{e}");
    assert!(e.message().contains("redirect"), "{e}");
    assert_eq!(
        other.token_requests(),
        0,
        "credentials never reached the redirect target"
    );
}

#[test]
fn connection_refused_is_a_network_error_within_the_deadline() {
    // Bind then drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let p = provider(
        json!({"token_url": format!("http://127.0.0.1:{port}/t"), "client_id": "c",
        "client_secret": "s", "deadline_ms": 700}),
    );
    let started = std::time::Instant::now();
    let e = err_of(&p);
    assert_eq!(e.status(), Status::Network, "{e}");
    assert!(e.message().contains("attempt"), "retried: {e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn invalid_configs_are_refused_at_creation() {
    for (cfg, needle) in [
        (
            json!({"token_url": "http://example.com/t", "client_id": "c", "client_secret": "s"}),
            "loopback",
        ),
        (
            json!({"client_id": "c", "client_secret": "s"}),
            "token_url or issuer",
        ),
        (
            json!({"token_url": "https://a.example/t", "client_secret": "s"}),
            "client_id",
        ),
        (
            json!({"token_url": "https://a.example/t", "client_id": "c", "client_secret": "s", "auth_method": "magic"}),
            "auth_method",
        ),
        (
            json!({"preset": "nope", "client_id": "c", "client_secret": "s"}),
            "preset",
        ),
    ] {
        let e = Provider::new(&cfg.to_string()).unwrap_err();
        assert_eq!(e.status(), Status::InvalidConfig);
        assert!(e.message().contains(needle), "{e}");
    }
}

#[test]
fn hostile_endpoints_hit_limits_not_the_host() {
    let idp = Idp::start();
    let p = provider(
        json!({"token_url": idp.url("/oauth/token"), "client_id": "demo-oauth-client",
        "client_secret": "demo: secret+with%odd chars", "cooldown_ms": 0, "deadline_ms": 1500, "timeout_ms": 1500}),
    );
    // A body that never ends, and one that drips a byte every 200 ms: the deadline ends both.
    for rule in [
        json!({"path": "/oauth/token", "kind": "never_end", "count": 0}),
        json!({"path": "/oauth/token", "kind": "drip", "interval_ms": 200, "count": 0}),
    ] {
        idp.clear_faults();
        idp.fault(rule.clone());
        let started = std::time::Instant::now();
        let e = err_of(&p);
        assert_eq!(e.status(), Status::Timeout, "{rule}: {e}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(4),
            "{rule}: bounded by the deadline"
        );
    }
    idp.clear_faults();
    // 10 MiB: refused at the 1 MiB limit. 100000 nested arrays: refused, no stack overflow.
    // Both are retried like any 200 that is not a token: the faults stay until cleared.
    idp.fault(json!({"path": "/oauth/token", "kind": "huge", "count": 0}));
    let e = err_of_lasting_fault(&p);
    assert_eq!(e.status(), Status::MalformedResponse, "{e}");
    idp.clear_faults();
    idp.fault(json!({"path": "/oauth/token", "kind": "nested", "count": 0}));
    let e = err_of_lasting_fault(&p);
    assert_eq!(e.status(), Status::MalformedResponse, "{e}");
    idp.clear_faults();
    p.token().expect("and the provider still works afterwards");
}
