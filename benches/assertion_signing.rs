//! What `private_key_jwt` costs: signing one client assertion (open the sealed key,
//! parse it, sign, drop the key: `AssertionKey::sign`) for RS256, PS256 and ES256, and a whole
//! fetch from the local idp with each, beside a fetch with a client secret. The assertion is
//! signed once per token request, never on a cached hit.
//!
//! ```text
//! cargo bench --bench assertion_signing
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use credvault::jwt::{AssertionKey, Audience, SigningAlg};
use credvault::Provider;
use serde_json::json;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "{what:<44} n={:<5} median {:>8.1} µs   p90 {:>8.1} µs   p99 {:>8.1} µs",
        times.len(),
        percentile(&times, 0.5).as_secs_f64() * 1e6,
        percentile(&times, 0.9).as_secs_f64() * 1e6,
        percentile(&times, 0.99).as_secs_f64() * 1e6
    );
}

fn key(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let cases = [
        ("RS256", "rsa2048.pkcs8.pem", "rsa2048", 200),
        ("PS256", "rsa2048.pkcs8.pem", "rsa2048", 200),
        ("ES256", "p256.pkcs8.pem", "p256", 1000),
    ];
    println!("assertion_signing: one client assertion (open + parse + sign + drop)");
    for (alg, file, _, n) in cases {
        let k = AssertionKey::new(
            &key(file),
            SigningAlg::parse(alg),
            Some("k1".into()),
            Audience::TokenEndpoint,
        )
        .unwrap();
        let time = |_| {
            let t = Instant::now();
            std::hint::black_box(
                k.sign("bench", "http://127.0.0.1/token", 1_800_000_000)
                    .unwrap(),
            );
            t.elapsed()
        };
        (0..n / 10).for_each(|i| {
            time(i);
        });
        let size = if alg == "ES256" { "P-256" } else { "RSA 2048" };
        report(&format!("sign {alg} ({size})"), (0..n).map(time).collect());
    }

    println!(
        "fetch from the local idp over HTTP (invalidate + token), idp verifying each assertion"
    );
    let idp = common::Idp::start_with(&[]);
    let fetches = |p: &Provider, n: usize| -> Vec<Duration> {
        (0..n)
            .map(|_| {
                p.invalidate();
                let t = Instant::now();
                p.token().expect("fetch");
                t.elapsed()
            })
            .collect()
    };
    idp.add_client(json!({"dialect": "oauth", "client_id": "bench-secret", "client_secret": "s"}));
    let p = Provider::new(
        &json!({"token_url": idp.url("/oauth/token"), "client_id": "bench-secret",
                "client_secret": "s", "proxy": "none"})
        .to_string(),
    )
    .unwrap();
    fetches(&p, 20);
    report("fetch, client_secret_basic", fetches(&p, 200));
    for (alg, file, public, _) in cases {
        let id = format!("bench-{alg}");
        let mut jwk: serde_json::Value =
            serde_json::from_str(&key(&format!("{public}.public.jwk.json"))).unwrap();
        jwk["kid"] = "k1".into();
        idp.add_client(json!({"dialect": "oauth", "client_id": id, "jwks": {"keys": [jwk]}}));
        let p = Provider::new(
            &json!({"token_url": idp.url("/oauth/token"), "client_id": id, "proxy": "none",
                    "auth_method": "private_key_jwt", "private_key": key(file), "key_id": "k1",
                    "signing_alg": alg})
            .to_string(),
        )
        .unwrap();
        fetches(&p, 20);
        report(&format!("fetch, private_key_jwt {alg}"), fetches(&p, 200));
    }
}
