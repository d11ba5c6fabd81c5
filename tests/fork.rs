//! A child of fork() can use the library at once: no lock left held by a vanished thread, no
//! fetch in flight that never ends, no connection shared with the parent.

mod common;

use std::thread;
use std::time::Duration;

use common::Idp;
use credvault::Provider;
use serde_json::json;

#[test]
fn child_gets_tokens_after_fork_even_with_a_fetch_in_flight() {
    let idp = Idp::start();
    let cfg = |id: &str| {
        idp.add_client(
            json!({"dialect": "oauth", "client_id": id, "client_secret": "fork-secret"}),
        );
        json!({"token_url": idp.url("/oauth/token"), "client_id": id, "client_secret": "fork-secret",
            "deadline_ms": 5000})
        .to_string()
    };
    let cached = Provider::new(&cfg("fork-cached")).unwrap();
    let t1 = cached.token().unwrap().secret().to_string();
    let busy = Provider::new(&cfg("fork-busy")).unwrap();
    // A parent thread is blocked in a slow fetch when the process forks.
    idp.fault(json!({"path": "/oauth/token", "kind": "delay", "delay_ms": 1500}));
    let b = busy.clone();
    let parent_fetch = thread::spawn(move || b.token().map(|t| t.secret().len()));
    thread::sleep(Duration::from_millis(300));

    // SAFETY: the child only runs the library and then _exit()s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // In the child: a hang would be killed by the alarm and fail the parent's check.
        unsafe { libc::alarm(20) };
        let ok_cached = cached.token().map(|t| t.secret() == t1).unwrap_or(false);
        let ok_busy = busy.token().is_ok();
        let ok_new = Provider::new(&cfg_string_for_child()).is_ok();
        let code = if ok_cached && ok_busy && ok_new { 0 } else { 1 };
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status),
        "child did not exit normally (status {status})"
    );
    assert_eq!(libc::WEXITSTATUS(status), 0, "child could not get tokens");
    assert!(
        parent_fetch.join().unwrap().is_ok(),
        "the parent's fetch completes too"
    );
    assert!(
        cached.token().unwrap().secret() == t1,
        "parent cache intact"
    );
}

fn cfg_string_for_child() -> String {
    json!({"token_url": "http://127.0.0.1:9/t", "client_id": "c", "client_secret": "s"}).to_string()
}
