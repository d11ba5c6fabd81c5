//! What comes back from an identity provider: the body read within the size limit, the HTTP
//! status and RFC 6749 error mapped to a failure, `Retry-After`, and the failure of the exchange
//! itself (transport and TLS errors).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use ureq::http::{Response, StatusCode};
use ureq::Body;
use zeroize::Zeroizing;

use crate::config::Config;
use crate::error::{Error, Status};
use crate::secret::WipedValue;

use super::redact::Secrets;
use super::retry::{Failed, Retry};
use super::token::{parse_token_response, Fetched};

/// Response bodies larger than this are refused.
pub const MAX_BODY: u64 = 1 << 20;

/// Maps a transport error. Messages carry ureq's description, which names hosts and causes,
/// never request headers or bodies; it can quote the server (a certificate's names), so it goes
/// through `secrets` like any identity-provider text.
pub(super) fn transport_error(e: ureq::Error, secrets: &Secrets) -> Failed {
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

pub(super) fn read_body(body: &mut Body, secrets: &Secrets) -> Result<Zeroizing<Vec<u8>>, Failed> {
    body.with_config()
        .limit(MAX_BODY)
        .read_to_vec()
        .map(Zeroizing::new)
        .map_err(|e| transport_error(e, secrets))
}

/// The `Retry-After` of a 429 or 503, or the default backoff for other 5xx.
pub(super) fn retry_hint(response: &Response<Body>) -> Retry {
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

pub(super) fn http_status_failure(status: StatusCode, retry: Retry) -> Failed {
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

pub(super) fn handle_token_response(
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

#[cfg(test)]
mod tests {
    use super::*;

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
