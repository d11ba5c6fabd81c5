//! Transport security against a local HTTPS identity provider with certificates made at test
//! time (rcgen): trusted and untrusted CAs, wrong host name, expired certificate, `ca_file` and
//! `ca_only`, mutual TLS, and a CONNECT proxy used or bypassed.

mod common;

use std::path::PathBuf;

use common::Idp;
use credvault::{Provider, Status};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use serde_json::{json, Value};

/// A throwaway folder for one test's PEM files.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("credvault-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
    fn write(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Ca {
    params: CertificateParams,
    key: KeyPair,
    pem: String,
}

fn make_ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let pem = params.self_signed(&key).unwrap().pem();
    Ca { params, key, pem }
}

/// A leaf certificate for `names`, signed by `ca`; returns (cert PEM, key PEM).
fn leaf(ca: &Ca, names: &[&str], expired: bool) -> (String, String) {
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    if expired {
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    }
    let key = KeyPair::generate().unwrap();
    let issuer = Issuer::from_params(&ca.params, &ca.key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// An HTTPS idp with a server certificate for `names` from `ca`; with `client` = (client CA,
/// client certificate, client key) it requires client certificates. Its admin API is reached
/// trusting `ca` when the server certificate is valid for 127.0.0.1.
fn https_idp(
    dir: &Dir,
    ca: &Ca,
    names: &[&str],
    expired: bool,
    client: Option<(&str, &str, &str)>,
) -> Idp {
    let (cert, key) = leaf(ca, names, expired);
    let cert = dir.write("server.pem", &cert);
    let key = dir.write("server.key", &key);
    let ca_file = dir.write("server-ca.pem", &ca.pem);
    let mut args = vec![
        "--demo",
        "--tls-cert",
        cert.as_str(),
        "--tls-key",
        key.as_str(),
    ];
    if let Some((client_ca, _, _)) = client {
        args.extend(["--client-ca", client_ca]);
    }
    let admin_ok = !expired && names.contains(&"127.0.0.1");
    let idp = Idp::start_tls(
        &args,
        admin_ok.then_some(ca_file.as_str()),
        client.map(|(_, c, k)| (c, k)),
    );
    assert!(idp.base.starts_with("https://"), "{}", idp.base);
    idp
}

fn cfg(idp: &Idp, extra: Value) -> String {
    let mut c = json!({"token_url": idp.url("/oauth/token"), "client_id": "demo-oauth-client",
        "client_secret": "demo: secret+with%odd chars", "cooldown_ms": 0, "proxy": "none"});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c.to_string()
}

#[test]
fn trusted_private_ca_works_with_ca_file_and_ca_only() {
    let dir = Dir::new("trusted");
    let ca = make_ca("credvault test CA");
    let ca_file = dir.write("ca.pem", &ca.pem);
    let idp = https_idp(&dir, &ca, &["localhost", "127.0.0.1"], false, None);
    for extra in [
        json!({"ca_file": ca_file}),
        json!({"ca_file": ca_file, "ca_only": true}),
    ] {
        let p = Provider::new(&cfg(&idp, extra)).unwrap();
        assert!(!p.token().unwrap().secret().is_empty());
    }
    // By host name too.
    let by_name = idp.url("/oauth/token").replace("127.0.0.1", "localhost");
    let p = Provider::new(
        &json!({"token_url": by_name, "client_id": "demo-oauth-client",
        "client_secret": "demo: secret+with%odd chars", "ca_file": ca_file, "proxy": "none"})
        .to_string(),
    )
    .unwrap();
    p.token().unwrap();
}

#[test]
fn untrusted_ca_fails_with_a_tls_status() {
    let dir = Dir::new("untrusted");
    let ca = make_ca("unknown CA");
    let idp = https_idp(&dir, &ca, &["localhost", "127.0.0.1"], false, None);
    let e = Provider::new(&cfg(&idp, json!({})))
        .unwrap()
        .token()
        .unwrap_err();
    assert_eq!(e.status(), Status::Tls, "{e}");
    assert!(
        e.message().contains("UnknownIssuer") || e.message().contains("not trusted"),
        "{e}"
    );
    // A different private CA does not help.
    let other = ca_file_of(&dir, "other CA");
    let e = Provider::new(&cfg(&idp, json!({"ca_file": other, "ca_only": true})))
        .unwrap()
        .token()
        .unwrap_err();
    assert_eq!(e.status(), Status::Tls, "{e}");
    assert_eq!(
        idp.token_requests(),
        0,
        "credentials never sent over an unverified connection"
    );
}

fn ca_file_of(dir: &Dir, name: &str) -> String {
    dir.write(
        &format!("{}.pem", name.replace(' ', "-")),
        &make_ca(name).pem,
    )
}

#[test]
fn wrong_host_name_fails_with_a_tls_status() {
    let dir = Dir::new("hostname");
    let ca = make_ca("credvault test CA");
    let ca_file = dir.write("ca.pem", &ca.pem);
    let idp = https_idp(&dir, &ca, &["identity.example.com"], false, None);
    let e = Provider::new(&cfg(&idp, json!({"ca_file": ca_file})))
        .unwrap()
        .token()
        .unwrap_err();
    assert_eq!(e.status(), Status::Tls, "{e}");
    assert!(
        e.message().contains("NotValidForName") || e.message().contains("not valid for name"),
        "{e}"
    );
}

#[test]
fn expired_certificate_fails_with_a_tls_status() {
    let dir = Dir::new("expired");
    let ca = make_ca("credvault test CA");
    let ca_file = dir.write("ca.pem", &ca.pem);
    let idp = https_idp(&dir, &ca, &["localhost", "127.0.0.1"], true, None);
    let e = Provider::new(&cfg(&idp, json!({"ca_file": ca_file})))
        .unwrap()
        .token()
        .unwrap_err();
    assert_eq!(e.status(), Status::Tls, "{e}");
    assert!(e.message().to_lowercase().contains("expired"), "{e}");
}

#[test]
fn mutual_tls_with_and_without_a_client_certificate() {
    let dir = Dir::new("mtls");
    let ca = make_ca("credvault test CA");
    let ca_file = dir.write("ca.pem", &ca.pem);
    let client_ca = make_ca("client CA");
    let client_ca_file = dir.write("client-ca.pem", &client_ca.pem);
    let (cert, key) = leaf(&client_ca, &["demo-oauth-client"], false);
    let cert = dir.write("client.pem", &cert);
    let key = dir.write("client.key", &key);
    let idp = https_idp(
        &dir,
        &ca,
        &["localhost", "127.0.0.1"],
        false,
        Some((&client_ca_file, &cert, &key)),
    );
    let p = Provider::new(&cfg(
        &idp,
        json!({"ca_file": ca_file, "client_cert_file": cert, "client_key_file": key}),
    ))
    .unwrap();
    p.token().unwrap();
    assert_eq!(idp.last_request()["client_cert"], true);
    let e = Provider::new(&cfg(&idp, json!({"ca_file": ca_file, "deadline_ms": 1000})))
        .unwrap()
        .token()
        .unwrap_err();
    // Under TLS 1.3 the server's refusal can arrive after the client's handshake finished, as an
    // alert or as a reset on the first write: either way a TLS or network status, never a token.
    assert!(matches!(e.status(), Status::Tls | Status::Network), "{e}");
    assert_eq!(
        idp.tokens_issued(),
        1,
        "only the request with a certificate got a token"
    );
    // Half a client certificate is a config error.
    let e = Provider::new(&cfg(&idp, json!({"client_cert_file": cert}))).unwrap_err();
    assert!(e.message().contains("both or neither"), "{e}");
}

#[test]
fn connect_proxy_carries_https_to_other_hosts_never_to_loopback() {
    let dir = Dir::new("proxy");
    let ca = make_ca("credvault test CA");
    let ca_file = dir.write("ca.pem", &ca.pem);
    // A "remote" name the test proxy resolves to 127.0.0.1 (nothing leaves loopback; a request
    // that skipped the proxy would fail to resolve it).
    let remote = "idp.credvault.test";
    let idp = https_idp(&dir, &ca, &["localhost", "127.0.0.1", remote], false, None);
    let proxy = common::ConnectProxy::start();
    let via = proxy.url();
    let remote_url = idp.url("/oauth/token").replace("127.0.0.1", remote);
    let p = Provider::new(&cfg(
        &idp,
        json!({"token_url": remote_url, "ca_file": ca_file, "proxy": via}),
    ))
    .unwrap();
    p.token().unwrap();
    assert_eq!(
        proxy.tunnels(),
        1,
        "the token request went through the proxy"
    );
    // Loopback is never proxied, whatever `proxy` and `no_proxy` say.
    for extra in [
        json!({"ca_file": ca_file, "proxy": via}),
        json!({"ca_file": ca_file, "proxy": via, "no_proxy": "localhost,127.0.0.1"}),
    ] {
        Provider::new(&cfg(&idp, extra)).unwrap().token().unwrap();
        assert_eq!(proxy.tunnels(), 1, "loopback went through the proxy");
    }
}

#[test]
fn transport_config_errors_name_the_field() {
    for (extra, needle) in [
        (json!({"ca_file": "/nonexistent/ca.pem"}), "ca_file"),
        (json!({"ca_only": true}), "ca_only: requires ca_file"),
        (json!({"proxy": "ftp://x"}), "proxy"),
        (
            json!({"proxy": "http://user:pw@127.0.0.1:1"}),
            "credentials",
        ),
        (json!({"no_proxy": "a"}), "no_proxy"),
    ] {
        let mut c =
            json!({"token_url": "https://a.example/t", "client_id": "c", "client_secret": "s"});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        let e = Provider::new(&c.to_string()).unwrap_err();
        assert_eq!(e.status(), Status::InvalidConfig);
        assert!(e.message().contains(needle), "{e}");
        assert!(!e.message().contains("pw@"), "{e}");
    }
}
