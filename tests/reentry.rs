//! The rule "no library lock is held while user code runs", tested as a rule: a log
//! callback that, from inside every kind of event, raised from every C entry point that can raise
//! it (and from a background refresh worker), calls every C function of `include/credvault.h`
//! (with a provider of its own) and `fork()`. A call that waited for a lock its own thread (or a
//! thread waiting on the callback) holds would hang: the scenario runs under a timeout, so a
//! deadlock fails the test instead of hanging it. The list of calls is checked against the
//! header: a new C function that this test does not call fails it.
//!
//! Also: the replaced log callback is never entered again once `vault_set_log_callback` returns,
//! no call of it is still running then, and replaced callbacks are freed; the levels
//! a callback asks for are the levels it gets.

mod common;

use std::cell::Cell;
use std::collections::BTreeSet;
use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Idp;
use credvault::ffi::*;
use credvault::Status;
use serde_json::{json, Value};

/// The log callback is process-wide: the tests here run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// How long the whole scenario may take before it counts as hung (it takes a few seconds).
const HUNG_AFTER: Duration = Duration::from_secs(240);

thread_local! {
    /// The C entry point the test's driver thread is calling; empty on the library's own
    /// threads (a background refresh worker).
    static ENTRY: Cell<&'static str> = const { Cell::new("") };
}

/// Where the callback is, for the message when the scenario hangs.
static WHERE: Mutex<String> = Mutex::new(String::new());
/// (event, entry point) pairs whose callback ran every call.
static COVERED: Mutex<BTreeSet<(String, String)>> = Mutex::new(BTreeSet::new());
/// Results of the calls made from inside the callback that must succeed, as failures.
static FAILED: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// The provider configuration the callback makes its own provider from.
static OWN_CONFIG: Mutex<String> = Mutex::new(String::new());
/// The configuration file the driver loads (the callback loads the same one).
static CONFIG_PATH: Mutex<String> = Mutex::new(String::new());

fn note_where(s: String) {
    *WHERE.lock().unwrap_or_else(|e| e.into_inner()) = s;
}

fn fail(s: String) {
    FAILED.lock().unwrap_or_else(|e| e.into_inner()).push(s);
}

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap()
}

fn take_string(p: *mut c_char) {
    if !p.is_null() {
        // SAFETY: a string returned by the library, freed once.
        unsafe { vault_string_free(p) };
    }
}

/// One call of a C function of the header, made from inside the callback on `own` (the
/// callback's own provider).
type Call = fn(own: u64);

/// Every C function of the header, each called the way a host would. (`fork` is not a function
/// of the header, but a host may call it from the callback too: it is the last entry.)
const CALLS: &[(&str, Call)] = &[
    ("vault_provider_new", |_| {
        let cfg = cstr(&OWN_CONFIG.lock().unwrap());
        // SAFETY: a valid string.
        let h = unsafe { vault_provider_new(cfg.as_ptr()) };
        if h == 0 {
            fail("vault_provider_new from the callback failed".into());
        }
        vault_provider_free(h);
    }),
    ("vault_provider_free", |_| {
        let cfg = cstr(&OWN_CONFIG.lock().unwrap());
        // SAFETY: a valid string.
        let h = unsafe { vault_provider_new(cfg.as_ptr()) };
        if vault_provider_free(h) != 0 {
            fail("vault_provider_free from the callback failed".into());
        }
    }),
    ("vault_get_token", |own| {
        // SAFETY: freed once, by the library's own function.
        unsafe { vault_token_free(vault_get_token(own)) }
    }),
    ("vault_get_authorization", |own| {
        // SAFETY: as above.
        unsafe { vault_token_free(vault_get_authorization(own)) }
    }),
    ("vault_token_free", |_| {
        // SAFETY: NULL is allowed.
        unsafe { vault_token_free(std::ptr::null_mut()) }
    }),
    ("vault_invalidate", |own| {
        vault_invalidate(own);
    }),
    ("vault_last_error", |_| {
        vault_last_error();
    }),
    ("vault_last_oauth_error", |_| {
        vault_last_oauth_error();
    }),
    ("vault_last_status", |_| {
        vault_last_status();
    }),
    ("vault_status_name", |_| {
        vault_status_name(0);
    }),
    ("vault_key_memory_locked", |_| {
        vault_key_memory_locked();
    }),
    ("vault_set_refresh_workers", |_| {
        if vault_set_refresh_workers(4) != 0 {
            fail("vault_set_refresh_workers from the callback failed".into());
        }
    }),
    ("vault_set_refresh_workers_ex", |_| {
        let mut err = [0 as c_char; 256];
        // SAFETY: a valid buffer and its length.
        if unsafe { vault_set_refresh_workers_ex(4, err.as_mut_ptr(), err.len()) } != Status::Ok {
            fail("vault_set_refresh_workers_ex from the callback failed".into());
        }
    }),
    ("vault_set_refresh_endpoint_limit", |_| {
        if vault_set_refresh_endpoint_limit(2) != 0 {
            fail("vault_set_refresh_endpoint_limit from the callback failed".into());
        }
    }),
    ("vault_set_refresh_endpoint_limit_ex", |_| {
        let mut err = [0 as c_char; 256];
        // SAFETY: a valid buffer and its length.
        let st = unsafe { vault_set_refresh_endpoint_limit_ex(2, err.as_mut_ptr(), err.len()) };
        if st != Status::Ok {
            fail("vault_set_refresh_endpoint_limit_ex from the callback failed".into());
        }
    }),
    ("vault_version", |_| {
        vault_version();
    }),
    ("vault_provider_new_ex", |_| {
        let cfg = cstr(&OWN_CONFIG.lock().unwrap());
        let mut h = 0u64;
        let mut err = [0 as c_char; 256];
        // SAFETY: valid pointers and length.
        let s = unsafe { vault_provider_new_ex(cfg.as_ptr(), &mut h, err.as_mut_ptr(), err.len()) };
        if s != Status::Ok {
            fail("vault_provider_new_ex from the callback failed".into());
        }
        vault_provider_free(h);
    }),
    ("vault_get_token_ex", |own| {
        let mut out: *mut c_char = std::ptr::null_mut();
        let mut err = [0 as c_char; 256];
        // SAFETY: valid pointers; the token (if any) freed once.
        unsafe {
            vault_get_token_ex(own, &mut out, err.as_mut_ptr(), err.len());
            vault_token_free(out);
        }
    }),
    ("vault_get_authorization_ex", |own| {
        let mut out: *mut c_char = std::ptr::null_mut();
        let mut err = [0 as c_char; 256];
        // SAFETY: as above.
        unsafe {
            vault_get_authorization_ex(own, &mut out, err.as_mut_ptr(), err.len());
            vault_token_free(out);
        }
    }),
    ("vault_get_token_into", |own| {
        let mut buf = [0 as c_char; 4096];
        let mut len = 0usize;
        let mut err = [0 as c_char; 256];
        // SAFETY: valid buffers and lengths.
        unsafe {
            vault_get_token_into(
                own,
                buf.as_mut_ptr(),
                buf.len(),
                &mut len,
                err.as_mut_ptr(),
                err.len(),
            )
        };
    }),
    ("vault_get_authorization_into", |own| {
        let mut buf = [0 as c_char; 4096];
        let mut len = 0usize;
        let mut err = [0 as c_char; 256];
        // SAFETY: as above.
        unsafe {
            vault_get_authorization_into(
                own,
                buf.as_mut_ptr(),
                buf.len(),
                &mut len,
                err.as_mut_ptr(),
                err.len(),
            )
        };
    }),
    ("vault_try_get_token_into", |own| {
        let mut buf = [0 as c_char; 4096];
        let mut len = 0usize;
        let mut err = [0 as c_char; 256];
        // SAFETY: as above.
        unsafe {
            vault_try_get_token_into(
                own,
                buf.as_mut_ptr(),
                buf.len(),
                &mut len,
                err.as_mut_ptr(),
                err.len(),
            )
        };
    }),
    ("vault_try_get_authorization_into", |own| {
        let mut buf = [0 as c_char; 4096];
        let mut len = 0usize;
        let mut err = [0 as c_char; 256];
        // SAFETY: as above.
        unsafe {
            vault_try_get_authorization_into(
                own,
                buf.as_mut_ptr(),
                buf.len(),
                &mut len,
                err.as_mut_ptr(),
                err.len(),
            )
        };
    }),
    ("vault_try_fill_token", |own| {
        let mut buf = [0 as c_char; 4096];
        // SAFETY: zeroed is a valid vault_fill (all integers and pointers).
        let mut fill: VaultFill = unsafe { std::mem::zeroed() };
        fill.provider = own;
        fill.buf = buf.as_mut_ptr();
        fill.buf_len = buf.len();
        // SAFETY: the fill points at a live buffer of `cap` bytes.
        unsafe { vault_try_fill_token(&mut fill) };
    }),
    ("vault_try_fill_authorization", |own| {
        let mut buf = [0 as c_char; 4096];
        // SAFETY: as above.
        let mut fill: VaultFill = unsafe { std::mem::zeroed() };
        fill.provider = own;
        fill.buf = buf.as_mut_ptr();
        fill.buf_len = buf.len();
        // SAFETY: as above.
        unsafe { vault_try_fill_authorization(&mut fill) };
    }),
    ("vault_invalidate_token", |own| {
        let t = c"not-the-token";
        let mut err = [0 as c_char; 256];
        // SAFETY: valid pointers and lengths.
        unsafe {
            vault_invalidate_token(own, t.as_ptr(), err.as_mut_ptr(), err.len());
            vault_invalidate_token(own, std::ptr::null(), err.as_mut_ptr(), err.len());
        }
    }),
    ("vault_token_remaining_ms", |own| {
        let t = c"not-the-token";
        let mut ms = 0u64;
        let mut err = [0 as c_char; 256];
        // SAFETY: valid pointers and lengths.
        unsafe { vault_token_remaining_ms(own, t.as_ptr(), &mut ms, err.as_mut_ptr(), err.len()) };
    }),
    ("vault_load_config", |_| {
        let path = cstr(&CONFIG_PATH.lock().unwrap());
        // SAFETY: a valid string.
        if unsafe { vault_load_config(path.as_ptr()) } != Status::Ok {
            fail("vault_load_config from the callback failed".into());
        }
    }),
    ("vault_load_config_ex", |_| {
        let path = cstr(&CONFIG_PATH.lock().unwrap());
        let mut err = [0 as c_char; 256];
        // SAFETY: a valid string, buffer and length.
        if unsafe { vault_load_config_ex(path.as_ptr(), err.as_mut_ptr(), err.len()) } != Status::Ok
        {
            fail("vault_load_config_ex from the callback failed".into());
        }
    }),
    ("vault_reload_config", |_| {
        if vault_reload_config() != Status::Ok {
            fail("vault_reload_config from the callback failed".into());
        }
    }),
    ("vault_reload_config_ex", |_| {
        let mut err = [0 as c_char; 256];
        // SAFETY: a valid buffer and its length.
        if unsafe { vault_reload_config_ex(err.as_mut_ptr(), err.len()) } != Status::Ok {
            fail("vault_reload_config_ex from the callback failed".into());
        }
    }),
    ("vault_provider_by_name", |_| {
        let name = cstr("reentry");
        // SAFETY: a valid string.
        if unsafe { vault_provider_by_name(name.as_ptr()) } == 0 {
            fail("vault_provider_by_name from the callback found nothing".into());
        }
    }),
    ("vault_provider_by_name_ex", |_| {
        let name = cstr("reentry");
        let (mut h, mut err) = (0u64, [0 as c_char; 256]);
        // SAFETY: a valid string, out pointer, buffer and length.
        let st = unsafe {
            vault_provider_by_name_ex(name.as_ptr(), &mut h, err.as_mut_ptr(), err.len())
        };
        if st != Status::Ok || h == 0 {
            fail("vault_provider_by_name_ex from the callback found nothing".into());
        }
    }),
    ("vault_stats_json", |own| take_string(vault_stats_json(own))),
    ("vault_stats_json_ex", |own| {
        let (mut p, mut err) = (std::ptr::null_mut(), [0 as c_char; 256]);
        // SAFETY: a valid out pointer, buffer and length.
        unsafe { vault_stats_json_ex(own, &mut p, err.as_mut_ptr(), err.len()) };
        take_string(p)
    }),
    ("vault_stats_all_json", |_| {
        take_string(vault_stats_all_json())
    }),
    ("vault_stats_all_json_ex", |_| {
        let (mut p, mut err) = (std::ptr::null_mut(), [0 as c_char; 256]);
        // SAFETY: a valid out pointer, buffer and length.
        unsafe { vault_stats_all_json_ex(&mut p, err.as_mut_ptr(), err.len()) };
        take_string(p)
    }),
    ("vault_metrics_prometheus", |_| {
        take_string(vault_metrics_prometheus())
    }),
    ("vault_metrics_prometheus_ex", |_| {
        let (mut p, mut err) = (std::ptr::null_mut(), [0 as c_char; 256]);
        // SAFETY: a valid out pointer, buffer and length.
        unsafe { vault_metrics_prometheus_ex(&mut p, err.as_mut_ptr(), err.len()) };
        take_string(p)
    }),
    ("vault_string_free", |_| {
        // SAFETY: NULL is allowed.
        unsafe { vault_string_free(std::ptr::null_mut()) }
    }),
    ("vault_set_log_callback", |_| {
        // The callback replaces itself (with itself): must not wait for its own call to end.
        // SAFETY: the same callback and userdata the test installed.
        if unsafe { vault_set_log_callback(Some(battery), 10, std::ptr::null_mut()) } != Status::Ok
        {
            fail("vault_set_log_callback from the callback failed".into());
        }
    }),
    ("fork", |_| fork_and_use_the_library()),
];

/// Forks from inside the callback; the child makes, uses and frees a provider (it must find no
/// lock held) and exits. The child runs under alarm(): a hang kills it and fails the test.
fn fork_and_use_the_library() {
    let cfg = cstr(&OWN_CONFIG.lock().unwrap());
    // SAFETY: the child only calls the library and _exit()s.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: plain calls in the child, which ends with _exit.
        unsafe {
            libc::alarm(20);
            let h = vault_provider_new(cfg.as_ptr());
            let s = vault_stats_all_json();
            let ok = h != 0 && !s.is_null() && vault_provider_free(h) == 0;
            vault_string_free(s);
            libc::_exit(if ok { 0 } else { 3 });
        }
    }
    if pid < 0 {
        fail("fork from the callback failed".into());
        return;
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        fail(format!(
            "the child forked from the callback ended with status {status:#x}"
        ));
    }
}

/// The test's log callback: the first time each event kind arrives from each entry point, calls
/// every function of [`CALLS`].
unsafe extern "C" fn battery(_userdata: *mut c_void, _level: i32, event: *const c_char) {
    // SAFETY: the library passes a NUL-terminated string valid during the call.
    let text = unsafe { CStr::from_ptr(event) }
        .to_string_lossy()
        .into_owned();
    let v: Value = serde_json::from_str(&text).unwrap_or_default();
    let name = v["event"].as_str().unwrap_or("?").to_string();
    let entry = match ENTRY.with(Cell::get) {
        "" => "background refresh",
        e => e,
    };
    let key = (name.clone(), entry.to_string());
    if !COVERED.lock().unwrap().insert(key) {
        return;
    }
    note_where(format!(
        "vault_provider_new (its own provider) from inside {name} raised by {entry}"
    ));
    let own_cfg = cstr(&OWN_CONFIG.lock().unwrap());
    // SAFETY: a valid string.
    let own = unsafe { vault_provider_new(own_cfg.as_ptr()) };
    for (call, f) in CALLS {
        note_where(format!("{call} from inside {name} raised by {entry}"));
        f(own);
    }
    vault_provider_free(own);
    note_where(String::new());
}

/// The C functions `include/credvault.h` declares.
fn header_functions() -> BTreeSet<String> {
    let header =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/credvault.h"))
            .unwrap();
    let mut names = BTreeSet::new();
    for line in header
        .lines()
        .filter(|l| !l.trim_start().starts_with(['*', '/', '#']))
    {
        for (i, _) in line.match_indices("vault_") {
            let rest = &line[i..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let after = rest[end..].trim_start();
            let before = line[..i].trim_end();
            // A declaration: `type vault_name(`, not a call or a pointer parameter.
            if after.starts_with('(') && !before.is_empty() && !before.ends_with('(') {
                names.insert(rest[..end].to_string());
            }
        }
    }
    names
}

#[test]
fn every_c_function_of_the_header_is_called_from_the_callback() {
    let declared = header_functions();
    assert!(declared.len() >= 30, "{declared:?}");
    let called: BTreeSet<String> = CALLS
        .iter()
        .map(|(n, _)| n.to_string())
        .filter(|n| n != "fork")
        .collect();
    let missing: Vec<_> = declared.difference(&called).collect();
    let unknown: Vec<_> = called.difference(&declared).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "the callback battery must call every C function of the header: missing {missing:?}, not in the header {unknown:?}"
    );
}

/// Calls `f` as if from the C entry point `entry` (the callback reads it to know which entry
/// point raised its event).
fn from<R>(entry: &'static str, f: impl FnOnce() -> R) -> R {
    ENTRY.with(|e| e.set(entry));
    let r = f();
    ENTRY.with(|e| e.set("driver"));
    r
}

type Getter = unsafe fn(u64) -> Status;

/// The six C calls that fetch when nothing servable is cached.
const GETTERS: &[(&str, Getter)] = &[
    ("vault_get_token", |h| {
        // SAFETY: freed once.
        unsafe { vault_token_free(vault_get_token(h)) };
        vault_last_status()
    }),
    ("vault_get_authorization", |h| {
        // SAFETY: freed once.
        unsafe { vault_token_free(vault_get_authorization(h)) };
        vault_last_status()
    }),
    ("vault_get_token_ex", |h| {
        let mut out: *mut c_char = std::ptr::null_mut();
        // SAFETY: valid pointers; the token freed once.
        unsafe {
            let s = vault_get_token_ex(h, &mut out, std::ptr::null_mut(), 0);
            vault_token_free(out);
            s
        }
    }),
    ("vault_get_authorization_ex", |h| {
        let mut out: *mut c_char = std::ptr::null_mut();
        // SAFETY: as above.
        unsafe {
            let s = vault_get_authorization_ex(h, &mut out, std::ptr::null_mut(), 0);
            vault_token_free(out);
            s
        }
    }),
    ("vault_get_token_into", |h| {
        let mut buf = [0 as c_char; 4096];
        let mut len = 0usize;
        // SAFETY: a valid buffer.
        unsafe {
            vault_get_token_into(
                h,
                buf.as_mut_ptr(),
                buf.len(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        }
    }),
    ("vault_get_authorization_into", |h| {
        let mut buf = [0 as c_char; 4096];
        let mut len = 0usize;
        // SAFETY: a valid buffer.
        unsafe {
            vault_get_authorization_into(
                h,
                buf.as_mut_ptr(),
                buf.len(),
                &mut len,
                std::ptr::null_mut(),
                0,
            )
        }
    }),
];

fn provider(cfg: &Value) -> u64 {
    let c = cstr(&cfg.to_string());
    // SAFETY: a valid string.
    let h = unsafe { vault_provider_new(c.as_ptr()) };
    assert_ne!(h, 0, "{cfg}");
    h
}

/// The scenario: raises every event kind from every C entry point that can raise it, and a
/// background refresh's events on a worker. Returns the (event, entry point) pairs expected.
fn raise_every_event(idp: &Idp) -> BTreeSet<(String, String)> {
    let mut want = BTreeSet::new();
    let mut expect = |event: &str, entry: &str| {
        want.insert((event.to_string(), entry.to_string()));
    };
    let secret = "reentry-secret-77";
    idp.add_client(json!({"dialect": "oauth", "client_id": "reentry", "client_secret": secret}));
    idp.add_client(json!({"dialect": "oauth", "client_id": "reentry-short", "client_secret": secret, "lifetime_s": 2}));
    let good = json!({"token_url": idp.url("/oauth/token"), "client_id": "reentry", "client_secret": secret});
    let bad = json!({"token_url": idp.url("/oauth/token"), "client_id": "reentry",
        "client_secret": "not-the-secret-1", "cooldown_ms": 300});
    *OWN_CONFIG.lock().unwrap() = good.to_string();

    let dir = std::env::temp_dir().join(format!("credvault-reentry-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("credvault.json");
    std::fs::write(&path, json!({"providers": {"reentry": good}}).to_string()).unwrap();
    *CONFIG_PATH.lock().unwrap() = path.to_str().unwrap().to_string();
    let c_path = cstr(path.to_str().unwrap());
    // SAFETY: a valid string.
    let s = from("vault_load_config", || unsafe {
        vault_load_config(c_path.as_ptr())
    });
    assert_eq!(s, Status::Ok);
    expect("config_loaded", "vault_load_config");
    assert_eq!(
        from("vault_reload_config", || vault_reload_config()),
        Status::Ok
    );
    expect("config_reloaded", "vault_reload_config");

    for &(entry, get) in GETTERS {
        // A fetch, and a fetch after a retried 503.
        let p = provider(&good);
        // SAFETY: a live handle.
        assert_eq!(from(entry, || unsafe { get(p) }), Status::Ok, "{entry}");
        expect("fetch_started", entry);
        expect("fetch_finished", entry);
        vault_invalidate(p);
        idp.fault(json!({"path": "/oauth/token", "status": 503, "count": 1}));
        // SAFETY: a live handle.
        assert_eq!(from(entry, || unsafe { get(p) }), Status::Ok, "{entry}");
        expect("retry", entry);
        vault_provider_free(p);
        // A failed fetch enters a cool-down; once it is over, the next call ends it.
        let b = provider(&bad);
        // SAFETY: a live handle.
        assert_ne!(from(entry, || unsafe { get(b) }), Status::Ok, "{entry}");
        expect("cooldown_entered", entry);
        std::thread::sleep(Duration::from_millis(400));
        // SAFETY: a live handle.
        from(entry, || unsafe { get(b) });
        expect("cooldown_ended", entry);
        vault_provider_free(b);
    }

    // A cool-down ended by the invalidate calls.
    let b = provider(
        &json!({"token_url": idp.url("/oauth/token"), "client_id": "reentry",
        "client_secret": "not-the-secret-1", "cooldown_ms": 60000}),
    );
    // SAFETY: a live handle.
    unsafe { GETTERS[0].1(b) };
    from("vault_invalidate", || vault_invalidate(b));
    expect("cooldown_ended", "vault_invalidate");
    // SAFETY: a live handle.
    unsafe { GETTERS[0].1(b) };
    let t = c"a-token-it-handed-out-before";
    // SAFETY: valid pointers.
    from("vault_invalidate_token", || unsafe {
        vault_invalidate_token(b, t.as_ptr(), std::ptr::null_mut(), 0)
    });
    expect("cooldown_ended", "vault_invalidate_token");
    vault_provider_free(b);

    // A background refresh that fails while the token is still served, then one that fails
    // past the serving limit (its requests outlast the token): a cool-down it entered.
    let short = json!({"token_url": idp.url("/oauth/token"), "client_id": "reentry-short",
        "client_secret": secret, "refresh_jitter": 0.0, "timeout_ms": 3000, "deadline_ms": 3000});
    for (fault, events) in [
        (
            json!({"path": "/oauth/token", "status": 400, "body": "{\"error\":\"invalid_request\"}", "count": 1000}),
            &["fetch_started", "fetch_finished", "refresh_failed"][..],
        ),
        (
            json!({"path": "/oauth/token", "status": 503, "delay_ms": 2500, "count": 1000}),
            &["cooldown_entered"][..],
        ),
    ] {
        let p = provider(&short);
        assert_eq!(
            from("vault_get_token", || unsafe { GETTERS[0].1(p) }),
            Status::Ok
        );
        idp.fault(fault);
        let until = Instant::now() + Duration::from_secs(30);
        // Hits past the refresh point queue the refresh; wait until its events came.
        while Instant::now() < until
            && !events.iter().all(|e| {
                COVERED
                    .lock()
                    .unwrap()
                    .contains(&(e.to_string(), "background refresh".to_string()))
            })
        {
            let mut buf = [0 as c_char; 4096];
            let mut len = 0usize;
            // SAFETY: a valid buffer.
            unsafe {
                vault_try_get_token_into(
                    p,
                    buf.as_mut_ptr(),
                    buf.len(),
                    &mut len,
                    std::ptr::null_mut(),
                    0,
                )
            };
            std::thread::sleep(Duration::from_millis(50));
        }
        for e in events {
            expect(e, "background refresh");
        }
        idp.clear_faults();
        vault_provider_free(p);
    }
    want
}

#[test]
fn no_library_lock_is_held_while_the_log_callback_runs() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let idp = Arc::new(Idp::start());
    // SAFETY: a function callable from any thread; no userdata.
    unsafe { vault_set_log_callback(Some(battery), 10, std::ptr::null_mut()) };
    let (tx, rx) = std::sync::mpsc::channel();
    let driver = idp.clone();
    std::thread::spawn(move || {
        ENTRY.with(|e| e.set("driver"));
        let _ = tx.send(raise_every_event(&driver));
    });
    let want = match rx.recv_timeout(HUNG_AFTER) {
        Ok(want) => want,
        Err(_) => panic!(
            "hung: a call from inside the log callback never returned ({})",
            WHERE.lock().unwrap_or_else(|e| e.into_inner())
        ),
    };
    // SAFETY: removing the callback.
    unsafe { vault_set_log_callback(None, 10, std::ptr::null_mut()) };
    let covered = COVERED.lock().unwrap().clone();
    let missing: Vec<_> = want.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "events not raised (event, entry point): {missing:?}"
    );
    let failed = FAILED.lock().unwrap();
    assert!(
        failed.is_empty(),
        "calls from the callback failed: {failed:?}"
    );
}

/// The state of one installed callback (its userdata).
#[derive(Default)]
struct Sink {
    /// Set once the call that replaced this callback returned.
    replaced: AtomicBool,
    /// Calls started after that.
    late: AtomicUsize,
    /// Calls running now.
    running: AtomicUsize,
}

unsafe extern "C" fn counting(userdata: *mut c_void, _level: i32, _event: *const c_char) {
    // SAFETY: the test keeps every Sink alive to the end.
    let sink = unsafe { &*(userdata as *const Sink) };
    sink.running.fetch_add(1, Ordering::SeqCst);
    if sink.replaced.load(Ordering::SeqCst) {
        sink.late.fetch_add(1, Ordering::SeqCst);
    }
    std::thread::yield_now();
    sink.running.fetch_sub(1, Ordering::SeqCst);
}

/// Once `vault_set_log_callback` returns, the callback it replaced is never entered
/// again and no call of it is still running (the host may free its userdata then).
#[test]
fn a_replaced_callback_is_never_entered_again() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let idp = Idp::start();
    let dir = std::env::temp_dir().join(format!("credvault-replaced-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("credvault.json");
    std::fs::write(
        &path,
        json!({"providers": {"r": {"token_url": idp.url("/oauth/token"),
            "client_id": "demo-oauth-client", "client_secret": "demo: secret+with%odd chars"}}})
        .to_string(),
    )
    .unwrap();
    let c_path = cstr(path.to_str().unwrap());
    // SAFETY: a valid string.
    assert_eq!(unsafe { vault_load_config(c_path.as_ptr()) }, Status::Ok);
    let stop = Arc::new(AtomicBool::new(false));
    let reloaders: Vec<_> = (0..4)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    vault_reload_config();
                }
            })
        })
        .collect();
    let mut sinks = Vec::new();
    let (mut late, mut running) = (0, 0);
    for _ in 0..2000 {
        let sink = Box::leak(Box::new(Sink::default()));
        let ud = sink as *mut Sink as *mut c_void;
        // SAFETY: the Sink lives to the end of the test.
        unsafe { vault_set_log_callback(Some(counting), 20, ud) };
        std::thread::yield_now();
        // SAFETY: removing it.
        unsafe { vault_set_log_callback(None, 20, std::ptr::null_mut()) };
        running += sink.running.load(Ordering::SeqCst);
        sink.replaced.store(true, Ordering::SeqCst);
        sinks.push(&*sink);
    }
    // Let the reloaders raise events a while longer: none may reach a replaced callback.
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    for r in reloaders {
        r.join().unwrap();
    }
    for s in &sinks {
        late += s.late.load(Ordering::SeqCst);
    }
    assert_eq!(
        running, 0,
        "calls of a replaced callback still running after the replacing call returned"
    );
    assert_eq!(
        late, 0,
        "calls of a replaced callback started after the replacing call returned"
    );
}

/// A replaced callback is freed, not leaked (the census counts installed sinks).
#[test]
fn replaced_callbacks_are_freed() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let before = credvault::census::log_sinks();
    for _ in 0..10_000 {
        // SAFETY: a callback that ignores its userdata.
        unsafe { vault_set_log_callback(Some(counting_none), 20, std::ptr::null_mut()) };
        // SAFETY: removing it.
        unsafe { vault_set_log_callback(None, 20, std::ptr::null_mut()) };
    }
    let after = credvault::census::log_sinks();
    assert!(
        after <= before.max(1),
        "log sinks alive: {before} before, {after} after 10,000 set/unset pairs"
    );
}

unsafe extern "C" fn counting_none(_: *mut c_void, _: i32, _: *const c_char) {}

static LEVELS: Mutex<Vec<(i32, String)>> = Mutex::new(Vec::new());

unsafe extern "C" fn record_levels(_: *mut c_void, level: i32, event: *const c_char) {
    // SAFETY: a NUL-terminated string valid during the call.
    let text = unsafe { CStr::from_ptr(event) }
        .to_string_lossy()
        .into_owned();
    let v: Value = serde_json::from_str(&text).unwrap();
    LEVELS
        .lock()
        .unwrap()
        .push((level, v["event"].as_str().unwrap().to_string()));
}

/// At `min_level` 30 a failed fetch's `fetch_finished` (a warning) arrives;
/// at 50 nothing does, not even an error; every delivered event is at `min_level` or above.
#[test]
fn min_level_is_what_the_callback_gets() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let idp = Idp::start();
    let bad = provider(&json!({"token_url": idp.url("/oauth/token"),
        "client_id": "demo-oauth-client", "client_secret": "wrong-secret-26"}));
    let missing = cstr("/nonexistent/credvault-26.json");
    for min in [30, 41, 50] {
        LEVELS.lock().unwrap().clear();
        // SAFETY: a function callable from any thread.
        unsafe { vault_set_log_callback(Some(record_levels), min, std::ptr::null_mut()) };
        vault_invalidate(bad);
        // SAFETY: freed once.
        unsafe { vault_token_free(vault_get_token(bad)) };
        // A failed load: an error event (40).
        // SAFETY: a valid string.
        assert_ne!(unsafe { vault_load_config(missing.as_ptr()) }, Status::Ok);
        // SAFETY: removing it.
        unsafe { vault_set_log_callback(None, 10, std::ptr::null_mut()) };
        let got = LEVELS.lock().unwrap().clone();
        assert!(
            got.iter().all(|(l, _)| *l >= min),
            "min_level {min} got {got:?}"
        );
        if min == 30 {
            assert!(
                got.contains(&(30, "fetch_finished".into())),
                "min_level 30: no failed fetch_finished in {got:?}"
            );
            assert!(got.contains(&(30, "cooldown_entered".into())), "{got:?}");
            assert!(got.contains(&(40, "config_loaded".into())), "{got:?}");
        }
    }
    vault_provider_free(bad);
}

static SEEN: Mutex<Vec<Value>> = Mutex::new(Vec::new());

fn record_all() {
    SEEN.lock().unwrap().clear();
    credvault::events::set_hook(
        Some(Box::new(|_, json: &str| {
            SEEN.lock()
                .unwrap()
                .push(serde_json::from_str(json).unwrap());
        })),
        credvault::events::Level::Debug,
    );
}

fn seen(event: &str) -> usize {
    SEEN.lock()
        .unwrap()
        .iter()
        .filter(|e| e["event"] == event)
        .count()
}

/// A background refresh that fails past the token's serving limit enters a
/// cool-down, and the cache reports it (`cooldown_entered`), whoever ran the fetch.
#[test]
fn a_cooldown_entered_by_a_background_refresh_is_reported() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let idp = Idp::start();
    idp.add_client(json!({"dialect": "oauth", "client_id": "bg-cool", "client_secret": "bg-cool-secret-1", "lifetime_s": 2}));
    record_all();
    let p = credvault::Provider::new(
        &json!({"token_url": idp.url("/oauth/token"), "client_id": "bg-cool",
            "client_secret": "bg-cool-secret-1", "refresh_jitter": 0.0, "timeout_ms": 3000,
            "deadline_ms": 3000, "cooldown_ms": 60000})
        .to_string(),
    )
    .unwrap();
    p.token().unwrap();
    // Every request answers 503 after 2.5 s: the refresh outlasts the token (served 1.8 s).
    idp.fault(json!({"path": "/oauth/token", "status": 503, "delay_ms": 2500, "count": 1000}));
    let until = Instant::now() + Duration::from_secs(30);
    let mut cooling = false;
    while Instant::now() < until && !cooling {
        // Hits only: past the refresh point one queues the background refresh.
        if p.schedule().is_some_and(|(_, _, serve)| !serve.is_zero()) {
            let _ = p.token();
        }
        cooling = p.stats().cooldown_remaining_ms.is_some();
        std::thread::sleep(Duration::from_millis(50));
    }
    idp.clear_faults();
    credvault::events::set_hook(None, credvault::events::Level::Debug);
    assert!(
        cooling,
        "the failed background refresh entered no cool-down"
    );
    assert_eq!(
        seen("cooldown_entered"),
        1,
        "events: {:?}",
        SEEN.lock().unwrap()
    );
}

/// During a cool-down, invalidating with the token handed out before it (no longer
/// cached) ends the cool-down, in the Rust API and through `vault_invalidate_token`.
#[test]
fn invalidate_token_ends_a_cooldown() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let idp = Idp::start();
    let cfg = json!({"token_url": idp.url("/oauth/token"), "client_id": "demo-oauth-client",
        "client_secret": "demo: secret+with%odd chars", "cooldown_ms": 60000});
    // The Rust API.
    let p = credvault::Provider::new(&cfg.to_string()).unwrap();
    let old = p.token().unwrap();
    p.invalidate();
    idp.fault(json!({"path": "/oauth/token", "status": 400,
        "body": "{\"error\":\"invalid_client\"}", "count": 1}));
    assert!(p.token().is_err());
    assert!(p.stats().cooldown_remaining_ms.is_some(), "in a cool-down");
    assert!(
        p.token().is_err(),
        "still cooling down without an invalidate"
    );
    p.invalidate_token(old.secret());
    let new = p
        .token()
        .expect("the cool-down was ended by invalidate_token");
    assert_ne!(new.secret(), old.secret());
    // The C ABI.
    let h = provider(&cfg);
    // SAFETY: freed once.
    let old = unsafe {
        let t = vault_get_token(h);
        assert!(!t.is_null());
        let s = CStr::from_ptr(t).to_owned();
        vault_token_free(t);
        s
    };
    vault_invalidate(h);
    idp.fault(json!({"path": "/oauth/token", "status": 400,
        "body": "{\"error\":\"invalid_client\"}", "count": 1}));
    // SAFETY (these three): a live handle.
    assert_ne!(unsafe { GETTERS[0].1(h) }, Status::Ok);
    assert_ne!(unsafe { GETTERS[0].1(h) }, Status::Ok, "cooling down");
    // SAFETY: a valid string.
    let s = unsafe { vault_invalidate_token(h, old.as_ptr(), std::ptr::null_mut(), 0) };
    assert_eq!(s, Status::Ok);
    assert_eq!(
        unsafe { GETTERS[0].1(h) },
        Status::Ok,
        "the cool-down was ended by vault_invalidate_token"
    );
    vault_provider_free(h);
}
