"""The one layer over libcredvault's C ABI (internal): loading the library, the prototype of
every C function the package calls, and the mapping of a failed call to its exception. The other
modules call the library and build its exceptions through this module only.

The library is looked for, in this order:

1. the path in the ``CREDVAULT_LIB`` environment variable, when it is set (and only there:
   a library the operator named explicitly is never silently replaced by another);
2. ``libcredvault.so`` inside this package (put there by ``pip install`` / the wheel).

When neither loads, :class:`LibraryNotFoundError` names every place it looked.

Two handles on the same shared object are kept:

* ``lib`` (``ctypes.CDLL``) releases the GIL during each call. Every call that can wait (a
  token fetch, creating or freeing a provider) goes through it, so other Python threads run
  while one waits on the network.
* ``fast`` (``ctypes.PyDLL``) keeps the GIL. Only the one-argument non-blocking calls
  (``vault_try_fill_token`` / ``vault_try_fill_authorization``) go through it: they answer
  from the cache or say they would block, and never wait, so holding the GIL is safe, and
  saves the release/re-acquire (measured in docs/BENCHMARKS.md).

A failed call becomes the exception of :mod:`credvault.errors` for its status, with the message
and the identity provider's OAuth ``error`` code the library left: in the call's error buffer
(:func:`_raise_from`) for the calls that take one, else as this thread's last error
(:func:`_last_error`). The library's own strings (statistics, metrics) are read and handed back
by :func:`_string_call`.
"""

from __future__ import annotations

import ctypes
import json
import os
from ctypes import POINTER, c_char, c_char_p, c_int32, c_size_t, c_uint32, c_uint64, c_void_p
from pathlib import Path
from typing import Any, Optional

from .errors import CredvaultError, Status, error_for_status

__all__ = [
    "lib",
    "fast",
    "path",
    "LibraryNotFoundError",
    "HAS_TRY",
    "VaultFill",
    "check_fast_arg",
    "LOG_CALLBACK",
]

_NAME = "libcredvault.so"


class LibraryNotFoundError(ImportError):
    """libcredvault could not be loaded; the message names every place that was tried."""


def _load() -> tuple[ctypes.CDLL, ctypes.PyDLL, str]:
    tried: list[str] = []
    env = os.environ.get("CREDVAULT_LIB")
    if env:
        try:
            return ctypes.CDLL(env), ctypes.PyDLL(env), env
        except OSError as e:
            raise LibraryNotFoundError(
                f"credvault: CREDVAULT_LIB={env!r} could not be loaded ({e}); "
                "unset it to use the library inside the package"
            ) from None
    tried.append("CREDVAULT_LIB (not set)")
    bundled = Path(__file__).resolve().parent / _NAME
    if bundled.is_file():
        try:
            return ctypes.CDLL(str(bundled)), ctypes.PyDLL(str(bundled)), str(bundled)
        except OSError as e:
            tried.append(f"{bundled} ({e})")
    else:
        tried.append(f"{bundled} (no such file)")
    raise LibraryNotFoundError(
        "credvault: libcredvault.so not found; looked in: "
        + "; ".join(tried)
        + ". Install the package with pip (which builds and bundles the library) "
        "or set CREDVAULT_LIB to the path of libcredvault.so."
    )


lib, fast, path = _load()

_u64p = POINTER(c_uint64)
_sizep = POINTER(c_size_t)
_buf = POINTER(c_char)

# (name, restype, argtypes) of every function the package calls. All of them are declared:
# ctypes would otherwise pass Python ints as C int and read results as C int.
_PROTOTYPES: list[tuple[str, object, list[object]]] = [
    ("vault_provider_new_ex", c_int32, [c_char_p, _u64p, _buf, c_size_t]),
    ("vault_provider_free", c_int32, [c_uint64]),
    ("vault_get_token_into", c_int32, [c_uint64, _buf, c_size_t, _sizep, _buf, c_size_t]),
    ("vault_get_authorization_into", c_int32, [c_uint64, _buf, c_size_t, _sizep, _buf, c_size_t]),
    ("vault_invalidate", c_int32, [c_uint64]),
    ("vault_invalidate_token", c_int32, [c_uint64, c_char_p, _buf, c_size_t]),
    ("vault_status_name", c_char_p, [c_int32]),
    ("vault_version", c_char_p, []),
    ("vault_key_memory_locked", c_int32, []),
    ("vault_last_error", c_char_p, []),
    ("vault_last_oauth_error", c_char_p, []),
    ("vault_last_status", c_int32, []),
    # Operating it: configuration files, statistics, metrics, the log hook. The
    # strings these return are the library's (malloc'd): declared as c_void_p so that the
    # pointer survives to be handed back to vault_string_free.
    ("vault_load_config", c_int32, [c_char_p]),
    ("vault_reload_config", c_int32, []),
    ("vault_provider_by_name", c_uint64, [c_char_p]),
    ("vault_stats_json", c_void_p, [c_uint64]),
    ("vault_stats_all_json", c_void_p, []),
    ("vault_metrics_prometheus", c_void_p, []),
    ("vault_set_refresh_workers", c_int32, [c_uint32]),
    ("vault_set_refresh_endpoint_limit", c_int32, [c_uint32]),
    # Their status forms: the failure's message and OAuth code come back through
    # the call, in the error buffer, never from this thread's vault_last_error.
    ("vault_load_config_ex", c_int32, [c_char_p, _buf, c_size_t]),
    ("vault_reload_config_ex", c_int32, [_buf, c_size_t]),
    ("vault_provider_by_name_ex", c_int32, [c_char_p, _u64p, _buf, c_size_t]),
    ("vault_stats_json_ex", c_int32, [c_uint64, POINTER(c_void_p), _buf, c_size_t]),
    ("vault_stats_all_json_ex", c_int32, [POINTER(c_void_p), _buf, c_size_t]),
    ("vault_metrics_prometheus_ex", c_int32, [POINTER(c_void_p), _buf, c_size_t]),
    ("vault_set_refresh_workers_ex", c_int32, [c_uint32, _buf, c_size_t]),
    ("vault_set_refresh_endpoint_limit_ex", c_int32, [c_uint32, _buf, c_size_t]),
    ("vault_string_free", None, [c_void_p]),
]

#: ``void (*)(void *userdata, int32_t level, const char *event_json)``: the log callback of
#: ``vault_set_log_callback``.
LOG_CALLBACK = ctypes.CFUNCTYPE(None, c_void_p, c_int32, c_char_p)
_PROTOTYPES.append(("vault_set_log_callback", c_int32, [LOG_CALLBACK, c_int32, c_void_p]))

class VaultFill(ctypes.Structure):
    """``struct vault_fill`` (credvault.h): the prepared request of the one-argument calls."""

    _fields_ = [
        ("provider", c_uint64),
        ("buf", _buf),
        ("buf_len", c_size_t),
        ("generation", c_uint64),
    ]


_TRY: list[tuple[str, object, list[object]]] = [
    ("vault_try_get_token_into", c_int32, [c_uint64, _buf, c_size_t, _sizep, _buf, c_size_t]),
    ("vault_try_get_authorization_into", c_int32, [c_uint64, _buf, c_size_t, _sizep, _buf, c_size_t]),
    ("vault_try_fill_token", c_int32, [POINTER(VaultFill)]),
    ("vault_try_fill_authorization", c_int32, [POINTER(VaultFill)]),
]

for _name, _res, _args in _PROTOTYPES:
    _f = getattr(lib, _name)
    _f.restype = _res
    _f.argtypes = _args

HAS_TRY = all(hasattr(lib, n) for n, _, _ in _TRY)
if HAS_TRY:
    for _name, _res, _args in _TRY:
        _f = getattr(lib, _name)
        _f.restype = _res
        _f.argtypes = _args
    for _name in ("vault_try_fill_token", "vault_try_fill_authorization"):
        # The GIL-holding handle of the same function: restype declared, argtypes deliberately
        # not. With argtypes, ctypes runs from_param on the argument of every call (a large
        # share of the whole call: docs/BENCHMARKS.md); the fast path passes instead a pointer made
        # once, of exactly the declared type (checked by check_fast_arg).
        _f = getattr(fast, _name)
        _f.restype = c_int32
        _f.argtypes = None


def check_fast_arg(arg: Any) -> Any:
    """Checks that the fast path's pre-made argument has exactly the declared C type of
    ``vault_try_fill_token`` (a ``POINTER(VaultFill)`` instance); returns it."""
    assert type(arg) is POINTER(VaultFill), type(arg)
    return arg


del _name, _res, _args, _f


# -- the error mapping -------------------------------------------------------------------------------

#: Size of the error buffer handed to the calls that take one: the message, its NUL, the OAuth
#: ``error`` code and its NUL.
_ERR_LEN = 1024

_last_status = lib.vault_last_status
_last_msg = lib.vault_last_error
_last_oauth = lib.vault_last_oauth_error
_string_free = lib.vault_string_free


def _error(
    status: int, msg: Optional[bytes], code: Optional[bytes], fallback: str
) -> CredvaultError:
    """The one way an exception is built from what a failed call left: its ``status``, its
    message (``fallback`` when it left none) and the identity provider's OAuth ``error`` code
    (``None`` when it left none)."""
    return error_for_status(
        status,
        msg.decode("utf-8", "replace") if msg else fallback,
        code.decode("ascii", "replace") if code else None,
    )


def _raise_from(
    status: int, err: "ctypes.Array[ctypes.c_char]", fallback: str = ""
) -> CredvaultError:
    """The exception for a failed status-returning call: the message, then (after its NUL) the
    identity provider's OAuth ``error`` code, both written by the call into ``err``."""
    msg, _, rest = err.raw.partition(b"\0")
    return _error(status, msg, rest.partition(b"\0")[0], fallback)


def _last_error(fallback: str, status: Optional[int] = None) -> CredvaultError:
    """The exception for this thread's last failed call, read right after it on the same thread:
    ``status`` (what the call returned; else ``vault_last_status``), ``vault_last_error`` and
    ``vault_last_oauth_error``. For the calls that have no error buffer: those that return a
    value rather than a status, and the configuration and log-hook calls."""
    if status is None:
        status = int(_last_status()) or int(Status.INTERNAL)
    return _error(status, _last_msg(), _last_oauth(), fallback)


def _string_call(call: Any, *args: Any, what: str = "statistics") -> str:
    """Calls the ``_ex`` form of a function that returns a string the library allocated
    (through a ``void **``), decodes it and hands it back to ``vault_string_free``; a failure
    is reported through the call's error buffer."""
    out = c_void_p()
    err = ctypes.create_string_buffer(_ERR_LEN)
    status = call(*args, ctypes.byref(out), err, _ERR_LEN)
    if status != 0 or not out.value:
        raise _raise_from(status or int(Status.INTERNAL), err, f"the library returned no {what}")
    try:
        return ctypes.string_at(out.value).decode("utf-8", "replace")
    finally:
        _string_free(out.value)


def _json_call(call: Any, *args: Any) -> Any:
    """Calls a function that returns a JSON string of the library, parses and frees it."""
    return json.loads(_string_call(call, *args))
