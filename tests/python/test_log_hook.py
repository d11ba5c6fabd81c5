"""The log hook under ordinary use, and what the binding's calls promise about the
events and cool-downs.

The deadlock workload runs in a child interpreter with a timeout: a deadlock involving the GIL
would stop this process too (the thread holding the GIL never returns), so the child is killed
and the test fails instead of hanging.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest

import credvault
from conftest import OAUTH_SECRET, oauth_config, remember, suite_logging

WORKLOAD = textwrap.dedent(
    """
    import logging, sys, threading, time
    import credvault

    base, secret = sys.argv[1], sys.argv[2]
    good = {"token_url": base + "/oauth/token", "client_id": "demo-oauth-client",
            "client_secret": secret}
    log = logging.getLogger("workload")
    log.addHandler(logging.NullHandler())
    log.setLevel(logging.DEBUG)
    log.propagate = False
    credvault.enable_logging(log, logging.DEBUG)

    bad = credvault.Provider(dict(good, client_secret="not-the-secret-22", cooldown_ms=60000))
    providers = [credvault.Provider(good) for _ in range(10)]
    stop = time.monotonic() + 3.0
    counts = {"invalidate": 0, "churn": 0, "token": 0}

    def invalidating():
        # A cool-down, ended by each invalidate (cooldown_ended) and entered again.
        while time.monotonic() < stop:
            try:
                bad.token()
            except credvault.CredvaultError:
                pass
            bad.invalidate()
            counts["invalidate"] += 1

    def churning():
        while time.monotonic() < stop:
            credvault.Provider(good).close()
            counts["churn"] += 1

    def tokens():
        while time.monotonic() < stop:
            for p in providers:
                p.token()
            counts["token"] += 1

    threads = [threading.Thread(target=f) for f in (invalidating, churning, tokens)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    credvault.disable_logging()
    assert all(counts.values()), counts
    print("ok", counts)
    """
)


@pytest.mark.parametrize("run", range(3))
def test_logging_with_invalidate_churn_and_tokens_does_not_deadlock(idp, run):
    """One thread invalidates during a cool-down, one creates and closes providers,
    one calls token() over 10 providers, with enable_logging(): hung within 3 s before."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", WORKLOAD, idp.base, OAUTH_SECRET],
            capture_output=True,
            timeout=90,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the workload hung (a deadlock between the log hook, the library and the GIL)")
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    assert done.stdout.startswith(b"ok"), "the workload did not finish"


class _Events(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[tuple[int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((record.levelno, record.getMessage()))


def _capture(level: int) -> tuple[logging.Logger, _Events]:
    logger = logging.getLogger(f"credvault.test_log_hook.{level}")
    handler = _Events()
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    credvault.enable_logging(logger, level)
    return logger, handler


def test_levels_warning_and_critical(idp):
    """At WARNING a failed fetch's fetch_finished arrives; at CRITICAL
    nothing does (a failed configuration load is an error, below it)."""
    bad = credvault.Provider(oauth_config(idp, client_secret="wrong-secret-26py"))
    try:
        _, warn = _capture(logging.WARNING)
        with pytest.raises(credvault.CredvaultError):
            bad.token()
        _, crit = _capture(logging.CRITICAL)
        bad.invalidate()
        with pytest.raises(credvault.CredvaultError):
            bad.token()
        with pytest.raises(credvault.CredvaultError):
            credvault.load_config("/nonexistent/credvault-26.json")
    finally:
        suite_logging()
        bad.close()
    assert (logging.WARNING, "fetch_finished") in warn.records, warn.records
    assert (logging.WARNING, "cooldown_entered") in warn.records, warn.records
    assert crit.records == [], crit.records


def test_invalidate_with_the_token_ends_a_cooldown(idp):
    """Invalidate(token) with a token handed out before the cool-down ends it, as
    the docs and the cool-down's own message ("invalidate to retry now") say."""
    p = credvault.Provider(oauth_config(idp, cooldown_ms=60000))
    try:
        old = remember(p.token())
        p.invalidate()
        idp.fault({"path": "/oauth/token", "status": 400,
                   "body": '{"error":"invalid_client"}', "count": 1})
        with pytest.raises(credvault.CredvaultError):
            p.token()
        with pytest.raises(credvault.CredvaultError) as cooling:
            p.token()
        assert "cooling down" in str(cooling.value)
        p.invalidate(old)
        assert remember(p.token()) != old, "a new token after the cool-down was ended"
    finally:
        p.close()


REPLACING = textwrap.dedent(
    """
    import logging, sys, threading, time
    import credvault

    base, secret = sys.argv[1], sys.argv[2]
    entered, done = threading.Event(), threading.Event()

    class Replacing(logging.Handler):
        def emit(self, record):
            if record.getMessage() == "fetch_started" and not entered.is_set():
                entered.set()
                time.sleep(0.3)  # meanwhile the main thread's enable_logging waits for this call
                credvault.enable_logging(logging.getLogger("other"), logging.INFO)
                done.set()

    log = logging.getLogger("replacing")
    log.addHandler(Replacing())
    log.setLevel(logging.DEBUG)
    log.propagate = False
    credvault.enable_logging(log, logging.DEBUG)
    p = credvault.Provider(token_url=base + "/oauth/token", client_id="demo-oauth-client",
                           client_secret=secret)
    threading.Thread(target=p.token, daemon=True).start()
    assert entered.wait(30)
    credvault.enable_logging(logging.getLogger("third"), logging.INFO)
    assert done.wait(30)
    credvault.disable_logging()
    print("ok")
    """
)


def test_enable_logging_from_a_handler_while_another_enable_logging_waits(idp):
    """vault_set_log_callback waits for the calls in progress of the callback it replaces; a
    handler calling enable_logging while another thread's enable_logging waits for that very
    call must not deadlock on the binding's own lock."""
    try:
        done = subprocess.run(
            [sys.executable, "-c", REPLACING, idp.base, OAUTH_SECRET],
            capture_output=True,
            timeout=90,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("deadlock: enable_logging from a handler while another enable_logging waits")
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    assert done.stdout.startswith(b"ok")
