"""The exceptions credvault raises: one class per status code of the C library.

Every exception derives from :class:`CredvaultError` and carries

* ``status``: the library's status code (an ``int``, fixed forever, see ``credvault.h``);
* ``status_name``: its name, e.g. ``"VAULT_STATUS_TIMEOUT"``;
* ``message``: the library's message, written for an operator. It names fields, rules, hosts
  and HTTP statuses and never contains a secret or a token;
* ``oauth_error``: the RFC 6749 ``error`` code the identity provider sent (``"invalid_client"``,
  ...), or ``None``.

The timeout is also a built-in :class:`TimeoutError`, so ``except TimeoutError`` catches it.
``__all__`` (the classes, ``STATUS_NAMES`` and :func:`error_for_status`) is made from the one
list of the classes, at the end.
"""

from __future__ import annotations

from typing import Optional


STATUS_NAMES: dict[int, str] = {
    0: "VAULT_STATUS_OK",
    1: "VAULT_STATUS_INVALID_ARGUMENT",
    2: "VAULT_STATUS_INVALID_CONFIG",
    3: "VAULT_STATUS_INVALID_HANDLE",
    4: "VAULT_STATUS_NETWORK",
    5: "VAULT_STATUS_TIMEOUT",
    6: "VAULT_STATUS_TLS",
    7: "VAULT_STATUS_HTTP_STATUS",
    8: "VAULT_STATUS_CREDENTIALS_REJECTED",
    9: "VAULT_STATUS_SCOPE_REJECTED",
    10: "VAULT_STATUS_RATE_LIMITED",
    11: "VAULT_STATUS_MALFORMED_RESPONSE",
    12: "VAULT_STATUS_BUFFER_TOO_SMALL",
    13: "VAULT_STATUS_OAUTH_ERROR",
    14: "VAULT_STATUS_DISCOVERY_FAILED",
    15: "VAULT_STATUS_WOULD_BLOCK",
    99: "VAULT_STATUS_INTERNAL",
}


class CredvaultError(Exception):
    """Base class of every credvault error.

    Attributes: ``status`` (int), ``status_name`` (str), ``message`` (str, never a secret),
    ``oauth_error`` (the identity provider's RFC 6749 ``error`` code, or ``None``).
    """

    #: The status code this class stands for (``None`` on the base class).
    STATUS: Optional[int] = None

    status: int
    status_name: str
    message: str
    oauth_error: Optional[str]

    def __init__(self, message: str, status: Optional[int] = None, oauth_error: Optional[str] = None):
        if status is None:
            status = self.STATUS if self.STATUS is not None else 99
        self.status = status
        self.status_name = STATUS_NAMES.get(status, "VAULT_STATUS_UNKNOWN")
        self.message = message
        self.oauth_error = oauth_error or None
        super().__init__(message)

    def __str__(self) -> str:
        text = f"{self.message} [{self.status_name}]"
        if self.oauth_error:
            text += f" (error={self.oauth_error})"
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, message={self.message!r}, oauth_error={self.oauth_error!r})"

    def __reduce__(self) -> tuple[type, tuple[str, int, Optional[str]]]:  # picklable (multiprocessing)
        return (type(self), (self.message, self.status, self.oauth_error))


class InvalidArgument(CredvaultError, ValueError):
    """An argument was rejected (NULL, not UTF-8, out of range)."""

    STATUS = 1


class ConfigError(CredvaultError, ValueError):
    """The provider configuration was rejected; the message names the field and the rule."""

    STATUS = 2


class InvalidHandle(CredvaultError):
    """The provider was closed (or its handle is unknown)."""

    STATUS = 3


class NetworkError(CredvaultError, ConnectionError):
    """The token endpoint could not be reached (DNS, connect, reset)."""

    STATUS = 4


class Timeout(CredvaultError, TimeoutError):
    """The token request did not complete within its deadline. Also a built-in ``TimeoutError``."""

    STATUS = 5


class TLSError(CredvaultError):
    """TLS failed: untrusted certificate, wrong host name, expired, handshake error."""

    STATUS = 6


class HTTPStatusError(CredvaultError):
    """The endpoint answered with an HTTP status that is neither a token nor an OAuth error."""

    STATUS = 7


class CredentialsRejected(CredvaultError):
    """The identity provider rejected the client credentials; ``oauth_error`` holds its code
    (``invalid_client``, ``unauthorized_client``) when it sent one."""

    STATUS = 8


class ScopeRejected(CredvaultError):
    """The identity provider rejected the requested scope (``invalid_scope``)."""

    STATUS = 9


class RateLimited(CredvaultError):
    """The identity provider asked to slow down for longer than the request deadline allows."""

    STATUS = 10


class MalformedResponse(CredvaultError):
    """The token response was not a usable token (not JSON, no ``access_token``, too large)."""

    STATUS = 11


class BufferTooSmall(CredvaultError, ValueError):
    """The buffer given to :meth:`Provider.token_into` is too small; ``needed`` is the size it
    must have (token length plus the NUL)."""

    STATUS = 12
    needed: int = 0


class OAuthError(CredvaultError):
    """Any other RFC 6749 error (``invalid_request``, ``invalid_grant``, ...); see ``oauth_error``."""

    STATUS = 13


class DiscoveryFailed(CredvaultError):
    """Discovery of the token endpoint from the issuer's metadata failed."""

    STATUS = 14


class InternalError(CredvaultError):
    """An internal error in the library (a caught panic). Never expected."""

    STATUS = 99


#: Every exception class, the base first: the one list of them. ``__all__`` and the table by
#: status are made from it, and the package (``credvault``) exports exactly these classes.
_CLASSES: tuple[type[CredvaultError], ...] = (
    CredvaultError,
    InvalidArgument,
    ConfigError,
    InvalidHandle,
    NetworkError,
    Timeout,
    TLSError,
    HTTPStatusError,
    CredentialsRejected,
    ScopeRejected,
    RateLimited,
    MalformedResponse,
    BufferTooSmall,
    OAuthError,
    DiscoveryFailed,
    InternalError,
)

# Made, not written out: mypy reads only a literal list, so `from credvault.errors import *`
# gives these names at run time but none to mypy (import them by name, or from `credvault`).
__all__ = [cls.__name__ for cls in _CLASSES] + ["STATUS_NAMES", "error_for_status"]

_BY_STATUS: dict[int, type[CredvaultError]] = {
    cls.STATUS: cls for cls in _CLASSES if cls.STATUS is not None
}


def error_for_status(status: int, message: str, oauth_error: Optional[str] = None) -> CredvaultError:
    """The exception for ``status`` (``CredvaultError`` itself for a code this version does not
    know)."""
    cls = _BY_STATUS.get(status, CredvaultError)
    return cls(message, status, oauth_error)
