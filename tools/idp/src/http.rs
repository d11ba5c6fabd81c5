//! A small, defensive HTTP/1.1 server side: request parsing (Content-Length and chunked bodies,
//! limits on head and body size) and response writing. Nothing here panics on network input.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Largest request head (request line plus headers) accepted.
pub const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted (decoded, for chunked bodies).
pub const MAX_BODY: usize = 1024 * 1024;

/// One parsed request.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    /// The path part of the request target, without the query.
    pub path: String,
    /// Headers in arrival order; names as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether the connection may stay open after the response.
    pub keep_alive: bool,
}

impl Request {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why no request could be read.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed (or the socket failed, or timed out) between requests: close quietly.
    Closed,
    /// Answer with this status and message, then close.
    Reject(u16, String),
}

fn io_closed(_: io::Error) -> ReadError {
    ReadError::Closed
}

fn bad(msg: &str) -> ReadError {
    ReadError::Reject(400, msg.to_string())
}

/// Read one line (ending in LF) of at most `limit` bytes; `Ok(None)` on EOF before any byte.
fn read_line<R: BufRead>(
    r: &mut R,
    limit: usize,
    what: &str,
) -> Result<Option<Vec<u8>>, ReadError> {
    let mut line = Vec::new();
    let n = r
        .take(limit as u64 + 1)
        .read_until(b'\n', &mut line)
        .map_err(io_closed)?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        if line.len() > limit {
            return Err(ReadError::Reject(431, format!("{what} too large")));
        }
        // EOF in the middle of a line.
        return Err(ReadError::Closed);
    }
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(Some(line))
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Read the next request from the connection. `Err(Closed)` when the peer is gone.
/// The connection is written to only to send `100 Continue` when the client asks for it.
pub fn read_request<C: BufRead + Write>(r: &mut C) -> Result<Request, ReadError> {
    let mut head_left = MAX_HEAD;
    let (method, path, http10) = read_request_line(r, &mut head_left)?;
    let headers = read_headers(r, &mut head_left)?;
    let keep_alive = {
        let tokens: Vec<String> = values(&headers, "connection")
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .collect();
        if http10 {
            tokens.iter().any(|t| t == "keep-alive")
        } else {
            !tokens.iter().any(|t| t == "close")
        }
    };
    let body = read_body(r, &headers, http10)?;
    Ok(Request {
        method,
        path,
        headers,
        body,
        keep_alive,
    })
}

/// The values of every header named `name` (case-insensitive), in arrival order.
fn values<'a>(
    headers: &'a [(String, String)],
    name: &'static str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// One line of the request head, counted against what is left of [`MAX_HEAD`].
fn read_head_line<R: BufRead>(r: &mut R, head_left: &mut usize) -> Result<Vec<u8>, ReadError> {
    let line = read_line(r, *head_left, "request head")?.ok_or(ReadError::Closed)?;
    *head_left = head_left.saturating_sub(line.len() + 2);
    if *head_left == 0 {
        return Err(ReadError::Reject(431, "request head too large".into()));
    }
    Ok(line)
}

/// The request line: (method, path, whether HTTP/1.0).
fn read_request_line<R: BufRead>(
    r: &mut R,
    head_left: &mut usize,
) -> Result<(String, String, bool), ReadError> {
    // RFC 9112 allows (and says to ignore) empty lines before it.
    let line = loop {
        let line = read_head_line(r, head_left)?;
        if !line.is_empty() {
            break line;
        }
    };
    let line = String::from_utf8(line).map_err(|_| bad("request line is not valid UTF-8"))?;
    let mut parts = line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) => (m, t, v),
        _ => return Err(bad("malformed request line")),
    };
    if method.is_empty() || !method.bytes().all(is_tchar) {
        return Err(bad("malformed method"));
    }
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        _ if version.starts_with("HTTP/") => {
            return Err(ReadError::Reject(505, "HTTP version not supported".into()))
        }
        _ => return Err(bad("malformed request line")),
    };
    if target.is_empty() || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(bad("malformed request target"));
    }
    let path = origin_path(target).ok_or_else(|| bad("malformed request target"))?;
    Ok((method.to_string(), path, http10))
}

/// The header lines up to the empty line that ends the head.
fn read_headers<R: BufRead>(
    r: &mut R,
    head_left: &mut usize,
) -> Result<Vec<(String, String)>, ReadError> {
    let mut headers: Vec<(String, String)> = Vec::new();
    loop {
        let line = read_head_line(r, head_left)?;
        if line.is_empty() {
            return Ok(headers);
        }
        if line[0] == b' ' || line[0] == b'\t' {
            return Err(bad("obsolete header line folding"));
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| bad("header line without a colon"))?;
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(bad("malformed header name"));
        }
        let value = &line[colon + 1..];
        if value.iter().any(|&b| b == 0 || b == b'\r' || b == b'\n') {
            return Err(bad("malformed header value"));
        }
        let value = String::from_utf8_lossy(value);
        let value = value.trim_matches(|c| c == ' ' || c == '\t');
        headers.push((
            String::from_utf8_lossy(name).into_owned(),
            value.to_string(),
        ));
        if headers.len() > 1000 {
            return Err(ReadError::Reject(431, "too many headers".into()));
        }
    }
}

/// The body: chunked, or Content-Length bytes, or none; `100 Continue` first when asked.
fn read_body<C: BufRead + Write>(
    r: &mut C,
    headers: &[(String, String)],
    http10: bool,
) -> Result<Vec<u8>, ReadError> {
    let te: Vec<String> = values(headers, "transfer-encoding")
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    let lengths: Vec<&str> = values(headers, "content-length")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let expect_continue = !http10
        && values(headers, "expect")
            .next()
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    if !te.is_empty() {
        if !lengths.is_empty() {
            return Err(bad("both Transfer-Encoding and Content-Length"));
        }
        if http10 {
            return Err(bad("Transfer-Encoding in an HTTP/1.0 request"));
        }
        if te.len() != 1 || te[0] != "chunked" {
            return Err(ReadError::Reject(501, "unsupported transfer coding".into()));
        }
        if expect_continue {
            send_continue(r)?;
        }
        return read_chunked(r);
    }
    let Some(&first) = lengths.first() else {
        return Ok(Vec::new());
    };
    if lengths.iter().any(|l| *l != first) {
        return Err(bad("conflicting Content-Length values"));
    }
    if first.is_empty() || first.len() > 18 || !first.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("malformed Content-Length"));
    }
    let len: usize = first.parse().map_err(|_| bad("malformed Content-Length"))?;
    if len > MAX_BODY {
        return Err(ReadError::Reject(413, "request body too large".into()));
    }
    if expect_continue && len > 0 {
        send_continue(r)?;
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).map_err(io_closed)?;
    Ok(body)
}

fn send_continue(w: &mut dyn Write) -> Result<(), ReadError> {
    w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
        .and_then(|_| w.flush())
        .map_err(io_closed)
}

/// The path of an origin-form (`/p?q`) or absolute-form (`http://h/p?q`) target.
fn origin_path(target: &str) -> Option<String> {
    let rest = if target.starts_with('/') {
        target
    } else if let Some(after) = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
    {
        match after.find('/') {
            Some(i) => &after[i..],
            None => "/",
        }
    } else if target == "*" {
        "*"
    } else {
        return None;
    };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

fn read_chunked<R: BufRead>(r: &mut R) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        let line = read_line(r, 1024, "chunk header")?.ok_or(ReadError::Closed)?;
        let line = String::from_utf8(line).map_err(|_| bad("malformed chunk size"))?;
        let size = line.split(';').next().unwrap_or("").trim();
        if size.is_empty() || size.len() > 15 || !size.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad("malformed chunk size"));
        }
        let size = usize::from_str_radix(size, 16).map_err(|_| bad("malformed chunk size"))?;
        if size == 0 {
            break;
        }
        if body.len().saturating_add(size) > MAX_BODY {
            return Err(ReadError::Reject(413, "request body too large".into()));
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..]).map_err(io_closed)?;
        let crlf = read_line(r, 2, "chunk")?.ok_or(ReadError::Closed)?;
        if !crlf.is_empty() {
            return Err(bad("malformed chunk"));
        }
    }
    // Trailer section, ignored.
    let mut left = 16 * 1024;
    loop {
        let line = read_line(r, left, "trailer")?.ok_or(ReadError::Closed)?;
        if line.is_empty() {
            return Ok(body);
        }
        left = left.saturating_sub(line.len() + 2);
        if left == 0 {
            return Err(ReadError::Reject(431, "trailer too large".into()));
        }
    }
}

/// A complete response with a body held in memory.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        let mut headers = Vec::new();
        if !content_type.is_empty() {
            headers.push(("Content-Type".to_string(), content_type.to_string()));
        }
        Response {
            status,
            headers,
            body: body.into(),
        }
    }

    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self::new(status, "application/json", body)
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

/// The status line and headers, with `Date`, `Server`, `Content-Length` and `Connection` added.
pub fn head_bytes(
    status: u16,
    headers: &[(String, String)],
    content_length: u64,
    keep_alive: bool,
) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {} {}\r\n", status, reason(status));
    out.push_str(&format!(
        "Date: {}\r\nServer: credvault-idp\r\n",
        http_date(SystemTime::now())
    ));
    for (n, v) in headers {
        out.push_str(n);
        out.push_str(": ");
        out.push_str(v);
        out.push_str("\r\n");
    }
    out.push_str(&format!("Content-Length: {content_length}\r\n"));
    if !keep_alive {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    out.into_bytes()
}

/// Write a full response. `head_only` drops the body (HEAD requests) but keeps its length.
pub fn write_response(
    w: &mut dyn Write,
    resp: &Response,
    keep_alive: bool,
    head_only: bool,
) -> io::Result<()> {
    let mut bytes = head_bytes(
        resp.status,
        &resp.headers,
        resp.body.len() as u64,
        keep_alive,
    );
    if !head_only {
        bytes.extend_from_slice(&resp.body);
    }
    w.write_all(&bytes)?;
    w.flush()
}

/// Close politely: stop writing, then drain what the client still sends for a moment so that the
/// kernel does not answer unread input with a reset that could destroy the response in flight.
pub fn linger_close(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut sink = [0u8; 16 * 1024];
    let mut total = 0usize;
    let mut reader = stream;
    while total < 4 * MAX_BODY {
        match reader.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// A connection's byte stream: plain TCP, or TLS over TCP (see `tls.rs`).
pub trait Transport: Read + Write {
    /// The TCP socket underneath.
    fn tcp(&self) -> &TcpStream;
    /// Tell the peer that no more data follows (a TLS `close_notify`, written out best effort);
    /// nothing for plain TCP.
    fn close_notify(&mut self) {}
}

impl Transport for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

/// One connection: requests are read through a buffer (so pipelined requests wait there),
/// responses are written straight to the transport.
pub struct Conn<T: Transport> {
    inner: BufReader<T>,
}

impl<T: Transport> Conn<T> {
    pub fn new(transport: T) -> Self {
        Conn {
            inner: BufReader::with_capacity(16 * 1024, transport),
        }
    }

    pub fn tcp(&self) -> &TcpStream {
        self.inner.get_ref().tcp()
    }

    /// Drop the connection at once, without a TLS `close_notify` (an abrupt close).
    pub fn abort(&self) {
        let _ = self.tcp().shutdown(Shutdown::Both);
    }

    /// Close after a TLS `close_notify`, without waiting for anything.
    pub fn finish(&mut self) {
        self.inner.get_mut().close_notify();
        self.abort();
    }

    /// Close after the last response: `close_notify`, then [`linger_close`].
    pub fn linger_close(&mut self) {
        self.inner.get_mut().close_notify();
        linger_close(self.tcp());
    }
}

impl<T: Transport> Read for Conn<T> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}

impl<T: Transport> BufRead for Conn<T> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amt: usize) {
        self.inner.consume(amt)
    }
}

impl<T: Transport> Write for Conn<T> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.get_mut().write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.get_mut().flush()
    }
}

/// RFC 9110 IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
pub fn http_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        WD[(days % 7) as usize],
        d,
        MON[(m as usize).saturating_sub(1) % 12],
        y,
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Requests from a byte string; what the server writes (`100 Continue`) is collected.
    struct Duplex<'a> {
        r: BufReader<&'a [u8]>,
        out: Vec<u8>,
    }

    impl<'a> Duplex<'a> {
        fn new(raw: &'a [u8]) -> Self {
            Duplex {
                r: BufReader::new(raw),
                out: Vec::new(),
            }
        }
    }

    impl Read for Duplex<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.r.read(buf)
        }
    }

    impl BufRead for Duplex<'_> {
        fn fill_buf(&mut self) -> io::Result<&[u8]> {
            self.r.fill_buf()
        }

        fn consume(&mut self, amt: usize) {
            self.r.consume(amt)
        }
    }

    impl Write for Duplex<'_> {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.out.write(buf)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn parse(raw: &[u8]) -> Result<Request, ReadError> {
        read_request(&mut Duplex::new(raw))
    }

    #[test]
    fn parses_content_length_body_and_keeps_alive() {
        let req =
            parse(b"POST /oauth/token?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello")
                .unwrap();
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/oauth/token");
        assert_eq!(req.body, b"hello");
        assert!(req.keep_alive);
        assert_eq!(req.header("host"), Some("a"));
    }

    #[test]
    fn parses_chunked_body() {
        let req = parse(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: v\r\n\r\n")
            .unwrap();
        assert_eq!(req.body, b"abcde");
    }

    #[test]
    fn two_requests_on_one_stream() {
        let raw = b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\nConnection: close\r\n\r\n";
        let mut c = Duplex::new(raw);
        let a = read_request(&mut c).unwrap();
        let b = read_request(&mut c).unwrap();
        assert_eq!((a.path.as_str(), a.keep_alive), ("/a", true));
        assert_eq!((b.path.as_str(), b.keep_alive), ("/b", false));
        assert!(matches!(read_request(&mut c), Err(ReadError::Closed)));
        assert!(c.out.is_empty());
    }

    #[test]
    fn sends_100_continue_when_asked() {
        let raw = b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok";
        let mut c = Duplex::new(raw);
        assert_eq!(read_request(&mut c).unwrap().body, b"ok");
        assert_eq!(c.out, b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn rejects_bad_input() {
        for raw in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
            b"GET / HTTP/1.1\r\n folded\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"GET nopath HTTP/1.1\r\n\r\n",
        ] {
            assert!(
                matches!(parse(raw), Err(ReadError::Reject(400, _))),
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
        assert!(matches!(
            parse(b"GET / HTTP/2.0\r\n\r\n"),
            Err(ReadError::Reject(505, _))
        ));
        let big = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY + 1
        );
        assert!(matches!(
            parse(big.as_bytes()),
            Err(ReadError::Reject(413, _))
        ));
        let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
        huge.extend(std::iter::repeat_n(b'a', MAX_HEAD + 10));
        huge.extend_from_slice(b"\r\n\r\n");
        assert!(matches!(parse(&huge), Err(ReadError::Reject(431, _))));
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nHost: a"),
            Err(ReadError::Closed)
        ));
    }

    #[test]
    fn http10_closes_by_default() {
        let req = parse(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        assert!(!req.keep_alive);
        let req = parse(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").unwrap();
        assert!(req.keep_alive);
    }

    #[test]
    fn formats_http_date() {
        let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(http_date(t), "Sun, 06 Nov 1994 08:49:37 GMT");
    }
}
