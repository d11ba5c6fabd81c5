//! The background refresh scheduler: a small, bounded pool of worker threads shared by every
//! provider of the process.
//!
//! A hit past a token's refresh point queues its provider (once: the cache's `queued` flag); a
//! worker takes the queued refresh whose token is closest to its serving limit first, among the
//! token endpoints with fewer than [`endpoint_limit`] requests in flight (one heap per endpoint:
//! only their heads are compared, so a long queue behind a busy endpoint is never scanned), and runs it on
//! the provider's single flight (a fetch already running for that provider, say a caller's, makes
//! the queued refresh moot). A caller with nothing servable never waits for the queue: it fetches
//! on its own thread at once (`Cache::get_blocking`).
//!
//! Workers are started on demand, up to [`workers`] (default 4, `vault_set_refresh_workers`);
//! when all of them are busy, a token endpoint with nothing in flight still gets one beyond the
//! pool (at most [`MAX_EXTRA_WORKERS`] such), so endpoints that stall, however many, never stop
//! the others' refreshes: the refreshes in flight never exceed [`workers`] plus the
//! endpoints with one in flight (each refresh beyond the pool was its endpoint's only one when
//! it started). A setting changed takes effect at once (the workers now allowed are started).
//! A worker beyond the pool exits as soon as it finds nothing it may start; one of the pool
//! exits once the queue has stayed empty for 200 ms: no thread when no refresh is due, none left
//! once the last provider is freed (a freed provider's queued refresh is dropped, the queue holds
//! only weak references). Across fork() the coordinator (`fork`) holds the scheduler's lock; a
//! child gets it replaced, with an empty queue, no workers and a fresh condition variable (the
//! parent's workers are not in the child), and starts workers lazily on its first due refresh;
//! the providers' `queued` flags are reset with their caches.

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use crate::sync::{Condvar, Mutex, Side};

/// Default number of worker threads.
pub const DEFAULT_WORKERS: usize = 4;
/// Most worker threads that may be configured.
pub const MAX_WORKERS: usize = 64;
/// Default number of refreshes in flight to one token endpoint at once.
pub const DEFAULT_ENDPOINT_LIMIT: usize = 2;
/// Most refreshes in flight to one token endpoint that may be configured.
pub const MAX_ENDPOINT_LIMIT: usize = 64;
/// Most workers beyond the pool at once: each runs the refresh of a token endpoint that had
/// nothing in flight when every worker of the pool was busy (one stalled endpoint, or a few,
/// must not stop the others' refreshes). So at most `workers + MAX_EXTRA_WORKERS` threads.
pub const MAX_EXTRA_WORKERS: usize = 64;

/// How long an idle worker waits for another refresh before it exits.
const LINGER: Duration = Duration::from_millis(200);

static WORKERS: AtomicUsize = AtomicUsize::new(DEFAULT_WORKERS);
static ENDPOINT_LIMIT: AtomicUsize = AtomicUsize::new(DEFAULT_ENDPOINT_LIMIT);
static PEAK_WORKERS: AtomicUsize = AtomicUsize::new(0);
static REFRESHES: AtomicU64 = AtomicU64::new(0);
/// Most refreshes in flight to one token endpoint at once (since the process started, or the
/// last [`reset_peaks`]).
static PEAK_PER_ENDPOINT: AtomicUsize = AtomicUsize::new(0);

/// A provider as the scheduler sees it.
pub(crate) trait Refresh: Send + Sync {
    /// Clears the provider's `queued` flag and runs its refresh if it is still due and no fetch
    /// is in flight.
    fn run_queued_refresh(&self);
    /// Clears the provider's `queued` flag without a refresh (no worker could be started: a
    /// later hit queues it again).
    fn unqueue(&self);
}

struct Job {
    /// The token's serving limit: the earliest is the most urgent.
    serve_until: Instant,
    /// Order of arrival, among equally urgent ones.
    seq: u64,
    provider: Weak<dyn Refresh>,
    /// When it was queued (for the stats: how long the oldest has waited).
    queued_at: Instant,
}

impl PartialEq for Job {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}
impl Eq for Job {}
impl PartialOrd for Job {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Job {
    /// Reversed, so that `BinaryHeap` (a max-heap) pops the most urgent first.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        other
            .serve_until
            .cmp(&self.serve_until)
            .then(other.seq.cmp(&self.seq))
    }
}

/// The refreshes queued for one token endpoint, and how many of its requests are in flight.
/// Kept while either is non-zero.
struct Endpoint {
    key: Arc<str>,
    jobs: BinaryHeap<Job>,
    in_flight: usize,
}

struct State {
    /// One entry per token endpoint with queued or running refreshes (providers share a few
    /// endpoints: a list). Choosing the next refresh looks at each endpoint's most urgent job
    /// only, so a long queue behind a busy endpoint costs nothing to pass over.
    endpoints: Vec<Endpoint>,
    seq: u64,
    /// Worker threads alive.
    workers: usize,
}

impl State {
    const fn new() -> State {
        State {
            endpoints: Vec::new(),
            seq: 0,
            workers: 0,
        }
    }

    fn queued(&self) -> usize {
        self.endpoints.iter().map(|e| e.jobs.len()).sum()
    }

    /// Refreshes in flight.
    fn busy(&self) -> usize {
        self.endpoints.iter().map(|e| e.in_flight).sum()
    }

    /// How many queued refreshes could start now, at most (see [`State::take`]): an endpoint
    /// with nothing in flight may start one whatever the pool's workers do, any other start
    /// takes one of the `pool` slots left free by the refreshes in flight. Of those slots, the
    /// further refreshes of an endpoint with nothing in flight can only have what its first
    /// one (started while a slot was free, so on one of them) left.
    fn startable(&self, pool: usize, limit: usize) -> usize {
        let busy = self.busy();
        let free = pool.saturating_sub(busy);
        // Endpoints with nothing in flight; the others' startable refreshes; the further
        // startable refreshes of the former.
        let (mut first, mut more_busy, mut more_first) = (0, 0, 0);
        for e in self.endpoints.iter().filter(|e| e.in_flight < limit) {
            let n = e.jobs.len().min(limit - e.in_flight);
            if e.in_flight > 0 {
                more_busy += n;
            } else if n > 0 {
                first += 1;
                more_first += n - 1;
            }
        }
        let pooled =
            more_busy.min(free) + more_first.min(free.saturating_sub(more_busy).saturating_sub(1));
        (first + pooled).min((pool + MAX_EXTRA_WORKERS).saturating_sub(busy))
    }

    /// How many workers to start now for the refreshes that could start: those no idle
    /// worker (alive, or counted and starting) will take, within the bound on threads.
    fn starts_needed(&self, pool: usize, limit: usize) -> usize {
        let idle = self.workers.saturating_sub(self.busy());
        let room = (pool + MAX_EXTRA_WORKERS).saturating_sub(self.workers);
        self.startable(pool, limit).saturating_sub(idle).min(room)
    }

    fn push(&mut self, key: Arc<str>, job: Job) {
        match self.endpoints.iter_mut().find(|e| e.key == key) {
            Some(e) => e.jobs.push(job),
            None => self.endpoints.push(Endpoint {
                key,
                jobs: BinaryHeap::from([job]),
                in_flight: 0,
            }),
        }
    }

    /// Takes the most urgent queued refresh that may start (dropping those of freed providers
    /// on the way), and counts it in flight. One may start when its endpoint has fewer than
    /// `limit` requests in flight and either fewer than `pool` refreshes are in flight (a
    /// worker of the pool is free) or its endpoint has none in flight (a worker beyond the
    /// pool, at most [`MAX_EXTRA_WORKERS`]): a stalled endpoint, or several, holding every
    /// worker of the pool never stops another endpoint's refreshes.
    fn take(&mut self, pool: usize, limit: usize) -> Option<(Arc<str>, Job)> {
        for e in &mut self.endpoints {
            while e
                .jobs
                .peek()
                .is_some_and(|j| j.provider.strong_count() == 0)
            {
                e.jobs.pop(); // freed while queued
            }
        }
        self.endpoints
            .retain(|e| !e.jobs.is_empty() || e.in_flight > 0);
        let busy = self.busy();
        let e = self
            .endpoints
            .iter_mut()
            .filter(|e| e.in_flight < limit)
            .filter(|e| busy < pool || (e.in_flight == 0 && busy < pool + MAX_EXTRA_WORKERS))
            .filter(|e| !e.jobs.is_empty())
            .max_by(|a, b| a.jobs.peek().cmp(&b.jobs.peek()))?;
        let job = e.jobs.pop()?;
        e.in_flight += 1;
        PEAK_PER_ENDPOINT.fetch_max(e.in_flight, Ordering::AcqRel);
        Some((e.key.clone(), job))
    }

    /// Empties the queue (refreshes in flight stay counted), returning its providers.
    fn take_all(&mut self) -> Vec<Weak<dyn Refresh>> {
        let all = self
            .endpoints
            .iter_mut()
            .flat_map(|e| e.jobs.drain())
            .map(|j| j.provider)
            .collect();
        self.endpoints.retain(|e| e.in_flight > 0);
        all
    }

    fn done(&mut self, key: &Arc<str>) {
        if let Some(i) = self.endpoints.iter().position(|e| &e.key == key) {
            let e = &mut self.endpoints[i];
            e.in_flight -= 1;
            if e.in_flight == 0 && e.jobs.is_empty() {
                self.endpoints.swap_remove(i);
            }
        }
    }
}

/// The scheduler's state: a leaf lock (nothing else is taken while it is held; it is taken under
/// the handle table's read lock on the hit path). See `fork` for its place in the lock order.
static STATE: Mutex<State> = Mutex::new(State::new());
/// Signalled (one waiter) when a job is queued and when a worker took a job and more could
/// start; (all waiters) when a setting changes.
static WAKE: Condvar = Condvar::new();

/// Takes the scheduler's lock before fork() (called by the coordinator, `fork`).
pub(crate) fn fork_hold() {
    STATE.fork_hold();
}

/// Releases it after fork(). In the child: the parent's workers and their refreshes in flight
/// are not there, so the queue, the worker count and the in-flight counts start over (the
/// caches reset their `queued` flags), and the lock and condition variable are replaced.
///
/// # Safety
/// Only after `fork_hold` on this thread, once.
pub(crate) unsafe fn fork_release(side: Side) {
    // SAFETY: per the contract, this thread holds STATE; in the child it is the only thread.
    unsafe {
        if side == Side::Child {
            let s = STATE.held_mut();
            s.endpoints.clear();
            s.workers = 0;
            WAKE.fork_reset();
        }
        STATE.fork_release(side);
    }
}

/// Sets the number of worker threads of the pool (1 to [`MAX_WORKERS`]). Takes effect at once:
/// queued refreshes that a larger pool lets start get workers now; with a smaller one, workers
/// beyond it leave as their refreshes end. Returns false (and changes nothing) when out of range.
pub fn set_workers(n: usize) -> bool {
    set_setting(&WORKERS, n, MAX_WORKERS)
}

/// The configured number of worker threads.
pub fn workers() -> usize {
    WORKERS.load(Ordering::Acquire)
}

/// Sets how many refreshes may be in flight to one token endpoint at once (1 to
/// [`MAX_ENDPOINT_LIMIT`]). Takes effect at once, as [`set_workers`]. Returns false (and
/// changes nothing) when out of range.
pub fn set_endpoint_limit(n: usize) -> bool {
    set_setting(&ENDPOINT_LIMIT, n, MAX_ENDPOINT_LIMIT)
}

/// Stores `n` (1 to `max`) in `setting`, starts the workers that queued refreshes now allowed
/// to start need, and wakes every idle worker to apply it.
fn set_setting(setting: &AtomicUsize, n: usize, max: usize) -> bool {
    if !(1..=max).contains(&n) {
        return false;
    }
    let mut s = STATE.lock();
    setting.store(n, Ordering::Release);
    let start = count_starts(&mut s);
    drop(s);
    WAKE.notify_all();
    start_workers(start);
    true
}

/// Counts (under the lock) the workers that the refreshes able to start now need; the caller
/// starts them with [`start_workers`] once the lock is released.
fn count_starts(s: &mut State) -> usize {
    let n = s.starts_needed(workers(), endpoint_limit());
    s.workers += n;
    PEAK_WORKERS.fetch_max(s.workers, Ordering::AcqRel);
    n
}

/// Starts `n` workers counted by [`count_starts`]. One that cannot be started is uncounted;
/// when that leaves no worker alive, every queued refresh is given back
/// (`Refresh::unqueue`): a later hit queues it again, and a caller with nothing servable
/// fetches on its own thread as always.
fn start_workers(n: usize) {
    for _ in 0..n {
        let spawned = std::thread::Builder::new()
            .name("credvault-refresh".into())
            .spawn(work);
        if spawned.is_ok() {
            continue;
        }
        let mut s = STATE.lock();
        s.workers -= 1;
        if s.workers == 0 {
            // Nobody will run them: this one, and any queued while the lock was released (their
            // callers saw this worker counted and started none). Each is given back, outside
            // the lock (the last reference to a provider may go with it), so a later hit
            // queues it again.
            let given_back = s.take_all();
            drop(s);
            for p in given_back.iter().filter_map(Weak::upgrade) {
                p.unqueue();
            }
        }
    }
}

/// The configured per-endpoint limit.
pub fn endpoint_limit() -> usize {
    ENDPOINT_LIMIT.load(Ordering::Acquire)
}

/// The scheduler's state, for diagnostics and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Refreshes queued and not yet started.
    pub queued: usize,
    /// Worker threads alive now.
    pub workers: usize,
    /// Most worker threads alive at once since the process started.
    pub peak_workers: usize,
    /// Refreshes run by the workers since the process started.
    pub refreshes: u64,
    /// How long the refresh queued longest ago has waited, in ms (0 with an empty queue).
    pub oldest_queued_ms: u64,
    /// Most refreshes in flight to one token endpoint at once.
    pub peak_per_endpoint: usize,
}

/// Resets the peaks of [`Stats`] (for tests and benchmarks that measure one phase).
#[doc(hidden)]
pub fn reset_peaks() {
    let s = STATE.lock();
    PEAK_WORKERS.store(s.workers, Ordering::Release);
    PEAK_PER_ENDPOINT.store(s.busy(), Ordering::Release);
}

/// The scheduler's state now (see [`Stats`]).
pub fn stats() -> Stats {
    let s = STATE.lock();
    Stats {
        queued: s.queued(),
        workers: s.workers,
        peak_workers: PEAK_WORKERS.load(Ordering::Acquire),
        refreshes: REFRESHES.load(Ordering::Acquire),
        peak_per_endpoint: PEAK_PER_ENDPOINT.load(Ordering::Acquire),
        oldest_queued_ms: s
            .endpoints
            .iter()
            .flat_map(|e| e.jobs.iter())
            .map(|j| j.queued_at.elapsed().as_millis() as u64)
            .max()
            .unwrap_or(0),
    }
}

/// Queues a refresh (the caller set the provider's `queued` flag) and starts a worker if one is
/// needed and allowed. When no worker is alive to run it and none could be started, every
/// queued refresh is given back (`Refresh::unqueue`): a later hit queues it again, and a caller
/// with nothing servable fetches on its own thread as always.
pub(crate) fn enqueue(provider: Weak<dyn Refresh>, endpoint: Arc<str>, serve_until: Instant) {
    let mut s = STATE.lock();
    s.seq += 1;
    let seq = s.seq;
    let job = Job {
        serve_until,
        seq,
        provider,
        queued_at: Instant::now(),
    };
    s.push(endpoint, job);
    // A new worker is counted now and started once the lock is released: starting a thread
    // takes tens of microseconds, which callers queueing a refresh must not wait for.
    let start = count_starts(&mut s);
    // After the lock is released, so that the worker woken does not wake only to wait for it
    // (nor this caller for the worker).
    drop(s);
    if start == 0 {
        WAKE.notify_one();
    }
    start_workers(start);
}

/// A worker: runs the most urgent refresh that may start until the queue has stayed empty for
/// [`LINGER`], then exits; a worker beyond the pool exits as soon as it finds nothing to start.
fn work() {
    let mut s = STATE.lock();
    let mut lingered = false;
    loop {
        let (pool, limit) = (workers(), endpoint_limit());
        let Some((endpoint, job)) = s.take(pool, limit) else {
            if s.workers > pool || (lingered && s.queued() == 0) {
                s.workers -= 1;
                return;
            }
            if s.queued() == 0 {
                // Stay a moment for the next due refresh (tokens fetched together come due
                // together) rather than exit and have a thread started again at once.
                lingered = true;
                WAKE.wait_until(&mut s, Instant::now() + LINGER);
            } else {
                // Every queued refresh waits for a slot at its endpoint or in the pool: the
                // worker whose refresh frees one takes the next itself (the timeout is a
                // backstop).
                lingered = false;
                WAKE.wait_until(&mut s, Instant::now() + Duration::from_secs(1));
            }
            continue;
        };
        lingered = false;
        // More than this worker can take: pass the baton to one that waits, or start one when
        // none waits. (A finished refresh wakes nobody: its worker comes back here and takes
        // the next itself.)
        let start = count_starts(&mut s);
        let baton = start == 0 && s.startable(pool, limit) > 0;
        drop(s);
        if baton {
            WAKE.notify_one();
        }
        start_workers(start);
        if let Some(p) = job.provider.upgrade() {
            REFRESHES.fetch_add(1, Ordering::AcqRel);
            p.run_queued_refresh();
        }
        s = STATE.lock();
        s.done(&endpoint);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nothing;
    impl Refresh for Nothing {
        fn run_queued_refresh(&self) {}
        fn unqueue(&self) {}
    }

    fn job(s: &mut State, key: &Arc<str>, p: &Arc<dyn Refresh>, in_ms: u64) -> u64 {
        s.seq += 1;
        let now = Instant::now();
        let seq = s.seq;
        s.push(
            key.clone(),
            Job {
                serve_until: now + Duration::from_millis(in_ms),
                seq,
                provider: Arc::downgrade(p),
                queued_at: now,
            },
        );
        seq
    }

    #[test]
    fn takes_the_most_urgent_job_of_any_endpoint_with_a_free_slot() {
        let (a, b): (Arc<str>, Arc<str>) = ("https://a/token".into(), "https://b/token".into());
        let p: Arc<dyn Refresh> = Arc::new(Nothing);
        let mut s = State::new();
        let a1 = job(&mut s, &a, &p, 1_000);
        let a2 = job(&mut s, &a, &p, 2_000);
        let a3 = job(&mut s, &a, &p, 3_000);
        let b1 = job(&mut s, &b, &p, 2_500);
        let take = |s: &mut State| s.take(MAX_WORKERS, 2).map(|(k, j)| (k, j.seq));
        assert_eq!(take(&mut s), Some((a.clone(), a1)));
        assert_eq!(take(&mut s), Some((a.clone(), a2)));
        // `a` has 2 in flight: its next job (more urgent than b's) waits; b's goes first.
        assert_eq!(take(&mut s), Some((b.clone(), b1)));
        assert_eq!(take(&mut s), None, "a is full, b is empty");
        assert_eq!((s.queued(), s.busy()), (1, 3));
        s.done(&a);
        assert_eq!(take(&mut s), Some((a.clone(), a3)));
        s.done(&a);
        s.done(&a);
        s.done(&b);
        assert_eq!((s.queued(), s.busy(), s.endpoints.len()), (0, 0, 0));
    }

    /// With every worker of the pool busy, an endpoint with nothing in flight still starts one
    /// refresh (beyond the pool); one with a refresh in flight waits for a worker of the pool.
    #[test]
    fn a_full_pool_still_starts_an_idle_endpoints_refresh() {
        let (a, b): (Arc<str>, Arc<str>) = ("https://a/token".into(), "https://b/token".into());
        let p: Arc<dyn Refresh> = Arc::new(Nothing);
        let mut s = State::new();
        let a1 = job(&mut s, &a, &p, 1_000);
        job(&mut s, &a, &p, 2_000);
        let b1 = job(&mut s, &b, &p, 3_000);
        job(&mut s, &b, &p, 4_000);
        let take = |s: &mut State| s.take(1, 2).map(|(k, j)| (k, j.seq));
        assert_eq!(s.startable(1, 2), 2, "a's first and b's first");
        assert_eq!(take(&mut s), Some((a.clone(), a1)));
        assert_eq!(s.startable(1, 2), 1, "b's first only");
        assert_eq!(take(&mut s), Some((b.clone(), b1)), "beyond the pool");
        assert_eq!((s.startable(1, 2), take(&mut s)), (0, None));
        s.workers = 1;
        assert_eq!(s.starts_needed(1, 2), 0);
        s.done(&a);
        s.done(&b);
        // Both queued ones may start now: one on the pool, one beyond it.
        assert_eq!(s.startable(1, 2), 2);
        assert_eq!(s.starts_needed(1, 2), 1, "one of them on the worker alive");
        let cap = State {
            workers: 1 + MAX_EXTRA_WORKERS,
            ..State::new()
        };
        assert_eq!(cap.starts_needed(1, 2), 0);
    }

    /// What a failed worker start gives back: every queued refresh; those in flight stay.
    #[test]
    fn take_all_empties_the_queue_and_keeps_refreshes_in_flight() {
        let (a, b): (Arc<str>, Arc<str>) = ("https://a/token".into(), "https://b/token".into());
        let p: Arc<dyn Refresh> = Arc::new(Nothing);
        let mut s = State::new();
        job(&mut s, &a, &p, 1_000);
        job(&mut s, &a, &p, 2_000);
        job(&mut s, &b, &p, 3_000);
        assert!(s.take(MAX_WORKERS, 2).is_some());
        assert_eq!(s.take_all().len(), 2);
        assert_eq!((s.queued(), s.busy(), s.endpoints.len()), (0, 1, 1));
    }

    #[test]
    fn a_freed_providers_job_is_dropped_not_taken() {
        let a: Arc<str> = "https://a/token".into();
        let kept: Arc<dyn Refresh> = Arc::new(Nothing);
        let freed: Arc<dyn Refresh> = Arc::new(Nothing);
        let mut s = State::new();
        job(&mut s, &a, &freed, 1_000);
        let k = job(&mut s, &a, &kept, 2_000);
        drop(freed);
        assert_eq!(s.take(MAX_WORKERS, 1).map(|(_, j)| j.seq), Some(k));
        assert_eq!(s.queued(), 0);
    }
}
