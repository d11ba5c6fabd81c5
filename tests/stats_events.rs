//! Statistics after known sequences of calls, the Prometheus exposition, and the log hook: the
//! events a fetch, a retry, a failed refresh, a cool-down and a reload raise, a hook that panics
//! or calls back into the library, and no secret or token in any event of the run.

mod common;

use std::sync::{Arc, Mutex};

use common::Idp;
use credvault::events::{self, Level};
use credvault::{Provider, Status};
use serde_json::{json, Value};

/// The hook is process-wide and sees every provider's events: the tests run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn oauth(idp: &Idp, id: &str, secret: &str, extra: Value) -> Provider {
    let mut cfg =
        json!({"token_url": idp.url("/oauth/token"), "client_id": id, "client_secret": secret});
    if let (Value::Object(c), Value::Object(e)) = (&mut cfg, extra) {
        c.extend(e);
    }
    Provider::new(&cfg.to_string()).unwrap()
}

fn collect() -> Arc<Mutex<Vec<Value>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    events::set_hook(
        Some(Box::new(move |_level, json: &str| {
            sink.lock()
                .unwrap()
                .push(serde_json::from_str(json).unwrap());
        })),
        Level::Debug,
    );
    seen
}

#[test]
fn counters_after_a_known_sequence() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let idp = Idp::start();
    idp.add_client(
        json!({"dialect": "oauth", "client_id": "stats-c", "client_secret": "stats-secret-1"}),
    );
    let p = oauth(&idp, "stats-c", "stats-secret-1", json!({}));
    assert_eq!(
        p.stats().counters,
        Default::default(),
        "nothing before the first call"
    );
    p.token().unwrap(); // a fetch
    for _ in 0..5 {
        p.token().unwrap(); // hits
    }
    p.invalidate();
    idp.fault(json!({"status": 503, "count": 2}));
    p.token().unwrap(); // a fetch after two retried 503s
    let s = p.stats();
    assert_eq!(s.counters.tokens_fetched, 2);
    assert_eq!(s.counters.cache_hits, 5);
    assert_eq!(s.counters.retries, 2);
    assert!(
        s.counters.failures.is_empty(),
        "retried attempts are not failed fetches"
    );
    assert!(s.counters.last_fetch_unix_ms.is_some());
    assert!(s.token_remaining_s.unwrap() > 0.0);
    assert_eq!(s.cooldown_remaining_ms, None);

    let bad = oauth(
        &idp,
        "stats-c",
        "wrong-secret-zz",
        json!({"cooldown_ms": 60000}),
    );
    let e = bad.token().unwrap_err();
    assert_eq!(e.status(), Status::CredentialsRejected);
    let s = bad.stats();
    assert_eq!(s.counters.failures, [(Status::CredentialsRejected, 1)]);
    let (status, message, _) = s.counters.last_error.clone().unwrap();
    assert_eq!(status, Status::CredentialsRejected);
    assert!(!message.contains("wrong-secret-zz"));
    assert!(s.cooldown_remaining_ms.is_some(), "a cool-down is on");
    let j = s.to_json();
    assert_eq!(j["failures"]["VAULT_STATUS_CREDENTIALS_REJECTED"], 1);
    assert_eq!(j["cooldown"]["active"], true);
    assert!(!j.to_string().contains("wrong-secret-zz"));
}

#[test]
fn prometheus_exposition() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let idp = Idp::start();
    let p = oauth(
        &idp,
        "demo-oauth-client",
        "demo: secret+with%odd chars",
        json!({}),
    );
    p.token().unwrap();
    p.token().unwrap();
    let mut s = p.stats();
    s.name = "pay\"ments\\eu".into();
    let text = credvault::stats::prometheus(&[s]);
    assert!(
        text.contains("# TYPE credvault_tokens_fetched_total counter"),
        "{text}"
    );
    assert!(
        text.contains("credvault_tokens_fetched_total{provider=\"pay\\\"ments\\\\eu\"} 1"),
        "{text}"
    );
    assert!(text.contains("credvault_cache_hits_total{provider=\"pay\\\"ments\\\\eu\"} 1"));
    assert!(text.contains("credvault_cooldown_active{provider=\"pay\\\"ments\\\\eu\"} 0"));
    // Every sample line is `name{labels} value` with a parseable value.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (_, value) = line.rsplit_once(' ').unwrap();
        value
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("bad sample {line}"));
    }
}

#[test]
fn events_of_a_run_and_no_secret_in_any() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let idp = Idp::start();
    let secret = "ev-secret-Q7x+/=";
    idp.add_client(json!({"dialect": "oauth", "client_id": "ev-client", "client_secret": secret, "lifetime_s": 2}));
    let seen = collect();
    let p = oauth(&idp, "ev-client", secret, json!({"refresh_jitter": 0.0}));
    let t1 = p.token().unwrap();
    idp.fault(json!({"status": 500, "count": 1}));
    p.invalidate();
    let t2 = p.token().unwrap();
    // A background refresh that fails while the token is still served.
    idp.fault(json!({"status": 400, "body": "{\"error\":\"invalid_request\"}", "count": 10}));
    std::thread::sleep(std::time::Duration::from_millis(1700));
    let _ = p.token();
    std::thread::sleep(std::time::Duration::from_millis(300));
    idp.clear_faults();
    let bad = oauth(&idp, "ev-client", "not-it-secret-9", json!({}));
    let _ = bad.token();
    bad.invalidate();
    events::set_hook(None, Level::Debug);

    let events = seen.lock().unwrap().clone();
    let names: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    for want in [
        "fetch_started",
        "fetch_finished",
        "retry",
        "refresh_failed",
        "cooldown_entered",
        "cooldown_ended",
    ] {
        assert!(names.contains(&want), "no {want} event in {names:?}");
    }
    let finished = events
        .iter()
        .find(|e| e["event"] == "fetch_finished" && e["ok"] == true)
        .unwrap();
    assert!(finished["latency_ms"].as_f64().is_some());
    let retry = events.iter().find(|e| e["event"] == "retry").unwrap();
    assert_eq!(retry["reason_status"], "VAULT_STATUS_HTTP_STATUS");
    let all = serde_json::to_string(&events).unwrap();
    for s in [secret, "not-it-secret-9", t1.secret(), t2.secret()] {
        assert!(!all.contains(s), "a secret or token in an event");
    }
}

#[test]
fn a_hook_that_panics_or_calls_back_does_no_harm() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let idp = Idp::start();
    let p = Arc::new(oauth(
        &idp,
        "demo-oauth-client",
        "demo: secret+with%odd chars",
        json!({}),
    ));
    let inner = p.clone();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let record = calls.clone();
    events::set_hook(
        Some(Box::new(move |_l, json: &str| {
            let v: Value = serde_json::from_str(json).unwrap();
            if v["event"] == "fetch_started" {
                // Re-entering the library from the hook, on the fetching thread: no wait.
                record
                    .lock()
                    .unwrap()
                    .push(inner.token().map(|_| ()).map_err(|e| e.status()));
                inner.invalidate();
            }
            if v["event"] == "fetch_finished" {
                panic!("a hook that panics");
            }
        })),
        Level::Debug,
    );
    let t = p.token();
    events::set_hook(None, Level::Debug);
    assert!(t.is_ok(), "the fetch completes: {:?}", t.err());
    let calls = calls.lock().unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0],
        Err(Status::WouldBlock),
        "a call from the hook does not wait on its own fetch"
    );
    assert!(p.token().is_ok());
}
