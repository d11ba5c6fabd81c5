//! The configuration file: named providers, secrets by reference, and rotation without a restart.
//!
//! ```json
//! {"providers": {"vitesse-payments": {"preset": "vitesse-uk", "client_id": "...",
//!                                     "client_secret": {"file": "/run/secrets/vitesse"}},
//!                "vipps": {"preset": "vipps", "client_id": {"env": "VIPPS_ID"}, ...}}}
//! ```
//!
//! Each provider is the single-provider JSON of the README, where a secret may be a reference
//! (see [`crate::sources`]). [`load`] registers every provider and remembers the file; [`reload`]
//! reads it again with its references and applies the difference:
//! - a provider whose settings (secrets included) did not change keeps its handle and token;
//! - one whose settings changed keeps its handle, drops its token and fetches with the new
//!   settings next time (its replacement is swapped in under the registry's lock, so a call in
//!   another thread gets either the old provider or the new one, whole);
//! - one removed from the file is freed (its handle answers `INVALID_HANDLE`);
//! - a new one is registered.
//!
//! Nothing changes unless every provider of the file is valid: a file that fails to parse or to
//! validate is reported, and the providers in service stay as they were. Settings are compared
//! by an HMAC under a key made for this process, so no plaintext copy of an old secret is kept.

use std::collections::BTreeMap;

use ring::hmac;
use ring::rand::SystemRandom;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::error::{clean, Error, Result};
use crate::provider::Provider;
use crate::registry;
use crate::secret::WipedValue;
use crate::sources::FileUse;
use crate::sync::{Mutex, Side};

/// A provider of the file as registered.
struct Named {
    handle: u64,
    /// HMAC of the provider's settings with every reference resolved.
    fingerprint: hmac::Tag,
}

/// The file in service.
struct Loaded {
    path: String,
    providers: BTreeMap<String, Named>,
}

static LOADED: Mutex<Option<Loaded>> = Mutex::new(None);

/// Takes the lock of the file in service before fork() (see `fork`: it is held around registry
/// calls, so it comes before the registry in the lock order).
pub(crate) fn fork_hold() {
    LOADED.fork_hold();
}

/// Releases it after fork() (in the child: replaces it).
///
/// # Safety
/// Only after `fork_hold` on this thread, once.
pub(crate) unsafe fn fork_release(side: Side) {
    // SAFETY: per the contract.
    unsafe { LOADED.fork_release(side) };
}

/// The key of the fingerprints, made on first use.
static FINGERPRINT_KEY: once_cell::sync::Lazy<Option<hmac::Key>> =
    once_cell::sync::Lazy::new(|| {
        hmac::Key::generate(hmac::HMAC_SHA256, &SystemRandom::new()).ok()
    });

/// What a load or reload did, by provider name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Changes {
    /// Providers new in the file.
    pub added: Vec<String>,
    /// Providers whose settings changed (same handle, new provider).
    pub changed: Vec<String>,
    /// Providers whose settings are the same (same handle, same provider and token).
    pub unchanged: Vec<String>,
    /// Providers no longer in the file (freed).
    pub removed: Vec<String>,
}

/// A provider of the file, validated, not yet registered.
struct Candidate {
    provider: Provider,
    fingerprint: hmac::Tag,
}

/// Reads and validates every provider of the file at `path`.
fn read(path: &str) -> Result<BTreeMap<String, Candidate>> {
    let shown = clean(path, 200);
    let bytes = crate::sources::read_checked(path, FileUse::Config, "config file")?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| Error::config(format!("config file {shown}: not UTF-8 text")))?;
    // The same reader as a single provider's JSON: a key given twice is refused here too.
    let mut tree = WipedValue(
        crate::config::parse_json(text).map_err(|e| e.context(&format!("config file {shown}")))?,
    );
    drop(bytes);
    let Value::Object(top) = &mut tree.0 else {
        return Err(Error::config(format!(
            "config file {shown}: not a JSON object"
        )));
    };
    if let Some(k) = top.keys().find(|k| k.as_str() != "providers") {
        return Err(Error::config(format!(
            "config file {shown}: unknown key {} (expected \"providers\")",
            clean(k, 40)
        )));
    }
    let Some(Value::Object(providers)) = top.get_mut("providers") else {
        return Err(Error::config(format!(
            "config file {shown}: \"providers\" must be an object of named providers"
        )));
    };
    let mut out = BTreeMap::new();
    for (name, cfg) in providers.iter_mut() {
        check_name(name)?;
        let candidate = candidate(cfg).map_err(|e| e.context(&format!("provider {name}")))?;
        candidate.provider.set_label(name);
        out.insert(name.clone(), candidate);
    }
    Ok(out)
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::config(format!(
            "provider name {}: 1 to 128 letters, digits, '-', '_', '.' or ':'",
            clean(name, 40)
        )))
    }
}

/// Resolves one provider's references and validates it.
fn candidate(cfg: &mut Value) -> Result<Candidate> {
    let Value::Object(obj) = cfg else {
        return Err(Error::config("must be a JSON object"));
    };
    crate::sources::resolve(obj)?;
    let json = Zeroizing::new(
        serde_json::to_string(&Value::Object(std::mem::take(obj)))
            .map_err(|_| Error::internal("could not serialise a provider configuration"))?,
    );
    // `obj` now holds nothing; the resolved values live in `json`, wiped on drop.
    let key = FINGERPRINT_KEY
        .as_ref()
        .ok_or_else(|| Error::internal("the system random generator failed"))?;
    let fingerprint = hmac::sign(key, json.as_bytes());
    let provider = Provider::new(&json)?;
    Ok(Candidate {
        provider,
        fingerprint,
    })
}

fn same(a: &hmac::Tag, b: &hmac::Tag) -> bool {
    crate::secret::constant_time_eq(a.as_ref(), b.as_ref())
}

/// Registers every provider of the file at `path` and makes it the file that [`reload`] reads.
/// If a file is already loaded, this is a reload from the new path.
pub fn load(path: &str) -> Result<Changes> {
    report(
        "config_loaded",
        path,
        read(path).and_then(|c| apply(path, c)),
    )
}

/// Reads the loaded file again, with its references, and applies what changed.
pub fn reload() -> Result<Changes> {
    let path = LOADED
        .lock()
        .as_ref()
        .map(|l| l.path.clone())
        .ok_or_else(|| {
            Error::new(
                crate::Status::InvalidArgument,
                "no configuration file is loaded",
            )
        })?;
    report(
        "config_reloaded",
        &path,
        read(&path).and_then(|c| apply(&path, c)),
    )
}

/// Tells the log hook what a load or reload did (no lock held here).
fn report(event: &str, path: &str, result: Result<Changes>) -> Result<Changes> {
    use crate::events::{emit, Level};
    use serde_json::json;
    match &result {
        Ok(c) => emit(
            Level::Info,
            event,
            "",
            json!({"path": clean(path, 200), "ok": true,
            "added": c.added, "changed": c.changed, "unchanged": c.unchanged.len(),
            "removed": c.removed}),
        ),
        Err(e) => emit(
            Level::Error,
            event,
            "",
            json!({"path": clean(path, 200), "ok": false,
            "status": e.status().name(), "message": e.message()}),
        ),
    }
    result
}

fn apply(path: &str, candidates: BTreeMap<String, Candidate>) -> Result<Changes> {
    let mut slot = LOADED.lock();
    let mut old = slot.take().map(|l| l.providers).unwrap_or_default();
    let mut changes = Changes::default();
    let mut providers = BTreeMap::new();
    for (name, c) in candidates {
        // A provider its user freed (vault_provider_free) is registered afresh, as a new one.
        let prev = old
            .remove(&name)
            .filter(|p| registry::get(p.handle).is_some());
        let named = match prev {
            Some(prev) if same(&prev.fingerprint, &c.fingerprint) => {
                changes.unchanged.push(name.clone());
                prev
            }
            Some(prev) if registry::replace(prev.handle, c.provider.clone()).is_some() => {
                changes.changed.push(name.clone());
                Named {
                    handle: prev.handle,
                    fingerprint: c.fingerprint,
                }
            }
            _ => {
                let handle = registry::insert(c.provider)
                    .ok_or_else(|| Error::internal("too many providers alive"))?;
                changes.added.push(name.clone());
                Named {
                    handle,
                    fingerprint: c.fingerprint,
                }
            }
        };
        providers.insert(name, named);
    }
    for (name, gone) in old {
        registry::remove(gone.handle);
        changes.removed.push(name);
    }
    *slot = Some(Loaded {
        path: path.to_string(),
        providers,
    });
    Ok(changes)
}

/// The handle of the provider named `name` in the loaded file, or `None` (also when its user
/// freed it: a reload registers it again).
pub fn by_name(name: &str) -> Option<u64> {
    LOADED
        .lock()
        .as_ref()
        .and_then(|l| l.providers.get(name).map(|n| n.handle))
        .filter(|h| registry::get(*h).is_some())
}

/// The names and handles of the loaded file's providers.
pub fn names() -> Vec<(String, u64)> {
    LOADED
        .lock()
        .as_ref()
        .map(|l| {
            l.providers
                .iter()
                .map(|(k, v)| (k.clone(), v.handle))
                .collect()
        })
        .unwrap_or_default()
}

/// The provider named `name` in the loaded file (the Rust API's view of [`by_name`]).
pub fn provider(name: &str) -> Option<Provider> {
    by_name(name).and_then(registry::get)
}
