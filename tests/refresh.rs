//! Refresh ahead of expiry, single flight, static stability, retries, cool-down and coalesced
//! invalidation, against the local identity provider.

mod common;

use std::ffi::CStr;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use common::Idp;
use credvault::{ffi, Provider, Status};
use serde_json::{json, Value};

const SECRET: &str = "short-lived-secret";

/// An `oauth` client whose tokens live `lifetime_s` seconds, and a provider config for it.
fn short_lived(idp: &Idp, id: &str, lifetime_s: u64, extra: Value) -> Value {
    idp.add_client(json!({"dialect": "oauth", "client_id": id, "client_secret": SECRET, "lifetime_s": lifetime_s}));
    let mut cfg = json!({"token_url": idp.url("/oauth/token"), "client_id": id, "client_secret": SECRET,
        "refresh_ratio": 0.5, "refresh_jitter": 0.0});
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    cfg
}

/// A provider for a fresh client, configured as `short_lived` says.
fn short_lived_provider(idp: &Idp, id: &str, lifetime_s: u64, extra: Value) -> Provider {
    Provider::new(&short_lived(idp, id, lifetime_s, extra).to_string()).unwrap()
}

fn sleep_until(t: Instant) {
    thread::sleep(t.saturating_duration_since(Instant::now()));
}

#[test]
fn stampede_on_empty_cache_makes_one_request() {
    let idp = Idp::start();
    let p = short_lived_provider(&idp, "stampede", 3600, json!({}));
    // Slow the endpoint so every thread arrives while the one fetch is in flight.
    idp.fault(json!({"path": "/oauth/token", "kind": "delay", "delay_ms": 300}));
    let barrier = Arc::new(Barrier::new(64));
    let handles: Vec<_> = (0..64)
        .map(|_| {
            let (p, b) = (p.clone(), barrier.clone());
            thread::spawn(move || {
                b.wait();
                p.token().unwrap().secret().to_string()
            })
        })
        .collect();
    let tokens: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert!(
        tokens.iter().all(|t| *t == tokens[0]),
        "every thread got the same token"
    );
    assert_eq!(idp.token_requests(), 1, "64 threads, one token request");
}

#[test]
fn past_the_refresh_point_callers_get_the_old_token_without_waiting() {
    let idp = Idp::start();
    // 4 s tokens: refresh point at 2 s, served until 3.6 s (margin capped at a tenth).
    let p = short_lived_provider(&idp, "boundary", 4, json!({}));
    let start = Instant::now();
    let t1 = p.token().unwrap().secret().to_string();
    idp.fault(json!({"path": "/oauth/token", "kind": "delay", "delay_ms": 2000}));
    sleep_until(start + Duration::from_millis(2100));
    // The first call past the refresh point starts the background refresh, which takes 2 s.
    // Had it waited, it would have returned the new token, after 4.1 s.
    let mut calls = 0;
    while start.elapsed() < Duration::from_millis(3300) {
        assert!(
            p.token().unwrap().secret() == t1,
            "old token served during the refresh"
        );
        calls += 1;
        thread::sleep(Duration::from_millis(20));
    }
    assert!(calls > 10);
    assert_eq!(
        idp.token_requests(),
        2,
        "exactly one background refresh for all those calls"
    );
    // Past the serving limit, callers join the refresh in flight instead of starting another.
    sleep_until(start + Duration::from_millis(3700));
    let t2 = p.token().unwrap().secret().to_string();
    assert!(t2 != t1, "the refreshed token");
    assert_eq!(idp.token_requests(), 2);
    assert!(p.token().unwrap().secret() == t2, "now cached");
}

#[test]
fn static_stability_no_call_fails_while_the_token_is_valid() {
    let idp = Idp::start();
    let p = short_lived_provider(
        &idp,
        "stable",
        4,
        // A deadline with room for several 503 answers even on a loaded CI machine: with 800 ms
        // every attempt could time out and the call end TIMEOUT instead of the endpoint's status.
        json!({"deadline_ms": 2000, "cooldown_ms": 0}),
    );
    let start = Instant::now();
    let t1 = p.token().unwrap().secret().to_string();
    // The endpoint fails for the whole refresh window.
    idp.fault(json!({"path": "/oauth/token", "status": 503, "count": 0}));
    let mut calls = 0;
    while start.elapsed() < Duration::from_millis(3400) {
        let t = p.token().expect("no call fails while a valid token exists");
        assert!(t.secret() == t1, "the cached token");
        calls += 1;
        thread::sleep(Duration::from_millis(10));
    }
    assert!(calls > 100);
    assert!(
        idp.token_requests() >= 2,
        "refresh was attempted (and retried)"
    );
    // Once nothing servable is left, the failure is reported.
    sleep_until(start + Duration::from_millis(3700));
    let e = p.token().unwrap_err();
    assert_eq!(e.status(), Status::HttpStatus, "{e}");
    // And when the endpoint recovers, the next call fetches.
    idp.clear_faults();
    assert!(p.token().unwrap().secret() != t1, "a new token");
}

#[test]
fn retry_after_is_honoured() {
    let idp = Idp::start();
    let p = short_lived_provider(&idp, "retry-after", 3600, json!({}));
    idp.fault(json!({"path": "/oauth/token", "status": 503, "retry_after": "1"}));
    let started = Instant::now();
    p.token().unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "waited for Retry-After"
    );
    assert_eq!(idp.token_requests(), 2);

    // A Retry-After beyond the deadline: give up at once with a rate-limit status.
    let q = short_lived_provider(&idp, "retry-after-2", 3600, json!({"deadline_ms": 2000}));
    idp.reset();
    idp.fault(json!({"path": "/oauth/token", "status": 429, "retry_after": "30"}));
    let e = q.token().unwrap_err();
    assert_eq!(e.status(), Status::RateLimited, "{e}");
    assert!(e.message().contains("Retry-After"), "{e}");
    assert_eq!(idp.token_requests(), 1);

    // An HTTP date works too.
    let r = short_lived_provider(&idp, "retry-after-3", 3600, json!({}));
    idp.reset();
    idp.fault(json!({"path": "/oauth/token", "status": 503, "retry_after": "Sun, 06 Nov 1994 08:49:37 GMT"}));
    r.token().unwrap();
    assert_eq!(idp.token_requests(), 2);
}

#[test]
fn server_errors_and_dropped_connections_are_retried() {
    let idp = Idp::start();
    let p = short_lived_provider(&idp, "retry-5xx", 3600, json!({}));
    idp.fault(json!({"path": "/oauth/token", "status": 500, "count": 2}));
    idp.fault(json!({"path": "/oauth/token", "kind": "close"}));
    p.token().unwrap();
    assert_eq!(idp.token_requests(), 4);
    assert_eq!(idp.tokens_issued(), 1);
}

#[test]
fn rejected_credentials_are_not_retried_and_cool_down() {
    let idp = Idp::start();
    let cfg = json!({"token_url": idp.url("/oauth/token"), "client_id": "demo-oauth-client",
        "client_secret": "not-the-secret", "cooldown_ms": 60000});
    let p = Provider::new(&cfg.to_string()).unwrap();
    let e = p.token().unwrap_err();
    assert_eq!(e.status(), Status::CredentialsRejected);
    assert_eq!(idp.token_requests(), 1, "invalid_client is not retried");
    // During the cool-down the same error comes back at once, without a request.
    for _ in 0..20 {
        let again = p.token().unwrap_err();
        assert_eq!(again.status(), Status::CredentialsRejected);
        assert!(again.message().contains("cooling down"), "{again}");
    }
    assert_eq!(idp.token_requests(), 1);
    // Invalidation ends the cool-down early.
    p.invalidate();
    assert_eq!(p.token().unwrap_err().status(), Status::CredentialsRejected);
    assert_eq!(idp.token_requests(), 2);
}

/// The C ABI from Rust: a token string, freed.
fn c_token(h: u64) -> String {
    let ptr = ffi::vault_get_token(h);
    assert!(!ptr.is_null(), "vault_get_token failed");
    // SAFETY: a NUL-terminated string from vault_get_token, freed right after.
    let s = unsafe { CStr::from_ptr(ptr) }.to_str().unwrap().to_string();
    unsafe { ffi::vault_token_free(ptr) };
    s
}

#[test]
fn many_threads_invalidating_the_same_token_cause_one_fetch() {
    let idp = Idp::start();
    let cfg =
        std::ffi::CString::new(short_lived(&idp, "coalesce", 3600, json!({})).to_string()).unwrap();
    // SAFETY: a valid NUL-terminated string.
    let h = unsafe { ffi::vault_provider_new(cfg.as_ptr()) };
    assert_ne!(h, 0);
    let t1 = c_token(h);
    let barrier = Arc::new(Barrier::new(16));
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let b = barrier.clone();
            thread::spawn(move || {
                let mine = c_token(h); // the token this thread "used" and got a 401 with
                b.wait();
                assert_eq!(ffi::vault_invalidate(h), 0);
                b.wait();
                let fresh = c_token(h);
                (mine, fresh, c_token(h))
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|j| j.join().unwrap()).collect();
    let t2 = &results[0].1;
    assert!(*t2 != t1, "a new token after invalidation");
    for (mine, fresh, after) in &results {
        assert!(*mine == t1, "every thread first had the first token");
        assert!(fresh == t2, "all threads share the one new token");
        assert!(after == t2, "and keep it");
    }
    assert_eq!(
        idp.tokens_issued(),
        2,
        "one fetch for sixteen invalidations"
    );
    // This thread last received the first token: its invalidation comes too late and drops
    // nothing (the token it saw fail was already replaced).
    assert_eq!(ffi::vault_invalidate(h), 0);
    assert!(c_token(h) == *t2, "the replacement stays");
    assert_eq!(idp.tokens_issued(), 2);
    // Invalidating by value: a token that was already replaced fetches nothing.
    let old = std::ffi::CString::new(t1).unwrap();
    // SAFETY: valid strings; NULL error buffer.
    let st = unsafe { ffi::vault_invalidate_token(h, old.as_ptr(), std::ptr::null_mut(), 0) };
    assert_eq!(st, Status::Ok);
    assert!(c_token(h) == *t2, "replaced token left alone");
    assert_eq!(idp.tokens_issued(), 2);
    let cur = std::ffi::CString::new(t2.clone()).unwrap();
    // SAFETY: as above.
    unsafe { ffi::vault_invalidate_token(h, cur.as_ptr(), std::ptr::null_mut(), 0) };
    assert!(c_token(h) != *t2, "current token dropped");
    assert_eq!(idp.tokens_issued(), 3);
    assert_eq!(ffi::vault_provider_free(h), 0);
}

#[test]
fn discovery_is_cached_and_survives_a_metadata_outage() {
    let idp = Idp::start();
    let cfg = json!({"issuer": idp.url("/apiture/oidc/"), "client_id": "demo-apiture-client",
        "client_secret": "demo-apiture-secret", "discovery_ttl_s": 1, "basic_encoding": "plain"});
    let p = Provider::new(&cfg.to_string()).unwrap();
    p.token().unwrap();
    assert_eq!(idp.stats()["discovery_requests"], 1);
    // After the metadata's time to live, a failing lookup falls back to the known endpoint.
    thread::sleep(Duration::from_millis(1100));
    idp.fault(json!({"path": "/apiture/oidc/.well-known/openid-configuration", "status": 500, "count": 0}));
    p.invalidate();
    p.token().expect("last good endpoint used");
    assert_eq!(idp.tokens_issued(), 2);
}

/// `Retry-After: 0` (or a date in the past) never shortens the backoff: a 2 s
/// deadline against an endpoint that always answers 503 with it sends a handful of requests,
/// not thousands.
#[test]
fn retry_after_zero_or_past_never_shortens_the_backoff() {
    let idp = Idp::start();
    for (i, value) in ["0", "Sun, 06 Nov 1994 08:49:37 GMT"].iter().enumerate() {
        let p = short_lived_provider(
            &idp,
            &format!("ra-zero-{i}"),
            3600,
            json!({"deadline_ms": 2000}),
        );
        idp.reset();
        idp.fault(json!({"path": "/oauth/token", "status": 503, "retry_after": value, "count": 0}));
        p.token().unwrap_err();
        // 100 ms doubling to 2 s, each wait at least half its ceiling: at most 7 sends in 2 s.
        let sent = idp.token_requests();
        assert!(
            (2..=8).contains(&sent),
            "Retry-After {value}: {sent} requests in one 2 s fetch"
        );
    }
}

/// A `Retry-After` past the deadline is remembered: no request goes out before it,
/// even after the cool-down ended.
#[test]
fn retry_after_past_the_deadline_holds_after_the_cool_down() {
    let idp = Idp::start();
    let p = short_lived_provider(
        &idp,
        "ra-long",
        3600,
        json!({"deadline_ms": 1000, "cooldown_ms": 0}),
    );
    idp.fault(json!({"path": "/oauth/token", "status": 429, "retry_after": "30"}));
    let e = p.token().unwrap_err();
    assert_eq!(e.status(), Status::RateLimited, "{e}");
    assert_eq!(idp.token_requests(), 1);
    // No cool-down is configured; the endpoint would answer now, but it asked for 30 s.
    for _ in 0..5 {
        let again = p.token().unwrap_err();
        assert_eq!(again.status(), Status::RateLimited, "{again}");
        assert!(again.message().contains("Retry-After"), "{again}");
    }
    assert_eq!(
        idp.token_requests(),
        1,
        "no request before the provider said so"
    );
}

/// A 200 whose body is not a token (a gateway's HTML page) is retried like a 5xx.
#[test]
fn a_200_that_is_not_a_token_is_retried() {
    let idp = Idp::start();
    let p = short_lived_provider(&idp, "html-200", 3600, json!({}));
    idp.fault(json!({"path": "/oauth/token", "kind": "html", "count": 2}));
    p.token().expect("retried past two HTML pages");
    assert_eq!(idp.token_requests(), 3);
    assert_eq!(idp.tokens_issued(), 1);
}

/// A burst (3 x 500, 2 x an HTML page with status 200, 1 x 429 with
/// `Retry-After: 1`) hitting the background refresh of a 2 s token, whose window between the
/// refresh point and the serving limit is 0.3 s: no call fails.
#[test]
fn a_burst_during_the_refresh_of_a_short_token_fails_no_call() {
    let idp = Idp::start();
    let p = short_lived_provider(
        &idp,
        "burst",
        2,
        json!({"refresh_ratio": 0.75, "refresh_jitter": 0.0}),
    );
    let mut failed = Vec::new();
    let mut calls = 0u64;
    for round in 0..2 {
        let t = p.token().unwrap().secret().to_string();
        let gen = p.token().unwrap().generation();
        idp.fault(json!({"path": "/oauth/token", "status": 500, "count": 3}));
        idp.fault(json!({"path": "/oauth/token", "kind": "html", "count": 2}));
        idp.fault(json!({"path": "/oauth/token", "status": 429, "retry_after": "1"}));
        // Call until the token has been replaced (bounded: each fetch ends by its deadline).
        let give_up = Instant::now() + Duration::from_secs(30);
        loop {
            calls += 1;
            match p.token() {
                Ok(now) if now.generation() != gen && now.secret() != t => break,
                Ok(_) => {}
                Err(e) => failed.push(format!("round {round}: {e}")),
            }
            assert!(Instant::now() < give_up, "no new token");
            thread::sleep(Duration::from_millis(5));
        }
        idp.clear_faults();
    }
    assert!(
        failed.is_empty(),
        "{} of {calls} calls failed: {failed:?}",
        failed.len()
    );
}

/// After a transient failure, the cool-down never outlasts a fraction of the token
/// lifetime (here a 60 s `cooldown_ms` against 2 s tokens): the endpoint recovers and the next
/// calls get a token, long before 60 s.
#[test]
fn cool_down_after_a_transient_failure_is_a_fraction_of_the_lifetime() {
    let idp = Idp::start();
    let p = short_lived_provider(
        &idp,
        "short-cool",
        2,
        json!({"deadline_ms": 300, "cooldown_ms": 60000}),
    );
    let gen = p.token().unwrap().generation();
    idp.fault(json!({"path": "/oauth/token", "status": 503, "count": 0}));
    let give_up = Instant::now() + Duration::from_secs(20);
    // Wait for the failure once nothing servable is left.
    while p.token().is_ok() {
        assert!(Instant::now() < give_up);
        thread::sleep(Duration::from_millis(10));
    }
    idp.clear_faults();
    loop {
        match p.token() {
            Ok(t) => {
                assert!(t.generation() > gen);
                break;
            }
            Err(e) => assert!(
                Instant::now() < give_up,
                "still cooling down after the endpoint recovered: {e}"
            ),
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// A high `refresh_ratio` keeps a background refresh window before the serving
/// limit (a refresh point at the serving limit would leave no background refresh at all, and
/// every caller blocked at expiry). 0.95 with the default 30 s margin on a 10 s token.
#[test]
fn a_high_refresh_ratio_keeps_a_refresh_window() {
    let idp = Idp::start();
    let p = short_lived_provider(
        &idp,
        "high-ratio",
        10,
        json!({"refresh_ratio": 0.95, "refresh_jitter": 0.0}),
    );
    p.token().unwrap();
    let (_, refresh_in, serve_for) = p.schedule().unwrap();
    // Served for 9 s (10 s less a tenth); the window is at least a tenth of that.
    assert!(
        serve_for.saturating_sub(refresh_in) >= Duration::from_millis(850),
        "refresh in {refresh_in:?}, served for {serve_for:?}"
    );
}

/// The most requests the normal schedule (100 ms doubling to 2 s, each wait at least half its
/// ceiling) lets one fetch send in `span`: the first at once, the next after at least 50, 100,
/// 200, 400 ms, then at least 1 s each.
fn normal_schedule_allows(span: Duration) -> u64 {
    let mut sent = 1;
    let mut at = Duration::ZERO;
    let mut ceiling = Duration::from_millis(100);
    loop {
        at += ceiling / 2;
        if at > span {
            return sent;
        }
        sent += 1;
        ceiling = (ceiling * 2).min(Duration::from_secs(2));
    }
}

/// One background refresh of a short token against an endpoint answering 503 sent a
/// request every ~100 ms for its whole deadline (its backoff ceiling was a fifth of the refresh
/// window, 120 ms for a 4 s token). It now follows the normal doubling schedule: no more requests
/// than that allows in the time it ran, and it ends by its deadline.
#[test]
fn a_background_refresh_retries_no_faster_than_the_normal_schedule() {
    let idp = Idp::start();
    // 4 s tokens, refresh point at 3 s, served until 3.6 s: a 0.6 s refresh window.
    let p = short_lived_provider(
        &idp,
        "refresh-backoff",
        4,
        json!({"refresh_ratio": 0.75, "deadline_ms": 3000, "cooldown_ms": 0}),
    );
    let start = Instant::now();
    p.token().unwrap();
    assert_eq!(idp.token_requests(), 1);
    idp.fault(json!({"path": "/oauth/token", "status": 503, "count": 0}));
    sleep_until(start + Duration::from_millis(3100));
    // One call past the refresh point starts the background refresh; no call follows, so every
    // request after the first is the refresh's.
    let refresh_queued = Instant::now();
    p.token().expect("the token is still served");
    let give_up = refresh_queued + Duration::from_secs(30);
    while p.stats().counters.background_refresh_failures == 0 {
        assert!(Instant::now() < give_up, "the refresh never ended");
        thread::sleep(Duration::from_millis(20));
    }
    let ran_at_most = refresh_queued.elapsed();
    let sent = idp.token_requests() - 1;
    let allowed = normal_schedule_allows(ran_at_most);
    assert!(
        (1..=allowed).contains(&sent),
        "{sent} requests in at most {ran_at_most:?}: the normal schedule allows {allowed}"
    );
    // Nothing more is sent once it ended (no caller asked).
    thread::sleep(Duration::from_millis(500));
    assert_eq!(
        idp.token_requests() - 1,
        sent,
        "requests after the refresh ended"
    );
}

/// Background refreshes that each fail at once (a verdict, here `invalid_request`)
/// followed each other ever faster within a short token's refresh window (the next one after a
/// quarter of the window left, shrinking): 12 requests in the last 0.55 s of a 4 s token. Calls
/// past the refresh point all through the window now cause no more requests than the normal
/// schedule allows.
#[test]
fn failing_refreshes_follow_each_other_no_faster_than_the_normal_schedule() {
    let idp = Idp::start();
    let p = short_lived_provider(
        &idp,
        "refresh-verdicts",
        4,
        json!({"refresh_ratio": 0.75, "cooldown_ms": 0}),
    );
    let start = Instant::now();
    p.token().unwrap();
    idp.fault(json!({"path": "/oauth/token", "status": 400,
        "body": "{\"error\":\"invalid_request\"}", "count": 0}));
    // Calls from the refresh point (3 s) to just before the serving limit (3.6 s).
    sleep_until(start + Duration::from_millis(2990));
    let calls_from = Instant::now();
    while start.elapsed() < Duration::from_millis(3550) {
        p.token().expect("the token is still served");
        thread::sleep(Duration::from_millis(2));
    }
    let span = calls_from.elapsed();
    let sent = idp.token_requests() - 1;
    let allowed = normal_schedule_allows(span);
    assert!(
        sent <= allowed,
        "{sent} requests in {span:?}: the normal schedule allows {allowed}"
    );
}

/// An endpoint that refuses every connection until the deadline is reported as NETWORK (the
/// Python suite's test_network_error failed about one run in seven): the retry loop could sleep
/// until less time was left than a request needs, and the "no request sent" timeout of that
/// last non-attempt replaced what the endpoint had answered all along.
#[test]
fn refused_connections_until_the_deadline_are_a_network_error() {
    let mut wrong = Vec::new();
    for _ in 0..20 {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = json!({"token_url": format!("http://127.0.0.1:{port}/t"), "client_id": "c",
            "client_secret": SECRET, "deadline_ms": 500});
        let e = Provider::new(&cfg.to_string())
            .unwrap()
            .token()
            .unwrap_err();
        if e.status() != Status::Network {
            wrong.push(e.to_string());
        }
    }
    assert!(wrong.is_empty(), "{} of 20: {wrong:?}", wrong.len());
}
