"""Type-checked, never run (tests/python/run.sh runs mypy --strict on it against the installed
wheel): what a typed user of the package sees, every exported name through `from credvault
import *`, through the package and through credvault.errors. A name the type checker cannot see
as exported fails the run. (`from credvault.errors import *` is not here: that module's
__all__ is made from its list of classes, which mypy does not read.)"""

from __future__ import annotations

from typing import Optional

from credvault import *  # noqa: F403 - the star import is what is checked
import credvault
from credvault import errors
from credvault.errors import STATUS_NAMES, error_for_status


def _uses() -> None:
    classes: list[type[CredvaultError]] = [
        InvalidArgument, ConfigError, InvalidHandle, NetworkError, Timeout, TLSError,
        HTTPStatusError, CredentialsRejected, ScopeRejected, RateLimited, MalformedResponse,
        BufferTooSmall, OAuthError, DiscoveryFailed, InternalError,
    ]
    missing: type[ImportError] = LibraryNotFoundError
    status: Status = Status.CREDENTIALS_REJECTED
    code: int = credvault.Status.OK + errors.Status.TIMEOUT
    by_name: Provider = provider("name")
    also: Provider = credvault.Provider.by_name("name")
    wrapped: AsyncProvider = AsyncProvider.wrap(by_name)
    text: str = library_version() + library_path() + __version__ + metrics_prometheus()
    locked: Optional[bool] = key_memory_locked()
    load_config("credvault.json")
    reload_config()
    enable_logging()
    disable_logging()
    set_refresh_workers(4)
    set_refresh_endpoint_limit(2)
    stats: dict[str, object] = stats_all()
    same: type[CredvaultError] = credvault.errors.OAuthError
    built: CredvaultError = errors.error_for_status(1, "m")
    print(classes, missing, status, code, also, wrapped, text, locked, stats, same, built)
    print(STATUS_NAMES, error_for_status)
