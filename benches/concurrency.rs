//! Throughput of the cache-hit path under threads: 1, 2, 4 and 8 threads call
//! `vault_get_token` + `vault_token_free` on the same provider (1024-character token cached) for
//! about 2 s each.
//!
//! ```text
//! cargo bench --bench concurrency
//! ```
//!
//! A plain `main` (harness = false) with its own timing loop. For each thread count it prints the
//! total calls per second, the wall-clock nanoseconds per call seen by each thread (mean, and the
//! slowest and fastest thread, to show fairness), the cores the threads actually got (their summed
//! thread CPU time, `CLOCK_THREAD_CPUTIME_ID`, over the wall time) and the CPU time per call (summed
//! thread CPU time / calls). CPU ns/call stays flat when there is no contention and grows when
//! threads fight over shared cache lines or spin on locks; "cores used" below the core count means
//! the threads were blocked (a lock convoy) or another process held a core, which is why it is
//! measured rather than assumed (the machine these ran on is shared). The same is then measured
//! for `vault_get_token_into` (no allocation), to tell allocator effects from lock effects, and
//! first for the floor itself (one AEAD open per call, nothing shared): how well *that* scales is
//! the hardware's ceiling (the 2 vCPUs of a VM may share a physical core's AES units), against
//! which the library's scaling is to be judged.
//!
//! Options (after `--`): `--secs S` (default 2), `--threads 1,2,4,8`, `--calls floor,get,into`.

// Some ffi functions may or may not be `unsafe fn` as the ABI evolves; the blocks stay either way.
#![allow(unused_unsafe)]

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::ffi::c_char;
use std::hint::black_box;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use credvault::ffi::{vault_get_token, vault_get_token_into, vault_token_free};
use credvault::secret::Sealed;

use support::{Fixture, TOKEN_LEN};

#[derive(Clone, Copy, PartialEq)]
enum Call {
    /// `Sealed::open_into` of a 1 KiB token sealed by each thread for itself: no shared state
    /// beyond the read-only process key, so its scaling is what the hardware allows.
    Floor,
    GetFree,
    GetInto,
}

impl Call {
    fn name(self) -> &'static str {
        match self {
            Call::Floor => "aead_open_floor (Sealed::open_into, 1 KiB; per-thread sealed value)",
            Call::GetFree => "vault_get_token + vault_token_free",
            Call::GetInto => "vault_get_token_into",
        }
    }
}

/// Calls per check of the stop flag.
const BATCH: u64 = 256;

/// CPU time of the calling thread, in ns.
fn thread_cpu_ns() -> u64 {
    // SAFETY: clock_gettime writes one timespec.
    unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts);
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    }
}

/// Runs `threads` threads for `secs`; returns (elapsed, (calls, CPU ns) per thread).
fn run(handle: u64, call: Call, threads: usize, secs: f64) -> (Duration, Vec<(u64, u64)>) {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(threads + 1));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let stop = stop.clone();
            let start = start.clone();
            thread::spawn(move || {
                let mut buf = vec![0 as c_char; TOKEN_LEN + 1];
                let mut plain = vec![b'a'; TOKEN_LEN];
                let sealed = Sealed::seal(&plain).unwrap();
                let mut calls = 0u64;
                let mut failures = 0u64;
                start.wait();
                let cpu0 = thread_cpu_ns();
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..BATCH {
                        // SAFETY: a live handle; each returned string is freed once; buf is
                        // TOKEN_LEN + 1 writable bytes.
                        unsafe {
                            match call {
                                Call::Floor => {
                                    failures += black_box(&sealed)
                                        .open_into(black_box(&mut plain[..]))
                                        .is_err()
                                        as u64;
                                }
                                Call::GetFree => {
                                    let p = vault_get_token(black_box(handle));
                                    failures += p.is_null() as u64;
                                    vault_token_free(p);
                                }
                                Call::GetInto => {
                                    let st = vault_get_token_into(
                                        black_box(handle),
                                        buf.as_mut_ptr(),
                                        buf.len(),
                                        ptr::null_mut(),
                                        ptr::null_mut(),
                                        0,
                                    );
                                    failures += (st as i32 != 0) as u64;
                                }
                            }
                        }
                    }
                    calls += BATCH;
                }
                let cpu = thread_cpu_ns() - cpu0;
                buf.fill(0);
                plain.fill(0);
                assert_eq!(failures, 0, "{failures} calls failed");
                (calls, cpu)
            })
        })
        .collect();
    start.wait();
    let t0 = Instant::now();
    thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    let per_thread: Vec<(u64, u64)> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    (t0.elapsed(), per_thread)
}

fn main() {
    let mut secs = 2.0f64;
    let mut thread_counts = vec![1usize, 2, 4, 8];
    let mut calls = vec![Call::Floor, Call::GetFree, Call::GetInto];
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--secs" => secs = args.next().and_then(|s| s.parse().ok()).expect("--secs S"),
            "--threads" => {
                thread_counts = args
                    .next()
                    .expect("--threads 1,2,4")
                    .split(',')
                    .map(|s| s.parse().expect("thread count"))
                    .collect()
            }
            "--calls" => {
                calls = args
                    .next()
                    .expect("--calls floor,get,into")
                    .split(',')
                    .map(|s| match s {
                        "floor" => Call::Floor,
                        "get" => Call::GetFree,
                        "into" => Call::GetInto,
                        _ => panic!("--calls: floor, get or into"),
                    })
                    .collect()
            }
            _ => {} // `cargo bench` passes `--bench`; ignore it and anything else.
        }
    }
    let cores = thread::available_parallelism().map_or(1, |n| n.get());

    let fx = Fixture::new();
    println!(
        "credvault concurrency: cached 1024-char token, {secs} s per run, {cores} cores available"
    );

    for call in calls {
        // Warm up (allocator arenas, thread-locals, frequency).
        run(fx.handle, call, 1, 0.3);
        println!();
        println!("{}", call.name());
        println!(
            "{:>7} | {:>13} | {:>10} | {:>14} | {:>22} | {:>10} | {:>11}",
            "threads",
            "total Mcall/s",
            "x 1 thread",
            "ns/call/thread",
            "thread min..max ns",
            "cores used",
            "CPU ns/call"
        );
        let mut single = None;
        for &n in &thread_counts {
            let (elapsed, per) = run(fx.handle, call, n, secs);
            let total: u64 = per.iter().map(|p| p.0).sum();
            let cpu_total: u64 = per.iter().map(|p| p.1).sum();
            let el_ns = elapsed.as_nanos() as f64;
            let rate = total as f64 / elapsed.as_secs_f64();
            let per_ns: Vec<f64> = per.iter().map(|&(c, _)| el_ns / c as f64).collect();
            let mean = el_ns * n as f64 / total as f64;
            let min = per_ns.iter().cloned().fold(f64::INFINITY, f64::min);
            let max = per_ns.iter().cloned().fold(0.0, f64::max);
            let cores_used = cpu_total as f64 / el_ns;
            let cpu = cpu_total as f64 / total as f64;
            let single_rate = *single.get_or_insert(rate);
            println!(
                "{:>7} | {:>13.2} | {:>10.2} | {:>14.1} | {:>10.1} .. {:>9.1} | {:>10.2} | {:>11.1}",
                n,
                rate / 1e6,
                rate / single_rate,
                mean,
                min,
                max,
                cores_used,
                cpu
            );
        }
    }
    fx.assert_no_refetch();
}
