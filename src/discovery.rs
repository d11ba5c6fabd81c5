//! Issuer metadata: the token endpoint discovered from OpenID Connect Discovery 1.0
//! (`{issuer}/.well-known/openid-configuration`), falling back to RFC 8414
//! (`https://host/.well-known/oauth-authorization-server{path}`). The result is cached for the
//! configured time and, when a later lookup fails, the last good result is used (static stability).

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::config::check_url;
use crate::endpoint::{Client, Failed, Secrets};
use crate::error::{Error, Status};
use crate::sync::{Mutex, Side};

#[derive(Debug)]
pub struct Discovery {
    issuer: String,
    ttl: Duration,
    /// The client authentication method the provider uses, checked against the metadata's
    /// `token_endpoint_auth_methods_supported` when it has one.
    auth_method: &'static str,
    cached: Mutex<Option<(String, Instant)>>,
}

impl Discovery {
    pub fn new(issuer: String, ttl: Duration, auth_method: &'static str) -> Discovery {
        Discovery {
            issuer,
            ttl,
            auth_method,
            cached: Mutex::new(None),
        }
    }

    /// Takes the cache's lock before fork() (see `fork`).
    pub(crate) fn fork_hold(&self) {
        self.cached.fork_hold();
    }

    /// # Safety
    /// Only after `fork_hold` on this thread, once.
    pub(crate) unsafe fn fork_release(&self, side: Side) {
        // SAFETY: per the contract.
        unsafe { self.cached.fork_release(side) };
    }

    /// The two metadata URLs to try, in order.
    pub fn metadata_urls(issuer: &str) -> [String; 2] {
        let trimmed = issuer.trim_end_matches('/');
        let oidc = format!("{trimmed}/.well-known/openid-configuration");
        // RFC 8414 section 3.1: insert the well-known segment between host and path.
        let after_scheme = trimmed.find("://").map_or(0, |i| i + 3);
        let (origin, path) = match trimmed[after_scheme..].find('/') {
            Some(i) => trimmed.split_at(after_scheme + i),
            None => (trimmed, ""),
        };
        let rfc8414 = format!("{origin}/.well-known/oauth-authorization-server{path}");
        [oidc, rfc8414]
    }

    /// The token endpoint: cached while fresh, else looked up (one attempt; the caller retries).
    /// Text of the metadata that enters a message goes through `secrets` (see [`Secrets`]).
    pub fn token_endpoint(
        &self,
        client: &Client,
        timeout: Duration,
        secrets: &Secrets,
    ) -> Result<String, Failed> {
        let stale = {
            let cached = self.cached.lock();
            match &*cached {
                Some((url, at)) if at.elapsed() < self.ttl => return Ok(url.clone()),
                Some((url, _)) => Some(url.clone()),
                None => None,
            }
        };
        // A last pass over the finished message, whatever built it (see `Secrets`).
        let looked_up = self.lookup(client, timeout, secrets).map_err(|mut f| {
            f.error = secrets.redact_error(f.error);
            f
        });
        match looked_up {
            Ok(url) => {
                *self.cached.lock() = Some((url.clone(), Instant::now()));
                Ok(url)
            }
            // Keep using the last good endpoint when the issuer's metadata is unavailable.
            Err(_) if stale.is_some() => Ok(stale.unwrap_or_default()),
            Err(f) => Err(f),
        }
    }

    fn lookup(
        &self,
        client: &Client,
        timeout: Duration,
        secrets: &Secrets,
    ) -> Result<String, Failed> {
        let started = Instant::now();
        for url in Self::metadata_urls(&self.issuer) {
            let left = timeout.saturating_sub(started.elapsed());
            let doc = client.get_json(&url, left, secrets).map_err(|f| Failed {
                error: Error::new(
                    if f.error.status().is_transient() {
                        f.error.status()
                    } else {
                        Status::DiscoveryFailed
                    },
                    format!("discovery of {url}: {}", f.error.message()),
                ),
                retry: f.retry,
            })?;
            if let Some(doc) = doc {
                return self
                    .token_endpoint_from(&doc.0, &url, secrets)
                    .map_err(Failed::from);
            }
        }
        Err(Failed::from(Error::new(
            Status::DiscoveryFailed,
            format!(
                "discovery: neither OpenID Connect nor RFC 8414 metadata found for issuer {}",
                self.issuer
            ),
        )))
    }

    pub(crate) fn token_endpoint_from(
        &self,
        doc: &Value,
        url: &str,
        secrets: &Secrets,
    ) -> Result<String, Error> {
        let fail = |what: &str| {
            Error::new(
                Status::DiscoveryFailed,
                format!("discovery of {url}: {what}"),
            )
        };
        match doc.get("issuer").and_then(Value::as_str) {
            Some(i) if i == self.issuer => {}
            Some(i) => {
                return Err(fail(&format!(
                    "metadata names issuer {} but {} was configured (they must be identical)",
                    secrets.clean(i, 200),
                    self.issuer
                )))
            }
            None => return Err(fail("metadata has no issuer")),
        }
        let endpoint = doc
            .get("token_endpoint")
            .and_then(Value::as_str)
            .ok_or_else(|| fail("metadata has no token_endpoint"))?;
        let endpoint = check_url("token_endpoint", endpoint).map_err(|e| fail(e.message()))?;
        if self.issuer.starts_with("https://") && !endpoint.starts_with("https://") {
            return Err(fail(
                "token_endpoint must be https:// for an https:// issuer",
            ));
        }
        self.check_auth_method(doc, secrets)
            .map_err(|what| fail(&what))?;
        Ok(endpoint)
    }

    /// A `private_key_jwt` client at an issuer whose metadata lists the methods it supports and
    /// not that one would only learn it from a refused request: say so from the metadata. (The
    /// secret-based methods are not checked: servers often list only some of those they accept.)
    fn check_auth_method(&self, doc: &Value, secrets: &Secrets) -> Result<(), String> {
        if self.auth_method != "private_key_jwt" {
            return Ok(());
        }
        let Some(Value::Array(methods)) = doc.get("token_endpoint_auth_methods_supported") else {
            return Ok(());
        };
        if methods.iter().any(|m| m.as_str() == Some(self.auth_method)) {
            return Ok(());
        }
        let listed: Vec<String> = methods
            .iter()
            .filter_map(Value::as_str)
            .take(8)
            .map(|m| secrets.clean(m, 40))
            .collect();
        Err(format!(
            "token_endpoint_auth_methods_supported does not list private_key_jwt (it lists: {})",
            listed.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_urls() {
        let [a, b] = Discovery::metadata_urls("https://auth.apiture.com/oidc/");
        assert_eq!(
            a,
            "https://auth.apiture.com/oidc/.well-known/openid-configuration"
        );
        assert_eq!(
            b,
            "https://auth.apiture.com/.well-known/oauth-authorization-server/oidc"
        );
        let [a, b] = Discovery::metadata_urls("https://as.example");
        assert_eq!(a, "https://as.example/.well-known/openid-configuration");
        assert_eq!(
            b,
            "https://as.example/.well-known/oauth-authorization-server"
        );
    }
}
