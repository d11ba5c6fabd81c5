//! `credvault token` and `credvault check` as an operator runs them: against a configuration
//! file and the local identity provider, with their failures and exit codes, and never a secret
//! or a token where it does not belong.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::fd::FromRawFd;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};

use common::Idp;
use serde_json::{json, Value};

struct Files(std::path::PathBuf);

impl Files {
    fn new(tag: &str) -> Files {
        let d = std::env::temp_dir().join(format!("credvault-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Files(d)
    }

    fn config(&self, providers: Value) -> String {
        let p = self.0.join("credvault.json");
        std::fs::write(&p, json!({ "providers": providers }).to_string()).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p.to_str().unwrap().to_string()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn credvault(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_credvault"))
        .args(args)
        .env_remove("CREDVAULT_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("run credvault")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn vgs(idp: &Idp, secret: &str) -> Value {
    json!({"preset": "vgs", "token_url": idp.url("/vgs/auth/realms/vgs/protocol/openid-connect/token"),
           "client_id": "demo-vgs-client", "client_secret": secret})
}

#[test]
fn token_prints_for_pipes_and_fails_clearly() {
    let idp = Idp::start();
    let files = Files::new("token");
    let cfg = files.config(json!({"vgs": vgs(&idp, "demo-vgs-secret"),
                                  "broken": vgs(&idp, "wrong-secret-value")}));
    let out = credvault(&["token", "vgs", "--config", &cfg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let token = text(&out.stdout);
    assert!(
        token.ends_with('\n') && token.trim().len() > 10,
        "one line with the token"
    );
    assert!(!token.trim().contains(' '));
    assert_eq!(idp.tokens_issued(), 1);

    let out = credvault(&["token", "--header", "vgs", &format!("--config={cfg}")]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("Bearer "));

    let out = credvault(&["token", "broken", "--config", &cfg]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("VAULT_STATUS_CREDENTIALS_REJECTED"), "{err}");
    assert!(!err.contains("wrong-secret-value") && out.stdout.is_empty());

    let out = credvault(&["token", "nobody", "--config", &cfg]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("no provider named nobody"));
    let out = credvault(&["token", "vgs"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "no file: CREDVAULT_CONFIG unset"
    );
    let out = credvault(&["token", "vgs", "--config", "/nonexistent/credvault.json"]);
    assert_eq!(out.status.code(), Some(3));
    let out = credvault(&["token"]);
    assert_eq!(out.status.code(), Some(2));
    let out = credvault(&["token", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("exit codes"));
}

/// A token never goes to a terminal unless asked: standard output on a pseudo-terminal.
#[test]
fn token_refuses_a_terminal_without_force() {
    let idp = Idp::start();
    let files = Files::new("tty");
    let cfg = files.config(json!({"vgs": vgs(&idp, "demo-vgs-secret")}));
    let run = |force: bool| -> (Option<i32>, String) {
        let (mut master, mut slave) = (0, 0);
        // SAFETY: openpty writes two descriptors; the other pointers may be NULL.
        let rc = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty");
        let mut args = vec!["token", "vgs", "--config", &cfg];
        if force {
            args.push("--force");
        }
        // SAFETY: `slave` is a descriptor we own; the Stdio takes it over.
        let stdout = unsafe { Stdio::from_raw_fd(slave) };
        let out = Command::new(env!("CARGO_BIN_EXE_credvault"))
            .args(&args)
            .stdout(stdout)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        // SAFETY: closing our own descriptor once.
        unsafe { libc::close(master) };
        (out.status.code(), text(&out.stderr))
    };
    let (code, err) = run(false);
    assert_eq!(code, Some(4), "{err}");
    assert!(err.contains("--force"));
    assert_eq!(idp.token_requests(), 0, "refused before fetching");
    let (code, _) = run(true);
    assert_eq!(code, Some(0));
}

#[test]
fn check_reports_each_provider_and_fails_if_one_fails() {
    let idp = Idp::start();
    let files = Files::new("check");
    let apiture = json!({"preset": "apiture", "issuer": idp.url("/apiture/oidc/"),
                         "client_id": "demo-apiture-client", "client_secret": "demo-apiture-secret"});
    let cfg = files.config(json!({"vgs": vgs(&idp, "demo-vgs-secret"), "apiture": apiture}));
    let out = credvault(&["check", "--config", &cfg]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let report = text(&out.stdout);
    assert!(report.contains("2 of 2 providers ok"), "{report}");
    assert!(report.contains("discovered from issuer"), "{report}");

    let cfg = files.config(json!({"vgs": vgs(&idp, "demo-vgs-secret"),
                                  "bad": vgs(&idp, "not-the-secret-xyz")}));
    let out = credvault(&["check", "--json", "--config", &cfg]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["failed"], 1);
    let by_name = |n: &str| {
        v["providers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == n)
            .cloned()
            .unwrap()
    };
    assert_eq!(by_name("vgs")["ok"], true);
    assert!(by_name("vgs")["servable_s"].as_u64().unwrap() > 0);
    assert!(by_name("vgs")["latency_ms"].as_f64().is_some());
    assert_eq!(
        by_name("bad")["status"],
        "VAULT_STATUS_CREDENTIALS_REJECTED"
    );
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(!all.contains("not-the-secret-xyz") && !all.contains("demo-vgs-secret"));

    // A provider that fails validation fails the whole file, naming it.
    let cfg = files.config(
        json!({"x": {"token_url": "http://example.com/t", "client_id": "a",
                                         "client_secret": "b"}}),
    );
    let out = credvault(&["check", "--config", &cfg]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("provider x"),
        "{}",
        text(&out.stderr)
    );
}

/// `check --watch` is a long-running process: SIGHUP reloads the file and its secrets.
#[test]
fn check_watch_reloads_on_sighup() {
    let idp = Idp::start();
    let files = Files::new("watch");
    let cfg = files.config(json!({"vgs": vgs(&idp, "demo-vgs-secret")}));
    let mut child = Command::new(env!("CARGO_BIN_EXE_credvault"))
        .args(["check", "--json", "--watch", "3600", "--config", &cfg])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["checked"], 1);
    let partner = json!({"preset": "vipps-partner", "token_url": idp.url("/vipps/miami/v1/token"),
                         "client_id": "demo-partner-client", "client_secret": "demo-partner-secret"});
    files.config(json!({"vgs": vgs(&idp, "demo-vgs-secret"), "partner": partner}));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    let reload: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(reload["reload"], "ok", "{reload}");
    assert_eq!(reload["added"], json!(["partner"]));
    assert_eq!(reload["unchanged"], json!(["vgs"]));
    let _ = std::io::stdout().flush();
}
