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
