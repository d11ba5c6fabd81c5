//! Field readers: each takes one key out of the JSON object and checks its type and range, with
//! an error that names the key and the rule, never the value.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::schema::{AuthMethod, MAX_HEADERS, MAX_SECRET, RESERVED_HEADERS};
use crate::error::{Error, Result};
use crate::secret::SecretString;

pub(super) fn type_error(key: &str, expected: &str) -> Error {
    Error::config(format!("{key}: must be {expected}"))
}

/// Takes a string field out of the object (so the tree no longer holds it).
pub(super) fn opt_str(obj: &mut Map<String, Value>, key: &str) -> Result<Option<String>> {
    match obj.get_mut(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(std::mem::take(s))),
        Some(_) => Err(type_error(key, "a string")),
    }
}

pub(super) fn opt_secret(obj: &mut Map<String, Value>, key: &str) -> Result<Option<SecretString>> {
    match obj.get_mut(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(SecretString::new(std::mem::take(s)))),
        Some(_) => Err(type_error(key, "a string")),
    }
}

pub(super) fn opt_u64(
    obj: &Map<String, Value>,
    key: &str,
    min: u64,
    max: u64,
) -> Result<Option<u64>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if (min..=max).contains(&v) => Ok(Some(v)),
            _ => Err(type_error(
                key,
                &format!("a whole number from {min} to {max}"),
            )),
        },
        Some(_) => Err(type_error(
            key,
            &format!("a whole number from {min} to {max}"),
        )),
    }
}

pub(super) fn opt_f64(
    obj: &Map<String, Value>,
    key: &str,
    min: f64,
    max: f64,
) -> Result<Option<f64>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(v) if v >= min && v <= max => Ok(Some(v)),
            _ => Err(type_error(key, &format!("a number from {min} to {max}"))),
        },
        Some(_) => Err(type_error(key, &format!("a number from {min} to {max}"))),
    }
}

/// Text that goes into a request: non-empty, bounded, no control characters.
pub(super) fn check_text(key: &str, value: &str, max: usize) -> Result<()> {
    if value.is_empty() {
        return Err(Error::config(format!("{key}: must not be empty")));
    }
    if value.len() > max {
        return Err(Error::config(format!("{key}: longer than {max} bytes")));
    }
    if value.chars().any(char::is_control) {
        return Err(Error::config(format!(
            "{key}: must not contain control characters"
        )));
    }
    Ok(())
}

pub(super) fn opt_bool(obj: &Map<String, Value>, key: &str) -> Result<Option<bool>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(type_error(key, "true or false")),
    }
}

/// RFC 9110 token characters, for header names.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

pub(super) fn read_headers(
    obj: &mut Map<String, Value>,
    auth_method: AuthMethod,
) -> Result<Vec<(String, SecretString)>> {
    let map = match obj.get_mut("headers") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(map)) => map,
        Some(_) => {
            return Err(type_error(
                "headers",
                "an object of header names to string values",
            ))
        }
    };
    if map.len() > MAX_HEADERS {
        return Err(Error::config(format!(
            "headers: at most {MAX_HEADERS} headers"
        )));
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(map.len());
    for (name, value) in map.iter_mut() {
        if !is_header_name(name) {
            return Err(Error::config(
                "headers: a header name is not a valid HTTP token (letters, digits, !#$%&'*+-.^_`|~)",
            ));
        }
        let lower = name.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err(Error::config(format!(
                "headers.{name}: set by credvault itself (auth_method {}), may not be overridden",
                auth_method.name()
            )));
        }
        if !seen.insert(lower) {
            return Err(Error::config(format!("headers.{name}: given twice")));
        }
        let value = match value {
            Value::String(s) => SecretString::new(std::mem::take(s)),
            _ => return Err(Error::config(format!("headers.{name}: must be a string"))),
        };
        check_text(&format!("headers.{name}"), value.expose(), MAX_SECRET)?;
        out.push((name.clone(), value));
    }
    Ok(out)
}
