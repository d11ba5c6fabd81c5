"""The requests and httpx adapters against a loopback API that answers 401 to a revoked token."""

from __future__ import annotations

import asyncio
import io

import httpx
import requests

import credvault
from credvault.httpx import VaultAuth as HttpxAuth
from credvault.requests import VaultAuth as RequestsAuth
from conftest import oauth_config, remember


def bearer(value: str) -> str:
    return remember(value).split(" ", 1)[1]


def no_proxy_session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


def test_requests_sets_authorization_and_retries_once_after_401(idp, api):
    with credvault.Provider(oauth_config(idp)) as p, no_proxy_session() as s:
        s.auth = RequestsAuth(p)
        r = s.get(api.url + "/thing")
        assert r.status_code == 200
        t1 = bearer(api.seen[-1][0])
        assert t1 == p.token()
        api.revoked.add(t1)
        r = s.post(api.url + "/pay", data=b"amount=10")
        assert r.status_code == 200 and len(r.history) == 1 and r.history[0].status_code == 401
        t2 = bearer(api.seen[-1][0])
        assert t2 != t1 and api.seen[-1][1] == b"amount=10" and api.seen[-2][1] == b"amount=10"
        assert idp.tokens_issued() == 2
        # A seekable file body is replayed from where it started.
        api.revoked.add(t2)
        r = s.post(api.url + "/pay", data=io.BytesIO(b"file-body"))
        assert r.status_code == 200 and api.seen[-1][1] == b"file-body"


def test_requests_does_not_replay_a_generator_body(idp, api):
    with credvault.Provider(oauth_config(idp)) as p, no_proxy_session() as s:
        s.auth = RequestsAuth(p)
        api.revoked.add(p.token())
        r = s.post(api.url + "/upload", data=(c for c in [b"one", b"two"]))
        assert r.status_code == 401 and len(api.seen) == 1
        r = s.get(api.url + "/thing")  # the revoked token was dropped: a new one works
        assert r.status_code == 200
        remember(p.token())


def test_adapters_retry_once_only(idp, api):
    api.refuse_all = True
    with credvault.Provider(oauth_config(idp)) as p, no_proxy_session() as s:
        s.auth = RequestsAuth(p)
        r = s.get(api.url + "/thing")
        assert r.status_code == 401 and len(api.seen) == 2, "one retry, then the 401 as is"
        with httpx.Client(auth=HttpxAuth(p), trust_env=False) as c:
            assert c.get(api.url + "/thing").status_code == 401
        assert len(api.seen) == 4
        remember(p.token())


def test_httpx_sync_retries_once_after_401(idp, api):
    with credvault.Provider(oauth_config(idp)) as p, httpx.Client(auth=HttpxAuth(p), trust_env=False) as c:
        assert c.get(api.url + "/thing").status_code == 200
        t1 = bearer(api.seen[-1][0])
        api.revoked.add(t1)
        r = c.post(api.url + "/pay", content=b"amount=10")
        assert r.status_code == 200 and api.seen[-1][1] == b"amount=10"
        assert bearer(api.seen[-1][0]) != t1
        assert idp.tokens_issued() == 2
        # A streamed body cannot be replayed: the 401 is returned, the token still dropped.
        api.revoked.add(p.token())
        n = len(api.seen)
        r = c.post(api.url + "/upload", content=iter([b"a", b"b"]))
        assert r.status_code == 401 and len(api.seen) == n + 1
        assert c.get(api.url + "/thing").status_code == 200
        remember(p.token())


def test_httpx_async_retries_once_after_401(idp, api):
    async def main() -> None:
        async with credvault.AsyncProvider(oauth_config(idp)) as p:
            async with httpx.AsyncClient(auth=HttpxAuth(p), trust_env=False) as c:
                assert (await c.get(api.url + "/thing")).status_code == 200
                t1 = bearer(api.seen[-1][0])
                api.revoked.add(t1)
                rs = await asyncio.gather(*(c.get(api.url + "/thing") for _ in range(20)))
                assert all(r.status_code == 200 for r in rs)
                assert bearer(api.seen[-1][0]) != t1
                remember(await p.token())

    asyncio.run(main())
    assert idp.tokens_issued() == 2, "20 requests that saw the same 401 caused one new token"
