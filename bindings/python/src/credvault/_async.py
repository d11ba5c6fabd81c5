"""asyncio: a cached token inline, a fetch in a worker thread."""

from __future__ import annotations

import asyncio
from typing import Any, Mapping, Optional, Union

from ._provider import Config, Provider


class AsyncProvider:
    """A :class:`Provider` for asyncio code.

    ``await p.token()`` returns a cached token inline (a non-blocking library call that answers
    from the cache or says it would block, well under a microsecond); when no token is servable
    it waits for the fetch in a worker thread (``loop.run_in_executor``), so the event loop never
    blocks on the network::

        async with credvault.AsyncProvider(preset="vgs", client_id=i, client_secret=s) as p:
            headers = {"Authorization": await p.authorization()}

    Takes the same arguments as :class:`Provider`; :meth:`wrap` shares an existing one.
    """

    __slots__ = ("_p",)

    def __init__(self, config: Config = None, /, **keys: Any) -> None:
        self._p = Provider(config, **keys)

    @classmethod
    def wrap(cls, provider: Provider) -> "AsyncProvider":
        """An AsyncProvider over an existing :class:`Provider` (same cache, same handle)."""
        self = cls.__new__(cls)
        self._p = provider
        return self

    @classmethod
    def from_preset(
        cls,
        name: str,
        client_id: str,
        client_secret: str,
        headers: Optional[Mapping[str, str]] = None,
        **keys: Any,
    ) -> "AsyncProvider":
        """As :meth:`Provider.from_preset`."""
        return cls.wrap(Provider.from_preset(name, client_id, client_secret, headers, **keys))

    @property
    def provider(self) -> Provider:
        """The underlying synchronous :class:`Provider`."""
        return self._p

    async def token(self) -> str:
        """The access token; a cached one inline, a fetch in a worker thread."""
        value = self._p._now(True)
        return value if value is not None else await self._fetch(True)

    async def authorization(self) -> str:
        """The ``Authorization`` value; a cached one inline, a fetch in a worker thread."""
        value = self._p._now(False)
        return value if value is not None else await self._fetch(False)

    async def _fetch(self, token: bool) -> str:
        """Waits in a worker thread for the value only a fetch can give (``Provider._read``)."""
        p = self._p
        return await asyncio.get_running_loop().run_in_executor(None, p._read, token, True)

    async def token_into(self, buf: Union[bytearray, memoryview]) -> int:
        """As :meth:`Provider.token_into`, in a worker thread."""
        return await asyncio.get_running_loop().run_in_executor(None, self._p.token_into, buf)

    def invalidate(self, token: Optional[str] = None) -> None:
        """As :meth:`Provider.invalidate` (never waits)."""
        self._p.invalidate(token)

    def close(self) -> None:
        """As :meth:`Provider.close`."""
        self._p.close()

    async def aclose(self) -> None:
        """As :meth:`Provider.close`."""
        self._p.close()

    @property
    def closed(self) -> bool:
        """Whether the provider is closed."""
        return self._p.closed

    async def __aenter__(self) -> "AsyncProvider":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._p.close()

    def __enter__(self) -> "AsyncProvider":
        return self

    def __exit__(self, *exc: object) -> None:
        self._p.close()

    def __repr__(self) -> str:
        return "<credvault.AsyncProvider" + repr(self._p)[len("<credvault.Provider"):]
