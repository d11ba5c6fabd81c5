//! A provider: one set of credentials at one endpoint with one scope, and its token cache.
//! This is the Rust API; the C ABI in `ffi` is a thin layer over it.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::cache::{Cache, CachedToken, Hit, Watch};
use crate::config::{Config, EndpointSource};
use crate::discovery::Discovery;
use crate::endpoint::{with_retries, Client, Fetched, NotBefore, Plan};
use crate::error::{Error, Result, Status};
use crate::events::{self, Level};
use crate::stats::{Counters, Fetcher, Stats};
use crate::sync::{Mutex, Side};

struct Inner {
    config: Config,
    client: Client,
    discovery: Option<Discovery>,
    cache: Cache,
    /// The token endpoint's last `Retry-After`, honoured across fetches.
    not_before: NotBefore,
    counters: Arc<Counters>,
    /// The name shown in stats, metrics and events (the configuration file's name for it).
    label: once_cell::sync::OnceCell<String>,
    /// The token endpoint (or issuer) this provider calls: the scheduler's per-endpoint limit
    /// counts by it.
    endpoint_key: Arc<str>,
}

/// Every provider made, for the fork handlers (entries of dropped ones are pruned on insert).
static LIVE: Mutex<Vec<Weak<Inner>>> = Mutex::new(Vec::new());
/// Providers alive: made and not yet dropped by their last user.
static COUNT: AtomicUsize = AtomicUsize::new(0);

/// How many providers are alive (for `census`).
pub(crate) fn count() -> usize {
    COUNT.load(Ordering::SeqCst)
}

impl Drop for Inner {
    fn drop(&mut self) {
        COUNT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The providers alive at a fork, kept alive (and their locks held) until it is over.
pub(crate) struct Held(Vec<Arc<Inner>>);

/// Takes the list of providers before fork() and returns them (see `fork` for the order).
pub(crate) fn fork_hold_list() -> Held {
    LIVE.fork_hold();
    // SAFETY: held by this thread just above.
    let live = unsafe { LIVE.held_mut() };
    Held(live.iter().filter_map(Weak::upgrade).collect())
}

/// Releases the list after fork() (in the child: replaces its lock).
///
/// # Safety
/// Only after `fork_hold_list` on this thread, once.
pub(crate) unsafe fn fork_release_list(side: Side) {
    // SAFETY: per the contract.
    unsafe { LIVE.fork_release(side) };
}

impl Held {
    /// Takes each provider's locks: cache (flight, state), discovery, HTTP agent.
    pub(crate) fn fork_hold_each(&self) {
        for p in &self.0 {
            p.cache.fork_hold();
            if let Some(d) = &p.discovery {
                d.fork_hold();
            }
            p.client.fork_hold();
            p.counters.fork_hold();
        }
    }

    /// Releases them (in the child: replaces them and resets what the parent's threads owned).
    ///
    /// # Safety
    /// Only after `fork_hold_each` on this thread, once.
    pub(crate) unsafe fn fork_release_each(&self, side: Side) {
        for p in self.0.iter().rev() {
            // SAFETY: per the contract, passed through.
            unsafe {
                p.counters.fork_release(side);
                p.client.fork_release(side);
                if let Some(d) = &p.discovery {
                    d.fork_release(side);
                }
                p.cache.fork_release(side);
            }
        }
    }
}

/// A token provider. Cheap to clone (shared); thread-safe.
#[derive(Clone)]
pub struct Provider {
    inner: Arc<Inner>,
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Provider")
            .field("preset", &self.inner.config.preset)
            .field("endpoint", &self.inner.config.endpoint)
            .field("client_id", &self.inner.config.client_id)
            .field("scope", &self.inner.config.scope)
            .finish_non_exhaustive()
    }
}

/// An access token handed to a Rust caller. The value is wiped when the `Token` is dropped;
/// `Debug` shows no part of it.
pub struct Token {
    value: Zeroizing<String>,
    token_type: String,
    generation: u64,
}

impl Token {
    /// The access token itself.
    pub fn secret(&self) -> &str {
        &self.value
    }

    /// The token type: always `Bearer` (other schemes are refused when the token is fetched).
    pub fn token_type(&self) -> &str {
        &self.token_type
    }

    /// The `Authorization` header value: `"<token_type> <token>"`.
    pub fn authorization(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::with_capacity(
            self.token_type.len() + 1 + self.value.len(),
        ));
        s.push_str(&self.token_type);
        s.push(' ');
        s.push_str(&self.value);
        s
    }

    /// Which of this provider's tokens it is (1 for the first fetched).
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Token({} <redacted>, generation {})",
            self.token_type, self.generation
        )
    }
}

impl Provider {
    /// Creates a provider from its JSON configuration. Validates it; fetches nothing yet.
    pub fn new(config_json: &str) -> Result<Provider> {
        let config = Config::from_json(config_json)?;
        let client = Client::new(&config)?;
        let discovery = match &config.endpoint {
            EndpointSource::Issuer(issuer) => Some(Discovery::new(
                issuer.clone(),
                config.refresh.discovery_ttl,
                config.auth_method.name(),
            )),
            EndpointSource::TokenUrl(_) => None,
        };
        let cache = Cache::new(config.refresh);
        COUNT.fetch_add(1, Ordering::SeqCst);
        let endpoint_key: Arc<str> = match &config.endpoint {
            EndpointSource::Issuer(i) => i.as_str().into(),
            EndpointSource::TokenUrl(u) => u.as_str().into(),
        };
        let inner = Arc::new(Inner {
            config,
            client,
            discovery,
            cache,
            not_before: NotBefore::default(),
            counters: Arc::default(),
            label: once_cell::sync::OnceCell::new(),
            endpoint_key,
        });
        let mut live = LIVE.lock();
        live.retain(|w| w.strong_count() > 0);
        live.push(Arc::downgrade(&inner));
        drop(live);
        Ok(Provider { inner })
    }

    /// The validated configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The hit path: runs `f` on the cached token if one is servable (starting a background
    /// refresh past the refresh point) and returns its result; `None` on a miss. Never waits.
    /// `f` also receives the [`Watch`] version that goes with the token.
    pub(crate) fn try_serve<R>(&self, f: impl FnOnce(&Arc<CachedToken>, u64) -> R) -> Option<R> {
        match self.inner.cache.try_hit(f) {
            Hit::Served { value, refresh } => {
                if let Some(serve_until) = refresh {
                    self.queue_refresh(serve_until);
                }
                Some(value)
            }
            Hit::Miss => None,
        }
    }

    /// The slow path: waits for the single in-flight fetch (or runs it) and runs `f` on its token.
    pub(crate) fn serve_blocking<R>(&self, f: impl FnOnce(&CachedToken) -> R) -> Result<R> {
        let inner = &self.inner;
        if events::in_hook() {
            // The hook may run on the thread that is fetching: waiting here could wait forever.
            return Err(Error::new(
                Status::WouldBlock,
                "called from the log callback with no servable token: a fetch cannot be waited for there",
            ));
        }
        // This thread, not a waiter that took its result, reports the cool-down it entered.
        let mut ran_fetch = false;
        let result = inner.cache.get_blocking(|plan| {
            ran_fetch = true;
            inner.fetch(plan, Fetcher::Caller)
        });
        if let (Err(e), true) = (&result, ran_fetch) {
            inner.cooldown_entered(e);
        }
        let token = result?;
        Ok(f(&token))
    }

    /// During a cool-down after a failed fetch, the stored error (known without waiting).
    pub(crate) fn cooldown_error(&self) -> Option<Error> {
        self.inner.cache.cooldown_error()
    }

    /// Runs `f` on a servable token: from the cache when there is one (a hit, counted if `f`
    /// succeeds), else after a fetch.
    pub(crate) fn with_token<R>(&self, f: impl FnOnce(&CachedToken) -> Result<R>) -> Result<R> {
        let mut f = Some(f);
        let counters = &self.inner.counters;
        if let Some(v) = self.try_serve(|t, _| f.take().map(|f| counters.hit(f(t)))) {
            return v.unwrap_or_else(|| Err(Error::internal("token closure already used")));
        }
        match f.take() {
            Some(f) => self.serve_blocking(f)?,
            None => Err(Error::internal("token closure already used")),
        }
    }

    /// Hands a due background refresh to the process's scheduler (see `scheduler`).
    fn queue_refresh(&self, serve_until: Instant) {
        let weak: std::sync::Weak<dyn crate::scheduler::Refresh> = Arc::downgrade(&self.inner) as _;
        let key = self.inner.endpoint_key.clone();
        crate::scheduler::enqueue(weak, key, serve_until);
    }

    /// A token (from cache, or fetched).
    pub fn token(&self) -> Result<Token> {
        self.with_token(|t| {
            let mut value = Zeroizing::new(vec![0u8; t.token.len()]);
            t.token.open_into(&mut value)?;
            // Tokens were checked to be visible ASCII when they were received.
            let value = String::from_utf8(std::mem::take(&mut *value))
                .map_err(|_| Error::internal("cached token is not UTF-8"))?;
            Ok(Token {
                value: Zeroizing::new(value),
                token_type: t.token_type.clone(),
                generation: t.generation,
            })
        })
    }

    /// The cache's [`Watch`]: its version changes with the cached token.
    pub(crate) fn watch(&self) -> &Arc<Watch> {
        self.inner.cache.watch()
    }

    /// Marks the provider freed (its [`Watch`] turns odd): every thread's memo of its token is
    /// void from here on.
    pub(crate) fn retire(&self) {
        self.inner.cache.watch().retire();
    }

    /// Drops the cached token (any generation) and ends a cool-down. The next call fetches.
    pub fn invalidate(&self) -> bool {
        let dropped = self.inner.cache.invalidate(None);
        self.inner.cooldown_ended("invalidated");
        dropped
    }

    /// Drops the cached token only if it is still the one of `generation`: many callers that saw
    /// the same 401 cause one new fetch, and an already replaced token is left alone.
    pub fn invalidate_generation(&self, generation: u64) -> bool {
        let dropped = self.inner.cache.invalidate(Some(generation));
        self.inner.cooldown_ended("invalidated");
        dropped
    }

    /// Drops the cached token only if it equals `token`, and ends a cool-down (whatever the
    /// token: during one, the token a caller was handed is no longer cached, and any invalidate
    /// ends it, as the cool-down's message says).
    pub fn invalidate_token(&self, token: &str) -> bool {
        self.invalidate_token_bytes(token.as_bytes())
    }

    /// [`Provider::invalidate_token`] for bytes (which match no token unless they are one).
    pub(crate) fn invalidate_token_bytes(&self, token: &[u8]) -> bool {
        let dropped = self.inner.cache.invalidate_token(token);
        self.inner.cooldown_ended("invalidated");
        dropped
    }

    /// How long `token` stays servable (until its expiry less the safety margin) if it is the
    /// cached token; `None` if it is not (replaced, dropped, nothing cached). Never fetches.
    pub fn token_serve_left(&self, token: &str) -> Option<Duration> {
        self.inner.cache.serve_left(token.as_bytes())
    }

    /// For diagnostics: the current token's generation, time to its refresh point, time it
    /// remains servable.
    pub fn schedule(&self) -> Option<(u64, Duration, Duration)> {
        self.inner.cache.schedule_info()
    }

    /// The provider's counters (the C ABI's memo counts its hits there).
    pub(crate) fn counters(&self) -> &Arc<Counters> {
        &self.inner.counters
    }

    /// Names the provider in stats, metrics and events: the first name given stays (a
    /// configuration file names its providers before the registry would name them by handle).
    pub(crate) fn set_label(&self, name: &str) {
        let _ = self.inner.label.set(name.to_string());
    }

    /// The provider's statistics (see [`Stats`]), named `fallback` if it has no name of its own.
    pub fn stats_named(&self, fallback: &str) -> Stats {
        let inner = &self.inner;
        Stats {
            name: inner
                .label
                .get()
                .cloned()
                .unwrap_or_else(|| fallback.to_string()),
            endpoint: inner.endpoint_key.to_string(),
            client_id: inner.config.client_id.clone(),
            auth_method: inner.config.auth_method.name(),
            counters: inner.counters.snapshot(),
            token_remaining_s: inner
                .cache
                .schedule_info()
                .map(|(_, _, serve)| serve.as_secs_f64()),
            cooldown_remaining_ms: inner.cache.cooldown_left().map(|d| d.as_millis() as u64),
        }
    }

    /// The provider's statistics: counters and the state of its cache. Never a secret or token.
    pub fn stats(&self) -> Stats {
        self.stats_named("provider")
    }
}

impl crate::scheduler::Refresh for Inner {
    fn run_queued_refresh(&self) {
        if self.cache.claim_queued_refresh() {
            self.counters.refresh_started();
            // A refresh that failed past the token's serving limit entered a cool-down: the
            // cache reports it, whoever ran the fetch.
            if let Err(e) = self
                .cache
                .run_refresh(|plan| self.fetch(plan, Fetcher::Refresh))
            {
                self.cooldown_entered(&e);
            }
        }
    }

    fn unqueue(&self) {
        self.cache.unqueue();
    }
}

impl Inner {
    fn label(&self) -> String {
        self.label
            .get()
            .cloned()
            .unwrap_or_else(|| "provider".into())
    }

    /// One fetch with retries inside the deadline: discover the endpoint if needed, request.
    /// Counted, and reported to the log hook (no lock is held here).
    fn fetch(&self, plan: Plan, by: Fetcher) -> Result<Fetched> {
        if by == Fetcher::Caller {
            self.cooldown_ended("expired");
        }
        let kind = match by {
            Fetcher::Caller => "fetch",
            Fetcher::Refresh => "refresh",
        };
        if events::enabled(Level::Debug) {
            events::emit(
                Level::Debug,
                "fetch_started",
                &self.label(),
                serde_json::json!({"kind": kind}),
            );
        }
        let started = Instant::now();
        let result = self.fetch_once(plan);
        self.client.end_fetch();
        self.counters.fetch_done(result.as_ref().map(|_| ()), by);
        // Info when it succeeded, warning when it failed: checked at the event's own level.
        let level = match &result {
            Ok(_) => Level::Info,
            Err(_) => Level::Warn,
        };
        if events::enabled(level) {
            let latency_ms = (started.elapsed().as_secs_f64() * 1e4).round() / 10.0;
            let fields = match &result {
                Ok(f) => serde_json::json!({"kind": kind, "ok": true,
                    "latency_ms": latency_ms, "lifetime_s": f.lifetime.as_secs()}),
                Err(e) => serde_json::json!({"kind": kind, "ok": false,
                    "latency_ms": latency_ms, "status": e.status().name(), "message": e.message()}),
            };
            events::emit(level, "fetch_finished", &self.label(), fields);
        }
        if let Err(e) = &result {
            let serving = self
                .cache
                .schedule_info()
                .map(|(_, _, serve)| serve)
                .filter(|d| !d.is_zero());
            if let (Fetcher::Refresh, Some(left)) = (by, serving) {
                events::emit(
                    Level::Warn,
                    "refresh_failed",
                    &self.label(),
                    serde_json::json!({
                    "status": e.status().name(), "message": e.message(),
                    "still_serving_s": left.as_secs()}),
                );
            }
        }
        result
    }

    fn cooldown_entered(&self, e: &Error) {
        if let Some(length) = self.cache.cooldown_entered() {
            if !self.counters.set_cooling(true) {
                events::emit(
                    Level::Warn,
                    "cooldown_entered",
                    &self.label(),
                    serde_json::json!({
                    "cooldown_ms": length.as_millis() as u64, "status": e.status().name(),
                    "message": e.message()}),
                );
            }
        }
    }

    fn cooldown_ended(&self, reason: &str) {
        if self.counters.set_cooling(false) {
            events::emit(
                Level::Info,
                "cooldown_ended",
                &self.label(),
                serde_json::json!({"reason": reason}),
            );
        }
    }

    fn fetch_once(&self, plan: Plan) -> Result<Fetched> {
        let deadline = plan.deadline;
        let mut attempts = 0u32;
        let mut last: Option<(Status, String)> = None;
        with_retries(deadline, &self.not_before, |remaining| {
            attempts += 1;
            if let Some((status, message)) = last.take() {
                self.counters.retried();
                events::emit(
                    Level::Info,
                    "retry",
                    &self.label(),
                    serde_json::json!({
                    "attempt": attempts, "reason_status": status.name(), "reason": message,
                    "remaining_ms": remaining.as_millis() as u64}),
                );
            }
            let r = self.attempt(&deadline);
            if let Err(f) = &r {
                last = Some((f.error.status(), f.error.message().to_string()));
            }
            r
        })
    }

    /// One token request (with discovery first if the endpoint is an issuer's).
    fn attempt(&self, deadline: &Instant) -> std::result::Result<Fetched, crate::endpoint::Failed> {
        let deadline = *deadline;
        {
            let timeout = self.attempt_timeout(deadline)?;
            let url = match (&self.discovery, &self.config.endpoint) {
                (Some(d), _) => d.token_endpoint(
                    &self.client,
                    timeout,
                    &crate::endpoint::Secrets::of(&self.config),
                )?,
                (None, EndpointSource::TokenUrl(u)) => u.clone(),
                (None, EndpointSource::Issuer(_)) => {
                    return Err(Error::internal("issuer without discovery").into())
                }
            };
            let timeout = self.attempt_timeout(deadline)?;
            self.client.request_token(&self.config, &url, timeout)
        }
    }

    /// The timeout of the next request (discovery or token, connect included): `timeout_ms`,
    /// or what is left of the deadline when that is less, cut so that the request ends before
    /// the deadline. The cut: a socket timeout is a kernel timer-wheel timer, which fires up to
    /// an eighth of its length late (the wheel's granularity grows with the timeout; measured:
    /// +137 ms on a 5 s timeout, `cargo bench --bench soak -- --deadline`), plus a tick.
    fn attempt_timeout(&self, deadline: Instant) -> Result<Duration, crate::endpoint::Failed> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left > self.config.timeout + self.config.timeout / 8 + Duration::from_millis(10) {
            return Ok(self.config.timeout);
        }
        let cut = left.saturating_sub(left / 8 + Duration::from_millis(10));
        if cut < Duration::from_millis(1) {
            // ureq turns a zero timeout into 1 s: never send with less than 1 ms. A timeout
            // like an attempt's, so the retry loop reports what the endpoint answered before.
            return Err(crate::endpoint::Failed {
                error: Error::new(
                    crate::Status::Timeout,
                    "deadline passed before the request was sent",
                ),
                retry: crate::endpoint::Retry::Backoff,
            });
        }
        Ok(cut)
    }
}
