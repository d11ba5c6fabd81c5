//! 64 threads creating, using, invalidating and freeing providers, sharing some of them, for a
//! fixed number of iterations: no crash, no deadlock (a watchdog aborts), every handle freed, and
//! no leak: afterwards no provider, no cached token and no file descriptor (connection) is left.

mod common;

use std::ffi::CString;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use credvault::ffi;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn sixty_four_threads_create_use_invalidate_free() {
    let idp = common::Idp::start();
    let fds_before = open_fds();
    assert_eq!(credvault::census::providers(), 0);
    let cfg = CString::new(
        serde_json::json!({"token_url": idp.url("/oauth/token"), "client_id": "demo-oauth-client",
            "client_secret": "demo: secret+with%odd chars"})
        .to_string(),
    )
    .unwrap();
    let cfg = Arc::new(cfg);
    // Shared providers, freed while other threads may still be using them.
    let shared: Arc<Vec<AtomicU64>> = Arc::new((0..8).map(|_| AtomicU64::new(0)).collect());
    for slot in shared.iter() {
        slot.store(
            unsafe { ffi::vault_provider_new(cfg.as_ptr()) },
            Ordering::SeqCst,
        );
    }
    let done = Arc::new(AtomicBool::new(false));
    let watchdog = {
        let done = done.clone();
        thread::spawn(move || {
            let start = Instant::now();
            while !done.load(Ordering::SeqCst) {
                if start.elapsed() > Duration::from_secs(180) {
                    eprintln!("stress: deadlock suspected, aborting");
                    std::process::abort();
                }
                thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let workers: Vec<_> = (0..64u64)
        .map(|t| {
            let (cfg, shared) = (cfg.clone(), shared.clone());
            thread::spawn(move || {
                let mut ok = 0u32;
                for i in 0..40u64 {
                    // Own provider: full life cycle.
                    let h = unsafe { ffi::vault_provider_new(cfg.as_ptr()) };
                    assert_ne!(h, 0);
                    for _ in 0..3 {
                        let s = ffi::vault_get_token(h);
                        if !s.is_null() {
                            ok += 1;
                            unsafe { ffi::vault_token_free(s) };
                        }
                    }
                    assert_eq!(ffi::vault_invalidate(h), 0);
                    assert_eq!(ffi::vault_provider_free(h), 0);
                    assert_eq!(
                        ffi::vault_provider_free(h),
                        credvault::Status::InvalidHandle as i32
                    );
                    // Shared provider: replaced now and then while others use it.
                    let slot = &shared[((t + i) % 8) as usize];
                    let sh = slot.load(Ordering::SeqCst);
                    let s = ffi::vault_get_token(sh);
                    if !s.is_null() {
                        unsafe { ffi::vault_token_free(s) };
                    }
                    if (t + i) % 13 == 0 {
                        ffi::vault_invalidate(sh);
                    }
                    if (t * 40 + i) % 97 == 0 {
                        let new = unsafe { ffi::vault_provider_new(cfg.as_ptr()) };
                        let old = slot.swap(new, Ordering::SeqCst);
                        // Another thread may have freed it first: then it is an invalid handle.
                        let st = ffi::vault_provider_free(old);
                        assert!(st == 0 || st == credvault::Status::InvalidHandle as i32);
                    }
                }
                ok
            })
        })
        .collect();
    let served: u32 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    done.store(true, Ordering::SeqCst);
    watchdog.join().unwrap();
    assert_eq!(served, 64 * 40 * 3, "every own-provider call got a token");
    for slot in shared.iter() {
        assert_eq!(ffi::vault_provider_free(slot.load(Ordering::SeqCst)), 0);
    }
    // No leak: every provider and every cached token (in caches and in the 64 threads' memos)
    // is gone, and so is every connection.
    assert_eq!(credvault::census::providers(), 0, "providers left alive");
    assert_eq!(credvault::census::tokens(), 0, "cached tokens left alive");
    assert_eq!(open_fds(), fds_before, "file descriptors left open");
    assert!(idp.tokens_issued() >= 64 * 40);
}
