//! The cache-hit path of the C ABI against its floor, one AEAD open of the token.
//!
//! ```text
//! cargo bench --bench hit_path
//! ```
//!
//! * `aead_open_floor/1KiB`: `Sealed::open_into` of a sealed 1024-byte token into a preallocated
//!   1024-byte buffer: the work no hit can avoid.
//! * `vault_get_token/cached_1KiB`: `vault_get_token` + `vault_token_free` with the token cached.
//! * `vault_get_token_into/cached_1KiB`: `vault_get_token_into` into a caller buffer (no allocation).
//! * `vault_get_authorization/cached_1KiB`: `vault_get_authorization` + `vault_token_free`
//!   (`"Bearer <token>"`, 1031 bytes).
//! * `breakdown/*`: the sub-steps of the hit path measured alone (allocation, wiping, clock, locks),
//!   to explain where the time above the floor goes.
//! * then, outside criterion, a paired measurement: 800 rounds in which the floor and each call run
//!   a block of 2000 calls in turn (order rotated), giving the median ns/call of each and the
//!   median and quartiles of the per-round ratio to the floor. On a shared machine this ratio is
//!   far steadier than one computed from two criterion groups measured seconds apart. It runs
//!   with no filter or with the filter `paired` (`cargo bench --bench hit_path -- paired`).
//!   It also times, interleaved the same way, an uncontended read lock and unlock of parking_lot's
//!   `RwLock` and of std's (what `src/sync.rs` uses), and the hit through the
//!   registry: `vault_get_token_into` on 9 providers in turn, one more than a thread's memo holds
//!   (8), so that no call finds its provider in the memo and every one takes the registry's and
//!   the cache's read locks and refills the memo.
//!
//! The token comes from a local `credvault idp` (generic `oauth` dialect, `POST /oauth/token`,
//! client registered with `token_bytes: 768` so tokens are 1024 characters, lifetime 3600 s): it is
//! fetched once before measuring and every measured call is a cache hit (checked at the end).

// Some ffi functions may or may not be `unsafe fn` as the ABI evolves; the blocks stay either way.
#![allow(unused_unsafe)]

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::cell::RefCell;
use std::ffi::c_char;
use std::hint::black_box;
use std::ptr;
use std::time::{Duration, Instant};

use credvault::ffi::{
    vault_get_authorization, vault_get_token, vault_get_token_into, vault_token_free,
};
use credvault::secret::Sealed;
use criterion::{criterion_group, Criterion};
use zeroize::Zeroize;

use support::{Fixture, TOKEN_LEN};

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

/// A 1024-byte token-like plaintext (base64url alphabet).
fn token_like() -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    (0..TOKEN_LEN)
        .map(|i| ALPHABET[(i * 37 + 11) % 64])
        .collect()
}

fn hit_path(c: &mut Criterion) {
    let fx = Fixture::new();
    let h = fx.handle;

    {
        let sealed = Sealed::seal(&token_like()).unwrap();
        let mut out = vec![0u8; TOKEN_LEN];
        let mut g = c.benchmark_group("aead_open_floor");
        g.bench_function("1KiB", |b| {
            b.iter(|| {
                black_box(&sealed)
                    .open_into(black_box(&mut out[..]))
                    .unwrap();
            })
        });
        g.finish();
        out.zeroize();
    }

    {
        let mut g = c.benchmark_group("vault_get_token");
        g.bench_function("cached_1KiB", |b| {
            b.iter(|| unsafe {
                let p = vault_get_token(black_box(h));
                debug_assert!(!p.is_null());
                vault_token_free(black_box(p));
            })
        });
        g.finish();
    }

    {
        let mut buf = vec![0 as c_char; TOKEN_LEN + 1];
        let mut len = 0usize;
        let mut g = c.benchmark_group("vault_get_token_into");
        g.bench_function("cached_1KiB", |b| {
            b.iter(|| unsafe {
                let st = vault_get_token_into(
                    black_box(h),
                    buf.as_mut_ptr(),
                    buf.len(),
                    &mut len,
                    ptr::null_mut(),
                    0,
                );
                debug_assert_eq!(st as i32, 0);
                black_box(&buf);
            })
        });
        g.finish();
        buf.zeroize();
    }

    {
        let mut g = c.benchmark_group("vault_get_authorization");
        g.bench_function("cached_1KiB", |b| {
            b.iter(|| unsafe {
                let p = vault_get_authorization(black_box(h));
                debug_assert!(!p.is_null());
                vault_token_free(black_box(p));
            })
        });
        g.finish();
    }

    // Correctness of what was measured: every call above succeeded and was a cache hit.
    unsafe {
        let p = vault_get_token(h);
        assert!(
            !p.is_null(),
            "vault_get_token failed: {}",
            support::last_error()
        );
        vault_token_free(p);
        let p = vault_get_authorization(h);
        assert!(!p.is_null());
        assert_eq!(libc::strlen(p), "Bearer ".len() + TOKEN_LEN);
        vault_token_free(p);
        let mut buf = vec![0 as c_char; TOKEN_LEN + 1];
        let mut len = 0usize;
        let st = vault_get_token_into(h, buf.as_mut_ptr(), buf.len(), &mut len, ptr::null_mut(), 0);
        assert_eq!((st as i32, len), (0, TOKEN_LEN));
        buf.zeroize();
    }
    fx.assert_no_refetch();
}

/// The sub-steps of `vault_get_token` + `vault_token_free`, each alone.
fn breakdown(c: &mut Criterion) {
    let mut g = c.benchmark_group("breakdown");
    g.measurement_time(Duration::from_secs(2));

    // alloc_shape: malloc(n + 1); vault_token_free: free.
    g.bench_function("malloc_free_1025", |b| {
        b.iter(|| unsafe {
            let p = libc::malloc(black_box(TOKEN_LEN + 1));
            libc::free(black_box(p));
        })
    });
    // vault_token_free's wipe: strlen + zeroize of 1024 bytes.
    let mut buf = token_like();
    buf.push(0);
    g.bench_function("strlen_1024", |b| {
        b.iter(|| unsafe { black_box(libc::strlen(black_box(buf.as_ptr()) as *const c_char)) })
    });
    g.bench_function("zeroize_1024", |b| {
        b.iter(|| black_box(&mut buf[..TOKEN_LEN]).zeroize())
    });
    // The allocation round trip as the library does it: malloc, fill (stands in for the open),
    // NUL, strlen, zeroize, free.
    g.bench_function("malloc_fill_strlen_zeroize_free_1025", |b| {
        b.iter(|| unsafe {
            let p = libc::malloc(black_box(TOKEN_LEN + 1)) as *mut u8;
            let s = std::slice::from_raw_parts_mut(p, TOKEN_LEN + 1);
            s[..TOKEN_LEN].fill(b'x');
            s[TOKEN_LEN] = 0;
            let n = libc::strlen(p as *const c_char);
            std::slice::from_raw_parts_mut(p, n).zeroize();
            libc::free(black_box(p) as *mut libc::c_void);
        })
    });
    // Cache::try_hit: Instant::now and a shared read lock (twice: registry and cache state).
    g.bench_function("instant_now", |b| b.iter(|| black_box(Instant::now())));
    // A coarse clock (jiffy resolution, no TSC read) as a cheaper alternative for the hit path.
    g.bench_function("clock_monotonic_coarse", |b| {
        b.iter(|| unsafe {
            let mut ts: libc::timespec = std::mem::zeroed();
            libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts);
            black_box(ts.tv_nsec)
        })
    });
    let lock = parking_lot::RwLock::new(0u64);
    g.bench_function("rwlock_read_uncontended", |b| {
        b.iter(|| black_box(*black_box(&lock).read()))
    });
    // The library's read lock (src/sync.rs): std's futex RwLock<()> with the data
    // beside it; this is the same read and unlock.
    let std_lock = std::sync::RwLock::new(());
    g.bench_function("std_rwlock_read_uncontended", |b| {
        b.iter(|| {
            let g = black_box(&std_lock)
                .read()
                .unwrap_or_else(|e| e.into_inner());
            black_box(&g);
        })
    });
    // guard(): catch_unwind around a closure that does not panic.
    g.bench_function("catch_unwind", |b| {
        b.iter(|| std::panic::catch_unwind(|| black_box(1u32)).unwrap())
    });
    // ffi::note_served as it stands: a thread-local RefCell<Vec<(handle, generation)>>, searched
    // from the most recent end (one provider here, so one entry).
    thread_local! {
        static SERVED: RefCell<Vec<(u64, u64)>> = const { RefCell::new(Vec::new()) };
    }
    let mut n = 0u64;
    g.bench_function("tls_note_served", |b| {
        b.iter(|| {
            n += 1;
            let h = black_box(0x1_0000_0000u64);
            SERVED.with(|c| {
                let Ok(mut t) = c.try_borrow_mut() else {
                    return;
                };
                match t.iter_mut().rev().find(|(x, _)| *x == h) {
                    Some(e) => e.1 = n,
                    None => t.push((h, n)),
                }
            })
        })
    });
    g.finish();
    buf.zeroize();
}

/// The ratio get/floor measured interleaved: rounds of short blocks of each call, in turn, so
/// that load from other processes (the machine is shared) hits all of them alike. Prints the
/// median ns/call of each and the median and quartiles of the per-round ratios to the floor.
fn paired_ratio() {
    const BLOCK: u32 = 2_000;
    const ROUNDS: usize = 800;
    let fx = Fixture::new();
    let h = fx.handle;
    let sealed = Sealed::seal(&token_like()).unwrap();
    let mut out = vec![0u8; TOKEN_LEN];
    let mut buf = vec![0 as c_char; TOKEN_LEN + 1];
    let names = [
        "aead_open_floor",
        "vault_get_token+free",
        "vault_get_token_into",
        "vault_get_authorization+free",
        "parking_lot RwLock read",
        "std RwLock read (src/sync.rs)",
        "get_token_into, 9 providers",
    ];
    // The registry path: 9 providers called in turn (the memo keeps 8), each with its own token.
    let mut ring = vec![h];
    ring.extend((0..8).map(|_| support::cached_provider(&fx.idp)));
    let (mut next, mut failed) = (0usize, 0u64);
    // The cache state's read lock, parking_lot's and std's (a memo miss and the Rust API take it).
    let pl_lock = parking_lot::RwLock::new(0u64);
    let std_lock = std::sync::RwLock::new(());
    let std_data = 0u64;
    let mut block = |kind: usize| -> f64 {
        let t0 = Instant::now();
        for _ in 0..BLOCK {
            unsafe {
                match kind {
                    0 => black_box(&sealed)
                        .open_into(black_box(&mut out[..]))
                        .unwrap(),
                    1 => vault_token_free(black_box(vault_get_token(black_box(h)))),
                    2 => {
                        black_box(vault_get_token_into(
                            black_box(h),
                            buf.as_mut_ptr(),
                            buf.len(),
                            ptr::null_mut(),
                            ptr::null_mut(),
                            0,
                        ));
                    }
                    3 => vault_token_free(black_box(vault_get_authorization(black_box(h)))),
                    4 => {
                        black_box(*black_box(&pl_lock).read());
                    }
                    5 => {
                        let g = black_box(&std_lock)
                            .read()
                            .unwrap_or_else(|e| e.into_inner());
                        black_box(black_box(&std_data));
                        drop(g);
                    }
                    _ => {
                        next = (next + 1) % ring.len();
                        let st = vault_get_token_into(
                            black_box(ring[next]),
                            buf.as_mut_ptr(),
                            buf.len(),
                            ptr::null_mut(),
                            ptr::null_mut(),
                            0,
                        );
                        failed += (st as i32 != 0) as u64;
                    }
                }
            }
        }
        t0.elapsed().as_nanos() as f64 / BLOCK as f64
    };
    for k in 0..names.len() {
        for _ in 0..20 {
            block(k); // warm up
        }
    }
    let mut samples = vec![Vec::with_capacity(ROUNDS); names.len()];
    for round in 0..ROUNDS {
        for i in 0..names.len() {
            let k = (i + round) % names.len(); // rotate the order
            samples[k].push(block(k));
        }
    }
    out.zeroize();
    buf.zeroize();
    // Every measured call was a hit: none failed, no token was fetched after the one per provider.
    assert_eq!(failed, 0, "calls on the 9 providers failed");
    assert_eq!(
        fx.idp.tokens_issued(),
        ring.len() as u64,
        "a token was fetched"
    );
    for &p in &ring[1..] {
        // SAFETY: a live handle, freed once.
        unsafe { credvault::ffi::vault_provider_free(p) };
    }

    let quantile = |v: &mut Vec<f64>, q: f64| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[((v.len() - 1) as f64 * q).round() as usize]
    };
    println!();
    println!("paired (interleaved) measurement: {ROUNDS} rounds x {BLOCK} calls of each");
    println!(
        "{:<30} {:>10} {:>10} {:>22}",
        "", "median ns", "min ns", "ratio to floor p25/p50/p75"
    );
    for k in 0..names.len() {
        let mut ratios: Vec<f64> = (0..ROUNDS).map(|r| samples[k][r] / samples[0][r]).collect();
        let mut v = samples[k].clone();
        let med = quantile(&mut v, 0.5);
        let min = v[0];
        let (p25, p50, p75) = (
            quantile(&mut ratios, 0.25),
            quantile(&mut ratios, 0.5),
            quantile(&mut ratios, 0.75),
        );
        println!(
            "{:<30} {:>10.1} {:>10.1} {:>12.3}/{:.3}/{:.3}",
            names[k], med, min, p25, p50, p75
        );
    }
}

criterion_group! {
    name = benches;
    config = config();
    targets = hit_path, breakdown
}

fn main() {
    benches();
    // The interleaved ratio runs with a plain `cargo bench --bench hit_path` (no filter), and with
    // a filter that names it (`cargo bench --bench hit_path -- paired`).
    let args: Vec<String> = std::env::args().skip(1).collect();
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let profiling = args
        .iter()
        .any(|a| a == "--profile-time" || a == "--list" || a == "--test");
    if !profiling && (filters.is_empty() || filters.iter().any(|f| "paired".contains(f.as_str()))) {
        paired_ratio();
    }
    Criterion::default().configure_from_args().final_summary();
}
