//! Pages for the most sensitive bytes: the sealing key and plaintext in use.
//!
//! A [`LockedBox`] holds one value in its own anonymous mapping that is `mlock`ed (so it never
//! reaches swap; best effort: `RLIMIT_MEMLOCK` may refuse, which [`LockedBox::is_locked`]
//! reports) and marked `MADV_DONTDUMP` (so it never reaches a core dump). It is wiped and
//! unmapped when dropped.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

/// One value in a locked, non-dumpable mapping of its own.
pub struct LockedBox<T> {
    ptr: NonNull<T>,
    len: usize,
    /// Whether the pages are locked now: a child of fork() inherits no memory lock until
    /// [`LockedBox::relock`].
    locked: AtomicBool,
}

// SAFETY: LockedBox owns its T exclusively, like Box<T>.
unsafe impl<T: Send> Send for LockedBox<T> {}
// SAFETY: shared access only hands out &T, like Box<T>.
unsafe impl<T: Sync> Sync for LockedBox<T> {}

fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as usize
    } else {
        4096
    }
}

/// Maps `size` bytes (rounded up to pages), locked and excluded from core dumps.
/// Returns the mapping, its length, and whether `mlock` succeeded.
fn map_locked(size: usize) -> Option<(NonNull<u8>, usize, bool)> {
    let page = page_size();
    let len = size.max(1).div_ceil(page) * page;
    // SAFETY: an anonymous private mapping; the result is checked.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return None;
    }
    // SAFETY: p..p+len is the mapping just made.
    let locked = unsafe { protect(p, len) };
    NonNull::new(p as *mut u8).map(|p| (p, len, locked))
}

/// Excludes the mapping from core dumps and locks it; returns whether `mlock` succeeded.
///
/// # Safety
/// `p..p+len` must be a mapping of ours.
#[cfg(not(miri))]
unsafe fn protect(p: *mut libc::c_void, len: usize) -> bool {
    // SAFETY: per the contract.
    unsafe {
        libc::madvise(p, len, libc::MADV_DONTDUMP);
        libc::mlock(p, len) == 0
    }
}

/// Miri runs `mmap` and `munmap` but not `madvise` or `mlock`: it checks the pointer handling,
/// with the mapping reported unlocked.
#[cfg(miri)]
unsafe fn protect(_: *mut libc::c_void, _: usize) -> bool {
    false
}

/// Locks a mapping of ours again; returns whether `mlock` succeeded.
///
/// # Safety
/// `p..p+len` must be a mapping of ours.
unsafe fn lock_again(p: *mut libc::c_void, len: usize) -> bool {
    #[cfg(not(miri))]
    {
        // SAFETY: per the contract.
        unsafe { libc::mlock(p, len) == 0 }
    }
    #[cfg(miri)]
    {
        let _ = (p, len);
        false
    }
}

/// Wipes and unmaps a mapping made by `map_locked`.
///
/// # Safety
/// `p`/`len` must be a live mapping from `map_locked`, not used afterwards.
unsafe fn unmap(p: NonNull<u8>, len: usize, locked: bool) {
    // SAFETY: per the contract.
    unsafe {
        std::ptr::write_bytes(p.as_ptr(), 0, len);
        std::hint::black_box(p);
        if locked {
            libc::munlock(p.as_ptr() as *const libc::c_void, len);
        }
        libc::munmap(p.as_ptr() as *mut libc::c_void, len);
    }
}

impl<T> LockedBox<T> {
    /// Moves `value` into a locked mapping. `None` if no mapping could be made.
    pub fn new(value: T) -> Option<LockedBox<T>> {
        const { assert!(std::mem::align_of::<T>() <= 4096) };
        let (p, len, locked) = map_locked(std::mem::size_of::<T>())?;
        let ptr = p.cast::<T>();
        // SAFETY: the mapping is page-aligned, large enough and exclusively ours.
        unsafe { ptr.as_ptr().write(value) };
        Some(LockedBox {
            ptr,
            len,
            locked: AtomicBool::new(locked),
        })
    }

    /// Whether the mapping is locked in RAM (false when `RLIMIT_MEMLOCK` refused).
    pub fn is_locked(&self) -> bool {
        self.locked.load(Ordering::Acquire)
    }

    /// Locks the mapping in RAM again, as a child of fork() must (memory locks are not
    /// inherited); returns whether `mlock` succeeded, which [`LockedBox::is_locked`] reports
    /// from then on.
    pub fn relock(&self) -> bool {
        // SAFETY: the mapping is ours for the box's lifetime.
        let locked = unsafe { lock_again(self.ptr.as_ptr().cast(), self.len) };
        self.locked.store(locked, Ordering::Release);
        locked
    }
}

impl<T> std::ops::Deref for LockedBox<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: ptr holds an initialised T for the box's lifetime.
        unsafe { self.ptr.as_ref() }
    }
}

impl<T> Drop for LockedBox<T> {
    fn drop(&mut self) {
        // SAFETY: the T is initialised and dropped once; the mapping is ours.
        unsafe {
            std::ptr::drop_in_place(self.ptr.as_ptr());
            unmap(
                self.ptr.cast(),
                self.len,
                self.locked.load(Ordering::Acquire),
            );
        }
    }
}

/// A byte buffer in a locked mapping, for plaintext while it is in use. Wiped when dropped.
pub struct LockedBuf {
    ptr: NonNull<u8>,
    len: usize,
    map_len: usize,
    locked: bool,
}

impl LockedBuf {
    /// A zeroed buffer of `len` bytes. `None` if no mapping could be made.
    pub fn new(len: usize) -> Option<LockedBuf> {
        let (ptr, map_len, locked) = map_locked(len)?;
        Some(LockedBuf {
            ptr,
            len,
            map_len,
            locked,
        })
    }
}

impl std::ops::Deref for LockedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: len <= map_len bytes of a live mapping (zero-filled on creation).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for LockedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, exclusively borrowed.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for LockedBuf {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours and not used after this.
        unsafe { unmap(self.ptr, self.map_len, self.locked) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::cell::Cell;
    use std::rc::Rc;

    #[test]
    fn locked_box_round_trip() {
        let b = LockedBox::new([7u64; 8]).unwrap();
        assert_eq!(b[3], 7);
        let mut buf = LockedBuf::new(100).unwrap();
        assert!(buf.iter().all(|&x| x == 0));
        buf[99] = 1;
        assert_eq!(buf.len(), 100);
    }

    /// Drops its value exactly once, and the value's own heap memory with it.
    #[test]
    fn locked_box_drops_its_value_once() {
        struct Counted(Rc<Cell<u32>>, Vec<u8>);
        impl Drop for Counted {
            fn drop(&mut self) {
                self.0.set(self.0.get() + 1);
            }
        }
        let drops = Rc::new(Cell::new(0));
        let b = LockedBox::new(Counted(drops.clone(), vec![1; 64])).unwrap();
        assert_eq!(b.1.len(), 64);
        drop(b);
        assert_eq!(drops.get(), 1);
    }

    /// Every size, including 0 and exact and off-by-one page multiples, maps and is writable end
    /// to end (Miri checks every access against the mapping's bounds).
    #[test]
    fn locked_buf_sizes() {
        let page = page_size();
        for len in [0, 1, page - 1, page, page + 1, 2 * page] {
            let mut buf = LockedBuf::new(len).unwrap();
            assert_eq!(buf.len(), len);
            buf.fill(0xa5);
            assert!(buf.iter().all(|&x| x == 0xa5));
        }
        // A value larger than a page, and a zero-sized one.
        let big = LockedBox::new([3u8; 10_000]).unwrap();
        assert_eq!(big[9_999], 3);
        let unit = LockedBox::new(()).unwrap();
        assert_eq!(*unit, ());
    }
}
