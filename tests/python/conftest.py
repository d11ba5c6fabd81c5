"""Fixtures for the Python binding's tests: the local identity provider (`credvault idp --demo`,
a real HTTP server on 127.0.0.1, see tests/common/mod.rs) and a small loopback API.

The suite runs with --assert=plain (tests/python/run.sh): a failed assertion shows its message,
never the values compared, which may be tokens.

Every exception credvault raises during the suite is recorded (text, repr, args) and checked at
the end for every secret the suite knows: the demo clients' secrets and every token issued. So
is every event the library logs during the whole run: the suite installs the log hook
(credvault.enable_logging at DEBUG, to the logger "credvault.suite") before the first test.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import credvault
from credvault import errors as cv_errors

REPO = Path(__file__).resolve().parents[2]
IDP_BIN = os.environ.get("CREDVAULT_BIN", str(REPO / "target" / "release" / "credvault"))

DEMO_SECRETS = [
    "demo-vitesse-secret",
    "demo-apiture-secret",
    "demo-vipps-secret",
    "demo-vipps-subscription-key",
    "demo-partner-secret",
    "demo-vgs-secret",
    "demo: secret+with%odd chars",
]
OAUTH_SECRET = "demo: secret+with%odd chars"

# Every token and secret seen during the run, and every exception text credvault produced.
SEEN_SECRETS: set[str] = set(DEMO_SECRETS)
EXCEPTION_TEXTS: list[str] = []

_orig_init = cv_errors.CredvaultError.__init__


def _recording_init(self, *args, **kwargs):  # observes, changes nothing
    _orig_init(self, *args, **kwargs)
    EXCEPTION_TEXTS.append(f"{self}\n{self!r}\n{self.args!r}\n{self.message}\n{self.oauth_error}")


cv_errors.CredvaultError.__init__ = _recording_init  # type: ignore[method-assign]


def remember(value: str) -> str:
    """Records a token (or Authorization value) so the final check looks for it."""
    SEEN_SECRETS.add(value.split(" ", 1)[-1])
    return value


class _SuiteLog(logging.Handler):
    """Keeps the text of every record the library's events became: message, formatted record
    and every attribute (the extras), for the final check."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []
        self.events: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(f"{record.getMessage()}\n{logging.Formatter().format(record)}\n{record.__dict__!r}")
        self.events.add(record.getMessage())


SUITE_LOG = _SuiteLog()
_suite_logger = logging.getLogger("credvault.suite")
_suite_logger.addHandler(SUITE_LOG)
_suite_logger.setLevel(logging.DEBUG)
_suite_logger.propagate = False


def suite_logging() -> None:
    """(Re)installs the suite's log hook (tests of enable_logging call this when done)."""
    credvault.enable_logging(_suite_logger, logging.DEBUG)


suite_logging()


def pytest_sessionfinish(session, exitstatus):
    leaks = [s for s in SEEN_SECRETS for t in EXCEPTION_TEXTS if s and s in t]
    log_leaks = [s for s in SEEN_SECRETS for t in SUITE_LOG.texts if s and s in t]
    if leaks:
        session.exitstatus = 1
        print(f"\nSECRET FOUND IN EXCEPTION TEXT: {len(leaks)} occurrence(s)", file=sys.stderr)
    elif log_leaks:
        session.exitstatus = 1
        print(f"\nSECRET FOUND IN A LOG RECORD: {len(log_leaks)} occurrence(s)", file=sys.stderr)
    elif not SUITE_LOG.texts and exitstatus == 0 and session.testscollected > 1:
        session.exitstatus = 1
        print("\nthe suite's log hook received no event", file=sys.stderr)
    else:
        print(
            f"\nno secret in {len(EXCEPTION_TEXTS)} exception texts and {len(SUITE_LOG.texts)} "
            f"log records ({len(SUITE_LOG.events)} kinds of event) "
            f"(checked against {len(SEEN_SECRETS)} secrets and tokens)"
        )


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Idp:
    """A running `credvault idp --demo`; admin API helpers."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [IDP_BIN, "idp", "--demo", "--exit-on-stdin-eof"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        line = self.proc.stdout.readline().decode()
        prefix = "credvault-idp listening on "
        assert line.startswith(prefix), f"unexpected idp banner: {line!r}"
        self.base = line[len(prefix):].strip()

    def url(self, path: str) -> str:
        return self.base + path

    def admin(self, method: str, path: str, body=None):
        data = json.dumps(body).encode() if body is not None else (b"" if method == "POST" else None)
        req = urllib.request.Request(self.url(path), data=data, method=method)
        if body is not None:
            req.add_header("Content-Type", "application/json")
        with _NO_PROXY.open(req, timeout=10) as r:
            text = r.read().decode()
        return json.loads(text) if text else None

    def fault(self, rule: dict) -> None:
        self.admin("POST", "/_idp/faults", rule)

    def clear_faults(self) -> None:
        self.admin("DELETE", "/_idp/faults")

    def reset(self) -> None:
        self.admin("POST", "/_idp/reset")

    def stats(self) -> dict:
        return self.admin("GET", "/_idp/stats")

    def tokens_issued(self) -> int:
        return self.stats()["tokens_issued"]

    def token_requests(self) -> int:
        return self.stats()["token_requests"]

    def add_client(self, client: dict) -> None:
        self.admin("POST", "/_idp/clients", client)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="session")
def idp_server():
    server = Idp()
    yield server
    server.stop()


@pytest.fixture
def idp(idp_server):
    """The session's idp, with counters and faults reset for the test."""
    idp_server.reset()
    return idp_server


def oauth_config(idp: Idp, **extra) -> dict:
    cfg = {
        "token_url": idp.url("/oauth/token"),
        "client_id": "demo-oauth-client",
        "client_secret": OAUTH_SECRET,
    }
    cfg.update(extra)
    return cfg


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    """A loopback API that answers 401 to a revoked (or missing) bearer token and 200 otherwise;
    it records the Authorization header and body of every request."""

    def __init__(self) -> None:
        self.revoked: set[str] = set()
        self.refuse_all = False
        self.seen: list[tuple[str, bytes]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    body = self._read_chunked()
                auth = self.headers.get("Authorization", "")
                api.seen.append((auth, body))
                token = auth.split(" ", 1)[1] if auth.startswith("Bearer ") else ""
                ok = bool(token) and token not in api.revoked and not api.refuse_all
                payload = b'{"ok":true}' if ok else b'{"error":"invalid_token"}'
                self.send_response(200 if ok else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _read_chunked(self) -> bytes:
                out = b""
                while True:
                    size = int(self.rfile.readline().strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return out
                    out += self.rfile.read(size)
                    self.rfile.readline()

            do_GET = _serve
            do_POST = _serve

            def log_message(self, *args) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api():
    server = Api()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for k in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost,::1")
