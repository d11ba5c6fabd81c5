"""Provider lifetime, repr, token_into, invalidation, and how the library is found."""

from __future__ import annotations

import gc
import json
import os
import pickle
import subprocess
import sys
import time
import weakref

import pytest

import credvault
from conftest import OAUTH_SECRET, oauth_config, remember


def test_context_manager_and_idempotent_close(idp):
    with credvault.Provider(oauth_config(idp)) as p:
        assert not p.closed
        remember(p.token())
    assert p.closed
    p.close()
    p.close()
    with pytest.raises(credvault.InvalidHandle):
        p.token()


def test_repr_shows_endpoint_and_client_id_only(idp):
    with credvault.Provider(oauth_config(idp)) as p:
        remember(p.token())
        text = repr(p)
        assert idp.url("/oauth/token") in text and "demo-oauth-client" in text
        assert OAUTH_SECRET not in text and p.token() not in text
        assert "closed" not in text
    assert "closed" in repr(p)
    a = credvault.AsyncProvider.wrap(p)
    assert "demo-oauth-client" in repr(a) and OAUTH_SECRET not in repr(a)


def test_pickling_is_refused(idp):
    with credvault.Provider(oauth_config(idp)) as p:
        with pytest.raises(TypeError):
            pickle.dumps(p)


def test_garbage_collection_frees_the_handle(idp):
    p = credvault.Provider(oauth_config(idp))
    remember(p.token())
    handle = p._h.value
    ref = weakref.ref(p)
    del p
    gc.collect()
    assert ref() is None
    # The handle is gone from the library: freeing it again is an invalid handle.
    assert credvault._ffi.lib.vault_provider_free(handle) == credvault.InvalidHandle.STATUS


def test_token_into_writes_the_callers_buffer(idp):
    with credvault.Provider(oauth_config(idp)) as p:
        buf = bytearray(256)
        n = p.token_into(buf)
        token = remember(p.token())
        assert n == len(token) and bytes(buf[:n]) == token.encode() and buf[n] == 0
        view = memoryview(bytearray(512))
        assert p.token_into(view) == n
        buf[:] = bytes(len(buf))
        with pytest.raises(TypeError):
            p.token_into(memoryview(b"read-only"))  # type: ignore[arg-type]


def test_invalidate_exact_token_and_this_threads_last(idp):
    with credvault.Provider(oauth_config(idp)) as p:
        t1 = remember(p.token())
        p.invalidate("not-the-cached-token")
        assert p.token() == t1, "another token: nothing dropped"
        p.invalidate(t1)
        t2 = remember(p.token())
        assert t2 != t1
        p.invalidate(t1)  # already replaced: left alone
        assert p.token() == t2
        p.invalidate(p.authorization())  # the whole Authorization value works too
        t3 = remember(p.token())
        assert t3 != t2
        p.invalidate()
        assert remember(p.token()) != t3
        assert idp.tokens_issued() == 4


def test_long_tokens_take_the_slow_path(idp):
    idp.add_client(
        {"dialect": "oauth", "client_id": "long-token-client", "client_secret": "long-token-secret", "token_bytes": 8192}
    )
    with credvault.Provider(
        token_url=idp.url("/oauth/token"), client_id="long-token-client", client_secret="long-token-secret"
    ) as p:
        t = remember(p.token())
        assert len(t) > 8192 and p.token() == t
        assert p.authorization() == "Bearer " + t


def test_library_not_found_names_where_it_looked(tmp_path):
    env = dict(os.environ, CREDVAULT_LIB=str(tmp_path / "missing.so"))
    r = subprocess.run([sys.executable, "-c", "import credvault"], env=env, capture_output=True, text=True)
    assert r.returncode != 0
    assert "LibraryNotFoundError" in r.stderr and str(tmp_path / "missing.so") in r.stderr


def test_library_override_and_bundled_copy():
    path = credvault.library_path()
    if "CREDVAULT_LIB" in os.environ:
        assert path == os.environ["CREDVAULT_LIB"]
    else:
        assert path.endswith("credvault/libcredvault.so")
    assert credvault.library_version() == "0.1.0"


# In a fresh process: key_memory_locked() before anything is sealed, after a provider sealed its
# secret, and the kB of locked memory the kernel reports (VmLck).
_KEY_MEMORY = """
import credvault
before = credvault.key_memory_locked()
p = credvault.Provider(token_url="http://127.0.0.1:9/token", client_id="a", client_secret="b")
after = credvault.key_memory_locked()
kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmLck:"))
print(repr(before), repr(after), kb)
"""

# Runs the program argv[1] with mlock refused: RLIMIT_MEMLOCK 0 and, for root (which locks
# whatever the limit, CAP_IPC_LOCK), that capability dropped from the bounding set, so that the
# program exec'd next does not have it.
_NO_MLOCK = """
import ctypes, os, resource, sys
resource.setrlimit(resource.RLIMIT_MEMLOCK, (0, 0))
if os.geteuid() == 0 and ctypes.CDLL(None, use_errno=True).prctl(24, 14, 0, 0, 0) != 0:
    sys.exit("prctl(PR_CAPBSET_DROP, CAP_IPC_LOCK): " + os.strerror(ctypes.get_errno()))
os.execv(sys.executable, [sys.executable, "-c", sys.argv[1]])
"""


def test_key_memory_locked_is_none_before_the_first_seal_then_whether_the_key_is_locked():
    r = subprocess.run([sys.executable, "-c", _KEY_MEMORY], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    before, after, kb = r.stdout.split()
    assert before == "None", before
    assert after in ("True", "False"), after
    assert (after == "True") == (int(kb) > 0), (after, kb)  # the kernel agrees

    r = subprocess.run([sys.executable, "-c", _NO_MLOCK, _KEY_MEMORY], capture_output=True, text=True, timeout=120)
    if r.returncode != 0 and "PR_CAPBSET_DROP" in r.stderr:
        pytest.skip(r.stderr.strip())
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["None", "False", "0"], r.stdout


def test_importing_credvault_needs_neither_requests_nor_httpx():
    code = (
        "import sys; sys.modules['requests'] = None; sys.modules['httpx'] = None\n"
        "import credvault\n"
        "assert 'requests' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
        "try:\n    import credvault.requests\nexcept ImportError:\n    print('ok')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_safe_at_interpreter_exit(idp):
    # A provider still open (and another one busy in a daemon thread) at exit: no crash.
    code = (
        "import threading, credvault\n"
        f"p = credvault.Provider(token_url={idp.url('/oauth/token')!r}, client_id='demo-oauth-client',"
        f" client_secret={OAUTH_SECRET!r})\n"
        "p.token()\n"
        "def spin():\n"
        "    while True:\n"
        "        try: p.token()\n"
        "        except credvault.InvalidHandle: pass\n"
        "threading.Thread(target=spin, daemon=True).start()\n"
        "print('bye')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "bye", r.stderr


def test_the_example_runs(idp, api):
    example = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "python", "quickstart.py")
    env = dict(os.environ, CREDVAULT_CLIENT_SECRET=OAUTH_SECRET)
    r = subprocess.run(
        [sys.executable, example, idp.url("/oauth/token"), "demo-oauth-client", api.url + "/thing"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert "cached: True" in r.stdout and "GET " in r.stdout and ": 200" in r.stdout
    assert OAUTH_SECRET not in r.stdout + r.stderr


def test_cached_value_follows_a_background_refresh(idp):
    # 3 s tokens, refreshed in the background after about 60 % of their life: token() must
    # return the new token once the library holds it, not the str decoded for the old one.
    idp.add_client(
        {"dialect": "oauth", "client_id": "short-lived-client", "client_secret": "short-lived-secret", "lifetime_s": 3}
    )
    with credvault.Provider(
        token_url=idp.url("/oauth/token"),
        client_id="short-lived-client",
        client_secret="short-lived-secret",
        refresh_ratio=0.6,
        refresh_jitter=0,
    ) as p:
        def issued() -> int:
            return int(idp.stats()["issued_by_client"].get("short-lived-client", 0))

        first = remember(p.token())
        deadline = time.monotonic() + 15
        while issued() < 2 and time.monotonic() < deadline:
            p.token()
            time.sleep(0.05)
        assert issued() >= 2, "a background refresh happened"
        now = remember(p.token())
        buf = bytearray(256)
        n = p.token_into(buf)
        replaced = now != first
        current = bytes(buf[:n]).decode() == now
        assert replaced, "token() returns the refreshed token"
        assert current, "the fast path serves the library's current token"
        buf[:] = bytes(len(buf))


def test_fast_path_buffers_hold_no_dropped_or_longer_token(idp):
    # A shorter token leaves nothing of a longer one behind its NUL in the
    # fast path's buffers, and they are wiped on invalidate and on close. 3 s tokens, refreshed
    # in the background: the refresh brings a shorter token without any invalidation.
    client = {
        "dialect": "oauth", "client_id": "shrinking-client", "client_secret": "shrinking-secret", "lifetime_s": 3
    }
    idp.add_client({**client, "token_bytes": 300})
    with credvault.Provider(
        token_url=idp.url("/oauth/token"),
        client_id="shrinking-client",
        client_secret="shrinking-secret",
        refresh_ratio=0.6,
        refresh_jitter=0,
    ) as p:
        long_token = remember(p.token())
        assert p.token() == long_token and p.authorization() == "Bearer " + long_token
        held = lambda: bytes(p._tbuf.raw) + bytes(p._abuf.raw)  # noqa: E731
        assert long_token.encode() in held(), "the fast path holds the token"
        idp.add_client({**client, "token_bytes": 16})
        deadline = time.monotonic() + 15
        while p.token() == long_token and time.monotonic() < deadline:
            time.sleep(0.05)
        short = remember(p.token())
        assert len(short) < len(long_token) - 16, "a background refresh brought a shorter token"
        assert p.authorization() == "Bearer " + short
        for buf, value in ((p._tbuf, short), (p._abuf, "Bearer " + short)):
            raw = bytes(buf.raw)
            assert raw[: len(value)] == value.encode(), "the fast path holds the new token"
            assert raw[len(value):] == bytes(len(raw) - len(value)), "bytes of the earlier token behind the NUL"
        p.invalidate(short)
        assert short.encode() not in held(), "invalidate left the dropped token in a buffer"
        current = remember(p.token())
        assert p.token() == current and p.authorization() == "Bearer " + current
        p.invalidate()
        assert current.encode() not in held(), "invalidate() left the dropped token in a buffer"
        remember(p.token())
        remember(p.token())
    assert held() == bytes(len(held())), "close() left bytes in the buffers"


def test_repr_of_a_provider_of_the_configuration_file(idp, tmp_path):
    # Its endpoint and client id, as documented, never config:NAME or '?'.
    conf = tmp_path / "credvault.json"
    entry = {"token_url": idp.url("/oauth/token"), "client_id": "demo-oauth-client", "client_secret": OAUTH_SECRET}
    conf.write_text(json.dumps({"providers": {"repr-a": entry}}))
    os.chmod(conf, 0o600)
    credvault.load_config(conf)
    p = credvault.provider("repr-a")
    text = repr(p)
    assert idp.url("/oauth/token") in text and "client_id='demo-oauth-client'" in text, text
    assert p.endpoint == idp.url("/oauth/token") and p.client_id == "demo-oauth-client"
    assert "repr-a" in text and OAUTH_SECRET not in text
    stats = p.stats()
    assert stats["endpoint"] == idp.url("/oauth/token") and stats["client_id"] == "demo-oauth-client"
    p.close()
    assert "closed" in repr(p) and "demo-oauth-client" in repr(p)
