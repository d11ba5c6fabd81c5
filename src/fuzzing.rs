//! Entry points for the fuzz targets and property tests (`tests/fuzz/`): the parsers that see
//! untrusted bytes, reachable without a network. Not part of the supported API.

use std::time::Instant;

use crate::config::Config;
use crate::discovery::Discovery;
use crate::error::{Error, Result};
use crate::secret::WipedValue;

/// Parses a provider configuration.
pub fn config(bytes: &[u8]) -> Result<()> {
    let text = std::str::from_utf8(bytes).map_err(|_| Error::config("not UTF-8"))?;
    Config::from_json(text).map(drop)
}

/// Parses a 200 token response body; returns (token length, token type, lifetime seconds).
pub fn token_response(bytes: &[u8]) -> Result<(usize, String, f64)> {
    let cfg = Config::from_json(
        r#"{"token_url":"https://idp.example/t","client_id":"c","client_secret":"s"}"#,
    )?;
    let f = crate::endpoint::parse_token(&cfg, bytes, "application/json", Instant::now())?;
    Ok((f.token.len(), f.token_type, f.lifetime.as_secs_f64()))
}

/// Parses an error response body of the given HTTP status.
pub fn error_response(status: u16, bytes: &[u8]) -> Option<Error> {
    let status = ureq::http::StatusCode::from_u16(status).ok()?;
    crate::endpoint::oauth_error(status, bytes, &crate::endpoint::Secrets::default())
}

/// Parses issuer metadata for the issuer `https://idp.example/oidc/`; returns the token endpoint.
pub fn discovery(bytes: &[u8]) -> Result<String> {
    let doc = WipedValue(
        serde_json::from_slice(bytes).map_err(|_| Error::malformed("metadata is not JSON"))?,
    );
    let d = Discovery::new(
        "https://idp.example/oidc/".into(),
        std::time::Duration::from_secs(1),
        "private_key_jwt",
    );
    d.token_endpoint_from(
        &doc.0,
        "https://idp.example/oidc/.well-known/openid-configuration",
        &crate::endpoint::Secrets::default(),
    )
}

/// Parses a `Retry-After` value.
pub fn retry_after(text: &str) -> Option<std::time::Duration> {
    crate::endpoint::parse_retry_after(text)
}

/// Reads a VGS `credentials.yaml`; returns the client id, the secret and the scopes.
pub fn service_account(text: &str) -> std::result::Result<(String, String, Vec<String>), String> {
    crate::sources::parse_service_account(text).map(|sa| {
        (
            sa.client_id.to_string(),
            sa.client_secret.to_string(),
            sa.scopes,
        )
    })
}
