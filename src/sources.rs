//! Where secrets come from when they are not written into the configuration: references to an
//! environment variable or a file, and the `credentials.yaml` ServiceAccount file that VGS hands
//! its users.
//!
//! A reference is a JSON object in place of a secret string: `{"env": "VAR"}` or
//! `{"file": "/run/secrets/x"}` (one trailing newline trimmed; a file readable by group or others
//! is refused unless `"allow_shared": true`, one writable by them always: see [`read_checked`],
//! the one way the library opens a file). [`resolve`] replaces every reference in a provider's
//! JSON object by the value it names, in the tree itself, whose strings are wiped when it is
//! dropped ([`crate::secret::WipedValue`]); the provider configuration seals the value as soon as
//! it reads it. Messages name the provider field, the variable and the file, never a value.

use std::io::Read;
use std::os::unix::fs::MetadataExt;

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::error::{clean, Error, Result};

/// The largest secret file read.
const SECRET_MAX: u64 = 64 << 10;
/// The largest configuration file read.
const CONFIG_MAX: u64 = 1 << 20;
/// The largest PEM file read (a CA bundle is well below this).
const PEM_MAX: u64 = 1 << 20;

/// The fields of a provider object that may hold a reference.
const SECRET_FIELDS: &[&str] = &["client_id", "client_secret", "private_key"];

/// Replaces every secret reference in `provider` (a provider's JSON object) by its value, and
/// expands `vgs_credentials_file`. Returns whether anything was read from outside (the object is
/// then what a reload must read again).
pub fn resolve(provider: &mut Map<String, Value>) -> Result<bool> {
    let mut external = false;
    if let Some(spec) = provider.remove("vgs_credentials_file") {
        vgs_credentials(provider, &spec)?;
        external = true;
    }
    for field in SECRET_FIELDS {
        if let Some(v) = provider.get_mut(*field) {
            external |= resolve_value(v, field)?;
        }
    }
    if let Some(Value::Object(headers)) = provider.get_mut("headers") {
        for (name, v) in headers.iter_mut() {
            external |= resolve_value(v, &format!("headers.{}", clean(name, 64)))?;
        }
    }
    Ok(external)
}

/// Replaces `v` by the value it refers to, if it is a reference.
fn resolve_value(v: &mut Value, field: &str) -> Result<bool> {
    let Value::Object(spec) = v else {
        return Ok(false);
    };
    let mut value = read_reference(spec, field)?;
    *v = Value::String(std::mem::take(&mut *value));
    Ok(true)
}

/// Reads what a `{"env": ..}` or `{"file": ..}` object names.
fn read_reference(spec: &Map<String, Value>, field: &str) -> Result<Zeroizing<String>> {
    let bad = |what: &str| Error::config(format!("{field}: {what}"));
    for k in spec.keys() {
        if !["env", "file", "allow_shared"].contains(&k.as_str()) {
            return Err(bad(&format!(
                "unknown key {} in a secret reference (expected env or file, and allow_shared)",
                clean(k, 40)
            )));
        }
    }
    let allow_shared = match spec.get("allow_shared") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("allow_shared must be true or false")),
    };
    match (spec.get("env"), spec.get("file")) {
        (Some(Value::String(var)), None) => read_env(var).map_err(|e| e.context(field)),
        (None, Some(Value::String(path))) => {
            read_file(path, allow_shared).map_err(|e| e.context(field))
        }
        _ => Err(bad(
            "a secret is a string or a reference {\"env\": \"VAR\"} or {\"file\": \"/path\"} (exactly one of them)",
        )),
    }
}

/// How a message names the variable of an `{"env": ...}` reference: by its name when it looks
/// like one (`[A-Za-z_][A-Za-z0-9_]*`, at most 128 characters); otherwise not at all, since what
/// was written there may be the secret itself (`{"env": "<the secret>"}`).
fn variable(var: &str) -> String {
    let mut bytes = var.bytes();
    let name = var.len() <= 128
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if name {
        format!("environment variable {var}")
    } else {
        "the environment variable named in this {\"env\"} reference (the name is not shown: it \
         does not look like a variable name)"
            .to_string()
    }
}

fn read_env(var: &str) -> Result<Zeroizing<String>> {
    if var.is_empty() || var.contains('=') || var.contains('\0') {
        return Err(Error::config("env: not a valid variable name"));
    }
    match std::env::var_os(var) {
        None => Err(Error::config(format!("{} is not set", variable(var)))),
        Some(os) => {
            let s = os.into_string().map_err(|os| {
                drop(Zeroizing::new(os.into_encoded_bytes()));
                Error::config(format!("{} is not UTF-8", variable(var)))
            })?;
            let s = Zeroizing::new(s);
            if s.is_empty() {
                return Err(Error::config(format!("{} is empty", variable(var))));
            }
            Ok(s)
        }
    }
}

/// What a file the library reads is for, which decides the rules it must meet (see
/// [`read_checked`]).
#[derive(Clone, Copy, Debug)]
pub(crate) enum FileUse {
    /// The configuration file (at most 1 MiB): whoever can write it decides where the secrets
    /// are sent (`token_url`), so it must be writable by its owner only, and its owner must be
    /// this process's user or root.
    Config,
    /// A secret (at most 64 KiB): writable by its owner only; not readable by group or others
    /// unless `allow_shared`, whose object form `form` the refusal shows.
    Secret {
        allow_shared: bool,
        form: &'static str,
    },
    /// A PEM file (at most 1 MiB): `ca_file` decides whom the library trusts, so it too must be
    /// writable by its owner only.
    Pem,
}

/// The environment variable that accepts configuration, secret and PEM files writable by group
/// or others, and a configuration file owned by another user (`=1`): ssh's `StrictModes no`.
pub(crate) const ALLOW_WRITABLE_ENV: &str = "CREDVAULT_ALLOW_WRITABLE_CONFIG";

/// The object form of a secret reference that accepts a shared file.
const SHARED_REFERENCE: &str = r#"{"file": "/path", "allow_shared": true}"#;
/// The same for the VGS credentials file (a Kubernetes secret mount is 0644 by default).
const VGS_SHARED: &str = r#""vgs_credentials_file": {"file": "/path", "allow_shared": true}"#;

/// Whether [`ALLOW_WRITABLE_ENV`] is set to accept writable files.
fn writable_allowed() -> bool {
    std::env::var_os(ALLOW_WRITABLE_ENV).is_some_and(|v| {
        ["1", "true", "yes"]
            .iter()
            .any(|y| v.eq_ignore_ascii_case(y))
    })
}

/// A size limit as the documentation writes it.
fn size(max: u64) -> String {
    if max % (1 << 20) == 0 {
        format!("{} MiB", max >> 20)
    } else {
        format!("{} KiB", max >> 10)
    }
}

/// Reads a file for `what`: the one way the library opens a file (configuration file, secret
/// references, VGS credentials, `ca_file`, client certificate and key). Errors read
/// `"{label} {path}: {reason}"`, the path with control characters removed and its length capped.
///
/// The file is opened with `O_NONBLOCK | O_NOCTTY` (and `O_CLOEXEC`, which the standard library
/// always sets), so that opening a FIFO or a terminal neither blocks nor takes the terminal, and
/// its type is checked on the open descriptor (`fstat`): anything but a regular file (a FIFO, a
/// socket, a device, a directory) is refused before a byte is read. Symbolic links are followed,
/// as Kubernetes mounts secrets. Then the mode: a file writable by group or others is refused,
/// as ssh refuses one (whoever can write it decides what the library sends, or where, or whom it
/// trusts); a configuration file must belong to this process's user or root; a secret must not
/// be readable by group or others unless `allow_shared`. [`ALLOW_WRITABLE_ENV`] lifts the
/// writing and owner rules. At most the limit of `what` is read, into a buffer wiped on drop.
pub(crate) fn read_checked(path: &str, what: FileUse, label: &str) -> Result<Zeroizing<Vec<u8>>> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let shown = clean(path, 200);
    let fail = |reason: String| Error::config(format!("{label} {shown}: {reason}"));
    if path.is_empty() || path.contains('\0') {
        return Err(Error::config(format!("{label}: must be a file path")));
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| fail(format!("cannot open ({})", e.kind())))?;
    let meta = file
        .metadata()
        .map_err(|e| fail(format!("cannot stat ({})", e.kind())))?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let is = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_char_device() {
            "a character device"
        } else if kind.is_block_device() {
            "a block device"
        } else {
            "a special file"
        };
        return Err(fail(format!(
            "not a regular file ({is}): only regular files are read"
        )));
    }
    let mode = meta.mode() & 0o777;
    let lax = writable_allowed();
    if mode & 0o022 != 0 && !lax {
        let decides = match what {
            FileUse::Config => "where the secrets are sent",
            FileUse::Secret { .. } => "the credentials sent",
            FileUse::Pem => "whom the library trusts",
        };
        return Err(fail(format!(
            "writable by group or others (mode {mode:o}): whoever can write it decides {decides}; \
             make it writable by its owner only (chmod go-w), or set {ALLOW_WRITABLE_ENV}=1 to accept it"
        )));
    }
    let max = match what {
        FileUse::Config => {
            let owner = meta.uid();
            // SAFETY: getuid and geteuid take no argument, cannot fail and touch no memory.
            let (uid, euid) = unsafe { (libc::getuid(), libc::geteuid()) };
            if owner != 0 && owner != uid && owner != euid && !lax {
                return Err(fail(format!(
                    "owned by uid {owner}, neither this process's user ({euid}) nor root: its \
                     owner decides where the secrets are sent; change its owner, or set \
                     {ALLOW_WRITABLE_ENV}=1 to accept it"
                )));
            }
            CONFIG_MAX
        }
        FileUse::Secret { allow_shared, form } => {
            if mode & 0o044 != 0 && !allow_shared {
                return Err(fail(format!(
                    "readable by group or others (mode {mode:o}): make it 0600 or 0400, or set \
                     \"allow_shared\": true to accept it: {form}"
                )));
            }
            SECRET_MAX
        }
        FileUse::Pem => PEM_MAX,
    };
    let too_large = || fail(format!("larger than {}", size(max)));
    if meta.len() > max {
        return Err(too_large());
    }
    let mut buf = Zeroizing::new(Vec::with_capacity(meta.len() as usize + 1));
    (&mut file)
        .take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| fail(format!("cannot read ({})", e.kind())))?;
    if buf.len() as u64 > max {
        return Err(too_large());
    }
    Ok(buf)
}

/// Reads a secret file ([`read_checked`] with [`FileUse::Secret`]), one trailing newline
/// trimmed, as UTF-8 text. The buffer it was read into is wiped.
pub fn read_file(path: &str, allow_shared: bool) -> Result<Zeroizing<String>> {
    read_secret(path, allow_shared, SHARED_REFERENCE)
}

fn read_secret(path: &str, allow_shared: bool, form: &'static str) -> Result<Zeroizing<String>> {
    let what = FileUse::Secret { allow_shared, form };
    let mut buf = read_checked(path, what, "file")?;
    let fail = |what: &str| Error::config(format!("file {}: {what}", clean(path, 200)));
    if buf.ends_with(b"\r\n") {
        let n = buf.len() - 2;
        buf[n..].fill(0);
        buf.truncate(n);
    } else if buf.ends_with(b"\n") {
        let n = buf.len() - 1;
        buf[n] = 0;
        buf.truncate(n);
    }
    let text = String::from_utf8(std::mem::take(&mut *buf)).map_err(|e| {
        let mut bytes = e.into_bytes();
        zeroize::Zeroize::zeroize(&mut bytes);
        fail("not UTF-8 text")
    })?;
    let text = Zeroizing::new(text);
    if text.is_empty() {
        return Err(fail("empty"));
    }
    Ok(text)
}

/// Fills `client_id`, `client_secret` and `scope` from a VGS `credentials.yaml` (a ServiceAccount
/// with `data.clientId`, `data.clientSecret` and `data.scopes`). Keys written in the provider
/// object itself win.
fn vgs_credentials(provider: &mut Map<String, Value>, spec: &Value) -> Result<()> {
    let (path, allow_shared) = match spec {
        Value::String(p) => (p.as_str(), false),
        Value::Object(o) => match (o.get("file"), o.get("allow_shared")) {
            (Some(Value::String(p)), None | Some(Value::Bool(false))) => (p.as_str(), false),
            (Some(Value::String(p)), Some(Value::Bool(true))) => (p.as_str(), true),
            _ => {
                return Err(Error::config(format!(
                    "vgs_credentials_file: a path, or {SHARED_REFERENCE}"
                )))
            }
        },
        _ => return Err(Error::config("vgs_credentials_file: must be a path")),
    };
    match provider.get("preset").and_then(Value::as_str) {
        Some("vgs") => {}
        _ => {
            return Err(Error::config(
                "vgs_credentials_file: only with \"preset\": \"vgs\"",
            ))
        }
    }
    let text = read_secret(path, allow_shared, VGS_SHARED)
        .map_err(|e| e.context("vgs_credentials_file"))?;
    let sa = parse_service_account(&text).map_err(|what| {
        Error::config(format!("vgs_credentials_file {}: {what}", clean(path, 200)))
    })?;
    provider
        .entry("client_id")
        .or_insert_with(|| Value::String(sa.client_id.to_string()));
    provider
        .entry("client_secret")
        .or_insert_with(|| Value::String(sa.client_secret.to_string()));
    if !sa.scopes.is_empty() {
        provider
            .entry("scope")
            .or_insert_with(|| Value::String(sa.scopes.join(" ")));
    }
    Ok(())
}

/// What a VGS ServiceAccount file holds. The secret is wiped on drop.
pub struct ServiceAccount {
    pub client_id: Zeroizing<String>,
    pub client_secret: Zeroizing<String>,
    pub scopes: Vec<String>,
}

/// Reads VGS's `credentials.yaml`: a YAML document (a mapping) with `kind: ServiceAccount` and
/// a `data` mapping of `clientId`, `clientSecret` (strings) and `scopes` (a list of strings, or
/// one string of space-separated scopes). Parsed by a YAML 1.2 parser (saphyr), so every scalar
/// form reads as YAML says: plain, single-quoted (`''`), double-quoted with its escapes, literal
/// (`|`) and folded (`>`) blocks, comments; a plain scalar keeps its text as written (`0123`
/// stays `0123`; `~`, `null` and an empty value are no value). Aliases, tags other than the
/// core schema's `!!str`, `!!seq` and `!!map`, more than one document and a key of ours given
/// twice are refused. Errors name keys and positions, never values.
pub fn parse_service_account(text: &str) -> Parsed<ServiceAccount> {
    let Node::Map(mut top) = yaml::load(text)? else {
        return Err("not a YAML mapping (kind: ServiceAccount is missing)".into());
    };
    let kind = yaml::string(yaml::take(&mut top, "kind", "")?, "kind")?;
    if kind.as_deref().map(String::as_str) != Some("ServiceAccount") {
        return Err("not a ServiceAccount (kind: ServiceAccount is missing)".into());
    }
    let mut data = match yaml::take(&mut top, "data", "")? {
        Some(Node::Map(m)) => m,
        None => return Err("data is missing".into()),
        Some(n) if n.is_null() => return Err("data is missing".into()),
        Some(_) => return Err("data must be a mapping".into()),
    };
    let client_id = yaml::string(yaml::take(&mut data, "clientId", "data.")?, "data.clientId")?
        .filter(|s| !s.is_empty())
        .ok_or("data.clientId is missing")?;
    let client_secret = yaml::string(
        yaml::take(&mut data, "clientSecret", "data.")?,
        "data.clientSecret",
    )?
    .filter(|s| !s.is_empty())
    .ok_or("data.clientSecret is missing")?;
    let scopes = match yaml::take(&mut data, "scopes", "data.")? {
        None => Vec::new(),
        Some(Node::Seq(items)) => {
            let mut scopes = Vec::new();
            for item in items {
                match yaml::string(Some(item), "data.scopes")? {
                    Some(s) if !s.is_empty() => scopes.push(s.to_string()),
                    _ => {}
                }
            }
            scopes
        }
        Some(n) => yaml::string(Some(n), "data.scopes")?
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default(),
    };
    Ok(ServiceAccount {
        client_id,
        client_secret,
        scopes,
    })
}

type Parsed<T> = std::result::Result<T, String>;

use yaml::Node;

/// The YAML document as a small tree, built from the parser's events.
mod yaml {
    use saphyr_parser::{Event, Parser, ScalarStyle, Tag};
    use zeroize::Zeroizing;

    use super::Parsed;

    /// Nesting deeper than this is refused (the tree is dropped recursively).
    const MAX_DEPTH: usize = 32;

    /// A node: a scalar keeps its text (wiped on drop) and whether it was plain (unquoted).
    pub(super) enum Node {
        Scalar {
            text: Zeroizing<String>,
            plain: bool,
        },
        Seq(Vec<Node>),
        Map(Vec<(Node, Node)>),
    }

    impl Node {
        /// YAML's null: an empty plain scalar, `~` or `null`.
        pub(super) fn is_null(&self) -> bool {
            matches!(self, Node::Scalar { text, plain: true }
                if ["", "~", "null", "Null", "NULL"].contains(&text.as_str()))
        }
    }

    /// A container being filled.
    enum Open {
        Seq(Vec<Node>),
        Map(Vec<(Node, Node)>, Option<Node>),
    }

    /// A tag is accepted only where it says what the node is anyway.
    fn check_tag(tag: Option<&Tag>, allowed: &str) -> Parsed<()> {
        match tag {
            None => Ok(()),
            Some(t) if t.is_yaml_core_schema() && t.suffix == allowed => Ok(()),
            Some(_) => Err("YAML tags are not supported (but !!str, !!seq, !!map)".into()),
        }
    }

    /// Parses `text`, one document.
    pub(super) fn load(text: &str) -> Parsed<Node> {
        // On the heap, so that what the scanner buffers is wiped with the block when it is freed.
        let mut parser = Box::new(Parser::new_from_str(text));
        let mut stack: Vec<Open> = Vec::new();
        let mut root: Option<Node> = None;
        let mut documents = 0;
        for event in parser.as_mut() {
            let (event, _) = event.map_err(|e| {
                let at = e.marker();
                format!(
                    "not valid YAML (line {}, column {})",
                    at.line(),
                    at.col() + 1
                )
            })?;
            let done = match event {
                Event::DocumentStart(_) => {
                    documents += 1;
                    if documents > 1 {
                        return Err("more than one YAML document".into());
                    }
                    continue;
                }
                Event::Alias(_) => return Err("YAML aliases are not supported".into()),
                Event::Scalar(value, style, _, tag) => {
                    check_tag(tag.as_deref(), "str")?;
                    Node::Scalar {
                        text: Zeroizing::new(value.into_owned()),
                        plain: style == ScalarStyle::Plain,
                    }
                }
                Event::SequenceStart(..) | Event::MappingStart(..) if stack.len() >= MAX_DEPTH => {
                    return Err("YAML nested too deeply".into())
                }
                Event::SequenceStart(_, tag) => {
                    check_tag(tag.as_deref(), "seq")?;
                    stack.push(Open::Seq(Vec::new()));
                    continue;
                }
                Event::MappingStart(_, tag) => {
                    check_tag(tag.as_deref(), "map")?;
                    stack.push(Open::Map(Vec::new(), None));
                    continue;
                }
                Event::SequenceEnd | Event::MappingEnd => match stack.pop() {
                    Some(Open::Seq(items)) => Node::Seq(items),
                    Some(Open::Map(pairs, None)) => Node::Map(pairs),
                    _ => return Err("not valid YAML".into()),
                },
                _ => continue,
            };
            match stack.last_mut() {
                Some(Open::Seq(items)) => items.push(done),
                Some(Open::Map(pairs, key)) => match key.take() {
                    None => *key = Some(done),
                    Some(k) => pairs.push((k, done)),
                },
                None => root = Some(done),
            }
        }
        root.ok_or_else(|| "empty (no YAML document)".into())
    }

    /// Takes the value of `key` out of a mapping; a key of ours given twice is refused.
    pub(super) fn take(map: &mut Vec<(Node, Node)>, key: &str, path: &str) -> Parsed<Option<Node>> {
        let is_key =
            |(k, _): &(Node, Node)| matches!(k, Node::Scalar { text, .. } if **text == *key);
        let mut found = map
            .iter()
            .enumerate()
            .filter(|(_, p)| is_key(p))
            .map(|(i, _)| i);
        match (found.next(), found.next()) {
            (Some(_), Some(_)) => Err(format!("{path}{key} is given twice")),
            (Some(i), None) => Ok(Some(map.swap_remove(i).1)),
            _ => Ok(None),
        }
    }

    /// The text of a scalar (`None` for null); a list or a mapping is refused.
    pub(super) fn string(node: Option<Node>, name: &str) -> Parsed<Option<Zeroizing<String>>> {
        match node {
            None => Ok(None),
            Some(n) if n.is_null() => Ok(None),
            Some(Node::Scalar { text, .. }) => Ok(Some(text)),
            Some(_) => Err(format!("{name} must be a string")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_account() {
        let yaml = "apiVersion: 1.0.0\nkind: ServiceAccount\ndata:\n  clientId: ACabc\n  clientSecret: \"s3cr+t/=&\"\n  name: calm\n  scopes:\n  - cards:write\n  - cards:read\n  annotations:\n    vgs.io/vault-id: tnt\n";
        let sa = parse_service_account(yaml).unwrap();
        assert_eq!(&*sa.client_id, "ACabc");
        assert_eq!(&*sa.client_secret, "s3cr+t/=&");
        assert_eq!(sa.scopes, ["cards:write", "cards:read"]);
        let flow = "kind: ServiceAccount\ndata:\n  clientId: a\n  clientSecret: b # note\n  scopes: [x, 'y']\n";
        let sa = parse_service_account(flow).unwrap();
        assert_eq!(&*sa.client_secret, "b");
        assert_eq!(sa.scopes, ["x", "y"]);
        let e = parse_service_account("kind: ServiceAccount\ndata:\n  clientId: a\n")
            .err()
            .unwrap();
        assert!(e.contains("clientSecret"));
        let e = parse_service_account("kind: Secret\ndata:\n  clientSecret: hunter2\n")
            .err()
            .unwrap();
        assert!(!e.contains("hunter2"));
    }

    /// The secret of a ServiceAccount whose `clientSecret` line is `written`.
    fn secret_of(written: &str) -> Parsed<String> {
        let yaml =
            format!("kind: ServiceAccount\ndata:\n  clientId: AC1\n  clientSecret: {written}\n");
        parse_service_account(&yaml).map(|sa| sa.client_secret.to_string())
    }

    /// Every scalar form of YAML 1.2, and trailing comments with quotes in them.
    #[test]
    fn scalar_forms() {
        let cases: &[(&str, &str)] = &[
            // plain: kept as written, `#` only starts a comment after white space
            ("abc/+=&x", "abc/+=&x"),
            ("a#b", "a#b"),
            ("0123", "0123"),
            ("true", "true"),
            ("it's-a\"secret", "it's-a\"secret"),
            ("plain # it's a \"comment\"", "plain"),
            // single-quoted: '' is a quote, nothing else is an escape
            ("'it''s-a\"secret'", "it's-a\"secret"),
            ("'back\\slash\\n'", "back\\slash\\n"),
            ("'q' # it's \"c\"", "q"),
            ("'#not a comment'", "#not a comment"),
            // double-quoted: every escape
            ("\"it's-a\\\"secret\"", "it's-a\"secret"),
            (
                "\"b\\\\s \\n \\t \\x41 \\u00e9 \\U0001F600 \\/ \\0\"",
                "b\\s \n \t A é 😀 / \0",
            ),
            ("\"d\" # 'c' \"c\"", "d"),
            ("\"#not a comment\"", "#not a comment"),
            // block scalars: literal keeps line breaks, folded folds them; chomping indicators
            ("|\n    line1\n    line2", "line1\nline2\n"),
            ("|-\n    line1\n    line2", "line1\nline2"),
            (">\n    folded\n    text", "folded text\n"),
            (
                ">-\n    folded\n    text # not a comment",
                "folded text # not a comment",
            ),
            // the core schema's own tag for strings
            ("!!str 0x1F", "0x1F"),
        ];
        for (written, expected) in cases {
            assert_eq!(
                secret_of(written).as_deref(),
                Ok(*expected),
                "clientSecret: {written}"
            );
        }
        // Line ends of Windows, and the whole document in flow style.
        let crlf = "kind: ServiceAccount\r\ndata:\r\n  clientId: a\r\n  clientSecret: 'b c'\r\n";
        assert_eq!(&*parse_service_account(crlf).unwrap().client_secret, "b c");
        let flow =
            "{kind: ServiceAccount, data: {clientId: a, clientSecret: \"s#1\", scopes: [x]}}";
        let sa = parse_service_account(flow).unwrap();
        assert_eq!(sa.client_secret.as_str(), "s#1");
        assert_eq!(sa.scopes, ["x"]);
        let spaced = "kind: ServiceAccount\ndata:\n  clientId: a\n  clientSecret: b\n  scopes: 'cards:read cards:write'\n";
        assert_eq!(
            parse_service_account(spaced).unwrap().scopes,
            ["cards:read", "cards:write"]
        );
    }

    /// What is refused, and that no message repeats a value.
    #[test]
    fn refused_forms() {
        let cases: &[(&str, &str)] = &[
            ("~", "data.clientSecret is missing"),
            ("null", "data.clientSecret is missing"),
            ("''", "data.clientSecret is missing"),
            ("[hunter2x]", "data.clientSecret must be a string"),
            ("{a: hunter2x}", "data.clientSecret must be a string"),
            ("!!binary aHVudGVyMng=", "tags are not supported"),
            ("!secret hunter2x", "tags are not supported"),
            ("\"hunter2x", "not valid YAML (line"),
            ("'hunter2x", "not valid YAML (line"),
            (
                "hunter2x\n  clientSecret: hunter2y",
                "clientSecret is given twice",
            ),
        ];
        for (written, expected) in cases {
            let e = secret_of(written).unwrap_err();
            assert!(e.contains(expected), "clientSecret: {written}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
        let alias = "kind: ServiceAccount\ndata:\n  clientId: &id hunter2x\n  clientSecret: *id\n";
        let e = parse_service_account(alias).err().unwrap();
        assert!(e.contains("aliases are not supported"), "{e}");
        let two = "kind: ServiceAccount\ndata: {clientId: a, clientSecret: b}\n---\nkind: x\n";
        let e = parse_service_account(two).err().unwrap();
        assert!(e.contains("more than one YAML document"), "{e}");
        // Deep nesting: the parser stops flow collections itself; block ones stop here.
        let deep = format!("{}{}", "[".repeat(1_000), "]".repeat(1_000));
        assert!(parse_service_account(&deep).is_err());
        let deep = format!("{}x", "- ".repeat(1_000));
        let e = parse_service_account(&deep).err().unwrap();
        assert!(e.contains("nested too deeply"), "{e}");
        for text in ["", "# only a comment\n", "- a\n- b\n", "kind: Secret\n"] {
            assert!(parse_service_account(text).is_err(), "{text:?}");
        }
        let e = parse_service_account("kind: ServiceAccount\ndata: x\n")
            .err()
            .unwrap();
        assert!(e.contains("data must be a mapping"), "{e}");
    }

    /// A name is shown only when it looks like one.
    #[test]
    fn variable_names_shown() {
        assert_eq!(variable("VIPPS_ID"), "environment variable VIPPS_ID");
        assert_eq!(variable("_x1"), "environment variable _x1");
        for not_a_name in ["hunter2-SECRET", "1ABC", "a b", "é", &"A".repeat(129)] {
            let shown = variable(not_a_name);
            assert!(!shown.contains(not_a_name), "{shown}");
            assert!(shown.contains("not shown"), "{shown}");
        }
    }
}
