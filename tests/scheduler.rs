//! The bounded background refresh scheduler, against the local identity provider:
//! the most urgent token first, the bound on workers, no thread when nothing is due, fork with a
//! queue, a provider freed while queued. No timing assertions: the idp's counters and the
//! scheduler's own state are observed, with generous bounds only on how long to wait for them.

mod common;

use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use common::Idp;
use credvault::{scheduler, Provider};
use serde_json::{json, Value};

/// The scheduler is process-wide: these tests run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const SECRET: &str = "scheduler-secret";

/// A provider for a fresh client whose tokens live `lifetime_s`, refreshed at `ratio`.
fn provider(idp: &Idp, id: &str, lifetime_s: u64, ratio: f64) -> Provider {
    idp.add_client(
        json!({"dialect": "oauth", "client_id": id, "client_secret": SECRET,
        "lifetime_s": lifetime_s}),
    );
    let cfg = json!({"token_url": idp.url("/oauth/token"), "client_id": id, "client_secret": SECRET,
        "refresh_ratio": ratio, "refresh_jitter": 0.0});
    Provider::new(&cfg.to_string()).unwrap()
}

fn requests_by(stats: &Value, id: &str) -> u64 {
    stats["by_client"][id].as_u64().unwrap_or(0)
}

/// Waits (polling, at most `limit`) until `cond` holds; panics with `what` otherwise.
fn wait_for(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let give_up = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < give_up, "gave up waiting: {what}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Refresh worker threads of this process, by their name.
fn refresh_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.flatten()
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .is_ok_and(|c| c.trim() == "credvault-refre")
                })
                .count()
        })
        .unwrap_or(0)
}

/// Waits for the workers of an earlier test to be gone, then sets the pool size and starts
/// the peaks afresh.
fn fresh(workers: usize) {
    wait_for(
        Duration::from_secs(20),
        "an earlier test's workers gone",
        idle,
    );
    assert!(scheduler::set_workers(workers));
    scheduler::reset_peaks();
}

/// Sleeps until `ms` milliseconds after `start` (returns at once if that time has passed).
fn sleep_until(start: Instant, ms: u64) {
    thread::sleep((start + Duration::from_millis(ms)).saturating_duration_since(Instant::now()));
}

/// Holds the one worker in a slow refresh of `busy` (already due): the idp delays the next
/// token request by `delay_ms`, `busy`'s token is asked for (served, its refresh queued), and
/// this waits until the idp has received that refresh request.
fn hold_the_worker(idp: &Idp, busy: &Provider, busy_id: &str, delay_ms: u64) {
    idp.fault(json!({"path": "/oauth/token", "kind": "delay", "delay_ms": delay_ms}));
    busy.token().unwrap();
    wait_for(Duration::from_secs(10), "busy's refresh sent", || {
        requests_by(&idp.stats(), busy_id) == 2
    });
}

fn idle() -> bool {
    let s = scheduler::stats();
    s.workers == 0 && s.queued == 0 && refresh_threads() == 0
}

#[test]
fn the_token_closest_to_its_serving_limit_is_refreshed_first() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    fresh(1);
    let idp = Idp::start_with(&[]);
    // All due 3 s after the fetch; served until 9 s (busy), 10.8 s (urgent), 27 s (late).
    let busy = provider(&idp, "order-busy", 10, 0.3);
    let late = provider(&idp, "order-late", 30, 0.1);
    let urgent = provider(&idp, "order-urgent", 12, 0.25);
    let start = Instant::now();
    for p in [&busy, &late, &urgent] {
        p.token().unwrap();
    }
    sleep_until(start, 3200);
    // The one worker is held by busy's refresh while the other two are queued, late first.
    idp.fault(json!({"path": "/oauth/token", "kind": "delay", "delay_ms": 1500}));
    idp.fault(json!({"path": "/oauth/token", "kind": "delay", "delay_ms": 3000, "count": 2}));
    busy.token().unwrap();
    wait_for(Duration::from_secs(10), "busy's refresh sent", || {
        requests_by(&idp.stats(), "order-busy") == 2
    });
    late.token().unwrap();
    urgent.token().unwrap();
    assert_eq!(scheduler::stats().queued, 2, "both wait behind busy");
    // Urgent's request arrives first; late's only after it (3 s later).
    wait_for(Duration::from_secs(20), "a queued refresh sent", || {
        let s = idp.stats();
        requests_by(&s, "order-urgent") + requests_by(&s, "order-late") > 2
    });
    let s = idp.stats();
    assert_eq!(requests_by(&s, "order-urgent"), 2, "urgent refreshed first");
    assert_eq!(requests_by(&s, "order-late"), 1, "late still queued");
    wait_for(Duration::from_secs(20), "late refreshed", || {
        requests_by(&idp.stats(), "order-late") == 2
    });
    wait_for(Duration::from_secs(20), "workers gone", idle);
    assert!(scheduler::stats().peak_workers <= 2);
}

#[test]
fn workers_are_bounded_and_gone_when_nothing_is_due() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    fresh(2);
    assert!(scheduler::set_endpoint_limit(64));
    assert!(!scheduler::set_workers(0) && !scheduler::set_workers(65));
    let idp = Idp::start_with(&[]);
    let providers: Vec<Provider> = (0..12)
        .map(|i| provider(&idp, &format!("bound-{i}"), 10, 0.1))
        .collect();
    let start = Instant::now();
    for p in &providers {
        p.token().unwrap();
    }
    wait_for(Duration::from_secs(10), "nothing due, no worker", idle);
    sleep_until(start, 1200);
    idp.fault(json!({"path": "/oauth/token", "kind": "delay", "delay_ms": 300, "count": 0}));
    for p in &providers {
        p.token().unwrap(); // served at once; queues its refresh
    }
    let mut most = 0;
    wait_for(Duration::from_secs(60), "all refreshed", || {
        most = most.max(refresh_threads());
        // Callers keep calling, as a service does (a refresh that found no thread to run it is
        // queued again by the next call).
        for p in &providers {
            p.token().unwrap();
        }
        let s = idp.stats();
        (0..12).all(|i| s["issued_by_client"][format!("bound-{i}")].as_u64() == Some(2))
    });
    // The scheduler's own count (taken under its lock) is exact. /proc may still list workers
    // that have left the pool and are finishing their exit while new ones start: reported only.
    let peak = scheduler::stats().peak_workers;
    assert!(
        peak <= 2,
        "{peak} workers at once ({most} refresh threads seen in /proc)"
    );
    wait_for(Duration::from_secs(20), "workers gone", idle);
    assert!(scheduler::set_endpoint_limit(
        scheduler::DEFAULT_ENDPOINT_LIMIT
    ));
}

#[test]
fn a_provider_freed_while_queued_is_not_refreshed() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    fresh(1);
    let idp = Idp::start_with(&[]);
    let busy = provider(&idp, "freed-busy", 10, 0.1);
    let gone = provider(&idp, "freed-gone", 10, 0.1);
    let start = Instant::now();
    busy.token().unwrap();
    gone.token().unwrap();
    sleep_until(start, 1200);
    hold_the_worker(&idp, &busy, "freed-busy", 1500);
    gone.token().unwrap();
    let s = scheduler::stats();
    assert_eq!(s.queued, 1);
    // The host's metrics show the queue.
    let text = credvault::ffi::vault_metrics_prometheus();
    assert!(!text.is_null());
    // SAFETY: a NUL-terminated string from the library, freed right after.
    let metrics = unsafe { std::ffi::CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned();
    unsafe { credvault::ffi::vault_string_free(text) };
    assert!(
        metrics.contains("\ncredvault_refresh_queue_length 1\n"),
        "{metrics}"
    );
    drop(gone);
    wait_for(Duration::from_secs(20), "workers gone", idle);
    assert_eq!(
        requests_by(&idp.stats(), "freed-gone"),
        1,
        "no refresh for a freed provider"
    );
    assert_eq!(idp.tokens_issued(), 3);
}

#[test]
fn a_fork_child_refreshes_with_its_own_workers() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    fresh(1);
    let idp = Idp::start_with(&[]);
    let busy = provider(&idp, "fork-busy", 10, 0.1);
    let queued = provider(&idp, "fork-queued", 10, 0.1);
    let start = Instant::now();
    busy.token().unwrap();
    let before = queued.token().unwrap().generation();
    sleep_until(start, 1200);
    // The parent's worker is in a slow refresh and the other refresh is queued at the fork.
    hold_the_worker(&idp, &busy, "fork-busy", 2000);
    queued.token().unwrap();
    assert_eq!(scheduler::stats().queued, 1);

    // SAFETY: the child only runs the library and then _exit()s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // A hang is ended by the alarm and fails the parent's check.
        unsafe { libc::alarm(30) };
        let give_up = Instant::now() + Duration::from_secs(25);
        let mut code = 1;
        // The child has no worker and an empty queue: the next hit queues the refresh again
        // and starts a worker of the child's own.
        while Instant::now() < give_up {
            match (queued.token(), busy.token()) {
                (Ok(q), Ok(b)) if q.generation() > before && b.generation() > 1 => {
                    code = 0;
                    break;
                }
                (Err(_), _) | (_, Err(_)) => {
                    code = 2;
                    break;
                }
                _ => thread::sleep(Duration::from_millis(10)),
            }
        }
        if code == 0 && scheduler::stats().peak_workers > 1 {
            code = 3;
        }
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(
        libc::WIFEXITED(status),
        "child did not exit normally (status {status})"
    );
    assert_eq!(
        libc::WEXITSTATUS(status),
        0,
        "the child refreshed both tokens"
    );
    // And the parent's queue drains too.
    wait_for(Duration::from_secs(20), "parent's refreshes done", || {
        requests_by(&idp.stats(), "fork-queued") >= 2 && idle()
    });
}

#[test]
fn a_caller_with_nothing_servable_fetches_at_once_not_behind_the_queue() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    fresh(1);
    let idp = Idp::start_with(&[]);
    // busy: due at 3 s, served until 27 s; short: due at 2 s, served until 3.6 s.
    let busy = provider(&idp, "at-once-busy", 30, 0.1);
    let short = provider(&idp, "at-once-short", 4, 0.5);
    let start = Instant::now();
    busy.token().unwrap();
    short.token().unwrap();
    sleep_until(start, 3100);
    // The one worker is held 5 s by busy's refresh; short's refresh queues behind it.
    hold_the_worker(&idp, &busy, "at-once-busy", 5000);
    short.token().unwrap();
    // Past short's serving limit the caller fetches on its own thread, while the worker is
    // still in busy's refresh (busy still holds its first token).
    sleep_until(start, 3700);
    let t = short.token().unwrap();
    assert_eq!(t.generation(), 2, "a fresh token for the caller");
    assert_eq!(
        busy.schedule().unwrap().0,
        1,
        "fetched while the queue's worker was still busy"
    );
    wait_for(Duration::from_secs(20), "workers gone", idle);
}

#[test]
fn refreshes_to_one_token_endpoint_are_limited() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    fresh(4);
    assert!(scheduler::set_endpoint_limit(1));
    let idp = Idp::start_with(&[]);
    let providers: Vec<Provider> = (0..6)
        .map(|i| provider(&idp, &format!("limit-{i}"), 10, 0.1))
        .collect();
    let start = Instant::now();
    for p in &providers {
        p.token().unwrap();
    }
    wait_for(Duration::from_secs(10), "nothing due, no worker", idle);
    sleep_until(start, 1200);
    idp.fault(json!({"path": "/oauth/token", "kind": "delay", "delay_ms": 200, "count": 0}));
    scheduler::reset_peaks();
    wait_for(Duration::from_secs(60), "all refreshed", || {
        for p in &providers {
            p.token().unwrap();
        }
        let s = idp.stats();
        (0..6).all(|i| s["issued_by_client"][format!("limit-{i}")].as_u64() == Some(2))
    });
    let s = scheduler::stats();
    assert_eq!(
        s.peak_per_endpoint, 1,
        "one refresh at a time to the endpoint"
    );
    wait_for(Duration::from_secs(20), "workers gone", idle);
    assert!(scheduler::set_endpoint_limit(
        scheduler::DEFAULT_ENDPOINT_LIMIT
    ));
}

/// The refresh point of `p`'s token as a share of its `lifetime`, from the two times the cache
/// reports at one instant (`refresh_at - serve_until` does not depend on when it is asked; the
/// serving limit is `lifetime - lifetime / 10` after the request for a token this short).
fn refresh_share(p: &Provider, lifetime: f64) -> (u64, f64) {
    let (generation, refresh_in, serve_in) = p.schedule().expect("a token is cached");
    let share = (refresh_in.as_secs_f64() - serve_in.as_secs_f64()) / lifetime + 0.9;
    (generation, share)
}

/// Tokens fetched together with nothing servable cached (a service starting with a
/// provider per merchant) get refresh points spread over 37.5 % to 75 % of their lifetime, not
/// within the 5 % jitter where their refreshes would all come due in the same second; the
/// tokens that replace them at those points keep the narrow jitter (70 % to 75 %), so they stay
/// spread without refreshing early again.
#[test]
fn tokens_fetched_together_get_spread_refresh_points() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    fresh(4);
    let idp = Idp::start_with(&[]);
    let life = 12.0;
    idp.add_client(
        json!({"dialect": "oauth", "client_id": "spread", "client_secret": SECRET,
        "lifetime_s": life as u64}),
    );
    // The defaults: refresh_ratio 0.75, refresh_jitter 0.05.
    let cfg = json!({"token_url": idp.url("/oauth/token"), "client_id": "spread",
        "client_secret": SECRET})
    .to_string();
    let providers: Vec<Provider> = (0..24).map(|_| Provider::new(&cfg).unwrap()).collect();
    let first: Vec<(u64, f64)> = providers
        .iter()
        .map(|p| {
            p.token().unwrap();
            refresh_share(p, life)
        })
        .collect();
    let eps = 0.01;
    for (_, share) in &first {
        assert!(
            (0.375 - eps..=0.75 + eps).contains(share),
            "first refresh point at {share:.3} of the lifetime"
        );
    }
    let (lo, hi) = first.iter().fold((1.0f64, 0.0f64), |(lo, hi), (_, s)| {
        (lo.min(*s), hi.max(*s))
    });
    // 24 draws over a range of 0.375: all within 0.2 of each other has odds below 1e-5.
    assert!(
        hi - lo > 0.2,
        "first refresh points spread over {:.3} of the lifetime only",
        hi - lo
    );
    // Every one's successor, fetched by the scheduler at its refresh point (the callers keep
    // calling, as a service does): the narrow jitter.
    wait_for(
        Duration::from_secs(60),
        "all refreshed in the background",
        || {
            let mut all = true;
            for (p, (generation, _)) in providers.iter().zip(&first) {
                p.token().unwrap();
                all &= p.schedule().is_some_and(|(g, _, _)| g > *generation);
            }
            all
        },
    );
    for p in &providers {
        let (_, share) = refresh_share(p, life);
        assert!(
            (0.70 - eps..=0.75 + eps).contains(&share),
            "a background refresh's token has its refresh point at {share:.3} of the lifetime"
        );
    }
    let (fetched, refreshed) = providers.iter().fold((0, 0), |(f, r), p| {
        let c = p.stats().counters;
        (f + c.tokens_fetched, r + c.background_refreshes)
    });
    assert_eq!(
        fetched - refreshed,
        24,
        "callers fetched only the first tokens"
    );
}

/// The idp holds a stalled endpoint's token requests this long (the refreshes end with a
/// token, so the workers are free again within the test).
const STALL_MS: u64 = 11_000;

/// A token endpoint of its own (an idp each: the scheduler counts by the endpoint's URL) with
/// providers `ids` (tokens of 10 s, due after 1 s) that hold a token; `stall` makes their next
/// token requests wait [`STALL_MS`].
fn endpoint_with(ids: &[&str]) -> (Idp, Vec<Provider>) {
    let idp = Idp::start_with(&[]);
    let providers = ids
        .iter()
        .map(|id| {
            idp.add_client(
                json!({"dialect": "oauth", "client_id": id, "client_secret": SECRET,
                "lifetime_s": 10}),
            );
            let cfg = json!({"token_url": idp.url("/oauth/token"), "client_id": id,
                "client_secret": SECRET, "refresh_ratio": 0.1, "refresh_jitter": 0.0,
                "timeout_ms": STALL_MS + 5_000, "deadline_ms": STALL_MS + 5_000});
            let p = Provider::new(&cfg.to_string()).unwrap();
            p.token().unwrap();
            p
        })
        .collect();
    (idp, providers)
}

/// Makes the next token request of each of `providers` stall at `idp` (the refreshes are due:
/// each call queues one).
fn stall(idp: &Idp, providers: &[Provider]) {
    idp.fault(
        json!({"path": "/oauth/token", "kind": "delay", "delay_ms": STALL_MS,
        "count": providers.len()}),
    );
    for p in providers {
        p.token().unwrap();
    }
}

fn stalled_requests_arrived(idp: &Idp, ids: &[&str]) -> bool {
    let s = idp.stats();
    ids.iter().all(|id| requests_by(&s, id) == 2)
}

/// Tokens `idp` issued: the first one of each of `ids` only while their refreshes stall.
fn issued(idp: &Idp, ids: &[&str]) -> u64 {
    let s = idp.stats();
    ids.iter()
        .map(|id| s["issued_by_client"][*id].as_u64().unwrap_or(0))
        .sum()
}

/// Two stalled endpoints with two providers each took every worker of the
/// default pool (4 workers, 2 per endpoint), and a healthy endpoint's refresh waited for them:
/// its 2 s token expired and the non-blocking call returned WOULD_BLOCK. Under the default
/// settings a healthy endpoint's refreshes keep running whatever the others do.
#[test]
fn stalled_endpoints_do_not_stop_a_healthy_ones_refreshes() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    fresh(scheduler::DEFAULT_WORKERS);
    assert!(scheduler::set_endpoint_limit(
        scheduler::DEFAULT_ENDPOINT_LIMIT
    ));
    let (a_ids, b_ids) = (["slow-a1", "slow-a2"], ["slow-b1", "slow-b2"]);
    let (a, a_providers) = endpoint_with(&a_ids);
    let (b, b_providers) = endpoint_with(&b_ids);
    let start = Instant::now();
    sleep_until(start, 1200);
    stall(&a, &a_providers);
    stall(&b, &b_providers);
    wait_for(
        Duration::from_secs(10),
        "the stalled refreshes sent",
        || stalled_requests_arrived(&a, &a_ids) && stalled_requests_arrived(&b, &b_ids),
    );
    assert_eq!(scheduler::stats().workers, scheduler::DEFAULT_WORKERS);

    // The healthy provider, through the C API: a 2 s token, due after 0.6 s, served until 1.8 s.
    let healthy = Idp::start_with(&[]);
    healthy.add_client(json!({"dialect": "oauth", "client_id": "healthy",
        "client_secret": SECRET, "lifetime_s": 2}));
    let cfg = json!({"token_url": healthy.url("/oauth/token"), "client_id": "healthy",
        "client_secret": SECRET, "refresh_ratio": 0.3, "refresh_jitter": 0.0});
    let cfg = std::ffi::CString::new(cfg.to_string()).unwrap();
    // SAFETY: a NUL-terminated string; buffers of the lengths passed.
    let h = unsafe { credvault::ffi::vault_provider_new(cfg.as_ptr()) };
    assert_ne!(h, 0);
    let mut buf = [0 as std::os::raw::c_char; 512];
    let mut len = 0usize;
    let call = |wait: bool, buf: &mut [std::os::raw::c_char], len: &mut usize| unsafe {
        let f = if wait {
            credvault::ffi::vault_get_token_into
        } else {
            credvault::ffi::vault_try_get_token_into
        };
        f(h, buf.as_mut_ptr(), buf.len(), len, std::ptr::null_mut(), 0)
    };
    assert_eq!(call(true, &mut buf, &mut len), credvault::Status::Ok);
    // 8 s of calls (about a dozen refreshes) while the other endpoints' refreshes stall.
    let (mut served, mut would_block, mut other) = (0u64, 0u64, 0u64);
    let polling = Instant::now();
    while polling.elapsed() < Duration::from_secs(8) {
        match call(false, &mut buf, &mut len) {
            credvault::Status::Ok => served += 1,
            credvault::Status::WouldBlock => would_block += 1,
            _ => other += 1,
        }
        thread::sleep(Duration::from_millis(5));
    }
    let refreshed = issued(&healthy, &["healthy"]) - 1;
    let still_stalled = issued(&a, &a_ids) + issued(&b, &b_ids) == 4;
    assert_eq!(credvault::ffi::vault_provider_free(h), 0);
    assert_eq!(
        (would_block, other),
        (0, 0),
        "{served} calls served, {would_block} WOULD_BLOCK, {other} other failures; \
         {refreshed} background refreshes of the healthy token; the others still stalled at \
         the end: {still_stalled}; scheduler {:?}",
        scheduler::stats()
    );
    assert!(
        refreshed >= 3,
        "{refreshed} background refreshes of the healthy token in 8 s"
    );
    wait_for(Duration::from_secs(40), "workers gone", idle);
    drop((a_providers, b_providers));
}

/// Raising the workers at run time with refreshes queued started none (they
/// waited for a running refresh to end). A new limit takes effect at once: the stats show the
/// queued refresh started, while the stalled ones still hold their workers.
#[test]
fn raising_the_workers_starts_queued_refreshes_at_once() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    fresh(scheduler::DEFAULT_WORKERS);
    assert!(scheduler::set_endpoint_limit(
        scheduler::DEFAULT_ENDPOINT_LIMIT
    ));
    let ids = [
        ["raise-a1", "raise-a2"],
        ["raise-b1", "raise-b2"],
        ["raise-c1", "raise-c2"],
    ];
    let endpoints: Vec<(Idp, Vec<Provider>)> = ids.iter().map(|i| endpoint_with(i)).collect();
    let start = Instant::now();
    sleep_until(start, 1200);
    // a and b take the pool's 4 workers; c's refreshes then wait (one of them may run on a
    // worker beyond the pool: c had nothing in flight).
    for (idp, providers) in &endpoints[..2] {
        stall(idp, providers);
    }
    wait_for(
        Duration::from_secs(10),
        "a's and b's refreshes sent",
        || (0..2).all(|i| stalled_requests_arrived(&endpoints[i].0, &ids[i])),
    );
    let (c, c_providers) = &endpoints[2];
    stall(c, c_providers);
    wait_for(
        Duration::from_secs(10),
        "c's refreshes queued or sent",
        || {
            let sent: u64 = ids[2]
                .iter()
                .map(|id| requests_by(&c.stats(), id) - 1)
                .sum();
            scheduler::stats().queued as u64 + sent == 2
        },
    );
    let before = scheduler::stats();
    assert!(before.queued >= 1, "{before:?}");
    assert!(scheduler::set_workers(8));
    wait_for(Duration::from_secs(20), "c's refreshes sent", || {
        stalled_requests_arrived(c, &ids[2])
    });
    let after = scheduler::stats();
    let completed: u64 = (0..2)
        .map(|i| issued(&endpoints[i].0, &ids[i]))
        .sum::<u64>()
        - 4;
    assert_eq!(
        completed, 0,
        "c's queued refresh started only once a stalled one ended (before {before:?}, after {after:?})"
    );
    assert_eq!(after.queued, 0, "{after:?}");
    assert!(after.workers >= 6, "{after:?}");
    wait_for(Duration::from_secs(40), "workers gone", idle);
    assert!(scheduler::set_workers(scheduler::DEFAULT_WORKERS));
}

/// A higher endpoint limit takes effect at once too. (This passed before the
/// change as well, on a worker started idle for the queued refresh; the scheduler now starts
/// workers only for refreshes that may start, so the call must start it.)
#[test]
fn raising_the_endpoint_limit_starts_queued_refreshes_at_once() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    fresh(scheduler::DEFAULT_WORKERS);
    assert!(scheduler::set_endpoint_limit(1));
    let ids = ["limit-raise-1", "limit-raise-2"];
    let (idp, providers) = endpoint_with(&ids);
    let start = Instant::now();
    sleep_until(start, 1200);
    stall(&idp, &providers);
    wait_for(
        Duration::from_secs(10),
        "one refresh sent, one queued",
        || {
            let sent: u64 = ids.iter().map(|id| requests_by(&idp.stats(), id) - 1).sum();
            sent == 1 && scheduler::stats().queued == 1
        },
    );
    assert!(scheduler::set_endpoint_limit(2));
    wait_for(Duration::from_secs(20), "both refreshes sent", || {
        stalled_requests_arrived(&idp, &ids)
    });
    assert_eq!(
        issued(&idp, &ids),
        2,
        "the queued refresh started only once the stalled one ended ({:?})",
        scheduler::stats()
    );
    wait_for(Duration::from_secs(40), "workers gone", idle);
    assert!(scheduler::set_endpoint_limit(
        scheduler::DEFAULT_ENDPOINT_LIMIT
    ));
}
