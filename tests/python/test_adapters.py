"""The requests and httpx adapters against a loopback API that answers 401 to a revoked token."""

from __future__ import annotations

import asyncio
import io
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
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


# -- redirects to another origin -------------------------------------------------------------------


class Redirector:
    """A loopback server (its own port: another origin than the API's) that answers every
    request with 302 to ``target`` + the same path, recording the Authorization header it got."""

    def __init__(self, target: str) -> None:
        self.seen: list[str] = []
        redirector = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                redirector.seen.append(self.headers.get("Authorization", ""))
                self.send_response(302)
                self.send_header("Location", target + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = _serve
            do_POST = _serve

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def redirect_to_api(api):
    """A server that redirects every request to the ``api`` fixture's server (another port:
    another origin); the API answers 401 to every request."""
    api.refuse_all = True
    server = Redirector(api.url)
    yield server
    server.stop()


def assert_token_stayed_home(idp, api, redirect, p: credvault.Provider, token: str, requests_made: int) -> None:
    assert all(a == "" for a, _ in api.seen), "the other origin received an Authorization header"
    assert len(api.seen) == requests_made, "the other origin's 401 was not retried"
    assert len(redirect.seen) == requests_made and all(a == "Bearer " + token for a in redirect.seen), (
        "every request reached its origin once, with the token"
    )
    assert idp.token_requests() == 1, f"{idp.token_requests()} token requests: a valid token was dropped"
    assert p.token() == token, "the token sent to its origin was not invalidated"


def test_requests_token_never_follows_a_redirect_to_another_origin(idp, api, redirect_to_api):
    with credvault.Provider(oauth_config(idp)) as p, no_proxy_session() as s:
        s.auth = RequestsAuth(p)
        token = remember(p.token())
        for _ in range(5):
            r = s.get(redirect_to_api.url + "/thing")
            assert r.status_code == 401 and r.url.startswith(api.url), "the other origin's 401, as is"
            assert [h.status_code for h in r.history] == [302]
        assert_token_stayed_home(idp, api, redirect_to_api, p, token, 5)


def test_httpx_token_never_follows_a_redirect_to_another_origin(idp, api, redirect_to_api):
    with credvault.Provider(oauth_config(idp)) as p:
        token = remember(p.token())
        with httpx.Client(auth=HttpxAuth(p), trust_env=False, follow_redirects=True) as c:
            for _ in range(10):
                r = c.get(redirect_to_api.url + "/thing")
                assert r.status_code == 401 and str(r.url).startswith(api.url)
        assert_token_stayed_home(idp, api, redirect_to_api, p, token, 10)
        # A 401 of the token's own origin still drops it and retries once.
        api.refuse_all = False
        api.revoked.add(token)
        with httpx.Client(auth=HttpxAuth(p), trust_env=False, follow_redirects=True) as c:
            assert c.get(api.url + "/thing").status_code == 200
        assert remember(p.token()) != token and idp.token_requests() == 2


def test_httpx_async_token_never_follows_a_redirect_to_another_origin(idp, api, redirect_to_api):
    async def main() -> str:
        async with credvault.AsyncProvider(oauth_config(idp)) as p:
            token = remember(await p.token())
            async with httpx.AsyncClient(auth=HttpxAuth(p), trust_env=False, follow_redirects=True) as c:
                rs = [await c.get(redirect_to_api.url + "/thing") for _ in range(10)]
            assert all(r.status_code == 401 and str(r.url).startswith(api.url) for r in rs)
            assert_token_stayed_home(idp, api, redirect_to_api, p.provider, token, 10)
            return token

    asyncio.run(main())


def test_origin_makes_default_ports_explicit():
    from credvault._origin import origin

    assert origin("http://API.example/x") == origin("http://api.example:80/y") == ("http", "api.example", 80)
    assert origin("https://api.example/") == origin("HTTPS://api.example:443")
    assert origin("http://api.example/") != origin("https://api.example/")
    assert origin("http://api.example:8080/") != origin("http://api.example/")
    assert origin("http://[::1]:8080/") == ("http", "::1", 8080)
    assert origin("http://127.0.0.1:99999/")[2] == -1, "an invalid port matches no real origin"
