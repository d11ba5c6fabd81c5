//! A recording reverse proxy on loopback: sits between credvault and a real identity server and
//! notes, for every request, how the client authenticated (HTTP Basic or form body), what it
//! asked for and what status came back. The server alone cannot tell us which method was sent
//! (Keycloak and oidc-provider both accept either), so this is what the assertions read.
//!
//! It forwards bytes as they are, `Host` included, so the server sees the proxy's address as its
//! own (Keycloak derives its issuer from it) and the proxy stays invisible to discovery.
//! One request per connection: `Connection: close` both ways.
//!
//! Secrets: a record keeps the credentials it saw (to compare them with what was configured) but
//! its `Debug` shows only their presence, and no assertion in this suite prints them.

use std::fmt;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// Rewrites a request body before it is forwarded (the interop tests of `private_key_jwt` swap
/// the assertion the library signed for an expired or an already used one).
pub type Rewrite = Arc<dyn Fn(&str, &mut Zeroizing<Vec<u8>>) + Send + Sync>;
use std::thread;
use std::time::Duration;

use base64::Engine;
use zeroize::Zeroizing;

/// One request seen on the wire.
pub struct Record {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// `Authorization: Basic` as sent: the user and password halves, before any decoding.
    pub basic: Option<(String, Zeroizing<String>)>,
    /// Form body fields other than `client_secret` and `token`: name and decoded value.
    pub form: Vec<(String, String)>,
    /// The `client_secret` form field, decoded, if present.
    pub form_secret: Option<Zeroizing<String>>,
    /// HTTP status of the server's answer (0 if it never answered).
    pub status: u16,
}

impl Record {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Which client authentication this request used, by what was on the wire.
    pub fn auth_method(&self) -> &'static str {
        if self.field("client_assertion").is_some() {
            return "private_key_jwt";
        }
        match (self.basic.is_some(), self.form_secret.is_some()) {
            (true, false) => "client_secret_basic",
            (false, true) => "client_secret_post",
            (true, true) => "both (RFC 6749 2.3 forbids more than one)",
            (false, false) => "none",
        }
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("basic_user", &self.basic.as_ref().map(|(u, _)| u))
            .field(
                "form",
                &self
                    .form
                    .iter()
                    .map(|(k, v)| match k.as_str() {
                        "client_assertion" => (k.as_str(), "<assertion>"),
                        _ => (k.as_str(), v.as_str()),
                    })
                    .collect::<Vec<_>>(),
            )
            .field(
                "form_secret",
                &self.form_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("status", &self.status)
            .finish()
    }
}

/// The proxy; it lives as long as the test process (its thread blocks in `accept`).
pub struct Recorder {
    pub port: u16,
    records: Arc<Mutex<Vec<Record>>>,
}

impl Recorder {
    /// Forwards to `upstream` (`http://127.0.0.1:PORT`, no path).
    pub fn start(upstream: &str) -> Recorder {
        Recorder::start_rewriting(upstream, Arc::new(|_, _| {}))
    }

    /// Like [`Recorder::start`], and every request body passes through `rewrite` (given the
    /// path) before it is forwarded and recorded.
    pub fn start_rewriting(upstream: &str, rewrite: Rewrite) -> Recorder {
        let target = upstream
            .strip_prefix("http://")
            .expect("upstream is http://host:port")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind recorder");
        let port = listener.local_addr().expect("recorder address").port();
        let records = Arc::new(Mutex::new(Vec::new()));
        let sink = records.clone();
        let to = target;
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let sink = sink.clone();
                let to = to.clone();
                let rewrite = rewrite.clone();
                thread::spawn(move || {
                    let mut client = client;
                    // The record is stored before the answer goes back, so a test that got its
                    // answer finds the record.
                    if let Some((rec, answer)) = forward(&mut client, &to, &rewrite) {
                        sink.lock().unwrap().push(rec);
                        let _ = client.write_all(&answer);
                    }
                    let _ = client.shutdown(Shutdown::Both);
                });
            }
        });
        Recorder { port, records }
    }

    /// `http://127.0.0.1:PORT` of the proxy.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Requests so far to `path` (query aside), in arrival order (moved out).
    pub fn take(&self, path: &str) -> Vec<Record> {
        let mut all = self.records.lock().unwrap();
        let (hit, keep): (Vec<Record>, Vec<Record>) = all
            .drain(..)
            .partition(|r| r.path.split('?').next() == Some(path));
        *all = keep;
        hit
    }
}

fn read_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 || head.len() > 64 * 1024 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(head)
}

fn header<'a>(lines: &'a [&'a str], name: &str) -> Option<&'a str> {
    lines.iter().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Forwards one request; returns what was seen and the answer to send back.
fn forward(client: &mut TcpStream, upstream: &str, rewrite: &Rewrite) -> Option<(Record, Vec<u8>)> {
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let head = read_head(client)?;
    let head_text = String::from_utf8(head).ok()?;
    let lines: Vec<&str> = head_text.trim_end().split("\r\n").collect();
    let mut request_line = lines[0].split(' ');
    let method = request_line.next()?.to_string();
    let path = request_line.next()?.to_string();
    let length: usize = header(&lines[1..], "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = Zeroizing::new(vec![0u8; length]);
    client.read_exact(&mut body).ok()?;
    rewrite(&path, &mut body);

    let basic = header(&lines[1..], "authorization")
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .and_then(|raw| {
            let raw = Zeroizing::new(String::from_utf8(raw).ok()?);
            let (user, pass) = raw.split_once(':')?;
            Some((user.to_string(), Zeroizing::new(pass.to_string())))
        });
    let mut form = Vec::new();
    let mut form_secret = None;
    if header(&lines[1..], "content-type")
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"))
    {
        for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let (k, v) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let name = form_decode(k);
            let value = Zeroizing::new(form_decode(v));
            match name.as_str() {
                "client_secret" => form_secret = Some(value),
                "token" => form.push((name, "<token>".into())),
                _ => form.push((name, value.to_string())),
            }
        }
    }

    // Rebuild the request with `Connection: close`, everything else as sent.
    let mut out = Zeroizing::new(Vec::with_capacity(head_text.len() + length));
    out.extend_from_slice(lines[0].as_bytes());
    out.extend_from_slice(b"\r\n");
    for l in &lines[1..] {
        let name = l.split(':').next().unwrap_or("").trim();
        if name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("keep-alive") {
            continue;
        }
        if name.eq_ignore_ascii_case("content-length") {
            out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
            continue;
        }
        out.extend_from_slice(l.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(&body);

    let mut status = 0;
    let mut back = Vec::new();
    if let Ok(mut server) = TcpStream::connect(upstream) {
        let _ = server.set_read_timeout(Some(Duration::from_secs(60)));
        if server.write_all(&out).is_ok() {
            if let Some(resp_head) = read_head(&mut server) {
                let resp_text = String::from_utf8_lossy(&resp_head).into_owned();
                let resp_lines: Vec<&str> = resp_text.trim_end().split("\r\n").collect();
                status = resp_lines[0]
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                back.extend_from_slice(resp_lines[0].as_bytes());
                back.extend_from_slice(b"\r\n");
                for l in &resp_lines[1..] {
                    let name = l.split(':').next().unwrap_or("").trim();
                    if name.eq_ignore_ascii_case("connection")
                        || name.eq_ignore_ascii_case("keep-alive")
                    {
                        continue;
                    }
                    back.extend_from_slice(l.as_bytes());
                    back.extend_from_slice(b"\r\n");
                }
                back.extend_from_slice(b"Connection: close\r\n\r\n");
                let mut rest = Vec::new();
                let _ = server.read_to_end(&mut rest);
                back.extend_from_slice(&rest);
            }
        }
    }
    let record = Record {
        method,
        path,
        basic,
        form,
        form_secret,
        status,
    };
    Some((record, back))
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space, `%XX` a byte), written here
/// independently of the library's encoder.
pub fn form_decode(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => {
                match u8::from_str_radix(std::str::from_utf8(&s[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
