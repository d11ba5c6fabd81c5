//! The C ABI's per-thread memo of cached tokens (`ffi::Memo`): a thread that has been served a
//! token keeps a reference to it and serves its next calls without the registry or cache locks.
//! These tests check that the memo never outlives what it mirrors: a freed provider, an
//! invalidated token, a refreshed token, and more providers than a thread's memo holds. Every
//! test calls each handle at least three times first, so that its memo is filled (the first call
//! fetches, the second fills the memo through the registry, the third is served from it).

mod common;

use std::collections::HashSet;
use std::ffi::{CStr, CString};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::Idp;
use credvault::{ffi, Status};
use serde_json::json;

const SECRET: &str = "memo-secret";

fn provider(idp: &Idp, id: &str, lifetime_s: u64) -> u64 {
    idp.add_client(
        json!({"dialect": "oauth", "client_id": id, "client_secret": SECRET,
        "lifetime_s": lifetime_s}),
    );
    let cfg = json!({"token_url": idp.url("/oauth/token"), "client_id": id,
        "client_secret": SECRET, "refresh_ratio": 0.5, "refresh_jitter": 0.0});
    let cfg = CString::new(cfg.to_string()).unwrap();
    // SAFETY: a valid NUL-terminated string.
    let h = unsafe { ffi::vault_provider_new(cfg.as_ptr()) };
    assert_ne!(h, 0, "provider created");
    h
}

/// The C ABI from Rust: the token, or the failure status.
fn get(h: u64) -> Result<String, Status> {
    let ptr = ffi::vault_get_token(h);
    if ptr.is_null() {
        return Err(ffi::vault_last_status());
    }
    // SAFETY: a NUL-terminated string from vault_get_token, freed right after.
    let s = unsafe { CStr::from_ptr(ptr) }.to_str().unwrap().to_string();
    unsafe { ffi::vault_token_free(ptr) };
    Ok(s)
}

/// Calls `h` until this thread's memo surely holds its token; returns the token.
fn warm(h: u64) -> String {
    let t = get(h).unwrap();
    for _ in 0..4 {
        assert!(get(h).unwrap() == t, "the same cached token");
    }
    t
}

#[test]
fn a_freed_provider_is_an_invalid_handle_on_every_thread() {
    let idp = Idp::start();
    let h = provider(&idp, "freed", 3600);
    warm(h);
    // Another thread, with its own memo of the same token, waits while this one frees.
    let (freed_tx, freed_rx) = mpsc::channel();
    let (warm_tx, warm_rx) = mpsc::channel();
    let other = thread::spawn(move || {
        warm(h);
        warm_tx.send(()).unwrap();
        freed_rx.recv().unwrap();
        get(h)
    });
    warm_rx.recv().unwrap();
    assert_eq!(ffi::vault_provider_free(h), 0);
    freed_tx.send(()).unwrap();
    assert_eq!(get(h), Err(Status::InvalidHandle), "this thread");
    assert_eq!(
        other.join().unwrap(),
        Err(Status::InvalidHandle),
        "the other thread"
    );
    // A provider created afterwards (likely in the same registry slot) is a different handle,
    // and the old handle still does not reach it.
    let h2 = provider(&idp, "after", 3600);
    assert_ne!(h2, h);
    warm(h2);
    assert_eq!(get(h), Err(Status::InvalidHandle));
    assert_eq!(ffi::vault_provider_free(h2), 0);
}

#[test]
fn an_invalidated_token_is_not_served_from_any_memo() {
    let idp = Idp::start();
    let h = provider(&idp, "invalidated", 3600);
    let t1 = warm(h);
    let (go_tx, go_rx) = mpsc::channel();
    let (warm_tx, warm_rx) = mpsc::channel();
    let other = thread::spawn(move || {
        let mine = warm(h);
        warm_tx.send(()).unwrap();
        go_rx.recv().unwrap();
        (mine, get(h).unwrap())
    });
    warm_rx.recv().unwrap();
    // This thread invalidates the token it was served (its API answered 401) and gets a new one.
    assert_eq!(ffi::vault_invalidate(h), 0);
    let t2 = get(h).unwrap();
    assert!(t2 != t1, "a new token after invalidation");
    go_tx.send(()).unwrap();
    let (mine, after) = other.join().unwrap();
    assert!(mine == t1);
    assert!(
        after == t2,
        "the other thread's memo of the old token is void"
    );
    assert!(warm(h) == t2);
    assert_eq!(idp.tokens_issued(), 2);
    assert_eq!(ffi::vault_provider_free(h), 0);
}

#[test]
fn a_refreshed_token_replaces_the_memo() {
    let idp = Idp::start();
    // 3 s tokens: refresh point at 1.5 s; served until 2.7 s.
    let h = provider(&idp, "refreshed", 3);
    let start = Instant::now();
    let t1 = warm(h);
    // Call from one thread, every 5 ms, for 2.6 s: the thread's memo serves t1 until shortly
    // before the refresh point, the background refresh replaces it, and from the first call
    // that sees the new token on, the old one never comes back.
    let mut seen = vec![t1.clone()];
    let mut calls = 0;
    while start.elapsed() < Duration::from_millis(2600) {
        let t = get(h).expect("no call fails while a token is valid");
        if t != *seen.last().unwrap() {
            assert!(!seen.contains(&t), "an older token came back");
            seen.push(t);
        }
        calls += 1;
        thread::sleep(Duration::from_millis(5));
    }
    assert!(calls > 100, "{calls} calls");
    assert_eq!(
        seen.len(),
        2,
        "one refresh in 2.6 s, seen by the memo'd thread"
    );
    assert_eq!(idp.tokens_issued(), 2);
    assert_eq!(ffi::vault_provider_free(h), 0);
}

#[test]
fn a_memo_never_serves_a_token_past_its_serving_limit() {
    let idp = Idp::start();
    // 2 s tokens: refresh point at 1 s, served until 1.8 s after the request.
    let h = provider(&idp, "expiring", 2);
    let t1 = get(h).unwrap();
    // The request was sent before this point, so the token's serving limit is before this + 1.8 s.
    let limit = Instant::now() + Duration::from_millis(1800);
    warm(h);
    // Every refresh fails from now on: nothing replaces the token, and no version changes.
    idp.fault(json!({"path": "/oauth/token", "status": 503, "count": 0}));
    let mut served = 0;
    let mut failed = 0;
    while Instant::now() < limit + Duration::from_millis(700) {
        let asked = Instant::now();
        match get(h) {
            Ok(t) => {
                assert!(t == t1);
                assert!(
                    asked < limit,
                    "served {:?} past the serving limit",
                    asked - limit
                );
                served += 1;
            }
            Err(_) => failed += 1,
        }
        thread::sleep(Duration::from_millis(5));
    }
    assert!(served > 50, "{served} calls served before the limit");
    assert!(failed > 0, "calls after the limit fail");
    assert_eq!(ffi::vault_provider_free(h), 0);
}

#[test]
fn more_providers_than_a_memo_holds_each_get_their_own_token() {
    let idp = Idp::start();
    // 20 providers, more than the 8 a thread's memo keeps, called round-robin.
    let handles: Vec<u64> = (0..20)
        .map(|i| provider(&idp, &format!("many-{i}"), 3600))
        .collect();
    let first: Vec<String> = handles.iter().map(|&h| get(h).unwrap()).collect();
    assert_eq!(
        first.iter().collect::<HashSet<_>>().len(),
        20,
        "a distinct token per provider"
    );
    for _ in 0..5 {
        for (i, &h) in handles.iter().enumerate() {
            assert!(
                get(h).unwrap() == first[i],
                "provider {i} served its own token"
            );
        }
        // The last few over and over: these come from the memo.
        for (i, &h) in handles.iter().enumerate().skip(15) {
            assert!(
                get(h).unwrap() == first[i],
                "provider {i} served its own token"
            );
        }
    }
    assert_eq!(idp.tokens_issued(), 20);
    // Freeing one leaves the others' memo entries working.
    assert_eq!(ffi::vault_provider_free(handles[17]), 0);
    assert_eq!(get(handles[17]), Err(Status::InvalidHandle));
    for (i, &h) in handles.iter().enumerate() {
        if i != 17 {
            assert!(get(h).unwrap() == first[i]);
            assert_eq!(ffi::vault_provider_free(h), 0);
        }
    }
}

/// Another thread replaces `p`'s token (as a thread that saw a 401 first does); the new token.
fn replaced_elsewhere(p: u64) -> String {
    thread::spawn(move || {
        // SAFETY: NULL token and error buffer, as the contract allows.
        let s =
            unsafe { ffi::vault_invalidate_token(p, std::ptr::null(), std::ptr::null_mut(), 0) };
        assert_eq!(s, Status::Ok);
        get(p).unwrap()
    })
    .join()
    .unwrap()
}

/// `vault_invalidate` drops the token this thread was last served by a provider, and
/// a thread remembers that for the 64 providers that served it most recently: being served again
/// makes a provider the most recent, and it is forgotten only once 64 others served the thread
/// after it. Before the fix the table was first-in-first-out (the sequence below dropped
/// the newer token).
#[test]
fn vault_invalidate_remembers_the_64_most_recently_served_providers() {
    let idp = Idp::start();
    let others: Vec<u64> = (0..64)
        .map(|i| provider(&idp, &format!("mru-other-{i}"), 3600))
        .collect();

    // The sequence: P, 63 others, P again, (P replaced elsewhere), one more provider.
    let p = provider(&idp, "mru-p", 3600);
    let t1 = get(p).unwrap();
    for &o in &others[..63] {
        get(o).unwrap();
    }
    assert!(get(p).unwrap() == t1, "still cached");
    let t2 = replaced_elsewhere(p);
    assert!(t2 != t1);
    get(others[63]).unwrap();
    assert_eq!(ffi::vault_invalidate(p), 0);
    assert!(
        get(p).unwrap() == t2,
        "a late invalidate of t1 left the newer token alone"
    );

    // The boundary: 63 other providers since Q served this thread, Q is remembered ...
    let q = provider(&idp, "mru-q", 3600);
    get(q).unwrap();
    for &o in &others[..63] {
        get(o).unwrap();
    }
    let q2 = replaced_elsewhere(q);
    assert_eq!(ffi::vault_invalidate(q), 0);
    assert!(get(q).unwrap() == q2, "63 others since: remembered");
    // ... 64 others since, it is forgotten: invalidate drops whatever is cached.
    for &o in &others {
        get(o).unwrap();
    }
    let q3 = replaced_elsewhere(q);
    assert_eq!(ffi::vault_invalidate(q), 0);
    let q4 = get(q).unwrap();
    assert!(
        q4 != q3,
        "64 others since: forgotten, the cached token was dropped"
    );

    for h in others.into_iter().chain([p, q]) {
        assert_eq!(ffi::vault_provider_free(h), 0);
    }
}

/// `vault_invalidate` drops the token this thread was served last, also when the provider that
/// served it is already the thread's most recent one and served it an older token just before
/// (the usual call, served the same token again, leaves the thread's table as it is; a new token
/// from the same provider must still be written into it).
#[test]
fn vault_invalidate_drops_the_newer_token_of_the_most_recent_provider() {
    let idp = Idp::start();
    let p = provider(&idp, "latest-p", 3600);
    let t1 = warm(p);
    let t2 = replaced_elsewhere(p);
    assert!(t2 != t1);
    assert!(
        get(p).unwrap() == t2,
        "this thread is served the newer token"
    );
    assert!(get(p).unwrap() == t2, "and again (nothing to note)");
    assert_eq!(ffi::vault_invalidate(p), 0);
    assert!(
        get(p).unwrap() != t2,
        "the token this thread was served last was dropped"
    );
    assert_eq!(ffi::vault_provider_free(p), 0);
}
