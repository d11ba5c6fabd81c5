"""Python clients of benches/compare (see ../README.md), against the same local identity provider:

* authlib ``OAuth2Client`` (authlib.integrations.httpx_client, client_credentials, Basic): a
  "get a token" is what ``client.request()`` does before each request,
  ``client.ensure_active_token(client.token)``, then ``client.token["access_token"]``; run with
  authlib's default ``leeway`` (60 s) and with a quarter of the lifetime (``-leeway``);
* httpx-auth ``OAuth2ClientCredentials``: ``auth_flow(request)`` up to the request it yields (the
  token from its cache, the header set); run with its default ``early_expiry`` (30 s) and with a
  quarter of the lifetime (``-early``);
* credvault ``Provider.token()`` (the package in bindings/python, installed from a wheel).

Configured by the environment (run.sh sets it): BENCH_MODE (cached | threads | stall | version),
BENCH_CLIENT (threads, stall), BENCH_TOKEN_URL, BENCH_CLIENT_ID, BENCH_CLIENT_SECRET,
BENCH_LIFETIME_S, BENCH_N and BENCH_ROUNDS (cached), BENCH_THREADS and BENCH_SECS (threads,
stall), BENCH_PAUSE_MS and BENCH_BUCKET_MS (stall). Prints JSON lines. Never prints a token.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import threading
import time
import warnings
from importlib.metadata import version

warnings.simplefilter("ignore")


def env(name, default=None):
    v = os.environ.get(name, default)
    if v is None:
        raise SystemExit(f"{name} must be set")
    return v


def emit(d):
    d["lang"] = "Python"
    print(json.dumps(d), flush=True)


def make(kind):
    url, cid, secret = env("BENCH_TOKEN_URL"), env("BENCH_CLIENT_ID"), env("BENCH_CLIENT_SECRET")
    quarter = float(env("BENCH_LIFETIME_S", "15")) * 0.25
    if kind.startswith("authlib"):
        from authlib.integrations.httpx_client import OAuth2Client

        kw = {"leeway": quarter} if kind == "authlib-leeway" else {}
        client = OAuth2Client(
            cid,
            secret,
            token_endpoint=url,
            token_endpoint_auth_method="client_secret_basic",
            grant_type="client_credentials",
            trust_env=False,
            **kw,
        )
        client.fetch_token(url, grant_type="client_credentials")

        def get():
            client.ensure_active_token(client.token)
            return client.token["access_token"]

        return f"authlib OAuth2Client (leeway {client.leeway:g} s)", get
    if kind.startswith("httpx-auth"):
        import httpx
        import httpx_auth

        kw = {"early_expiry": quarter} if kind == "httpx-auth-early" else {}
        auth = httpx_auth.OAuth2ClientCredentials(url, client_id=cid, client_secret=secret, **kw)
        request = httpx.Request("GET", "http://127.0.0.1:9/")
        early = kw.get("early_expiry", "30 default")

        def get():
            return next(auth.auth_flow(request)).headers["Authorization"]

        return f"httpx-auth OAuth2ClientCredentials (early_expiry {early} s)", get
    if kind == "credvault":
        import credvault

        p = credvault.Provider(token_url=url, client_id=cid, client_secret=secret)
        return "credvault Python Provider.token()", p.token
    raise SystemExit(f"unknown client {kind}")


def pct(sorted_values, p):
    rank = math.ceil(p / 100 * len(sorted_values))
    return sorted_values[min(max(rank, 1), len(sorted_values)) - 1]


def cached():
    n, rounds = int(env("BENCH_N", "20000")), int(env("BENCH_ROUNDS", "11"))
    clients = [make(k) for k in ("authlib", "httpx-auth", "credvault")]
    for _, get in clients:
        get()
    res = [[] for _ in clients]
    for r in range(rounds):
        for k in range(len(clients)):
            i = (k + r) % len(clients)
            get = clients[i][1]
            # CPU time of this thread: on a shared machine, wall-clock time would also count the
            # time the thread waited for a core.
            t = time.thread_time_ns()
            for _ in range(n):
                get()
            res[i].append((time.thread_time_ns() - t) / n)
    for (name, _), ns in zip(clients, res):
        emit({"mode": "cached", "client": name, "ns": ns})


def threads(kind):
    name, get = make(kind)
    get()
    nth, secs = int(env("BENCH_THREADS", "1")), float(env("BENCH_SECS", "2"))
    counts = []
    lock = threading.Lock()
    barrier = threading.Barrier(nth + 1)

    def worker():
        barrier.wait()
        end = time.perf_counter() + secs
        k = 0
        while True:
            for _ in range(64):
                get()
            k += 64
            if time.perf_counter() >= end:
                break
        with lock:
            counts.append(k)

    ths = [threading.Thread(target=worker) for _ in range(nth)]
    for th in ths:
        th.start()
    t = time.perf_counter()
    barrier.wait()
    for th in ths:
        th.join()
    el = time.perf_counter() - t
    emit({"mode": "threads", "client": name, "threads": nth, "calls_per_s": sum(counts) / el})


def stall(kind):
    t = time.perf_counter_ns()
    name, get = make(kind)
    get()
    warmup = time.perf_counter_ns() - t
    nth, secs = int(env("BENCH_THREADS", "8")), float(env("BENCH_SECS", "20"))
    pause = float(env("BENCH_PAUSE_MS", "1")) / 1000
    bucket_ns = float(env("BENCH_BUCKET_MS", "100")) * 1e6
    results, errors = [], [0]
    lock = threading.Lock()
    barrier = threading.Barrier(nth + 1)
    start = [0]

    def worker():
        samples, errs = [], 0
        barrier.wait()
        s0 = start[0]
        end = s0 + int(secs * 1e9)
        while True:
            t0 = time.perf_counter_ns()
            if t0 >= end:
                break
            try:
                get()
            except Exception:  # counted, never printed (a message could quote a response)
                errs += 1
            samples.append((time.perf_counter_ns() - t0, t0 - s0))
            time.sleep(pause)
        with lock:
            results.extend(samples)
            errors[0] += errs

    ths = [threading.Thread(target=worker) for _ in range(nth)]
    for th in ths:
        th.start()
    start[0] = time.perf_counter_ns()
    barrier.wait()
    for th in ths:
        th.join()
    lat = sorted(s[0] for s in results)
    mx = max(results)
    series = [0.0] * (int(secs * 1e9 / bucket_ns) + 1)
    for d, at in results:
        b = int(at / bucket_ns)
        if 0 <= b < len(series) and d / 1e6 > series[b]:
            series[b] = round(d / 1e6, 4)
    emit(
        {
            "mode": "stall",
            "client": name,
            "calls": len(lat),
            "errors": errors[0],
            "warmup_ms": round(warmup / 1e6, 4),
            "max_ms": round(mx[0] / 1e6, 4),
            "max_at_s": round(mx[1] / 1e9, 3),
            "p50_ms": round(pct(lat, 50) / 1e6, 4),
            "p99_ms": round(pct(lat, 99) / 1e6, 4),
            "p999_ms": round(pct(lat, 99.9) / 1e6, 4),
            "over_1ms": sum(1 for d in lat if d > 1_000_000),
            "over_10ms": sum(1 for d in lat if d > 10_000_000),
            "bucket_ms": bucket_ns / 1e6,
            "series_max_ms": series,
        }
    )


def main():
    mode = env("BENCH_MODE")
    if mode == "version":
        vs = ", ".join(f"{p} {version(p)}" for p in ("authlib", "httpx", "httpx-auth", "credvault", "matplotlib"))
        print(f"CPython {platform.python_version()}, {vs}")
    elif mode == "cached":
        cached()
    elif mode == "threads":
        threads(env("BENCH_CLIENT"))
    elif mode == "stall":
        stall(env("BENCH_CLIENT"))
    else:
        raise SystemExit(f"unknown BENCH_MODE {mode}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
