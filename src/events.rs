//! Structured events for the host's log: fetch started and finished (with latency), retry (with
//! the reason), refresh failed while still serving, cool-down entered and ended, configuration
//! reloaded. The default is to log nothing.
//!
//! An event is one JSON object (`{"level": "info", "event": "fetch_finished", "provider": ...,
//! ...}`) handed to the hook the host installed ([`set_hook`], or `vault_set_log_callback` in C).
//! Events are built from statuses, numbers, names and error messages, which never carry a
//! secret or a token (see `error`): nothing that could is put into one at the source.
//!
//! Events are delivered on the thread that caused them, never with a library lock held. A hook
//! may call back into the library: events raised meanwhile on that thread are dropped (no
//! recursion), and a call that would wait for a fetch returns at once instead of waiting on one
//! this thread itself is running. A Rust hook that panics is caught; the event is lost, nothing
//! else.

use std::cell::Cell;
use std::ffi::{c_char, c_void, CString};
use std::sync::atomic::{AtomicI32, AtomicPtr, Ordering};

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

/// The installed sink. Replaced ones are leaked on purpose: another thread may be calling one at
/// that moment, and a host installs a hook once or twice in its life.
static SINK: AtomicPtr<Sink> = AtomicPtr::new(std::ptr::null_mut());
/// The least level delivered; above every level when nothing is installed.
static MIN_LEVEL: AtomicI32 = AtomicI32::new(i32::MAX);

thread_local! {
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
}

fn install(sink: Option<Sink>, min: Level) {
    let new = sink.map_or(std::ptr::null_mut(), |s| Box::into_raw(Box::new(s)));
    MIN_LEVEL.store(i32::MAX, Ordering::SeqCst);
    SINK.store(new, Ordering::SeqCst);
    if !new.is_null() {
        MIN_LEVEL.store(min as i32, Ordering::SeqCst);
    }
}

/// Installs a Rust hook for events at `min` and above (`None` removes it).
pub fn set_hook(hook: Option<RustHook>, min: Level) {
    install(hook.map(Sink::Rust), min);
}

/// Installs a C callback (`None` removes it).
pub fn set_callback(f: Option<LogCallback>, min: Level, userdata: *mut c_void) {
    install(
        f.map(|f| Sink::C {
            f,
            userdata: userdata as usize,
        }),
        min,
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

/// Delivers an event. `fields` must hold no secret; the caller holds no library lock.
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
    let sink = SINK.load(Ordering::Acquire);
    if sink.is_null() {
        return;
    }
    let _ = IN_HOOK.try_with(|h| h.set(true));
    // SAFETY: sinks are never freed once installed (see SINK).
    match unsafe { &*sink } {
        Sink::C { f, userdata } => {
            if let Ok(c) = CString::new(text) {
                // SAFETY: the host's callback, with the pointer it gave us and a valid string.
                unsafe { f(*userdata as *mut c_void, level as i32, c.as_ptr()) };
            }
        }
        Sink::Rust(hook) => {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(level, &text)));
        }
    }
    let _ = IN_HOOK.try_with(|h| h.set(false));
}
