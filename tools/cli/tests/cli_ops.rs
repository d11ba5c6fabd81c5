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

/// Every subcommand has `--help`: usage on standard output, exit 0, nothing else done (`demo
/// --help` runs no demo). The top-level usage shows each subcommand's usage line as the
/// subcommand's own `--help` gives it (`--force` and `--watch` included).
#[test]
fn every_subcommand_has_help_and_the_top_level_usage_agrees() {
    let top = credvault(&["--help"]);
    assert_eq!(top.status.code(), Some(0));
    let top = text(&top.stdout);
    for sub in ["token", "check", "inspect", "demo", "idp"] {
        let out = credvault(&[sub, "--help"]);
        assert_eq!(out.status.code(), Some(0), "{sub} --help");
        let help = text(&out.stdout);
        assert!(
            help.starts_with(&format!("usage: credvault {sub}")),
            "{sub} --help: {help}"
        );
        assert!(
            !help.contains("demo against") && !help.contains("listening on"),
            "{sub} --help ran the subcommand: {help}"
        );
        let first = help.lines().next().unwrap();
        let synopsis = first.trim_start_matches("usage: credvault ").trim();
        if sub != "idp" {
            assert!(
                top.contains(&format!("  {synopsis}\n")),
                "the top-level usage does not show `{synopsis}`:\n{top}"
            );
        }
    }
    assert!(
        top.contains("--force") && top.contains("--watch SECONDS"),
        "{top}"
    );
    // The same usage on an unknown command, on stderr, with exit 2.
    let out = credvault(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stderr).trim(), top.trim());
}

/// Runs `credvault ARGS` with standard output a pipe whose reader is already gone, so that the
/// first write fails with EPIPE.
fn with_closed_stdout(args: &[&str], stdin: &str) -> Output {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: closing the read end, which we own, once.
    unsafe { libc::close(fds[0]) };
    // SAFETY: the write end is ours; the Stdio takes it over.
    let stdout = unsafe { Stdio::from_raw_fd(fds[1]) };
    let mut child = Command::new(env!("CARGO_BIN_EXE_credvault"))
        .args(args)
        .env_remove("CREDVAULT_CONFIG")
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

/// `credvault demo | head -1` and the like: every printing subcommand ends quietly when its
/// reader goes away, with exit status 141 (as a process ended by SIGPIPE), no panic and no
/// backtrace.
#[test]
fn a_closed_pipe_ends_every_subcommand_quietly() {
    let idp = Idp::start();
    let files = Files::new("epipe");
    let cfg = files.config(json!({"vgs": vgs(&idp, "demo-vgs-secret")}));
    let jwt = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2ln";
    let runs: &[(&[&str], &str)] = &[
        (&["demo"], ""),
        (&["token", "vgs", "--config", &cfg], ""),
        (&["token", "vgs", "--header", "--config", &cfg], ""),
        (&["inspect"], jwt),
        (&["inspect", "--json"], jwt),
        (&["check", "--config", &cfg], ""),
        (&["check", "--json", "--config", &cfg], ""),
        (&["check", "--watch", "3600", "--config", &cfg], ""),
        (&["--help"], ""),
        (&["--version"], ""),
        (&["token", "--help"], ""),
        (&["check", "--help"], ""),
        (&["inspect", "--help"], ""),
        (&["demo", "--help"], ""),
        (&["idp", "--help"], ""),
        (&["idp", "--listen", "127.0.0.1:0"], ""),
    ];
    for (args, stdin) in runs {
        let out = with_closed_stdout(args, stdin);
        let err = text(&out.stderr);
        assert!(
            !err.contains("panicked") && !err.contains("backtrace") && !err.contains("Broken pipe"),
            "{args:?}: {err}"
        );
        assert_eq!(out.status.code(), Some(141), "{args:?}: {err}");
        if args[0] != "demo" {
            assert_eq!(err, "", "{args:?}: quiet");
        }
    }
}

/// `check --watch` reloads on SIGHUP from the start: a SIGHUP while the configuration file is
/// being read (the moment it is opened, seen through inotify) must not end the process: the
/// handler is installed before the file is loaded (the default action of SIGHUP ends a process).
#[test]
fn check_watch_survives_a_sighup_while_loading() {
    let idp = Idp::start();
    let files = Files::new("hup");
    let cfg = files.config(json!({"vgs": vgs(&idp, "demo-vgs-secret")}));
    let c_cfg = std::ffi::CString::new(cfg.as_str()).unwrap();
    let mut ended = Vec::new();
    for round in 0..10 {
        // SAFETY: plain inotify calls on a descriptor we own and close below.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
        assert!(fd >= 0);
        let wd = unsafe { libc::inotify_add_watch(fd, c_cfg.as_ptr(), libc::IN_OPEN) };
        assert!(wd >= 0);
        let mut child = Command::new(env!("CARGO_BIN_EXE_credvault"))
            .args(["check", "--json", "--watch", "3600", "--config", &cfg])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait (up to 60 s) for the child to open the file, then signal it at once.
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one pollfd; a buffer large enough for the events.
        let ready = unsafe { libc::poll(&mut pfd, 1, 60_000) };
        assert_eq!(
            ready, 1,
            "round {round}: the configuration file was never opened"
        );
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
        let mut buf = [0u8; 4096];
        // SAFETY: reading the pending events into our buffer, then closing our descriptor.
        unsafe {
            libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
            libc::close(fd);
        }
        // Its first two lines (the check, then the reload), each within a generous bound.
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let wait = std::time::Duration::from_secs(60);
        let first = rx.recv_timeout(wait).ok();
        let second = first.as_ref().and_then(|_| rx.recv_timeout(wait).ok());
        let status = child.try_wait().unwrap();
        let _ = child.kill();
        let _ = child.wait();
        match (first, second) {
            (Some(first), Some(second)) => {
                let first: Value = serde_json::from_str(&first).unwrap();
                assert_eq!(first["checked"], 1, "{first}");
                let reload: Value = serde_json::from_str(&second).unwrap();
                assert_eq!(reload["reload"], "ok", "round {round}: {reload}");
                assert_eq!(reload["unchanged"], json!(["vgs"]));
                assert!(status.is_none(), "round {round}: still running");
            }
            _ => ended.push(round),
        }
    }
    assert!(
        ended.is_empty(),
        "a SIGHUP while loading ended the process in rounds {ended:?}"
    );
}

#[test]
fn check_accepts_a_private_key_jwt_provider_with_a_key_file_reference() {
    // The new keys in a configuration file, the key as a {"file"} reference.
    let idp = Idp::start();
    let files = Files::new("check-jwt");
    let keys = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/keys");
    let mut jwk: Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{keys}/rsa2048.public.jwk.json")).unwrap(),
    )
    .unwrap();
    jwk["kid"] = "k1".into();
    idp.add_client(json!({"dialect": "oauth", "client_id": "cli-jwt", "jwks": {"keys": [jwk]}}));
    let key_path = files.0.join("client.pem");
    std::fs::copy(format!("{keys}/rsa2048.pkcs8.pem"), &key_path).unwrap();
    std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let provider = |kid: &str| {
        json!({"token_url": idp.url("/oauth/token"), "client_id": "cli-jwt",
               "auth_method": "private_key_jwt", "private_key": {"file": key_path.to_str().unwrap()},
               "key_id": kid, "signing_alg": "PS256", "audience": idp.url("/oauth/token")})
    };
    let cfg = files.config(json!({"jwt": provider("k1")}));
    let out = credvault(&["check", "--json", "--config", &cfg]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["providers"][0]["ok"], true, "{v}");
    // A kid the idp does not know: the check fails with the server's refusal.
    let cfg = files.config(json!({"jwt": provider("k2")}));
    let out = credvault(&["check", "--json", "--config", &cfg]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["providers"][0]["status"], "VAULT_STATUS_CREDENTIALS_REJECTED",
        "{v}"
    );
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(!all.contains("PRIVATE KEY"), "key material in the output");
}
