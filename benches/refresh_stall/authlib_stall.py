"""Refresh under load, Python client (issue 3): authlib's requests OAuth2Session.

One ``authlib.integrations.requests_client.OAuth2Session`` created with
``token_endpoint=...`` and ``grant_type="client_credentials"`` (client_secret_basic), shared by N
threads. Its first token comes from ``session.fetch_token()`` (the warm-up, reported as
``warmup_ms`` and left out of the statistics). Each measured "get a token" then does exactly what
``session.request()`` does before every API call -- ``OAuth2Auth.__call__`` runs
``session.token_auth.ensure_active_token()``, which re-runs the client-credentials grant when
``token.is_expired(leeway=session.leeway)`` -- and reads ``session.token["access_token"]``.
authlib takes no lock there: every thread that finds the token expired fetches on its own.

Configured by the environment (run.sh sets it): BENCH_TOKEN_URL, BENCH_CLIENT_ID,
BENCH_CLIENT_SECRET, BENCH_THREADS (8), BENCH_SECS (20), BENCH_PAUSE_MS (1), and
BENCH_AUTHLIB_LEEWAY (seconds; unset = authlib's default of 60).

Prints one JSON line on stdout. Never prints a token.
"""

import json
import math
import os
import threading
import time

import authlib
from authlib.integrations.requests_client import OAuth2Session


def env(name, default=None):
    v = os.environ.get(name, default)
    if v is None:
        raise SystemExit(f"{name} must be set")
    return v


def ms(ns):
    return round(ns / 1e6, 4)


def pct(sorted_values, p):
    """Nearest-rank percentile of sorted values."""
    rank = math.ceil(p / 100 * len(sorted_values))
    return sorted_values[min(max(rank, 1), len(sorted_values)) - 1]


def main():
    threads = int(env("BENCH_THREADS", "8"))
    secs = float(env("BENCH_SECS", "20"))
    pause = float(env("BENCH_PAUSE_MS", "1")) / 1000
    leeway_env = os.environ.get("BENCH_AUTHLIB_LEEWAY")
    kwargs = {}
    if leeway_env:
        kwargs["leeway"] = float(leeway_env)

    session = OAuth2Session(
        env("BENCH_CLIENT_ID"),
        env("BENCH_CLIENT_SECRET"),
        token_endpoint=env("BENCH_TOKEN_URL"),
        token_endpoint_auth_method="client_secret_basic",
        grant_type="client_credentials",
        **kwargs,
    )

    t = time.perf_counter_ns()
    session.fetch_token()
    warmup = time.perf_counter_ns() - t

    def get_token():
        # What session.request() runs before each request (OAuth2Auth.__call__).
        session.token_auth.ensure_active_token()
        return session.token["access_token"]

    results = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads + 1)

    def worker():
        samples = []
        errors = 0
        seen = set()
        barrier.wait()
        start = time.perf_counter_ns()
        end = start + int(secs * 1e9)
        while True:
            t0 = time.perf_counter_ns()
            if t0 >= end:
                break
            try:
                seen.add(get_token())
            except Exception:  # counted, never printed (a message could quote a response)
                errors += 1
            samples.append((time.perf_counter_ns() - t0, t0 - start))
            time.sleep(pause)
        with lock:
            results.append((samples, errors, seen))

    ths = [threading.Thread(target=worker) for _ in range(threads)]
    for th in ths:
        th.start()
    barrier.wait()
    for th in ths:
        th.join()

    all_samples = [s for r in results for s in r[0]]
    errors = sum(r[1] for r in results)
    tokens = set().union(*(r[2] for r in results))
    lat = sorted(s[0] for s in all_samples)
    mx = max(all_samples)
    slow = sorted((s for s in all_samples if s[0] > 10_000_000), key=lambda s: s[1])
    print(
        json.dumps(
            {
                "client": f"Python authlib {authlib.__version__} OAuth2Session "
                f"(leeway {session.leeway:g} s{', default' if not leeway_env else ''})",
                "calls": len(lat),
                "errors": errors,
                "warmup_ms": ms(warmup),
                "max_ms": ms(mx[0]),
                "max_at_s": round(mx[1] / 1e9, 3),
                "p50_ms": ms(pct(lat, 50)),
                "p99_ms": ms(pct(lat, 99)),
                "p999_ms": ms(pct(lat, 99.9)),
                "over_1ms": sum(1 for n in lat if n > 1_000_000),
                "over_10ms": len(slow),
                "slow_calls": [
                    {"at_s": round(s[1] / 1e9, 3), "ms": ms(s[0])} for s in slow[:40]
                ],
                "top_calls": [
                    {"at_s": round(s[1] / 1e9, 3), "ms": ms(s[0])}
                    for s in sorted(all_samples, reverse=True)[:10]
                ],
                "tokens_seen": len(tokens),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
