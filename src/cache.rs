//! The token cache of one provider and its refresh policy.
//!
//! ```text
//! Empty --fetch ok--> Fresh --refresh point--> Stale (still served; one background refresh)
//! Stale --refresh ok--> Fresh          Stale --refresh fails--> Stale (backoff; still served)
//! Fresh/Stale --expiry minus margin--> Expired (not served: callers join the single flight)
//! any --invalidate--> Empty            fetch fails with no servable token --> cool-down
//! ```
//!
//! The hit path ([`Cache::try_hit`]) takes one shared read lock, reads the coarse monotonic clock
//! (see [`coarse`]), and hands the sealed token to the caller's closure; it never blocks on a
//! fetch. Fetches are single flight: one runs at a time per provider (the `running` flag), and
//! every caller that needs a token while it runs waits for that one and receives its result. The
//! C ABI's per-thread memo serves from a kept `Arc<CachedToken>` without this lock, checked
//! against the cache's [`Watch`].

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::RefreshPolicy;
use crate::endpoint::{Backoff, Fetched, Plan};
use crate::error::{Error, Result};
use crate::secret::{random_fraction, Sealed};
use crate::stats::Fetcher;
use crate::sync::{Condvar, Mutex, RwLock, Side};

/// Cached tokens alive (in a cache, a fetch result, or a thread's memo).
static TOKENS: AtomicUsize = AtomicUsize::new(0);

/// How many cached tokens are alive (for `census`).
pub(crate) fn count() -> usize {
    TOKENS.load(Ordering::SeqCst)
}

/// A cached token and its schedule.
#[derive(Debug)]
pub struct CachedToken {
    pub token: Sealed,
    pub token_type: String,
    /// Counts the tokens this cache has held; identifies this one for invalidation.
    pub generation: u64,
    /// Unique to this token in the process: never reused by another provider, nor by the
    /// provider a configuration reload puts under the same handle (whose generations start
    /// again). What `vault_fill` callers compare.
    pub serial: u64,
    /// From here on a background refresh is started.
    pub refresh_at: Instant,
    /// Served until here (the expiry measured from the request, minus the safety margin).
    pub serve_until: Instant,
    /// While [`coarse::now_ns`] reads below this, the token is servable and not due for a refresh
    /// (`refresh_at` less [`coarse::SLACK_NS`], in the coarse clock's terms), so the hit path
    /// needs no precise clock read.
    quick_until_ns: u64,
}

impl Drop for CachedToken {
    fn drop(&mut self) {
        TOKENS.fetch_sub(1, Ordering::SeqCst);
    }
}

impl CachedToken {
    /// Servable and not near its refresh point, by the coarse clock alone (see [`coarse`]).
    #[inline]
    pub fn quick(&self) -> bool {
        coarse::now_ns() < self.quick_until_ns
    }
}

/// A version that changes whenever the cached token is replaced or dropped, and turns odd for
/// good when the provider is freed. A thread that kept a reference to a cached token (the C
/// ABI's per-thread memo, in `handles`) checks with one shared load, and no shared write, that the
/// token is still the provider's current one.
#[derive(Debug, Default)]
pub struct Watch(AtomicU64);

impl Watch {
    /// The current version: even while the provider lives.
    #[inline]
    pub fn version(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// The cached token changed (called with the state lock held for writing).
    fn bump(&self) {
        self.0.fetch_add(2, Ordering::Release);
    }

    /// The provider is freed: no version seen before matches again.
    pub fn retire(&self) {
        self.0.fetch_or(1, Ordering::Release);
    }
}

/// The hit path's clock.
///
/// A precise monotonic read (`Instant::now`, a vDSO `clock_gettime(CLOCK_MONOTONIC)`) is a
/// noticeable share of a whole cache hit under a hypervisor's TSC; Linux's
/// `CLOCK_MONOTONIC_COARSE` costs a fraction of it (figures in docs/BENCHMARKS.md). It is the
/// same clock as `CLOCK_MONOTONIC` (and
/// `Instant`), read as of the last timer tick, so it is never ahead of the precise clock and lags
/// it by at most a tick (1 to 10 ms). The hit path therefore serves on the coarse clock only while
/// the coarse reading is more than [`SLACK_NS`] (50 ms, or two ticks if that is more) before the
/// refresh point, and takes the precise path for everything closer: deciding to refresh, and the
/// serving limit, are always made on `Instant`. Elsewhere (no coarse clock) [`now_ns`] returns
/// `u64::MAX` and every hit takes the precise path.
pub(crate) mod coarse {
    use std::time::Instant;

    /// The least slack kept between a coarse reading and the refresh point.
    #[cfg_attr(miri, allow(dead_code))]
    pub const SLACK_NS: u64 = 50_000_000;

    /// The coarse monotonic clock in ns; `u64::MAX` where there is none.
    #[inline]
    pub fn now_ns() -> u64 {
        imp::coarse()
    }

    /// The last coarse reading at which a token due for refresh at `at` may still be served on
    /// the coarse clock alone; 0 (never) when there is no coarse clock.
    pub fn quick_until(at: Instant) -> u64 {
        imp::quick_until(at)
    }

    // Miri has no clock_getres: it runs the precise path only.
    #[cfg(all(any(target_os = "linux", target_os = "android"), not(miri)))]
    mod imp {
        use once_cell::sync::Lazy;
        use std::time::Instant;

        fn read(clock: libc::clockid_t) -> Option<u64> {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: clock_gettime writes one timespec it is given.
            if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
                return None;
            }
            Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64)
        }

        /// The slack, or `None` when the coarse clock is not available.
        static SLACK: Lazy<Option<u64>> = Lazy::new(|| {
            let mut res = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: clock_getres writes one timespec it is given.
            if unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut res) } != 0 {
                return None;
            }
            read(libc::CLOCK_MONOTONIC_COARSE)?;
            let res = res.tv_sec as u64 * 1_000_000_000 + res.tv_nsec as u64;
            Some(res.saturating_mul(2).max(super::SLACK_NS))
        });

        #[inline]
        pub fn coarse() -> u64 {
            read(libc::CLOCK_MONOTONIC_COARSE).unwrap_or(u64::MAX)
        }

        pub fn quick_until(at: Instant) -> u64 {
            let Some(slack) = *SLACK else { return 0 };
            // Read the monotonic clock before `Instant::now`, so that the conversion can only
            // place `at` earlier than it is, never later.
            let Some(mono) = read(libc::CLOCK_MONOTONIC) else {
                return 0;
            };
            let left = at.saturating_duration_since(Instant::now());
            let at_ns = mono.saturating_add(left.as_nanos().min(u64::MAX as u128) as u64);
            at_ns.saturating_sub(slack)
        }
    }

    #[cfg(not(all(any(target_os = "linux", target_os = "android"), not(miri))))]
    mod imp {
        use std::time::Instant;

        pub fn coarse() -> u64 {
            u64::MAX
        }

        pub fn quick_until(_: Instant) -> u64 {
            0
        }
    }
}

#[derive(Debug)]
struct State {
    token: Option<Arc<CachedToken>>,
    /// After a fetch failed with nothing left to serve: the error, returned at once until then.
    failure: Option<(Error, Instant)>,
    /// The length of that cool-down (kept after it ran out, until a success or an invalidate).
    cooldown: Duration,
    /// No background refresh before this (backoff after a failed one).
    next_attempt: Instant,
    /// Background refreshes failed in a row.
    refresh_failures: u32,
    /// Generation of the last token stored.
    generation: u64,
    /// The lifetime of the last token stored: bounds the cool-down.
    lifetime: Option<Duration>,
}

#[derive(Debug, Default)]
struct Flight {
    /// Fetches completed so far; waiters watch it change.
    completed: u64,
    /// The result of the last completed fetch, for the callers that waited on it.
    last: Option<Result<Arc<CachedToken>>>,
}

/// A token fetched by a caller with nothing servable cached (a provider's first, or one after
/// expiry, invalidation or a failed refresh) is the kind fetched in the same second as thousands
/// of others: a service starting with a provider per merchant, every provider at the end of an
/// outage. With the usual jitter (5 % of the lifetime) their refreshes would come due within a
/// second of each other, more than an identity provider (or the refresh workers' CPU) can serve
/// before the serving limit. So its refresh point is drawn from the last `FIRST_SPREAD` share
/// of the way to `refresh_ratio` (for the default 0.75: 37.5 % to 75 % of the lifetime). The
/// next tokens, fetched at those spread points, keep the narrow jitter and stay spread. Costs
/// one early refresh per such fetch; `refresh_jitter: 0` turns all randomness off.
const FIRST_SPREAD: f64 = 0.5;

/// The token cache of one provider.
#[derive(Debug)]
pub struct Cache {
    policy: RefreshPolicy,
    state: RwLock<State>,
    /// Set while a fetch (foreground or background) runs. Claimed by compare-and-swap; released
    /// only with `flight` locked, so a waiter that saw it set under the lock is always woken.
    running: AtomicBool,
    /// Set while a background refresh is queued in the scheduler (claimed by compare-and-swap on
    /// the hit path, cleared by the worker that takes it). Holds no claim on the fetch: a caller
    /// with nothing servable fetches at once, never behind the queue.
    queued: AtomicBool,
    flight: Mutex<Flight>,
    done: Condvar,
    watch: Arc<Watch>,
}

/// What the hit path found.
pub enum Hit<R> {
    /// A servable token; `refresh` is the token's serving limit when the caller queued a
    /// background refresh and must hand it to the scheduler (or give it back with
    /// [`Cache::unqueue`]).
    Served { value: R, refresh: Option<Instant> },
    /// Nothing servable: call [`Cache::get_blocking`].
    Miss,
}

impl Cache {
    pub fn new(policy: RefreshPolicy) -> Cache {
        Cache {
            policy,
            state: RwLock::new(State {
                token: None,
                failure: None,
                cooldown: Duration::ZERO,
                next_attempt: Instant::now(),
                refresh_failures: 0,
                generation: 0,
                lifetime: None,
            }),
            running: AtomicBool::new(false),
            queued: AtomicBool::new(false),
            flight: Mutex::new(Flight::default()),
            done: Condvar::new(),
            watch: Arc::new(Watch::default()),
        }
    }

    /// The cache's [`Watch`].
    pub fn watch(&self) -> &Arc<Watch> {
        &self.watch
    }

    /// The fast path: serves a valid token to `f` under a shared lock, without any network wait.
    /// `f` also receives the [`Watch`] version that goes with the token.
    pub fn try_hit<R>(&self, f: impl FnOnce(&Arc<CachedToken>, u64) -> R) -> Hit<R> {
        let state = self.state.read();
        // Writers bump the version with the lock held for writing: under the read lock it is
        // the token's own.
        let version = self.watch.version();
        let Some(t) = &state.token else {
            return Hit::Miss;
        };
        if t.quick() {
            return Hit::Served {
                value: f(t, version),
                refresh: None,
            };
        }
        let now = Instant::now();
        if now >= t.serve_until {
            return Hit::Miss;
        }
        let refresh = now >= t.refresh_at
            && now >= state.next_attempt
            && !self.running.load(Ordering::Relaxed)
            && !self.queued.load(Ordering::Relaxed)
            && self
                .queued
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok();
        Hit::Served {
            value: f(t, version),
            refresh: refresh.then_some(t.serve_until),
        }
    }

    /// The slow path: returns a servable token, the stored error during a cool-down, or the
    /// result of a fetch, joining the one in flight if there is one.
    pub fn get_blocking(
        &self,
        fetch: impl FnOnce(Plan) -> Result<Fetched>,
    ) -> Result<Arc<CachedToken>> {
        let give_up = Instant::now() + self.policy.deadline + Duration::from_secs(2);
        let mut flight = self.flight.lock();
        loop {
            {
                let state = self.state.read();
                let now = Instant::now();
                if let Some(t) = state.token.as_ref().filter(|t| now < t.serve_until) {
                    return Ok(t.clone());
                }
                if let Some(err) = Self::cooling_down(&state, now) {
                    return Err(err);
                }
            }
            if self
                .running
                .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                drop(flight);
                return self.run_fetch(fetch, Fetcher::Caller);
            }
            // Another fetch is in flight: wait for it and take its result.
            let seen = flight.completed;
            while flight.completed == seen {
                if self.done.wait_until(&mut flight, give_up) && flight.completed == seen {
                    return Err(Error::new(
                        crate::Status::Timeout,
                        "timed out waiting for the token fetch in flight",
                    ));
                }
            }
            match &flight.last {
                Some(result) => return result.clone(),
                // The claim was given back without a fetch (see `release_claim`): look again,
                // and fetch on this thread if nobody else does.
                None => continue,
            }
        }
    }

    /// The stored error while a cool-down lasts (what [`Cache::get_blocking`] would return at
    /// once), for the calls that never wait.
    pub fn cooldown_error(&self) -> Option<Error> {
        Self::cooling_down(&self.state.read(), Instant::now())
    }

    fn cooling_down(state: &State, now: Instant) -> Option<Error> {
        let (err, until) = state.failure.as_ref()?;
        if now >= *until {
            return None;
        }
        let left = until.saturating_duration_since(now);
        Some(err.clone().context(&format!(
            "cooling down after a failed fetch ({} ms left; invalidate to retry now)",
            left.as_millis()
        )))
    }

    /// Runs a background refresh claimed by [`Cache::try_hit`]; its outcome.
    pub fn run_refresh(&self, fetch: impl FnOnce(Plan) -> Result<Fetched>) -> Result<()> {
        self.run_fetch(fetch, Fetcher::Refresh).map(drop)
    }

    /// Gives back a queued refresh that the scheduler could not take.
    pub fn unqueue(&self) {
        self.queued.store(false, Ordering::Release);
    }

    /// Called by the scheduler's worker for a queued refresh: clears `queued` and claims the
    /// fetch if the token is still due for a refresh and no fetch is in flight. The caller then
    /// runs [`Cache::run_refresh`].
    pub fn claim_queued_refresh(&self) -> bool {
        self.queued.store(false, Ordering::Release);
        let state = self.state.read();
        let now = Instant::now();
        let due = state
            .token
            .as_ref()
            .is_some_and(|t| now >= t.refresh_at && now >= state.next_attempt);
        due && self
            .running
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Gives back a fetch claim without fetching, waking the callers that wait for it: they
    /// look again and one of them fetches.
    #[cfg(test)]
    fn release_claim(&self) {
        let mut flight = self.flight.lock();
        flight.completed = flight.completed.wrapping_add(1);
        flight.last = None;
        self.running.store(false, Ordering::Release);
        self.done.notify_all();
    }

    /// Fetches (the caller holds the `running` claim), stores the outcome, wakes the waiters.
    fn run_fetch(
        &self,
        fetch: impl FnOnce(Plan) -> Result<Fetched>,
        by: Fetcher,
    ) -> Result<Arc<CachedToken>> {
        // A background refresh retries on the same schedule and deadline as a caller's fetch
        // (`endpoint::with_retries`); past its token's serving limit, callers wait for it.
        let plan = Plan {
            deadline: Instant::now() + self.policy.deadline,
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fetch(plan)))
            .unwrap_or_else(|_| Err(Error::internal("a token fetch panicked")));
        let result = self.store(outcome, by);
        let mut flight = self.flight.lock();
        flight.completed = flight.completed.wrapping_add(1);
        flight.last = Some(result.clone());
        self.running.store(false, Ordering::Release);
        self.done.notify_all();
        result
    }

    fn store(&self, outcome: Result<Fetched>, by: Fetcher) -> Result<Arc<CachedToken>> {
        let mut state = self.state.write();
        let now = Instant::now();
        match outcome {
            Ok(f) => {
                state.generation += 1;
                state.lifetime = Some(f.lifetime);
                let token = Arc::new(self.schedule(f, state.generation, by == Fetcher::Caller));
                state.token = Some(token.clone());
                self.watch.bump();
                state.failure = None;
                state.refresh_failures = 0;
                state.next_attempt = now;
                Ok(token)
            }
            Err(e) => {
                let still_servable = state.token.as_ref().is_some_and(|t| now < t.serve_until);
                let serve_until = state.token.as_ref().map(|t| t.serve_until);
                if let (true, Fetcher::Refresh, Some(serve_until)) =
                    (still_servable, by, serve_until)
                {
                    // Static stability: keep serving, try again after a backoff that leaves
                    // room for more attempts before the serving limit, but never sooner than
                    // the normal schedule's longest wait allows (a short window's
                    // quarter, shrinking, let refreshes that fail at once follow each other
                    // every few milliseconds).
                    state.refresh_failures = state.refresh_failures.saturating_add(1);
                    let window = serve_until.saturating_duration_since(now);
                    let ceiling = Duration::from_secs(1)
                        .saturating_mul(1u32 << state.refresh_failures.min(6))
                        .min(Duration::from_secs(60))
                        .min(window / 4)
                        .max(Backoff::DEFAULT.cap);
                    state.next_attempt = now + ceiling.mul_f64(0.5 + 0.5 * random_fraction());
                } else {
                    let cooldown = self.cooldown_for(&e, state.lifetime);
                    state.failure = Some((e.clone(), now + cooldown));
                    state.cooldown = cooldown;
                }
                Err(e)
            }
        }
    }

    /// How long callers get `error` at once after a fetch failed with nothing servable left.
    /// `cooldown_ms`, but never more than a tenth of the last token's lifetime for a verdict a
    /// retry cannot change (credentials or scope rejected, an OAuth error, TLS, discovery), and a
    /// twentieth for a transient failure (timeouts, network, 5xx, 429, a 200 that is not a
    /// token), so a short-lived token is not failed for longer than the outage.
    fn cooldown_for(&self, error: &Error, lifetime: Option<Duration>) -> Duration {
        use crate::Status as S;
        let verdict = matches!(
            error.status(),
            S::CredentialsRejected
                | S::ScopeRejected
                | S::OauthError
                | S::Tls
                | S::DiscoveryFailed
                | S::InvalidConfig
        );
        let cap = match lifetime {
            Some(l) if verdict => l / 10,
            Some(l) => l / 20,
            None => self.policy.cooldown,
        };
        self.policy.cooldown.min(cap)
    }

    /// Places the refresh point and the serving limit of a freshly fetched token. `caught_up`:
    /// fetched by a caller with nothing servable cached (see [`FIRST_SPREAD`]).
    fn schedule(&self, f: Fetched, generation: u64, caught_up: bool) -> CachedToken {
        let p = &self.policy;
        let life = f.lifetime;
        let expires_at = f.requested_at + life;
        let margin = p.expiry_margin.min(life / 10);
        let serve_until = expires_at - margin;
        let jitter = match caught_up && p.refresh_jitter > 0.0 {
            true => p.refresh_jitter.max(p.refresh_ratio * FIRST_SPREAD),
            false => p.refresh_jitter,
        };
        let share = (p.refresh_ratio - jitter * random_fraction()).max(0.05);
        // Whatever the ratio, a refresh window of at least a tenth of the servable time is
        // left before the serving limit (a ratio of 0.95 with the default margin would put the
        // refresh point past it for any token of 10 minutes or less).
        let latest = f.requested_at
            + serve_until
                .saturating_duration_since(f.requested_at)
                .mul_f64(0.9);
        let refresh_at = (f.requested_at + life.mul_f64(share)).min(latest);
        TOKENS.fetch_add(1, Ordering::SeqCst);
        static SERIALS: AtomicU64 = AtomicU64::new(1);
        CachedToken {
            token: f.token,
            token_type: f.token_type,
            generation,
            serial: SERIALS.fetch_add(1, Ordering::Relaxed),
            quick_until_ns: coarse::quick_until(refresh_at),
            refresh_at,
            serve_until,
        }
    }

    /// Drops the cached token if it is of `generation` (any token when `None`), and ends a
    /// cool-down. Returns whether a token was dropped.
    pub fn invalidate(&self, generation: Option<u64>) -> bool {
        let mut state = self.state.write();
        state.failure = None;
        state.next_attempt = Instant::now();
        match &state.token {
            Some(t) if generation.is_none_or(|g| g == t.generation) => {
                state.token = None;
                self.watch.bump();
                true
            }
            _ => false,
        }
    }

    /// Drops the cached token if it equals `token` (compared in constant time); ends a
    /// cool-down either way.
    pub fn invalidate_token(&self, token: &[u8]) -> bool {
        let generation = {
            let state = self.state.read();
            match &state.token {
                Some(t) if t.token.equals(token) => Some(t.generation),
                _ => None,
            }
        };
        match generation {
            Some(g) => self.invalidate(Some(g)),
            None => {
                self.state.write().failure = None;
                false
            }
        }
    }

    /// How long `token` stays servable, if it is the cached token (for bindings that hand the
    /// token to a cache of their own, with an expiry). Never waits on a fetch.
    pub fn serve_left(&self, token: &[u8]) -> Option<Duration> {
        let state = self.state.read();
        let t = state.token.as_ref().filter(|t| t.token.equals(token))?;
        Some(t.serve_until.saturating_duration_since(Instant::now()))
    }

    /// Takes the cache's locks before fork() (see `fork`).
    pub(crate) fn fork_hold(&self) {
        self.flight.fork_hold();
        self.state.fork_hold();
    }

    /// Releases them after fork(). In the child, where the locks and the condition variable are
    /// replaced, also forgets the fetch in flight (its thread is gone); a parent's waiter that
    /// would still be listed somewhere does not exist there either.
    ///
    /// # Safety
    /// Only after `fork_hold` on this thread, once.
    pub(crate) unsafe fn fork_release(&self, side: Side) {
        // SAFETY: both locks were taken by fork_hold on this thread; in the child it is the only
        // thread, so nothing waits on `done`.
        unsafe {
            if side == Side::Child {
                self.running.store(false, Ordering::Release);
                // The child's scheduler starts empty (see `scheduler`).
                self.queued.store(false, Ordering::Release);
                let flight = self.flight.held_mut();
                flight.completed = flight.completed.wrapping_add(1);
                flight.last = None;
                self.done.fork_reset();
            }
            self.state.fork_release(side);
            self.flight.fork_release(side);
        }
    }

    /// The length of the cool-down the last failed fetch entered, unless a success or an
    /// invalidate ended it since (even if it already ran out: the fetch that entered it reports
    /// it, however late its thread gets to it); `None` for none or a zero one.
    pub fn cooldown_entered(&self) -> Option<Duration> {
        let state = self.state.read();
        state
            .failure
            .as_ref()
            .map(|_| state.cooldown)
            .filter(|d| !d.is_zero())
    }

    /// How long the current cool-down (after a failed fetch) still lasts, if one is on.
    pub fn cooldown_left(&self) -> Option<Duration> {
        let state = self.state.read();
        let now = Instant::now();
        state
            .failure
            .as_ref()
            .map(|(_, until)| until.saturating_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    /// The current token's schedule, for diagnostics: (generation, refresh in, serve for).
    pub fn schedule_info(&self) -> Option<(u64, Duration, Duration)> {
        let state = self.state.read();
        let now = Instant::now();
        state.token.as_ref().map(|t| {
            (
                t.generation,
                t.refresh_at.saturating_duration_since(now),
                t.serve_until.saturating_duration_since(now),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The locks taken before fork() are released after it in the parent and replaced in the
    /// child, and the child forgets the fetch in flight (Miri checks the lock handling).
    #[test]
    fn fork_hold_and_release() {
        let cache = Cache::new(RefreshPolicy::default());
        for side in [Side::Parent, Side::Child] {
            let child = side == Side::Child;
            cache.running.store(true, Ordering::Release);
            let before = cache.flight.lock().completed;
            cache.fork_hold();
            assert!(cache.state.try_read().is_none(), "state held for writing");
            assert!(cache.flight.try_lock().is_none(), "flight held");
            // SAFETY: fork_hold ran on this thread just before.
            unsafe { cache.fork_release(side) };
            assert!(cache.state.try_write().is_some());
            let flight = cache.flight.try_lock().expect("flight released");
            assert_eq!(flight.completed != before, child);
            assert_eq!(!cache.running.load(Ordering::Acquire), child);
        }
    }

    /// A refresh claim given back without a fetch (no thread could be started for
    /// it) wakes the callers waiting for it, and one of them fetches, instead of sleeping
    /// until the deadline and failing with a timeout. The race behind it (a caller that starts
    /// waiting between the claim and its release) cannot be provoked through the public API,
    /// so this drives the cache's own protocol, with the claim held across a waiter's arrival.
    #[cfg(not(miri))]
    #[test]
    fn a_released_claim_wakes_the_waiters() {
        let policy = RefreshPolicy {
            deadline: Duration::from_secs(30),
            ..RefreshPolicy::default()
        };
        let cache = Arc::new(Cache::new(policy));
        // The claim a background refresh would hold.
        assert!(cache
            .running
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok());
        let waiter = {
            let cache = cache.clone();
            std::thread::spawn(move || {
                cache
                    .get_blocking(|_| {
                        Ok(Fetched {
                            token: Sealed::seal(b"fetched-by-the-waiter").unwrap(),
                            token_type: "Bearer".into(),
                            lifetime: Duration::from_secs(60),
                            requested_at: Instant::now(),
                        })
                    })
                    .map(|t| t.generation)
            })
        };
        // Give the waiter time to start waiting (had it not, it would claim the fetch itself
        // after the release, and the test would pass without testing anything: it cannot fail
        // for a wrong reason).
        std::thread::sleep(Duration::from_millis(300));
        cache.release_claim();
        let got = waiter.join().unwrap();
        assert_eq!(
            got.ok(),
            Some(1),
            "the waiter fetched after the claim was released"
        );
    }

    #[cfg(all(any(target_os = "linux", target_os = "android"), not(miri)))]
    #[test]
    fn coarse_clock_is_never_ahead_of_instant() {
        // quick_until(t) for a `t` already passed is the monotonic clock as read inside it, less
        // the slack. The bounds below hold however long the thread is preempted between the
        // reads: a coarse reading taken before is never above that clock, and one taken after
        // lags it by less than the slack (a tick at most).
        let slack = coarse::SLACK_NS;
        for _ in 0..1000 {
            let before = coarse::now_ns();
            let q = coarse::quick_until(Instant::now());
            let after = coarse::now_ns();
            assert!(q > 0 && before != u64::MAX);
            assert!(
                before <= q + slack,
                "coarse clock ahead of the monotonic clock"
            );
            assert!(after >= q, "coarse clock lags by more than the slack");
        }
        // A refresh point 10 s ahead is served on the coarse clock until 10 s less the slack.
        let q = coarse::quick_until(Instant::now() + Duration::from_secs(10));
        let ahead = q.saturating_sub(coarse::now_ns());
        assert!(ahead <= 10_000_000_000, "{ahead}");
        assert!(ahead >= 9_000_000_000, "{ahead}");
        // A refresh point already passed is never served on the coarse clock.
        let past = Instant::now() - Duration::from_millis(1);
        assert!(coarse::quick_until(past) < coarse::now_ns());
    }
}
