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
//! slowest and fastest thread, to show fairness), and the CPU time per call
//! (`min(threads, cores) x elapsed / calls`), which stays flat when there is no contention and
//! grows when threads fight over shared cache lines or locks. The same is then measured for
//! `vault_get_token_into` (no allocation), to tell allocator effects from lock effects.
//!
//! Options (after `--`): `--secs S` (default 2), `--threads 1,2,4,8`.

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

use support::{Fixture, TOKEN_LEN};

#[derive(Clone, Copy, PartialEq)]
enum Call {
    GetFree,
    GetInto,
}

impl Call {
    fn name(self) -> &'static str {
        match self {
            Call::GetFree => "vault_get_token + vault_token_free",
            Call::GetInto => "vault_get_token_into",
        }
    }
}

/// Calls per check of the stop flag.
const BATCH: u64 = 256;

/// Runs `threads` threads for `secs`; returns (elapsed, calls per thread).
fn run(handle: u64, call: Call, threads: usize, secs: f64) -> (Duration, Vec<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(threads + 1));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let stop = stop.clone();
            let start = start.clone();
            thread::spawn(move || {
                let mut buf = vec![0 as c_char; TOKEN_LEN + 1];
                let mut calls = 0u64;
                let mut failures = 0u64;
                start.wait();
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..BATCH {
                        // SAFETY: a live handle; each returned string is freed once; buf is
                        // TOKEN_LEN + 1 writable bytes.
                        unsafe {
                            match call {
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
                buf.fill(0);
                assert_eq!(failures, 0, "{failures} calls failed");
                calls
            })
        })
        .collect();
    start.wait();
    let t0 = Instant::now();
    thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    let per_thread: Vec<u64> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    (t0.elapsed(), per_thread)
}

fn main() {
    let mut secs = 2.0f64;
    let mut thread_counts = vec![1usize, 2, 4, 8];
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
            _ => {} // `cargo bench` passes `--bench`; ignore it and anything else.
        }
    }
    let cores = thread::available_parallelism().map_or(1, |n| n.get());

    let fx = Fixture::new();
    println!(
        "credvault concurrency: cached 1024-char token, {secs} s per run, {cores} cores available"
    );

    for call in [Call::GetFree, Call::GetInto] {
        // Warm up (allocator arenas, thread-locals, frequency).
        run(fx.handle, call, 1, 0.3);
        println!();
        println!("{}", call.name());
        println!(
            "{:>7} | {:>12} | {:>16} | {:>22} | {:>17}",
            "threads", "total Mcall/s", "ns/call/thread", "thread min..max ns", "CPU ns/call"
        );
        let mut single = None;
        for &n in &thread_counts {
            let (elapsed, per) = run(fx.handle, call, n, secs);
            let total: u64 = per.iter().sum();
            let el_ns = elapsed.as_nanos() as f64;
            let rate = total as f64 / elapsed.as_secs_f64();
            let per_ns: Vec<f64> = per.iter().map(|&c| el_ns / c as f64).collect();
            let mean = el_ns * n as f64 / total as f64;
            let min = per_ns.iter().cloned().fold(f64::INFINITY, f64::min);
            let max = per_ns.iter().cloned().fold(0.0, f64::max);
            let cpu = el_ns * n.min(cores) as f64 / total as f64;
            let single_rate = *single.get_or_insert(rate);
            println!(
                "{:>7} | {:>12.2} | {:>16.1} | {:>10.1} .. {:>9.1} | {:>9.1} ({:.2}x 1-thread throughput)",
                n,
                rate / 1e6,
                mean,
                min,
                max,
                cpu,
                rate / single_rate
            );
        }
    }
    fx.assert_no_refetch();
}
