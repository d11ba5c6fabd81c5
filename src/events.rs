//! Structured events for the host's log: fetch started and finished (with latency), retry (with
//! the reason), refresh failed while still serving, cool-down entered and ended, configuration
//! reloaded. The default is to log nothing.
//!
//! An event is one JSON object (`{"level": "info", "event": "fetch_finished", "provider": ...,
//! ...}`) handed to the hook the host installed ([`set_hook`], or `vault_set_log_callback` in C).
//! Events are built from statuses, numbers, names and error messages, which never carry a
//! secret or a token (see `error`): nothing that could is put into one at the source.
//!
//! Events are delivered on the thread that caused them, never with a library lock held: an event
//! raised while the thread holds one (an invalidation under the handle table's lock) is kept and
//! delivered the moment the thread's last lock is released (`sync::when_released`). That is the
//! rule for all user code, not a care taken at each call site: every lock of the library is a
//! `sync` lock, which counts the locks each thread holds. A hook may call back into the library:
//! events raised meanwhile on that thread are dropped (no recursion), and a call that would wait
//! for a fetch returns at once instead of waiting on one this thread itself is running. A Rust
//! hook that panics is caught; the event is lost, nothing else.
//!
//! Replacing the hook ([`set_hook`], [`set_callback`]) waits until no call of the old one is in
//! progress, and from then on it is never entered again; the old one is then freed. The wait
//! leaves out the calls that are themselves replacing the hook (a callback that replaces itself,
//! or two that replace each other, must not wait for each other forever): such a call goes on
//! when it returns.

use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_void, CString};
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::sync::{Condvar, Mutex, Side};

/// Event levels; the numbers are Python's `logging` levels.
#[repr(i32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Detail for debugging (Python's `logging.DEBUG`).
    Debug = 10,
    /// Normal operation (`logging.INFO`).
    Info = 20,
    /// A failure or a degraded state worth attention (`logging.WARNING`).
    Warn = 30,
    /// A failure that needs action (`logging.ERROR`).
    Error = 40,
}

impl Level {
    /// The level's name in an event (`"debug"`, `"info"`, `"warning"`, `"error"`).
    pub fn name(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warning",
            Level::Error => "error",
        }
    }
}

/// A C callback: `userdata`, the level, the event as a NUL-terminated JSON object (valid only
/// during the call).
pub type LogCallback =
    unsafe extern "C" fn(userdata: *mut c_void, level: i32, event_json: *const c_char);

type RustHook = Box<dyn Fn(Level, &str) + Send + Sync>;

enum Sink {
    C { f: LogCallback, userdata: usize },
    Rust(RustHook),
}

/// An installed sink, with its least level and the count of its calls in progress.
struct Installed {
    sink: Sink,
    min: i32,
    /// Deliveries that took this sink and have not finished (counted under [`SLOT`]).
    running: AtomicUsize,
    /// Of those, the ones whose thread is inside [`install`] now (a hook replacing the hook):
    /// the wait for the sink's calls to end leaves them out.
    replacing: AtomicUsize,
}

impl Drop for Installed {
    fn drop(&mut self) {
        SINKS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The installed sink. Deliveries take a reference under the lock (never call it there); a
/// replacement swaps it under the lock, then waits on [`ENDED`] until the old one's calls are
/// over. The lock is a leaf: nothing else is locked while it is held.
static SLOT: Mutex<Option<Arc<Installed>>> = Mutex::new(None);
/// Notified when a delivery ends.
static ENDED: Condvar = Condvar::new();
/// The least level delivered (the installed sink's); above every level when none is installed.
static MIN_LEVEL: AtomicI32 = AtomicI32::new(i32::MAX);
/// Sinks alive (installed, or replaced and still in a call), for `census`.
static SINKS: AtomicUsize = AtomicUsize::new(0);

/// How many sinks are alive.
pub(crate) fn sinks_alive() -> usize {
    SINKS.load(Ordering::SeqCst)
}

thread_local! {
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
    /// The sink this thread is calling now, if any.
    static DELIVERING: RefCell<Option<Arc<Installed>>> = const { RefCell::new(None) };
    /// Events raised while this thread held a library lock, to deliver once it holds none.
    static PENDING: RefCell<Vec<(Level, String)>> = const { RefCell::new(Vec::new()) };
}

fn install(sink: Option<Sink>, min: i32) {
    let new = sink.map(|sink| {
        SINKS.fetch_add(1, Ordering::SeqCst);
        Arc::new(Installed {
            sink,
            min,
            running: AtomicUsize::new(0),
            replacing: AtomicUsize::new(0),
        })
    });
    // The sink this thread is itself calling (a hook that replaces the hook): not waited for.
    let mine = DELIVERING
        .try_with(|d| d.try_borrow().ok().and_then(|d| d.clone()))
        .ok()
        .flatten();
    let mut slot = SLOT.lock();
    MIN_LEVEL.store(new.as_ref().map_or(i32::MAX, |n| n.min), Ordering::SeqCst);
    let old = std::mem::replace(&mut *slot, new);
    if let Some(m) = &mine {
        m.replacing.fetch_add(1, Ordering::SeqCst);
        ENDED.notify_all();
    }
    if let Some(old) = &old {
        while old.running.load(Ordering::SeqCst) > old.replacing.load(Ordering::SeqCst) {
            ENDED.wait_until(&mut slot, Instant::now() + Duration::from_secs(1));
        }
    }
    if let Some(m) = &mine {
        m.replacing.fetch_sub(1, Ordering::SeqCst);
    }
    drop(slot);
    // Freed here unless a call of it is still running on a thread that is replacing the hook
    // (then by that call, when it ends).
    drop(old);
}

/// Installs a Rust hook for events at `min` and above (`None` removes it). Returns once no call
/// of the hook it replaced is in progress; that one is never called again.
pub fn set_hook(hook: Option<RustHook>, min: Level) {
    install(hook.map(Sink::Rust), min as i32);
}

/// Installs a C callback for events at `min_level` and above, whatever the number (`None`
/// removes it). Returns once no call of the callback it replaced is in progress.
pub fn set_callback(f: Option<LogCallback>, min_level: i32, userdata: *mut c_void) {
    install(
        f.map(|f| Sink::C {
            f,
            userdata: userdata as usize,
        }),
        min_level,
    );
}

/// Whether an event at `level` would be delivered (cheap: one atomic load).
#[inline]
pub fn enabled(level: Level) -> bool {
    level as i32 >= MIN_LEVEL.load(Ordering::Relaxed)
}

/// Whether this thread is running the hook now (a call from inside it must not wait).
pub fn in_hook() -> bool {
    IN_HOOK.try_with(Cell::get).unwrap_or(true)
}

/// Reports an event. `fields` must hold no secret. Delivered now if this thread holds no library
/// lock, else as soon as it releases its last one.
pub fn emit(level: Level, event: &str, provider: &str, fields: serde_json::Value) {
    if !enabled(level) || in_hook() {
        return;
    }
    let mut obj = serde_json::Map::new();
    obj.insert("level".into(), level.name().into());
    obj.insert("event".into(), event.into());
    obj.insert("provider".into(), provider.into());
    if let serde_json::Value::Object(f) = fields {
        obj.extend(f);
    }
    let text = serde_json::Value::Object(obj).to_string();
    if crate::sync::lock_held() {
        let kept = PENDING.try_with(|p| {
            if let Ok(mut p) = p.try_borrow_mut() {
                p.push((level, text));
            }
        });
        if kept.is_ok() {
            crate::sync::when_released(deliver_pending);
        }
        return;
    }
    deliver(level, &text);
}

/// Delivers the events this thread kept while it held a lock (it holds none now).
fn deliver_pending() {
    let pending = PENDING
        .try_with(|p| {
            p.try_borrow_mut()
                .map(|mut p| std::mem::take(&mut *p))
                .unwrap_or_default()
        })
        .unwrap_or_default();
    for (level, text) in pending {
        deliver(level, &text);
    }
}

/// Hands one event to the installed sink. Called with no library lock held.
fn deliver(level: Level, text: &str) {
    let Some(sink) = ({
        let slot = SLOT.lock();
        slot.as_ref()
            .filter(|s| level as i32 >= s.min)
            .inspect(|s| {
                s.running.fetch_add(1, Ordering::SeqCst);
            })
            .cloned()
    }) else {
        return;
    };
    let _ = IN_HOOK.try_with(|h| h.set(true));
    let _ = DELIVERING.try_with(|d| d.try_borrow_mut().map(|mut d| *d = Some(sink.clone())));
    match &sink.sink {
        Sink::C { f, userdata } => {
            if let Ok(c) = CString::new(text) {
                // SAFETY: the host's callback, with the pointer it gave us and a valid string.
                unsafe { f(*userdata as *mut c_void, level as i32, c.as_ptr()) };
            }
        }
        Sink::Rust(hook) => {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(level, text)));
        }
    }
    let _ = DELIVERING.try_with(|d| d.try_borrow_mut().map(|mut d| *d = None));
    let _ = IN_HOOK.try_with(|h| h.set(false));
    {
        let _slot = SLOT.lock();
        sink.running.fetch_sub(1, Ordering::SeqCst);
        ENDED.notify_all();
    }
    drop(sink);
}

/// Takes the sink's lock before fork() (see `fork`).
pub(crate) fn fork_hold() {
    SLOT.fork_hold();
}

/// Releases it after fork(). In the child, the calls in progress on the parent's other threads
/// do not exist: the installed sink counts only this thread's own call, if it is in one.
///
/// # Safety
/// Only after `fork_hold` on this thread, once.
pub(crate) unsafe fn fork_release(side: Side) {
    if side == Side::Child {
        let mine = DELIVERING
            .try_with(|d| d.try_borrow().ok().and_then(|d| d.clone()))
            .ok()
            .flatten();
        // SAFETY: held by this thread (fork_hold), the only one in the child.
        let slot = unsafe { SLOT.held_mut() };
        for s in slot.iter().chain(mine.iter()) {
            let own = mine.as_ref().is_some_and(|m| Arc::ptr_eq(m, s));
            s.running.store(own as usize, Ordering::SeqCst);
            s.replacing.store(0, Ordering::SeqCst);
        }
        // SAFETY: in the child, from its fork handler: nobody waits on it.
        unsafe { ENDED.fork_reset() };
    }
    // SAFETY: per the contract.
    unsafe { SLOT.fork_release(side) };
}
