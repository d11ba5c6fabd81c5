"""32 threads on one provider, fork, multiprocessing."""

from __future__ import annotations

import multiprocessing
import os
import threading

import credvault
from conftest import oauth_config, remember


def test_32_threads_share_one_fetch(idp):
    idp.fault({"path": "/oauth/token", "kind": "delay", "delay_ms": 300})
    with credvault.Provider(oauth_config(idp)) as p:
        start = threading.Barrier(32)
        results: list[str] = []
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                start.wait()
                got = [p.token() for _ in range(50)] + [p.authorization()]
                results.extend(got)
            except BaseException as e:  # noqa: BLE001
                errors.append(e)

        threads = [threading.Thread(target=worker) for _ in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        tokens = {r for r in results if not r.startswith("Bearer ")}
        assert len(tokens) == 1, "every thread got the same token"
        remember(tokens.pop())
        assert idp.token_requests() == 1, "one token request for 32 threads"


def test_fork_child_uses_the_provider(idp):
    with credvault.Provider(oauth_config(idp)) as p:
        parent_token = remember(p.token())
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child
            code = 1
            try:
                t = p.token()
                p.invalidate(t)
                t2 = p.token()
                code = 0 if (t == parent_token and t2 != t) else 2
            finally:
                os.write(w, b"x")
                os._exit(code)
        os.close(w)
        os.read(r, 1)
        os.close(r)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert p.token() == parent_token, "the child's fetch did not touch the parent's cache"
        assert idp.tokens_issued() == 2


def _child_tokens(p: credvault.Provider, n: int) -> str:
    tokens = {p.token() for _ in range(n)}
    assert len(tokens) == 1
    return tokens.pop()


_POOL_PROVIDER: "credvault.Provider | None" = None


def _pool_token(_: int) -> str:
    # The provider reaches the worker through fork (a Provider cannot be pickled).
    assert _POOL_PROVIDER is not None
    return _child_tokens(_POOL_PROVIDER, 100)


def test_multiprocessing_fork_pool(idp):
    global _POOL_PROVIDER
    with credvault.Provider(oauth_config(idp)) as p:
        t = remember(p.token())
        _POOL_PROVIDER = p
        try:
            with multiprocessing.get_context("fork").Pool(4) as pool:
                got = pool.map(_pool_token, range(8))
        finally:
            _POOL_PROVIDER = None
        assert set(got) == {t}, "the children serve the cached token"
        assert idp.tokens_issued() == 1
