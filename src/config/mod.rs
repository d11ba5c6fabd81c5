//! Provider configuration: the JSON shape, validation, and presets for known providers.
//!
//! The JSON is parsed into a `serde_json::Value` and read field by field, so that every error names
//! the field and the rule it broke in our own words. serde's messages are never passed on because
//! they quote the offending input, which could be a secret put in the wrong field. Every string in
//! the parsed tree is wiped before the tree is dropped; secrets are sealed as soon as they are read.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::{clean, Error, Result};
use crate::secret::{Sealed, SecretString, WipedValue};

/// How the client authenticates to the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// HTTP Basic with the client id and secret (RFC 6749 section 2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// `client_id` and `client_secret` as request headers, empty body (Vipps `/accesstoken/get`).
    Headers,
}

impl AuthMethod {
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::Headers => "headers",
        }
    }
}

/// How id and secret are turned into the Basic credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BasicEncoding {
    /// Each form-urlencoded, then joined with `:` and base64-encoded (RFC 6749 section 2.3.1).
    Rfc6749,
    /// `id:secret` base64-encoded as is, as several providers document.
    Plain,
}

/// Where the token endpoint comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndpointSource {
    /// A fixed token endpoint URL.
    TokenUrl(String),
    /// An issuer whose metadata names the token endpoint.
    Issuer(String),
}

/// The timing policy of one provider's token cache.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RefreshPolicy {
    /// Share of the lifetime after which a token is refreshed in the background.
    pub refresh_ratio: f64,
    /// Largest share of the lifetime by which the refresh point is moved earlier at random.
    pub refresh_jitter: f64,
    /// A token is never served within this margin of its expiry (capped at a tenth of its lifetime).
    pub expiry_margin: Duration,
    /// Lifetime assumed when a response says neither `expires_in` nor `expires_on`.
    pub default_lifetime: Duration,
    /// Overall deadline of one fetch, retries included.
    pub deadline: Duration,
    /// How long callers get the stored error at once after a fetch failed for good.
    pub cooldown: Duration,
    /// How long discovered issuer metadata is used before it is fetched again.
    pub discovery_ttl: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        RefreshPolicy {
            refresh_ratio: 0.75,
            refresh_jitter: 0.05,
            expiry_margin: Duration::from_secs(30),
            default_lifetime: Duration::from_secs(300),
            deadline: Duration::from_millis(9_000),
            cooldown: Duration::from_millis(5_000),
            discovery_ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// Input rules a provider documents, checked at creation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rules {
    None,
    /// Vitesse: client id and secret 6 to 100 characters.
    Vitesse,
    /// Vipps standard: subscription key required, Merchant-Serial-Number 4 to 6 digits,
    /// Vipps-System-* headers at most 30 characters.
    Vipps,
}

struct Preset {
    name: &'static str,
    token_url: Option<&'static str>,
    issuer: Option<&'static str>,
    auth_method: AuthMethod,
    basic_encoding: BasicEncoding,
    scope: Option<&'static str>,
    rules: Rules,
}

const fn preset(
    name: &'static str,
    token_url: Option<&'static str>,
    issuer: Option<&'static str>,
    auth_method: AuthMethod,
    scope: Option<&'static str>,
    rules: Rules,
) -> Preset {
    Preset {
        name,
        token_url,
        issuer,
        auth_method,
        // Providers that take Basic document plain `base64(id:secret)`.
        basic_encoding: BasicEncoding::Plain,
        scope,
        rules,
    }
}

use AuthMethod::{ClientSecretBasic as Basic, ClientSecretPost as Post, Headers};

/// The known providers, from their public documentation (see PROVIDERS.md).
const PRESETS: &[Preset] = &[
    preset(
        "vitesse-staging",
        Some("https://staging-identity.vitessepsp.com/connect/token"),
        None,
        Post,
        Some("API"),
        Rules::Vitesse,
    ),
    preset(
        "vitesse-uk",
        Some("https://identity.vitessepsp.com/connect/token"),
        None,
        Post,
        Some("API"),
        Rules::Vitesse,
    ),
    preset(
        "vitesse-us",
        Some("https://identity.us.vitesse.io/connect/token"),
        None,
        Post,
        Some("API"),
        Rules::Vitesse,
    ),
    preset(
        "apiture",
        None,
        Some("https://auth.apiture.com/oidc/"),
        Basic,
        None,
        Rules::None,
    ),
    preset(
        "apiture-cat",
        None,
        Some("https://cat-oidc.apiture-comm-preprod.com/oidc/"),
        Basic,
        None,
        Rules::None,
    ),
    preset(
        "apiture-cat2",
        None,
        Some("https://cat2-oidc.apiture-comm-preprod.com/oidc/"),
        Basic,
        None,
        Rules::None,
    ),
    preset(
        "vipps-test",
        Some("https://apitest.vipps.no/accesstoken/get"),
        None,
        Headers,
        None,
        Rules::Vipps,
    ),
    preset(
        "vipps",
        Some("https://api.vipps.no/accesstoken/get"),
        None,
        Headers,
        None,
        Rules::Vipps,
    ),
    preset(
        "vipps-partner-test",
        Some("https://apitest.vipps.no/miami/v1/token"),
        None,
        Basic,
        None,
        Rules::None,
    ),
    preset(
        "vipps-partner",
        Some("https://api.vipps.no/miami/v1/token"),
        None,
        Basic,
        None,
        Rules::None,
    ),
    preset(
        "vgs",
        Some("https://auth.verygoodsecurity.com/auth/realms/vgs/protocol/openid-connect/token"),
        None,
        Post,
        None,
        Rules::None,
    ),
];

/// The names of every preset, in documentation order.
pub fn preset_names() -> impl Iterator<Item = &'static str> {
    PRESETS.iter().map(|p| p.name)
}

/// Where requests go through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxySetting {
    /// `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` and `NO_PROXY` from the environment (the default).
    FromEnv,
    /// No proxy, whatever the environment says (`"proxy": "none"`).
    Off,
    /// This CONNECT proxy, bypassed for the `no_proxy` entries.
    Url { url: String, no_proxy: Vec<String> },
}

/// TLS and proxy settings.
pub struct Transport {
    /// Extra trust anchors from `ca_file` (DER).
    pub ca_certs: Vec<ureq::tls::Certificate<'static>>,
    /// Trust only `ca_file`, not the bundled web PKI roots.
    pub ca_only: bool,
    /// Client certificate chain and key for mutual TLS (RFC 8705).
    pub client_cert: Option<ureq::tls::ClientCert>,
    pub proxy: ProxySetting,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("ca_certs", &self.ca_certs.len())
            .field("ca_only", &self.ca_only)
            .field(
                "client_cert",
                &self.client_cert.as_ref().map(|_| "<certificate and key>"),
            )
            .field("proxy", &self.proxy)
            .finish()
    }
}

/// A validated provider configuration. Secrets are sealed; `Debug` shows none of them.
#[derive(Debug)]
pub struct Config {
    pub preset: Option<&'static str>,
    pub endpoint: EndpointSource,
    pub client_id: String,
    pub client_secret: Sealed,
    pub auth_method: AuthMethod,
    pub basic_encoding: BasicEncoding,
    pub scope: Option<String>,
    /// Extra request headers, values sealed.
    pub headers: Vec<(String, Sealed)>,
    /// Timeout of one HTTP request.
    pub timeout: Duration,
    pub refresh: RefreshPolicy,
    pub transport: Transport,
}

/// Every key the JSON object may have.
const KEYS: &[&str] = &[
    "preset",
    "token_url",
    "issuer",
    "client_id",
    "client_secret",
    "auth_method",
    "basic_encoding",
    "scope",
    "headers",
    "timeout_ms",
    "deadline_ms",
    "refresh_ratio",
    "refresh_jitter",
    "expiry_margin_ms",
    "default_lifetime_s",
    "cooldown_ms",
    "discovery_ttl_s",
    "ca_file",
    "ca_only",
    "client_cert_file",
    "client_key_file",
    "proxy",
    "no_proxy",
];

/// Headers the library sets itself, which `headers` may not override.
const RESERVED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "authorization",
    "accept",
    "client_id",
    "client_secret",
];

/// Limits on sizes, so that a config cannot make us allocate or send without bound.
const MAX_CLIENT_ID: usize = 1024;
const MAX_SECRET: usize = 8192;
const MAX_URL: usize = 2048;
const MAX_SCOPE: usize = 4096;
const MAX_HEADERS: usize = 32;

impl Config {
    /// Parses and validates a provider configuration.
    pub fn from_json(json: &str) -> Result<Config> {
        let mut tree = WipedValue(serde_json::from_str(json).map_err(|e| {
            Error::config(format!(
                "config is not valid JSON ({:?} error at line {}, column {})",
                e.classify(),
                e.line(),
                e.column()
            ))
        })?);
        let obj = match &mut tree.0 {
            Value::Object(map) => map,
            _ => return Err(Error::config("config must be a JSON object")),
        };
        Config::from_object(obj)
    }

    fn from_object(obj: &mut Map<String, Value>) -> Result<Config> {
        if let Some(unknown) = obj.keys().find(|k| !KEYS.contains(&k.as_str())) {
            let shown: String = unknown
                .chars()
                .take(64)
                .filter(|c| !c.is_control())
                .collect();
            return Err(Error::config(format!(
                "unknown key `{shown}` (known keys: {})",
                KEYS.join(", ")
            )));
        }

        let preset = match opt_str(obj, "preset")? {
            None => None,
            Some(name) => Some(PRESETS.iter().find(|p| p.name == name).ok_or_else(|| {
                Error::config(format!(
                    "preset: unknown preset name (known: {})",
                    preset_names().collect::<Vec<_>>().join(", ")
                ))
            })?),
        };

        let token_url = opt_str(obj, "token_url")?;
        let issuer = opt_str(obj, "issuer")?;
        let endpoint = match (token_url, issuer) {
            (Some(_), Some(_)) => {
                return Err(Error::config(
                    "token_url and issuer: give one of them, not both",
                ))
            }
            (Some(url), None) => EndpointSource::TokenUrl(check_url("token_url", &url)?),
            (None, Some(url)) => EndpointSource::Issuer(check_url("issuer", &url)?),
            (None, None) => match preset {
                Some(Preset {
                    token_url: Some(u), ..
                }) => EndpointSource::TokenUrl(u.to_string()),
                Some(Preset {
                    issuer: Some(u), ..
                }) => EndpointSource::Issuer(u.to_string()),
                _ => {
                    return Err(Error::config(
                        "token_url or issuer: one of them is required (or a preset)",
                    ))
                }
            },
        };

        let client_id =
            opt_str(obj, "client_id")?.ok_or_else(|| Error::config("client_id: required"))?;
        check_text("client_id", &client_id, MAX_CLIENT_ID)?;

        let client_secret = opt_secret(obj, "client_secret")?
            .ok_or_else(|| Error::config("client_secret: required"))?;
        check_text("client_secret", client_secret.expose(), MAX_SECRET)?;

        let auth_method = match opt_str(obj, "auth_method")?.as_deref() {
            None => preset.map_or(AuthMethod::ClientSecretBasic, |p| p.auth_method),
            Some("client_secret_basic") => AuthMethod::ClientSecretBasic,
            Some("client_secret_post") => AuthMethod::ClientSecretPost,
            Some("headers") => AuthMethod::Headers,
            Some(_) => {
                return Err(Error::config(
                    "auth_method: must be client_secret_basic, client_secret_post or headers",
                ))
            }
        };
        let basic_encoding = match opt_str(obj, "basic_encoding")?.as_deref() {
            None => preset.map_or(BasicEncoding::Rfc6749, |p| p.basic_encoding),
            Some("rfc6749") => BasicEncoding::Rfc6749,
            Some("plain") => BasicEncoding::Plain,
            Some(_) => return Err(Error::config("basic_encoding: must be rfc6749 or plain")),
        };
        if auth_method == AuthMethod::ClientSecretBasic
            && basic_encoding == BasicEncoding::Plain
            && client_id.contains(':')
        {
            return Err(Error::config(
                "client_id: may not contain ':' with basic_encoding plain (use rfc6749)",
            ));
        }

        let scope = match opt_str(obj, "scope")? {
            Some(s) => Some(check_scope(&s)?),
            None => preset.and_then(|p| p.scope).map(str::to_string),
        };

        let headers = read_headers(obj, auth_method)?;

        let timeout =
            Duration::from_millis(opt_u64(obj, "timeout_ms", 1, 120_000)?.unwrap_or(5_000));
        let defaults = RefreshPolicy::default();
        let refresh = RefreshPolicy {
            refresh_ratio: opt_f64(obj, "refresh_ratio", 0.1, 0.95)?
                .unwrap_or(defaults.refresh_ratio),
            refresh_jitter: opt_f64(obj, "refresh_jitter", 0.0, 0.25)?
                .unwrap_or(defaults.refresh_jitter),
            expiry_margin: opt_u64(obj, "expiry_margin_ms", 0, 3_600_000)?
                .map_or(defaults.expiry_margin, Duration::from_millis),
            default_lifetime: opt_u64(obj, "default_lifetime_s", 1, 86_400)?
                .map_or(defaults.default_lifetime, Duration::from_secs),
            deadline: opt_u64(obj, "deadline_ms", 1, 600_000)?
                .map_or(defaults.deadline, Duration::from_millis),
            cooldown: opt_u64(obj, "cooldown_ms", 0, 600_000)?
                .map_or(defaults.cooldown, Duration::from_millis),
            discovery_ttl: opt_u64(obj, "discovery_ttl_s", 1, 7 * 86_400)?
                .map_or(defaults.discovery_ttl, Duration::from_secs),
        };

        if let Some(p) = preset {
            check_rules(p, &client_id, &client_secret, &headers)?;
        }
        let transport = read_transport(obj)?;

        let client_secret = client_secret.seal()?;
        let headers = headers
            .into_iter()
            .map(|(name, value)| Ok((name, value.seal()?)))
            .collect::<Result<Vec<_>>>()?;

        Ok(Config {
            preset: preset.map(|p| p.name),
            endpoint,
            client_id,
            client_secret,
            auth_method,
            basic_encoding,
            scope,
            headers,
            timeout,
            refresh,
            transport,
        })
    }
}

fn opt_bool(obj: &Map<String, Value>, key: &str) -> Result<Option<bool>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(type_error(key, "true or false")),
    }
}

/// Largest PEM file accepted (a CA bundle is well below this).
const MAX_PEM: u64 = 1 << 20;

/// Reads a PEM file named by `key`; the bytes are wiped when dropped (a key file is a secret).
/// Only a regular file is read, and never more than [`MAX_PEM`] bytes of it, so `/dev/zero` or a
/// FIFO named by mistake gets an error instead of hanging or exhausting memory. Error messages
/// show the path with control characters removed and its length capped.
fn read_pem(key: &str, path: &str) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    use std::io::Read;
    if path.is_empty() || path.contains('\0') {
        return Err(Error::config(format!("{key}: must be a file path")));
    }
    let shown = clean(path, 200);
    let cannot =
        |e: std::io::Error| Error::config(format!("{key}: cannot read {shown}: {}", e.kind()));
    let meta = std::fs::metadata(path).map_err(cannot)?;
    if !meta.is_file() {
        return Err(Error::config(format!(
            "{key}: {shown} is not a regular file"
        )));
    }
    let file = std::fs::File::open(path).map_err(cannot)?;
    let mut bytes = zeroize::Zeroizing::new(Vec::with_capacity(meta.len().min(MAX_PEM) as usize));
    file.take(MAX_PEM + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() as u64 > MAX_PEM {
        return Err(Error::config(format!(
            "{key}: {shown} is larger than 1 MiB"
        )));
    }
    Ok(bytes)
}

fn pem_certs(key: &str, path: &str) -> Result<Vec<ureq::tls::Certificate<'static>>> {
    let pem = read_pem(key, path)?;
    let shown = clean(path, 200);
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(_) => return Err(Error::config(format!("{key}: {shown} is not valid PEM"))),
        }
    }
    if certs.is_empty() {
        return Err(Error::config(format!(
            "{key}: {shown} holds no certificate"
        )));
    }
    Ok(certs)
}

fn read_transport(obj: &mut Map<String, Value>) -> Result<Transport> {
    let ca_certs = match opt_str(obj, "ca_file")? {
        Some(path) => pem_certs("ca_file", &path)?,
        None => Vec::new(),
    };
    let ca_only = opt_bool(obj, "ca_only")?.unwrap_or(false);
    if ca_only && ca_certs.is_empty() {
        return Err(Error::config("ca_only: requires ca_file"));
    }
    let client_cert = match (
        opt_str(obj, "client_cert_file")?,
        opt_str(obj, "client_key_file")?,
    ) {
        (None, None) => None,
        (Some(cert), Some(key)) => {
            let chain = pem_certs("client_cert_file", &cert)?;
            let pem = read_pem("client_key_file", &key)?;
            let key = ureq::tls::PrivateKey::from_pem(&pem).map_err(|_| {
                Error::config(format!("client_key_file: {key} holds no PEM private key"))
            })?;
            Some(ureq::tls::ClientCert::new_with_certs(&chain, key))
        }
        _ => {
            return Err(Error::config(
                "client_cert_file and client_key_file: give both or neither",
            ))
        }
    };
    let no_proxy: Vec<String> = match opt_str(obj, "no_proxy")? {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        None => Vec::new(),
    };
    let proxy = match opt_str(obj, "proxy")?.as_deref() {
        None | Some("") => {
            if !no_proxy.is_empty() {
                return Err(Error::config("no_proxy: requires proxy (the environment's NO_PROXY applies to the environment's proxy)"));
            }
            ProxySetting::FromEnv
        }
        Some("none") => ProxySetting::Off,
        Some(url) => {
            let uri: ureq::http::Uri = url.parse().map_err(|_| {
                Error::config("proxy: not a valid URL (http://host:port or \"none\")")
            })?;
            if !matches!(uri.scheme_str(), Some("http") | Some("https")) || uri.host().is_none() {
                return Err(Error::config(
                    "proxy: must be http://host:port or https://host:port",
                ));
            }
            if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
                return Err(Error::config(
                    "proxy: credentials in the proxy URL are not supported",
                ));
            }
            ProxySetting::Url {
                url: url.to_string(),
                no_proxy,
            }
        }
    };
    Ok(Transport {
        ca_certs,
        ca_only,
        client_cert,
        proxy,
    })
}

fn type_error(key: &str, expected: &str) -> Error {
    Error::config(format!("{key}: must be {expected}"))
}

/// Takes a string field out of the object (so the tree no longer holds it).
fn opt_str(obj: &mut Map<String, Value>, key: &str) -> Result<Option<String>> {
    match obj.get_mut(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(std::mem::take(s))),
        Some(_) => Err(type_error(key, "a string")),
    }
}

fn opt_secret(obj: &mut Map<String, Value>, key: &str) -> Result<Option<SecretString>> {
    match obj.get_mut(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(SecretString::new(std::mem::take(s)))),
        Some(_) => Err(type_error(key, "a string")),
    }
}

fn opt_u64(obj: &Map<String, Value>, key: &str, min: u64, max: u64) -> Result<Option<u64>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if (min..=max).contains(&v) => Ok(Some(v)),
            _ => Err(type_error(
                key,
                &format!("a whole number from {min} to {max}"),
            )),
        },
        Some(_) => Err(type_error(
            key,
            &format!("a whole number from {min} to {max}"),
        )),
    }
}

fn opt_f64(obj: &Map<String, Value>, key: &str, min: f64, max: f64) -> Result<Option<f64>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(v) if v >= min && v <= max => Ok(Some(v)),
            _ => Err(type_error(key, &format!("a number from {min} to {max}"))),
        },
        Some(_) => Err(type_error(key, &format!("a number from {min} to {max}"))),
    }
}

/// Text that goes into a request: non-empty, bounded, no control characters.
fn check_text(key: &str, value: &str, max: usize) -> Result<()> {
    if value.is_empty() {
        return Err(Error::config(format!("{key}: must not be empty")));
    }
    if value.len() > max {
        return Err(Error::config(format!("{key}: longer than {max} bytes")));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::config(format!(
            "{key}: must not contain control characters"
        )));
    }
    Ok(())
}

/// Whether `host` (as written in a URL) is a loopback host.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// Checks an endpoint URL: absolute, HTTPS (plain HTTP only for loopback), no credentials in it.
pub fn check_url(key: &str, url: &str) -> Result<String> {
    if url.len() > MAX_URL {
        return Err(Error::config(format!("{key}: longer than {MAX_URL} bytes")));
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(Error::config(format!(
            "{key}: must not contain spaces or control characters"
        )));
    }
    if url.contains('#') {
        return Err(Error::config(format!("{key}: must not have a fragment")));
    }
    let uri: ureq::http::Uri = url
        .parse()
        .map_err(|_| Error::config(format!("{key}: not a valid absolute URL")))?;
    let authority = uri
        .authority()
        .ok_or_else(|| Error::config(format!("{key}: not a valid absolute URL (no host)")))?;
    if authority.as_str().contains('@') {
        return Err(Error::config(format!(
            "{key}: must not carry credentials in the URL (use client_id and client_secret)"
        )));
    }
    let host = authority.host();
    if host.is_empty() {
        return Err(Error::config(format!("{key}: has no host")));
    }
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if is_loopback_host(host) => {}
        Some("http") => {
            return Err(Error::config(format!(
                "{key}: plain http:// is allowed only for loopback hosts (127.0.0.1, ::1, localhost); use https://"
            )))
        }
        _ => return Err(Error::config(format!("{key}: scheme must be https (or http for loopback)"))),
    }
    Ok(url.to_string())
}

/// RFC 6749 section 3.3: scope tokens separated by single spaces.
fn check_scope(scope: &str) -> Result<String> {
    if scope.len() > MAX_SCOPE {
        return Err(Error::config(format!(
            "scope: longer than {MAX_SCOPE} bytes"
        )));
    }
    let ok_char = |b: u8| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b);
    if scope.is_empty()
        || scope
            .split(' ')
            .any(|tok| tok.is_empty() || !tok.bytes().all(ok_char))
    {
        return Err(Error::config(
            "scope: must be scope tokens (printable ASCII, no quote or backslash) separated by single spaces",
        ));
    }
    Ok(scope.to_string())
}

/// RFC 9110 token characters, for header names.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn read_headers(
    obj: &mut Map<String, Value>,
    auth_method: AuthMethod,
) -> Result<Vec<(String, SecretString)>> {
    let map = match obj.get_mut("headers") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(type_error(
                "headers",
                "an object of header names to string values",
            ))
        }
    };
    if map.len() > MAX_HEADERS {
        return Err(Error::config(format!(
            "headers: at most {MAX_HEADERS} headers"
        )));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(map.len());
    for (name, value) in map.iter_mut() {
        if !is_header_name(name) {
            return Err(Error::config(
                "headers: a header name is not a valid HTTP token (letters, digits, !#$%&'*+-.^_`|~)",
            ));
        }
        let lower = name.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err(Error::config(format!(
                "headers.{name}: set by credvault itself (auth_method {}), may not be overridden",
                auth_method.name()
            )));
        }
        if !seen.insert(lower) {
            return Err(Error::config(format!("headers.{name}: given twice")));
        }
        let value = match value {
            Value::String(s) => SecretString::new(std::mem::take(s)),
            _ => return Err(Error::config(format!("headers.{name}: must be a string"))),
        };
        check_text(&format!("headers.{name}"), value.expose(), MAX_SECRET)?;
        out.push((name.clone(), value));
    }
    Ok(out)
}

fn check_rules(
    preset: &Preset,
    client_id: &str,
    client_secret: &SecretString,
    headers: &[(String, SecretString)],
) -> Result<()> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.expose())
    };
    match preset.rules {
        Rules::None => Ok(()),
        Rules::Vitesse => {
            let len_ok = |s: &str| (6..=100).contains(&s.chars().count());
            if !len_ok(client_id) {
                return Err(Error::config(format!(
                    "client_id: preset {} requires 6 to 100 characters",
                    preset.name
                )));
            }
            if !len_ok(client_secret.expose()) {
                return Err(Error::config(format!(
                    "client_secret: preset {} requires 6 to 100 characters",
                    preset.name
                )));
            }
            Ok(())
        }
        Rules::Vipps => {
            if header("Ocp-Apim-Subscription-Key").is_none() {
                return Err(Error::config(format!(
                    "headers.Ocp-Apim-Subscription-Key: required by preset {}",
                    preset.name
                )));
            }
            if let Some(msn) = header("Merchant-Serial-Number") {
                if !(4..=6).contains(&msn.len()) || !msn.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(Error::config(format!(
                        "headers.Merchant-Serial-Number: preset {} requires 4 to 6 digits",
                        preset.name
                    )));
                }
            }
            for name in [
                "Vipps-System-Name",
                "Vipps-System-Version",
                "Vipps-System-Plugin-Name",
                "Vipps-System-Plugin-Version",
            ] {
                if header(name).is_some_and(|v| v.chars().count() > 30) {
                    return Err(Error::config(format!(
                        "headers.{name}: preset {} allows at most 30 characters",
                        preset.name
                    )));
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        Config::from_json(json).unwrap_err().message().to_string()
    }

    #[test]
    #[cfg_attr(miri, ignore = "ring's AES-GCM is assembly, which Miri cannot run")]
    fn minimal_config() {
        let c = Config::from_json(
            r#"{"token_url":"https://idp.example/token","client_id":"abc","client_secret":"s3cret"}"#,
        )
        .unwrap();
        assert_eq!(c.auth_method, AuthMethod::ClientSecretBasic);
        assert_eq!(c.basic_encoding, BasicEncoding::Rfc6749);
        assert!(c.client_secret.equals(b"s3cret"));
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    #[cfg_attr(miri, ignore = "Miri has no mkfifo")]
    fn pem_paths_must_be_small_regular_files() {
        let cfg = |path: &str| {
            serde_json::json!({"token_url":"https://x/t","client_id":"abc","client_secret":"s",
                "ca_file": path})
            .to_string()
        };
        // A device that never ends and a directory: refused up front, no read.
        let m = err(&cfg("/dev/zero"));
        assert_eq!(m, "ca_file: /dev/zero is not a regular file");
        let m = err(&cfg("/"));
        assert!(m.contains("not a regular file"), "{m}");
        // A FIFO would block a read forever.
        let dir = std::env::temp_dir().join(format!("credvault-pem-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string; mkfifo only creates a file.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let m = err(&cfg(fifo.to_str().unwrap()));
        assert!(m.contains("not a regular file"), "{m}");
        // Larger than 1 MiB: refused, however it is laid out.
        let big = dir.join("big.pem");
        std::fs::write(&big, vec![b'A'; (1 << 20) + 1]).unwrap();
        let m = err(&cfg(big.to_str().unwrap()));
        assert!(m.ends_with("is larger than 1 MiB"), "{m}");
        std::fs::remove_dir_all(&dir).unwrap();
        // Control characters in the path never reach the message.
        let m = err(&cfg("/nonexistent/a\r\nInjected: yes"));
        assert!(!m.contains('\r') && !m.contains('\n'), "{m:?}");
        assert!(
            m.starts_with("ca_file: cannot read /nonexistent/a  Injected"),
            "{m}"
        );
    }

    #[test]
    fn errors_name_field_never_value() {
        let m = err(
            r#"{"token_url":"https://x/t","client_id":"abc","client_secret":"topsecretvalue","timeout_ms":"topsecretvalue"}"#,
        );
        assert!(m.contains("timeout_ms"), "{m}");
        assert!(!m.contains("topsecretvalue"), "{m}");
        let m = err(r#"{"token_url":"https://x/t","client_id":"abc","client_secret":7}"#);
        assert!(m.contains("client_secret"), "{m}");
        let m = err(r#"{"token_url":"https://x/t","client_id":"abc"}"#);
        assert_eq!(m, "client_secret: required");
        let m = err(
            r#"{"token_url":"https://x/t","client_id":"abc","client_secret":"topsecretvalue","extra":1}"#,
        );
        assert!(m.contains("unknown key `extra`"), "{m}");
        let m = err(r#"{"client_secret":"topsecretvalue""#);
        assert!(
            m.contains("not valid JSON") && !m.contains("topsecretvalue"),
            "{m}"
        );
    }

    #[test]
    fn http_only_for_loopback() {
        for ok in [
            "http://127.0.0.1:8080/t",
            "http://[::1]:9/t",
            "http://localhost/t",
            "https://a.example/t",
        ] {
            assert!(check_url("token_url", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.com/t",
            "http://127.0.0.1.nip.io/t",
            "ftp://127.0.0.1/t",
            "https://user:pw@a.example/t",
            "/relative",
            "https://a.example/t#frag",
            "https://a.example/t x",
        ] {
            assert!(check_url("token_url", bad).is_err(), "{bad}");
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "ring's AES-GCM is assembly, which Miri cannot run")]
    fn presets_fill_and_override() {
        let c = Config::from_json(
            r#"{"preset":"vitesse-staging","client_id":"client-1","client_secret":"secret-1"}"#,
        )
        .unwrap();
        assert_eq!(c.auth_method, AuthMethod::ClientSecretPost);
        assert_eq!(c.scope.as_deref(), Some("API"));
        assert_eq!(
            c.endpoint,
            EndpointSource::TokenUrl(
                "https://staging-identity.vitessepsp.com/connect/token".into()
            )
        );
        let c = Config::from_json(r#"{"preset":"apiture","token_url":"http://127.0.0.1:1/t","client_id":"c","client_secret":"s"}"#).unwrap();
        assert_eq!(
            c.endpoint,
            EndpointSource::TokenUrl("http://127.0.0.1:1/t".into())
        );
        assert_eq!(c.basic_encoding, BasicEncoding::Plain);
        for name in preset_names() {
            let json = format!(
                r#"{{"preset":"{name}","client_id":"client-1","client_secret":"secret-1","headers":{{"Ocp-Apim-Subscription-Key":"k"}}}}"#
            );
            Config::from_json(&json).unwrap();
        }
    }

    #[test]
    fn preset_rules() {
        let m = err(r#"{"preset":"vitesse-uk","client_id":"abc","client_secret":"secret-1"}"#);
        assert!(m.contains("client_id") && m.contains("6 to 100"), "{m}");
        let m = err(r#"{"preset":"vitesse-uk","client_id":"abcdef","client_secret":"s"}"#);
        assert!(m.contains("client_secret") && m.contains("6 to 100"), "{m}");
        let m = err(r#"{"preset":"vipps-test","client_id":"c","client_secret":"s"}"#);
        assert!(m.contains("Ocp-Apim-Subscription-Key"), "{m}");
        let m = err(
            r#"{"preset":"vipps-test","client_id":"c","client_secret":"s","headers":{"Ocp-Apim-Subscription-Key":"k","Merchant-Serial-Number":"12a"}}"#,
        );
        assert!(m.contains("Merchant-Serial-Number"), "{m}");
        let m = err(
            r#"{"preset":"vipps-test","client_id":"c","client_secret":"s","headers":{"Ocp-Apim-Subscription-Key":"k","Vipps-System-Name":"0123456789012345678901234567890"}}"#,
        );
        assert!(m.contains("Vipps-System-Name") && m.contains("30"), "{m}");
    }

    #[test]
    fn headers_and_scope_rules() {
        let m = err(
            r#"{"token_url":"https://x/t","client_id":"c","client_secret":"s","headers":{"Authorization":"x"}}"#,
        );
        assert!(m.contains("Authorization"), "{m}");
        let m = err(
            r#"{"token_url":"https://x/t","client_id":"c","client_secret":"s","headers":{"X-A":"a\r\nb"}}"#,
        );
        assert!(m.contains("control"), "{m}");
        let m = err(
            r#"{"token_url":"https://x/t","client_id":"c","client_secret":"s","scope":"a  b"}"#,
        );
        assert!(m.contains("scope"), "{m}");
        let m = err(
            r#"{"token_url":"https://x/t","issuer":"https://x/","client_id":"c","client_secret":"s"}"#,
        );
        assert!(m.contains("not both"), "{m}");
    }
}
