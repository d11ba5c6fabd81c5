//! A zeroizing global allocator: every block the library's Rust code frees is wiped first.
//!
//! Sealing protects the secrets credvault holds on purpose, but plaintext also passes through
//! buffers it does not own: ureq's request and response buffers, rustls' TLS records, the `http`
//! crate's header values, serde_json's scratch space. Every one of those is a Rust allocation of
//! this library, so wiping at `dealloc` (and at the old block of a moving `realloc`) covers them
//! all. Installed as the global allocator by the default `zeroizing-allocator` feature (a Rust
//! program that brings its own allocator turns the feature off and wraps it in
//! [`ZeroizingAlloc`] itself).

use std::alloc::{GlobalAlloc, Layout, System};

/// Wraps an allocator so that every freed block is zeroed before it is handed back.
pub struct ZeroizingAlloc<A = System>(pub A);

/// Zeroes `len` bytes at `p` in a way the optimiser may not remove before a free.
///
/// # Safety
/// `p` must be valid for `len` writable bytes.
#[inline]
unsafe fn wipe(p: *mut u8, len: usize) {
    // SAFETY: per the contract.
    unsafe { std::ptr::write_bytes(p, 0, len) };
    // Make the zeroed memory observable, so the stores are not dead before the free.
    std::hint::black_box(p);
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

// SAFETY: every method forwards to the inner allocator with the caller's layout; realloc is
// alloc + copy + wipe + dealloc, which preserves GlobalAlloc's contract.
unsafe impl<A: GlobalAlloc> GlobalAlloc for ZeroizingAlloc<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { self.0.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { self.0.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: ptr is a live block of layout.size() bytes (GlobalAlloc contract).
        unsafe {
            wipe(ptr, layout.size());
            self.0.dealloc(ptr, layout)
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: new_size is non-zero and fits isize with this alignment (GlobalAlloc contract).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // A realloc in place could leave the tail of a shrunk block behind, and a moving one would
        // free the old block unwiped: always move, and wipe the old block.
        // SAFETY: forwarded contract; the blocks do not overlap.
        unsafe {
            let new = self.0.alloc(new_layout);
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                wipe(ptr, layout.size());
                self.0.dealloc(ptr, layout);
            }
            new
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// An inner allocator that checks, at every free, that the block it gets back is all zero.
    struct Checking {
        freed: Cell<usize>,
        dirty: Cell<usize>,
    }

    // SAFETY: forwards to System; the counters are only read on the test's thread.
    unsafe impl GlobalAlloc for Checking {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: forwarded contract.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: ptr is a live block of layout.size() bytes.
            let block = unsafe { std::slice::from_raw_parts(ptr, layout.size()) };
            self.freed.set(self.freed.get() + 1);
            if block.iter().any(|&b| b != 0) {
                self.dirty.set(self.dirty.get() + 1);
            }
            // SAFETY: forwarded contract.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    fn checking() -> ZeroizingAlloc<Checking> {
        ZeroizingAlloc(Checking {
            freed: Cell::new(0),
            dirty: Cell::new(0),
        })
    }

    #[test]
    fn freed_blocks_are_wiped() {
        let a = checking();
        for (size, align) in [(1, 1), (7, 1), (64, 8), (1000, 64), (4096, 4096)] {
            let layout = Layout::from_size_align(size, align).unwrap();
            // SAFETY: a non-zero layout; the block is used within its size and freed once.
            unsafe {
                let p = a.alloc(layout);
                assert!(!p.is_null());
                std::ptr::write_bytes(p, 0xff, size);
                a.dealloc(p, layout);
            }
        }
        assert_eq!(a.0.freed.get(), 5);
        assert_eq!(a.0.dirty.get(), 0, "a block was freed unwiped");
    }

    #[test]
    fn realloc_moves_keeps_the_data_and_wipes_the_old_block() {
        let a = checking();
        let layout = Layout::from_size_align(100, 32).unwrap();
        // SAFETY: every pointer is used within its current size and freed once.
        unsafe {
            let p = a.alloc(layout);
            for i in 0..100 {
                *p.add(i) = i as u8 + 1;
            }
            // Grow: the 100 bytes move, the old block is wiped and freed.
            let q = a.realloc(p, layout, 300);
            assert!(!q.is_null());
            assert_eq!(q as usize % 32, 0, "alignment kept");
            assert!((0..100).all(|i| *q.add(i) == i as u8 + 1));
            std::ptr::write_bytes(q.add(100), 0xee, 200);
            // Shrink: only the first 10 bytes stay; the old block's tail is wiped with it.
            let big = Layout::from_size_align(300, 32).unwrap();
            let r = a.realloc(q, big, 10);
            assert!((0..10).all(|i| *r.add(i) == i as u8 + 1));
            a.dealloc(r, Layout::from_size_align(10, 32).unwrap());
        }
        assert_eq!(a.0.freed.get(), 3);
        assert_eq!(a.0.dirty.get(), 0, "a block was freed unwiped");
    }

    #[test]
    fn alloc_zeroed_is_zeroed() {
        let a = checking();
        let layout = Layout::from_size_align(256, 16).unwrap();
        // SAFETY: as above.
        unsafe {
            let p = a.alloc_zeroed(layout);
            assert!(std::slice::from_raw_parts(p, 256).iter().all(|&b| b == 0));
            a.dealloc(p, layout);
        }
    }
}
