"""asyncio: a cached token inline, a fetch in a worker thread."""

from __future__ import annotations

import asyncio
from typing import Any, Mapping, Optional, Union

from . import _provider as _p
from ._provider import Config, Provider

__all__ = ["AsyncProvider"]


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
        p = self._p
        status = _p._fill_tok(p._tptr)
        if status == 0:
            held = p._tval
            if p._tfill.generation == held[0]:
                return held[1]
            return p._refill(p._tfill, p._tbuf, True)
        if status != _p._WOULD_BLOCK:
            # A known error (a cool-down, a closed provider): raised with its message by the
            # non-blocking call (the blocking one could start a fetch on the loop's thread).
            text = p._read(True, wait=False)
            if text is not None:
                return text
        return await asyncio.get_running_loop().run_in_executor(None, p._read, True, True)

    async def authorization(self) -> str:
        """The ``Authorization`` value; a cached one inline, a fetch in a worker thread."""
        p = self._p
        status = _p._fill_auth(p._aptr)
        if status == 0:
            held = p._aval
            if p._afill.generation == held[0]:
                return held[1]
            return p._refill(p._afill, p._abuf, False)
        if status != _p._WOULD_BLOCK:
            text = p._read(False, wait=False)
            if text is not None:
                return text
        return await asyncio.get_running_loop().run_in_executor(None, p._read, False, True)

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
