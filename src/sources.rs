//! Where secrets come from when they are not written into the configuration: references to an
//! environment variable or a file, and the `credentials.yaml` ServiceAccount file that VGS hands
//! its users.
//!
//! A reference is a JSON object in place of a secret string: `{"env": "VAR"}` or
//! `{"file": "/run/secrets/x"}` (one trailing newline trimmed; a file readable by group or others
//! is refused unless `"allow_shared": true`). [`resolve`] replaces every reference in a provider's
//! JSON object by the value it names, in the tree itself, whose strings are wiped when it is
//! dropped ([`crate::secret::WipedValue`]); the provider configuration seals the value as soon as
//! it reads it. Messages name the provider field, the variable and the file, never a value.

use std::io::Read;
use std::os::unix::fs::MetadataExt;

use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::error::{clean, Error, Result};

/// The largest secret file read.
const MAX_FILE: u64 = 64 * 1024;

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

fn read_env(var: &str) -> Result<Zeroizing<String>> {
    if var.is_empty() || var.contains('=') || var.contains('\0') {
        return Err(Error::config("env: not a valid variable name"));
    }
    match std::env::var_os(var) {
        None => Err(Error::config(format!(
            "environment variable {} is not set",
            clean(var, 100)
        ))),
        Some(os) => {
            let s = os.into_string().map_err(|_| {
                Error::config(format!(
                    "environment variable {} is not UTF-8",
                    clean(var, 100)
                ))
            })?;
            let s = Zeroizing::new(s);
            if s.is_empty() {
                return Err(Error::config(format!(
                    "environment variable {} is empty",
                    clean(var, 100)
                )));
            }
            Ok(s)
        }
    }
}

/// Reads a secret file: a regular file (symbolic links followed, as Kubernetes mounts them), at
/// most 64 KiB, not readable by group or others unless `allow_shared`, one trailing newline
/// trimmed. The buffer it was read into is wiped.
pub fn read_file(path: &str, allow_shared: bool) -> Result<Zeroizing<String>> {
    let shown = clean(path, 200);
    let fail = |what: String| Error::config(format!("file {shown}: {what}"));
    let mut file =
        std::fs::File::open(path).map_err(|e| fail(format!("cannot open ({})", e.kind())))?;
    let meta = file
        .metadata()
        .map_err(|e| fail(format!("cannot stat ({})", e.kind())))?;
    if !meta.is_file() {
        return Err(fail("not a regular file".into()));
    }
    if meta.mode() & 0o044 != 0 && !allow_shared {
        return Err(fail(format!(
            "readable by group or others (mode {:o}): make it 0600 or 0400, or set \"allow_shared\": true",
            meta.mode() & 0o777
        )));
    }
    if meta.len() > MAX_FILE {
        return Err(fail(format!("larger than {MAX_FILE} bytes")));
    }
    let mut buf = Zeroizing::new(Vec::with_capacity(meta.len() as usize + 1));
    (&mut file)
        .take(MAX_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| fail(format!("cannot read ({})", e.kind())))?;
    if buf.len() as u64 > MAX_FILE {
        return Err(fail(format!("larger than {MAX_FILE} bytes")));
    }
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
        fail("not UTF-8 text".into())
    })?;
    let text = Zeroizing::new(text);
    if text.is_empty() {
        return Err(fail("empty".into()));
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
            _ => return Err(Error::config(
                "vgs_credentials_file: a path, or {\"file\": \"/path\", \"allow_shared\": true}",
            )),
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
    let text = read_file(path, allow_shared).map_err(|e| e.context("vgs_credentials_file"))?;
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

/// Reads the YAML subset VGS's `credentials.yaml` uses: `kind: ServiceAccount`, a `data:` map
/// of plain or quoted scalars, and the `scopes:` block list. Errors name keys, never values.
pub fn parse_service_account(text: &str) -> std::result::Result<ServiceAccount, String> {
    let mut p = SaParser::default();
    for raw in text.lines() {
        let line = raw.trim_end();
        let body = line.trim_start();
        if body.is_empty() || body.starts_with('#') || body == "---" {
            continue;
        }
        let indent = line.len() - body.len();
        if indent == 0 {
            p.top(body)?;
        } else if p.in_data {
            p.data(indent, body)?;
        }
    }
    p.finish()
}

type Parsed<T> = std::result::Result<T, String>;

/// The state of [`parse_service_account`] between lines.
#[derive(Default)]
struct SaParser {
    kind: Option<String>,
    in_data: bool,
    in_scopes: bool,
    data_indent: Option<usize>,
    client_id: Option<Zeroizing<String>>,
    client_secret: Option<Zeroizing<String>>,
    scopes: Vec<String>,
}

impl SaParser {
    /// A top-level `key: value` line.
    fn top(&mut self, body: &str) -> Parsed<()> {
        self.in_data = false;
        self.in_scopes = false;
        match body.split_once(':') {
            Some(("kind", v)) => self.kind = Some(scalar(v)?.to_string()),
            Some(("data", v)) if v.trim().is_empty() => self.in_data = true,
            Some(_) => {}
            None => return Err("a top-level line is not `key: value`".into()),
        }
        Ok(())
    }

    /// A line inside `data:`.
    fn data(&mut self, indent: usize, body: &str) -> Parsed<()> {
        if let Some(item) = body.strip_prefix("- ") {
            if !self.in_scopes {
                return Err("a list item outside data.scopes".into());
            }
            self.scopes.push(scalar(item)?.to_string());
            return Ok(());
        }
        let first = *self.data_indent.get_or_insert(indent);
        if indent != first {
            if self.in_scopes && indent > first {
                return Err("data.scopes items must start with `- `".into());
            }
            return Ok(()); // deeper maps (annotations) are not ours
        }
        self.in_scopes = false;
        match body.split_once(':') {
            Some(("clientId", v)) => self.client_id = Some(Zeroizing::new(scalar(v)?.to_string())),
            Some(("clientSecret", v)) => {
                self.client_secret = Some(Zeroizing::new(scalar(v)?.to_string()))
            }
            Some(("scopes", v)) if v.trim().is_empty() => self.in_scopes = true,
            Some(("scopes", v)) => self.scopes.extend(flow_list(scalar(v)?)),
            Some(_) => {}
            None => return Err("a line in data is not `key: value`".into()),
        }
        Ok(())
    }

    fn finish(self) -> Parsed<ServiceAccount> {
        if self.kind.as_deref() != Some("ServiceAccount") {
            return Err("not a ServiceAccount (kind: ServiceAccount is missing)".into());
        }
        let client_id = self
            .client_id
            .filter(|s| !s.is_empty())
            .ok_or("data.clientId is missing")?;
        let client_secret = self
            .client_secret
            .filter(|s| !s.is_empty())
            .ok_or("data.clientSecret is missing")?;
        Ok(ServiceAccount {
            client_id,
            client_secret,
            scopes: self.scopes,
        })
    }
}

/// The items of a YAML flow list (`[a, 'b']`).
fn flow_list(v: &str) -> impl Iterator<Item = String> + '_ {
    v.trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .map(|s| s.trim().trim_matches(|c| c == '"' || c == '\'').to_string())
        .filter(|s| !s.is_empty())
}

/// A YAML scalar as VGS writes them: plain, or in single or double quotes (no escapes but `''`
/// and `\"`). A comment after a plain scalar is dropped.
fn scalar(v: &str) -> std::result::Result<&str, String> {
    let v = v.trim();
    for q in ['"', '\''] {
        if let Some(rest) = v.strip_prefix(q) {
            return match rest.rfind(q) {
                Some(end)
                    if rest[end + 1..].trim().is_empty()
                        || rest[end + 1..].trim().starts_with('#') =>
                {
                    Ok(&rest[..end])
                }
                _ => Err("an unterminated quoted value".into()),
            };
        }
    }
    Ok(v.split(" #").next().unwrap_or("").trim())
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
}
