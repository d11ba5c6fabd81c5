//! Test support: runs the local identity provider (`credvault idp`) as a child process on
//! loopback and talks to its admin API. Shared by the integration tests and the benchmarks.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use serde_json::Value;

/// Every event the library reports while a test binary runs is checked against the secrets its
/// identity providers know: each Idp installs a log hook (once per process) for the whole run of
/// the refresh, error, dialect, TLS and other tests, and asserts when it is dropped that no event
/// carried a secret or a token (values that could carry one are removed at the source).
/// A test that installs a hook of its own replaces this one.
static SECRETS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
/// Events seen, and events that held a secret or a token-shaped value.
static SEEN: AtomicUsize = AtomicUsize::new(0);
static LEAKED: AtomicUsize = AtomicUsize::new(0);

/// The demo clients' secrets (see tools/idp).
const DEMO_SECRETS: &[&str] = &[
    "demo-vitesse-secret",
    "demo-apiture-secret",
    "demo-vipps-secret",
    "demo-vipps-subscription-key",
    "demo-partner-secret",
    "demo-vgs-secret",
    "demo: secret+with%odd chars",
];

/// Whether `event` holds a known secret or something shaped like an idp token (43 base64url
/// characters in a row: the idp's tokens are 32 random bytes so encoded).
fn holds_secret(event: &str) -> bool {
    let secrets = SECRETS.lock().unwrap_or_else(|e| e.into_inner());
    if DEMO_SECRETS
        .iter()
        .copied()
        .chain(secrets.iter().map(String::as_str))
        .any(|s| s.len() >= 6 && event.contains(s))
    {
        return true;
    }
    let mut run = 0;
    event.chars().any(|c| {
        run = if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            run + 1
        } else {
            0
        };
        run >= 43
    })
}

fn watch_events() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        credvault::events::set_hook(
            Some(Box::new(|_, event: &str| {
                SEEN.fetch_add(1, Ordering::Relaxed);
                if holds_secret(event) {
                    LEAKED.fetch_add(1, Ordering::Relaxed);
                }
            })),
            credvault::events::Level::Debug,
        );
    });
}

/// Panics if any event so far held a secret or a token; returns how many events were checked.
pub fn assert_events_hold_no_secret() -> usize {
    assert_eq!(
        LEAKED.load(Ordering::Relaxed),
        0,
        "an event reported to the log hook held a secret or a token"
    );
    SEEN.load(Ordering::Relaxed)
}

/// The `credvault` binary (the `credvault-cli` package, tools/cli). Its own tests get it from
/// Cargo; the library's tests and benchmarks find it beside their own executable's directory
/// (`target/<profile>/deps/TEST` -> `target/<profile>/credvault`): `cargo test` and
/// `cargo build` at the workspace root build it, a narrower `cargo test --test NAME` does not
/// (`cargo build -p credvault-cli` then). `$CREDVAULT_BIN` overrides both.
pub fn credvault_bin() -> std::path::PathBuf {
    if let Some(own) = option_env!("CARGO_BIN_EXE_credvault") {
        return own.into();
    }
    if let Some(bin) = std::env::var_os("CREDVAULT_BIN") {
        return bin.into();
    }
    let exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("a test runs from target/<profile>/deps");
    let bin = profile_dir.join("credvault");
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo build -p credvault-cli{}` (a plain `cargo test` at \
         the workspace root builds it)",
        bin.display(),
        if profile_dir.ends_with("release") {
            " --release"
        } else {
            ""
        }
    );
    bin
}

/// A running `credvault idp`, killed when dropped (and exiting by itself if we die: its stdin
/// is a pipe from us and it runs with `--exit-on-stdin-eof`).
pub struct Idp {
    child: Child,
    _stdin: ChildStdin,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    agent: ureq::Agent,
}

impl Idp {
    /// Starts an idp with the demo clients on 127.0.0.1.
    pub fn start() -> Idp {
        Idp::start_with(&["--demo"])
    }

    pub fn start_with(extra: &[&str]) -> Idp {
        Idp::start_tls(extra, None, None)
    }

    /// Starts an idp; its admin API is reached trusting `ca_pem` (a PEM file) and presenting
    /// `client` (certificate and key PEM files) when given.
    pub fn start_tls(extra: &[&str], ca_pem: Option<&str>, client: Option<(&str, &str)>) -> Idp {
        watch_events();
        let mut child = Command::new(credvault_bin())
            .arg("idp")
            .arg("--exit-on-stdin-eof")
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn credvault idp");
        let stdin = child.stdin.take().expect("stdin");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read idp banner");
        let base = line
            .trim()
            .strip_prefix("credvault-idp listening on ")
            .unwrap_or_else(|| panic!("unexpected idp banner: {line:?}"))
            .to_string();
        let pem_certs = |path: &str| -> Vec<ureq::tls::Certificate<'static>> {
            let pem = std::fs::read(path).expect("read PEM");
            ureq::tls::parse_pem(&pem)
                .filter_map(|i| match i {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect()
        };
        let mut tls = ureq::tls::TlsConfig::builder();
        if let Some(ca) = ca_pem {
            tls = tls.root_certs(ureq::tls::RootCerts::new_with_certs(&pem_certs(ca)));
        }
        if let Some((cert, key)) = client {
            let key = ureq::tls::PrivateKey::from_pem(&std::fs::read(key).expect("read key"))
                .expect("key");
            tls = tls.client_cert(Some(ureq::tls::ClientCert::new_with_certs(
                &pem_certs(cert),
                key,
            )));
        }
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .tls_config(tls.build())
            .proxy(None)
            .build()
            .into();
        Idp {
            child,
            _stdin: stdin,
            base,
            agent,
        }
    }

    /// The idp's process id (benchmarks read its CPU time).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = self.url(path);
        let resp = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, Some(b)) => self
                .agent
                .post(&url)
                .content_type("application/json")
                .send(b.to_string().as_bytes()),
            (_, None) => self.agent.post(&url).send_empty(),
        }
        .expect("admin request");
        let status = resp.status().as_u16();
        let text = resp.into_body().read_to_string().unwrap_or_default();
        assert!(status < 300, "admin {method} {path} -> {status}: {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Registers a client (see the idp's doc for the object).
    pub fn add_client(&self, client: Value) {
        for key in ["client_secret", "subscription_key"] {
            if let Some(s) = client[key].as_str() {
                SECRETS
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(s.to_string());
            }
        }
        self.admin("POST", "/_idp/clients", Some(client));
    }

    /// Appends a fault rule.
    pub fn fault(&self, rule: Value) {
        self.admin("POST", "/_idp/faults", Some(rule));
    }

    pub fn clear_faults(&self) {
        self.admin("DELETE", "/_idp/faults", None);
    }

    pub fn stats(&self) -> Value {
        self.admin("GET", "/_idp/stats", None)
    }

    /// Successful token responses so far.
    pub fn tokens_issued(&self) -> u64 {
        self.stats()["tokens_issued"]
            .as_u64()
            .expect("tokens_issued")
    }

    /// Requests that reached a token endpoint so far (failed ones included).
    pub fn token_requests(&self) -> u64 {
        self.stats()["token_requests"]
            .as_u64()
            .expect("token_requests")
    }

    pub fn reset(&self) {
        self.admin("POST", "/_idp/reset", None);
    }

    pub fn last_request(&self) -> Value {
        self.admin("GET", "/_idp/last_request", None)
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !thread::panicking() {
            assert_events_hold_no_secret();
        }
    }
}

/// A CONNECT proxy on loopback that counts the tunnels it opens. It connects every tunnel to
/// 127.0.0.1 at the port asked for, whatever the host name.
pub struct ConnectProxy {
    pub port: u16,
    tunnels: Arc<AtomicUsize>,
}

impl ConnectProxy {
    pub fn start() -> ConnectProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let tunnels = Arc::new(AtomicUsize::new(0));
        let counter = tunnels.clone();
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let counter = counter.clone();
                thread::spawn(move || tunnel(client, &counter));
            }
        });
        ConnectProxy { port, tunnels }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn tunnels(&self) -> usize {
        self.tunnels.load(Ordering::SeqCst)
    }
}

fn tunnel(mut client: TcpStream, counter: &AtomicUsize) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte).unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let Some(target) = head
        .strip_prefix("CONNECT ")
        .and_then(|r| r.split(' ').next())
    else {
        let _ = client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n");
        return;
    };
    // Every name is resolved to 127.0.0.1 (the port kept): tests reach a "remote" host
    // (`https://idp.credvault.test:PORT`) through the proxy without leaving loopback.
    let port = target.rsplit(':').next().unwrap_or("");
    let Ok(upstream) = TcpStream::connect(format!("127.0.0.1:{port}")) else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
        return;
    };
    counter.fetch_add(1, Ordering::SeqCst);
    let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
    let (Ok(mut c2), Ok(mut u2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let (mut c1, mut u1) = (client, upstream);
    thread::spawn(move || {
        let _ = std::io::copy(&mut c2, &mut u2);
        let _ = u2.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut u1, &mut c1);
    let _ = c1.shutdown(std::net::Shutdown::Write);
}
