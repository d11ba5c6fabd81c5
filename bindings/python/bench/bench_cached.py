"""Cached token lookup from Python: credvault beside authlib and httpx-auth, same machine, same
run, against the same local identity provider (`credvault idp --demo`).

    python bindings/python/bench/bench_cached.py            # full run (figures for BENCHMARKS.md)
    python bindings/python/bench/bench_cached.py --quick    # smoke run

Needs the credvault wheel installed, plus authlib, httpx and httpx-auth (tests/python/run.sh
installs all of them into target/python/test-venv). Each figure is the median and the minimum over ROUNDS
rounds of ns per call, for a loop of N calls; rounds of the systems are
interleaved so that machine noise hits them alike. Rounds are short (2,000 calls, about
a millisecond) so that the minimum is a round that no other process interrupted.

What is measured, for each system, is the cached path a request takes to get its token:
* credvault: `Provider.token()` (and `authorization()`): one non-blocking library call of one
  argument (`vault_try_fill_token`, through ctypes.PyDLL: the GIL is kept) that answers from
  the cache; while the cached token's generation is the one the provider already decoded, the
  library copies nothing and the str made last time is returned;
* authlib: `OAuth2Client.ensure_active_token(client.token)` then `client.token["access_token"]`,
  after `fetch_token()` (authlib.integrations.httpx_client);
* httpx-auth: `OAuth2ClientCredentials.auth_flow(request)` up to the request it yields (the
  token from its cache, the header set).

The breakdown section times the pieces of credvault's call shape from Python (an empty loop, the
ctypes call alone, .value, .decode) so that the cost of each is visible.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
IDP_BIN = os.environ.get("CREDVAULT_BIN", str(REPO / "target" / "release" / "credvault"))
# The VGS demo client: form-body or Basic auth, a plain secret, 300 s tokens.
CLIENT_ID, SECRET = "demo-vgs-client", "demo-vgs-secret"
TOKEN_PATH = "/vgs/auth/realms/vgs/protocol/openid-connect/token"


def start_idp() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [IDP_BIN, "idp", "--demo", "--exit-on-stdin-eof"], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    line = proc.stdout.readline().decode()
    prefix = "credvault-idp listening on "
    if not line.startswith(prefix):
        raise SystemExit(f"unexpected idp banner: {line!r}")
    return proc, line[len(prefix):].strip()


def per_call_ns(fn, n: int) -> float:
    t0 = time.perf_counter_ns()
    for _ in range(n):
        fn()
    return (time.perf_counter_ns() - t0) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("-n", type=int, default=2_000)
    ap.add_argument("--rounds", type=int, default=300)
    args = ap.parse_args()
    n, rounds = (2_000, 2) if args.quick else (args.n, args.rounds)

    import credvault

    proc, base = start_idp()
    url = base + TOKEN_PATH
    try:
        systems: dict[str, object] = {}

        vault = credvault.Provider(token_url=url, client_id=CLIENT_ID, client_secret=SECRET)
        vault.token()
        systems["credvault Provider.token()"] = vault.token
        systems["credvault Provider.authorization()"] = vault.authorization

        try:
            import warnings

            warnings.simplefilter("ignore")
            from authlib.integrations.httpx_client import OAuth2Client

            client = OAuth2Client(CLIENT_ID, SECRET, token_endpoint=url, trust_env=False)
            client.fetch_token(url, grant_type="client_credentials")

            def authlib_cached() -> str:
                client.ensure_active_token(client.token)
                return client.token["access_token"]

            authlib_cached()
            systems["authlib OAuth2Client (ensure_active_token)"] = authlib_cached
        except ImportError:
            print("authlib not installed: skipped", file=sys.stderr)

        try:
            import httpx
            import httpx_auth

            auth = httpx_auth.OAuth2ClientCredentials(url, client_id=CLIENT_ID, client_secret=SECRET)
            request = httpx.Request("GET", "http://127.0.0.1:9/")

            def httpx_auth_cached() -> str:
                flow = auth.auth_flow(request)
                return next(flow).headers["Authorization"]

            httpx_auth_cached()
            systems["httpx-auth OAuth2ClientCredentials"] = httpx_auth_cached
        except ImportError:
            print("httpx-auth not installed: skipped", file=sys.stderr)

        # The pieces of credvault's call, for the breakdown.
        from credvault import _ffi

        h, buf = vault._h, vault._tbuf
        pieces: dict[str, object] = {"empty Python call (def f(): pass)": (lambda: None)}
        if _ffi.HAS_TRY:
            fill = _ffi.fast.vault_try_fill_token
            ptr, fill_struct = vault._tptr, vault._tfill
            pieces["vault_try_fill_token alone, same generation (nothing copied)"] = lambda: fill(ptr)

            def fill_fresh() -> int:
                fill_struct.generation = 0  # forces the decrypt and copy
                return fill(ptr)

            pieces["vault_try_fill_token alone, generation reset (decrypt + copy)"] = fill_fresh
            six = _ffi.fast.vault_try_get_token_into
            c8192, c0 = ctypes.c_size_t(8192), ctypes.c_size_t(0)
            pieces["vault_try_get_token_into alone (6 args, pre-converted, PyDLL)"] = lambda: six(
                h, buf, c8192, None, None, c0
            )
            six_declared = _ffi.lib.vault_try_get_token_into
            pieces["vault_try_get_token_into alone (6 args, argtypes, CDLL)"] = lambda: six_declared(
                h, buf, 8192, None, None, 0
            )
        pieces["buf.value (8 KiB buffer)"] = lambda: buf.value
        tok = vault.token().encode()
        pieces["bytes.decode of the token"] = tok.decode
        blocking = _ffi.lib.vault_get_token_into
        pieces["vault_get_token_into (blocking call, CDLL, argtypes)"] = lambda: blocking(h, buf, 8192, None, None, 0)

        results: dict[str, list[float]] = {k: [] for k in list(systems) + list(pieces)}
        for _ in range(rounds):
            for name, fn in list(systems.items()) + list(pieces.items()):
                results[name].append(per_call_ns(fn, n))

        def row(name: str) -> str:
            v = results[name]
            return f"| {name} | {statistics.median(v):,.0f} | {min(v):,.0f} |"

        print(f"Python {platform.python_version()}, {platform.machine()}, {n} calls x {rounds} rounds, ns per call\n")
        print("| cached token lookup | median ns | min ns |\n|---|---:|---:|")
        for name in systems:
            print(row(name))
        print()
        # Ratios: the median over rounds of the ratio within each round (the systems run back to
        # back in every round, so a noisy stretch of the machine hits both), and of the minimums.
        cv = results["credvault Provider.token()"]
        for other in systems:
            if not other.startswith("credvault"):
                per_round = statistics.median(a / b for a, b in zip(cv, results[other]))
                print(
                    f"credvault token() / {other.split(' ')[0]}: {per_round:.2f}x "
                    f"(median of per-round ratios), {min(cv) / min(results[other]):.2f}x (ratio of minimums)"
                )
        print("\n| piece of credvault's call | median ns | min ns |\n|---|---:|---:|")
        for name in pieces:
            print(row(name))
    finally:
        proc.kill()
        proc.wait()


if __name__ == "__main__":
    main()
