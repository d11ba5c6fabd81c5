//! The configuration file: named providers, secret references (environment, files and their
//! permissions, the VGS credentials file), and reload (unchanged, changed secret, removed, broken
//! file, callers in other threads during reloads), against the local identity provider.
//!
//! One file is loaded per process, so the tests run one after another under a lock.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::Idp;
use credvault::{configfile, Status};
use serde_json::{json, Value};

static SERIAL: Mutex<()> = Mutex::new(());

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("credvault-cf-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    fn write(&self, name: &str, text: &str, mode: u32) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p.to_str().unwrap().to_string()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn vgs_url(idp: &Idp) -> String {
    idp.url("/vgs/auth/realms/vgs/protocol/openid-connect/token")
}

/// A provider of the `oauth` dialect with this client, by reference.
fn oauth(idp: &Idp, id: &str, secret: Value) -> Value {
    json!({"token_url": idp.url("/oauth/token"), "client_id": id, "client_secret": secret})
}

fn add_oauth_client(idp: &Idp, id: &str, secret: &str) {
    idp.add_client(json!({"dialect": "oauth", "client_id": id, "client_secret": secret}));
}

#[test]
fn references_from_env_and_files() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let idp = Idp::start();
    let dir = Dir::new("refs");
    add_oauth_client(&idp, "env-client", "env-secret-value");
    add_oauth_client(&idp, "file-client", "file-secret-value");
    std::env::set_var("CREDVAULT_TEST_ENV_SECRET", "env-secret-value");
    let secret_file = dir.write("secret", "file-secret-value\n", 0o600);
    let cfg = json!({"providers": {
        "from-env": oauth(&idp, "env-client", json!({"env": "CREDVAULT_TEST_ENV_SECRET"})),
        "from-file": oauth(&idp, "file-client", json!({"file": secret_file})),
        "vgs": {"preset": "vgs", "token_url": vgs_url(&idp), "client_id": "demo-vgs-client",
                "client_secret": "demo-vgs-secret"},
    }});
    let path = dir.write("credvault.json", &cfg.to_string(), 0o600);
    // One file is loaded per process: a test that ran before may have loaded a "vgs" of its own,
    // so a provider here is added or changed, whichever it is.
    let changes = configfile::load(&path).expect("load");
    let mut named: Vec<String> = [changes.added, changes.changed, changes.unchanged].concat();
    named.sort();
    assert_eq!(named, ["from-env", "from-file", "vgs"]);
    for name in ["from-env", "from-file", "vgs"] {
        let p = configfile::provider(name).unwrap_or_else(|| panic!("{name} registered"));
        p.token().unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    assert!(configfile::by_name("nope").is_none());

    // A secret file readable by others is refused unless allow_shared; nothing changes.
    std::fs::set_permissions(&secret_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let before = configfile::names();
    let e = configfile::reload().expect_err("shared secret file refused");
    assert_eq!(e.status(), Status::InvalidConfig);
    assert!(e.message().contains("allow_shared"), "{e}");
    assert!(e.message().contains("from-file"), "names the provider: {e}");
    assert_eq!(
        configfile::names(),
        before,
        "a failed reload changes nothing"
    );
    let cfg2 = json!({"providers": {
        "from-file": oauth(&idp, "file-client", json!({"file": secret_file, "allow_shared": true})),
    }});
    dir.write("credvault.json", &cfg2.to_string(), 0o600);
    let changes = configfile::reload().expect("allow_shared accepted");
    assert_eq!(changes.removed, ["from-env", "vgs"]);

    // A missing variable and a missing file name what is missing, never a value.
    std::env::remove_var("CREDVAULT_TEST_ENV_SECRET");
    let cfg3 = json!({"providers": {
        "a": oauth(&idp, "env-client", json!({"env": "CREDVAULT_TEST_ENV_SECRET"})),
    }});
    dir.write("credvault.json", &cfg3.to_string(), 0o600);
    let e = configfile::reload().expect_err("missing variable");
    assert!(e.message().contains("CREDVAULT_TEST_ENV_SECRET"), "{e}");
    let cfg4 = json!({"providers": {"a": oauth(&idp, "x", json!({"file": "/nonexistent/s"}))}});
    dir.write("credvault.json", &cfg4.to_string(), 0o600);
    let e = configfile::reload().expect_err("missing file");
    assert!(e.message().contains("/nonexistent/s"), "{e}");
    let cfg5 = json!({"providers": {"a": oauth(&idp, "x", json!({"vault": "kv/x"}))}});
    dir.write("credvault.json", &cfg5.to_string(), 0o600);
    let e = configfile::reload().expect_err("unknown reference");
    assert!(e.message().contains("vault"), "{e}");
    assert!(!e.message().contains("secret-value"));
}

#[test]
fn vgs_credentials_yaml() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let idp = Idp::start();
    let dir = Dir::new("vgs");
    idp.add_client(
        json!({"dialect": "vgs", "client_id": "ACvgs123", "client_secret": "vgs+secret/=&x"}),
    );
    let yaml = "apiVersion: 1.0.0\nkind: ServiceAccount\ndata:\n  clientId: ACvgs123\n  clientSecret: \"vgs+secret/=&x\"\n  name: calm\n  scopes:\n  - cards:write\n  - cards:read\n";
    let creds = dir.write("credentials.yaml", yaml, 0o600);
    let cfg = json!({"providers": {"vgs": {"preset": "vgs", "token_url": vgs_url(&idp),
                                           "vgs_credentials_file": creds}}});
    let path = dir.write("credvault.json", &cfg.to_string(), 0o600);
    configfile::load(&path).expect("load");
    let p = configfile::provider("vgs").unwrap();
    assert_eq!(p.config().client_id, "ACvgs123");
    assert_eq!(p.config().scope.as_deref(), Some("cards:write cards:read"));
    p.token().expect("token with the credentials file's secret");
    let keys = idp.last_request()["form_keys"].to_string();
    assert!(keys.contains("scope"), "the scopes are sent: {keys}");
}

#[test]
fn reload_keeps_rotates_and_removes() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let idp = Idp::start();
    let dir = Dir::new("reload");
    add_oauth_client(&idp, "steady", "steady-secret");
    add_oauth_client(&idp, "rotating", "old-secret-1");
    add_oauth_client(&idp, "leaving", "leaving-secret");
    let secret = dir.write("rotating.secret", "old-secret-1\n", 0o400);
    let write_cfg = |with_leaving: bool| {
        let mut providers = json!({
            "steady": oauth(&idp, "steady", json!("steady-secret")),
            "rotating": oauth(&idp, "rotating", json!({"file": secret})),
        });
        if with_leaving {
            providers["leaving"] = oauth(&idp, "leaving", json!("leaving-secret"));
        }
        dir.write(
            "credvault.json",
            &json!({"providers": providers}).to_string(),
            0o600,
        )
    };
    let path = write_cfg(true);
    configfile::load(&path).unwrap();
    let handles = |n: &str| configfile::by_name(n).unwrap();
    let (steady, rotating, leaving) = (handles("steady"), handles("rotating"), handles("leaving"));
    let steady_token = configfile::provider("steady").unwrap().token().unwrap();
    configfile::provider("rotating").unwrap().token().unwrap();
    let issued = idp.tokens_issued();

    // Unchanged: same handles, same cached tokens, no request.
    let changes = configfile::reload().unwrap();
    assert_eq!(changes.unchanged.len(), 3);
    assert_eq!(handles("steady"), steady);
    let again = configfile::provider("steady").unwrap().token().unwrap();
    assert_eq!(again.secret(), steady_token.secret());
    assert_eq!(idp.tokens_issued(), issued);

    // The secret rotates at the identity provider and in the file: the handle stays, the token
    // is dropped, and the next fetch authenticates with the new secret (the old one is refused).
    add_oauth_client(&idp, "rotating", "new-secret-2");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(&secret, "new-secret-2\n").unwrap();
    let path = write_cfg(false);
    let changes = configfile::reload().unwrap();
    assert_eq!(changes.changed, ["rotating"]);
    assert_eq!(changes.unchanged, ["steady"]);
    assert_eq!(changes.removed, ["leaving"]);
    assert_eq!(
        handles("rotating"),
        rotating,
        "a changed provider keeps its handle"
    );
    let p = configfile::provider("rotating").unwrap();
    assert!(p.schedule().is_none(), "its token was dropped");
    p.token().expect("fetched with the new secret");
    assert_eq!(idp.tokens_issued(), issued + 1);
    assert!(configfile::by_name("leaving").is_none());
    let gone = credvault::ffi::vault_provider_free(leaving);
    assert_eq!(
        gone,
        Status::InvalidHandle as i32,
        "a removed provider's handle is dead"
    );

    // A provider its user frees is gone by name until a reload registers it again.
    assert_eq!(
        credvault::ffi::vault_provider_free(steady),
        Status::Ok as i32
    );
    assert_eq!(
        configfile::by_name("steady"),
        None,
        "a freed handle is not handed out"
    );
    let changes = configfile::reload().unwrap();
    assert_eq!(changes.added, ["steady"]);
    let steady = handles("steady");
    configfile::provider("steady").unwrap().token().unwrap();

    // A broken file changes nothing and says why.
    std::fs::write(&path, "{\"providers\": {\"steady\": ").unwrap();
    let e = configfile::reload().expect_err("broken file");
    assert_eq!(e.status(), Status::InvalidConfig);
    assert!(e.message().contains("not valid JSON"), "{e}");
    assert_eq!(handles("steady"), steady);
    assert_eq!(handles("rotating"), rotating);
    // A key given twice (a provider, or a secret inside one) is refused as in a single config.
    std::fs::write(
        &path,
        r#"{"providers": {"steady": {"token_url": "http://127.0.0.1:9/t", "client_id": "a",
            "client_secret": "b", "client_secret": "c"}}}"#,
    )
    .unwrap();
    let e = configfile::reload().expect_err("duplicate key");
    assert!(e.message().contains("given twice"), "{e}");
    assert_eq!(handles("steady"), steady);
    let bad = json!({"providers": {"steady": {"token_url": "http://example.com/t",
                     "client_id": "a", "client_secret": "b"}}});
    std::fs::write(&path, bad.to_string()).unwrap();
    let e = configfile::reload().expect_err("invalid provider");
    assert!(e.message().contains("steady"), "{e}");
    assert_eq!(
        handles("rotating"),
        rotating,
        "not removed by a failed reload"
    );
}

/// 16 threads take tokens by name while the file is reloaded with the secret going back and
/// forth: every call gets a token (old provider or new, whole), none fails.
#[test]
fn callers_during_reloads() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let idp = Idp::start();
    let dir = Dir::new("concurrent");
    add_oauth_client(&idp, "busy", "busy-secret");
    let write = |timeout: u64| {
        let mut p = oauth(&idp, "busy", json!("busy-secret"));
        p["timeout_ms"] = json!(timeout);
        let cfg = json!({"providers": {"busy": p}});
        dir.write("credvault.json", &cfg.to_string(), 0o600)
    };
    configfile::load(&write(4000)).unwrap();
    let handle = configfile::by_name("busy").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (stop, calls) = (stop.clone(), calls.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let t = credvault::ffi::vault_get_token(handle);
                    assert!(!t.is_null(), "a call during a reload failed");
                    // SAFETY: a token string returned by the library, freed once.
                    unsafe { credvault::ffi::vault_token_free(t) };
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for i in 0..40 {
        write(if i % 2 == 0 { 5000 } else { 4000 });
        let c = configfile::reload().unwrap();
        assert_eq!(c.changed, ["busy"]);
        assert_eq!(configfile::by_name("busy"), Some(handle));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    assert!(calls.load(Ordering::Relaxed) > 0);
}

/// The environment variable that accepts config and secret files writable by others.
const ALLOW_WRITABLE: &str = "CREDVAULT_ALLOW_WRITABLE_CONFIG";

/// Runs `load` on a thread and waits for it generously: a call that blocks for good (a read of
/// a FIFO with no writer) fails the test, and the FIFO is then opened for writing and closed so
/// that the blocked thread gets end of file and finishes.
fn within<T: Send + 'static>(
    fifo: &str,
    what: &str,
    load: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(load());
    });
    match rx.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(r) => r,
        Err(_) => {
            drop(std::fs::OpenOptions::new().write(true).open(fifo));
            panic!("{what}: blocked on the FIFO for 60 s");
        }
    }
}

fn mkfifo(path: &std::path::Path) -> String {
    let _ = std::fs::remove_file(path);
    let ok = std::process::Command::new("mkfifo")
        .arg("-m")
        .arg("600")
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo");
    path.to_str().unwrap().to_string()
}

/// A FIFO named as a secret file or as the configuration file is refused at once,
/// on load and on reload, with a message saying what it is; nothing changes.
#[test]
fn fifo_refused_without_blocking() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let idp = Idp::start();
    let dir = Dir::new("fifo");
    add_oauth_client(&idp, "fifo-client", "fifo-secret");
    let fifo = mkfifo(&dir.0.join("secret.fifo"));
    let cfg = json!({"providers": {"f": oauth(&idp, "fifo-client", json!({"file": fifo}))}});
    let path = dir.write("credvault.json", &cfg.to_string(), 0o600);
    let p = path.clone();
    let e = within(&fifo, "a {\"file\"} FIFO", move || configfile::load(&p))
        .expect_err("a FIFO secret is refused");
    assert_eq!(e.status(), Status::InvalidConfig);
    assert!(e.message().contains("not a regular file"), "{e}");
    assert!(e.message().contains("FIFO"), "{e}");

    // A good file in service; then its path becomes a FIFO: the reload is refused at once and
    // the providers in service stay.
    let cfg = json!({"providers": {"f": oauth(&idp, "fifo-client", json!("fifo-secret"))}});
    dir.write("credvault.json", &cfg.to_string(), 0o600);
    configfile::load(&path).expect("a regular config file");
    let before = configfile::names();
    let config_fifo = mkfifo(std::path::Path::new(&path));
    let e = within(&config_fifo, "a FIFO config file", configfile::reload)
        .expect_err("a FIFO config file is refused");
    assert!(e.message().contains("not a regular file"), "{e}");
    assert!(e.message().contains("config file"), "{e}");
    assert_eq!(
        configfile::names(),
        before,
        "a refused reload changes nothing"
    );
    let again = config_fifo.clone();
    let e = within(&config_fifo, "a FIFO config file", move || {
        configfile::load(&again)
    })
    .expect_err("a FIFO config file is refused by load too");
    assert!(e.message().contains("FIFO"), "{e}");
    // A directory is no file either.
    let d = dir.0.to_str().unwrap().to_string();
    let e = configfile::load(&d).expect_err("a directory");
    assert!(e.message().contains("not a regular file"), "{e}");
}

/// A configuration file is read up to its documented limit (1 MiB): 10,000
/// providers in one file load, serve and reload; a file over 1 MiB is refused, saying so.
#[test]
fn ten_thousand_providers_in_one_file() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let idp = Idp::start();
    let dir = Dir::new("big");
    add_oauth_client(&idp, "b", "s3cret-b");
    let url = idp.url("/oauth/token");
    let mut providers = serde_json::Map::new();
    for i in 0..10_000 {
        providers.insert(
            format!("p{i:05}"),
            json!({"token_url": url, "client_id": "b", "client_secret": "s3cret-b"}),
        );
    }
    let text = json!({ "providers": providers }).to_string();
    assert!(
        text.len() > 64 * 1024 && text.len() <= 1 << 20,
        "{}",
        text.len()
    );
    let path = dir.write("credvault.json", &text, 0o600);
    let changes = configfile::load(&path).expect("10,000 providers load");
    assert_eq!(
        changes.added.len() + changes.changed.len() + changes.unchanged.len(),
        10_000
    );
    assert_eq!(configfile::names().len(), 10_000);
    for name in ["p00000", "p04711", "p09999"] {
        configfile::provider(name)
            .unwrap_or_else(|| panic!("{name}"))
            .token()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let changes = configfile::reload().expect("10,000 providers reload");
    assert_eq!(changes.unchanged.len(), 10_000);
    assert!(changes.added.is_empty() && changes.changed.is_empty());

    // Exactly 1 MiB (padded with white space) is read; one byte more is refused.
    let small = json!({"providers": {"one": oauth(&idp, "b", json!("s3cret-b"))}}).to_string();
    let mut padded = small.clone();
    padded.push_str(&" ".repeat((1 << 20) - small.len()));
    let path = dir.write("padded.json", &padded, 0o600);
    configfile::load(&path).expect("a file of exactly 1 MiB");
    padded.push(' ');
    dir.write("padded.json", &padded, 0o600);
    let e = configfile::reload().expect_err("over 1 MiB");
    assert!(e.message().contains("larger than 1 MiB"), "{e}");
    assert_eq!(configfile::names().len(), 1);
}

/// Configuration and secret files that others can write are refused, as ssh
/// refuses them (whoever can write the configuration can point `token_url` at a listener of
/// theirs); `CREDVAULT_ALLOW_WRITABLE_CONFIG=1` accepts them. A configuration file owned by
/// another user than this process's or root is refused the same way (checked when the test runs
/// as root, which can give a file away).
#[test]
fn files_writable_by_others_refused() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    std::env::remove_var(ALLOW_WRITABLE);
    let idp = Idp::start();
    let dir = Dir::new("writable");
    add_oauth_client(&idp, "w-client", "w-secret-value");
    let secret = dir.write("secret", "w-secret-value\n", 0o602);
    let cfg = json!({"providers": {"w": oauth(&idp, "w-client", json!({"file": secret}))}});
    let path = dir.write("credvault.json", &cfg.to_string(), 0o600);
    let e = configfile::load(&path).expect_err("a secret file writable by others");
    assert_eq!(e.status(), Status::InvalidConfig);
    assert!(e.message().contains("writable by group or others"), "{e}");
    assert!(
        e.message().contains(ALLOW_WRITABLE),
        "names the opt-out: {e}"
    );
    // allow_shared is about reading: it does not accept a file others can write.
    let shared = json!({"file": secret, "allow_shared": true});
    let cfg = json!({"providers": {"w": oauth(&idp, "w-client", shared)}});
    dir.write("credvault.json", &cfg.to_string(), 0o600);
    let e = configfile::load(&path).expect_err("allow_shared does not cover writing");
    assert!(e.message().contains("writable by group or others"), "{e}");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o620)).unwrap();
    let e = configfile::load(&path).expect_err("a secret file writable by the group");
    assert!(e.message().contains("mode 620"), "{e}");

    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    for mode in [0o666, 0o620, 0o602] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let e = configfile::load(&path).expect_err("a config file writable by others");
        assert!(e.message().contains("config file"), "{e}");
        assert!(e.message().contains("writable by group or others"), "{e}");
        assert!(e.message().contains(ALLOW_WRITABLE), "{e}");
    }
    // A PEM file others can write (a CA bundle decides whom the library trusts) is refused too,
    // before its content is looked at.
    let ca = dir.write("ca.pem", "not pem", 0o666);
    let e = credvault::Provider::new(
        &json!({"token_url": idp.url("/oauth/token"), "client_id": "a", "client_secret": "b",
                "ca_file": ca})
        .to_string(),
    )
    .expect_err("a writable ca_file");
    assert!(e.message().contains("writable by group or others"), "{e}");

    // The opt-out accepts them all.
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o666)).unwrap();
    std::env::set_var(ALLOW_WRITABLE, "1");
    let loaded = configfile::load(&path);
    std::env::remove_var(ALLOW_WRITABLE);
    loaded.expect("accepted with the opt-out");
    configfile::provider("w").unwrap().token().expect("token");

    // The owner: this process's user or root. Only root can give a file away to test it.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let root = std::fs::metadata(&path).unwrap().uid() == 0;
    if root {
        std::os::unix::fs::chown(&path, Some(65534), Some(65534)).unwrap();
        let e = configfile::reload().expect_err("a config file owned by another user");
        assert!(e.message().contains("owned by uid 65534"), "{e}");
        assert!(e.message().contains(ALLOW_WRITABLE), "{e}");
        std::env::set_var(ALLOW_WRITABLE, "1");
        let reloaded = configfile::reload();
        std::env::remove_var(ALLOW_WRITABLE);
        reloaded.expect("accepted with the opt-out");
        // A secret file may belong to another user (a secrets agent's): only writing matters.
        std::os::unix::fs::chown(&path, Some(0), Some(0)).unwrap();
        std::os::unix::fs::chown(&secret, Some(65534), Some(65534)).unwrap();
        configfile::reload().expect("a secret file of another owner");
    }
}

/// The VGS `credentials.yaml` is read as YAML: quoted scalars are unescaped, a
/// trailing comment (quotes in it) is no part of the value; the identity provider accepts the
/// secrets so read.
#[test]
fn vgs_credentials_yaml_scalar_forms() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let idp = Idp::start();
    let dir = Dir::new("vgs-forms");
    let forms = [
        ("ACquote1", "it's-a\"secret", r#"'it''s-a"secret'"#),
        ("ACquote2", "it's-a\"secret", r#""it's-a\"secret""#),
        (
            "ACcomment",
            "plain-secret-1",
            r#"plain-secret-1 # it's "noted""#,
        ),
        ("ACdq", "esc-A-é", r#""esc-\x41-\u00e9" # a "comment""#),
    ];
    for (i, (id, secret, written)) in forms.iter().enumerate() {
        idp.add_client(json!({"dialect": "vgs", "client_id": id, "client_secret": secret}));
        let yaml = format!(
            "apiVersion: 1.0.0\nkind: ServiceAccount\ndata:\n  clientId: {id}\n  clientSecret: {written}\n  scopes:\n  - cards:read\n"
        );
        let creds = dir.write(&format!("credentials-{i}.yaml"), &yaml, 0o600);
        let cfg = json!({"providers": {"vgs": {"preset": "vgs", "token_url": vgs_url(&idp),
                                               "vgs_credentials_file": creds}}});
        let path = dir.write("credvault.json", &cfg.to_string(), 0o600);
        configfile::load(&path).unwrap_or_else(|e| panic!("{written}: {e}"));
        configfile::provider("vgs")
            .unwrap()
            .token()
            .unwrap_or_else(|e| panic!("{written}: the identity provider refused: {e}"));
    }
}

/// The credentials file on a Kubernetes secret mount (0644) is refused by default,
/// and the refusal says how to accept it: the object form, which docs/OPERATIONS.md documents
/// beside the plain path.
#[test]
fn vgs_credentials_on_a_shared_mount() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let idp = Idp::start();
    let dir = Dir::new("vgs-shared");
    idp.add_client(json!({"dialect": "vgs", "client_id": "ACk8s", "client_secret": "k8s-secret"}));
    let yaml = "kind: ServiceAccount\ndata:\n  clientId: ACk8s\n  clientSecret: k8s-secret\n";
    let creds = dir.write("credentials.yaml", yaml, 0o644);
    let cfg = json!({"providers": {"vgs": {"preset": "vgs", "token_url": vgs_url(&idp),
                                           "vgs_credentials_file": creds}}});
    let path = dir.write("credvault.json", &cfg.to_string(), 0o600);
    let e = configfile::load(&path).expect_err("a 0644 credentials file");
    assert!(
        e.message()
            .contains(r#""vgs_credentials_file": {"file": "/path", "allow_shared": true}"#),
        "the refusal names the object form: {e}"
    );
    let cfg = json!({"providers": {"vgs": {"preset": "vgs", "token_url": vgs_url(&idp),
        "vgs_credentials_file": {"file": creds, "allow_shared": true}}}});
    dir.write("credvault.json", &cfg.to_string(), 0o600);
    configfile::load(&path).expect("the object form");
    configfile::provider("vgs").unwrap().token().expect("token");
    let ops = include_str!("../docs/OPERATIONS.md");
    assert!(
        ops.contains(r#""vgs_credentials_file": {"file": "#),
        "docs/OPERATIONS.md shows the object form"
    );
}

/// A value given as `{"env": ...}` that is no variable name (a secret written there
/// by mistake) is not repeated in the message; a variable name is.
#[test]
fn env_reference_names_only_variable_names() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let idp = Idp::start();
    let dir = Dir::new("envname");
    for (given, shown) in [
        ("hunter2-SECRET", false),
        ("s3cr3t value/+", false),
        ("CREDVAULT_TEST_UNSET_VARIABLE", true),
    ] {
        std::env::remove_var(given);
        let cfg = json!({"providers": {"a": oauth(&idp, "x", json!({"env": given}))}});
        let path = dir.write("credvault.json", &cfg.to_string(), 0o600);
        let e = configfile::load(&path).expect_err("unset");
        assert!(e.message().contains("not set"), "{e}");
        assert_eq!(e.message().contains(given), shown, "{e}");
        if !shown {
            assert!(e.message().contains("not shown"), "{e}");
            assert!(!e.message().contains("hunter2") && !e.message().contains("s3cr3t"));
        }
    }
}
