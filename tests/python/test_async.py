"""asyncio: 200 concurrent tasks while the token endpoint is slow; the loop keeps ticking."""

from __future__ import annotations

import asyncio
import concurrent.futures
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
