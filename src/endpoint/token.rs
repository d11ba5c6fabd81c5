//! A token response (HTTP 200) parsed into a sealed token, its type and its lifetime.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::secret::{Sealed, WipedValue};

use super::redact::Secrets;
use super::retry::{Failed, Retry};

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
pub(super) fn parse_token_response(
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
