"""Operating it: configuration files, statistics, Prometheus metrics and the log hook .

Everything here maps one C call of ``credvault.h``:

* :func:`load_config` / :func:`reload_config` / :func:`provider` (``vault_load_config_ex``,
  ``vault_reload_config_ex``, ``vault_provider_by_name_ex``);
* :func:`stats_all` / :func:`metrics_prometheus` (``vault_stats_all_json_ex``,
  ``vault_metrics_prometheus_ex``); a provider's own statistics are ``Provider.stats()``;
* :func:`set_refresh_workers` / :func:`set_refresh_endpoint_limit`
  (``vault_set_refresh_workers_ex``, ``vault_set_refresh_endpoint_limit_ex``);

each failure's message and OAuth code come back through the call's error buffer (docs/C-API.md);
* :func:`enable_logging` / :func:`disable_logging` (``vault_set_log_callback``).
"""

from __future__ import annotations

import atexit
import ctypes
import json
import logging
import os
import threading
from typing import Any, Optional, Union

from . import _ffi
from ._ffi import _ERR_LEN, _error, _json_call, _last_error, _last_msg, _raise_from, _string_call
from ._provider import Provider

_lib_ = _ffi.lib
_OK = 0


# -- configuration files --------------------------------------------------------------------------


def _status_call(status: int, what: str) -> None:
    if status != _OK:
        # The message and the OAuth code are this thread's vault_last_error and
        # vault_last_oauth_error (the log hook's call, which has no error buffer).
        raise _last_error(what, status)


def _ex_call(call: Any, *args: Any, what: str) -> None:
    """Runs a status call's ``_ex`` form; a failure raises with the message and OAuth code it
    wrote into the error buffer: the file, the provider and the rule, never a secret value."""
    err = ctypes.create_string_buffer(_ERR_LEN)
    status = call(*args, err, _ERR_LEN)
    if status != _OK:
        raise _raise_from(status, err, what)


def load_config(path: Union[str, "os.PathLike[str]"]) -> None:
    """Loads a configuration file of named providers (``{"providers": {"name": {...}}}``,
    README "Configuration files") and registers every provider; :func:`provider` (or
    ``Provider.by_name``) gives them by name. Secrets may be references, ``{"env": "VAR"}`` or
    ``{"file": "/run/secrets/x"}`` (a file readable by group or others is refused unless
    ``"allow_shared": true``; one writable by them, or a configuration file so, unless the
    environment has ``CREDVAULT_ALLOW_WRITABLE_CONFIG=1``). All or nothing: if any provider is invalid none is registered,
    and the :class:`~credvault.CredvaultError` (usually :class:`~credvault.ConfigError`) names
    it. Loading another file while one is loaded is a :func:`reload_config` from the new path."""
    data = os.fsencode(path)
    _ex_call(_lib_.vault_load_config_ex, data, what="the configuration file could not be loaded")


def reload_config() -> None:
    """Reads the loaded configuration file again, with the secrets it refers to, and applies
    what changed (rotation without a restart): an unchanged provider keeps its cached token; a
    changed one (a rotated secret) keeps its handle, so existing :class:`Provider` objects over
    it keep working, drops its token and uses the new settings on its next fetch; a removed one
    answers :class:`~credvault.InvalidHandle`; a new one is registered. A file that fails to
    parse or validate changes nothing, and the exception says why."""
    _ex_call(_lib_.vault_reload_config_ex, what="the configuration file could not be reloaded")


#: ``credvault.provider(name)``: an alias of :meth:`Provider.by_name` (the same method, so the
#: same checks, errors and docstring): the provider ``name`` of the loaded configuration file,
#: whose ``close()`` detaches the object and never frees the provider, which belongs to the file.
provider = Provider.by_name


# -- statistics and metrics -------------------------------------------------------------------------


def stats_all() -> dict[str, Any]:
    """The statistics of every registered provider (``vault_stats_all_json``), parsed:
    ``{"providers": [{"handle": N, "provider": name, "tokens_fetched": ..., ...}, ...],
    "scheduler": {"queued", "oldest_queued_ms", "workers", "peak_workers", "refreshes",
    "max_workers", "endpoint_limit", "peak_per_endpoint"}}``; each provider as ``Provider.stats()`` gives it. Never a secret."""
    result = _json_call(_lib_.vault_stats_all_json_ex)
    assert isinstance(result, dict)
    return result


def metrics_prometheus() -> str:
    """The counters of every registered provider in the Prometheus text exposition format
    (0.0.4), labelled by provider name (``credvault_tokens_fetched_total{provider="..."}``,
    ``credvault_cache_hits_total``, ...): the body of the host's metrics endpoint
    (content type ``text/plain; version=0.0.4``)."""
    return _string_call(_lib_.vault_metrics_prometheus_ex, what="metrics")


def set_refresh_workers(n: int) -> None:
    """Sets how many background refresh worker threads the process's scheduler may run (1 to
    64; default 4; ``vault_set_refresh_workers``). Refreshes due ahead of expiry wait in one
    queue, the token closest to its serving limit first; workers start when a refresh is due
    and exit when none is. When all are busy, a token endpoint with nothing in flight gets a
    worker beyond them (at most 64 more), so stalled endpoints never stop the others'
    refreshes. Takes effect at once (queued refreshes it lets start get workers now). A call
    with nothing servable never waits for them: it fetches at once. Out of range:
    :class:`~credvault.InvalidArgument`, and nothing changes.
    ``stats_all()["scheduler"]["max_workers"]`` shows the pool's size."""
    _set_scheduler(_lib_.vault_set_refresh_workers_ex, "set_refresh_workers", n)


def set_refresh_endpoint_limit(n: int) -> None:
    """Sets how many background refreshes may be in flight to one token endpoint at once,
    across all providers of the process (1 to 64; default 2;
    ``vault_set_refresh_endpoint_limit``): identity providers rate-limit per client and per
    address. Raise it when one endpoint serves many providers with short tokens over a slow
    link; lower it to 1 for an endpoint that refuses concurrent requests. Out of range:
    :class:`~credvault.InvalidArgument`, and nothing changes.
    ``stats_all()["scheduler"]["endpoint_limit"]`` shows it."""
    _set_scheduler(_lib_.vault_set_refresh_endpoint_limit_ex, "set_refresh_endpoint_limit", n)


def _set_scheduler(call: Any, name: str, n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{name}() takes an int, not {type(n).__name__}")
    if 0 <= n <= 0xFFFFFFFF:
        _ex_call(call, n, what=f"{name}({n}) was refused")
        return
    # Outside uint32 the value cannot reach the library: it is given 0, out of range either way,
    # which it refuses with its range in the message; that message names the caller's value,
    # not the 0 passed.
    err = ctypes.create_string_buffer(_ERR_LEN)
    status = call(0, err, _ERR_LEN)
    if status != _OK:
        msg = err.value.decode("utf-8", "replace")
        msg = msg.replace(" 0 is out of range", f" {n} is out of range", 1)
        raise _error(status, msg.encode(), None, f"{name}({n}) was refused: out of range")


# -- the log hook ------------------------------------------------------------------------------------

#: The attributes of a LogRecord (and the two names logging refuses in ``extra``): an event
#: field of one of these names is given as ``credvault_<name>`` (``message`` ->
#: ``credvault_message``), since ``extra`` may not replace them.
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

_LEVELS = {10: logging.DEBUG, 20: logging.INFO, 30: logging.WARNING, 40: logging.ERROR}

# The logger events go to while logging is enabled; None: events are dropped.
_target: Optional[logging.Logger] = None
_install_lock = threading.Lock()
_atexit_registered = False


def _on_event(_userdata: Optional[int], level: int, event_json: Optional[bytes]) -> None:
    """The C callback: one event (a JSON object) -> one logging record. Runs on the library
    thread that caused the event; must never raise into C."""
    try:
        logger = _target
        if logger is None or not event_json:
            return
        py_level = _LEVELS.get(level, logging.WARNING)
        if not logger.isEnabledFor(py_level):
            return
        event = json.loads(event_json.decode("utf-8", "replace"))
        if not isinstance(event, dict):
            return
        extra: dict[str, Any] = {}
        for key, value in event.items():
            extra[f"credvault_{key}" if key in _RESERVED else key] = value
        extra["credvault_event"] = event
        logger.log(py_level, str(event.get("event", "event")), extra=extra)
    except BaseException:  # noqa: BLE001 - nothing may propagate into the library's thread
        pass


#: The one C function pointer handed to the library. Made once and kept for the life of the
#: process, never collected. (vault_set_log_callback waits for the calls of the callback it
#: replaces, so none runs after disable_logging() returns; one made per enable_logging() would
#: still be one object per call to keep or free, for nothing.)
_CALLBACK = _ffi.LOG_CALLBACK(_on_event)
_NO_CALLBACK = _ffi.LOG_CALLBACK()  # the NULL function pointer: "remove the callback"


def enable_logging(logger: Optional[logging.Logger] = None, level: int = logging.INFO) -> None:
    """Sends the library's structured events to ``logger`` (default: the logger
    ``"credvault"``), at ``level`` and above (``vault_set_log_callback``).

    Each event becomes one record whose message is the event's name (``fetch_started``,
    ``fetch_finished``, ``retry``, ``refresh_failed``, ``cooldown_entered``,
    ``cooldown_ended``, ``config_loaded``, ``config_reloaded``) and whose ``extra`` attributes
    are the event's fields (``provider``, ``kind``, ``latency_ms``, ``status``, ...). A field
    named like a LogRecord attribute is prefixed: the error text is ``credvault_message``. The
    whole event is also ``record.credvault_event`` (a dict). Levels: the library's 10/20/30/40
    are ``DEBUG``/``INFO``/``WARNING``/``ERROR``. No event carries a secret or a token.

    Records are emitted **on the library's threads** (the caller's thread during a fetch, a
    background refresh worker for a refresh), with no library lock held: handlers must be
    thread-safe (the standard ones are) and may call credvault. Calling it again replaces the
    logger and level. Nothing is installed until this is called; :func:`disable_logging` (also
    run at interpreter exit) removes it."""
    global _atexit_registered
    if logger is None:
        logger = logging.getLogger("credvault")
    status = _install(logger, int(level))
    if status != _OK:
        _install(None, 40)
    _status_call(status, "the log callback could not be installed")
    with _install_lock:
        if not _atexit_registered:
            atexit.register(disable_logging)
            _atexit_registered = True


# What the latest enable_logging/disable_logging asked for: (logger or None, level).
_wanted: tuple[Optional[logging.Logger], int] = (None, 40)


def _install(logger: Optional[logging.Logger], level: int) -> int:
    """Installs (or, for None, removes) the callback for ``logger`` at ``level``. No lock is
    held across vault_set_log_callback: it waits for the calls in progress of the callback it
    replaces, and one of them may be a handler calling enable_logging. Concurrent calls
    converge: each installs what was asked last, again until that is still what was asked."""
    global _target, _wanted
    with _install_lock:
        _target = logger
        _wanted = (logger, level)
    while True:
        want = _wanted
        if want[0] is None:
            status = int(_lib_.vault_set_log_callback(_NO_CALLBACK, 40, None))
        else:
            status = int(_lib_.vault_set_log_callback(_CALLBACK, want[1], None))
        if _wanted is want:
            return status


def disable_logging() -> None:
    """Removes the log hook: the library logs nothing again. Idempotent; also run at
    interpreter exit, so that no library thread calls into a finalizing interpreter."""
    try:
        _install(None, 40)
    except Exception:  # pragma: no cover - interpreter teardown
        pass
