//! `credvault inspect [TOKEN|-] [--json]`: decodes a JWT's header and claims on this machine, the
//! safe replacement for pasting a live payment token into a website.
//!
//! Nothing is verified and nothing is sent anywhere. The token itself and its signature are never
//! printed; only the decoded header and claims, and the times they name (UTC, local time, time
//! left). A token that is not a JWT is reported as opaque, with its length. The input is read
//! from the argument, or from standard input for `-` or no argument (preferred: an argument is
//! visible to other users of the machine in the process list), and wiped when done.
//!
//! A `private_key_jwt` client assertion (RFC 7523) decodes the same way, pasted alone or as the
//! request body it was sent in (its `client_assertion` field is taken); it is labelled as one
//! when `iss` and `sub` are the same client and it has `aud`, `jti` and `exp`.

use std::fmt::Write as _;
use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD_INDIFFERENT as B64URL;
use base64::Engine as _;
use credvault::error::clean;
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

// `super::cli`, not `crate::cli`: the fuzz targets include this file (tests/fuzz/targets.rs).
use super::cli::{self, exit};

const HELP: &str = "\
usage: credvault inspect [TOKEN|-] [--json]

Decodes a JWT access token's header and claims locally: issuer, subject, audience, scope or
roles, issued at, expiry (UTC, local time, time left), key id and algorithm. The signature is
not verified and nothing is sent anywhere; the token and its signature are never printed.
A token that is not a JWT is reported as opaque. A private_key_jwt client assertion (RFC 7523)
is decoded too, and labelled as one.

  TOKEN     the token (or a whole \"Bearer ...\" header value, or a token request body with a
            client_assertion field; white space around it, also Unicode spaces such as a
            no-break space, is ignored); '-' or nothing reads standard input, which keeps the
            token out of the process list and the shell history
  --json    one JSON object on standard output, for machines (control characters, C1 and
            bidirectional controls in the claims are escaped as \\uXXXX)
  -h, --help

exit codes: 0 inspected (JWT, encrypted JWT header, or opaque token reported),
            2 usage error (also nothing to inspect: empty input, not UTF-8 text, over 1 MiB),
            141 standard output closed early (broken pipe)";

/// Largest input read.
const MAX_INPUT: usize = 1 << 20;

/// Runs the subcommand; returns the exit code.
pub fn run(args: &[String]) -> i32 {
    let mut as_json = false;
    let mut source: Option<&str> = None;
    for a in args {
        match a.as_str() {
            "-h" | "--help" => {
                return cli::out(&format!("{HELP}\n")).err().unwrap_or(exit::OK);
            }
            "--json" => as_json = true,
            s if s.starts_with("--") => {
                return usage(&format!("unknown option {}", clean(s, 40)));
            }
            s => {
                if source.is_some() {
                    return usage("one token at a time");
                }
                source = Some(s);
            }
        }
    }
    let input = match read_input(source) {
        Ok(t) => t,
        Err(msg) => return usage(&msg),
    };
    let token = match token_text(&input) {
        Ok(t) => t,
        Err(e) => return usage(e.message()),
    };
    let report = inspect(token, SystemTime::now());
    let text = if as_json {
        report.to_json_text() + "\n"
    } else {
        report.to_text()
    };
    cli::out(&text).err().unwrap_or(exit::OK)
}

fn usage(what: &str) -> i32 {
    cli::err(&format!("credvault inspect: {what}\n\n{HELP}\n"));
    exit::USAGE
}

/// The input as given, at most `MAX_INPUT` bytes; wiped on drop.
fn read_input(source: Option<&str>) -> Result<Zeroizing<Vec<u8>>, String> {
    match source {
        Some("-") | None => {
            let mut buf = Zeroizing::new(Vec::new());
            std::io::stdin()
                .take(MAX_INPUT as u64 + 1)
                .read_to_end(&mut buf)
                .map_err(|e| format!("cannot read standard input: {}", e.kind()))?;
            if buf.len() > MAX_INPUT {
                return Err("the input is over 1 MiB: not a token".into());
            }
            Ok(buf)
        }
        Some(arg) => Ok(Zeroizing::new(arg.as_bytes().to_vec())),
    }
}

/// Why the input holds no token.
#[derive(Debug, PartialEq)]
pub enum InputError {
    NotText,
    Empty,
}

impl InputError {
    pub fn message(&self) -> &'static str {
        match self {
            InputError::NotText => "nothing to inspect: the input is not UTF-8 text",
            InputError::Empty => "nothing to inspect: the input is empty",
        }
    }
}

/// What surrounds a token and is not part of it: Unicode white space (U+00A0 no-break space,
/// U+3000, U+2028 ...) and the invisible characters a web page or an editor adds (zero-width
/// space and joiners, word joiner, byte order mark).
fn is_padding(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

/// `text` without a leading `word` (ASCII, any case), when `word` ends there or is followed by
/// `next`; never cuts inside a character.
fn strip_word<'a>(text: &'a str, word: &str, next: fn(char) -> bool) -> Option<&'a str> {
    let head = text.get(..word.len())?;
    let rest = text.get(word.len()..)?;
    (head.eq_ignore_ascii_case(word) && rest.chars().next().is_none_or(next)).then_some(rest)
}

/// The token in the input: the text without the padding around it, a leading
/// `Authorization:` and a `Bearer` word, as copied from a request or a web page. Never panics,
/// whatever the bytes (fuzzed: tests/fuzz, target `cli_input`).
pub fn token_text(input: &[u8]) -> Result<&str, InputError> {
    let text = std::str::from_utf8(input).map_err(|_| InputError::NotText)?;
    let mut t = text.trim_matches(is_padding);
    if let Some(rest) = strip_word(t, "authorization:", |_| true) {
        t = rest.trim_start_matches(is_padding);
    }
    if let Some(rest) = strip_word(t, "bearer", is_padding) {
        t = rest.trim_start_matches(is_padding);
    }
    // A token request body: its client assertion (a JWT needs no form decoding).
    if let Some(field) = t
        .split('&')
        .find_map(|pair| pair.strip_prefix("client_assertion="))
    {
        t = field.trim_matches(is_padding);
    }
    if t.is_empty() {
        return Err(InputError::Empty);
    }
    Ok(t)
}

/// What was found in a token.
#[derive(Debug, PartialEq)]
pub enum Report {
    /// A signed JWT (JWS compact form): header and claims.
    Jwt {
        header: Map<String, Value>,
        claims: Map<String, Value>,
        now: u64,
    },
    /// An encrypted JWT (JWE compact form): only the header is readable.
    Jwe { header: Map<String, Value> },
    /// Not a JWT: an opaque reference the identity provider resolves.
    Opaque { length: usize },
}

/// Decodes `token` (never returned or printed) as of `now`.
pub fn inspect(token: &str, now: SystemTime) -> Report {
    let now = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let opaque = Report::Opaque {
        length: token.len(),
    };
    let parts: Vec<&str> = token.split('.').collect();
    let Some(header) = parts.first().and_then(|h| decode_object(h)) else {
        return opaque;
    };
    if !header.contains_key("alg") {
        return opaque;
    }
    match parts.len() {
        3 => match decode_object(parts[1]) {
            Some(claims) => Report::Jwt {
                header,
                claims,
                now,
            },
            None => opaque,
        },
        5 if header.contains_key("enc") => Report::Jwe { header },
        _ => opaque,
    }
}

/// A base64url segment holding a JSON object.
fn decode_object(segment: &str) -> Option<Map<String, Value>> {
    let bytes = Zeroizing::new(B64URL.decode(segment.as_bytes()).ok()?);
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// Claims shown by name, in this order, with their labels.
const NAMED: &[(&str, &str)] = &[
    ("iss", "issuer"),
    ("sub", "subject"),
    ("aud", "audience"),
    ("client_id", "client id"),
    ("azp", "authorized party"),
    ("scope", "scope"),
    ("scp", "scope"),
    ("roles", "roles"),
    ("jti", "token id"),
];

/// Whether these are a client assertion's claims (RFC 7523 section 3): `iss` and `sub` the same
/// client, with `aud`, `jti` and `exp`. An access token's `iss` is its issuer, not its subject.
fn is_client_assertion(claims: &Map<String, Value>) -> bool {
    matches!((claims.get("iss"), claims.get("sub")), (Some(Value::String(i)), Some(Value::String(s))) if i == s)
        && ["aud", "jti", "exp"]
            .iter()
            .all(|k| claims.contains_key(*k))
}

/// Time claims, with their labels.
const TIMES: &[(&str, &str)] = &[
    ("iat", "issued at"),
    ("nbf", "not before"),
    ("exp", "expires"),
];

impl Report {
    /// The human-readable form.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let mut line = |label: &str, value: String| {
            out.push_str(&format!("  {label:<17} {value}\n"));
        };
        match self {
            Report::Opaque { length } => {
                format!(
                    "opaque token ({length} bytes): not a JWT, nothing to decode locally \
                     (only the identity provider can say what it means, e.g. by introspection)\n"
                )
            }
            Report::Jwe { header } => {
                line("algorithm", show(header.get("alg")));
                line("encryption", show(header.get("enc")));
                if let Some(kid) = header.get("kid") {
                    line("key id", show(Some(kid)));
                }
                format!(
                    "encrypted JWT (JWE): the claims can only be read with the recipient's key\n{out}"
                )
            }
            Report::Jwt {
                header,
                claims,
                now,
            } => {
                line("algorithm", show(header.get("alg")));
                for (k, label) in [("kid", "key id"), ("typ", "type")] {
                    if let Some(v) = header.get(k) {
                        line(label, show(Some(v)));
                    }
                }
                for (k, label) in NAMED {
                    if let Some(v) = claims.get(*k) {
                        line(label, show(Some(v)));
                    }
                }
                for (k, label) in TIMES {
                    if let Some(v) = claims.get(*k) {
                        line(label, show_time(v, *k == "exp", *now));
                    }
                }
                let known = |k: &str| NAMED.iter().chain(TIMES).any(|(n, _)| *n == k);
                for (k, v) in claims.iter().filter(|(k, _)| !known(k)) {
                    line(&show(Some(&Value::String(k.clone()))), show(Some(v)));
                }
                let what = if is_client_assertion(claims) {
                    "JWT client assertion (private_key_jwt, RFC 7523: the client's proof, not a token)"
                } else {
                    "JWT"
                };
                format!(
                    "{what} (signature NOT verified; decoded on this machine, sent nowhere)\n{out}"
                )
            }
        }
    }

    /// The machine-readable form, as text: `to_json` with the characters that could make a
    /// terminal show or do something else escaped as `\\uXXXX` (JSON escapes; the values are
    /// unchanged): DEL and the C1 controls (U+007F to U+009F; serde_json escapes only those
    /// below U+0020), the bidirectional controls and the line and paragraph separators.
    pub fn to_json_text(&self) -> String {
        let raw = self.to_json().to_string();
        let mut out = String::with_capacity(raw.len());
        for c in raw.chars() {
            // These only occur inside JSON strings, where an escape means the same character.
            if matches!(c, '\u{7F}'..='\u{9F}' | '\u{2028}' | '\u{2029}') || is_bidi_control(c) {
                let _ = write!(out, "\\u{:04x}", c as u32);
            } else {
                out.push(c);
            }
        }
        out
    }

    /// The machine-readable form.
    pub fn to_json(&self) -> Value {
        match self {
            Report::Opaque { length } => json!({"format": "opaque", "length": length}),
            Report::Jwe { header } => json!({"format": "jwe", "header": header}),
            Report::Jwt {
                header,
                claims,
                now,
            } => {
                let mut times = Map::new();
                for (k, _) in TIMES {
                    if let Some(secs) = claims.get(*k).and_then(epoch) {
                        times.insert(
                            (*k).into(),
                            json!({
                                "epoch": secs,
                                "utc": utc(secs),
                                "local": local(secs),
                                "seconds_from_now": secs as i64 - *now as i64,
                            }),
                        );
                    }
                }
                json!({
                    "format": "jwt",
                    "kind": if is_client_assertion(claims) { "client_assertion" } else { "access_token" },
                    "verified": false,
                    "header": header,
                    "claims": claims,
                    "times": times,
                    "expired": claims.get("exp").and_then(epoch).map(|e| e <= *now),
                })
            }
        }
    }
}

/// A claim value for a terminal: strings as they are, lists joined, control characters removed.
fn show(v: Option<&Value>) -> String {
    let s = match v {
        None => "(none)".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Some(other) => other.to_string(),
    };
    // Bidirectional controls could make a terminal show text other than what the token says;
    // line and paragraph separators would start lines of their own.
    let s: String = s
        .chars()
        .map(|c| {
            if is_bidi_control(c) || matches!(c, '\u{2028}' | '\u{2029}') {
                ' '
            } else {
                c
            }
        })
        .collect();
    clean(&s, 200)
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Seconds since the epoch in a NumericDate claim (RFC 7519 allows fractions).
fn epoch(v: &Value) -> Option<u64> {
    let f = v.as_f64()?;
    (f.is_finite() && (0.0..253_402_300_800.0).contains(&f)).then_some(f as u64)
}

fn show_time(v: &Value, is_expiry: bool, now: u64) -> String {
    let Some(secs) = epoch(v) else {
        return format!("{} (not a NumericDate)", show(Some(v)));
    };
    let when = format!("{} ({})", utc(secs), local(secs));
    let delta = secs as i64 - now as i64;
    match (is_expiry, delta) {
        (true, d) if d > 0 => format!("{when}, {} left", span(d as u64)),
        (true, d) => format!("{when}, EXPIRED {} ago", span(d.unsigned_abs())),
        (false, d) if d > 0 => format!("{when}, in {}", span(d as u64)),
        (false, d) => format!("{when}, {} ago", span(d.unsigned_abs())),
    }
}

/// `3d 4h`, `2h 5m`, `4m 59s`, `7s`.
fn span(s: u64) -> String {
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) => format!("{m}m {sec}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// `2026-12-01 22:40:01 UTC`.
fn utc(secs: u64) -> String {
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let t = secs % 86_400;
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02} UTC",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// The same instant in the machine's local time zone (`localtime_r`), with its offset.
fn local(secs: u64) -> String {
    let t = secs as libc::time_t;
    // SAFETY: an all-zero tm is a valid value to be overwritten.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: localtime_r writes one tm it is given and reads one time_t.
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return "local time unknown".into();
    }
    let off = tm.tm_gmtoff;
    let sign = if off < 0 { '-' } else { '+' };
    let off = off.unsigned_abs();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} local, UTC{sign}{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        off / 3600,
        off / 60 % 60
    )
}

/// (year, month, day) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn b64(v: &Value) -> String {
        B64URL.encode(v.to_string())
    }

    fn jwt(header: Value, claims: Value) -> String {
        format!("{}.{}.c2lnbmF0dXJlLXNlY3JldA", b64(&header), b64(&claims))
    }

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(784_111_777), "1994-11-06 08:49:37 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(span(299), "4m 59s");
        assert_eq!(span(3 * 86_400 + 4 * 3600 + 5), "3d 4h");
    }

    #[test]
    fn decodes_a_jwt_and_never_shows_the_signature() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let t = jwt(
            json!({"alg":"RS256","kid":"key-1","typ":"at+jwt"}),
            json!({"iss":"https://idp.example/realms/vgs","sub":"svc","aud":["a","b"],
                   "scope":"payments:write","iat":999_999_700,"exp":1_000_000_299,"x":"y\u{202e}z"}),
        );
        let r = inspect(&t, now);
        let text = r.to_text();
        assert!(text.contains("RS256") && text.contains("key-1"), "{text}");
        assert!(text.contains("https://idp.example/realms/vgs"));
        assert!(text.contains("a, b") && text.contains("payments:write"));
        assert!(text.contains("4m 59s left"), "{text}");
        assert!(text.contains("5m 0s ago"), "{text}");
        assert!(!text.contains("c2lnbmF0dXJl") && !text.contains("signature-secret"));
        assert!(!text.contains('\u{202e}'), "bidi controls are not printed");
        let j = r.to_json();
        assert_eq!(j["format"], "jwt");
        assert_eq!(j["expired"], false);
        assert_eq!(j["times"]["exp"]["seconds_from_now"], 299);
        assert!(!j.to_string().contains("c2lnbmF0dXJl"));
        let later = inspect(&t, now + Duration::from_secs(600)).to_text();
        assert!(later.contains("EXPIRED 5m 1s ago"), "{later}");
    }

    #[test]
    fn opaque_and_encrypted() {
        let now = SystemTime::now();
        assert_eq!(
            inspect("2YotnFZFEjr1zCsicMWpAA", now),
            Report::Opaque { length: 22 }
        );
        assert!(matches!(inspect("a.b.c", now), Report::Opaque { .. }));
        // A JSON header without `alg` is not a JOSE header.
        let t = format!("{}.{}.x", b64(&json!({"x":1})), b64(&json!({})));
        assert!(matches!(inspect(&t, now), Report::Opaque { .. }));
        let jwe = format!(
            "{}.k.iv.ct.tag",
            b64(&json!({"alg":"RSA-OAEP","enc":"A256GCM"}))
        );
        let r = inspect(&jwe, now);
        assert!(matches!(r, Report::Jwe { .. }));
        assert!(r.to_text().contains("A256GCM"));
    }

    #[test]
    fn the_token_without_what_surrounds_it() {
        fn ok(input: &str) -> Result<&str, InputError> {
            token_text(input.as_bytes())
        }
        assert_eq!(ok("Bearer\u{a0}abc"), Ok("abc"));
        assert_eq!(ok(" bearer  abc \n"), Ok("abc"));
        assert_eq!(ok("\u{feff}BEARER\u{3000}abc\u{200b}"), Ok("abc"));
        assert_eq!(ok("Authorization: Bearer abc\r\n"), Ok("abc"));
        assert_eq!(ok("authorization:abc"), Ok("abc"));
        assert_eq!(ok("Bearerabc"), Ok("Bearerabc"), "a word of its own");
        assert_eq!(ok("Beare\u{e9}\u{a0}x"), Ok("Beare\u{e9}\u{a0}x"));
        assert_eq!(ok("\u{a0}\u{a0}"), Err(InputError::Empty));
        assert_eq!(ok("Bearer"), Err(InputError::Empty));
        assert_eq!(ok("Bearer \u{a0}"), Err(InputError::Empty));
        assert_eq!(token_text(b"Bearer \xa0x"), Err(InputError::NotText));
        // Every cut of a text with multi-byte characters around the 7th byte.
        let text = "Bearer\u{a0}\u{1f600}e\u{301}.x";
        for end in 0..=text.len() {
            let _ = token_text(&text.as_bytes()[..end]);
        }
    }

    #[test]
    fn json_text_escapes_what_a_terminal_would_act_on() {
        let t = jwt(
            json!({"alg":"none"}),
            json!({"a":"\u{9b}2J\u{85}\u{7f}","b":"\u{202e}\u{2069}\u{2028}\u{2029}\u{61c}","\u{200e}":1}),
        );
        let r = inspect(&t, SystemTime::now());
        let text = r.to_json_text();
        assert!(text.is_ascii(), "{text}");
        assert!(text.contains(r#""a":"\u009b2J\u0085\u007f""#), "{text}");
        assert!(
            text.contains(r#""b":"\u202e\u2069\u2028\u2029\u061c""#),
            "{text}"
        );
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r.to_json());
    }
}
