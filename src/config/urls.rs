//! URL and scope checks: endpoints are absolute HTTPS URLs (plain HTTP only for loopback) without
//! credentials; scopes are RFC 6749 scope tokens.

use std::net::IpAddr;

use super::schema::{MAX_SCOPE, MAX_URL};
use crate::error::{Error, Result};

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
                "{key}: plain http:// is allowed only for loopback hosts (127.0.0.0/8, ::1, localhost); use https://"
            )))
        }
        _ => return Err(Error::config(format!("{key}: scheme must be https (or http for loopback)"))),
    }
    Ok(url.to_string())
}

/// RFC 6749 section 3.3: scope tokens separated by single spaces.
pub(super) fn check_scope(scope: &str) -> Result<String> {
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
