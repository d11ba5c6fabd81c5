//! fork() safety.
//!
//! A child of fork() has the parent's memory but only the thread that forked: a lock held by
//! another thread at that moment would stay held forever, a background refresh in flight would
//! never finish, and pooled connections would be shared with the parent. So, through
//! `pthread_atfork`:
//! - before the fork, the forking thread takes every lock of the library (in the same order as
//!   every other code path: provider list, registry, then each provider's locks, then the key),
//!   so that nothing is half-updated when the memory is copied;
//! - after it, parent and child release them; the child also forgets fetches in flight (their
//!   threads do not exist there) and bumps the fork epoch, so that each provider builds a fresh
//!   HTTP agent instead of using the parent's connections.
//!
//! Cached tokens stay: they are still valid and a bearer token may be used by any process. The
//! child seals new values under a key of its own (see `secret`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once, Weak};

use parking_lot::{Mutex, RwLock};

/// Something that holds locks and must be brought across a fork.
pub(crate) trait ForkSafe: Send + Sync {
    /// Takes every lock (called before fork).
    fn fork_hold(&self);
    /// Releases them; in the child also resets per-process state.
    ///
    /// # Safety
    /// Only after `fork_hold` on this thread, once.
    unsafe fn fork_release(&self, child: bool);
}

static EPOCH: AtomicU64 = AtomicU64::new(0);
static LIVE: Mutex<Vec<Weak<dyn ForkSafe>>> = Mutex::new(Vec::new());
/// The objects held across the current fork, kept alive until it is over.
static HELD: Mutex<Vec<Arc<dyn ForkSafe>>> = Mutex::new(Vec::new());
static INSTALL: Once = Once::new();

/// How many forks this process descends through: changes in a child.
pub(crate) fn epoch() -> u64 {
    EPOCH.load(Ordering::Acquire)
}

/// How many registered objects are alive.
pub(crate) fn live() -> usize {
    LIVE.lock().iter().filter(|w| w.strong_count() > 0).count()
}

/// Registers an object to bring across forks (and installs the handlers once).
pub(crate) fn register(obj: Weak<dyn ForkSafe>) {
    INSTALL.call_once(|| {
        // SAFETY: the handlers are plain functions that live for the whole process.
        unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
    });
    let mut live = LIVE.lock();
    live.retain(|w| w.strong_count() > 0);
    live.push(obj);
}

/// Takes `m` and leaves it locked (released by [`release`]).
pub(crate) fn hold<T>(m: &Mutex<T>) {
    std::mem::forget(m.lock());
}

/// # Safety
/// `m` must have been locked by [`hold`] on this thread and not released since.
pub(crate) unsafe fn release<T>(m: &Mutex<T>) {
    // SAFETY: per the contract, the lock is held with no live guard.
    unsafe { m.force_unlock() };
}

/// Takes `l` for writing and leaves it locked (released by [`release_write`]).
pub(crate) fn hold_write<T>(l: &RwLock<T>) {
    std::mem::forget(l.write());
}

/// # Safety
/// `l` must have been write-locked by [`hold_write`] on this thread and not released since.
pub(crate) unsafe fn release_write<T>(l: &RwLock<T>) {
    // SAFETY: per the contract, the lock is held for writing with no live guard.
    unsafe { l.force_unlock_write() };
}

extern "C" fn prepare() {
    hold(&LIVE);
    // SAFETY: LIVE is held by this thread; reading it through the data pointer is exclusive.
    let live = unsafe { &*LIVE.data_ptr() };
    let objs: Vec<Arc<dyn ForkSafe>> = live.iter().filter_map(Weak::upgrade).collect();
    crate::registry::fork_hold();
    for o in &objs {
        o.fork_hold();
    }
    crate::secret::fork_hold();
    *HELD.lock() = objs;
    hold(&HELD);
}

fn finish(child: bool) {
    // SAFETY: `prepare` ran on this thread just before fork() and took these locks.
    unsafe {
        let objs = std::mem::take(&mut *HELD.data_ptr());
        release(&HELD);
        if child {
            EPOCH.fetch_add(1, Ordering::AcqRel);
        }
        crate::secret::fork_release();
        for o in objs.iter().rev() {
            o.fork_release(child);
        }
        crate::registry::fork_release();
        release(&LIVE);
        drop(objs);
    }
}

extern "C" fn parent() {
    finish(false);
}

extern "C" fn child() {
    finish(true);
}
