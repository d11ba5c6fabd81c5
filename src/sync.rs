//! Locks that can be brought across fork(): the only lock types the library uses.
//!
//! A leaf module: it depends on nothing else in the crate. The atfork coordinator (`fork`) and
//! the modules that own locks use it; it calls none of them.
//!
//! Each type wraps the standard library's lock (on Linux a futex word: all of its state is in
//! the lock itself, with no global table of waiting threads) around data kept beside it, and adds
//! three operations for the fork handlers:
//! - [`Mutex::fork_hold`] takes the lock before fork() and keeps the guard inside the lock;
//! - in the parent, [`Mutex::fork_release`] drops that guard: an ordinary unlock;
//! - in the child, [`Mutex::fork_release`] forgets the guard and writes a fresh, unlocked lock
//!   over the old one. The old lock is never unlocked and a [`Condvar`] is never notified there:
//!   both are replaced ([`Condvar::fork_reset`]), so nothing in the child can depend on a thread
//!   of the parent that was waiting at the moment of the fork.
//!
//! Why not parking_lot: its locks keep waiting threads in a
//! process-wide hash table guarded by per-bucket locks. A child of fork() inherits the table with
//! entries for threads that do not exist in it, so an unlock or a notification can hand the lock
//! to one of them (held for good), and a bucket lock held by another thread at the moment of the
//! fork stays held in the child, so that even the child's fork handler can hang. A lock whose whole
//! state is one word can simply be replaced; one whose state is partly in a global table cannot.
//!
//! Poisoning is ignored (as with parking_lot): the data these locks guard is valid after any
//! panic, because no code under them leaves it half-updated.

use std::cell::{Cell, UnsafeCell};
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::sync::{self as ss, PoisonError, TryLockError};
use std::time::Instant;

thread_local! {
    /// Locks of this module this thread holds now (guards alive).
    static HELD: Cell<u32> = const { Cell::new(0) };
    /// Run once when this thread next holds no lock (see [`when_released`]).
    static ON_RELEASE: Cell<Option<fn()>> = const { Cell::new(None) };
}

/// Counts a lock held by this thread for as long as it lives (a field of every guard, its last,
/// so that it is dropped after the lock is released). When the thread's last lock is released,
/// runs what [`when_released`] asked for: the library's rule that no lock is held while user
/// code runs (`events` defers the log callback with it).
struct Held(PhantomData<*const ()>);

impl Held {
    #[inline]
    fn new() -> Held {
        let _ = HELD.try_with(|h| h.set(h.get() + 1));
        Held(PhantomData)
    }
}

impl Drop for Held {
    #[inline]
    fn drop(&mut self) {
        let last = HELD
            .try_with(|h| {
                let n = h.get().saturating_sub(1);
                h.set(n);
                n == 0
            })
            .unwrap_or(false);
        if last && !std::thread::panicking() {
            if let Ok(Some(f)) = ON_RELEASE.try_with(Cell::take) {
                f();
            }
        }
    }
}

/// Whether this thread holds a lock of this module now (true when it cannot tell: its
/// thread-local storage is gone).
#[inline]
pub(crate) fn lock_held() -> bool {
    HELD.try_with(|h| h.get() > 0).unwrap_or(true)
}

/// Runs `f` once, on this thread, as soon as it holds no lock of this module: at once if it
/// holds none, else when it releases its last one. (One function at a time: a second call
/// before the first ran replaces it.)
pub(crate) fn when_released(f: fn()) {
    if lock_held() {
        let _ = ON_RELEASE.try_with(|r| r.set(Some(f)));
    } else {
        f();
    }
}

/// Which process a fork handler runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Parent,
    Child,
}

/// A standard-library lock whose whole state is in the lock itself (on Linux a futex word), so
/// that a child of fork() can write a fresh one over it: the `raw` lock of [`Mutex`] and of
/// [`RwLock`], with the guard type their `fork_hold` keeps.
trait RawLock: Default {
    type Held;
}

impl RawLock for ss::Mutex<()> {
    type Held = ss::MutexGuard<'static, ()>;
}

impl RawLock for ss::RwLock<()> {
    type Held = ss::RwLockWriteGuard<'static, ()>;
}

/// The body of [`Mutex::fork_release`] and [`RwLock::fork_release`]: takes the guard that
/// `fork_hold` kept in `held`; in the parent drops it (an ordinary unlock), in the child forgets
/// it and writes a fresh, unlocked lock over `raw` (the old one is never unlocked).
///
/// # Safety
/// `raw` and `held` are the cells of one lock; `fork_hold` ran on this thread, and
/// `fork_release` not since; in the child, no other reference to this lock's internals is in use
/// (true after fork(): one thread).
unsafe fn release_held<R: RawLock>(
    raw: &UnsafeCell<R>,
    held: &UnsafeCell<Option<R::Held>>,
    side: Side,
) {
    // SAFETY: this thread holds the lock (fork_hold), so it alone touches `held`.
    let guard = unsafe { (*held.get()).take() };
    match side {
        Side::Parent => drop(guard),
        Side::Child => {
            std::mem::forget(guard);
            // SAFETY: per the contract nobody uses the old lock; it needs no drop (a futex
            // word, or at worst a leak in the child).
            unsafe { std::ptr::write(raw.get(), R::default()) };
        }
    }
}

/// A mutual exclusion lock that can be brought across fork().
pub(crate) struct Mutex<T> {
    raw: UnsafeCell<ss::Mutex<()>>,
    /// The guard taken by [`Mutex::fork_hold`]; touched only by the thread holding `raw`.
    held: UnsafeCell<Option<ss::MutexGuard<'static, ()>>>,
    data: UnsafeCell<T>,
}

// SAFETY: like std::sync::Mutex<T>: `data` is only reached through a guard of `raw` (or by the
// thread that holds `raw` through `fork_hold`), and `held` only by the thread holding `raw`.
unsafe impl<T: Send> Send for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Mutex<T> {}

/// Access to a [`Mutex`]'s data; unlocks when dropped.
pub(crate) struct MutexGuard<'a, T> {
    lock: &'a Mutex<T>,
    /// `None` only while [`Condvar::wait_until`] has given the lock up.
    raw: Option<ss::MutexGuard<'a, ()>>,
    _held: Held,
}

impl<T> Mutex<T> {
    pub(crate) const fn new(value: T) -> Mutex<T> {
        Mutex {
            raw: UnsafeCell::new(ss::Mutex::new(())),
            held: UnsafeCell::new(None),
            data: UnsafeCell::new(value),
        }
    }

    fn raw(&self) -> &ss::Mutex<()> {
        // SAFETY: `raw` is written only by `fork_release(Child)`, which runs in a child of
        // fork() while its only thread holds the lock through `fork_hold`: no reference to it is
        // in use then.
        unsafe { &*self.raw.get() }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        let raw = self.raw().lock().unwrap_or_else(PoisonError::into_inner);
        MutexGuard {
            lock: self,
            raw: Some(raw),
            _held: Held::new(),
        }
    }

    /// The lock if it is free now.
    #[allow(dead_code)]
    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        let raw = match self.raw().try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        Some(MutexGuard {
            lock: self,
            raw: Some(raw),
            _held: Held::new(),
        })
    }

    /// Takes the lock before fork() and keeps it (see the module doc).
    pub(crate) fn fork_hold(&self) {
        let guard = self.raw().lock().unwrap_or_else(PoisonError::into_inner);
        // SAFETY: the guard is dropped or forgotten by `fork_release` on this thread, while
        // `self` is still alive (the fork handlers keep every held object alive until then).
        let guard: ss::MutexGuard<'static, ()> = unsafe { std::mem::transmute(guard) };
        // SAFETY: this thread holds the lock, so it alone touches `held`.
        unsafe { *self.held.get() = Some(guard) };
    }

    /// The data, while this thread holds the lock through [`Mutex::fork_hold`].
    ///
    /// # Safety
    /// `fork_hold` ran on this thread and `fork_release` not yet; the reference must not outlive
    /// that, nor overlap another from this function.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn held_mut(&self) -> &mut T {
        // SAFETY: per the contract, this thread holds the lock exclusively.
        unsafe { &mut *self.data.get() }
    }

    /// Ends [`Mutex::fork_hold`]: unlocks in the parent; in the child, replaces the lock by a
    /// fresh unlocked one (the old one is never unlocked).
    ///
    /// # Safety
    /// `fork_hold` ran on this thread, and `fork_release` not since; in the child, no other
    /// reference to this lock's internals is in use (true after fork(): one thread).
    pub(crate) unsafe fn fork_release(&self, side: Side) {
        // SAFETY: `raw` and `held` are this lock's cells, and this function's contract is
        // `release_held`'s, passed through.
        unsafe { release_held(&self.raw, &self.held, side) }
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.try_lock() {
            Some(g) => f.debug_tuple("Mutex").field(&*g).finish(),
            None => f.write_str("Mutex(<locked>)"),
        }
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock, and `&mut self` makes this access exclusive.
        unsafe { &mut *self.lock.data.get() }
    }
}

/// A condition variable for [`Mutex`], replaced (never notified) in a child of fork().
pub(crate) struct Condvar(UnsafeCell<ss::Condvar>);

// SAFETY: like std::sync::Condvar; the cell is written only by `fork_reset` (see there).
unsafe impl Send for Condvar {}
// SAFETY: as above.
unsafe impl Sync for Condvar {}

impl Condvar {
    pub(crate) const fn new() -> Condvar {
        Condvar(UnsafeCell::new(ss::Condvar::new()))
    }

    fn raw(&self) -> &ss::Condvar {
        // SAFETY: written only by `fork_reset`, in a child of fork() (one thread, not waiting).
        unsafe { &*self.0.get() }
    }

    pub(crate) fn notify_all(&self) {
        self.raw().notify_all();
    }

    pub(crate) fn notify_one(&self) {
        self.raw().notify_one();
    }

    /// Gives up the lock of `guard` until notified (or spuriously woken) or until `deadline`,
    /// and takes it again. Returns true when it returned because the deadline passed.
    pub(crate) fn wait_until<T>(&self, guard: &mut MutexGuard<'_, T>, deadline: Instant) -> bool {
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        let Some(raw) = guard.raw.take() else {
            return true;
        };
        let (raw, result) = self
            .raw()
            .wait_timeout(raw, deadline - now)
            .unwrap_or_else(PoisonError::into_inner);
        guard.raw = Some(raw);
        result.timed_out()
    }

    /// Replaces the condition variable by a fresh one, in a child of fork(): a thread of the
    /// parent that was waiting does not exist there.
    ///
    /// # Safety
    /// Only in a child of fork(), from its fork handler (one thread, nobody waiting).
    pub(crate) unsafe fn fork_reset(&self) {
        // SAFETY: per the contract nobody uses the old one; it needs no drop.
        unsafe { std::ptr::write(self.0.get(), ss::Condvar::new()) };
    }
}

impl Default for Condvar {
    fn default() -> Self {
        Condvar::new()
    }
}

impl std::fmt::Debug for Condvar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Condvar")
    }
}

/// A reader-writer lock that can be brought across fork().
pub(crate) struct RwLock<T> {
    raw: UnsafeCell<ss::RwLock<()>>,
    /// The write guard taken by [`RwLock::fork_hold`]; touched only by its holder.
    held: UnsafeCell<Option<ss::RwLockWriteGuard<'static, ()>>>,
    data: UnsafeCell<T>,
}

// SAFETY: like std::sync::RwLock<T>.
unsafe impl<T: Send> Send for RwLock<T> {}
// SAFETY: like std::sync::RwLock<T>: readers share `&T`, so T must be Sync too.
unsafe impl<T: Send + Sync> Sync for RwLock<T> {}

/// Shared access to an [`RwLock`]'s data.
pub(crate) struct RwLockReadGuard<'a, T> {
    data: &'a T,
    _raw: ss::RwLockReadGuard<'a, ()>,
    _held: Held,
}

/// Exclusive access to an [`RwLock`]'s data.
pub(crate) struct RwLockWriteGuard<'a, T> {
    lock: &'a RwLock<T>,
    _raw: ss::RwLockWriteGuard<'a, ()>,
    _held: Held,
}

impl<T> RwLock<T> {
    pub(crate) const fn new(value: T) -> RwLock<T> {
        RwLock {
            raw: UnsafeCell::new(ss::RwLock::new(())),
            held: UnsafeCell::new(None),
            data: UnsafeCell::new(value),
        }
    }

    #[inline]
    fn raw(&self) -> &ss::RwLock<()> {
        // SAFETY: as for Mutex::raw.
        unsafe { &*self.raw.get() }
    }

    #[inline]
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, T> {
        let raw = self.raw().read().unwrap_or_else(PoisonError::into_inner);
        RwLockReadGuard {
            // SAFETY: the read lock is held for the guard's lifetime.
            data: unsafe { &*self.data.get() },
            _raw: raw,
            _held: Held::new(),
        }
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, T> {
        let raw = self.raw().write().unwrap_or_else(PoisonError::into_inner);
        RwLockWriteGuard {
            lock: self,
            _raw: raw,
            _held: Held::new(),
        }
    }

    /// The read lock if it can be had now.
    #[allow(dead_code)]
    pub(crate) fn try_read(&self) -> Option<RwLockReadGuard<'_, T>> {
        let raw = match self.raw().try_read() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        Some(RwLockReadGuard {
            // SAFETY: the read lock is held for the guard's lifetime.
            data: unsafe { &*self.data.get() },
            _raw: raw,
            _held: Held::new(),
        })
    }

    /// The write lock if it can be had now.
    #[allow(dead_code)]
    pub(crate) fn try_write(&self) -> Option<RwLockWriteGuard<'_, T>> {
        let raw = match self.raw().try_write() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        Some(RwLockWriteGuard {
            lock: self,
            _raw: raw,
            _held: Held::new(),
        })
    }

    /// Takes the lock for writing before fork() and keeps it (see the module doc).
    pub(crate) fn fork_hold(&self) {
        let guard = self.raw().write().unwrap_or_else(PoisonError::into_inner);
        // SAFETY: as in Mutex::fork_hold.
        let guard: ss::RwLockWriteGuard<'static, ()> = unsafe { std::mem::transmute(guard) };
        // SAFETY: this thread holds the lock for writing, so it alone touches `held`.
        unsafe { *self.held.get() = Some(guard) };
    }

    /// The data, while this thread holds the lock through [`RwLock::fork_hold`].
    ///
    /// # Safety
    /// As for [`Mutex::held_mut`].
    #[cfg(test)]
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn held_mut(&self) -> &mut T {
        // SAFETY: per the contract, this thread holds the lock exclusively.
        unsafe { &mut *self.data.get() }
    }

    /// Ends [`RwLock::fork_hold`], as [`Mutex::fork_release`] does.
    ///
    /// # Safety
    /// As for [`Mutex::fork_release`].
    pub(crate) unsafe fn fork_release(&self, side: Side) {
        // SAFETY: as in Mutex::fork_release.
        unsafe { release_held(&self.raw, &self.held, side) }
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.try_read() {
            Some(g) => f.debug_tuple("RwLock").field(&*g).finish(),
            None => f.write_str("RwLock(<locked>)"),
        }
    }
}

impl<T> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        self.data
    }
}

impl<T> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock for writing.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock for writing; `&mut self` makes this exclusive.
        unsafe { &mut *self.lock.data.get() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// Held locks are released in the parent and replaced in the child; the data stays.
    #[test]
    fn hold_and_release_on_both_sides() {
        let m = Mutex::new(5u32);
        let l = RwLock::new(7u32);
        for side in [Side::Parent, Side::Child] {
            m.fork_hold();
            l.fork_hold();
            assert!(m.try_lock().is_none(), "mutex held");
            assert!(l.try_read().is_none(), "rwlock held for writing");
            // SAFETY: held by this thread just above.
            unsafe {
                *m.held_mut() += 1;
                *l.held_mut() += 1;
                l.fork_release(side);
                m.fork_release(side);
            }
            assert!(m.try_lock().is_some(), "mutex free after {side:?}");
            assert!(l.try_write().is_some(), "rwlock free after {side:?}");
        }
        assert_eq!(*m.lock(), 7);
        assert_eq!(*l.read(), 9);
    }

    #[test]
    fn condvar_wakes_and_times_out() {
        let m = std::sync::Arc::new(Mutex::new(false));
        let cv = std::sync::Arc::new(Condvar::new());
        let (m2, cv2) = (m.clone(), cv.clone());
        let t = std::thread::spawn(move || {
            *m2.lock() = true;
            cv2.notify_all();
        });
        let mut g = m.lock();
        let far = Instant::now() + Duration::from_secs(60);
        while !*g {
            assert!(!cv.wait_until(&mut g, far));
        }
        drop(g);
        t.join().unwrap();
        let mut g = m.lock();
        assert!(cv.wait_until(&mut g, Instant::now() + Duration::from_millis(1)) || *g);
        // SAFETY: no thread waits on it.
        unsafe { cv.fork_reset() };
        cv.notify_all();
    }
}
