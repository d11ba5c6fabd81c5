"""Operating it from Python: Provider.stats() and credvault.stats_all() after known
sequences against the local identity provider, the Prometheus text read by prometheus_client's
own parser, enable_logging() turning the library's events into logging records (with no secret
or token in any of them), and configuration files with a {"file": ...} secret reference,
loaded, looked up by name and reloaded."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

import credvault
from conftest import OAUTH_SECRET, SEEN_SECRETS, oauth_config, remember, suite_logging

WRONG_SECRET = "ops-test-wrong-secret-value"
SEEN_SECRETS.add(WRONG_SECRET)


def handle_label(p: credvault.Provider) -> str:
    """The name stats and metrics give a provider created from a dict."""
    return f"handle:{p._h.value}"


def samples(text: str, name: str) -> dict[str, float]:
    """The samples ``name`` of the exposition text, by their provider label, through the
    reference parser (it raises on anything malformed)."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name:
                out[s.labels.get("provider", "")] = s.value
    return out


# -- statistics ---------------------------------------------------------------------------------


def test_stats_after_one_fetch_and_cached_calls(idp):
    n = 7
    with credvault.Provider(oauth_config(idp)) as p:
        first = remember(p.token())
        for _ in range(n):
            assert p.token() == first
        st = p.stats()
        assert st["provider"] == handle_label(p)
        assert st["tokens_fetched"] == 1, st
        assert st["cache_hits"] == n, st
        assert st["failures"] == {} and st["last_error"] is None, st
        assert st["retries"] == 0 and st["background_refreshes"] == 0, st
        assert st["token_remaining_s"] > 0 and st["last_fetch_unix_ms"] > 0, st
        assert st["cooldown"] == {"active": False, "remaining_ms": 0}, st
        assert idp.tokens_issued() == 1

        everything = credvault.stats_all()
        mine = [e for e in everything["providers"] if e["handle"] == p._h.value]
        assert len(mine) == 1 and mine[0]["tokens_fetched"] == 1 and mine[0]["cache_hits"] == n
        assert set(everything["scheduler"]) >= {"queued", "workers", "refreshes", "max_workers"}

        text = json.dumps(st) + json.dumps(everything)
        assert all(s not in text for s in SEEN_SECRETS), "a secret or token in the statistics"
    with pytest.raises(credvault.InvalidHandle):
        p.stats()


def test_stats_of_a_failing_provider(idp):
    cfg = oauth_config(idp, client_secret=WRONG_SECRET, cooldown_ms=60000)
    with credvault.Provider(cfg) as p:
        with pytest.raises(credvault.CredentialsRejected):
            p.token()
        # The cool-down answers from the stored error: not a second failure on the wire.
        with pytest.raises(credvault.CredentialsRejected):
            p.token()
        st = p.stats()
        assert st["tokens_fetched"] == 0 and st["cache_hits"] == 0, st
        assert st["failures"] == {"VAULT_STATUS_CREDENTIALS_REJECTED": 1}, st
        assert st["last_error"]["status"] == "VAULT_STATUS_CREDENTIALS_REJECTED", st
        assert st["last_error"]["message"] and st["last_error"]["at_unix_ms"] > 0, st
        assert st["cooldown"]["active"] is True and 0 < st["cooldown"]["remaining_ms"] <= 60000, st
        assert st["token_remaining_s"] is None, st
        assert WRONG_SECRET not in json.dumps(st) and OAUTH_SECRET not in json.dumps(st)
        assert idp.token_requests() == 1


# -- Prometheus ---------------------------------------------------------------------------------


def test_metrics_prometheus_parsed_by_prometheus_client(idp):
    n = 4
    with credvault.Provider(oauth_config(idp)) as p, credvault.Provider(
        oauth_config(idp, client_secret=WRONG_SECRET, cooldown_ms=60000)
    ) as bad:
        remember(p.token())
        for _ in range(n):
            p.token()
        with pytest.raises(credvault.CredentialsRejected):
            bad.token()
        text = credvault.metrics_prometheus()
        fetched = samples(text, "credvault_tokens_fetched_total")
        hits = samples(text, "credvault_cache_hits_total")
        assert fetched.get(handle_label(p)) == 1.0, fetched
        assert hits.get(handle_label(p)) == float(n), hits
        assert fetched.get(handle_label(bad)) == 0.0, fetched
        failures = [
            s
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name == "credvault_fetch_failures_total" and s.labels.get("provider") == handle_label(bad)
        ]
        assert [s.value for s in failures] == [1.0], failures
        assert all(s not in text for s in SEEN_SECRETS), "a secret or token in the metrics"


# -- logging --------------------------------------------------------------------------------------


class Capture(logging.Handler):
    """Keeps every record, with the thread it arrived on."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.mu = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        with self.mu:
            self.records.append(record)

    def events(self) -> list[str]:
        with self.mu:
            return [r.getMessage() for r in self.records]


def record_text(r: logging.LogRecord) -> str:
    return f"{r.getMessage()}\n{logging.Formatter().format(r)}\n{r.__dict__!r}"


def test_enable_logging_turns_events_into_records_without_secrets(idp, caplog):
    logger = logging.getLogger("credvault")
    cap = Capture()
    logger.addHandler(cap)
    caplog.set_level(logging.DEBUG, logger="credvault")
    try:
        credvault.enable_logging(level=logging.DEBUG)
        # One good fetch after a malformed answer (a retry), then cached calls.
        idp.fault({"path": "/oauth/token", "kind": "malformed", "count": 1})
        with credvault.Provider(oauth_config(idp)) as p:
            remember(p.token())
            remember(p.authorization())
        # A rejected secret: a failed fetch and a cool-down.
        with credvault.Provider(oauth_config(idp, client_secret=WRONG_SECRET, cooldown_ms=60000)) as bad:
            with pytest.raises(credvault.CredentialsRejected):
                bad.token()
    finally:
        credvault.disable_logging()
        logger.removeHandler(cap)

    events = cap.events()
    for name in ("fetch_started", "fetch_finished", "retry", "cooldown_entered"):
        assert name in events, f"no {name} record among {events}"
    by_name = {r.getMessage(): r for r in cap.records}
    done = [r for r in cap.records if r.getMessage() == "fetch_finished"]
    ok = [r for r in done if getattr(r, "ok", None) is True]
    failed = [r for r in done if getattr(r, "ok", None) is False]
    assert ok and ok[0].levelno == logging.INFO and isinstance(getattr(ok[0], "latency_ms"), (int, float))
    assert failed and failed[0].levelno == logging.WARNING
    assert getattr(failed[0], "status") == "VAULT_STATUS_CREDENTIALS_REJECTED"
    # "message" is a LogRecord attribute: the error text comes as credvault_message.
    assert getattr(failed[0], "credvault_message")
    assert by_name["fetch_started"].levelno == logging.DEBUG
    assert getattr(by_name["retry"], "reason_status") == "VAULT_STATUS_MALFORMED_RESPONSE"
    assert by_name["cooldown_entered"].credvault_event["event"] == "cooldown_entered"  # type: ignore[attr-defined]
    assert all(r.name == "credvault" for r in cap.records)
    assert any(r.getMessage() == "fetch_finished" for r in caplog.records)

    # No secret or token in any record: message, extras, formatted text.
    texts = [record_text(r) for r in cap.records]
    leaks = [s for s in SEEN_SECRETS if any(s in t for t in texts)]
    assert not leaks, f"a secret or token in {len(leaks)} log record(s)"

    # Disabled: nothing more arrives.
    before = len(cap.records)
    logger.addHandler(cap)
    try:
        with credvault.Provider(oauth_config(idp)) as p:
            remember(p.token())
    finally:
        logger.removeHandler(cap)
        suite_logging()
    assert len(cap.records) == before, "records after disable_logging()"


def test_a_handler_that_raises_or_calls_back_does_no_harm(idp):
    logger = logging.getLogger("credvault.hostile")
    logger.propagate = False
    seen: list[int] = []

    class Hostile(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            # Calls back into the library from inside its callback, then raises.
            seen.append(len(credvault.stats_all()["providers"]))
            raise RuntimeError("handler failure")

    h = Hostile()
    logger.addHandler(h)
    logger.setLevel(logging.DEBUG)
    try:
        credvault.enable_logging(logger, logging.DEBUG)
        with credvault.Provider(oauth_config(idp)) as p:
            remember(p.token())
            assert p.stats()["tokens_fetched"] == 1
    finally:
        credvault.disable_logging()
        logger.removeHandler(h)
        suite_logging()
    assert seen, "the handler was never called"


# -- configuration files ----------------------------------------------------------------------------


def write(path, text: str, mode: int = 0o600) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)


def test_config_file_load_by_name_reload(idp, tmp_path):
    secret = tmp_path / "oauth-secret"
    write(secret, OAUTH_SECRET + "\n")
    conf = tmp_path / "credvault.json"

    def config(*names: str) -> str:
        entry = {
            "token_url": idp.url("/oauth/token"),
            "client_id": "demo-oauth-client",
            "client_secret": {"file": str(secret)},
            "cooldown_ms": 0,
        }
        return json.dumps({"providers": {n: entry for n in names}})

    write(conf, config("ops-a", "ops-b"))
    credvault.load_config(conf)

    a = credvault.provider("ops-a")
    assert a.name == "ops-a" and "ops-a" in repr(a)
    token = remember(a.token())
    assert a.stats()["provider"] == "ops-a" and a.stats()["tokens_fetched"] == 1
    with pytest.raises(credvault.InvalidArgument):
        credvault.Provider.by_name("no-such-provider")

    # close() detaches the object; the provider belongs to the file and keeps its token.
    a.close()
    with pytest.raises(credvault.InvalidHandle):
        a.token()
    a2 = credvault.Provider.by_name("ops-a")
    assert a2.token() == token
    assert idp.tokens_issued() == 1
    fetched = samples(credvault.metrics_prometheus(), "credvault_tokens_fetched_total")
    assert fetched.get("ops-a") == 1.0 and fetched.get("ops-b") == 0.0, fetched

    # Unchanged file: same handle, same cached token, nothing fetched.
    credvault.reload_config()
    assert a2.token() == token and idp.tokens_issued() == 1

    # A broken file changes nothing.
    write(conf, '{"providers": ')
    with pytest.raises(credvault.ConfigError):
        credvault.reload_config()
    assert a2.token() == token

    # A rotated secret (here: to a wrong one): same handle, token dropped, new secret used.
    write(conf, config("ops-a", "ops-b"))
    write(secret, WRONG_SECRET + "\n")
    credvault.reload_config()
    with pytest.raises(credvault.CredentialsRejected):
        a2.token()
    write(secret, OAUTH_SECRET + "\n")
    credvault.reload_config()
    assert remember(a2.token()) != token

    # Removed from the file: its handle is gone; the name is unknown.
    write(conf, config("ops-b"))
    credvault.reload_config()
    with pytest.raises(credvault.InvalidHandle):
        a2.token()
    with pytest.raises(credvault.InvalidArgument):
        credvault.provider("ops-a")
    remember(credvault.provider("ops-b").token())


def test_set_refresh_workers_sets_the_bound_and_refuses_out_of_range():
    try:
        credvault.set_refresh_workers(7)
        assert credvault.stats_all()["scheduler"]["max_workers"] == 7
        for bad in (0, 65, -1, 1 << 40):
            with pytest.raises(credvault.InvalidArgument, match="out of range"):
                credvault.set_refresh_workers(bad)
        with pytest.raises(TypeError):
            credvault.set_refresh_workers("8")  # type: ignore[arg-type]
        assert credvault.stats_all()["scheduler"]["max_workers"] == 7, "a refused value changed it"
    finally:
        credvault.set_refresh_workers(4)


def test_set_refresh_endpoint_limit_sets_it_and_refuses_out_of_range():
    try:
        credvault.set_refresh_endpoint_limit(5)
        assert credvault.stats_all()["scheduler"]["endpoint_limit"] == 5
        for bad in (0, 65, -1):
            with pytest.raises(credvault.InvalidArgument, match="out of range"):
                credvault.set_refresh_endpoint_limit(bad)
        assert credvault.stats_all()["scheduler"]["endpoint_limit"] == 5, "a refused value changed it"
    finally:
        credvault.set_refresh_endpoint_limit(2)


def test_out_of_range_scheduler_settings_name_the_callers_value():
    # A value outside uint32 reaches the library as 0: the message must still
    # name what the caller passed, not that 0.
    for call, bad in (
        (credvault.set_refresh_workers, -1),
        (credvault.set_refresh_workers, 1 << 40),
        (credvault.set_refresh_endpoint_limit, -7),
    ):
        with pytest.raises(credvault.InvalidArgument) as e:
            call(bad)
        assert f"{bad} is out of range" in str(e.value), str(e.value)
        assert " 0 is" not in str(e.value), str(e.value)


def test_provider_is_an_alias_of_by_name():
    # Both names are the API (README); one is the other, not a copy.
    assert credvault.provider == credvault.Provider.by_name
    assert "alias" in (credvault.Provider.by_name.__doc__ or "")


def test_config_file_secret_readable_by_others_is_refused(idp, tmp_path):
    secret = tmp_path / "shared-secret"
    write(secret, OAUTH_SECRET, mode=0o644)
    conf = tmp_path / "credvault.json"
    entry = {"token_url": idp.url("/oauth/token"), "client_id": "demo-oauth-client",
             "client_secret": {"file": str(secret)}}
    write(conf, json.dumps({"providers": {"ops-shared": entry}}))
    with pytest.raises(credvault.CredvaultError) as info:
        credvault.load_config(str(conf))
    assert "0600" in info.value.message and OAUTH_SECRET not in str(info.value)
    with pytest.raises(credvault.CredvaultError):
        credvault.load_config(str(tmp_path / "missing.json"))


def test_config_errors_carry_no_oauth_code_of_an_earlier_call(idp, tmp_path):
    # The configuration calls report through this thread's last error, OAuth code included.
    # No configuration failure has a code (loading fetches nothing); the code of an earlier
    # failed fetch on this thread must not be carried over to it.
    bad = credvault.Provider(oauth_config(idp, client_secret=WRONG_SECRET))
    with pytest.raises(credvault.CredentialsRejected) as rejected:
        bad.token()
    assert rejected.value.oauth_error == "invalid_client"
    with pytest.raises(credvault.CredvaultError) as info:
        credvault.load_config(str(tmp_path / "missing.json"))
    assert info.value.oauth_error is None, "a stale OAuth code"
    assert "missing.json" in info.value.message, info.value.message
    bad.close()


def test_interpreter_exit_with_logging_enabled(idp):
    # A process that enables logging, fetches and exits without disable_logging(): the atexit
    # handler removes the hook; the process exits cleanly, printing the records it got.
    code = (
        "import logging, sys, credvault\n"
        "logging.basicConfig(level=logging.DEBUG, stream=sys.stdout, format='%(message)s %(provider)s')\n"
        "credvault.enable_logging(level=logging.DEBUG)\n"
        f"p = credvault.Provider({oauth_config(idp)!r})\n"
        "p.token()\n"
    )
    env = dict(os.environ, NO_PROXY="127.0.0.1,localhost,::1")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, f"exit status {r.returncode}: {r.stderr[-2000:]}"
    assert "fetch_finished" in r.stdout, r.stdout
    assert "Exception ignored" not in r.stderr and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert OAUTH_SECRET not in r.stdout + r.stderr
