//! Transport settings: the files of TLS (CA certificates, client certificate and key) and the proxy.

use serde_json::{Map, Value};

use super::fields::{opt_bool, opt_str};
use crate::error::{clean, Error, Result};

/// Where requests go through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxySetting {
    /// `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY` and `NO_PROXY` from the environment (the default).
    FromEnv,
    /// No proxy, whatever the environment says (`"proxy": "none"`).
    Off,
    /// This CONNECT proxy, bypassed for the `no_proxy` entries.
    Url {
        /// The proxy's URL (`http://` or `https://`).
        url: String,
        /// Hosts reached without the proxy.
        no_proxy: Vec<String>,
    },
}

/// TLS and proxy settings.
pub struct Transport {
    /// Extra trust anchors from `ca_file` (DER).
    pub ca_certs: Vec<ureq::tls::Certificate<'static>>,
    /// Trust only `ca_file`, not the bundled web PKI roots.
    pub ca_only: bool,
    /// Client certificate chain and key for mutual TLS (RFC 8705).
    pub client_cert: Option<ureq::tls::ClientCert>,
    /// Where requests go through.
    pub proxy: ProxySetting,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("ca_certs", &self.ca_certs.len())
            .field("ca_only", &self.ca_only)
            .field(
                "client_cert",
                &self.client_cert.as_ref().map(|_| "<certificate and key>"),
            )
            .field("proxy", &self.proxy)
            .finish()
    }
}

/// Reads a PEM file named by `key`; the bytes are wiped when dropped (a key file is a secret).
/// The library's one file reader decides what is read (`sources::read_checked`): only a regular
/// file, opened without blocking (`/dev/zero` or a FIFO named by mistake gets an error instead of
/// hanging or exhausting memory), not writable by group or others (a CA file decides whom the
/// library trusts), at most 1 MiB. Error messages show the path with control characters removed
/// and its length capped.
fn read_pem(key: &str, path: &str) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    crate::sources::read_checked(path, crate::sources::FileUse::Pem, key)
}

fn pem_certs(key: &str, path: &str) -> Result<Vec<ureq::tls::Certificate<'static>>> {
    let pem = read_pem(key, path)?;
    let shown = clean(path, 200);
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(_) => return Err(Error::config(format!("{key}: {shown} is not valid PEM"))),
        }
    }
    if certs.is_empty() {
        return Err(Error::config(format!(
            "{key}: {shown} holds no certificate"
        )));
    }
    Ok(certs)
}

/// `ca_file`, `ca_only`, the client certificate and the proxy.
pub(super) fn read_transport(obj: &mut Map<String, Value>) -> Result<Transport> {
    let ca_certs = match opt_str(obj, "ca_file")? {
        Some(path) => pem_certs("ca_file", &path)?,
        None => Vec::new(),
    };
    let ca_only = opt_bool(obj, "ca_only")?.unwrap_or(false);
    if ca_only && ca_certs.is_empty() {
        return Err(Error::config("ca_only: requires ca_file"));
    }
    let client_cert = read_client_cert(obj)?;
    let proxy = read_proxy(obj)?;
    Ok(Transport {
        ca_certs,
        ca_only,
        client_cert,
        proxy,
    })
}

/// `client_cert_file` and `client_key_file`: both or neither.
fn read_client_cert(obj: &mut Map<String, Value>) -> Result<Option<ureq::tls::ClientCert>> {
    match (
        opt_str(obj, "client_cert_file")?,
        opt_str(obj, "client_key_file")?,
    ) {
        (None, None) => Ok(None),
        (Some(cert), Some(key)) => {
            let chain = pem_certs("client_cert_file", &cert)?;
            let pem = read_pem("client_key_file", &key)?;
            let key = ureq::tls::PrivateKey::from_pem(&pem).map_err(|_| {
                let shown = clean(&key, 200);
                Error::config(format!("client_key_file: {shown} holds no PEM private key"))
            })?;
            Ok(Some(ureq::tls::ClientCert::new_with_certs(&chain, key)))
        }
        _ => Err(Error::config(
            "client_cert_file and client_key_file: give both or neither",
        )),
    }
}

/// `proxy` (a URL, `"none"`, or absent for the environment's) and its `no_proxy` list.
fn read_proxy(obj: &mut Map<String, Value>) -> Result<ProxySetting> {
    let no_proxy: Vec<String> = match opt_str(obj, "no_proxy")? {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        None => Vec::new(),
    };
    match opt_str(obj, "proxy")?.as_deref() {
        None | Some("") => {
            if !no_proxy.is_empty() {
                return Err(Error::config("no_proxy: requires proxy (the environment's NO_PROXY applies to the environment's proxy)"));
            }
            Ok(ProxySetting::FromEnv)
        }
        Some("none") => Ok(ProxySetting::Off),
        Some(url) => {
            let uri: ureq::http::Uri = url.parse().map_err(|_| {
                Error::config("proxy: not a valid URL (http://host:port or \"none\")")
            })?;
            if !matches!(uri.scheme_str(), Some("http") | Some("https")) || uri.host().is_none() {
                return Err(Error::config(
                    "proxy: must be http://host:port or https://host:port",
                ));
            }
            if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
                return Err(Error::config(
                    "proxy: credentials in the proxy URL are not supported",
                ));
            }
            Ok(ProxySetting::Url {
                url: url.to_string(),
                no_proxy,
            })
        }
    }
}
