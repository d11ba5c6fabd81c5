//! Fault injection: rules posted to `/_idp/faults` that make the next matching requests fail in
//! a chosen way, and the writers for the faults that stream.

use std::io::{self, Write};
use std::thread;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};

use super::http::{self, Response};

/// The longest delay a rule may ask for.
const MAX_DELAY_MS: u64 = 10 * 60 * 1000;

/// A rule as posted.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    path: Option<String>,
    count: Option<u64>,
    kind: Option<String>,
    status: Option<u16>,
    body: Option<String>,
    content_type: Option<String>,
    retry_after: Option<String>,
    delay_ms: Option<u64>,
    size: Option<u64>,
    interval_ms: Option<u64>,
    depth: Option<u64>,
    location: Option<String>,
}

/// What a fault does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    Status {
        status: u16,
        body: String,
        content_type: String,
        retry_after: Option<String>,
    },
    /// Sleep (the rule's delay), then answer normally.
    Delay,
    Malformed,
    Html,
    Empty,
    NoToken,
    Huge(u64),
    NeverEnd,
    Drip(u64),
    Nested(u64),
    Redirect(String),
    CtlToken,
    Close,
}

impl FaultKind {
    fn name(&self) -> &'static str {
        match self {
            FaultKind::Status { .. } => "status",
            FaultKind::Delay => "delay",
            FaultKind::Malformed => "malformed",
            FaultKind::Html => "html",
            FaultKind::Empty => "empty",
            FaultKind::NoToken => "no_token",
            FaultKind::Huge(_) => "huge",
            FaultKind::NeverEnd => "never_end",
            FaultKind::Drip(_) => "drip",
            FaultKind::Nested(_) => "nested",
            FaultKind::Redirect(_) => "redirect",
            FaultKind::CtlToken => "ctl_token",
            FaultKind::Close => "close",
        }
    }
}

/// A registered rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    /// Exact path, or `None` for every token and discovery endpoint.
    pub path: Option<String>,
    /// Applications left; `None` until cleared.
    pub remaining: Option<u64>,
    pub delay_ms: u64,
    pub kind: FaultKind,
    pub applied: u64,
}

/// A fault picked for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub delay_ms: u64,
    pub kind: FaultKind,
}

fn header_safe(what: &str, v: &str) -> Result<(), String> {
    if v.chars().any(|c| c.is_control()) {
        Err(format!("{what} must not contain control characters"))
    } else {
        Ok(())
    }
}

/// Validate a posted rule.
pub fn parse_rule(body: &[u8]) -> Result<FaultRule, String> {
    let spec: FaultSpec =
        serde_json::from_slice(body).map_err(|e| format!("bad fault rule: {e}"))?;
    rule_from_spec(spec)
}

fn rule_from_spec(mut spec: FaultSpec) -> Result<FaultRule, String> {
    if let Some(p) = &spec.path {
        if !p.starts_with('/') || p.starts_with("/_idp/") || p == "/_idp" {
            return Err("path must start with '/' and must not be under /_idp/".into());
        }
    }
    let delay_ms = spec.delay_ms.unwrap_or(0);
    if delay_ms > MAX_DELAY_MS {
        return Err(format!("delay_ms must be at most {MAX_DELAY_MS}"));
    }
    let kind = fault_kind(&mut spec)?;
    let remaining = match spec.count.unwrap_or(1) {
        0 => None,
        n => Some(n),
    };
    Ok(FaultRule {
        path: spec.path,
        remaining,
        delay_ms,
        kind,
        applied: 0,
    })
}

/// The kind of a rule and its parameters, checked (a table of the kinds).
fn fault_kind(spec: &mut FaultSpec) -> Result<FaultKind, String> {
    Ok(match spec.kind.as_deref().unwrap_or("status") {
        "status" => status_kind(spec)?,
        "delay" => {
            if spec.delay_ms.is_none() {
                return Err("kind 'delay' needs delay_ms".into());
            }
            FaultKind::Delay
        }
        "malformed" => FaultKind::Malformed,
        "html" => FaultKind::Html,
        "empty" => FaultKind::Empty,
        "no_token" => FaultKind::NoToken,
        "huge" => {
            let size = spec.size.unwrap_or(10 * 1024 * 1024);
            if size > 4 << 30 {
                return Err("size must be at most 4 GiB".into());
            }
            FaultKind::Huge(size)
        }
        "never_end" => FaultKind::NeverEnd,
        "drip" => {
            let interval = spec.interval_ms.unwrap_or(500);
            if interval > 60_000 {
                return Err("interval_ms must be at most 60000".into());
            }
            FaultKind::Drip(interval)
        }
        "nested" => {
            let depth = spec.depth.unwrap_or(100_000);
            if depth > 50_000_000 {
                return Err("depth must be at most 50000000".into());
            }
            FaultKind::Nested(depth)
        }
        "redirect" => {
            let loc = spec.location.take().ok_or("kind 'redirect' needs location")?;
            header_safe("location", &loc)?;
            FaultKind::Redirect(loc)
        }
        "ctl_token" => FaultKind::CtlToken,
        "close" => FaultKind::Close,
        other => {
            return Err(format!(
                "unknown kind '{other}' (status, delay, malformed, html, empty, no_token, huge, never_end, drip, nested, redirect, ctl_token, close)"
            ))
        }
    })
}

/// The `status` kind: a status (default 503), a body (JSON or text), its content type and an
/// optional `Retry-After`.
fn status_kind(spec: &mut FaultSpec) -> Result<FaultKind, String> {
    let status = spec.status.unwrap_or(503);
    if !(200..=599).contains(&status) {
        return Err("status must be between 200 and 599".into());
    }
    let (body, default_ct) = match spec.body.take() {
        Some(b) => {
            let ct = if serde_json::from_str::<Value>(&b).is_ok() {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            };
            (b, ct)
        }
        None => (
            r#"{"error":"temporarily_unavailable"}"#.to_string(),
            "application/json",
        ),
    };
    let content_type = spec
        .content_type
        .take()
        .unwrap_or_else(|| default_ct.to_string());
    header_safe("content_type", &content_type)?;
    if let Some(ra) = &spec.retry_after {
        header_safe("retry_after", ra)?;
    }
    Ok(FaultKind::Status {
        status,
        body,
        content_type,
        retry_after: spec.retry_after.take(),
    })
}

/// Pick the fault for a request to `path`: the first rule that matches and has applications
/// left, which is then used up by one. `idp_endpoint` says whether the path is a token or
/// discovery endpoint (what a rule without a path matches). `/_idp/` paths never match.
pub fn take(rules: &mut [FaultRule], path: &str, idp_endpoint: bool) -> Option<Fault> {
    if path == "/_idp" || path.starts_with("/_idp/") {
        return None;
    }
    let rule = rules.iter_mut().find(|r| {
        r.remaining != Some(0)
            && match &r.path {
                Some(p) => p == path,
                None => idp_endpoint,
            }
    })?;
    if let Some(n) = &mut rule.remaining {
        *n -= 1;
    }
    rule.applied += 1;
    Some(Fault {
        delay_ms: rule.delay_ms,
        kind: rule.kind.clone(),
    })
}

/// A rule as `GET /_idp/faults` lists it.
pub fn describe(rule: &FaultRule) -> Value {
    json!({
        "path": rule.path,
        "kind": rule.kind.name(),
        "remaining": rule.remaining,
        "applied": rule.applied,
        "delay_ms": rule.delay_ms,
    })
}

/// How to answer a faulted request.
pub enum FaultReply {
    /// Answer normally (the `delay` kind, after its sleep).
    Normal,
    Full(Response),
    Close,
    Huge(u64),
    NeverEnd,
    /// A valid token body written one byte per interval.
    Drip(u64),
}

pub fn reply(kind: &FaultKind) -> FaultReply {
    let json =
        |body: &str| Response::json(200, body.to_string()).with_header("Cache-Control", "no-store");
    match kind {
        FaultKind::Status {
            status,
            body,
            content_type,
            retry_after,
        } => {
            let mut r = Response::new(*status, content_type, body.clone());
            if let Some(ra) = retry_after {
                r = r.with_header("Retry-After", ra);
            }
            FaultReply::Full(r)
        }
        FaultKind::Delay => FaultReply::Normal,
        FaultKind::Malformed => FaultReply::Full(json(r#"{"access_token": "#)),
        FaultKind::Html => FaultReply::Full(Response::new(
            200,
            "text/html",
            "<html><body>Service maintenance</body></html>",
        )),
        FaultKind::Empty => FaultReply::Full(Response::new(200, "", Vec::new())),
        FaultKind::NoToken => {
            FaultReply::Full(json(r#"{"token_type":"Bearer","expires_in":3600}"#))
        }
        FaultKind::Huge(n) => FaultReply::Huge(*n),
        FaultKind::NeverEnd => FaultReply::NeverEnd,
        FaultKind::Drip(ms) => FaultReply::Drip(*ms),
        FaultKind::Nested(depth) => {
            let d = *depth as usize;
            let mut body = Vec::with_capacity(d.saturating_mul(2));
            body.resize(d, b'[');
            body.resize(d.saturating_mul(2), b']');
            FaultReply::Full(Response::json(200, body))
        }
        FaultKind::Redirect(loc) => {
            FaultReply::Full(Response::new(307, "", Vec::new()).with_header("Location", loc))
        }
        FaultKind::CtlToken => FaultReply::Full(json(
            r#"{"access_token":"abc\r\nX-Injected: 1","token_type":"Bearer","expires_in":3600}"#,
        )),
        FaultKind::Close => FaultReply::Close,
    }
}

const HUGE_PREFIX: &str =
    r#"{"access_token":"huge-response-token","token_type":"Bearer","expires_in":3600,"padding":""#;
const HUGE_SUFFIX: &str = r#""}"#;

/// A JSON object of exactly `size` bytes (or the smallest such object, if `size` is smaller),
/// streamed in 64 KiB pieces.
pub fn write_huge(
    w: &mut dyn Write,
    size: u64,
    keep_alive: bool,
    head_only: bool,
) -> io::Result<()> {
    let fixed = (HUGE_PREFIX.len() + HUGE_SUFFIX.len()) as u64;
    let total = size.max(fixed);
    let headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        ("Cache-Control".to_string(), "no-store".to_string()),
    ];
    w.write_all(&http::head_bytes(200, &headers, total, keep_alive))?;
    if head_only {
        return w.flush();
    }
    w.write_all(HUGE_PREFIX.as_bytes())?;
    let chunk = vec![b'a'; 64 * 1024];
    let mut left = total - fixed;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        w.write_all(&chunk[..n])?;
        left -= n as u64;
    }
    w.write_all(HUGE_SUFFIX.as_bytes())?;
    w.flush()
}

/// Headers announcing a billion bytes, then a few bytes every 100 ms until the client leaves.
pub fn write_never_end(w: &mut dyn Write) -> io::Result<()> {
    let headers = vec![("Content-Type".to_string(), "application/json".to_string())];
    w.write_all(&http::head_bytes(200, &headers, 1_000_000_000, false))?;
    w.write_all(br#"{"access_token":""#)?;
    w.flush()?;
    let mut sent: u64 = 17;
    while sent < 1_000_000_000 - 8 {
        thread::sleep(Duration::from_millis(100));
        w.write_all(b"aaaaaaaa")?;
        w.flush()?;
        sent += 8;
    }
    Ok(())
}

/// A valid token response written one byte every `interval_ms`.
pub fn write_drip(
    w: &mut dyn Write,
    body: &[u8],
    interval_ms: u64,
    keep_alive: bool,
    head_only: bool,
) -> io::Result<()> {
    let headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        ("Cache-Control".to_string(), "no-store".to_string()),
    ];
    w.write_all(&http::head_bytes(
        200,
        &headers,
        body.len() as u64,
        keep_alive,
    ))?;
    w.flush()?;
    if head_only {
        return Ok(());
    }
    for b in body {
        thread::sleep(Duration::from_millis(interval_ms));
        w.write_all(std::slice::from_ref(b))?;
        w.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(json: &str) -> FaultRule {
        parse_rule(json.as_bytes()).unwrap()
    }

    #[test]
    fn parses_defaults() {
        let r = rule("{}");
        assert_eq!(r.path, None);
        assert_eq!(r.remaining, Some(1));
        assert_eq!(
            r.kind,
            FaultKind::Status {
                status: 503,
                body: r#"{"error":"temporarily_unavailable"}"#.into(),
                content_type: "application/json".into(),
                retry_after: None
            }
        );
        assert_eq!(rule(r#"{"count":0}"#).remaining, None);
        assert_eq!(
            rule(r#"{"kind":"huge"}"#).kind,
            FaultKind::Huge(10 * 1024 * 1024)
        );
        assert_eq!(
            rule(r#"{"kind":"nested"}"#).kind,
            FaultKind::Nested(100_000)
        );
        assert_eq!(rule(r#"{"kind":"drip"}"#).kind, FaultKind::Drip(500));
        let r = rule(r#"{"status":429,"body":"slow down","retry_after":"2"}"#);
        assert!(
            matches!(r.kind, FaultKind::Status { status: 429, ref content_type, retry_after: Some(ref ra), .. }
            if content_type.starts_with("text/plain") && ra == "2")
        );
    }

    #[test]
    fn rejects_bad_rules() {
        for bad in [
            r#"{"kind":"nope"}"#,
            r#"{"kind":"delay"}"#,
            r#"{"kind":"redirect"}"#,
            r#"{"path":"/_idp/health"}"#,
            r#"{"path":"relative"}"#,
            r#"{"status":99}"#,
            r#"{"retry_after":"1\r\nX: y"}"#,
            r#"{"unknown_field":1}"#,
            r#"[1]"#,
            r#"{"count":-1}"#,
        ] {
            assert!(parse_rule(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn matching_order_and_counts() {
        let mut rules = vec![
            rule(r#"{"path":"/vitesse/connect/token","count":2,"status":500}"#),
            rule(r#"{"status":502}"#),
            rule(r#"{"path":"/elsewhere","count":0,"kind":"close"}"#),
        ];
        let status = |f: Option<Fault>| match f.map(|f| f.kind) {
            Some(FaultKind::Status { status, .. }) => Some(status),
            Some(FaultKind::Close) => Some(0),
            _ => None,
        };
        // Admin paths never match.
        assert_eq!(take(&mut rules, "/_idp/stats", false), None);
        // The path rule first, twice.
        assert_eq!(
            status(take(&mut rules, "/vitesse/connect/token", true)),
            Some(500)
        );
        assert_eq!(
            status(take(&mut rules, "/vitesse/connect/token", true)),
            Some(500)
        );
        // A path-less rule does not apply to paths that are not idp endpoints.
        assert_eq!(status(take(&mut rules, "/unknown", false)), None);
        // Then the catch-all, once.
        assert_eq!(
            status(take(&mut rules, "/vitesse/connect/token", true)),
            Some(502)
        );
        assert_eq!(
            status(take(&mut rules, "/vitesse/connect/token", true)),
            None
        );
        // count 0 applies until cleared.
        for _ in 0..5 {
            assert_eq!(status(take(&mut rules, "/elsewhere", false)), Some(0));
        }
        assert_eq!(rules[0].remaining, Some(0));
        assert_eq!(rules[0].applied, 2);
        assert_eq!(rules[2].applied, 5);
    }

    #[test]
    fn delay_on_any_kind() {
        let mut rules = vec![rule(r#"{"kind":"empty","delay_ms":5}"#)];
        let f = take(&mut rules, "/oauth/token", true).unwrap();
        assert_eq!(f.delay_ms, 5);
        assert_eq!(f.kind, FaultKind::Empty);
    }

    #[test]
    fn huge_is_exact_size() {
        let mut out = Vec::new();
        write_huge(&mut out, 100_000, true, false).unwrap();
        let split = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let body = &out[split..];
        assert_eq!(body.len(), 100_000);
        let v: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["token_type"], "Bearer");
    }

    #[test]
    fn nested_body() {
        let FaultReply::Full(r) = reply(&FaultKind::Nested(3)) else {
            panic!()
        };
        assert_eq!(r.body, b"[[[]]]");
    }
}
