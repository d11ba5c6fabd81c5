//! What the memory protections cost: a fetch (invalidate + get, so every call goes to
//! the local idp) over HTTP and HTTPS, and a cached hit, each measured in this build. Run it twice
//! to compare with and without the zeroizing allocator:
//!
//! ```text
//! cargo bench --bench protection_cost
//! cargo bench --bench protection_cost --no-default-features --features cli
//! ```
//! The fetch includes what the design does on every fetch: a new connection (and TLS handshake),
//! since connections are closed after each fetch so that their buffers are freed and wiped.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use credvault::Provider;
use serde_json::json;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn fetches(p: &Provider, n: usize) -> Vec<Duration> {
    let mut times: Vec<Duration> = (0..n)
        .map(|_| {
            p.invalidate();
            let t = Instant::now();
            p.token().expect("fetch");
            t.elapsed()
        })
        .collect();
    times.sort();
    times
}

fn report(what: &str, times: &[Duration]) {
    println!(
        "{what:<38} n={:<6} median {:>9.1} µs   p90 {:>9.1} µs   p99 {:>9.1} µs",
        times.len(),
        percentile(times, 0.5).as_secs_f64() * 1e6,
        percentile(times, 0.9).as_secs_f64() * 1e6,
        percentile(times, 0.99).as_secs_f64() * 1e6
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let feature = if cfg!(feature = "zeroizing-allocator") {
        "with the zeroizing allocator"
    } else {
        "WITHOUT the zeroizing allocator"
    };
    println!("protection_cost, {feature}");
    let secret = "bench-secret";
    // HTTP.
    let idp = common::Idp::start_with(&[]);
    idp.add_client(json!({"dialect": "oauth", "client_id": "bench", "client_secret": secret, "token_bytes": 768}));
    let cfg = json!({"token_url": idp.url("/oauth/token"), "client_id": "bench", "client_secret": secret, "proxy": "none"});
    let p = Provider::new(&cfg.to_string()).unwrap();
    fetches(&p, 20);
    report("fetch over HTTP (1 KiB token)", &fetches(&p, 400));

    // HTTPS with a CA made here.
    let dir = std::env::temp_dir().join(format!("credvault-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &rcgen::Issuer::from_params(&ca_params, &ca_key))
        .unwrap();
    let w = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    };
    let (ca, cert, key) = (
        w("ca.pem", &ca_pem),
        w("s.pem", &leaf.pem()),
        w("s.key", &leaf_key.serialize_pem()),
    );
    let tls = common::Idp::start_tls(&["--tls-cert", &cert, "--tls-key", &key], Some(&ca), None);
    tls.add_client(json!({"dialect": "oauth", "client_id": "bench", "client_secret": secret, "token_bytes": 768}));
    let cfg = json!({"token_url": tls.url("/oauth/token"), "client_id": "bench", "client_secret": secret,
        "ca_file": ca, "proxy": "none"});
    let p = Provider::new(&cfg.to_string()).unwrap();
    fetches(&p, 20);
    report("fetch over HTTPS (1 KiB token)", &fetches(&p, 400));
    let _ = std::fs::remove_dir_all(&dir);

    // Cached hits through the C ABI (the path services use), batched to see past timer cost.
    let c = std::ffi::CString::new(
        json!({"token_url": idp.url("/oauth/token"), "client_id": "bench",
        "client_secret": secret})
        .to_string(),
    )
    .unwrap();
    let h = unsafe { credvault::ffi::vault_provider_new(c.as_ptr()) };
    let mut batches: Vec<Duration> = (0..200)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..1000 {
                let s = credvault::ffi::vault_get_token(h);
                unsafe { credvault::ffi::vault_token_free(s) };
            }
            t.elapsed() / 1000
        })
        .collect();
    batches.sort();
    println!(
        "{:<38} median {:>9.1} ns per call (vault_get_token + vault_token_free, 1 KiB)",
        "cached hit",
        percentile(&batches, 0.5).as_secs_f64() * 1e9
    );
    credvault::ffi::vault_provider_free(h);
}
