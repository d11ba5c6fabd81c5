//! The configuration's shape: the types a validated configuration is made of, every key the JSON
//! object may have, and the size limits.

use std::time::Duration;

use super::transport::Transport;
use crate::error::{Error, Result};
use crate::jwt::AssertionKey;
use crate::secret::Sealed;

/// How the client authenticates to the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// HTTP Basic with the client id and secret (RFC 6749 section 2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// `client_id` and `client_secret` as request headers, empty body (Vipps `/accesstoken/get`).
    Headers,
    /// A JWT signed with the client's private key (RFC 7523 section 2.2): no shared secret.
    PrivateKeyJwt,
}

impl AuthMethod {
    /// The method's name in the configuration (`auth_method`).
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::ClientSecretBasic => "client_secret_basic",
            AuthMethod::ClientSecretPost => "client_secret_post",
            AuthMethod::Headers => "headers",
            AuthMethod::PrivateKeyJwt => "private_key_jwt",
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

/// A validated provider configuration. Secrets are sealed; `Debug` shows none of them.
#[derive(Debug)]
pub struct Config {
    /// The name of the preset the configuration starts from, if any.
    pub preset: Option<&'static str>,
    /// Where the token endpoint is: a fixed URL, or an issuer's metadata.
    pub endpoint: EndpointSource,
    /// The client id (not a secret).
    pub client_id: String,
    /// The client secret; `None` with `private_key_jwt`, which has a key instead.
    pub client_secret: Option<Sealed>,
    /// How the client authenticates to the token endpoint.
    pub auth_method: AuthMethod,
    /// The signing key and assertion settings of `private_key_jwt`.
    pub assertion: Option<AssertionKey>,
    /// How id and secret are encoded into the Basic credentials.
    pub basic_encoding: BasicEncoding,
    /// The scope requested in the form body (never with the `headers` method).
    pub scope: Option<String>,
    /// Extra request headers, values sealed.
    pub headers: Vec<(String, Sealed)>,
    /// Timeout of one HTTP request.
    pub timeout: Duration,
    /// When tokens are refreshed, and how failures are retried and cooled down.
    pub refresh: RefreshPolicy,
    /// TLS and proxy settings.
    pub transport: Transport,
}

impl Config {
    /// The client secret of a method that sends one.
    pub(crate) fn secret(&self) -> Result<&Sealed> {
        self.client_secret
            .as_ref()
            .ok_or_else(|| Error::internal("this provider has no client secret"))
    }
}

/// Every key the JSON object may have.
pub(super) const KEYS: &[&str] = &[
    "preset",
    "token_url",
    "issuer",
    "client_id",
    "client_secret",
    "auth_method",
    "basic_encoding",
    "scope",
    "headers",
    "private_key",
    "key_id",
    "signing_alg",
    "audience",
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
pub(super) const RESERVED_HEADERS: &[&str] = &[
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
pub(super) const MAX_CLIENT_ID: usize = 1024;
pub(super) const MAX_SECRET: usize = 8192;
/// An 8192-bit RSA key as a JWK or PEM is under 7 KiB.
pub(super) const MAX_PRIVATE_KEY: usize = 32 * 1024;
pub(super) const MAX_KEY_ID: usize = 256;
pub(super) const MAX_URL: usize = 2048;
pub(super) const MAX_SCOPE: usize = 4096;
pub(super) const MAX_HEADERS: usize = 32;
