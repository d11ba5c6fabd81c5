//! What a provider has done, for the host's monitoring: counters, the last error, and the
//! Prometheus text exposition of them. Never a secret or a token: errors carry only their status
//! and their message, which never holds one (see `error`).
//!
//! Every counter is a relaxed atomic, except cache hits: a hit from many threads must not write
//! one shared cache line (that is what the C ABI's per-thread memo avoids), so hits are counted
//! in [`HitCounter`], one padded slot per thread shard, summed when read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Status};
use crate::sync::{Mutex, Side};

/// Shards of the hit counter (a thread always uses the same one).
const SHARDS: usize = 8;

#[repr(align(64))]
#[derive(Default)]
struct Slot(AtomicU64);

/// A counter incremented from many threads at once without sharing a cache line.
#[derive(Default)]
pub struct HitCounter {
    slots: once_cell::sync::OnceCell<Box<[Slot; SHARDS]>>,
}

thread_local! {
    static SHARD: usize = {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        (NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS as u64) as usize
    };
}

impl HitCounter {
    /// Adds one, in the slot of this thread's shard.
    #[inline]
    pub fn add(&self) {
        let slots = self.slots.get_or_init(Default::default);
        let i = SHARD.try_with(|s| *s).unwrap_or(0);
        slots[i].0.fetch_add(1, Ordering::Relaxed);
    }

    /// The sum of every slot.
    pub fn get(&self) -> u64 {
        self.slots
            .get()
            .map_or(0, |s| s.iter().map(|x| x.0.load(Ordering::Relaxed)).sum())
    }
}

/// The statuses a fetch can fail with, in a fixed order (the index of a counter).
const FAILURE_STATUSES: [Status; 12] = [
    Status::InvalidConfig,
    Status::Network,
    Status::Timeout,
    Status::Tls,
    Status::HttpStatus,
    Status::CredentialsRejected,
    Status::ScopeRejected,
    Status::RateLimited,
    Status::MalformedResponse,
    Status::OauthError,
    Status::DiscoveryFailed,
    Status::Internal,
];

/// Who runs a fetch: a caller with nothing servable, who waits for it, or a background refresh
/// ahead of expiry, while the current token is still served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fetcher {
    /// A caller's fetch (the slow path): nothing servable, the caller waits for the result.
    Caller,
    /// A background refresh, run by a scheduler worker.
    Refresh,
}

/// The counters of one provider.
#[derive(Default)]
pub struct Counters {
    hits: HitCounter,
    fetched: AtomicU64,
    refreshes: AtomicU64,
    refresh_failures: AtomicU64,
    retries: AtomicU64,
    failures: [AtomicU64; FAILURE_STATUSES.len()],
    last_fetch_ms: AtomicU64,
    last_error: Mutex<Option<(Status, String, u64)>>,
    cooling: std::sync::atomic::AtomicBool,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Counters {
    /// Counts a cache hit if `served` (a cached token served to the caller) succeeded, and
    /// passes it on: a serve whose closure failed (a buffer too small, ...) is no hit. The one
    /// place hits are counted, for the C API's memo and registry paths (`handles`) and the Rust
    /// API (`Provider::with_token`).
    #[inline]
    pub fn hit<R>(&self, served: Result<R, Error>) -> Result<R, Error> {
        if served.is_ok() {
            self.hits.add();
        }
        served
    }

    /// A background refresh started.
    pub fn refresh_started(&self) {
        self.refreshes.fetch_add(1, Ordering::Relaxed);
    }

    /// An attempt was retried.
    pub fn retried(&self) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }

    /// A fetch ended (a background refresh failing is also counted as such).
    pub fn fetch_done(&self, result: Result<(), &Error>, by: Fetcher) {
        match result {
            Ok(()) => {
                self.fetched.fetch_add(1, Ordering::Relaxed);
                self.last_fetch_ms.store(unix_ms(), Ordering::Relaxed);
            }
            Err(e) => {
                if by == Fetcher::Refresh {
                    self.refresh_failures.fetch_add(1, Ordering::Relaxed);
                }
                let i = FAILURE_STATUSES
                    .iter()
                    .position(|s| *s == e.status())
                    .unwrap_or(FAILURE_STATUSES.len() - 1);
                self.failures[i].fetch_add(1, Ordering::Relaxed);
                *self.last_error.lock() = Some((e.status(), e.message().to_string(), unix_ms()));
            }
        }
    }

    /// Marks the cool-down reported as on or off; returns what it was.
    pub fn set_cooling(&self, on: bool) -> bool {
        self.cooling.swap(on, Ordering::AcqRel)
    }

    /// Takes the last-error lock before fork() (see `fork`: with the provider's other locks).
    pub(crate) fn fork_hold(&self) {
        self.last_error.fork_hold();
    }

    /// Releases it after fork() (in the child: replaces it).
    ///
    /// # Safety
    /// Only after `fork_hold` on this thread, once.
    pub(crate) unsafe fn fork_release(&self, side: Side) {
        // SAFETY: per the contract.
        unsafe { self.last_error.fork_release(side) };
    }

    /// A copy of the counters as they are now.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            cache_hits: self.hits.get(),
            tokens_fetched: self.fetched.load(Ordering::Relaxed),
            background_refreshes: self.refreshes.load(Ordering::Relaxed),
            background_refresh_failures: self.refresh_failures.load(Ordering::Relaxed),
            retries: self.retries.load(Ordering::Relaxed),
            failures: FAILURE_STATUSES
                .iter()
                .zip(&self.failures)
                .map(|(s, n)| (*s, n.load(Ordering::Relaxed)))
                .filter(|(_, n)| *n > 0)
                .collect(),
            last_fetch_unix_ms: Some(self.last_fetch_ms.load(Ordering::Relaxed)).filter(|t| *t > 0),
            last_error: self.last_error.lock().clone(),
        }
    }
}

/// The counters of a provider at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Tokens served from the cache.
    pub cache_hits: u64,
    /// Fetches that succeeded (a caller's or a background refresh).
    pub tokens_fetched: u64,
    /// Background refreshes started.
    pub background_refreshes: u64,
    /// Background refreshes that failed.
    pub background_refresh_failures: u64,
    /// Attempts of a fetch after its first.
    pub retries: u64,
    /// Failed fetches by status (only statuses seen).
    pub failures: Vec<(Status, u64)>,
    /// When the last fetch succeeded (Unix ms).
    pub last_fetch_unix_ms: Option<u64>,
    /// Status, message, when (Unix ms).
    pub last_error: Option<(Status, String, u64)>,
}

/// A provider's statistics: its counters and the state of its cache.
#[derive(Debug, Clone, PartialEq)]
pub struct Stats {
    /// The name it has in the configuration file, else `handle:N` (or `provider` in Rust).
    pub name: String,
    /// The token endpoint (`token_url`) or issuer the provider is configured with.
    pub endpoint: String,
    /// The configured client id (not a secret).
    pub client_id: String,
    /// How the client authenticates (`client_secret_basic`, `private_key_jwt`, ...).
    pub auth_method: &'static str,
    /// Its counters.
    pub counters: Snapshot,
    /// Seconds the cached token is still served, if one is cached.
    pub token_remaining_s: Option<f64>,
    /// Milliseconds left of a cool-down, if one is on.
    pub cooldown_remaining_ms: Option<u64>,
}

impl Stats {
    /// As a JSON object (`vault_stats_json`).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        let c = &self.counters;
        let failures: serde_json::Map<String, serde_json::Value> = c
            .failures
            .iter()
            .map(|(s, n)| (s.name().to_string(), json!(n)))
            .collect();
        json!({
            "provider": self.name,
            "endpoint": self.endpoint,
            "client_id": self.client_id,
            "auth_method": self.auth_method,
            "tokens_fetched": c.tokens_fetched,
            "cache_hits": c.cache_hits,
            "background_refreshes": c.background_refreshes,
            "background_refresh_failures": c.background_refresh_failures,
            "retries": c.retries,
            "failures": failures,
            "last_error": c.last_error.as_ref().map(|(s, m, at)| json!({
                "status": s.name(), "message": m, "at_unix_ms": at})),
            "last_fetch_unix_ms": c.last_fetch_unix_ms,
            "token_remaining_s": self.token_remaining_s.map(|s| (s * 1000.0).round() / 1000.0),
            "cooldown": json!({
                "active": self.cooldown_remaining_ms.is_some(),
                "remaining_ms": self.cooldown_remaining_ms.unwrap_or(0)}),
        })
    }
}

/// The Prometheus text exposition format (version 0.0.4) of several providers' statistics.
pub fn prometheus(all: &[Stats]) -> String {
    let mut out = String::new();
    counters(&mut out, all);
    failures(&mut out, all);
    gauges(&mut out, all);
    out
}

type Counter = (&'static str, &'static str, fn(&Snapshot) -> u64);
type Gauge = (&'static str, &'static str, fn(&Stats) -> Option<f64>);

const COUNTERS: [Counter; 5] = [
    (
        "credvault_tokens_fetched_total",
        "Tokens fetched from the token endpoint.",
        |c| c.tokens_fetched,
    ),
    (
        "credvault_cache_hits_total",
        "Tokens served from the cache.",
        |c| c.cache_hits,
    ),
    (
        "credvault_background_refreshes_total",
        "Background refreshes started.",
        |c| c.background_refreshes,
    ),
    (
        "credvault_background_refresh_failures_total",
        "Background refreshes that failed (the cached token kept being served).",
        |c| c.background_refresh_failures,
    ),
    (
        "credvault_retries_total",
        "Token requests retried after a transient failure.",
        |c| c.retries,
    ),
];

const GAUGES: [Gauge; 3] = [
    (
        "credvault_token_remaining_seconds",
        "Seconds the cached token is still served (absent: none cached).",
        |s| s.token_remaining_s,
    ),
    (
        "credvault_last_fetch_timestamp_seconds",
        "Unix time of the last successful fetch.",
        |s| s.counters.last_fetch_unix_ms.map(|t| t as f64 / 1000.0),
    ),
    (
        "credvault_cooldown_active",
        "1 while failed fetches are cooling down, else 0.",
        |s| {
            Some(if s.cooldown_remaining_ms.is_some() {
                1.0
            } else {
                0.0
            })
        },
    ),
];

fn counters(out: &mut String, all: &[Stats]) {
    for (name, help, get) in COUNTERS {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
        for s in all {
            out.push_str(&format!(
                "{name}{{provider=\"{}\"}} {}\n",
                label(&s.name),
                get(&s.counters)
            ));
        }
    }
}

fn failures(out: &mut String, all: &[Stats]) {
    let name = "credvault_fetch_failures_total";
    out.push_str(&format!(
        "# HELP {name} Failed fetches by status.\n# TYPE {name} counter\n"
    ));
    for s in all {
        for (status, n) in &s.counters.failures {
            out.push_str(&format!(
                "{name}{{provider=\"{}\",status=\"{}\"}} {n}\n",
                label(&s.name),
                status.name()
            ));
        }
    }
}

fn gauges(out: &mut String, all: &[Stats]) {
    for (name, help, get) in GAUGES {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n"));
        for s in all {
            if let Some(v) = get(s) {
                out.push_str(&format!("{name}{{provider=\"{}\"}} {v}\n", label(&s.name)));
            }
        }
    }
}

/// A label value with `\`, `"` and newlines escaped, as the exposition format requires.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The refresh scheduler's state in the exposition format (appended to the providers').
pub fn prometheus_scheduler(s: &crate::scheduler::Stats) -> String {
    let mut out = String::new();
    let gauges: [(&str, &str, f64); 4] = [
        (
            "credvault_refresh_queue_length",
            "Background refreshes queued and not yet started.",
            s.queued as f64,
        ),
        (
            "credvault_refresh_oldest_queued_seconds",
            "How long the refresh queued longest ago has waited.",
            s.oldest_queued_ms as f64 / 1000.0,
        ),
        (
            "credvault_refresh_workers",
            "Refresh worker threads alive now.",
            s.workers as f64,
        ),
        (
            "credvault_refresh_workers_peak",
            "Most refresh worker threads alive at once.",
            s.peak_workers as f64,
        ),
    ];
    for (name, help, v) in gauges {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}\n"
        ));
    }
    let name = "credvault_scheduled_refreshes_total";
    out.push_str(&format!(
        "# HELP {name} Refreshes run by the scheduler's workers.\n# TYPE {name} counter\n{name} {}\n",
        s.refreshes
    ));
    out
}

/// The scheduler's state as JSON (in `vault_stats_all_json`).
pub fn scheduler_json(s: &crate::scheduler::Stats) -> serde_json::Value {
    serde_json::json!({
        "queued": s.queued,
        "oldest_queued_ms": s.oldest_queued_ms,
        "workers": s.workers,
        "peak_workers": s.peak_workers,
        "refreshes": s.refreshes,
        "max_workers": crate::scheduler::workers(),
        "endpoint_limit": crate::scheduler::endpoint_limit(),
        "peak_per_endpoint": s.peak_per_endpoint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A serve counts as a hit only when it succeeded, and its result is passed on unchanged.
    #[test]
    fn only_successful_serves_are_hits() {
        let c = Counters::default();
        assert_eq!(c.hit(Ok::<u32, Error>(7)).ok(), Some(7));
        let failed = c.hit(Err::<u32, _>(Error::new(
            Status::BufferTooSmall,
            "too small",
        )));
        assert_eq!(failed.map_err(|e| e.status()), Err(Status::BufferTooSmall));
        assert_eq!(c.snapshot().cache_hits, 1);
    }
}
