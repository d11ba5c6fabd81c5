//! A child of fork() can use the library at once: no lock left held by a vanished thread, no
//! fetch in flight that never ends, no connection shared with the parent, no wait structure that
//! still lists the parent's threads.
//!
//! Every child runs under `alarm()`: a child that hangs is killed by SIGALRM and the test fails
//! instead of hanging.

mod common;

use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::Idp;
use credvault::ffi;
use credvault::Provider;
use serde_json::json;

/// Seconds a child may take before SIGALRM ends it (and the test fails).
const CHILD_TIMEOUT_S: u32 = 10;

/// Forks; the child runs `f` under an alarm and `_exit`s with its code. Returns how the child
/// ended: `Ok(())` for exit 0, else a description.
fn in_child(f: impl FnOnce() -> i32) -> Result<(), String> {
    // SAFETY: the child only runs `f` (library calls) and then _exit()s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // The test binary's log hook (tests/common) checks each event under a std Mutex of its
        // own, which another test's thread may have held at the fork: in the child it would stay
        // held for good. A host's callback that takes its own locks is the host's to make
        // fork-safe (docs/ARCHITECTURE.md, fork()); the child runs without one.
        credvault::events::set_hook(None, credvault::events::Level::Debug);
        // SAFETY: plain system calls in the child.
        unsafe {
            libc::alarm(CHILD_TIMEOUT_S);
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(101);
            libc::_exit(code);
        }
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid, "waitpid");
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        return Err(if sig == libc::SIGALRM {
            format!("child hung (killed by the {CHILD_TIMEOUT_S} s alarm)")
        } else {
            format!("child killed by signal {sig}")
        });
    }
    match libc::WEXITSTATUS(status) {
        0 => Ok(()),
        code => Err(format!("child exited with {code}")),
    }
}

fn config(idp: &Idp, id: &str) -> String {
    idp.add_client(json!({"dialect": "oauth", "client_id": id, "client_secret": "fork-secret"}));
    json!({"token_url": idp.url("/oauth/token"), "client_id": id, "client_secret": "fork-secret",
        "deadline_ms": 5000})
    .to_string()
}

fn c_new(cfg: &str) -> u64 {
    let c = CString::new(cfg).unwrap();
    // SAFETY: a NUL-terminated string that outlives the call.
    unsafe { ffi::vault_provider_new(c.as_ptr()) }
}

/// `vault_get_token` succeeded (the string is freed at once).
fn c_token_ok(h: u64) -> bool {
    let t = ffi::vault_get_token(h);
    if t.is_null() {
        return false;
    }
    // SAFETY: a string this library returned, freed once.
    unsafe { ffi::vault_token_free(t) };
    true
}

#[test]
fn child_gets_tokens_after_fork_even_with_a_fetch_in_flight() {
    let idp = Idp::start();
    let cached = Provider::new(&config(&idp, "fork-cached")).unwrap();
    let t1 = cached.token().unwrap().secret().to_string();
    let busy = Provider::new(&config(&idp, "fork-busy")).unwrap();
    // A parent thread is blocked in a slow fetch when the process forks.
    idp.fault(json!({"path": "/oauth/token", "kind": "delay", "delay_ms": 1500}));
    let b = busy.clone();
    let parent_fetch = thread::spawn(move || b.token().map(|t| t.secret().len()));
    thread::sleep(Duration::from_millis(300));

    let child_cfg = config(&idp, "fork-child");
    let result = in_child(|| {
        let ok_cached = cached.token().map(|t| t.secret() == t1).unwrap_or(false);
        let ok_busy = busy.token().is_ok();
        let ok_new = Provider::new(&child_cfg).is_ok();
        if ok_cached && ok_busy && ok_new {
            0
        } else {
            1
        }
    });
    assert_eq!(result, Ok(()), "child could not get tokens");
    assert!(
        parent_fetch.join().unwrap().is_ok(),
        "the parent's fetch completes too"
    );
    assert!(
        cached.token().unwrap().secret() == t1,
        "parent cache intact"
    );
}

/// Trigger A: a parent thread is fetching from a slow endpoint and three more threads
/// are waiting for that fetch (on the flight condition variable) when the main thread forks. In
/// the child, get a token, invalidate it, and get one again: each call must complete.
#[test]
fn child_completes_after_fork_while_a_thread_waits_for_a_fetch() {
    let idp = Idp::start();
    let h = c_new(&config(&idp, "fork-trigger-a"));
    assert_ne!(h, 0);
    let mut failures = Vec::new();
    for round in 0..3 {
        assert_eq!(ffi::vault_invalidate(h), 0);
        idp.fault(json!({"path": "/oauth/token", "kind": "delay", "delay_ms": 1500}));
        let fetching = thread::spawn(move || c_token_ok(h));
        thread::sleep(Duration::from_millis(150));
        let waiting: Vec<_> = (0..3)
            .map(|_| thread::spawn(move || c_token_ok(h)))
            .collect();
        thread::sleep(Duration::from_millis(150));
        // Several forks while the fetch is in flight and the second thread waits for it.
        for fork in 0..4 {
            let r = in_child(|| {
                let a = c_token_ok(h);
                let b = ffi::vault_invalidate(h) == 0;
                let c = c_token_ok(h);
                i32::from(!a) | i32::from(!b) << 1 | i32::from(!c) << 2
            });
            if let Err(e) = r {
                failures.push(format!("round {round}, fork {fork}: {e}"));
            }
            thread::sleep(Duration::from_millis(100));
        }
        assert!(fetching.join().unwrap(), "the parent's fetch completes");
        for w in waiting {
            assert!(w.join().unwrap(), "the parent's waiters get its token");
        }
    }
    assert_eq!(ffi::vault_provider_free(h), 0);
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Trigger B: two threads call `vault_invalidate` in a loop and a third creates and
/// frees providers while the main thread forks again and again. Each child invalidates, creates
/// a provider and gets a token; every other child does nothing at all (as a child that only
/// calls exec), so the fork handlers themselves are tested too.
#[test]
fn children_complete_while_threads_invalidate_and_create_providers() {
    let idp = Idp::start();
    let cfg = config(&idp, "fork-trigger-b");
    let h = c_new(&cfg);
    assert_ne!(h, 0);
    assert!(c_token_ok(h));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for _ in 0..2 {
        let stop = stop.clone();
        threads.push(thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                ffi::vault_invalidate(h);
            }
        }));
    }
    {
        let stop = stop.clone();
        let cfg = cfg.clone();
        threads.push(thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let p = c_new(&cfg);
                assert_ne!(p, 0);
                assert_eq!(ffi::vault_provider_free(p), 0);
            }
        }));
    }
    let mut failures = Vec::new();
    for i in 0..300 {
        let r = if i % 2 == 0 {
            in_child(|| {
                let a = ffi::vault_invalidate(h) == 0;
                let p = c_new(&cfg);
                let b = p != 0 && c_token_ok(p) && ffi::vault_provider_free(p) == 0;
                let c = c_token_ok(h);
                i32::from(!a) | i32::from(!b) << 1 | i32::from(!c) << 2
            })
        } else {
            in_child(|| 0)
        };
        if let Err(e) = r {
            failures.push(format!("fork {i}: {e}"));
            if failures.len() == 3 {
                break;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(ffi::vault_provider_free(h), 0);
    assert!(failures.is_empty(), "children failed: {failures:#?}");
}

/// This process's locked memory in kB (`VmLck` in /proc/self/status).
fn vm_locked_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmLck:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Memory locks are not inherited by a child of fork(). The child locks the pages of
/// the keys it inherited again (they open every token cached before the fork), and
/// `vault_key_memory_locked` reports what is true in the child.
#[test]
fn child_locks_the_inherited_key_again() {
    let idp = Idp::start();
    // Making a provider seals its secret: a key exists.
    let p = Provider::new(&config(&idp, "fork-mlock")).unwrap();
    let parent = ffi::vault_key_memory_locked();
    assert!(parent == 0 || parent == 1, "{parent}");
    let r = in_child(|| {
        let reported = ffi::vault_key_memory_locked();
        let locked_kb = vm_locked_kb();
        // Reporting 1 with nothing locked is the defect; the child's limit is the parent's.
        let truthful = reported == 0 || (reported == 1 && locked_kb > 0);
        let same = reported == parent;
        i32::from(!truthful) | i32::from(!same) << 1
    });
    assert_eq!(r, Ok(()), "parent reported {parent}");
    drop(p);
}
