//! Provider configuration: the JSON shape, validation, and presets for known providers.
//!
//! The JSON is parsed into a `serde_json::Value` and read field by field, so that every error names
//! the field and the rule it broke in our own words. serde's messages are never passed on because
//! they quote the offending input, which could be a secret put in the wrong field. Every string in
//! the parsed tree is wiped before the tree is dropped; secrets are sealed as soon as they are read.

mod fields;
mod presets;
mod schema;
mod strict;
mod transport;
mod urls;

use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::jwt::{AssertionKey, Audience, SigningAlg};
use crate::secret::SecretString;
use crate::secret::WipedValue;
use fields::{check_text, opt_f64, opt_secret, opt_str, opt_u64, read_headers};
use presets::{check_rules, Preset, PRESETS};
use schema::{KEYS, MAX_CLIENT_ID, MAX_KEY_ID, MAX_PRIVATE_KEY, MAX_SECRET};
use transport::read_transport;
use urls::check_scope;

pub use presets::preset_names;
pub use schema::{AuthMethod, BasicEncoding, Config, EndpointSource, RefreshPolicy};
pub use transport::{ProxySetting, Transport};
pub use urls::{check_url, is_loopback_host};

impl Config {
    /// Parses and validates a provider configuration.
    pub fn from_json(json: &str) -> Result<Config> {
        let mut tree = WipedValue(parse_json(json)?);
        let obj = match &mut tree.0 {
            Value::Object(map) => map,
            _ => return Err(Error::config("config must be a JSON object")),
        };
        Config::from_object(obj)
    }

    fn from_object(obj: &mut Map<String, Value>) -> Result<Config> {
        reject_unknown_keys(obj)?;
        let preset = read_preset(obj)?;
        let endpoint = read_endpoint(obj, preset)?;
        let client_id =
            opt_str(obj, "client_id")?.ok_or_else(|| Error::config("client_id: required"))?;
        check_text("client_id", &client_id, MAX_CLIENT_ID)?;
        let (auth_method, basic_encoding) = read_auth(obj, preset, &client_id)?;
        let client_secret = read_secret(obj, auth_method)?;
        let assertion = read_assertion(obj, auth_method, &endpoint)?;
        let scope = read_scope(obj, preset, auth_method)?;
        let headers = read_headers(obj, auth_method)?;
        let timeout =
            Duration::from_millis(opt_u64(obj, "timeout_ms", 1, 120_000)?.unwrap_or(5_000));
        let refresh = read_refresh(obj)?;
        if let Some(p) = preset {
            check_rules(p, &client_id, client_secret.as_ref(), &headers)?;
        }
        let transport = read_transport(obj)?;

        let client_secret = client_secret.map(|s| s.seal()).transpose()?;
        let headers = headers
            .into_iter()
            .map(|(name, value)| Ok((name, value.seal()?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Config {
            preset: preset.map(|p| p.name),
            endpoint,
            client_id,
            client_secret,
            auth_method,
            assertion,
            basic_encoding,
            scope,
            headers,
            timeout,
            refresh,
            transport,
        })
    }
}

/// The JSON text as a value; an object naming a key twice is refused (see [`strict`]). Messages
/// give the position, never serde's text (which quotes the input).
pub(crate) fn parse_json(json: &str) -> Result<Value> {
    match serde_json::from_str::<strict::Strict>(json) {
        Ok(strict::Strict(v)) => Ok(v),
        Err(e) if e.classify() == serde_json::error::Category::Data => {
            // Our own message: the duplicated key's name (cleaned), then serde's position.
            let msg = e.to_string();
            let key = msg
                .strip_prefix(strict::DUPLICATE)
                .and_then(|rest| rest.split(" at line ").next())
                .unwrap_or("?");
            Err(Error::config(format!(
                "config: key {key} is given twice (line {}, column {}); give each key once",
                e.line(),
                e.column()
            )))
        }
        Err(e) => Err(Error::config(format!(
            "config is not valid JSON ({:?} error at line {}, column {})",
            e.classify(),
            e.line(),
            e.column()
        ))),
    }
}

/// Refuses a key that is not in [`KEYS`], naming it (cleaned, at most 64 characters).
fn reject_unknown_keys(obj: &Map<String, Value>) -> Result<()> {
    match obj.keys().find(|k| !KEYS.contains(&k.as_str())) {
        None => Ok(()),
        Some(unknown) => {
            let shown: String = unknown
                .chars()
                .take(64)
                .filter(|c| !c.is_control())
                .collect();
            Err(Error::config(format!(
                "unknown key `{shown}` (known keys: {})",
                KEYS.join(", ")
            )))
        }
    }
}

fn read_preset(obj: &mut Map<String, Value>) -> Result<Option<&'static Preset>> {
    let Some(name) = opt_str(obj, "preset")? else {
        return Ok(None);
    };
    PRESETS
        .iter()
        .find(|p| p.name == name)
        .map(Some)
        .ok_or_else(|| {
            Error::config(format!(
                "preset: unknown preset name (known: {})",
                preset_names().collect::<Vec<_>>().join(", ")
            ))
        })
}

/// `token_url` or `issuer` (one of them), else the preset's.
fn read_endpoint(
    obj: &mut Map<String, Value>,
    preset: Option<&'static Preset>,
) -> Result<EndpointSource> {
    let token_url = opt_str(obj, "token_url")?;
    let issuer = opt_str(obj, "issuer")?;
    match (token_url, issuer) {
        (Some(_), Some(_)) => Err(Error::config(
            "token_url and issuer: give one of them, not both",
        )),
        (Some(url), None) => Ok(EndpointSource::TokenUrl(check_url("token_url", &url)?)),
        (None, Some(url)) => Ok(EndpointSource::Issuer(check_url("issuer", &url)?)),
        (None, None) => match preset {
            Some(Preset {
                token_url: Some(u), ..
            }) => Ok(EndpointSource::TokenUrl(u.to_string())),
            Some(Preset {
                issuer: Some(u), ..
            }) => Ok(EndpointSource::Issuer(u.to_string())),
            _ => Err(Error::config(
                "token_url or issuer: one of them is required (or a preset)",
            )),
        },
    }
}

/// `auth_method` and `basic_encoding`, defaulting to the preset's (else Basic, RFC 6749).
fn read_auth(
    obj: &mut Map<String, Value>,
    preset: Option<&'static Preset>,
    client_id: &str,
) -> Result<(AuthMethod, BasicEncoding)> {
    let auth_method = match opt_str(obj, "auth_method")?.as_deref() {
        None => preset.map_or(AuthMethod::ClientSecretBasic, |p| p.auth_method),
        Some("client_secret_basic") => AuthMethod::ClientSecretBasic,
        Some("client_secret_post") => AuthMethod::ClientSecretPost,
        Some("headers") => AuthMethod::Headers,
        Some("private_key_jwt") => AuthMethod::PrivateKeyJwt,
        Some(_) => {
            return Err(Error::config(
                "auth_method: must be client_secret_basic, client_secret_post, headers or private_key_jwt",
            ))
        }
    };
    let basic_encoding = match opt_str(obj, "basic_encoding")?.as_deref() {
        None => preset.map_or(BasicEncoding::Rfc6749, |p| p.basic_encoding),
        Some("rfc6749") => BasicEncoding::Rfc6749,
        Some("plain") => BasicEncoding::Plain,
        Some(_) => return Err(Error::config("basic_encoding: must be rfc6749 or plain")),
    };
    if auth_method == AuthMethod::ClientSecretBasic
        && basic_encoding == BasicEncoding::Plain
        && client_id.contains(':')
    {
        return Err(Error::config(
            "client_id: may not contain ':' with basic_encoding plain (use rfc6749)",
        ));
    }
    Ok((auth_method, basic_encoding))
}

/// `client_secret`: required by every method but `private_key_jwt`, which refuses it (a key and
/// a secret side by side would leave it unclear which one the server checks).
fn read_secret(
    obj: &mut Map<String, Value>,
    auth_method: AuthMethod,
) -> Result<Option<SecretString>> {
    let secret = opt_secret(obj, "client_secret")?;
    match (secret, auth_method) {
        (Some(_), AuthMethod::PrivateKeyJwt) => Err(Error::config(
            "client_secret: not used with auth_method private_key_jwt (the client signs with private_key); remove it",
        )),
        (None, AuthMethod::PrivateKeyJwt) => Ok(None),
        (None, _) => Err(Error::config("client_secret: required")),
        (Some(s), _) => {
            check_text("client_secret", s.expose(), MAX_SECRET)?;
            Ok(Some(s))
        }
    }
}

/// `private_key`, `key_id`, `signing_alg` and `audience`: the signing key of `private_key_jwt`,
/// checked (type, size, algorithm) and sealed here. Refused with any other method.
fn read_assertion(
    obj: &mut Map<String, Value>,
    auth_method: AuthMethod,
    endpoint: &EndpointSource,
) -> Result<Option<AssertionKey>> {
    let key = opt_secret(obj, "private_key")?;
    let key_id = opt_str(obj, "key_id")?;
    let alg = opt_str(obj, "signing_alg")?;
    let audience = opt_str(obj, "audience")?;
    if auth_method != AuthMethod::PrivateKeyJwt {
        let given = [
            ("private_key", key.is_some()),
            ("key_id", key_id.is_some()),
            ("signing_alg", alg.is_some()),
            ("audience", audience.is_some()),
        ];
        return match given.iter().find(|(_, g)| *g) {
            Some((name, _)) => Err(Error::config(format!(
                "{name}: only with auth_method private_key_jwt"
            ))),
            None => Ok(None),
        };
    }
    let key =
        key.ok_or_else(|| Error::config("private_key: required with auth_method private_key_jwt"))?;
    if key.expose().trim().is_empty() {
        return Err(Error::config("private_key: must not be empty"));
    }
    if key.expose().len() > MAX_PRIVATE_KEY {
        return Err(Error::config(format!(
            "private_key: longer than {MAX_PRIVATE_KEY} bytes"
        )));
    }
    if let Some(kid) = &key_id {
        check_text("key_id", kid, MAX_KEY_ID)?;
    }
    let alg = match alg.as_deref() {
        None => None,
        Some(name) => Some(
            SigningAlg::parse(name)
                .ok_or_else(|| Error::config("signing_alg: must be RS256, PS256 or ES256"))?,
        ),
    };
    let audience = match audience.as_deref() {
        None | Some("token_endpoint") => Audience::TokenEndpoint,
        Some("issuer") => match endpoint {
            EndpointSource::Issuer(_) => Audience::Issuer,
            EndpointSource::TokenUrl(_) => {
                return Err(Error::config(
                    "audience: \"issuer\" needs the issuer key (discovery); with token_url, give the issuer identifier itself",
                ))
            }
        },
        Some(other) => {
            check_text("audience", other, schema::MAX_URL)?;
            Audience::Literal(other.to_string())
        }
    };
    AssertionKey::new(key.expose(), alg, key_id, audience).map(Some)
}

/// `scope`, else the preset's. With `auth_method` `headers` the request has no body, so no scope
/// is sent: a `scope` given with it is refused rather than silently dropped.
fn read_scope(
    obj: &mut Map<String, Value>,
    preset: Option<&'static Preset>,
    auth_method: AuthMethod,
) -> Result<Option<String>> {
    match (opt_str(obj, "scope")?, auth_method) {
        (Some(_), AuthMethod::Headers) => Err(Error::config(
            "scope: cannot be sent with auth_method headers (that request has no body); remove scope or use client_secret_basic or client_secret_post",
        )),
        (Some(s), _) => Ok(Some(check_scope(&s)?)),
        (None, AuthMethod::Headers) => Ok(None),
        (None, _) => Ok(preset.and_then(|p| p.scope).map(str::to_string)),
    }
}

/// The cache's timing keys, each defaulting to [`RefreshPolicy::default`].
fn read_refresh(obj: &Map<String, Value>) -> Result<RefreshPolicy> {
    let defaults = RefreshPolicy::default();
    Ok(RefreshPolicy {
        refresh_ratio: opt_f64(obj, "refresh_ratio", 0.1, 0.95)?.unwrap_or(defaults.refresh_ratio),
        refresh_jitter: opt_f64(obj, "refresh_jitter", 0.0, 0.25)?
            .unwrap_or(defaults.refresh_jitter),
        expiry_margin: opt_u64(obj, "expiry_margin_ms", 0, 3_600_000)?
            .map_or(defaults.expiry_margin, Duration::from_millis),
        default_lifetime: opt_u64(obj, "default_lifetime_s", 1, 86_400)?
            .map_or(defaults.default_lifetime, Duration::from_secs),
        deadline: opt_u64(obj, "deadline_ms", 1, 600_000)?
            .map_or(defaults.deadline, Duration::from_millis),
        cooldown: opt_u64(obj, "cooldown_ms", 0, 600_000)?
            .map_or(defaults.cooldown, Duration::from_millis),
        discovery_ttl: opt_u64(obj, "discovery_ttl_s", 1, 7 * 86_400)?
            .map_or(defaults.discovery_ttl, Duration::from_secs),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> String {
        Config::from_json(json).unwrap_err().message().to_string()
    }

    #[test]
    #[cfg_attr(miri, ignore = "ring's AES-GCM is assembly, which Miri cannot run")]
    fn minimal_config() {
        let c = Config::from_json(
            r#"{"token_url":"https://idp.example/token","client_id":"abc","client_secret":"s3cret"}"#,
        )
        .unwrap();
        assert_eq!(c.auth_method, AuthMethod::ClientSecretBasic);
        assert_eq!(c.basic_encoding, BasicEncoding::Rfc6749);
        assert!(c.secret().unwrap().equals(b"s3cret"));
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    #[cfg_attr(miri, ignore = "Miri has no mkfifo")]
    fn pem_paths_must_be_small_regular_files() {
        let cfg = |path: &str| {
            serde_json::json!({"token_url":"https://x/t","client_id":"abc","client_secret":"s",
                "ca_file": path})
            .to_string()
        };
        // A device that never ends and a directory: refused up front, no read.
        let m = err(&cfg("/dev/zero"));
        assert_eq!(
            m,
            "ca_file /dev/zero: not a regular file (a character device): only regular files are read"
        );
        let m = err(&cfg("/"));
        assert!(m.contains("not a regular file"), "{m}");
        // A FIFO would block a read forever.
        let dir = std::env::temp_dir().join(format!("credvault-pem-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid C string; mkfifo only creates a file.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let m = err(&cfg(fifo.to_str().unwrap()));
        assert!(m.contains("not a regular file (a FIFO)"), "{m}");
        // Larger than 1 MiB: refused, however it is laid out.
        let big = dir.join("big.pem");
        std::fs::write(&big, vec![b'A'; (1 << 20) + 1]).unwrap();
        let m = err(&cfg(big.to_str().unwrap()));
        assert!(m.ends_with(": larger than 1 MiB"), "{m}");
        std::fs::remove_dir_all(&dir).unwrap();
        // Control characters in the path never reach the message.
        let m = err(&cfg("/nonexistent/a\r\nInjected: yes"));
        assert!(!m.contains('\r') && !m.contains('\n'), "{m:?}");
        assert!(
            m.starts_with("ca_file /nonexistent/a  Injected: yes: cannot open"),
            "{m}"
        );
    }

    #[test]
    #[cfg_attr(miri, ignore = "rcgen's signing is assembly, which Miri cannot run")]
    fn client_key_file_path_is_cleaned_and_bounded() {
        // A valid certificate, and a key path whose file exists but holds no key: the path in
        // the message goes through `clean` (no control characters, at most 200 characters).
        let dir = std::env::temp_dir().join(format!("credvault-key-{}", std::process::id()));
        let deep = dir
            .join("x\r\nInjected: yes")
            .join("d".repeat(100))
            .join("e".repeat(100));
        std::fs::create_dir_all(&deep).unwrap();
        let cert = dir.join("cert.pem");
        let pair = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap();
        std::fs::write(&cert, params.self_signed(&pair).unwrap().pem()).unwrap();
        let key = deep.join("key.pem");
        std::fs::write(&key, "not a key").unwrap();
        let m = err(
            &serde_json::json!({"token_url":"https://x/t","client_id":"abc",
            "client_secret":"s","client_cert_file": cert, "client_key_file": key})
            .to_string(),
        );
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(!m.contains('\r') && !m.contains('\n'), "{m:?}");
        assert!(m.contains("x  Injected: yes/ddd"), "{m}");
        assert!(
            !m.contains("key.pem"),
            "the path is cut at 200 characters: {m}"
        );
        assert!(m.starts_with("client_key_file: "), "{m}");
        assert!(m.ends_with("… holds no PEM private key"), "{m}");
        assert!(m.chars().count() < 260, "{m}");
    }

    #[test]
    #[cfg_attr(miri, ignore = "ring's AES-GCM is assembly, which Miri cannot run")]
    fn duplicated_keys_are_refused() {
        // Decided to refuse (serde_json would keep the last one silently).
        let m = err(
            r#"{"token_url":"https://x/t","client_id":"abc","client_secret":"first-secret-value","client_secret":"second-secret-value"}"#,
        );
        assert!(
            m.starts_with("config: key `client_secret` is given twice (line 1, column"),
            "{m}"
        );
        assert!(!m.contains("secret-value"), "{m}");
        // In the headers object too (exact duplicates; differing case is refused later).
        let m = err(
            r#"{"token_url":"https://x/t","client_id":"abc","client_secret":"s","headers":{"X-A":"1","X-A":"2"}}"#,
        );
        assert!(m.contains("key `X-A` is given twice"), "{m}");
        // Keys are case-sensitive: Client_ID is an unknown key, not a duplicate of client_id.
        let m = err(
            r#"{"token_url":"https://x/t","client_id":"abc","client_secret":"s","Client_ID":"abc"}"#,
        );
        assert!(m.starts_with("unknown key `Client_ID`"), "{m}");
        // Numbers, arrays, nesting and null still parse as before.
        let c = Config::from_json(
            r#"{"token_url":"https://x/t","client_id":"abc","client_secret":"s","timeout_ms":2500,"refresh_ratio":0.5,"scope":null}"#,
        )
        .unwrap();
        assert_eq!(c.timeout, std::time::Duration::from_millis(2500));
        assert_eq!(c.refresh.refresh_ratio, 0.5);
    }

    #[test]
    fn errors_name_field_never_value() {
        let m = err(
            r#"{"token_url":"https://x/t","client_id":"abc","client_secret":"topsecretvalue","timeout_ms":"topsecretvalue"}"#,
        );
        assert!(m.contains("timeout_ms"), "{m}");
        assert!(!m.contains("topsecretvalue"), "{m}");
        let m = err(r#"{"token_url":"https://x/t","client_id":"abc","client_secret":7}"#);
        assert!(m.contains("client_secret"), "{m}");
        let m = err(r#"{"token_url":"https://x/t","client_id":"abc"}"#);
        assert_eq!(m, "client_secret: required");
        let m = err(
            r#"{"token_url":"https://x/t","client_id":"abc","client_secret":"topsecretvalue","extra":1}"#,
        );
        assert!(m.contains("unknown key `extra`"), "{m}");
        let m = err(r#"{"client_secret":"topsecretvalue""#);
        assert!(
            m.contains("not valid JSON") && !m.contains("topsecretvalue"),
            "{m}"
        );
    }

    #[test]
    fn http_only_for_loopback() {
        for ok in [
            "http://127.0.0.1:8080/t",
            "http://[::1]:9/t",
            "http://localhost/t",
            "https://a.example/t",
        ] {
            assert!(check_url("token_url", ok).is_ok(), "{ok}");
        }
        // The whole of 127.0.0.0/8 is loopback, and the message says so.
        assert!(check_url("token_url", "http://127.10.20.30:8080/t").is_ok());
        let m = check_url("token_url", "http://10.0.0.1/t")
            .unwrap_err()
            .message()
            .to_string();
        assert!(m.contains("(127.0.0.0/8, ::1, localhost)"), "{m}");
        for bad in [
            "http://example.com/t",
            "http://127.0.0.1.nip.io/t",
            "ftp://127.0.0.1/t",
            "https://user:pw@a.example/t",
            "/relative",
            "https://a.example/t#frag",
            "https://a.example/t x",
        ] {
            assert!(check_url("token_url", bad).is_err(), "{bad}");
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "ring's AES-GCM is assembly, which Miri cannot run")]
    fn presets_fill_and_override() {
        let c = Config::from_json(
            r#"{"preset":"vitesse-staging","client_id":"client-1","client_secret":"secret-1"}"#,
        )
        .unwrap();
        assert_eq!(c.auth_method, AuthMethod::ClientSecretPost);
        assert_eq!(c.scope.as_deref(), Some("API"));
        assert_eq!(
            c.endpoint,
            EndpointSource::TokenUrl(
                "https://staging-identity.vitessepsp.com/connect/token".into()
            )
        );
        let c = Config::from_json(r#"{"preset":"apiture","token_url":"http://127.0.0.1:1/t","client_id":"c","client_secret":"s"}"#).unwrap();
        assert_eq!(
            c.endpoint,
            EndpointSource::TokenUrl("http://127.0.0.1:1/t".into())
        );
        assert_eq!(c.basic_encoding, BasicEncoding::Plain);
        for name in preset_names() {
            let json = format!(
                r#"{{"preset":"{name}","client_id":"client-1","client_secret":"secret-1","headers":{{"Ocp-Apim-Subscription-Key":"k"}}}}"#
            );
            Config::from_json(&json).unwrap();
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "ring's AES-GCM is assembly, which Miri cannot run")]
    fn basic_encoding_follows_what_each_provider_documents() {
        // Apiture and Vipps document plain Basic; Vitesse (IdentityServer) and VGS (Keycloak)
        // URL-decode it (RFC 6749), so switching those to Basic must encode by default.
        for (name, want) in [
            ("vitesse-staging", BasicEncoding::Rfc6749),
            ("vitesse-uk", BasicEncoding::Rfc6749),
            ("vitesse-us", BasicEncoding::Rfc6749),
            ("vgs", BasicEncoding::Rfc6749),
            ("apiture", BasicEncoding::Plain),
            ("vipps-partner", BasicEncoding::Plain),
            ("vipps", BasicEncoding::Plain),
        ] {
            let json = serde_json::json!({"preset": name, "auth_method": "client_secret_basic",
                "client_id": "client-1", "client_secret": "s+c/r=t&1",
                "headers": {"Ocp-Apim-Subscription-Key": "k"}});
            let c = Config::from_json(&json.to_string()).unwrap();
            assert_eq!(c.basic_encoding, want, "{name}");
        }
    }

    #[test]
    fn preset_rules() {
        let m = err(r#"{"preset":"vitesse-uk","client_id":"abc","client_secret":"secret-1"}"#);
        assert!(m.contains("client_id") && m.contains("6 to 100"), "{m}");
        let m = err(r#"{"preset":"vitesse-uk","client_id":"abcdef","client_secret":"s"}"#);
        assert!(m.contains("client_secret") && m.contains("6 to 100"), "{m}");
        let m = err(r#"{"preset":"vipps-test","client_id":"c","client_secret":"s"}"#);
        assert!(m.contains("Ocp-Apim-Subscription-Key"), "{m}");
        let m = err(
            r#"{"preset":"vipps-test","client_id":"c","client_secret":"s","headers":{"Ocp-Apim-Subscription-Key":"k","Merchant-Serial-Number":"12a"}}"#,
        );
        assert!(m.contains("Merchant-Serial-Number"), "{m}");
        let m = err(
            r#"{"preset":"vipps-test","client_id":"c","client_secret":"s","headers":{"Ocp-Apim-Subscription-Key":"k","Vipps-System-Name":"0123456789012345678901234567890"}}"#,
        );
        assert!(m.contains("Vipps-System-Name") && m.contains("30"), "{m}");
    }

    #[test]
    #[cfg_attr(miri, ignore = "ring's AES-GCM is assembly, which Miri cannot run")]
    fn every_vipps_system_header_is_at_most_30_characters() {
        // The README says Vipps-System-* headers, not four names.
        let cfg = |name: &str, len: usize| {
            serde_json::json!({"preset": "vipps-test", "client_id": "c", "client_secret": "s",
                "headers": {"Ocp-Apim-Subscription-Key": "k", name: "x".repeat(len)}})
            .to_string()
        };
        for name in [
            "Vipps-System-Name",
            "Vipps-System-Plugin-Version",
            "Vipps-System-Extra",
            "vipps-system-anything",
        ] {
            Config::from_json(&cfg(name, 30)).unwrap();
            let m = err(&cfg(name, 31));
            assert!(
                m.starts_with(&format!("headers.{name}:")) && m.contains("30"),
                "{m}"
            );
        }
        // Other headers are not bound by it, nor is a header merely named like the prefix.
        Config::from_json(&cfg("X-Vipps-System-Name", 31)).unwrap();
        Config::from_json(&cfg("Vipps-System", 31)).unwrap();
    }

    /// The ranges and whole-number rule of every numeric key, as the README's
    /// configuration section lists them.
    #[test]
    #[cfg_attr(miri, ignore = "ring's AES-GCM is assembly, which Miri cannot run")]
    fn numeric_keys_take_the_documented_ranges() {
        let cfg = |key: &str, v: serde_json::Value| {
            serde_json::json!({"token_url": "https://x/t", "client_id": "abc",
                "client_secret": "s", key: v})
            .to_string()
        };
        let whole: [(&str, u64, u64); 6] = [
            ("timeout_ms", 1, 120_000),
            ("deadline_ms", 1, 600_000),
            ("expiry_margin_ms", 0, 3_600_000),
            ("default_lifetime_s", 1, 86_400),
            ("cooldown_ms", 0, 600_000),
            ("discovery_ttl_s", 1, 604_800),
        ];
        for (key, min, max) in whole {
            for ok in [min, max] {
                Config::from_json(&cfg(key, ok.into())).unwrap();
            }
            let rule = format!("{key}: must be a whole number from {min} to {max}");
            for bad in [
                serde_json::json!(max + 1),
                serde_json::json!(1.5),
                serde_json::json!(-1),
                serde_json::json!("10"),
            ] {
                assert_eq!(err(&cfg(key, bad.clone())), rule, "{key} {bad}");
            }
            if min > 0 {
                assert_eq!(err(&cfg(key, (min - 1).into())), rule, "{key}");
            }
        }
        for (key, min, max) in [("refresh_ratio", 0.1, 0.95), ("refresh_jitter", 0.0, 0.25)] {
            for ok in [min, max] {
                Config::from_json(&cfg(key, ok.into())).unwrap();
            }
            let rule = format!("{key}: must be a number from {min} to {max}");
            for bad in [min - 0.01, max + 0.01] {
                assert_eq!(err(&cfg(key, bad.into())), rule, "{key} {bad}");
            }
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "ring's AES-GCM is assembly, which Miri cannot run")]
    fn scope_with_headers_auth_is_refused() {
        // The headers request has no body, so a scope would be dropped silently.
        let m = err(
            r#"{"preset":"vipps-test","client_id":"c","client_secret":"s","scope":"API","headers":{"Ocp-Apim-Subscription-Key":"k"}}"#,
        );
        assert!(
            m.starts_with("scope: cannot be sent with auth_method headers"),
            "{m}"
        );
        // A preset's default scope is dropped when the user switches to headers (nothing sent).
        let c = Config::from_json(
            r#"{"preset":"vitesse-uk","auth_method":"headers","client_id":"client-1","client_secret":"secret-1"}"#,
        )
        .unwrap();
        assert_eq!(c.scope, None);
    }

    #[test]
    #[cfg_attr(miri, ignore = "ring's AES-GCM is assembly, which Miri cannot run")]
    fn preset_rules_apply_after_a_url_override() {
        // Overriding the endpoint (a sandbox, a local test server) keeps the rules.
        let m = err(
            r#"{"preset":"vitesse-uk","token_url":"http://127.0.0.1:1/t","client_id":"abc","client_secret":"secret-1"}"#,
        );
        assert!(m.contains("client_id") && m.contains("6 to 100"), "{m}");
        let m = err(
            r#"{"preset":"vipps","token_url":"http://127.0.0.1:1/t","client_id":"c","client_secret":"s"}"#,
        );
        assert!(m.contains("Ocp-Apim-Subscription-Key"), "{m}");
        // Merchant-Serial-Number is optional, and checked when present.
        let ok = r#"{"preset":"vipps","token_url":"http://127.0.0.1:1/t","client_id":"c","client_secret":"s","headers":{"Ocp-Apim-Subscription-Key":"k"}}"#;
        Config::from_json(ok).unwrap();
    }

    #[test]
    fn headers_and_scope_rules() {
        let m = err(
            r#"{"token_url":"https://x/t","client_id":"c","client_secret":"s","headers":{"Authorization":"x"}}"#,
        );
        assert!(m.contains("Authorization"), "{m}");
        let m = err(
            r#"{"token_url":"https://x/t","client_id":"c","client_secret":"s","headers":{"X-A":"a\r\nb"}}"#,
        );
        assert!(m.contains("control"), "{m}");
        let m = err(
            r#"{"token_url":"https://x/t","client_id":"c","client_secret":"s","scope":"a  b"}"#,
        );
        assert!(m.contains("scope"), "{m}");
        let m = err(
            r#"{"token_url":"https://x/t","issuer":"https://x/","client_id":"c","client_secret":"s"}"#,
        );
        assert!(m.contains("not both"), "{m}");
    }
}
