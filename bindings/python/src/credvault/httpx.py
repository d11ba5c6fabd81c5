"""``httpx`` adapter: ``credvault.httpx.VaultAuth`` (needs ``httpx`` installed), for
``httpx.Client`` and ``httpx.AsyncClient``.

::

    import httpx, credvault
    from credvault.httpx import VaultAuth

    vault = credvault.Provider(preset="vgs", client_id="id", client_secret=secret)
    with httpx.Client(auth=VaultAuth(vault)) as client:
        client.get("https://api.example/v1/thing")
    async with httpx.AsyncClient(auth=VaultAuth(vault)) as client:
        await client.get("https://api.example/v1/thing")

``Authorization`` comes from the provider's cache; in the async flow a cached token is served
inline and a fetch waits in a worker thread, never on the event loop. On a 401 the adapter
drops that exact token and sends the request once more with a new one, unless its body is a
stream that cannot be replayed.

The token goes only to the origin (scheme, host, port) of the request it was attached to: a 401
of another origin (at the end of redirects, ``follow_redirects=True``) is returned as is, with
nothing dropped and nothing retried. Following a redirect, httpx itself removes
``Authorization`` when the origin changes (except for an upgrade from ``http://`` to
``https://`` on the same host and default ports, which httpx allows and an auth class cannot
see: redirects are followed outside its flow).
"""

from __future__ import annotations

from typing import AsyncGenerator, Generator, Union

import httpx

from ._async import AsyncProvider
from ._origin import origin
from ._provider import Provider

__all__ = ["VaultAuth"]


def _own_401(request: httpx.Request, response: httpx.Response) -> bool:
    """Whether ``response`` (the last of its redirects) is a 401 of the origin ``request``, the
    request the token was attached to, was sent to: only then is it about the token."""
    return response.status_code == 401 and origin(response.request.url) == origin(request.url)


def _replayable(request: httpx.Request) -> bool:
    try:
        request.content
    except httpx.RequestNotRead:
        return False
    return True


class VaultAuth(httpx.Auth):
    """``httpx`` authentication from a credvault provider (sync and async flows): sets the
    ``Authorization`` header; on a 401, invalidates the token it sent and retries once."""

    requires_request_body = False
    requires_response_body = False

    def __init__(self, provider: Union[Provider, AsyncProvider]) -> None:
        """``provider``: a :class:`~credvault.Provider` or :class:`~credvault.AsyncProvider`
        (the same provider serves both flows)."""
        if isinstance(provider, AsyncProvider):
            self._async = provider
            self.provider: Provider = provider.provider
        else:
            self.provider = provider
            self._async = AsyncProvider.wrap(provider)

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """``httpx.Client``'s flow: ``Authorization`` from the cache (a fetch releases the
        GIL); on a 401 of the request's origin, drop that token and resend once if the body
        can be replayed."""
        sent = self.provider.authorization()
        request.headers["Authorization"] = sent
        response = yield request
        if _own_401(request, response):
            self.provider.invalidate(sent)
            if _replayable(request):
                request.headers["Authorization"] = self.provider.authorization()
                yield request

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """``httpx.AsyncClient``'s flow: a cached token inline, a fetch in a worker thread;
        on a 401 of the request's origin, drop that token and resend once if the body can be
        replayed."""
        sent = await self._async.authorization()
        request.headers["Authorization"] = sent
        response = yield request
        if _own_401(request, response):
            self.provider.invalidate(sent)
            if _replayable(request):
                request.headers["Authorization"] = await self._async.authorization()
                yield request

    def __repr__(self) -> str:
        return f"<credvault.httpx.VaultAuth {self.provider!r}>"
