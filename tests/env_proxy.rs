//! `HTTPS_PROXY`/`HTTP_PROXY` and `NO_PROXY` from the environment are honoured by default.
//! Its own test binary, so that setting the environment touches no other test.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

/// A CONNECT proxy on loopback counting its tunnels.
fn proxy() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let c = c.clone();
            thread::spawn(move || {
                let mut client = conn;
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut b).unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(b[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let Some(target) = head
                    .strip_prefix("CONNECT ")
                    .and_then(|r| r.split(' ').next())
                else {
                    return;
                };
                let Ok(up) = TcpStream::connect(target) else {
                    return;
                };
                c.fetch_add(1, Ordering::SeqCst);
                let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
                let (mut c2, mut u2) = (client.try_clone().unwrap(), up.try_clone().unwrap());
                thread::spawn(move || {
                    let _ = std::io::copy(&mut c2, &mut u2);
                    let _ = u2.shutdown(std::net::Shutdown::Write);
                });
                let (mut c1, mut u1) = (client, up);
                let _ = std::io::copy(&mut u1, &mut c1);
                let _ = c1.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (port, count)
}

#[test]
fn environment_proxy_and_no_proxy() {
    let idp = common::Idp::start();
    let (port, tunnels) = proxy();
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
    std::env::set_var("HTTP_PROXY", format!("http://127.0.0.1:{port}"));
    std::env::set_var("HTTPS_PROXY", format!("http://127.0.0.1:{port}"));
    credvault::Provider::new(&cfg).unwrap().token().unwrap();
    assert_eq!(
        tunnels.load(Ordering::SeqCst),
        1,
        "the environment's proxy was used"
    );
    std::env::set_var("NO_PROXY", "127.0.0.1,localhost");
    credvault::Provider::new(&cfg).unwrap().token().unwrap();
    assert_eq!(tunnels.load(Ordering::SeqCst), 1, "NO_PROXY bypassed it");
    std::env::remove_var("NO_PROXY");
    let off = cfg.replace('}', r#","proxy":"none"}"#);
    credvault::Provider::new(&off).unwrap().token().unwrap();
    assert_eq!(
        tunnels.load(Ordering::SeqCst),
        1,
        "\"proxy\": \"none\" ignores the environment"
    );
}
