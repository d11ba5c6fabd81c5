"""asyncio: 200 concurrent tasks while the token endpoint is slow; the loop keeps ticking."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time

import pytest

import credvault
from conftest import oauth_config, remember

DELAY_MS = 1500


def test_200_tasks_while_the_endpoint_is_slow(idp, capsys):
    idp.fault({"path": "/oauth/token", "kind": "delay", "delay_ms": DELAY_MS})

    async def main() -> tuple[list[str], list[float], float]:
        ticks: list[float] = []
        done = asyncio.Event()

        async def ticker() -> None:
            while not done.is_set():
                ticks.append(time.monotonic())
                await asyncio.sleep(0.002)

        async with credvault.AsyncProvider(oauth_config(idp)) as p:
            tick_task = asyncio.create_task(ticker())
            await asyncio.sleep(0.01)
            started = time.monotonic()
            results = await asyncio.gather(*(p.token() if i % 2 else p.authorization() for i in range(200)))
            elapsed = time.monotonic() - started
            # Now cached: answered inline, without a worker thread.
            again = await p.token()
            done.set()
            await tick_task
            results.append(again)
        during = [t for t in ticks if started <= t <= started + elapsed]
        return results, during, elapsed

    results, during, elapsed = asyncio.run(main())
    tokens = {r.split(" ", 1)[-1] for r in results}
    assert len(tokens) == 1
    remember(tokens.pop())
    assert idp.token_requests() == 1, "one token request for 200 tasks"
    gaps = [b - a for a, b in zip(during, during[1:])]
    largest = max(gaps) if gaps else float("inf")
    with capsys.disabled():
        print(
            f"\nasyncio: 200 tasks, endpoint delay {DELAY_MS} ms, fetch took {elapsed * 1000:.0f} ms; "
            f"the loop ticked {len(during)} times meanwhile, largest gap between ticks {largest * 1000:.1f} ms"
        )
    # The loop ticked all along the fetch (a blocked loop would tick at most once or twice).
    assert elapsed >= DELAY_MS / 1000 * 0.9
    assert len(during) >= 20, f"the loop ticked only {len(during)} times during the fetch"
    # Generous sanity bound: a blocked loop would show a gap as long as the fetch itself.
    assert largest < DELAY_MS / 1000 / 2


def test_async_errors_and_close(idp):
    async def main() -> None:
        p = credvault.AsyncProvider(oauth_config(idp, client_secret="wrong-secret-value", cooldown_ms=60000))
        try:
            await p.token()
        except credvault.CredentialsRejected as e:
            assert e.oauth_error == "invalid_client"
        else:
            raise AssertionError("expected CredentialsRejected")
        # The cool-down error is known without waiting: raised inline.
        try:
            await p.authorization()
        except credvault.CredentialsRejected:
            pass
        await p.aclose()
        await p.aclose()
        try:
            await p.token()
        except credvault.InvalidHandle:
            pass
        else:
            raise AssertionError("expected InvalidHandle")

    asyncio.run(main())
    assert idp.token_requests() == 1


class _NoWorkerThreads(concurrent.futures.ThreadPoolExecutor):
    """A default executor that fails any call that would wait in a worker thread."""

    def submit(self, *args, **kwargs):  # type: ignore[override]
        raise AssertionError("a worker thread was used")


def test_answers_known_without_waiting_never_use_a_worker_thread(idp):
    # A cached value, a cool-down's stored error and a closed provider are all answered on the
    # loop's thread: the fetches below are made synchronously, and any executor call fails.
    async def main() -> None:
        asyncio.get_running_loop().set_default_executor(_NoWorkerThreads())
        async with credvault.AsyncProvider(oauth_config(idp)) as p:
            remember(p.provider.token())
            remember(await p.token())
            remember(await p.authorization())
        bad = credvault.AsyncProvider(oauth_config(idp, client_secret="wrong-secret-value", cooldown_ms=60000))
        with pytest.raises(credvault.CredentialsRejected):
            bad.provider.authorization()
        with pytest.raises(credvault.CredentialsRejected) as info:
            await bad.token()
        assert info.value.oauth_error == "invalid_client"
        bad.close()
        with pytest.raises(credvault.InvalidHandle):
            await bad.authorization()

    asyncio.run(main())
    assert idp.token_requests() == 2


def test_callers_that_give_up_leave_the_default_executor_free(idp):
    # 50 callers give up after 50 ms while the token endpoint takes seconds.
    # The library's waits must not occupy the application's default executor (an unrelated
    # run_in_executor or getaddrinfo must run while the fetch is still in flight) and must
    # not take a thread per caller.
    slow_ms = 8000
    idp.fault({"path": "/oauth/token", "kind": "delay", "delay_ms": slow_ms})

    async def main() -> tuple[int, int, int, str]:
        loop = asyncio.get_running_loop()
        async with credvault.AsyncProvider(oauth_config(idp, timeout_ms=60000, deadline_ms=60000)) as p:
            before = threading.active_count()
            results = await asyncio.gather(
                *(asyncio.wait_for(p.token() if i % 2 else p.authorization(), 0.05) for i in range(50)),
                return_exceptions=True,
            )
            assert all(isinstance(r, asyncio.TimeoutError) for r in results), results
            new_threads = threading.active_count() - before
            await loop.run_in_executor(None, lambda: None)
            await loop.getaddrinfo("localhost", 80)
            # The idp has not answered yet: the executor's work did not wait for the fetch.
            issued_meanwhile = idp.tokens_issued()
            token = await p.token()
            return new_threads, issued_meanwhile, idp.token_requests(), token

    new_threads, issued_meanwhile, token_requests, token = asyncio.run(main())
    remember(token)
    assert issued_meanwhile == 0, "the default executor was busy until the slow fetch ended"
    assert new_threads <= 1, f"{new_threads} threads waited for one provider's fetch"
    assert token_requests == 1


def test_a_cancelled_token_into_never_writes_the_callers_buffer(idp):
    # The caller gives up, wipes its buffer; the fetch ends later.
    idp.fault({"path": "/oauth/token", "kind": "delay", "delay_ms": 1500})
    buf = bytearray(256)

    async def main() -> tuple[int, str]:
        async with credvault.AsyncProvider(oauth_config(idp)) as p:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(p.token_into(buf), 0.05)
            buf[:] = bytes(len(buf))
            token = await p.token()  # the fetch has ended
            await asyncio.sleep(0.2)
            mine = bytearray(256)
            n = await p.token_into(mine)
            assert bytes(mine[:n]) == token.encode() and mine[n] == 0
            mine[:] = bytes(len(mine))
            return n, token

    n, token = asyncio.run(main())  # returns once every worker thread of the loop has finished
    remember(token)
    assert buf == bytearray(256), "the cancelled token_into wrote into the caller's buffer"
    assert n == len(token)


def test_token_into_waits_for_a_fetch_and_reports_a_small_buffer(idp):
    async def main() -> str:
        async with credvault.AsyncProvider(oauth_config(idp)) as p:
            buf = bytearray(256)
            n = await p.token_into(buf)
            token = await p.token()
            assert bytes(buf[:n]) == token.encode() and buf[n] == 0
            buf[:] = bytes(len(buf))
            with pytest.raises(credvault.BufferTooSmall) as info:
                await p.token_into(bytearray(4))
            assert info.value.needed == len(token) + 1
            return token

    remember(asyncio.run(main()))
    assert idp.token_requests() == 1
