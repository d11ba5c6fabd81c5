//! `credvault idp`: a local identity provider for tests and the demo.
//!
//! A real HTTP/1.1 server on a loopback address that speaks the token dialects of the providers
//! credvault serves (see `docs/PROVIDERS.md`), plus an admin API to register clients, read
//! statistics and inject faults.
//!
//! ```text
//! credvault idp [--listen ADDR] [--clients FILE] [--demo] [--exit-on-stdin-eof] [--verbose]
//!               [--tls-cert FILE --tls-key FILE [--client-ca FILE [--client-cert-optional]]]
//! ```
//!
//! * `--listen ADDR`: loopback address to bind (default `127.0.0.1:0`; `[::1]:0` for IPv6).
//!   Anything outside 127.0.0.0/8 and ::1 is refused (exit status 2).
//! * `--clients FILE`: a JSON array of client objects to register at start.
//! * `--demo`: register the demo clients below.
//! * `--exit-on-stdin-eof`: exit (status 0) when standard input reaches end of file, so a test
//!   that spawns the idp with a piped stdin takes it down with it.
//! * `--verbose`: log `METHOD PATH -> STATUS` of each request to stderr (never credentials), and
//!   the reason of each failed TLS handshake.
//! * `--tls-cert FILE --tls-key FILE` (both or neither): speak HTTPS, and only HTTPS, on the
//!   listener. FILE is PEM: the certificate chain (leaf first), and the private key (PKCS#8,
//!   PKCS#1 RSA or SEC1 EC). The same chain is served to every client; SNI is neither required
//!   nor looked at, so the certificate should name what clients connect to (`localhost`,
//!   `127.0.0.1`, `::1`: clients connecting by IP address send no SNI and check IP SANs).
//!   TLS 1.2 and 1.3 (rustls, ring), ALPN `http/1.1` or `http/1.0` (a client offering only `h2`
//!   is refused). The admin API is behind the same TLS (and client authentication) as the rest.
//! * `--client-ca FILE` (needs `--tls-cert`): PEM certificates; clients must present a
//!   certificate that chains to one of them (mutual TLS, RFC 8705). A handshake without one, or
//!   with one from elsewhere, fails (in TLS 1.3 the client may only learn it at its first read,
//!   from a `certificate_required` or `unknown_ca` alert).
//! * `--client-cert-optional` (needs `--client-ca`): ask for a client certificate and verify it
//!   if sent, but let clients without one in (so that `client_cert` below can be `false`).
//!
//! Files that cannot be read or used (no certificate, no key, a key that does not match the
//! certificate) are reported on stderr with exit status 2, before anything is bound.
//!
//! After binding, exactly one line goes to stdout:
//! `credvault-idp listening on http://127.0.0.1:PORT` (or `http://[::1]:PORT`); with TLS,
//! `credvault-idp listening on https://127.0.0.1:PORT`.
//!
//! A TLS handshake runs in the connection's thread. One that fails closes that connection
//! (after rustls's alert, if any) and counts in `tls_handshake_failures`; a connection closed
//! before its first byte (a port probe) is not counted. Everything after the handshake, faults
//! and keep-alive included, is the same as without TLS; the `close` fault drops the TCP
//! connection without a TLS `close_notify`, and other closes send one.
//!
//! # Endpoints
//!
//! | dialect | endpoint | client authentication |
//! |---|---|---|
//! | vitesse | `POST /vitesse/connect/token` | `client_id`/`client_secret` in the form body |
//! | apiture | `GET /apiture/oidc/.well-known/openid-configuration`, `POST /apiture/oidc/token` | Basic (plain `id:secret`, or RFC 6749-encoded) |
//! | vipps | `POST /vipps/accesstoken/get` | headers `client_id`, `client_secret`, `Ocp-Apim-Subscription-Key` |
//! | vipps-partner | `POST /vipps/miami/v1/token` | Basic (plain or RFC 6749-encoded) |
//! | vgs | `POST /vgs/auth/realms/vgs/protocol/openid-connect/token` | form body, or RFC 6749-encoded Basic (Keycloak URL-decodes) |
//! | oauth | `POST /oauth/token`, `/oauth/token-expires-on`, `/oauth/token-no-expiry`, `/oauth/token-no-type` | RFC 6749 Basic (form-encoded halves) or form body, not both |
//! | oauth (RFC 8414 issuer `http://HOST/rfc8414`, `https://` with TLS) | `GET /.well-known/oauth-authorization-server/rfc8414`, `POST /rfc8414/token` (`/rfc8414/.well-known/openid-configuration` is 404) | as oauth |
//!
//! # Demo clients (`--demo`)
//!
//! Obviously fake credentials, for the demo and for tests:
//!
//! | dialect | client_id | client_secret | other |
//! |---|---|---|---|
//! | vitesse | `demo-vitesse-client` | `demo-vitesse-secret` | scopes `API`, `Foundations` |
//! | apiture | `demo-apiture-client` | `demo-apiture-secret` | |
//! | vipps | `demo-vipps-client` | `demo-vipps-secret` | subscription key `demo-vipps-subscription-key` |
//! | vipps-partner | `demo-partner-client` | `demo-partner-secret` | |
//! | vgs | `demo-vgs-client` | `demo-vgs-secret` | |
//! | oauth | `demo-oauth-client` | `demo: secret+with%odd chars` | (exercises RFC 6749 encoding) |
//!
//! # Client objects (`--clients`, `POST /_idp/clients`)
//!
//! `{"dialect": "vitesse|apiture|vipps|vipps-partner|vgs|oauth", "client_id": "...",
//! "client_secret": "...", "subscription_key": "..." (vipps only, required there),
//! "scopes": [...] (optional; vitesse defaults to ["API"], others accept any scope),
//! "lifetime_s": N (default: vipps-partner 900, vgs 300, others 3600), "token_bytes": N (1 to 8192,
//! default 32)}`. Unknown fields are refused. Registering the same (dialect, client_id) replaces.
//!
//! # Admin API
//!
//! * `GET /_idp/health` -> `{"ok":true}`
//! * `GET /_idp/stats` -> `{"token_requests","tokens_issued","discovery_requests","by_client",
//!   "by_path","issued_by_client","connections","tls_handshake_failures"}`; `by_client` counts
//!   token requests by the client id they name (whatever the outcome), `issued_by_client` the
//!   tokens issued, `by_path` the requests to each token or discovery endpoint, `connections` the
//!   TCP connections accepted (to check that a client reuses them; with TLS this includes those
//!   whose handshake failed), `tls_handshake_failures` the TLS handshakes that failed (always 0
//!   without TLS). When the idp rejects a handshake, the counter is raised before its alert goes
//!   out, so that client reads it already counted; when the client gives up (say, it does not
//!   trust the server certificate), the idp counts on reading the client's alert or close, a
//!   moment later.
//! * `POST /_idp/reset`: zero the counters, clear faults and the last request (clients stay).
//! * `POST /_idp/clients` (201), `GET /_idp/clients` (ids only).
//! * `POST /_idp/faults` (201) appends a rule, `GET /_idp/faults` lists, `DELETE /_idp/faults`
//!   clears. A rule: `{"path": exact path (omitted: every token and discovery endpoint),
//!   "count": N (default 1, 0 = until cleared), "delay_ms": N (slept first, any kind), "kind": ...}`
//!   with kinds `status` (`status` 503, `body`, `content_type`, `retry_after`), `delay`,
//!   `malformed`, `html`, `empty`, `no_token`, `huge` (`size`, default 10 MiB), `never_end`,
//!   `drip` (`interval_ms`, default 500), `nested` (`depth`, default 100000), `redirect`
//!   (`location`), `ctl_token`, `close`. The first matching rule with applications left is used.
//! * `GET /_idp/last_request`: the last token request with secrets redacted (404 before any).
//!   With `--client-ca` it has a field `"client_cert": true|false`, whether that request's
//!   connection presented a verified client certificate (`false` only with
//!   `--client-cert-optional`); without `--client-ca` the field is absent.
//!
//! Discovery documents build their URLs from the `Host` header (else the local address), with
//! the `https` scheme when TLS is on.

mod assertion;
mod dialects;
mod faults;
mod http;
mod tls;

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use parking_lot::Mutex;
use ring::rand::{SecureRandom, SystemRandom};
use serde::Deserialize;
use serde_json::{json, Value};

use faults::{FaultReply, FaultRule};
use http::{Conn, ReadError, Request, Response, Transport};
use tls::{Accepted, ClientAuth, Tls, TlsFiles};

/// How long a connection may sit idle between requests (longer than any client pool keeps one).
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);
const MAX_TOKEN_BYTES: usize = 8192;

const USAGE: &str = "usage: credvault idp [--listen ADDR] [--clients FILE] [--demo] [--exit-on-stdin-eof] [--verbose]
                     [--tls-cert FILE --tls-key FILE [--client-ca FILE [--client-cert-optional]]]";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    Vitesse,
    Apiture,
    Vipps,
    VippsPartner,
    Vgs,
    OAuth,
}

impl Dialect {
    fn parse(s: &str) -> Option<Dialect> {
        Some(match s {
            "vitesse" => Dialect::Vitesse,
            "apiture" => Dialect::Apiture,
            "vipps" => Dialect::Vipps,
            "vipps-partner" => Dialect::VippsPartner,
            "vgs" => Dialect::Vgs,
            "oauth" => Dialect::OAuth,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Dialect::Vitesse => "vitesse",
            Dialect::Apiture => "apiture",
            Dialect::Vipps => "vipps",
            Dialect::VippsPartner => "vipps-partner",
            Dialect::Vgs => "vgs",
            Dialect::OAuth => "oauth",
        }
    }

    fn default_lifetime(self) -> u64 {
        match self {
            Dialect::VippsPartner => 900,
            Dialect::Vgs => 300,
            _ => 3600,
        }
    }
}

/// A registered client.
#[derive(Debug, Clone)]
pub struct Client {
    pub dialect: Dialect,
    pub client_id: String,
    pub client_secret: String,
    pub subscription_key: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub lifetime_s: u64,
    pub token_bytes: usize,
    /// Public keys for `private_key_jwt` (empty: the client authenticates with its secret only).
    pub jwks: Vec<assertion::PublicJwk>,
}

/// A client object as registered.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientSpec {
    dialect: String,
    client_id: String,
    /// Optional for a client registered with `jwks` only.
    #[serde(default)]
    client_secret: String,
    subscription_key: Option<String>,
    scopes: Option<Vec<String>>,
    lifetime_s: Option<u64>,
    token_bytes: Option<usize>,
    /// A JWK set of public keys, for `private_key_jwt`.
    jwks: Option<Value>,
}

impl ClientSpec {
    fn into_client(self) -> Result<Client, String> {
        let dialect = Dialect::parse(&self.dialect).ok_or_else(|| {
            format!(
                "unknown dialect '{}' (vitesse, apiture, vipps, vipps-partner, vgs, oauth)",
                self.dialect
            )
        })?;
        if self.client_id.is_empty() {
            return Err("client_id must not be empty".into());
        }
        let jwks = match &self.jwks {
            Some(v) => assertion::parse_jwks(v)?,
            None => Vec::new(),
        };
        if self.client_secret.is_empty() && jwks.is_empty() {
            return Err("client_secret (or jwks) is required".into());
        }
        if dialect == Dialect::Vipps && self.subscription_key.as_deref().is_none_or(str::is_empty) {
            return Err("subscription_key is required for the vipps dialect".into());
        }
        let token_bytes = self.token_bytes.unwrap_or(32);
        if !(1..=MAX_TOKEN_BYTES).contains(&token_bytes) {
            return Err(format!("token_bytes must be 1 to {MAX_TOKEN_BYTES}"));
        }
        let lifetime_s = self.lifetime_s.unwrap_or(dialect.default_lifetime());
        if lifetime_s > 100 * 365 * 86_400 {
            return Err("lifetime_s is too large".into());
        }
        Ok(Client {
            dialect,
            client_id: self.client_id,
            client_secret: self.client_secret,
            subscription_key: self.subscription_key,
            scopes: self.scopes,
            lifetime_s,
            token_bytes,
            jwks,
        })
    }
}

fn demo_clients() -> Vec<Client> {
    let c = |dialect: Dialect, id: &str, secret: &str| Client {
        dialect,
        client_id: id.into(),
        client_secret: secret.into(),
        subscription_key: None,
        scopes: None,
        lifetime_s: dialect.default_lifetime(),
        token_bytes: 32,
        jwks: Vec::new(),
    };
    vec![
        Client {
            scopes: Some(vec!["API".into(), "Foundations".into()]),
            ..c(
                Dialect::Vitesse,
                "demo-vitesse-client",
                "demo-vitesse-secret",
            )
        },
        c(
            Dialect::Apiture,
            "demo-apiture-client",
            "demo-apiture-secret",
        ),
        Client {
            subscription_key: Some("demo-vipps-subscription-key".into()),
            ..c(Dialect::Vipps, "demo-vipps-client", "demo-vipps-secret")
        },
        c(
            Dialect::VippsPartner,
            "demo-partner-client",
            "demo-partner-secret",
        ),
        c(Dialect::Vgs, "demo-vgs-client", "demo-vgs-secret"),
        c(
            Dialect::OAuth,
            "demo-oauth-client",
            "demo: secret+with%odd chars",
        ),
    ]
}

#[derive(Debug, Default)]
struct Stats {
    token_requests: u64,
    tokens_issued: u64,
    discovery_requests: u64,
    connections: u64,
    tls_handshake_failures: u64,
    by_client: BTreeMap<String, u64>,
    by_path: BTreeMap<String, u64>,
    issued_by_client: BTreeMap<String, u64>,
}

/// Everything the connections share.
pub struct State {
    clients: Mutex<HashMap<(Dialect, String), Client>>,
    stats: Mutex<Stats>,
    faults: Mutex<Vec<FaultRule>>,
    last_request: Mutex<Option<Value>>,
    /// The `jti`s of the client assertions accepted, so that none is accepted twice.
    seen_jti: Mutex<assertion::SeenJti>,
    rng: SystemRandom,
    verbose: bool,
}

impl State {
    fn new(verbose: bool) -> Self {
        State {
            clients: Mutex::new(HashMap::new()),
            stats: Mutex::new(Stats::default()),
            faults: Mutex::new(Vec::new()),
            last_request: Mutex::new(None),
            seen_jti: Mutex::new(assertion::SeenJti::default()),
            rng: SystemRandom::new(),
            verbose,
        }
    }

    fn register(&self, c: Client) {
        self.clients
            .lock()
            .insert((c.dialect, c.client_id.clone()), c);
    }

    /// The client with these credentials, if any.
    pub fn authenticate(&self, dialect: Dialect, id: &str, secret: &str) -> Option<Client> {
        let clients = self.clients.lock();
        let c = clients.get(&(dialect, id.to_string()))?;
        // A client registered with keys only has no secret: nothing matches it.
        let ok =
            !c.client_secret.is_empty() && ring_eq(c.client_secret.as_bytes(), secret.as_bytes());
        ok.then(|| c.clone())
    }

    /// The client registered under `id`, whatever its credentials (`private_key_jwt` checks the
    /// assertion against its keys).
    pub fn client(&self, dialect: Dialect, id: &str) -> Option<Client> {
        self.clients.lock().get(&(dialect, id.to_string())).cloned()
    }

    pub fn is_vipps_subscription_key(&self, key: &str) -> bool {
        self.clients
            .lock()
            .values()
            .any(|c| c.dialect == Dialect::Vipps && c.subscription_key.as_deref() == Some(key))
    }

    /// A fresh token: `bytes` random bytes, base64url without padding.
    pub fn new_token(&self, bytes: usize) -> Option<String> {
        let mut buf = vec![0u8; bytes];
        self.rng.fill(&mut buf).ok()?;
        Some(URL_SAFE_NO_PAD.encode(&buf))
    }

    pub fn count_issued(&self, client_id: &str) {
        let mut s = self.stats.lock();
        s.tokens_issued += 1;
        *s.issued_by_client.entry(client_id.to_string()).or_default() += 1;
    }

    fn stats_json(&self) -> Value {
        let s = self.stats.lock();
        json!({
            "token_requests": s.token_requests,
            "tokens_issued": s.tokens_issued,
            "discovery_requests": s.discovery_requests,
            "connections": s.connections,
            "tls_handshake_failures": s.tls_handshake_failures,
            "by_client": s.by_client,
            "by_path": s.by_path,
            "issued_by_client": s.issued_by_client,
        })
    }
}

/// Length-independent comparison of two secrets (a test server, but no reason to be sloppy).
fn ring_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// What to send back for one request.
enum Reply {
    Full(Response),
    Close,
    Huge(u64),
    NeverEnd,
    Drip { body: Vec<u8>, interval_ms: u64 },
}

// ---------------------------------------------------------------------------------------------
// Command line

struct Options {
    listen: SocketAddr,
    clients: Option<String>,
    demo: bool,
    exit_on_stdin_eof: bool,
    verbose: bool,
    tls: Option<TlsFiles>,
}

fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    let addr = match s.parse::<SocketAddr>() {
        Ok(a) => a,
        Err(_) => match s.strip_prefix("localhost:").map(str::parse::<u16>) {
            Some(Ok(port)) => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            _ => {
                return Err(format!(
                    "--listen: '{s}' is not an address like 127.0.0.1:0 or [::1]:0"
                ))
            }
        },
    };
    if !addr.ip().is_loopback() {
        return Err(format!(
            "--listen: {addr} is not a loopback address (127.0.0.0/8 or ::1); the idp only listens on loopback"
        ));
    }
    Ok(addr)
}

fn parse_args(args: &[String]) -> Result<Option<Options>, String> {
    let mut o = Options {
        listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
        clients: None,
        demo: false,
        exit_on_stdin_eof: false,
        verbose: false,
        tls: None,
    };
    let (mut cert, mut key, mut client_ca, mut client_cert_optional) = (None, None, None, false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag {
            "--listen" => o.listen = parse_listen(&value("--listen")?)?,
            "--clients" => o.clients = Some(value("--clients")?),
            "--demo" => o.demo = true,
            "--exit-on-stdin-eof" => o.exit_on_stdin_eof = true,
            "--verbose" | "-v" => o.verbose = true,
            "--tls-cert" => cert = Some(value("--tls-cert")?),
            "--tls-key" => key = Some(value("--tls-key")?),
            "--client-ca" => client_ca = Some(value("--client-ca")?),
            "--client-cert-optional" => client_cert_optional = true,
            "--help" | "-h" => return Ok(None),
            _ => return Err(format!("unknown argument '{a}'")),
        }
    }
    if client_cert_optional && client_ca.is_none() {
        return Err("--client-cert-optional needs --client-ca".into());
    }
    o.tls = match (cert, key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert,
            key,
            client_ca,
            client_cert_optional,
        }),
        (None, None) if client_ca.is_some() => {
            return Err("--client-ca needs --tls-cert and --tls-key".into())
        }
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key go together".into()),
    };
    Ok(Some(o))
}

fn load_clients(path: &str) -> Result<Vec<Client>, String> {
    let text = std::fs::read(path).map_err(|e| format!("--clients {path}: {e}"))?;
    let specs: Vec<ClientSpec> =
        serde_json::from_slice(&text).map_err(|e| format!("--clients {path}: {e}"))?;
    specs
        .into_iter()
        .enumerate()
        .map(|(i, s)| {
            s.into_client()
                .map_err(|e| format!("--clients {path}: client #{i}: {e}"))
        })
        .collect()
}

/// Run the idp with the arguments that follow `idp`; returns the process exit status.
pub fn run(args: &[String]) -> i32 {
    let opts = match parse_args(args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            let mut out = io::stdout().lock();
            return match writeln!(out, "{USAGE}").and_then(|_| out.flush()) {
                Ok(()) => 0,
                // Like every `credvault` subcommand: a closed pipe ends it quietly.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => BROKEN_PIPE,
                Err(_) => 1,
            };
        }
        Err(e) => {
            eprintln!("credvault idp: {e}\n{USAGE}");
            return 2;
        }
    };
    match start(&opts) {
        Ok((listener, state, tls)) => {
            serve(&listener, Arc::new(state), tls);
            0
        }
        Err((BROKEN_PIPE, _)) => BROKEN_PIPE,
        Err((code, e)) => {
            eprintln!("credvault idp: {e}");
            code
        }
    }
}

/// The exit status of a process whose standard output was closed under it (that of SIGPIPE).
const BROKEN_PIPE: i32 = 141;

/// Everything before serving: the clients, the TLS files, the listener, the banner line and the
/// stdin watcher. An error carries the exit status: 2 for bad input, 1 for the system's refusal.
type Started = (TcpListener, State, Option<Arc<Tls>>);
fn start(opts: &Options) -> Result<Started, (i32, String)> {
    let state = State::new(opts.verbose);
    if opts.demo {
        for c in demo_clients() {
            state.register(c);
        }
    }
    if let Some(path) = &opts.clients {
        let list = load_clients(path).map_err(|e| (2, e))?;
        list.into_iter().for_each(|c| state.register(c));
    }
    let tls = match &opts.tls {
        Some(files) => Some(Arc::new(tls::load(files).map_err(|e| (2, e))?)),
        None => None,
    };
    let listener = TcpListener::bind(opts.listen)
        .map_err(|e| (1, format!("cannot listen on {}: {e}", opts.listen)))?;
    let addr = listener.local_addr().map_err(|e| (1, e.to_string()))?;
    let mut out = io::stdout().lock();
    let scheme = if tls.is_some() { "https" } else { "http" };
    writeln!(out, "credvault-idp listening on {scheme}://{addr}")
        .and_then(|_| out.flush())
        .map_err(|e| match e.kind() {
            io::ErrorKind::BrokenPipe => (BROKEN_PIPE, String::new()),
            _ => (1, format!("cannot write to stdout: {e}")),
        })?;
    drop(out);
    if opts.exit_on_stdin_eof {
        watch_stdin().map_err(|e| (1, format!("cannot start the stdin watcher: {e}")))?;
    }
    Ok((listener, state, tls))
}

/// Exits the process (status 0) when standard input reaches end of file.
fn watch_stdin() -> io::Result<()> {
    thread::Builder::new()
        .name("idp-stdin".into())
        .spawn(|| {
            let mut sink = [0u8; 4096];
            let mut stdin = io::stdin();
            loop {
                match stdin.read(&mut sink) {
                    Ok(0) => std::process::exit(0),
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => std::process::exit(0),
                }
            }
        })
        .map(|_| ())
}

/// Accept connections forever, one thread each; with `tls`, each speaks HTTPS only.
fn serve(listener: &TcpListener, state: Arc<State>, tls: Option<Arc<Tls>>) {
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                let state = Arc::clone(&state);
                let tls = tls.clone();
                let spawned = thread::Builder::new()
                    .name("idp-conn".into())
                    .spawn(move || serve_stream(&state, stream, tls.as_deref()));
                if let Err(e) = spawned {
                    eprintln!("credvault idp: cannot start a connection thread: {e}");
                    thread::sleep(Duration::from_millis(10));
                }
            }
            Err(e) => {
                if state.verbose {
                    eprintln!("credvault idp: accept: {e}");
                }
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Connections

/// What a request handler may need to know about its connection.
#[derive(Debug, Clone, Copy)]
struct ConnInfo {
    /// The address the connection arrived on.
    local: SocketAddr,
    https: bool,
    /// With a client CA: whether the client presented a verified certificate.
    client_cert: Option<bool>,
}

/// Serve one accepted TCP connection: the TLS handshake first when TLS is on.
fn serve_stream(state: &State, stream: TcpStream, tls: Option<&Tls>) {
    state.stats.lock().connections += 1;
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IDLE_TIMEOUT));
    let local = match stream.local_addr() {
        Ok(a) => a,
        Err(_) => return,
    };
    let Some(tls) = tls else {
        let info = ConnInfo {
            local,
            https: false,
            client_cert: None,
        };
        return serve_connection(state, Conn::new(stream), info);
    };
    let failed = |reason: &str| {
        state.stats.lock().tls_handshake_failures += 1;
        if state.verbose {
            eprintln!("credvault idp: TLS handshake failed: {reason}");
        }
    };
    match tls::accept(tls, stream, failed) {
        Accepted::Ready {
            stream,
            client_cert,
        } => {
            let info = ConnInfo {
                local,
                https: true,
                client_cert: (tls.client_auth != ClientAuth::Off).then_some(client_cert),
            };
            serve_connection(state, Conn::new(*stream), info);
        }
        Accepted::Silent | Accepted::Failed => {}
    }
}

fn serve_connection<T: Transport>(state: &State, mut conn: Conn<T>, info: ConnInfo) {
    loop {
        let req = match http::read_request(&mut conn) {
            Ok(r) => r,
            Err(ReadError::Closed) => {
                conn.finish();
                return;
            }
            Err(ReadError::Reject(status, msg)) => {
                if state.verbose {
                    eprintln!("credvault idp: rejected request -> {status} ({msg})");
                }
                let resp = Response::json(
                    status,
                    json!({"error": "invalid_request", "error_description": msg}).to_string(),
                );
                let _ = http::write_response(&mut conn, &resp, false, false);
                conn.linger_close();
                return;
            }
        };
        let head_only = req.method == "HEAD";
        let keep_alive = req.keep_alive;
        let reply = handle(state, &req, &info);
        let status = match &reply {
            Reply::Full(r) => r.status.to_string(),
            Reply::Close => "closed".into(),
            Reply::Huge(_) | Reply::NeverEnd | Reply::Drip { .. } => "200 (streamed)".into(),
        };
        if state.verbose {
            eprintln!("credvault idp: {} {} -> {status}", req.method, req.path);
        }
        let result = match reply {
            Reply::Full(resp) => http::write_response(&mut conn, &resp, keep_alive, head_only),
            Reply::Close => {
                // Abrupt: no response and, over TLS, no close_notify either.
                conn.abort();
                return;
            }
            Reply::Huge(size) => faults::write_huge(&mut conn, size, keep_alive, head_only),
            Reply::NeverEnd => {
                let _ = faults::write_never_end(&mut conn);
                conn.abort();
                return;
            }
            Reply::Drip { body, interval_ms } => {
                faults::write_drip(&mut conn, &body, interval_ms, keep_alive, head_only)
            }
        };
        if result.is_err() {
            conn.abort();
            return;
        }
        if !keep_alive {
            conn.linger_close();
            return;
        }
    }
}

fn json_error(status: u16, msg: &str) -> Response {
    Response::json(
        status,
        json!({"error": "invalid_request", "error_description": msg}).to_string(),
    )
}

/// Route one request.
fn handle(state: &State, req: &Request, info: &ConnInfo) -> Reply {
    if req.path == "/_idp" || req.path.starts_with("/_idp/") {
        return Reply::Full(admin(state, req));
    }
    let token = dialects::token_endpoint(&req.path);
    let discovery = dialects::discovery_endpoint(&req.path);
    record(state, req, info, token.is_some(), discovery.is_some());
    let fault = faults::take(
        &mut state.faults.lock(),
        &req.path,
        token.is_some() || discovery.is_some(),
    );
    if let Some(reply) = fault.and_then(|f| fault_reply(state, &f)) {
        return reply;
    }
    if let Some(ep) = token {
        let scheme = if info.https { "https" } else { "http" };
        let base = format!("{scheme}://{}", dialects::authority(req, info.local));
        return Reply::Full(dialects::handle_token(state, req, ep, &base));
    }
    if let Some(d) = discovery {
        let scheme = if info.https { "https" } else { "http" };
        return Reply::Full(dialects::handle_discovery(req, info.local, scheme, d));
    }
    if req.path == "/apiture/oidc/jwks" {
        if req.method == "GET" || req.method == "HEAD" {
            return Reply::Full(Response::json(200, r#"{"keys":[]}"#));
        }
        return Reply::Full(
            json_error(405, "method not allowed").with_header("Allow", "GET, HEAD"),
        );
    }
    Reply::Full(Response::json(404, r#"{"error":"not_found"}"#))
}

/// Counts a token or discovery request, and keeps a token request's description (redacted).
fn record(state: &State, req: &Request, info: &ConnInfo, token: bool, discovery: bool) {
    {
        let mut s = state.stats.lock();
        if token {
            s.token_requests += 1;
            if let Some(id) = dialects::client_id_hint(req) {
                *s.by_client.entry(id).or_default() += 1;
            }
        }
        if discovery {
            s.discovery_requests += 1;
        }
        if token || discovery {
            *s.by_path.entry(req.path.clone()).or_default() += 1;
        }
    }
    if token {
        let mut described = dialects::describe(req);
        if let (Some(presented), Value::Object(fields)) = (info.client_cert, &mut described) {
            fields.insert("client_cert".into(), Value::Bool(presented));
        }
        *state.last_request.lock() = Some(described);
    }
}

/// Applies a fault (after its delay): the reply it makes, or `None` to answer normally.
fn fault_reply(state: &State, f: &faults::Fault) -> Option<Reply> {
    if f.delay_ms > 0 {
        thread::sleep(Duration::from_millis(f.delay_ms));
    }
    match faults::reply(&f.kind) {
        FaultReply::Normal => None,
        FaultReply::Full(r) => Some(Reply::Full(r)),
        FaultReply::Close => Some(Reply::Close),
        FaultReply::Huge(n) => Some(Reply::Huge(n)),
        FaultReply::NeverEnd => Some(Reply::NeverEnd),
        FaultReply::Drip(interval_ms) => {
            let token = state.new_token(32).unwrap_or_else(|| "drip-token".into());
            let body = json!({"access_token": token, "token_type": "Bearer", "expires_in": 3600});
            Some(Reply::Drip {
                body: body.to_string().into_bytes(),
                interval_ms,
            })
        }
    }
}

fn admin(state: &State, req: &Request) -> Response {
    let get = req.method == "GET" || req.method == "HEAD";
    let post = req.method == "POST";
    let allow = |methods: &str| json_error(405, "method not allowed").with_header("Allow", methods);
    match req.path.as_str() {
        "/_idp/health" if get => Response::json(200, r#"{"ok":true}"#),
        "/_idp/health" => allow("GET, HEAD"),
        "/_idp/stats" if get => Response::json(200, state.stats_json().to_string()),
        "/_idp/stats" => allow("GET, HEAD"),
        "/_idp/reset" if post => {
            *state.stats.lock() = Stats::default();
            state.faults.lock().clear();
            *state.last_request.lock() = None;
            Response::json(200, r#"{"ok":true}"#)
        }
        "/_idp/reset" => allow("POST"),
        "/_idp/clients" if post => add_client(state, &req.body),
        "/_idp/clients" if get => list_clients(state),
        "/_idp/clients" => allow("GET, HEAD, POST"),
        "/_idp/faults" if post => add_fault(state, &req.body),
        "/_idp/faults" if req.method == "DELETE" => {
            state.faults.lock().clear();
            Response::json(200, r#"{"ok":true}"#)
        }
        "/_idp/faults" if get => {
            let rules: Vec<Value> = state.faults.lock().iter().map(faults::describe).collect();
            Response::json(200, Value::from(rules).to_string())
        }
        "/_idp/faults" => allow("GET, HEAD, POST, DELETE"),
        "/_idp/last_request" if get => match &*state.last_request.lock() {
            Some(v) => Response::json(200, v.to_string()),
            None => Response::json(404, r#"{"error":"no token request yet"}"#),
        },
        "/_idp/last_request" => allow("GET, HEAD"),
        _ => Response::json(404, r#"{"error":"not_found"}"#),
    }
}

/// `POST /_idp/clients`: registers (or replaces) a client.
fn add_client(state: &State, body: &[u8]) -> Response {
    let spec = serde_json::from_slice::<ClientSpec>(body)
        .map_err(|e| format!("bad client object: {e}"))
        .and_then(ClientSpec::into_client);
    match spec {
        Ok(c) => {
            let body = json!({"ok": true, "dialect": c.dialect.name(), "client_id": c.client_id});
            state.register(c);
            Response::json(201, body.to_string())
        }
        Err(e) => json_error(400, &e),
    }
}

/// `GET /_idp/clients`: the registered clients' dialects and ids, sorted.
fn list_clients(state: &State) -> Response {
    let clients = state.clients.lock();
    let mut list: Vec<(&str, &str)> = clients
        .values()
        .map(|c| (c.dialect.name(), c.client_id.as_str()))
        .collect();
    list.sort_unstable();
    let list: Vec<Value> = list
        .into_iter()
        .map(|(d, id)| json!({"dialect": d, "client_id": id}))
        .collect();
    Response::json(200, Value::from(list).to_string())
}

/// `POST /_idp/faults`: appends a fault rule.
fn add_fault(state: &State, body: &[u8]) -> Response {
    match faults::parse_rule(body) {
        Ok(rule) => {
            let mut rules = state.faults.lock();
            rules.push(rule);
            Response::json(
                201,
                json!({"ok": true, "index": rules.len() - 1}).to_string(),
            )
        }
        Err(e) => json_error(400, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn listen_must_be_loopback() {
        assert!(parse_listen("127.0.0.1:0").is_ok());
        assert!(parse_listen("127.3.4.5:8080").is_ok());
        assert!(parse_listen("[::1]:0").is_ok());
        assert!(parse_listen("localhost:0").is_ok());
        assert!(parse_listen("0.0.0.0:0").is_err());
        assert!(parse_listen("[::]:0").is_err());
        assert!(parse_listen("10.0.0.1:80").is_err());
        assert!(parse_listen("[::ffff:127.0.0.1]:0").is_err());
        assert!(parse_listen("example.com:80").is_err());
    }

    #[test]
    fn parses_arguments() {
        let o = parse_args(&args(&[
            "--listen",
            "[::1]:0",
            "--demo",
            "--exit-on-stdin-eof",
        ]))
        .unwrap()
        .unwrap();
        assert!(o.demo && o.exit_on_stdin_eof && !o.verbose);
        assert!(o.listen.is_ipv6());
        let o = parse_args(&args(&["--clients=/x.json"])).unwrap().unwrap();
        assert_eq!(o.clients.as_deref(), Some("/x.json"));
        assert!(o.tls.is_none());
        let o = parse_args(&args(&[
            "--tls-cert",
            "c.pem",
            "--tls-key=k.pem",
            "--client-ca",
            "ca.pem",
        ]))
        .unwrap()
        .unwrap();
        let tls = o.tls.unwrap();
        assert_eq!((tls.cert.as_str(), tls.key.as_str()), ("c.pem", "k.pem"));
        assert_eq!(tls.client_ca.as_deref(), Some("ca.pem"));
        assert!(!tls.client_cert_optional);
        for bad in [
            &["--tls-cert", "c.pem"][..],
            &["--tls-key", "k.pem"],
            &["--client-ca", "ca.pem"],
            &[
                "--tls-cert",
                "c",
                "--tls-key",
                "k",
                "--client-cert-optional",
            ],
        ] {
            assert!(parse_args(&args(bad)).is_err(), "{bad:?}");
        }
        assert!(parse_args(&args(&["--listen"])).is_err());
        assert!(parse_args(&args(&["--bogus"])).is_err());
        assert!(parse_args(&args(&["--help"])).unwrap().is_none());
    }

    fn spec(v: Value) -> Result<Client, String> {
        serde_json::from_value::<ClientSpec>(v)
            .map_err(|e| e.to_string())
            .and_then(ClientSpec::into_client)
    }

    #[test]
    fn client_objects() {
        let c = spec(json!({"dialect":"vgs","client_id":"a","client_secret":"b"})).unwrap();
        assert_eq!((c.lifetime_s, c.token_bytes), (300, 32));
        let c = spec(
            json!({"dialect":"vipps-partner","client_id":"a","client_secret":"b","lifetime_s":0}),
        )
        .unwrap();
        assert_eq!(c.lifetime_s, 0);
        assert!(spec(json!({"dialect":"vipps","client_id":"a","client_secret":"b"})).is_err());
        assert!(spec(json!({"dialect":"nope","client_id":"a","client_secret":"b"})).is_err());
        assert!(spec(
            json!({"dialect":"oauth","client_id":"a","client_secret":"b","token_bytes":8193})
        )
        .is_err());
        assert!(
            spec(json!({"dialect":"oauth","client_id":"a","client_secret":"b","typo":1})).is_err()
        );
        assert!(spec(json!({"dialect":"oauth","client_id":"a"})).is_err());
    }

    #[test]
    fn tokens_are_distinct_base64url() {
        let s = State::new(false);
        let a = s.new_token(768).unwrap();
        let b = s.new_token(768).unwrap();
        assert_eq!(a.len(), 1024);
        assert_ne!(a, b);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn authenticates_per_dialect() {
        let s = State::new(false);
        for c in demo_clients() {
            s.register(c);
        }
        assert!(s
            .authenticate(
                Dialect::Vitesse,
                "demo-vitesse-client",
                "demo-vitesse-secret"
            )
            .is_some());
        assert!(s
            .authenticate(Dialect::Vitesse, "demo-vitesse-client", "wrong")
            .is_none());
        assert!(s
            .authenticate(
                Dialect::Apiture,
                "demo-vitesse-client",
                "demo-vitesse-secret"
            )
            .is_none());
        assert!(s.is_vipps_subscription_key("demo-vipps-subscription-key"));
        assert!(!s.is_vipps_subscription_key("demo-vipps-secret"));
    }

    /// Start a server with the demo clients on an ephemeral loopback port.
    fn start() -> SocketAddr {
        start_with(None)
    }

    fn start_with(tls: Option<TlsFiles>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = State::new(false);
        demo_clients().into_iter().for_each(|c| state.register(c));
        let state = Arc::new(state);
        let tls = tls.map(|files| Arc::new(tls::load(&files).unwrap()));
        thread::spawn(move || serve(&listener, state, tls));
        addr
    }

    /// Send raw requests on one connection and read `n` responses: (status, body) each.
    fn exchange<S: Read + Write>(stream: &mut S, raw: &str, n: usize) -> Vec<(u16, String)> {
        use std::io::BufRead;
        stream.write_all(raw.as_bytes()).unwrap();
        stream.flush().unwrap();
        let mut r = io::BufReader::new(stream);
        let mut out = Vec::new();
        for _ in 0..n {
            let mut line = String::new();
            // End of stream; over TLS, an abrupt close (the close fault) is an error instead.
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            let status: u16 = line.split(' ').nth(1).unwrap().parse().unwrap();
            let mut len = 0usize;
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                if h == "\r\n" {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0u8; len];
            r.read_exact(&mut body).unwrap();
            out.push((status, String::from_utf8(body).unwrap()));
        }
        out
    }

    fn post(path: &str, extra: &str, body: &str) -> String {
        format!(
            "POST {path} HTTP/1.1\r\nHost: h\r\n{extra}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    #[test]
    fn end_to_end_over_tcp() {
        let addr = start();
        let mut s = TcpStream::connect(addr).unwrap();
        let vitesse = post(
            "/vitesse/connect/token",
            "",
            "grant_type=client_credentials&client_id=demo-vitesse-client&client_secret=demo-vitesse-secret",
        );
        // Two token requests and a discovery request on one connection.
        let raw = format!(
            "{vitesse}{vitesse}GET /apiture/oidc/.well-known/openid-configuration HTTP/1.1\r\nHost: [::1]:9\r\n\r\n"
        );
        let r = exchange(&mut s, &raw, 3);
        assert_eq!((r[0].0, r[1].0, r[2].0), (200, 200, 200));
        let a: Value = serde_json::from_str(&r[0].1).unwrap();
        let b: Value = serde_json::from_str(&r[1].1).unwrap();
        assert_ne!(a["access_token"], b["access_token"]);
        assert_eq!(a["expires_in"], 3600);
        let d: Value = serde_json::from_str(&r[2].1).unwrap();
        assert_eq!(d["token_endpoint"], "http://[::1]:9/apiture/oidc/token");

        // A fault for the next request, then normal service again.
        let rule = r#"{"path":"/vitesse/connect/token","status":503,"retry_after":"1"}"#;
        let raw = format!(
            "POST /_idp/faults HTTP/1.1\r\nContent-Length: {}\r\n\r\n{rule}{vitesse}{vitesse}",
            rule.len()
        );
        let r = exchange(&mut s, &raw, 3);
        assert_eq!((r[0].0, r[1].0, r[2].0), (201, 503, 200));

        // RFC 6749 Basic for the generic dialect; the plain form of the odd secret fails.
        let good = base64::engine::general_purpose::STANDARD
            .encode("demo-oauth-client:demo%3A+secret%2Bwith%25odd+chars");
        let bad = base64::engine::general_purpose::STANDARD
            .encode("demo-oauth-client:demo: secret+with%odd chars");
        let raw = format!(
            "{}{}",
            post(
                "/oauth/token",
                &format!("Authorization: Basic {good}\r\n"),
                "grant_type=client_credentials"
            ),
            post(
                "/oauth/token",
                &format!("Authorization: Basic {bad}\r\n"),
                "grant_type=client_credentials"
            ),
        );
        let r = exchange(&mut s, &raw, 2);
        assert_eq!((r[0].0, r[1].0), (200, 401));

        // Vipps: string numbers; wrong key gets the APIM shape.
        let vipps = |key: &str| {
            format!(
                "POST /vipps/accesstoken/get HTTP/1.1\r\nclient_id: demo-vipps-client\r\nclient_secret: demo-vipps-secret\r\nOcp-Apim-Subscription-Key: {key}\r\nContent-Length: 0\r\n\r\n"
            )
        };
        let raw = format!("{}{}", vipps("demo-vipps-subscription-key"), vipps("nope"));
        let r = exchange(&mut s, &raw, 2);
        let v: Value = serde_json::from_str(&r[0].1).unwrap();
        assert_eq!(v["expires_in"], "3600");
        assert_eq!(r[1].0, 401);
        assert!(r[1].1.contains("\"statusCode\":401"));

        let r = exchange(
            &mut s,
            "GET /_idp/stats HTTP/1.1\r\n\r\nGET /_idp/last_request HTTP/1.1\r\n\r\n",
            2,
        );
        let st: Value = serde_json::from_str(&r[0].1).unwrap();
        assert_eq!(st["token_requests"], 8);
        assert_eq!(st["tokens_issued"], 5);
        assert_eq!(st["discovery_requests"], 1);
        assert_eq!(st["connections"], 1);
        assert_eq!(st["by_path"]["/vitesse/connect/token"], 4);
        let last: Value = serde_json::from_str(&r[1].1).unwrap();
        assert_eq!(last["headers"]["client_secret"], "<redacted>");
        assert_eq!(last["headers"]["ocp-apim-subscription-key"], "<redacted>");
        assert_eq!(last["headers"]["client_id"], "demo-vipps-client");
        assert!(!r[1].1.contains("demo-vipps-secret"));

        // The close fault drops the connection without a response.
        let rule = r#"{"kind":"close"}"#;
        let raw = format!(
            "POST /_idp/faults HTTP/1.1\r\nContent-Length: {}\r\n\r\n{rule}{vitesse}",
            rule.len()
        );
        let r = exchange(&mut s, &raw, 2);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].0, 201);
    }

    #[test]
    fn malformed_request_gets_400_and_close() {
        let addr = start();
        let mut s = TcpStream::connect(addr).unwrap();
        let r = exchange(
            &mut s,
            "NOT HTTP\r\n\r\nGET /_idp/health HTTP/1.1\r\n\r\n",
            2,
        );
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].0, 400);
    }
    const VITESSE_BODY: &str = "grant_type=client_credentials&client_id=demo-vitesse-client&client_secret=demo-vitesse-secret";

    #[test]
    fn end_to_end_over_tls() {
        use tls::fixtures::{client_config, connect, server_files};
        let addr = start_with(Some(server_files(false)));
        let mut s = connect(addr, client_config(None)).unwrap();
        let vitesse = post("/vitesse/connect/token", "", VITESSE_BODY);
        // Keep-alive, discovery URLs with https, and a streamed fault, all on one connection.
        let rule = r#"{"path":"/vitesse/connect/token","kind":"drip","interval_ms":1}"#;
        let raw = format!(
            "{vitesse}GET /.well-known/oauth-authorization-server/rfc8414 HTTP/1.1\r\nHost: localhost:1\r\n\r\nPOST /_idp/faults HTTP/1.1\r\nContent-Length: {}\r\n\r\n{rule}{vitesse}GET /_idp/last_request HTTP/1.1\r\n\r\n",
            rule.len()
        );
        let r = exchange(&mut s, &raw, 5);
        let codes: Vec<u16> = r.iter().map(|(c, _)| *c).collect();
        assert_eq!(codes, [200, 200, 201, 200, 200]);
        let d: Value = serde_json::from_str(&r[1].1).unwrap();
        assert_eq!(d["issuer"], "https://localhost:1/rfc8414");
        assert_eq!(d["token_endpoint"], "https://localhost:1/rfc8414/token");
        let dripped: Value = serde_json::from_str(&r[3].1).unwrap();
        assert_eq!(dripped["token_type"], "Bearer");
        // No client CA: no client_cert field.
        let last: Value = serde_json::from_str(&r[4].1).unwrap();
        assert!(last.get("client_cert").is_none());

        // A huge response and the close fault.
        let fault = |rule: &str| {
            format!(
                "POST /_idp/faults HTTP/1.1\r\nContent-Length: {}\r\n\r\n{rule}",
                rule.len()
            )
        };
        let raw = format!("{}{vitesse}", fault(r#"{"kind":"huge","size":3000000}"#));
        let r = exchange(&mut s, &raw, 2);
        assert_eq!((r[0].0, r[1].0, r[1].1.len()), (201, 200, 3_000_000));
        let raw = format!("{}{vitesse}", fault(r#"{"kind":"close"}"#));
        let r = exchange(&mut s, &raw, 2);
        assert_eq!(r.len(), 1);

        // Plain HTTP to the HTTPS port fails, and is counted; the server carries on.
        let mut plain = TcpStream::connect(addr).unwrap();
        plain
            .write_all(b"GET /_idp/health HTTP/1.1\r\n\r\n")
            .unwrap();
        let mut rest = Vec::new();
        let _ = plain.read_to_end(&mut rest);
        assert!(!rest.starts_with(b"HTTP/"));
        let mut s = connect(addr, client_config(None)).unwrap();
        let r = exchange(
            &mut s,
            "GET /_idp/stats HTTP/1.1\r\nConnection: close\r\n\r\n",
            1,
        );
        let st: Value = serde_json::from_str(&r[0].1).unwrap();
        assert_eq!(st["tls_handshake_failures"], 1);
        assert_eq!(st["connections"], 3);
        // Four token requests; the drip, huge and close faults answered three of them.
        assert_eq!(
            (st["token_requests"].as_u64(), st["tokens_issued"].as_u64()),
            (Some(4), Some(1))
        );
    }

    #[test]
    fn mutual_tls() {
        use tls::fixtures::*;
        let addr = start_with(Some(server_files(true)));
        let vitesse = post("/vitesse/connect/token", "", VITESSE_BODY);
        let mut s = connect(addr, client_config(Some((CLIENT_CERT, CLIENT_KEY)))).unwrap();
        let raw = format!("{vitesse}GET /_idp/last_request HTTP/1.1\r\n\r\n");
        let r = exchange(&mut s, &raw, 2);
        assert_eq!((r[0].0, r[1].0), (200, 200));
        let last: Value = serde_json::from_str(&r[1].1).unwrap();
        assert_eq!(last["client_cert"], true);

        // Without a certificate, or with one from another CA: no service.
        for identity in [None, Some((ROGUE_CERT, ROGUE_KEY))] {
            let attempt = connect(addr, client_config(identity)).and_then(|mut s| {
                s.write_all(vitesse.as_bytes())?;
                let mut buf = Vec::new();
                s.read_to_end(&mut buf).map(|_| buf)
            });
            assert!(attempt.is_err(), "{identity:?}");
        }
        // The server keeps serving good clients.
        let mut s = connect(addr, client_config(Some((CLIENT_CERT, CLIENT_KEY)))).unwrap();
        let r = exchange(&mut s, "GET /_idp/stats HTTP/1.1\r\n\r\n", 1);
        let st: Value = serde_json::from_str(&r[0].1).unwrap();
        assert_eq!(st["tls_handshake_failures"], 2);
        assert_eq!(st["tokens_issued"], 1);

        // Optional client certificates: none gives client_cert false.
        let files = TlsFiles {
            client_cert_optional: true,
            ..server_files(true)
        };
        let addr = start_with(Some(files));
        let mut s = connect(addr, client_config(None)).unwrap();
        let raw = format!("{vitesse}GET /_idp/last_request HTTP/1.1\r\n\r\n");
        let r = exchange(&mut s, &raw, 2);
        let last: Value = serde_json::from_str(&r[1].1).unwrap();
        assert_eq!((r[0].0, &last["client_cert"]), (200, &json!(false)));
    }
}
