//! The body and headers of a token request: form and Basic encoding, the credentials of each
//! auth method, the signed `client_assertion` of `private_key_jwt`.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ureq::typestate::WithBody;
use ureq::RequestBuilder;
use zeroize::Zeroizing;

use crate::config::{AuthMethod, BasicEncoding, Config, EndpointSource};
use crate::error::{Error, Result};
use crate::jwt::{Audience, ASSERTION_TYPE};
use crate::secret::Sealed;

/// Puts the credentials of `cfg`'s auth method into a token request to `url`: headers on `req`,
/// form fields into `body` (and the `scope`, except for the `headers` method); then every
/// configured header.
pub(super) fn with_credentials(
    cfg: &Config,
    url: &str,
    mut req: RequestBuilder<WithBody>,
    body: &mut Vec<u8>,
) -> Result<RequestBuilder<WithBody>> {
    match cfg.auth_method {
        AuthMethod::ClientSecretBasic => {
            let value = basic_credentials(cfg)?;
            req = req.header("Authorization", value.as_str());
            form_pair(body, "grant_type", b"client_credentials");
        }
        AuthMethod::ClientSecretPost => {
            form_pair(body, "grant_type", b"client_credentials");
            form_pair(body, "client_id", cfg.client_id.as_bytes());
            cfg.secret()?
                .with_plaintext(|s| form_pair(body, "client_secret", s))?;
        }
        AuthMethod::Headers => {
            req = req.header("client_id", cfg.client_id.as_str());
            let secret = open_string(cfg.secret()?)?;
            req = req.header("client_secret", secret.as_str());
        }
        AuthMethod::PrivateKeyJwt => {
            // A new assertion (new `jti`) for every request, retries included.
            let assertion = client_assertion(cfg, url)?;
            form_pair(body, "grant_type", b"client_credentials");
            form_pair(body, "client_id", cfg.client_id.as_bytes());
            form_pair(body, "client_assertion_type", ASSERTION_TYPE.as_bytes());
            form_pair(body, "client_assertion", assertion.as_bytes());
        }
    }
    if let Some(scope) = &cfg.scope {
        if cfg.auth_method != AuthMethod::Headers {
            form_pair(body, "scope", scope.as_bytes());
        }
    }
    for (name, value) in &cfg.headers {
        let value = open_string(value)?;
        req = req.header(name.as_str(), value.as_str());
    }
    Ok(req)
}

/// Opens a sealed value into a zeroizing `String`. Config validation guaranteed UTF-8.
pub(super) fn open_string(sealed: &Sealed) -> Result<Zeroizing<String>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_matches_rfc6749_appendix_b() {
        let mut out = Vec::new();
        form_encode(&mut out, " %&+£\u{20AC}:a~".as_bytes());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "+%25%26%2B%C2%A3%E2%82%AC%3Aa%7E"
        );
    }
}
