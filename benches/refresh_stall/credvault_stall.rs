//! Refresh under load, credvault client (issue 3): one `credvault::Provider` shared by N threads
//! that call `Provider::token()` in a loop for S seconds with a P ms pause between calls.
//!
//! Configured by the environment (run.sh sets it): BENCH_TOKEN_URL, BENCH_CLIENT_ID,
//! BENCH_CLIENT_SECRET, BENCH_THREADS (8), BENCH_SECS (20), BENCH_PAUSE_MS (1).
//!
//! One warm-up `token()` runs before the threads start (it necessarily waits for the first fetch);
//! it is reported as `warmup_ms` and left out of the statistics. Prints one JSON line on stdout
//! with the latency statistics of the measured calls. Never prints a token.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use credvault::Provider;
use serde_json::json;

fn env(name: &str, default: Option<&str>) -> String {
    match std::env::var(name) {
        Ok(v) => v,
        Err(_) => default
            .unwrap_or_else(|| panic!("{name} must be set"))
            .to_string(),
    }
}

fn ms(ns: u64) -> f64 {
    (ns as f64 / 1e6 * 10_000.0).round() / 10_000.0
}

/// Nearest-rank percentile of sorted values.
fn pct(sorted: &[u64], p: f64) -> u64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() {
    let url = env("BENCH_TOKEN_URL", None);
    let id = env("BENCH_CLIENT_ID", None);
    let secret = env("BENCH_CLIENT_SECRET", None);
    let threads: usize = env("BENCH_THREADS", Some("8")).parse().unwrap();
    let secs: f64 = env("BENCH_SECS", Some("20")).parse().unwrap();
    let pause = Duration::from_micros((env("BENCH_PAUSE_MS", Some("1")).parse::<f64>().unwrap() * 1000.0) as u64);

    // The library's defaults otherwise: refresh_ratio 0.75, refresh_jitter 0.05,
    // expiry_margin 30 s capped at a tenth of the lifetime.
    let config = json!({
        "token_url": url,
        "client_id": id,
        "client_secret": secret,
        "auth_method": "client_secret_basic",
    })
    .to_string();
    let provider = Provider::new(&config).unwrap_or_else(|e| panic!("provider: {e}"));

    let t = Instant::now();
    let first = provider.token().unwrap_or_else(|e| panic!("warm-up token: {e}"));
    let warmup = t.elapsed();
    black_box(first.secret().len());
    drop(first);

    let barrier = Arc::new(Barrier::new(threads + 1));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let provider = provider.clone();
            let barrier = barrier.clone();
            thread::spawn(move || {
                // (nanoseconds, start offset from the run start in ns)
                let mut samples: Vec<(u64, u64)> = Vec::with_capacity(32_768);
                let mut errors = 0u64;
                let mut max_generation = 0u64;
                barrier.wait();
                let start = Instant::now();
                let end = start + Duration::from_secs_f64(secs);
                loop {
                    let t0 = Instant::now();
                    if t0 >= end {
                        break;
                    }
                    let r = provider.token();
                    let dt = t0.elapsed();
                    match r {
                        Ok(tok) => {
                            black_box(tok.secret().len());
                            max_generation = max_generation.max(tok.generation());
                        }
                        Err(_) => errors += 1,
                    }
                    samples.push((dt.as_nanos() as u64, (t0 - start).as_nanos() as u64));
                    thread::sleep(pause);
                }
                (samples, errors, max_generation)
            })
        })
        .collect();
    // Where the refresh point of the warm-up's token lies, seen from the start of the run.
    let refresh_in = provider.schedule().map(|(_, refresh_in, _)| refresh_in);
    barrier.wait();
    let mut all: Vec<(u64, u64)> = Vec::new();
    let mut errors = 0;
    let mut generations = 0;
    for w in workers {
        let (s, e, g) = w.join().unwrap();
        all.extend(s);
        errors += e;
        generations = generations.max(g);
    }
    let (max_ns, max_at) = all.iter().copied().max().unwrap_or((0, 0));
    let mut slow: Vec<(u64, u64)> = all.iter().copied().filter(|s| s.0 > 10_000_000).collect();
    slow.sort_by_key(|s| s.1);
    // The calls that started while the background refresh was due or in flight: from the
    // refresh point to 500 ms after it (the fetch takes ~300 ms).
    let window = refresh_in.map(|d| {
        let from = d.as_nanos() as u64;
        let calls: Vec<u64> = all
            .iter()
            .filter(|s| s.1 >= from && s.1 < from + 500_000_000)
            .map(|s| s.0)
            .collect();
        json!({"calls": calls.len(), "max_ms": ms(calls.iter().copied().max().unwrap_or(0))})
    });
    let mut top = all.clone();
    top.sort_unstable_by(|a, b| b.cmp(a));
    top.truncate(10);
    let mut lat: Vec<u64> = all.iter().map(|s| s.0).collect();
    lat.sort_unstable();
    let out = json!({
        "client": "credvault (Rust API)",
        "calls": lat.len(),
        "errors": errors,
        "warmup_ms": ms(warmup.as_nanos() as u64),
        "max_ms": ms(max_ns),
        "max_at_s": (max_at as f64 / 1e9 * 1000.0).round() / 1000.0,
        "p50_ms": ms(pct(&lat, 50.0)),
        "p99_ms": ms(pct(&lat, 99.0)),
        "p999_ms": ms(pct(&lat, 99.9)),
        "over_1ms": lat.iter().filter(|&&n| n > 1_000_000).count(),
        "over_10ms": slow.len(),
        "slow_calls": slow.iter().take(40).map(|s| json!({"at_s": (s.1 as f64 / 1e6).round() / 1e3, "ms": ms(s.0)})).collect::<Vec<_>>(),
        "top_calls": top.iter().map(|s| json!({"at_s": (s.1 as f64 / 1e6).round() / 1e3, "ms": ms(s.0)})).collect::<Vec<_>>(),
        "refresh_point_at_s": refresh_in.map(|d| (d.as_secs_f64() * 1e3).round() / 1e3),
        "refresh_window": window,
        "generations_seen": generations,
    });
    println!("{out}");
}
