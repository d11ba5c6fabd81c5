//! The token endpoint client: one token request per call, per auth method, over a blocking ureq
//! agent (connections reused within a fetch); response parsing; RFC 6749 error mapping; size and time limits;
//! retries with backoff inside an overall deadline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use once_cell::sync::Lazy;

use base64::Engine as _;
use serde_json::Value;
use ureq::http::{Response, StatusCode};
use ureq::Body;
use zeroize::Zeroizing;

use crate::config::{AuthMethod, BasicEncoding, Config, EndpointSource, ProxySetting};
use crate::error::{Error, Result, Status};
use crate::jwt::{Audience, ASSERTION_TYPE};
use crate::secret::{random_fraction, Sealed, WipedValue};

/// Response bodies larger than this are refused.
pub const MAX_BODY: u64 = 1 << 20;

/// What a successful token request yields.
pub struct Fetched {
    pub token: Sealed,
    /// Always `Bearer` (normalised): any other scheme is refused when the response is parsed.
    pub token_type: String,
    /// How long the token lives, counted from `requested_at`.
    pub lifetime: Duration,
    /// When the request was sent: the lifetime is counted from here, conservatively.
    pub requested_at: Instant,
}

/// How one fetch runs: its deadline. The waits between its attempts are the same for every
/// fetch ([`Backoff::DEFAULT`]).
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub deadline: Instant,
}

/// How a failed attempt may be retried.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Retry {
    /// Not at all: a verdict (bad credentials, bad scope, an answer over the size limit).
    Never,
    /// After an exponential backoff (each wait drawn from the upper half of a doubling ceiling:
    /// see [`Backoff`]).
    Backoff,
    /// Not before this long (the server's `Retry-After`).
    After(Duration),
}

/// One failed attempt.
#[derive(Debug)]
pub struct Failed {
    pub error: Error,
    pub retry: Retry,
}

impl From<Error> for Failed {
    fn from(error: Error) -> Self {
        Failed {
            error,
            retry: Retry::Never,
        }
    }
}

/// The HTTP side of one provider.
pub struct Client {
    /// The agent of the fetch under way. Connections are reused within one fetch (discovery,
    /// retries) and closed after it: a pooled connection would keep the last response, token
    /// included, in ureq's and rustls' buffers for as long as it idles, and a token endpoint is
    /// called once per token lifetime anyway. A child of fork() never touches its parent's
    /// agent (see `fork_release`).
    agent: crate::sync::Mutex<Option<ureq::Agent>>,
    timeout: Duration,
    tls: ureq::tls::TlsConfig,
    proxy: Option<ureq::Proxy>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Client")
    }
}

/// Whether a request to `url` may go through a proxy (the `proxy` key's or the environment's):
/// only `https://` to a host that is not loopback. A plain `http://` request would show the
/// proxy the credentials in clear (config allows it only for loopback anyway), and a loopback
/// target reached through a proxy lands on the proxy host's loopback, not ours. So neither is
/// ever proxied, whatever the environment, `proxy` or `no_proxy` say.
fn may_use_proxy(url: &str) -> bool {
    match url.parse::<ureq::http::Uri>() {
        Ok(uri) => {
            uri.scheme_str() == Some("https")
                && uri
                    .host()
                    .is_some_and(|h| !crate::config::is_loopback_host(h))
        }
        Err(_) => false,
    }
}

const USER_AGENT: &str = concat!("credvault/", env!("CARGO_PKG_VERSION"));

impl Client {
    pub fn new(cfg: &Config) -> Result<Client> {
        let t = &cfg.transport;
        let mut roots = t.ca_certs.clone();
        if !t.ca_only {
            roots.extend(
                webpki_root_certs::TLS_SERVER_ROOT_CERTS
                    .iter()
                    .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned()),
            );
        }
        let root_certs = if t.ca_certs.is_empty() {
            ureq::tls::RootCerts::WebPki
        } else {
            ureq::tls::RootCerts::new_with_certs(&roots)
        };
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(root_certs)
            .client_cert(t.client_cert.clone())
            .build();
        let proxy = match &t.proxy {
            ProxySetting::FromEnv => ureq::Proxy::try_from_env(),
            ProxySetting::Off => None,
            ProxySetting::Url { url, no_proxy } => {
                let uri: ureq::http::Uri = url
                    .parse()
                    .map_err(|_| Error::config("proxy: not a valid URL"))?;
                let protocol = if uri.scheme_str() == Some("https") {
                    ureq::ProxyProtocol::Https
                } else {
                    ureq::ProxyProtocol::Http
                };
                let mut b = ureq::Proxy::builder(protocol).host(uri.host().unwrap_or_default());
                if let Some(port) = uri.port_u16() {
                    b = b.port(port);
                }
                for entry in no_proxy {
                    b = b.no_proxy(entry);
                }
                Some(
                    b.build()
                        .map_err(|_| Error::config("proxy: not a valid proxy"))?,
                )
            }
        };
        Ok(Client {
            agent: crate::sync::Mutex::new(None),
            timeout: cfg.timeout,
            tls,
            proxy,
        })
    }

    fn build_agent(&self) -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            // Never follow a redirect: it could carry credentials to another origin.
            .max_redirects(0)
            .max_redirects_will_error(false)
            .user_agent(USER_AGENT)
            .accept("application/json")
            .timeout_global(Some(self.timeout))
            .tls_config(self.tls.clone())
            .proxy(self.proxy.clone())
            .build()
            .into()
    }

    /// The agent of this fetch (made on first use in this process).
    fn agent(&self) -> ureq::Agent {
        self.agent
            .lock()
            .get_or_insert_with(|| self.build_agent())
            .clone()
    }

    /// Ends a fetch: closes its connections; their buffers are wiped as they are freed.
    pub fn end_fetch(&self) {
        *self.agent.lock() = None;
    }

    /// Takes the agent slot's lock before fork() (see `fork`).
    pub(crate) fn fork_hold(&self) {
        self.agent.fork_hold();
    }

    /// Releases it after fork(). In the child, the parent's agent (a fetch was under way) is
    /// forgotten, never dropped: dropping it could write to connections the parent still uses.
    /// The child's next fetch builds an agent of its own.
    ///
    /// # Safety
    /// Only after `fork_hold` on this thread, once.
    pub(crate) unsafe fn fork_release(&self, side: crate::sync::Side) {
        // SAFETY: per the contract: held by this thread, released once.
        unsafe {
            if side == crate::sync::Side::Child {
                std::mem::forget(self.agent.held_mut().take());
            }
            self.agent.fork_release(side);
        }
    }

    /// Sends one token request to `url` and parses the answer. Every failure's message is
    /// redacted of the request's credentials (see [`Secrets`]).
    pub fn request_token(
        &self,
        cfg: &Config,
        url: &str,
        timeout: Duration,
    ) -> Result<Fetched, Failed> {
        let secrets = Secrets::of(cfg);
        self.send_token_request(cfg, url, timeout, &secrets)
            // A last pass over the finished message, whatever built it.
            .map_err(|mut failed| {
                failed.error = secrets.redact_error(failed.error);
                failed
            })
    }

    fn send_token_request(
        &self,
        cfg: &Config,
        url: &str,
        timeout: Duration,
        secrets: &Secrets,
    ) -> Result<Fetched, Failed> {
        let mut req = self.agent().post(url).header("Accept", "application/json");
        let mut body: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::with_capacity(256));
        match cfg.auth_method {
            AuthMethod::ClientSecretBasic => {
                let value = basic_credentials(cfg)?;
                req = req.header("Authorization", value.as_str());
                form_pair(&mut body, "grant_type", b"client_credentials");
            }
            AuthMethod::ClientSecretPost => {
                form_pair(&mut body, "grant_type", b"client_credentials");
                form_pair(&mut body, "client_id", cfg.client_id.as_bytes());
                cfg.secret()?
                    .with_plaintext(|s| form_pair(&mut body, "client_secret", s))?;
            }
            AuthMethod::Headers => {
                req = req.header("client_id", cfg.client_id.as_str());
                let secret = open_string(cfg.secret()?)?;
                req = req.header("client_secret", secret.as_str());
            }
            AuthMethod::PrivateKeyJwt => {
                // A new assertion (new `jti`) for every request, retries included.
                let assertion = client_assertion(cfg, url)?;
                form_pair(&mut body, "grant_type", b"client_credentials");
                form_pair(&mut body, "client_id", cfg.client_id.as_bytes());
                form_pair(
                    &mut body,
                    "client_assertion_type",
                    ASSERTION_TYPE.as_bytes(),
                );
                form_pair(&mut body, "client_assertion", assertion.as_bytes());
            }
        }
        if let Some(scope) = &cfg.scope {
            if cfg.auth_method != AuthMethod::Headers {
                form_pair(&mut body, "scope", scope.as_bytes());
            }
        }
        for (name, value) in &cfg.headers {
            let value = open_string(value)?;
            req = req.header(name.as_str(), value.as_str());
        }
        let mut config = req.config().timeout_global(Some(timeout));
        if !may_use_proxy(url) {
            config = config.proxy(None);
        }
        let req = config.build();
        let requested_at = Instant::now();
        let response = if body.is_empty() {
            req.send_empty()
        } else {
            req.content_type("application/x-www-form-urlencoded")
                .send(&body[..])
        };
        let response = response.map_err(|e| transport_error(e, secrets))?;
        handle_token_response(cfg, response, requested_at, secrets)
    }

    /// GETs a JSON document (discovery metadata). 404 yields `Ok(None)`. Text of the answer
    /// that enters a message goes through `secrets` (see [`Secrets`]).
    pub fn get_json(
        &self,
        url: &str,
        timeout: Duration,
        secrets: &Secrets,
    ) -> Result<Option<WipedValue>, Failed> {
        let mut config = self
            .agent()
            .get(url)
            .header("Accept", "application/json")
            .config()
            .timeout_global(Some(timeout));
        if !may_use_proxy(url) {
            config = config.proxy(None);
        }
        let response = config
            .build()
            .call()
            .map_err(|e| transport_error(e, secrets))?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let retry = retry_hint(&response);
        let (_, mut body) = response.into_parts();
        let bytes = read_body(&mut body, secrets)?;
        if !status.is_success() {
            return Err(http_status_failure(status, retry));
        }
        let value = serde_json::from_slice(&bytes)
            .map_err(|_| Error::malformed(format!("{url}: metadata is not valid JSON")))?;
        Ok(Some(WipedValue(value)))
    }
}

/// Opens a sealed value into a zeroizing `String`. Config validation guaranteed UTF-8.
fn open_string(sealed: &Sealed) -> Result<Zeroizing<String>> {
    let mut buf = Zeroizing::new(String::with_capacity(sealed.len()));
    sealed.with_plaintext(|p| match std::str::from_utf8(p) {
        Ok(s) => {
            buf.push_str(s);
            Ok(())
        }
        Err(_) => Err(Error::internal("a sealed text is not UTF-8")),
    })??;
    Ok(buf)
}

/// The signed `client_assertion` of a `private_key_jwt` request to `url`.
fn client_assertion(cfg: &Config, url: &str) -> Result<Zeroizing<String>> {
    let key = cfg
        .assertion
        .as_ref()
        .ok_or_else(|| Error::internal("private_key_jwt without a key"))?;
    let aud = match (&key.audience, &cfg.endpoint) {
        (Audience::Literal(a), _) => a.as_str(),
        (Audience::Issuer, EndpointSource::Issuer(issuer)) => issuer.as_str(),
        _ => url,
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| Error::internal("the system clock is before 1970"))?
        .as_secs();
    key.sign(&cfg.client_id, aud, now)
}

/// `Basic base64(...)` per the configured encoding.
fn basic_credentials(cfg: &Config) -> Result<Zeroizing<String>> {
    let mut joined: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::with_capacity(128));
    cfg.secret()?
        .with_plaintext(|secret| match cfg.basic_encoding {
            BasicEncoding::Rfc6749 => {
                form_encode(&mut joined, cfg.client_id.as_bytes());
                joined.push(b':');
                form_encode(&mut joined, secret);
            }
            BasicEncoding::Plain => {
                joined.extend_from_slice(cfg.client_id.as_bytes());
                joined.push(b':');
                joined.extend_from_slice(secret);
            }
        })?;
    let mut out = Zeroizing::new(String::with_capacity(6 + joined.len() * 4 / 3 + 4));
    out.push_str("Basic ");
    base64::engine::general_purpose::STANDARD.encode_string(&joined[..], &mut out);
    Ok(out)
}

/// application/x-www-form-urlencoded, as HTML and RFC 6749 appendix B define it.
pub fn form_encode(out: &mut Vec<u8>, value: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in value {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => out.push(b),
            b' ' => out.push(b'+'),
            _ => out.extend_from_slice(&[b'%', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]),
        }
    }
}

fn form_pair(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    if !out.is_empty() {
        out.push(b'&');
    }
    form_encode(out, key.as_bytes());
    out.push(b'=');
    form_encode(out, value);
}

/// Maps a transport error. Messages carry ureq's description, which names hosts and causes,
/// never request headers or bodies; it can quote the server (a certificate's names), so it goes
/// through `secrets` like any identity-provider text.
fn transport_error(e: ureq::Error, secrets: &Secrets) -> Failed {
    use ureq::Error as E;
    let tls = match &e {
        E::Rustls(t) => Some(t),
        E::Io(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        _ => None,
    };
    if let Some(t) = tls {
        return Failed {
            error: Error::new(Status::Tls, tls_message(t, secrets)),
            retry: Retry::Never,
        };
    }
    let (status, retry, what) = match &e {
        E::Timeout(_) => (Status::Timeout, Retry::Backoff, "request timed out"),
        E::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => {
            (Status::Timeout, Retry::Backoff, "request timed out")
        }
        E::HostNotFound => (Status::Network, Retry::Backoff, "host not found"),
        E::ConnectionFailed => (Status::Network, Retry::Backoff, "connection failed"),
        E::Io(_) => (Status::Network, Retry::Backoff, "network error"),
        E::Tls(_) | E::Rustls(_) | E::Pem(_) => (Status::Tls, Retry::Never, "TLS error"),
        E::BodyExceedsLimit(_) => (
            Status::MalformedResponse,
            Retry::Never,
            "response body exceeds the 1 MiB limit",
        ),
        E::TooManyRedirects | E::RedirectFailed => {
            (Status::HttpStatus, Retry::Never, "redirect refused")
        }
        E::Protocol(_) => (
            Status::MalformedResponse,
            Retry::Backoff,
            "HTTP protocol error",
        ),
        _ => (Status::Network, Retry::Backoff, "request failed"),
    };
    Failed {
        error: Error::new(
            status,
            format!("{what}: {}", secrets.clean(&e.to_string(), 300)),
        ),
        retry,
    }
}

/// Says which TLS check failed, in words an operator can act on, with rustls' own detail.
fn tls_message(e: &rustls::Error, secrets: &Secrets) -> String {
    use rustls::CertificateError as C;
    let what = match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => {
                "TLS: server certificate not trusted (unknown issuer; for a private CA set ca_file)"
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "TLS: server certificate not valid for this host name"
            }
            C::Expired | C::ExpiredContext { .. } => "TLS: server certificate expired",
            C::NotValidYet | C::NotValidYetContext { .. } => {
                "TLS: server certificate not valid yet"
            }
            C::Revoked => "TLS: server certificate revoked",
            _ => "TLS: server certificate rejected",
        },
        rustls::Error::AlertReceived(_) => {
            "TLS: the server refused the handshake (a client certificate may be required)"
        }
        _ => "TLS handshake failed",
    };
    format!("{what} ({})", secrets.clean(&e.to_string(), 300))
}

fn read_body(body: &mut Body, secrets: &Secrets) -> Result<Zeroizing<Vec<u8>>, Failed> {
    body.with_config()
        .limit(MAX_BODY)
        .read_to_vec()
        .map(Zeroizing::new)
        .map_err(|e| transport_error(e, secrets))
}

/// The `Retry-After` of a 429 or 503, or the default backoff for other 5xx.
fn retry_hint(response: &Response<Body>) -> Retry {
    let status = response.status().as_u16();
    let after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    match (status, after) {
        (429 | 503, Some(d)) => Retry::After(d),
        (429, None) => Retry::Backoff,
        (500..=599, _) => Retry::Backoff,
        _ => Retry::Never,
    }
}

fn http_status_failure(status: StatusCode, retry: Retry) -> Failed {
    let code = status.as_u16();
    let reason = status.canonical_reason().unwrap_or("");
    let s = if code == 429 {
        Status::RateLimited
    } else {
        Status::HttpStatus
    };
    let msg = if (300..400).contains(&code) {
        format!("HTTP {code} {reason}: redirects are not followed (credentials never go to another URL)")
    } else {
        format!("HTTP {code} {reason}")
    };
    Failed {
        error: Error::new(s, msg),
        retry,
    }
}

/// Parses a `Retry-After` value: delay seconds or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs.min(86_400)));
    }
    let when = parse_http_date(v)?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
            .min(Duration::from_secs(86_400)),
    )
}

/// Parses an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the HTTP date format senders must use.
pub fn parse_http_date(s: &str) -> Option<SystemTime> {
    let rest = s.split_once(", ")?.1;
    let parts: Vec<&str> = rest.split(' ').collect();
    if parts.len() != 5 || parts[4] != "GMT" {
        return None;
    }
    let day: u64 = parts[0].parse().ok()?;
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == parts[1])? as u64 + 1;
    let year: u64 = parts[2].parse().ok()?;
    let hms: Vec<u64> = parts[3]
        .split(':')
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    if hms.len() != 3
        || !(1..=31).contains(&day)
        || !(1970..=9999).contains(&year)
        || hms[0] > 23
        || hms[1] > 59
        || hms[2] > 60
    {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm), for years from 1970 to 9999: with the year
    // bounded, no step below can overflow, and the result fits any platform's SystemTime.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = (era * 146_097 + doe).checked_sub(719_468)?;
    let secs = days * 86_400 + hms[0] * 3600 + hms[1] * 60 + hms[2];
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

fn handle_token_response(
    cfg: &Config,
    response: Response<Body>,
    requested_at: Instant,
    secrets: &Secrets,
) -> Result<Fetched, Failed> {
    let status = response.status();
    let retry = retry_hint(&response);
    // Kept whole here: it enters a message only through `secrets.clean`.
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none")
        .to_string();
    let (_, mut body) = response.into_parts();
    let bytes = read_body(&mut body, secrets)?;
    if status == StatusCode::OK {
        // A 200 that is not a token (a maintenance page) is retried; see parse_token_response.
        return parse_token_response(cfg, &bytes, &content_type, requested_at, secrets);
    }
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        // The HTTP status decides retrying; an OAuth error body only adds detail.
        let mut failed = http_status_failure(status, retry);
        if let Some(err) = oauth_error(status, &bytes, secrets) {
            failed.error = err.with_status(failed.error.status());
        }
        return Err(failed);
    }
    if let Some(err) = oauth_error(status, &bytes, secrets) {
        return Err(Failed::from(err));
    }
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        let detail = apim_message(&bytes, secrets)
            .map(|m| format!(": {m}"))
            .unwrap_or_default();
        return Err(Failed::from(Error::new(
            Status::CredentialsRejected,
            format!(
                "HTTP {} from the token endpoint: client authentication failed{detail}",
                status.as_u16()
            ),
        )));
    }
    Err(http_status_failure(status, retry))
}

/// An RFC 6749 section 5.2 error response, if the body is one. Its text goes through
/// `secrets.clean`: a credential the request carried never reaches the message.
pub(crate) fn oauth_error(status: StatusCode, body: &[u8], secrets: &Secrets) -> Option<Error> {
    let tree = WipedValue(serde_json::from_slice(body).ok()?);
    let code = tree.0.get("error")?.as_str()?;
    let code_shown = secrets.clean(code, 64);
    let description = tree
        .0
        .get("error_description")
        .and_then(Value::as_str)
        .map(|d| format!(": {}", secrets.clean(d, 300)))
        .unwrap_or_default();
    let s = match code {
        "invalid_client" | "unauthorized_client" => Status::CredentialsRejected,
        "invalid_scope" => Status::ScopeRejected,
        "slow_down" => Status::RateLimited,
        _ => Status::OauthError,
    };
    Some(
        Error::new(
            s,
            format!(
                "token endpoint refused (HTTP {}): {code_shown}{description}",
                status.as_u16()
            ),
        )
        .with_oauth_error(&secrets.code(code)),
    )
}

/// The `message` of an API gateway's JSON error (Azure APIM, as in front of Vipps).
fn apim_message(body: &[u8], secrets: &Secrets) -> Option<String> {
    let tree = WipedValue(serde_json::from_slice(body).ok()?);
    tree.0
        .get("message")?
        .as_str()
        .map(|m| secrets.clean(m, 200))
}

/// The credential values a token request carries (the client secret, as is and form-encoded;
/// the Basic credentials in both encodings; every configured header's value), to redact from
/// messages built from identity-provider text: a gateway that echoes a request header or the body
/// would otherwise put the secret into an error message.
///
/// This is the one way identity-provider text (an OAuth `error`, `error_description`, a
/// gateway's `message`, a `token_type`, a `Content-Type`, discovery metadata, a transport
/// error's description) becomes message text: [`Secrets::clean`] redacts the whole text, then
/// removes control characters, then bounds its length, so no cut can leave part of a credential
/// behind. Redaction takes out every run of the text that holds any 8-byte window of a
/// credential (so a credential cut anywhere, or echoed in part, is found too), merging runs that
/// overlap or touch. Opened on first use (only a failed request builds a message), wiped on drop.
#[derive(Default)]
pub(crate) struct Secrets<'a> {
    cfg: Option<&'a Config>,
    opened: once_cell::unsync::OnceCell<Opened>,
}

/// The opened credentials: every 8-byte window of the values of 8 bytes or more (as
/// little-endian integers, sorted), and the shorter values whole.
#[derive(Default)]
struct Opened {
    windows: Zeroizing<Vec<u64>>,
    short: Vec<Zeroizing<String>>,
}

/// How long a piece of a credential must be to be redacted wherever it appears.
const WINDOW: usize = 8;

/// What stands in a message for a redacted credential.
pub(crate) const REDACTED: &str = "[redacted]";

fn window_key(w: &[u8]) -> u64 {
    let mut b = [0u8; WINDOW];
    b.copy_from_slice(w);
    u64::from_le_bytes(b)
}

/// The OAuth `error` code as [`Error::with_oauth_error`] keeps it (visible ASCII only), before
/// its bound.
fn visible_ascii(s: &str) -> String {
    s.chars().filter(char::is_ascii_graphic).collect()
}

impl<'a> Secrets<'a> {
    /// The values `cfg`'s requests carry, opened when first needed.
    pub(crate) fn of(cfg: &'a Config) -> Secrets<'a> {
        Secrets {
            cfg: Some(cfg),
            opened: once_cell::unsync::OnceCell::new(),
        }
    }

    fn opened(&self) -> &Opened {
        self.opened.get_or_init(|| match self.cfg {
            Some(cfg) => Opened::of(cfg),
            None => Opened::default(),
        })
    }

    /// Identity-provider text as message text: redacted whole, then cleaned (no control or
    /// bidirectional characters: see [`crate::error::clean`]) and redacted again (removing a character can
    /// join two pieces), and only then cut to `max` characters.
    pub(crate) fn clean(&self, text: &str, max: usize) -> String {
        let o = self.opened();
        let whole = crate::error::clean(&o.redact(text), usize::MAX);
        crate::error::clean(&o.redact(&whole), max)
    }

    /// An OAuth `error` code for [`Error::with_oauth_error`]: reduced to visible ASCII first
    /// (as that does), then redacted, so that dropping spaces cannot join a credential.
    pub(crate) fn code(&self, code: &str) -> String {
        self.opened().redact(&visible_ascii(code))
    }

    /// `e` with its message and OAuth error code redacted (a second line behind
    /// [`Secrets::clean`]: the whole message, whatever built it).
    pub(crate) fn redact_error(&self, e: Error) -> Error {
        let o = self.opened();
        if o.windows.is_empty() && o.short.is_empty() {
            return e;
        }
        e.map_text(|t| o.redact(t))
    }
}

impl Opened {
    /// A value that cannot be opened (never expected) is left out.
    fn of(cfg: &Config) -> Opened {
        let mut values: Vec<Zeroizing<String>> = Vec::new();
        if let Ok(secret) = cfg.secret().and_then(open_string) {
            // The Basic credentials in both encodings (whatever the auth method: an echo of
            // either is the secret), and the form-encoded secret (the body of client_secret_post).
            let mut plain = Zeroizing::new(Vec::new());
            plain.extend_from_slice(cfg.client_id.as_bytes());
            plain.push(b':');
            plain.extend_from_slice(secret.as_bytes());
            let mut rfc = Zeroizing::new(Vec::new());
            form_encode(&mut rfc, cfg.client_id.as_bytes());
            rfc.push(b':');
            let mut encoded = Zeroizing::new(Vec::new());
            form_encode(&mut encoded, secret.as_bytes());
            rfc.extend_from_slice(&encoded);
            for joined in [&plain, &rfc] {
                let mut b64 = Zeroizing::new(String::new());
                base64::engine::general_purpose::STANDARD.encode_string(&joined[..], &mut b64);
                values.push(b64);
            }
            if let Ok(e) = std::str::from_utf8(&encoded) {
                values.push(Zeroizing::new(e.to_string()));
            }
            values.push(secret);
        }
        for (_, value) in &cfg.headers {
            if let Ok(v) = open_string(value) {
                values.push(v);
            }
        }
        // Each value also as cleaning leaves it in a message, and as an OAuth code keeps it.
        for i in 0..values.len() {
            for variant in [
                Zeroizing::new(crate::error::clean(&values[i], usize::MAX)),
                Zeroizing::new(visible_ascii(&values[i])),
            ] {
                if *variant != *values[i] {
                    values.push(variant);
                }
            }
        }
        let mut opened = Opened::default();
        for v in values {
            if v.len() >= WINDOW {
                opened
                    .windows
                    .extend(v.as_bytes().windows(WINDOW).map(window_key));
            } else if !v.is_empty() {
                opened.short.push(v);
            }
        }
        opened.windows.sort_unstable();
        opened.windows.dedup();
        opened
    }

    /// The byte ranges of `text` that hold a piece of a credential, merged where they overlap
    /// or touch, widened to whole characters.
    fn ranges(&self, text: &str) -> Vec<(usize, usize)> {
        let bytes = text.as_bytes();
        let mut found: Vec<(usize, usize)> = Vec::new();
        if !self.windows.is_empty() {
            for (i, w) in bytes.windows(WINDOW).enumerate() {
                if self.windows.binary_search(&window_key(w)).is_ok() {
                    found.push((i, i + WINDOW));
                }
            }
        }
        for v in &self.short {
            found.extend(
                text.match_indices(v.as_str())
                    .map(|(i, m)| (i, i + m.len())),
            );
        }
        found.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(found.len());
        for (mut start, mut end) in found {
            while !text.is_char_boundary(start) {
                start -= 1;
            }
            while !text.is_char_boundary(end) {
                end += 1;
            }
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        merged
    }

    fn redact(&self, text: &str) -> String {
        let ranges = self.ranges(text);
        if ranges.is_empty() {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (start, end) in ranges {
            out.push_str(&text[at..start]);
            out.push_str(REDACTED);
            at = end;
        }
        out.push_str(&text[at..]);
        // The mark and the text beside it could together spell a piece of a credential that
        // holds part of the mark itself (or the mark could be one): then nothing is kept.
        if self.ranges(&out).is_empty() {
            out
        } else {
            String::new()
        }
    }
}

/// A JSON number, or a string holding one (Vipps sends numbers as strings).
fn number_field(v: &Value, key: &str) -> Result<Option<f64>> {
    let n = match v.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match n {
        Some(n) if n.is_finite() && n >= 0.0 => Ok(Some(n)),
        _ => Err(Error::malformed(format!(
            "token response: {key} is not a non-negative number"
        ))),
    }
}

/// Characters allowed in an access token: visible ASCII, no space, so it can never break a header.
fn token_char_ok(b: u8) -> bool {
    (0x21..=0x7E).contains(&b)
}

/// Longest access token accepted.
pub const MAX_TOKEN: usize = 64 * 1024;

/// Longest lifetime believed (ten years): larger values are capped, not refused.
const MAX_LIFETIME_S: f64 = 10.0 * 365.0 * 86_400.0;

/// Parses a 200 response of the token endpoint.
pub(crate) fn parse_token(
    cfg: &Config,
    body: &[u8],
    content_type: &str,
    requested_at: Instant,
) -> Result<Fetched> {
    let secrets = Secrets::of(cfg);
    parse_token_response(cfg, body, content_type, requested_at, &secrets)
        .map_err(|f| secrets.redact_error(f.error))
}

/// As [`parse_token`], saying whether a retry could help: a body that is not a token is what
/// gateways and WAFs send while the service behind them is down (a maintenance page), so it is
/// retried like a 5xx within the deadline; a token of a type credvault cannot use is not.
fn parse_token_response(
    cfg: &Config,
    body: &[u8],
    content_type: &str,
    requested_at: Instant,
    secrets: &Secrets,
) -> Result<Fetched, Failed> {
    let retry = |error| Failed {
        error,
        retry: Retry::Backoff,
    };
    let tree = token_json(body, content_type, secrets).map_err(retry)?;
    let v = &tree.0;
    let token = access_token(v, secrets).map_err(retry)?;
    let token_type = token_type(v, token, secrets)?;
    let lifetime = token_lifetime(cfg, v).map_err(retry)?;
    Ok(Fetched {
        token: Sealed::seal(token.as_bytes())?,
        token_type,
        lifetime,
        requested_at,
    })
}

/// The body as a JSON object (wiped when dropped: it holds the token).
fn token_json(body: &[u8], content_type: &str, secrets: &Secrets) -> Result<WipedValue> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        None => {
            return Err(Error::malformed(
                "token response (HTTP 200) has an empty body",
            ))
        }
        Some(b'{') => {}
        Some(_) => {
            return Err(Error::malformed(format!(
                "token response (HTTP 200) is not a JSON object (Content-Type {}, {} bytes)",
                secrets.clean(content_type, 60),
                body.len()
            )))
        }
    }
    Ok(WipedValue(serde_json::from_slice(body).map_err(|e| {
        Error::malformed(format!(
            "token response (HTTP 200) is not valid JSON ({:?} error at line {}, column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })?))
}

/// `access_token`: a non-empty string of visible ASCII, at most [`MAX_TOKEN`] bytes.
fn access_token<'v>(v: &'v Value, secrets: &Secrets) -> Result<&'v str> {
    let token = match v.get("access_token") {
        None | Some(Value::Null) => {
            let err = v
                .get("error")
                .and_then(Value::as_str)
                .map(|e| secrets.clean(e, 64));
            return Err(Error::malformed(match err {
                Some(e) => format!("token response (HTTP 200) has no access_token but error {e}"),
                None => "token response (HTTP 200) has no access_token".into(),
            }));
        }
        Some(Value::String(s)) => s,
        Some(_) => {
            return Err(Error::malformed(
                "token response: access_token is not a string",
            ))
        }
    };
    if token.is_empty() {
        return Err(Error::malformed("token response: access_token is empty"));
    }
    if token.len() > MAX_TOKEN {
        return Err(Error::malformed(format!(
            "token response: access_token is longer than {MAX_TOKEN} bytes"
        )));
    }
    if !token.bytes().all(token_char_ok) {
        return Err(Error::malformed(
            "token response: access_token contains spaces, control or non-ASCII characters, which could break an HTTP header",
        ));
    }
    Ok(token)
}

/// `token_type`: Bearer (any case, or absent) is the only type credvault can use. A DPoP-bound
/// token (RFC 9449) needs a fresh signed proof with every request, and a MAC token a signature
/// of each request; sent as `DPoP <token>` or `MAC <token>` without them, a resource server
/// refuses the call with an error far from its cause. So any other type is refused here, by
/// name when it is a short scheme name (never when it would show the token).
fn token_type(v: &Value, token: &str, secrets: &Secrets) -> Result<String> {
    match v.get("token_type") {
        None | Some(Value::Null) => Ok("Bearer".to_string()),
        Some(Value::String(t)) if t.eq_ignore_ascii_case("bearer") => Ok("Bearer".to_string()),
        Some(Value::String(t))
            if !t.is_empty()
                && t.len() <= 32
                && !token.contains(t.as_str())
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~+".contains(&b)) =>
        {
            Err(Error::malformed(format!(
                "token response: token_type {} is not supported (credvault sends Bearer tokens only, RFC 6750; register the client for Bearer tokens, not DPoP or MAC)",
                secrets.clean(t, 32)
            )))
        }
        Some(_) => Err(Error::malformed(
            "token response: token_type is not Bearer (and not a valid scheme name)",
        )),
    }
}

/// The token's lifetime: `expires_in`, else `expires_on` (Azure), else the configured default.
fn token_lifetime(cfg: &Config, v: &Value) -> Result<Duration> {
    let lifetime = match number_field(v, "expires_in")? {
        Some(secs) => Duration::from_secs_f64(secs.min(MAX_LIFETIME_S)),
        None => match number_field(v, "expires_on")? {
            Some(on) => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_secs_f64();
                Duration::from_secs_f64((on - now).clamp(0.0, MAX_LIFETIME_S))
            }
            None => cfg.refresh.default_lifetime,
        },
    };
    if lifetime.is_zero() {
        return Err(Error::malformed(
            "token response: the token has already expired (expires_in 0 or expires_on in the past)",
        ));
    }
    Ok(lifetime)
}

/// The waits between the attempts of one fetch: the ceiling starts at `base` and doubles up to
/// `cap`, and each wait is drawn at random from the upper half of its ceiling (so a fleet of
/// processes spreads out, and no wait is ever close to zero).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// The one schedule of every fetch, a caller's or a background refresh's (issue 26.4: a
    /// refresh of a short token that fitted its attempts into the refresh window retried every
    /// ~100 ms for its whole deadline): 100 ms doubling to 2 s. A refresh window of under a second
    /// still gets several attempts (at about 0, 75, 225 and 525 ms).
    pub const DEFAULT: Backoff = Backoff {
        base: Duration::from_millis(100),
        cap: Duration::from_secs(2),
    };

    /// The wait after the `n`th failed attempt (0 for the first).
    pub fn wait(&self, n: u32) -> Duration {
        let ceiling = self.base.saturating_mul(1u32 << n.min(16)).min(self.cap);
        ceiling.mul_f64(0.5 + 0.5 * random_fraction())
    }
}

/// When the token endpoint may be called again, as its last `Retry-After` said. Kept per
/// provider across fetches, so that a `Retry-After` longer than a fetch's deadline still holds
/// for the fetches after it. An atomic (no lock to bring across fork()).
#[derive(Debug, Default)]
pub struct NotBefore(AtomicU64);

/// The origin of [`NotBefore`]'s clock.
static ORIGIN: Lazy<Instant> = Lazy::new(Instant::now);

impl NotBefore {
    /// The instant, if one is set and not yet passed.
    pub fn get(&self) -> Option<Instant> {
        match self.0.load(Ordering::Acquire) {
            0 => None,
            ns => Some(*ORIGIN + Duration::from_nanos(ns)).filter(|t| *t > Instant::now()),
        }
    }

    /// Moves it to `t` if that is later.
    pub fn raise(&self, t: Instant) {
        let ns = t
            .saturating_duration_since(*ORIGIN)
            .as_nanos()
            .min(u64::MAX as u128) as u64;
        self.0.fetch_max(ns.max(1), Ordering::AcqRel);
    }
}

/// The least time left for which a retry is worth its wait: a request needs some of it, and none
/// is sent with less than about 12 ms (the provider's cut of an attempt's timeout).
const MIN_ATTEMPT: Duration = Duration::from_millis(25);

/// Runs `attempt` until it succeeds, fails for good, or `deadline` passes. Transient failures are
/// retried after the waits of [`Backoff::DEFAULT`], whoever fetches: no fetch sends more than
/// that schedule allows. A `Retry-After` can lengthen a wait, never shorten it; it is remembered
/// in `not_before`, and no attempt starts before it: when it lies past the deadline the fetch
/// fails at once with [`Status::RateLimited`].
pub fn with_retries<T>(
    deadline: Instant,
    not_before: &NotBefore,
    mut attempt: impl FnMut(Duration) -> Result<T, Failed>,
) -> Result<T> {
    if let Some(t) = not_before.get() {
        if t >= deadline {
            let left = t.saturating_duration_since(Instant::now());
            return Err(Error::new(
                Status::RateLimited,
                format!(
                    "the token endpoint asked (Retry-After) not to be called for another {} ms: no request sent",
                    left.as_millis().max(1)
                ),
            ));
        }
        std::thread::sleep(t.saturating_duration_since(Instant::now()));
    }
    let backoff = Backoff::DEFAULT;
    let mut n: u32 = 0;
    // The last failure that was not a timeout: when the deadline cuts the final attempt short,
    // what the endpoint kept answering says more than that cut.
    let mut cause: Option<Error> = None;
    loop {
        let now = Instant::now();
        let remaining = deadline.saturating_duration_since(now);
        if remaining.is_zero() {
            return Err(cause.unwrap_or_else(|| {
                Error::new(
                    Status::Timeout,
                    "deadline passed before the request was sent",
                )
            }));
        }
        let mut failed = match attempt(remaining) {
            Ok(v) => return Ok(v),
            Err(f) => f,
        };
        if failed.error.status() == Status::Timeout && failed.retry != Retry::Never {
            if let Some(c) = &cause {
                failed.error = c.clone().context(&format!(
                    "the last attempt timed out ({}); before it",
                    failed.error.message()
                ));
            }
        } else {
            cause = Some(failed.error.clone());
        }
        let (wait, asked) = match failed.retry {
            Retry::Never => return Err(failed.error),
            Retry::After(d) => {
                not_before.raise(Instant::now() + d);
                (d.max(backoff.wait(n)), Some(d))
            }
            Retry::Backoff => (backoff.wait(n), None),
        };
        n += 1;
        let left = deadline.saturating_duration_since(Instant::now());
        // No sleep that leaves less than a request needs: that last non-attempt would end the
        // fetch with its own "no request sent" instead of what the endpoint answered.
        if wait + MIN_ATTEMPT >= left {
            let mut error = failed.error;
            if let Some(d) = asked.filter(|d| *d >= left) {
                if error.status() == Status::HttpStatus {
                    error = error.with_status(Status::RateLimited);
                }
                return Err(error.context(&format!(
                    "gave up after {n} attempt(s): Retry-After {}s is past the deadline",
                    d.as_secs()
                )));
            }
            return Err(error.context(&format!("gave up after {n} attempt(s) within the deadline")));
        }
        std::thread::sleep(wait);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_to_other_hosts_may_use_a_proxy() {
        for url in [
            "https://idp.example/t",
            "https://10.0.0.1:8443/t",
            "https://[2001:db8::1]/t",
        ] {
            assert!(may_use_proxy(url), "{url}");
        }
        for url in [
            "http://idp.example/t",
            "http://127.0.0.1:8080/t",
            "https://127.0.0.1/t",
            "https://127.10.20.30/t",
            "https://localhost:8443/t",
            "https://LOCALHOST/t",
            "https://[::1]:8443/t",
            "not a url",
        ] {
            assert!(!may_use_proxy(url), "{url}");
        }
    }

    const SECRET: &str = "0123456789abcdefghij£KLMNOPQRSTUVWXYZ-the-secret";

    fn config() -> Config {
        let cfg = serde_json::json!({"token_url": "https://idp.example/t", "client_id": "client",
            "client_secret": SECRET, "headers": {"X-Key": "header-value-1234", "X-Version": "v2"}});
        Config::from_json(&cfg.to_string()).unwrap()
    }

    /// Whether `text` holds any 8-byte window of `value` (whole, when shorter).
    fn holds_piece(text: &str, value: &str) -> bool {
        let v = value.as_bytes();
        let n = v.len().min(WINDOW);
        v.windows(n)
            .any(|w| text.as_bytes().windows(n).any(|x| x == w))
    }

    /// Issue 22.3: redaction runs on the whole text before any cut, and takes out any 8-byte
    /// piece of a credential wherever it stands, merging pieces that overlap or touch. (The
    /// assertions never print the texts: they hold the test's secret.)
    #[test]
    fn every_piece_of_a_credential_is_redacted_before_the_cut() {
        let cfg = config();
        let s = Secrets::of(&cfg);
        let basic = {
            let mut b = String::new();
            base64::engine::general_purpose::STANDARD
                .encode_string(format!("client:{SECRET}"), &mut b);
            b
        };
        let pieces = [
            SECRET.to_string(),
            SECRET[..8].to_string(),
            SECRET[5..13].to_string(),
            SECRET[SECRET.len() - 8..].to_string(),
            // A window that starts inside the two-byte character.
            SECRET[19..28].to_string(),
            format!("{}{}", &SECRET[..12], &SECRET[6..30]),
            basic[10..18].to_string(),
            "header-value-1234".to_string(),
        ];
        for (i, piece) in pieces.iter().enumerate() {
            for text in [
                piece.clone(),
                format!("error: {piece}"),
                format!("{piece} was sent"),
                format!("{}{piece}", "x ".repeat(40)),
            ] {
                for max in [8, 20, 64, 300] {
                    let out = s.clean(&text, max);
                    assert!(
                        !holds_piece(&out, SECRET) && !holds_piece(&out, &basic),
                        "piece {i}, bound {max}: a piece is left"
                    );
                    assert!(!holds_piece(&out, "header-value-1234"), "piece {i}");
                }
            }
        }
        // The case: a long secret at the start of a text cut to 64 characters.
        assert!(
            s.clean(SECRET, 64) == REDACTED,
            "the whole secret is one mark"
        );
        // Overlapping and touching pieces are one mark; the text around them stays.
        let two = format!("a {}{} b", &SECRET[..12], &SECRET[30..]);
        assert!(s.clean(&two, 300) == "a [redacted] b", "one mark for both");
        // A bidirectional control inside the echo is removed by cleaning: redacted again after.
        let split = format!("x {}\u{202E}{} y", &SECRET[..5], &SECRET[5..10]);
        assert!(
            s.clean(&split, 300) == "x [redacted] y",
            "joined piece redacted"
        );
        // An OAuth code loses its spaces: the joined secret is redacted too.
        let spaced: String = SECRET[..10].chars().flat_map(|c| [c, ' ']).collect();
        assert!(!holds_piece(&s.code(&spaced), SECRET), "code with spaces");
        // A short value is redacted whole; other text is left alone.
        assert!(s.clean("api v2 down", 300) == "api [redacted] down");
        assert!(s.clean("nothing secret here", 300) == "nothing secret here");
        // No credentials: nothing changes but the cleaning.
        let none = Secrets::default();
        assert!(none.clean("a\nb", 10) == "a b");
    }

    /// A credential that holds part of the mark: the mark beside the kept text cannot spell it.
    #[test]
    fn the_mark_never_completes_a_credential() {
        let cfg = serde_json::json!({"token_url": "https://idp.example/t", "client_id": "c",
            "client_secret": "zzzzzzzzzzzz-redacted]abcd"});
        let cfg = Config::from_json(&cfg.to_string()).unwrap();
        let s = Secrets::of(&cfg);
        // "zzzzzzzz" is redacted; the mark would then read "redacted]abcd".
        let out = s.clean("zzzzzzzzabcd", 300);
        assert!(!holds_piece(&out, "zzzzzzzzzzzz-redacted]abcd"));
        assert!(out.is_empty());
    }

    /// The rule behind issue 22.3, kept by construction: in the modules that read
    /// identity-provider answers, text becomes message text only through `Secrets::clean`
    /// (redact whole, clean, then cut). A direct call of `error::clean` anywhere else in them
    /// fails here.
    #[test]
    fn identity_provider_text_is_cleaned_only_through_secrets() {
        let call = concat!("clean", "(");
        for (file, src) in [
            ("endpoint.rs", include_str!("endpoint.rs")),
            ("discovery.rs", include_str!("discovery.rs")),
        ] {
            // The code, not these tests.
            let src = &src[..src.find(concat!("#[cfg(test)]\n", "mod tests")).unwrap()];
            let (start, end) = match file {
                "endpoint.rs" => (
                    src.find(concat!("impl<'a> ", "Secrets<'a> {")).unwrap(),
                    src.find(concat!("/// A JSON number, or a string ", "holding one"))
                        .unwrap(),
                ),
                _ => (0, 0),
            };
            assert!(
                !src.contains(concat!("error::{", "clean")),
                "{file} imports clean"
            );
            for (at, _) in src.match_indices(call) {
                let before = &src[..at];
                let ok = before.ends_with("secrets.")
                    || before.ends_with("fn ")
                    || (start..end).contains(&at);
                assert!(ok, "{file}: a direct clean() at byte {at}");
            }
        }
    }

    #[test]
    fn form_encoding_matches_rfc6749_appendix_b() {
        let mut out = Vec::new();
        form_encode(&mut out, " %&+£\u{20AC}:a~".as_bytes());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "+%25%26%2B%C2%A3%E2%82%AC%3Aa%7E"
        );
    }

    #[test]
    fn http_dates() {
        let t = parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(t.duration_since(UNIX_EPOCH).unwrap().as_secs(), 784111777);
        assert!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT").is_none());
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
        // A date far ahead is capped like the seconds form; a year past 9999 is not a date.
        assert_eq!(
            parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT"),
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(
            parse_retry_after("Sun, 01 Jan 18446744073709551615 00:00:00 GMT"),
            None
        );
        assert_eq!(parse_retry_after("Sun, 01 Jan 10000 00:00:00 GMT"), None);
    }
}
