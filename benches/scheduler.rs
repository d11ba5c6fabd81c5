//! Thousands of providers: caller threads call `Provider::token` round-robin over all
//! providers while their tokens are refreshed in the background by the bounded scheduler.
//!
//! ```text
//! cargo bench --bench scheduler -- --providers 1000 --lifetime 20 --secs 40
//! cargo bench --bench scheduler -- --providers 10000 --lifetime 300 --secs 40 --latency-ms 5
//! ```
//!
//! Options (after `--`): `--providers N` (1000), `--lifetime S` (token lifetime, 20), `--secs S`
//! (measured time after every provider holds a token, 40), `--callers N` (4), `--workers N`
//! (refresh workers, 4), `--endpoint-limit N` (2), `--latency-ms N` (every token request held
//! this long by the idp: with the per-endpoint limit it caps the idp's capacity at
//! limit x 1000 / latency requests per second; 0 = as fast as loopback goes), `--jitter-pct P`
//! (the providers' `refresh_jitter` in percent; the default when not given), `--attribute`
//! (reads the thread's context-switch counts around every call, two system calls, so that each
//! call over 10 ms is put down either to sleeping in the call, on a lock or a fetch, or to
//! having been preempted while runnable: fewer calls per second, the same question answered).
//!
//! Prints peak threads and peak RSS of this process (sampled every 50 ms), the slowest call,
//! calls over 10 ms, failed calls, token requests (and which of them were the scheduler's
//! refreshes and which callers' own fetches of a token past its serving limit), and the refresh lag: for each refresh a
//! caller observed, the time from the old token's refresh point to the moment a caller first saw
//! the new token (so it includes the wait for the next call past the refresh point), and the CPU
//! used during the run by the callers, the rest of this process and the idp.
#![allow(unused_unsafe)]

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use credvault::{scheduler, Provider};
use serde_json::json;

use common::Idp;

fn args() -> Vec<String> {
    std::env::args().collect()
}

fn arg(name: &str, default: u64) -> u64 {
    let args = args();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name}: not a number")))
        .unwrap_or(default)
}

/// CPU seconds (user + system) a process has used, from /proc/PID/stat.
fn cpu_secs(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which is in parentheses and may hold spaces).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz
}

/// The calling thread's (voluntary, involuntary) context switches so far.
fn switches() -> (i64, i64) {
    // SAFETY: getrusage writes the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    (ru.ru_nvcsw, ru.ru_nivcsw)
}

/// CPU seconds the calling thread has used.
fn thread_cpu_secs() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn proc_status(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// What a caller last saw of one provider: the token's generation and its refresh point.
struct Seen {
    generation: u64,
    refresh_at: Instant,
}

/// The providers' counters, summed.
#[derive(Default)]
struct Totals {
    fetched: u64,
    refreshes: u64,
    refresh_failures: u64,
    retries: u64,
    failures: u64,
}

impl Totals {
    fn minus(&self, before: &Totals) -> Totals {
        Totals {
            fetched: self.fetched - before.fetched,
            refreshes: self.refreshes - before.refreshes,
            refresh_failures: self.refresh_failures - before.refresh_failures,
            retries: self.retries - before.retries,
            failures: self.failures - before.failures,
        }
    }
}

fn totals(providers: &[Provider]) -> Totals {
    let mut t = Totals::default();
    for p in providers {
        let c = p.stats().counters;
        t.fetched += c.tokens_fetched;
        t.refreshes += c.background_refreshes;
        t.refresh_failures += c.background_refresh_failures;
        t.retries += c.retries;
        t.failures += c.failures.iter().map(|(_, n)| n).sum::<u64>();
    }
    t
}

fn main() {
    let n = arg("--providers", 1000) as usize;
    let lifetime = arg("--lifetime", 20);
    let secs = arg("--secs", 40);
    let callers = arg("--callers", 4) as usize;
    let workers = arg("--workers", 4) as usize;
    let limit = arg("--endpoint-limit", 2) as usize;
    let latency = arg("--latency-ms", 0);
    assert!(scheduler::set_workers(workers), "--workers out of range");
    assert!(
        scheduler::set_endpoint_limit(limit),
        "--endpoint-limit out of range"
    );

    let idp = Idp::start_with(&[]);
    idp.add_client(
        json!({"dialect": "oauth", "client_id": "sched", "client_secret": "sched-secret",
        "lifetime_s": lifetime}),
    );
    let mut cfg = json!({"token_url": idp.url("/oauth/token"), "client_id": "sched",
        "client_secret": "sched-secret"});
    if let Some(pct) = args()
        .iter()
        .position(|a| a == "--jitter-pct")
        .map(|_| arg("--jitter-pct", 5))
    {
        cfg["refresh_jitter"] = json!(pct as f64 / 100.0);
    }
    let cfg = cfg.to_string();
    let rss_empty = proc_status("VmRSS:");
    let providers: Arc<Vec<Provider>> =
        Arc::new((0..n).map(|_| Provider::new(&cfg).unwrap()).collect());
    let rss_providers = proc_status("VmRSS:");
    // Every provider fetches its first token (in parallel, like a service starting up).
    let fill = Instant::now();
    thread::scope(|s| {
        for c in 0..callers {
            let providers = &providers;
            s.spawn(move || {
                for p in providers.iter().skip(c).step_by(callers) {
                    p.token().unwrap();
                }
            });
        }
    });
    let fill = fill.elapsed();
    let rss_tokens = proc_status("VmRSS:");
    if latency > 0 {
        idp.fault(
            json!({"path": "/oauth/token", "kind": "delay", "delay_ms": latency, "count": 0}),
        );
    }
    let requests_before = idp.token_requests();
    let idp_pid = idp.pid().to_string();
    let (idp_cpu_before, own_cpu_before) = (cpu_secs(&idp_pid), cpu_secs("self"));
    let callers_cpu = Arc::new(Mutex::new(0.0f64));
    let counters_before = totals(&providers);

    let stop = Arc::new(AtomicBool::new(false));
    let peak_threads = Arc::new(AtomicU64::new(0));
    let peak_rss = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak_threads, peak_rss) = (stop.clone(), peak_threads.clone(), peak_rss.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak_threads.fetch_max(proc_status("Threads:"), Ordering::Relaxed);
                peak_rss.fetch_max(proc_status("VmRSS:"), Ordering::Relaxed);
                thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let calls = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let over_10ms = Arc::new(AtomicU64::new(0));
    let slept = Arc::new(AtomicU64::new(0));
    let preempted = Arc::new(AtomicU64::new(0));
    let attribute = args().iter().any(|a| a == "--attribute");
    let slowest = Arc::new(AtomicU64::new(0));
    let lags = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let next = Arc::new(AtomicUsize::new(0));
    let end = Instant::now() + Duration::from_secs(secs);
    let threads: Vec<_> = (0..callers)
        .map(|_| {
            let callers_cpu = callers_cpu.clone();
            let (slept, preempted) = (slept.clone(), preempted.clone());
            let (providers, calls, failed, over_10ms, slowest, lags, next) = (
                providers.clone(),
                calls.clone(),
                failed.clone(),
                over_10ms.clone(),
                slowest.clone(),
                lags.clone(),
                next.clone(),
            );
            thread::spawn(move || {
                let mut seen: Vec<Option<Seen>> = (0..providers.len()).map(|_| None).collect();
                let mut my_lags = Vec::new();
                while Instant::now() < end {
                    let i = next.fetch_add(1, Ordering::Relaxed) % providers.len();
                    let p = &providers[i];
                    let switches_before = attribute.then(switches);
                    let t = Instant::now();
                    let r = p.token();
                    let took = t.elapsed();
                    calls.fetch_add(1, Ordering::Relaxed);
                    slowest.fetch_max(took.as_nanos() as u64, Ordering::Relaxed);
                    if took > Duration::from_millis(10) {
                        over_10ms.fetch_add(1, Ordering::Relaxed);
                        if let Some((voluntary, _)) = switches_before {
                            // A voluntary switch: the thread slept (a lock, a fetch). None:
                            // it was runnable throughout and only waited for a CPU.
                            let (v, _) = switches();
                            let to = if v > voluntary { &slept } else { &preempted };
                            to.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    let Ok(token) = r else {
                        failed.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    let g = token.generation();
                    let now = Instant::now();
                    match &seen[i] {
                        Some(s) if s.generation == g => {}
                        prev => {
                            if let Some(s) = prev {
                                my_lags.push(now.saturating_duration_since(s.refresh_at));
                            }
                            if let Some((sg, refresh_in, _)) = p.schedule() {
                                if sg == g {
                                    seen[i] = Some(Seen {
                                        generation: g,
                                        refresh_at: now + refresh_in,
                                    });
                                }
                            }
                        }
                    }
                }
                lags.lock().unwrap().extend(my_lags);
                *callers_cpu.lock().unwrap() += thread_cpu_secs();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let wall = secs as f64;
    let callers_cpu = *callers_cpu.lock().unwrap();
    let (idp_cpu, own_cpu) = (
        cpu_secs(&idp_pid) - idp_cpu_before,
        cpu_secs("self") - own_cpu_before,
    );
    // Refreshes still in flight when the callers stopped: let them finish, so that the counts
    // below agree (a refresh is counted when it starts, its token when it arrives).
    let settle = Instant::now() + Duration::from_secs(10);
    while scheduler::stats().workers > 0 && Instant::now() < settle {
        thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let requests = idp.token_requests() - requests_before;
    let counters = totals(&providers).minus(&counters_before);
    let mut lags = std::mem::take(&mut *lags.lock().unwrap());
    lags.sort();
    let pct = |q: f64| -> f64 {
        if lags.is_empty() {
            return 0.0;
        }
        let i = ((lags.len() - 1) as f64 * q).round() as usize;
        lags[i].as_secs_f64() * 1000.0
    };
    let s = scheduler::stats();
    println!(
        "providers {n}, {lifetime} s tokens, {secs} s, {callers} callers, {workers} workers, \
         endpoint limit {limit}, idp latency {latency} ms"
    );
    println!("first tokens for all: {:.1} s", fill.as_secs_f64());
    println!(
        "RSS: {rss_empty} kB empty, +{:.2} kB/provider, +{:.2} kB/cached token",
        (rss_providers as f64 - rss_empty as f64) / n as f64,
        (rss_tokens as f64 - rss_providers as f64) / n as f64
    );
    println!("peak threads   {}", peak_threads.load(Ordering::Relaxed));
    println!("peak RSS       {} kB", peak_rss.load(Ordering::Relaxed));
    println!(
        "slowest call   {:.1} ms",
        slowest.load(Ordering::Relaxed) as f64 / 1e6
    );
    println!("calls          {}", calls.load(Ordering::Relaxed));
    println!("calls > 10 ms  {}", over_10ms.load(Ordering::Relaxed));
    if attribute {
        println!(
            "               of which {} slept in the call (a lock or a fetch), {} were only \
             preempted (runnable, waiting for a CPU)",
            slept.load(Ordering::Relaxed),
            preempted.load(Ordering::Relaxed)
        );
    }
    println!("failed calls   {}", failed.load(Ordering::Relaxed));
    println!("token requests {requests} during the run");
    println!(
        "               {} fetched: {} by the scheduler's refreshes, {} by callers; \
         {} retries, {} failed fetches",
        counters.fetched,
        counters.refreshes,
        counters
            .fetched
            .saturating_sub(counters.refreshes - counters.refresh_failures),
        counters.retries,
        counters.failures
    );
    println!(
        "CPU            {:.0} % of one core: callers {:.0} %, the rest of this process (refresh \
         workers, sampler) {:.0} %, the idp {:.0} %",
        (own_cpu + idp_cpu) / wall * 100.0,
        callers_cpu / wall * 100.0,
        (own_cpu - callers_cpu).max(0.0) / wall * 100.0,
        idp_cpu / wall * 100.0
    );
    println!(
        "refresh lag    {} refreshes seen: p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        lags.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "scheduler      peak workers {}, refreshes run {}",
        s.peak_workers, s.refreshes
    );
    drop(providers);
}
