//! The checking allocator: every block freed while credvault fetches, caches, serves and drops
//! tokens is all zeros when it reaches the system allocator.
//!
//! Runs without the default `zeroizing-allocator` feature so that this test can install the
//! library's `ZeroizingAlloc` around a checking allocator of its own:
//! `cargo test --no-default-features --features cli --test alloc_check` (`cli` is empty now: the
//! `credvault` command, whose `idp` the test talks to, is the workspace member tools/cli).
#![cfg(not(feature = "zeroizing-allocator"))]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use credvault::alloc::ZeroizingAlloc;
use credvault::{ffi, Provider};

static FREED: AtomicU64 = AtomicU64::new(0);
static FREED_BYTES: AtomicU64 = AtomicU64::new(0);
static DIRTY: AtomicU64 = AtomicU64::new(0);
static LARGEST_DIRTY: AtomicUsize = AtomicUsize::new(0);

/// The system allocator, checking that each block it gets back is wiped.
struct Checking;

unsafe impl GlobalAlloc for Checking {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        let block = unsafe { std::slice::from_raw_parts(p, l.size()) };
        FREED.fetch_add(1, Ordering::Relaxed);
        FREED_BYTES.fetch_add(l.size() as u64, Ordering::Relaxed);
        if block.iter().any(|&b| b != 0) {
            DIRTY.fetch_add(1, Ordering::Relaxed);
            LARGEST_DIRTY.fetch_max(l.size(), Ordering::Relaxed);
        }
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static ALLOC: ZeroizingAlloc<Checking> = ZeroizingAlloc(Checking);

#[test]
fn every_freed_block_is_zero() {
    let idp = common::Idp::start();
    let cfg =
        serde_json::json!({"token_url": idp.url("/oauth/token"), "client_id": "demo-oauth-client",
        "client_secret": "demo: secret+with%odd chars"})
        .to_string();
    let before = FREED.load(Ordering::Relaxed);
    for _ in 0..3 {
        let p = Provider::new(&cfg).unwrap();
        for _ in 0..100 {
            let t = p.token().unwrap();
            assert!(!t.secret().is_empty());
            let _ = t.authorization();
        }
        p.invalidate();
        p.token().unwrap();
        // Through the C ABI as well.
        let c = std::ffi::CString::new(cfg.clone()).unwrap();
        let h = unsafe { ffi::vault_provider_new(c.as_ptr()) };
        let s = ffi::vault_get_token(h);
        assert!(!s.is_null());
        unsafe { ffi::vault_token_free(s) };
        assert_eq!(ffi::vault_provider_free(h), 0);
    }
    drop(idp);
    let freed = FREED.load(Ordering::Relaxed) - before;
    assert!(freed > 500, "the scenario frees many blocks ({freed})");
    assert_eq!(
        DIRTY.load(Ordering::Relaxed),
        0,
        "blocks freed without wiping (largest {} bytes) of {freed} ({} bytes)",
        LARGEST_DIRTY.load(Ordering::Relaxed),
        FREED_BYTES.load(Ordering::Relaxed)
    );
}
