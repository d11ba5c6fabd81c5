//! The environment's proxy (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, lower case
//! too) never carries a request to a loopback target, nor any plain `http://` request: the
//! proxy would see the credentials in clear, and the connection would land on the proxy host's
//! loopback, not ours. Nor does an explicit `proxy` key. The environment's proxy still carries
//! `https://` to other hosts (an HTTPS idp reached as `idp.credvault.test` through the test
//! proxy, which resolves every name to 127.0.0.1).
//! Its own test binary, so that setting the environment touches no other test.

mod common;

#[test]
fn loopback_and_plain_http_never_go_through_a_proxy() {
    let idp = common::Idp::start();
    let proxy = common::ConnectProxy::start();
    let cfg = |extra: serde_json::Value| {
        let mut c = serde_json::json!({"token_url": idp.url("/oauth/token"),
            "client_id": "demo-oauth-client", "client_secret": "demo: secret+with%odd chars"});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c.to_string()
    };
    let vars = [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ];
    for var in vars {
        std::env::remove_var(var);
    }
    // Each variable ureq reads, alone, with no NO_PROXY: never used for http://127.0.0.1.
    for var in &vars[..6] {
        std::env::set_var(var, proxy.url());
        credvault::Provider::new(&cfg(serde_json::json!({})))
            .unwrap()
            .token()
            .unwrap_or_else(|e| panic!("{var}: {e}"));
        assert_eq!(
            proxy.tunnels(),
            0,
            "{var}: the environment's proxy was used"
        );
        std::env::remove_var(var);
    }
    // The same with `localhost` and `[::1]`-style names of loopback, and with the `proxy` key.
    std::env::set_var("HTTPS_PROXY", proxy.url());
    std::env::set_var("HTTP_PROXY", proxy.url());
    let localhost = idp.url("/oauth/token").replace("127.0.0.1", "localhost");
    credvault::Provider::new(&cfg(serde_json::json!({"token_url": localhost})))
        .unwrap()
        .token()
        .unwrap();
    assert_eq!(proxy.tunnels(), 0, "localhost went through the proxy");
    credvault::Provider::new(&cfg(serde_json::json!({"proxy": proxy.url()})))
        .unwrap()
        .token()
        .unwrap();
    assert_eq!(
        proxy.tunnels(),
        0,
        "the proxy key carried a plain http:// request"
    );
    // `"proxy": "none"` still works.
    credvault::Provider::new(&cfg(serde_json::json!({"proxy": "none"})))
        .unwrap()
        .token()
        .unwrap();
    assert_eq!(proxy.tunnels(), 0);

    // The positive case: https:// to a host that is not loopback goes through the environment's
    // proxy (a request that skipped it could not even resolve the name).
    let dir = std::env::temp_dir().join(format!("credvault-env-proxy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    };
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_file = write("ca.pem", &ca_params.self_signed(&ca_key).unwrap().pem());
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["idp.credvault.test".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &rcgen::Issuer::from_params(&ca_params, &ca_key))
        .unwrap();
    let cert = write("server.pem", &leaf.pem());
    let key = write("server.key", &leaf_key.serialize_pem());
    let https = common::Idp::start_tls(
        &["--demo", "--tls-cert", &cert, "--tls-key", &key],
        None,
        None,
    );
    let url = https
        .url("/oauth/token")
        .replace("127.0.0.1", "idp.credvault.test");
    credvault::Provider::new(&cfg(
        serde_json::json!({"token_url": url, "ca_file": ca_file}),
    ))
    .unwrap()
    .token()
    .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        proxy.tunnels(),
        1,
        "https:// to another host used the proxy"
    );
}
