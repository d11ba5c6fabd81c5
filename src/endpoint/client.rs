//! The HTTP side of one provider: the ureq agent of a fetch, its TLS and proxy settings, the
//! token request and the discovery GET.

use std::time::{Duration, Instant};

use ureq::http::StatusCode;
use zeroize::Zeroizing;

use crate::config::{Config, ProxySetting};
use crate::error::{Error, Result};
use crate::secret::WipedValue;

use super::redact::Secrets;
use super::request::with_credentials;
use super::response::{
    handle_token_response, http_status_failure, read_body, retry_hint, transport_error,
};
use super::retry::Failed;
use super::token::Fetched;

/// The HTTP side of one provider.
pub struct Client {
    /// The agent of the fetch under way. Connections are reused within one fetch (discovery,
    /// retries) and closed after it: a pooled connection would keep the last response, token
    /// included, in ureq's and rustls' buffers for as long as it idles, and a token endpoint is
    /// called once per token lifetime anyway. A child of fork() never touches its parent's
    /// agent (see `fork_release`).
    agent: crate::sync::Mutex<Option<ureq::Agent>>,
    timeout: Duration,
    tls: ureq::tls::TlsConfig,
    proxy: Option<ureq::Proxy>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Client")
    }
}

/// Whether a request to `url` may go through a proxy (the `proxy` key's or the environment's):
/// only `https://` to a host that is not loopback. A plain `http://` request would show the
/// proxy the credentials in clear (config allows it only for loopback anyway), and a loopback
/// target reached through a proxy lands on the proxy host's loopback, not ours. So neither is
/// ever proxied, whatever the environment, `proxy` or `no_proxy` say.
fn may_use_proxy(url: &str) -> bool {
    match url.parse::<ureq::http::Uri>() {
        Ok(uri) => {
            uri.scheme_str() == Some("https")
                && uri
                    .host()
                    .is_some_and(|h| !crate::config::is_loopback_host(h))
        }
        Err(_) => false,
    }
}

const USER_AGENT: &str = concat!("credvault/", env!("CARGO_PKG_VERSION"));

impl Client {
    pub fn new(cfg: &Config) -> Result<Client> {
        let t = &cfg.transport;
        let mut roots = t.ca_certs.clone();
        if !t.ca_only {
            roots.extend(
                webpki_root_certs::TLS_SERVER_ROOT_CERTS
                    .iter()
                    .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned()),
            );
        }
        let root_certs = if t.ca_certs.is_empty() {
            ureq::tls::RootCerts::WebPki
        } else {
            ureq::tls::RootCerts::new_with_certs(&roots)
        };
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(root_certs)
            .client_cert(t.client_cert.clone())
            .build();
        let proxy = match &t.proxy {
            ProxySetting::FromEnv => ureq::Proxy::try_from_env(),
            ProxySetting::Off => None,
            ProxySetting::Url { url, no_proxy } => {
                let uri: ureq::http::Uri = url
                    .parse()
                    .map_err(|_| Error::config("proxy: not a valid URL"))?;
                let protocol = if uri.scheme_str() == Some("https") {
                    ureq::ProxyProtocol::Https
                } else {
                    ureq::ProxyProtocol::Http
                };
                let mut b = ureq::Proxy::builder(protocol).host(uri.host().unwrap_or_default());
                if let Some(port) = uri.port_u16() {
                    b = b.port(port);
                }
                for entry in no_proxy {
                    b = b.no_proxy(entry);
                }
                Some(
                    b.build()
                        .map_err(|_| Error::config("proxy: not a valid proxy"))?,
                )
            }
        };
        Ok(Client {
            agent: crate::sync::Mutex::new(None),
            timeout: cfg.timeout,
            tls,
            proxy,
        })
    }

    fn build_agent(&self) -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            // Never follow a redirect: it could carry credentials to another origin.
            .max_redirects(0)
            .max_redirects_will_error(false)
            .user_agent(USER_AGENT)
            .accept("application/json")
            .timeout_global(Some(self.timeout))
            .tls_config(self.tls.clone())
            .proxy(self.proxy.clone())
            .build()
            .into()
    }

    /// The agent of this fetch (made on first use in this process).
    fn agent(&self) -> ureq::Agent {
        self.agent
            .lock()
            .get_or_insert_with(|| self.build_agent())
            .clone()
    }

    /// Ends a fetch: closes its connections; their buffers are wiped as they are freed.
    pub fn end_fetch(&self) {
        *self.agent.lock() = None;
    }

    /// Takes the agent slot's lock before fork() (see `fork`).
    pub(crate) fn fork_hold(&self) {
        self.agent.fork_hold();
    }

    /// Releases it after fork(). In the child, the parent's agent (a fetch was under way) is
    /// forgotten, never dropped: dropping it could write to connections the parent still uses.
    /// The child's next fetch builds an agent of its own.
    ///
    /// # Safety
    /// Only after `fork_hold` on this thread, once.
    pub(crate) unsafe fn fork_release(&self, side: crate::sync::Side) {
        // SAFETY: per the contract: held by this thread, released once.
        unsafe {
            if side == crate::sync::Side::Child {
                std::mem::forget(self.agent.held_mut().take());
            }
            self.agent.fork_release(side);
        }
    }

    /// Sends one token request to `url` and parses the answer. Every failure's message is
    /// redacted of the request's credentials (see [`Secrets`]).
    pub fn request_token(
        &self,
        cfg: &Config,
        url: &str,
        timeout: Duration,
    ) -> Result<Fetched, Failed> {
        let secrets = Secrets::of(cfg);
        self.send_token_request(cfg, url, timeout, &secrets)
            // A last pass over the finished message, whatever built it.
            .map_err(|mut failed| {
                failed.error = secrets.redact_error(failed.error);
                failed
            })
    }

    fn send_token_request(
        &self,
        cfg: &Config,
        url: &str,
        timeout: Duration,
        secrets: &Secrets,
    ) -> Result<Fetched, Failed> {
        let req = self.agent().post(url).header("Accept", "application/json");
        let mut body: Zeroizing<Vec<u8>> = Zeroizing::new(Vec::with_capacity(256));
        let req = with_credentials(cfg, url, req, &mut body)?;
        let mut config = req.config().timeout_global(Some(timeout));
        if !may_use_proxy(url) {
            config = config.proxy(None);
        }
        let req = config.build();
        let requested_at = Instant::now();
        let response = if body.is_empty() {
            req.send_empty()
        } else {
            req.content_type("application/x-www-form-urlencoded")
                .send(&body[..])
        };
        let response = response.map_err(|e| transport_error(e, secrets))?;
        handle_token_response(cfg, response, requested_at, secrets)
    }

    /// GETs a JSON document (discovery metadata). 404 yields `Ok(None)`. Text of the answer
    /// that enters a message goes through `secrets` (see [`Secrets`]).
    pub fn get_json(
        &self,
        url: &str,
        timeout: Duration,
        secrets: &Secrets,
    ) -> Result<Option<WipedValue>, Failed> {
        let mut config = self
            .agent()
            .get(url)
            .header("Accept", "application/json")
            .config()
            .timeout_global(Some(timeout));
        if !may_use_proxy(url) {
            config = config.proxy(None);
        }
        let response = config
            .build()
            .call()
            .map_err(|e| transport_error(e, secrets))?;
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let retry = retry_hint(&response);
        let (_, mut body) = response.into_parts();
        let bytes = read_body(&mut body, secrets)?;
        if !status.is_success() {
            return Err(http_status_failure(status, retry));
        }
        let value = serde_json::from_slice(&bytes)
            .map_err(|_| Error::malformed(format!("{url}: metadata is not valid JSON")))?;
        Ok(Some(WipedValue(value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_to_other_hosts_may_use_a_proxy() {
        for url in [
            "https://idp.example/t",
            "https://10.0.0.1:8443/t",
            "https://[2001:db8::1]/t",
        ] {
            assert!(may_use_proxy(url), "{url}");
        }
        for url in [
            "http://idp.example/t",
            "http://127.0.0.1:8080/t",
            "https://127.0.0.1/t",
            "https://127.10.20.30/t",
            "https://localhost:8443/t",
            "https://LOCALHOST/t",
            "https://[::1]:8443/t",
            "not a url",
        ] {
            assert!(!may_use_proxy(url), "{url}");
        }
    }
}
