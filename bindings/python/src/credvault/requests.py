"""``requests`` adapter: ``credvault.requests.VaultAuth`` (needs ``requests`` installed).

::

    import requests, credvault
    from credvault.requests import VaultAuth

    vault = credvault.Provider(preset="vgs", client_id="id", client_secret=secret)
    session = requests.Session()
    session.auth = VaultAuth(vault)
    session.get("https://api.example/v1/thing")

Each request gets ``Authorization`` from the provider's cache. On a 401 the adapter drops that
exact token (``vault_invalidate_token``: right even when another thread already replaced it) and
sends the request once more with a new one. A request whose body cannot be replayed (a generator
or a non-seekable stream) is not retried: its 401 is returned as is.

The token goes only to the origin (scheme, host, port) of the request it was attached to: a
redirect to another origin is followed without ``Authorization`` (also from ``http://`` to
``https://`` on the same host, which ``requests`` itself would keep it for), and a 401 of another
origin is returned as is: nothing dropped, nothing retried.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Union
from urllib.parse import urljoin

import requests
from requests.auth import AuthBase

from ._async import AsyncProvider
from ._origin import Origin, origin
from ._provider import Provider

__all__ = ["VaultAuth"]

_RETRIED = "_credvault_retried"


class VaultAuth(AuthBase):
    """``requests`` authentication from a credvault :class:`~credvault.Provider`: sets the
    ``Authorization`` header; on a 401, invalidates the token it sent and retries once."""

    def __init__(self, provider: Union[Provider, AsyncProvider]) -> None:
        """``provider``: the :class:`~credvault.Provider` (or :class:`~credvault.AsyncProvider`)
        whose tokens authenticate the requests."""
        self.provider: Provider = provider.provider if isinstance(provider, AsyncProvider) else provider

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        """Sets ``Authorization`` (from the cache; a fetch waits with the GIL released) and
        registers the response handler, bound to the origin of ``r``."""
        r.headers["Authorization"] = self.provider.authorization()
        home = origin(r.url)
        pos: Optional[int] = None
        body = r.body
        if body is not None and not isinstance(body, (bytes, str)):
            try:
                pos = body.tell()  # type: ignore[union-attr,unused-ignore]
            except (AttributeError, OSError):
                pos = -1  # not replayable
        setattr(r, "_credvault_body_pos", pos)
        hook: Callable[..., requests.Response] = lambda response, **kw: self._on_response(response, home, **kw)
        r.register_hook("response", hook)  # type: ignore[no-untyped-call,unused-ignore]
        return r

    def _on_response(self, response: requests.Response, home: Origin, **kwargs: Any) -> requests.Response:
        """The response of a request of origin ``home`` or of a redirect from it (the hook goes
        along with the request's copies). A redirect to another origin: the next request, a copy
        of this one, is sent without the token. A 401 of ``home``: drop the token sent, and
        resend once with a new one if the body allows. Another origin's 401 is its own answer,
        about no token of ours: returned as is."""
        request = response.request
        if response.is_redirect and origin(request.url) == home:
            target = response.headers.get("location")
            if target and origin(urljoin(str(request.url), target)) != home:
                # requests copies this request for the next hop and strips Authorization itself
                # only when the host or port changes, not on an upgrade to https.
                request.headers.pop("Authorization", None)
            return response
        if response.status_code != 401 or getattr(request, _RETRIED, False) or origin(request.url) != home:
            return response
        sent = request.headers.get("Authorization")
        if sent:
            self.provider.invalidate(sent.decode() if isinstance(sent, bytes) else sent)
        pos = getattr(request, "_credvault_body_pos", None)
        if pos == -1:
            return response  # a body that cannot be sent twice
        if pos is not None:
            try:
                request.body.seek(pos)  # type: ignore[union-attr,unused-ignore]
            except (AttributeError, OSError):
                return response
        # As requests' own HTTPDigestAuth: consume and release the first response, send a copy.
        response.content
        response.close()
        retry = request.copy()
        setattr(retry, _RETRIED, True)
        retry.headers["Authorization"] = self.provider.authorization()
        new = response.connection.send(retry, **kwargs)  # type: ignore[attr-defined,unused-ignore]
        new.history.append(response)
        new.request = retry
        return new

    def __repr__(self) -> str:
        return f"<credvault.requests.VaultAuth {self.provider!r}>"
