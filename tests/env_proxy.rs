//! `HTTPS_PROXY`/`HTTP_PROXY` and `NO_PROXY` from the environment are honoured by default.
//! Its own test binary, so that setting the environment touches no other test.

mod common;

#[test]
fn environment_proxy_and_no_proxy() {
    let idp = common::Idp::start();
    let proxy = common::ConnectProxy::start();
    let cfg =
        serde_json::json!({"token_url": idp.url("/oauth/token"), "client_id": "demo-oauth-client",
        "client_secret": "demo: secret+with%odd chars"})
        .to_string();
    for var in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        std::env::remove_var(var);
    }
    std::env::set_var("HTTP_PROXY", proxy.url());
    std::env::set_var("HTTPS_PROXY", proxy.url());
    credvault::Provider::new(&cfg).unwrap().token().unwrap();
    assert_eq!(proxy.tunnels(), 1, "the environment's proxy was used");
    std::env::set_var("NO_PROXY", "127.0.0.1,localhost");
    credvault::Provider::new(&cfg).unwrap().token().unwrap();
    assert_eq!(proxy.tunnels(), 1, "NO_PROXY bypassed it");
    std::env::remove_var("NO_PROXY");
    let off = cfg.replace('}', r#","proxy":"none"}"#);
    credvault::Provider::new(&off).unwrap().token().unwrap();
    assert_eq!(
        proxy.tunnels(),
        1,
        "\"proxy\": \"none\" ignores the environment"
    );
}
