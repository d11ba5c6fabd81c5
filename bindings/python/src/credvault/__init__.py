"""credvault: OAuth 2.0 client-credentials tokens, secrets sealed in memory, tokens cached and
refreshed ahead of expiry, from the credvault library (loaded through ctypes).

::

    import credvault

    with credvault.Provider(preset="vgs", client_id="id", client_secret=secret) as vault:
        headers = {"Authorization": vault.authorization()}

* :class:`Provider` (thread-safe, fork-safe) and :class:`AsyncProvider` (asyncio);
* errors: :class:`CredvaultError` and one subclass per status code (:mod:`credvault.errors`);
  :class:`Status`, the library's status codes (an ``IntEnum``: ``Status.TIMEOUT == 5``);
* operating it: ``Provider.stats()``, :func:`stats_all`, :func:`metrics_prometheus`,
  :func:`set_refresh_workers`, :func:`set_refresh_endpoint_limit`,
  :func:`enable_logging` (the library's events as ``logging`` records), configuration files
  (:func:`load_config`, :func:`reload_config`, :func:`provider`);
* adapters: ``credvault.requests.VaultAuth`` and ``credvault.httpx.VaultAuth`` (importing
  ``credvault`` itself needs neither ``requests`` nor ``httpx``).

The shared library is loaded from ``$CREDVAULT_LIB`` if set, else from the copy inside this
package; :class:`LibraryNotFoundError` names where it looked.
"""

from __future__ import annotations

from typing import Optional

from . import _ffi
from ._async import AsyncProvider
from ._ffi import LibraryNotFoundError
from ._ops import (
    disable_logging,
    enable_logging,
    load_config,
    metrics_prometheus,
    provider,
    reload_config,
    set_refresh_endpoint_limit,
    set_refresh_workers,
    stats_all,
)
from ._provider import Provider
from .errors import (
    BufferTooSmall,
    ConfigError,
    CredentialsRejected,
    CredvaultError,
    DiscoveryFailed,
    HTTPStatusError,
    InternalError,
    InvalidArgument,
    InvalidHandle,
    MalformedResponse,
    NetworkError,
    OAuthError,
    RateLimited,
    ScopeRejected,
    Status,
    Timeout,
    TLSError,
)

# The package's public names, listed once (the private modules list none). The exception
# classes are those of credvault.errors (its _CLASSES); tests/python/test_exports.py checks
# that the two agree and that `from credvault import *` gives these names and no others.
__all__ = [
    "Provider",
    "AsyncProvider",
    "Status",
    "CredvaultError",
    "InvalidArgument",
    "ConfigError",
    "InvalidHandle",
    "NetworkError",
    "Timeout",
    "TLSError",
    "HTTPStatusError",
    "CredentialsRejected",
    "ScopeRejected",
    "RateLimited",
    "MalformedResponse",
    "BufferTooSmall",
    "OAuthError",
    "DiscoveryFailed",
    "InternalError",
    "LibraryNotFoundError",
    "library_version",
    "library_path",
    "key_memory_locked",
    "load_config",
    "reload_config",
    "provider",
    "stats_all",
    "metrics_prometheus",
    "set_refresh_workers",
    "set_refresh_endpoint_limit",
    "enable_logging",
    "disable_logging",
    "__version__",
]

try:  # the installed package's metadata: the crate's version, never written here by hand
    from importlib.metadata import PackageNotFoundError as _NotFound, version as _version

    __version__ = _version("credvault")
except _NotFound:  # pragma: no cover - imported from a source tree, not installed
    __version__ = "0+unknown"


def library_version() -> str:
    """The loaded library's version (``vault_version``)."""
    v = _ffi.lib.vault_version()
    return v.decode() if v else "?"


def library_path() -> str:
    """The path libcredvault was loaded from."""
    return _ffi.path


def key_memory_locked() -> Optional[bool]:
    """Whether the library's sealing key sits in memory locked against swapping
    (``vault_key_memory_locked``): ``True`` if it is ``mlock``ed, ``False`` if
    ``RLIMIT_MEMLOCK`` refused (the key page is still excluded from core dumps), ``None`` while
    there is no key yet (nothing sealed so far)."""
    state = int(_ffi.lib.vault_key_memory_locked())
    if state == 1:
        return True
    if state == 0:
        return False
    if state == -1:
        return None
    # Any other value is a status: the library failed (a panic caught at its boundary).
    raise _ffi._last_error("the library could not say whether its key is locked", state)
