"""The status codes of the C library (:class:`Status`) and the exceptions credvault raises: one
class per error status.

Every exception derives from :class:`CredvaultError` and carries

* ``status``: the library's status code (an ``int``, fixed forever, see ``credvault.h``);
* ``status_name``: its name, e.g. ``"VAULT_STATUS_TIMEOUT"``;
* ``message``: the library's message, written for an operator. It names fields, rules, hosts
  and HTTP statuses and never contains a secret or a token;
* ``oauth_error``: the RFC 6749 ``error`` code the identity provider sent (``"invalid_client"``,
  ...), or ``None``.

The timeout is also a built-in :class:`TimeoutError`, so ``except TimeoutError`` catches it.
``__all__`` (:class:`Status`, the classes, ``STATUS_NAMES`` and :func:`error_for_status`) is made
from the one list of the classes, at the end.
"""

from __future__ import annotations

import enum
from typing import Optional


class Status(enum.IntEnum):
    """The status codes of the C library (``vault_status`` in ``credvault.h``): each member is
    the C name without ``VAULT_STATUS_``, e.g. ``Status.TIMEOUT == 5``. The numbers never change;
    a newer library may add codes (``CredvaultError.status`` is then a plain ``int``).

    The package's one list of them: ``STATUS_NAMES`` and the exception classes' ``STATUS`` are
    made from it, and tests/python/test_status.py checks it against ``vault_status_name``.
    """

    OK = 0
    INVALID_ARGUMENT = 1
    INVALID_CONFIG = 2
    INVALID_HANDLE = 3
    NETWORK = 4
    TIMEOUT = 5
    TLS = 6
    HTTP_STATUS = 7
    CREDENTIALS_REJECTED = 8
    SCOPE_REJECTED = 9
    RATE_LIMITED = 10
    MALFORMED_RESPONSE = 11
    BUFFER_TOO_SMALL = 12
    OAUTH_ERROR = 13
    DISCOVERY_FAILED = 14
    WOULD_BLOCK = 15
    INTERNAL = 99


#: The C name of every code, e.g. ``{5: "VAULT_STATUS_TIMEOUT", ...}`` (made from :class:`Status`).
STATUS_NAMES: dict[int, str] = {s.value: "VAULT_STATUS_" + s.name for s in Status}


class CredvaultError(Exception):
    """Base class of every credvault error.

    Attributes: ``status`` (int), ``status_name`` (str), ``message`` (str, never a secret),
    ``oauth_error`` (the identity provider's RFC 6749 ``error`` code, or ``None``).
    """

    #: The status this class stands for (``None`` on the base class).
    STATUS: Optional[Status] = None

    status: int
    status_name: str
    message: str
    oauth_error: Optional[str]

    def __init__(self, message: str, status: Optional[int] = None, oauth_error: Optional[str] = None):
        if status is None:
            status = int(self.STATUS if self.STATUS is not None else Status.INTERNAL)
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

    STATUS = Status.INVALID_ARGUMENT


class ConfigError(CredvaultError, ValueError):
    """The provider configuration was rejected; the message names the field and the rule."""

    STATUS = Status.INVALID_CONFIG


class InvalidHandle(CredvaultError):
    """The provider was closed (or its handle is unknown)."""

    STATUS = Status.INVALID_HANDLE


class NetworkError(CredvaultError, ConnectionError):
    """The token endpoint could not be reached (DNS, connect, reset)."""

    STATUS = Status.NETWORK


class Timeout(CredvaultError, TimeoutError):
    """The token request did not complete within its deadline. Also a built-in ``TimeoutError``."""

    STATUS = Status.TIMEOUT


class TLSError(CredvaultError):
    """TLS failed: untrusted certificate, wrong host name, expired, handshake error."""

    STATUS = Status.TLS


class HTTPStatusError(CredvaultError):
    """The endpoint answered with an HTTP status that is neither a token nor an OAuth error."""

    STATUS = Status.HTTP_STATUS


class CredentialsRejected(CredvaultError):
    """The identity provider rejected the client credentials; ``oauth_error`` holds its code
    (``invalid_client``, ``unauthorized_client``) when it sent one."""

    STATUS = Status.CREDENTIALS_REJECTED


class ScopeRejected(CredvaultError):
    """The identity provider rejected the requested scope (``invalid_scope``)."""

    STATUS = Status.SCOPE_REJECTED


class RateLimited(CredvaultError):
    """The identity provider asked to slow down for longer than the request deadline allows."""

    STATUS = Status.RATE_LIMITED


class MalformedResponse(CredvaultError):
    """The token response was not a usable token (not JSON, no ``access_token``, too large)."""

    STATUS = Status.MALFORMED_RESPONSE


class BufferTooSmall(CredvaultError, ValueError):
    """The buffer given to :meth:`Provider.token_into` is too small; ``needed`` is the size it
    must have (token length plus the NUL)."""

    STATUS = Status.BUFFER_TOO_SMALL
    needed: int = 0


class OAuthError(CredvaultError):
    """Any other RFC 6749 error (``invalid_request``, ``invalid_grant``, ...); see ``oauth_error``."""

    STATUS = Status.OAUTH_ERROR


class DiscoveryFailed(CredvaultError):
    """Discovery of the token endpoint from the issuer's metadata failed."""

    STATUS = Status.DISCOVERY_FAILED


class InternalError(CredvaultError):
    """An internal error in the library (a caught panic). Never expected."""

    STATUS = Status.INTERNAL


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
__all__ = ["Status"] + [cls.__name__ for cls in _CLASSES] + ["STATUS_NAMES", "error_for_status"]

_BY_STATUS: dict[int, type[CredvaultError]] = {
    cls.STATUS: cls for cls in _CLASSES if cls.STATUS is not None
}


def error_for_status(status: int, message: str, oauth_error: Optional[str] = None) -> CredvaultError:
    """The exception for ``status`` (``CredvaultError`` itself for a code this version does not
    know)."""
    cls = _BY_STATUS.get(status, CredvaultError)
    return cls(message, status, oauth_error)
