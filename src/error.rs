//! One error type for the whole library.
//!
//! Every failure carries a [`Status`] (a fixed number that the C ABI returns) and a message written
//! for an operator. Messages name fields, rules, hosts and HTTP statuses; they never carry a secret
//! value, a token, or text copied from a place that could hold one (serde's messages quote input
//! values, so they are never passed through).

use std::fmt;

/// The status of a credvault call. The numbers are part of the ABI: they are fixed forever, new
/// codes are added, none is ever renumbered or reused.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Success.
    Ok = 0,
    /// A pointer was NULL, a string was not UTF-8, or an argument was out of range.
    InvalidArgument = 1,
    /// The provider configuration was rejected; the message names the field and the rule.
    InvalidConfig = 2,
    /// The provider handle is zero, unknown, or was already freed.
    InvalidHandle = 3,
    /// The token endpoint could not be reached (DNS, connect, reset).
    Network = 4,
    /// The request did not complete within its deadline.
    Timeout = 5,
    /// TLS failed: certificate not trusted, wrong host name, expired, handshake error.
    Tls = 6,
    /// The endpoint answered with an HTTP status that is neither a token nor an OAuth error.
    HttpStatus = 7,
    /// The identity provider rejected the client credentials (`invalid_client`,
    /// `unauthorized_client`, or a 401).
    CredentialsRejected = 8,
    /// The identity provider rejected the requested scope (`invalid_scope`).
    ScopeRejected = 9,
    /// The identity provider asked us to slow down (429, or 503 with `Retry-After`) for longer than
    /// the request deadline allows.
    RateLimited = 10,
    /// A 200 response that is not a usable token (not JSON, no `access_token`, bad fields), or a
    /// response over the size limit.
    MalformedResponse = 11,
    /// The caller's buffer is too small; the required size is reported.
    BufferTooSmall = 12,
    /// Any other RFC 6749 section 5.2 error (`invalid_request`, `invalid_grant`,
    /// `unsupported_grant_type`, ...).
    OauthError = 13,
    /// Discovery of the token endpoint from the issuer's metadata failed.
    DiscoveryFailed = 14,
    /// No servable token is cached; the call would have to wait for the network (returned only
    /// by the `vault_try_*` calls, which never wait: use the blocking call on a worker thread).
    WouldBlock = 15,
    /// An internal error: a caught panic or a broken invariant. Never expected.
    Internal = 99,
}

impl Status {
    /// The stable name of the status, as the C header spells it.
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "VAULT_STATUS_OK",
            Status::InvalidArgument => "VAULT_STATUS_INVALID_ARGUMENT",
            Status::InvalidConfig => "VAULT_STATUS_INVALID_CONFIG",
            Status::InvalidHandle => "VAULT_STATUS_INVALID_HANDLE",
            Status::Network => "VAULT_STATUS_NETWORK",
            Status::Timeout => "VAULT_STATUS_TIMEOUT",
            Status::Tls => "VAULT_STATUS_TLS",
            Status::HttpStatus => "VAULT_STATUS_HTTP_STATUS",
            Status::CredentialsRejected => "VAULT_STATUS_CREDENTIALS_REJECTED",
            Status::ScopeRejected => "VAULT_STATUS_SCOPE_REJECTED",
            Status::RateLimited => "VAULT_STATUS_RATE_LIMITED",
            Status::MalformedResponse => "VAULT_STATUS_MALFORMED_RESPONSE",
            Status::BufferTooSmall => "VAULT_STATUS_BUFFER_TOO_SMALL",
            Status::OauthError => "VAULT_STATUS_OAUTH_ERROR",
            Status::DiscoveryFailed => "VAULT_STATUS_DISCOVERY_FAILED",
            Status::WouldBlock => "VAULT_STATUS_WOULD_BLOCK",
            Status::Internal => "VAULT_STATUS_INTERNAL",
        }
    }

    /// Whether a fetch that failed with this status may succeed if tried again soon (network
    /// trouble, server trouble), as opposed to a verdict that retrying cannot change.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Status::Network | Status::Timeout | Status::HttpStatus | Status::RateLimited
        )
    }
}

/// A credvault error: a [`Status`], a message that never contains a secret, and the RFC 6749
/// `error` code when the identity provider sent one.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    status: Status,
    message: String,
    oauth_error: Option<Box<str>>,
}

/// Longest OAuth error code kept (bytes).
pub const MAX_OAUTH_ERROR: usize = 64;

impl Error {
    /// Builds an error. Callers must not put secret values into `message`.
    pub(crate) fn new(status: Status, message: impl Into<String>) -> Self {
        Error {
            status,
            message: message.into(),
            oauth_error: None,
        }
    }

    /// The same error carrying the RFC 6749 `error` code `code`, cleaned: visible ASCII only
    /// (anything else is dropped), at most [`MAX_OAUTH_ERROR`] bytes. An empty result is none.
    pub(crate) fn with_oauth_error(mut self, code: &str) -> Self {
        let cleaned: String = code
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(MAX_OAUTH_ERROR)
            .collect();
        self.oauth_error = (!cleaned.is_empty()).then(|| cleaned.into_boxed_str());
        self
    }

    /// The same error (message and OAuth code) with another status.
    pub(crate) fn with_status(mut self, status: Status) -> Self {
        self.status = status;
        self
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Error::new(Status::InvalidConfig, message)
    }

    pub(crate) fn malformed(message: impl Into<String>) -> Self {
        Error::new(Status::MalformedResponse, message)
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Error::new(Status::Internal, message)
    }

    /// The status code.
    pub fn status(&self) -> Status {
        self.status
    }

    /// The message, safe to log.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The RFC 6749 section 5.2 `error` code the identity provider sent (`invalid_client`,
    /// `invalid_scope`, ...), if it sent one: visible ASCII, at most 64 bytes. For bindings that
    /// map codes to their own exception types.
    pub fn oauth_error(&self) -> Option<&str> {
        self.oauth_error.as_deref()
    }

    /// The same error with context put in front of the message.
    pub(crate) fn context(mut self, prefix: &str) -> Self {
        self.message = format!("{prefix}: {}", self.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.status.name())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("status", &self.status)
            .field("message", &self.message)
            .field("oauth_error", &self.oauth_error)
            .finish()
    }
}

impl std::error::Error for Error {}

/// The result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Makes outside text safe to put into a message: no control characters, bounded length.
pub fn clean(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect();
    if s.chars().count() > max {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_strips_controls() {
        assert_eq!(clean("a\r\nb", 10), "a  b");
        assert_eq!(clean("abcdef", 3), "abc…");
    }

    #[test]
    fn oauth_error_code_is_cleaned_and_kept() {
        let e = Error::new(Status::OauthError, "m").with_oauth_error("invalid\u{202e}_grant\n");
        assert_eq!(e.oauth_error(), Some("invalid_grant"));
        let long = "x".repeat(100);
        let e = e.with_oauth_error(&long);
        assert_eq!(e.oauth_error().map(str::len), Some(MAX_OAUTH_ERROR));
        let e = e.with_status(Status::RateLimited).context("ctx");
        assert_eq!(e.status(), Status::RateLimited);
        assert!(e.oauth_error().is_some());
        assert_eq!(
            Error::internal("x")
                .with_oauth_error(" \u{7f}")
                .oauth_error(),
            None
        );
    }
}
