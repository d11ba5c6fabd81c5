"""The origin of a URL (scheme, host, port), for the adapters' rule: a token goes only to the
origin of the request it was attached to."""

from __future__ import annotations

from typing import Optional
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, Optional[int]]


def origin(url: object) -> Origin:
    """``(scheme, host, port)`` of ``url`` (a ``str``, or an object whose ``str()`` is the URL,
    as ``httpx.URL``): scheme and host lower-cased, the port made explicit for http and https
    (``http://h/`` and ``http://h:80/`` are one origin)."""
    parts = urlsplit(str(url))
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:  # not a valid port: matches no origin a request was sent to
        return scheme, "", -1
    return scheme, (parts.hostname or "").lower(), port if port is not None else _DEFAULT_PORTS.get(scheme)
