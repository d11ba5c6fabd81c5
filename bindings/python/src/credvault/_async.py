"""asyncio: a cached token inline, a fetch waited for in a thread of the library's own."""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import Future
from typing import Any, Mapping, Optional, Union

from ._provider import Config, Provider
from .errors import BufferTooSmall

# The waits for fetches in flight, one per provider: further callers share it. Its threads
# are the library's, never the application's default executor (which run_in_executor(None)
# would fill with callers blocked on one slow token endpoint, starving getaddrinfo and the
# application's own work). A caller that gives up leaves the wait to end with the fetch (the
# library's deadline bounds it); only one thread per provider is ever blocked.
_waits_lock = threading.Lock()
_waits: dict[int, "Future[str]"] = {}


def _forget_waits_after_fork() -> None:
    # The child has none of the parent's threads: their waits would never end there.
    global _waits_lock
    _waits_lock = threading.Lock()
    _waits.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_waits_after_fork)


def _wait_for_fetch(p: Provider) -> "Future[str]":
    """The wait in flight for ``p``'s fetch, or a new one: a thread that makes the blocking
    call (``Provider._read``, GIL released) and gives the ``Authorization`` value it returns
    (or its exception) to every caller that awaits it."""
    key = id(p)  # the thread holds p until the wait ends: the id is not reused meanwhile
    with _waits_lock:
        fut = _waits.get(key)
        if fut is not None:
            return fut
        fut = Future()
        fut.set_running_or_notify_cancel()  # a caller's cancel() never cancels the shared wait
        _waits[key] = fut
        try:
            threading.Thread(target=_wait, args=(p, key, fut), name="credvault-wait", daemon=True).start()
        except BaseException:
            del _waits[key]
            raise
    return fut


def _wait(p: Provider, key: int, fut: "Future[str]") -> None:
    try:
        value = p._read(False, wait=True)
    except BaseException as e:
        _done(key, fut)
        fut.set_exception(e)
    else:
        _done(key, fut)
        fut.set_result(value)


def _done(key: int, fut: "Future[str]") -> None:
    """Removes the wait before its result is set: a caller arriving later starts a new one."""
    with _waits_lock:
        if _waits.get(key) is fut:
            del _waits[key]


async def _await(fut: "Future[str]") -> str:
    """Awaits the shared wait ``fut`` on the running loop. Cancelling the caller cancels only
    its own future: the wait and the other callers go on."""
    loop = asyncio.get_running_loop()
    mine: "asyncio.Future[str]" = loop.create_future()

    def relay(done: "Future[str]") -> None:
        try:
            loop.call_soon_threadsafe(_settle, mine, done)
        except RuntimeError:  # the loop was closed meanwhile: nobody awaits any more
            pass

    fut.add_done_callback(relay)
    return await mine


def _settle(mine: "asyncio.Future[str]", done: "Future[str]") -> None:
    if mine.done():  # the caller gave up
        return
    e = done.exception()
    if e is not None:
        mine.set_exception(e)
    else:
        mine.set_result(done.result())


class AsyncProvider:
    """A :class:`Provider` for asyncio code.

    ``await p.token()`` returns a cached token inline (a non-blocking library call that answers
    from the cache or says it would block, well under a microsecond); when no token is servable
    it waits for the fetch in a thread of the library's own, never the loop's default executor:
    one thread per provider whose fetch is in flight, whatever the number of callers, and a
    caller that is cancelled (``asyncio.wait_for``, a task's ``cancel()``) simply stops
    waiting. The event loop never blocks on the network::

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
        """Awaits the provider's shared wait for the fetch (:func:`_wait_for_fetch`)."""
        value = await _await(_wait_for_fetch(self._p))
        return value.split(" ", 1)[1] if token else value

    async def token_into(self, buf: Union[bytearray, memoryview]) -> int:
        """As :meth:`Provider.token_into`: a cached token is written at once; otherwise after the
        provider's shared wait for the fetch. ``buf`` is written only by this coroutine, on the
        loop's thread, never by a thread after the caller gave up: a cancelled ``token_into``
        never touches ``buf``."""
        p = self._p
        n = p._into(buf, wait=False)
        if n is not None:
            return n
        value = await _await(_wait_for_fetch(p))
        n = p._into(buf, wait=False)
        if n is not None:
            return n
        # The fetched token is already not servable from the cache (dropped meanwhile, or
        # shorter-lived than the refresh margins): the value the wait returned.
        data = bytearray(value.split(" ", 1)[1], "utf-8")
        del value
        try:
            view = memoryview(buf).cast("B")
            if len(data) + 1 > view.nbytes:
                e = BufferTooSmall(f"buffer of {view.nbytes} bytes is too small: {len(data) + 1} needed")
                e.needed = len(data) + 1
                raise e
            view[: len(data)] = data
            view[len(data)] = 0
            return len(data)
        finally:
            data[:] = bytes(len(data))

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
