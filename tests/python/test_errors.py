"""Every exception type, raised by the library's status-returning calls against real failures of
the local identity provider; none carries a secret, not even in a traceback's locals."""

from __future__ import annotations

import traceback

import pytest

import credvault
from credvault import errors
from conftest import DEMO_SECRETS, OAUTH_SECRET, free_port, oauth_config, remember


def raises(cls, fn, *args):
    with pytest.raises(cls) as info:
        fn(*args)
    e = info.value
    assert type(e) is cls, f"{type(e).__name__}: {e}"
    assert e.status == cls.STATUS
    assert e.status_name.startswith("VAULT_STATUS_")
    assert e.message and e.message in str(e)
    # No secret in the text, the repr, the args, or the locals of any frame of the traceback
    # inside the package.
    for frame, _ in traceback.walk_tb(e.__traceback__):
        if "credvault" in frame.f_code.co_filename:
            text = repr(frame.f_locals)
            leaked = any(s in text for s in DEMO_SECRETS)
            assert not leaked, f"secret in the locals of {frame.f_code.co_name}"
    leaked = any(s in str(e) or s in repr(e) or s in repr(e.args) for s in DEMO_SECRETS)
    assert not leaked, "secret in the exception"
    return e


def test_config_error_names_the_field_not_the_value():
    e = raises(
        credvault.ConfigError,
        credvault.Provider,
        {"token_url": "http://example.com/t", "client_id": "c", "client_secret": "demo-vgs-secret"},
    )
    assert "loopback" in e.message
    assert isinstance(e, ValueError)
    raises(credvault.ConfigError, credvault.Provider, {"client_id": "c", "client_secret": "demo-vgs-secret"})
    raises(credvault.ConfigError, credvault.Provider, '{"client_secret": "demo-vgs-secret", "x": ')
    raises(credvault.ConfigError, credvault.Provider, {"client_secret": object()})
    # A JSON-text config and a preset whose construction fails keep no secret in any frame.
    raises(
        credvault.ConfigError,
        credvault.Provider,
        '{"token_url": "http://example.com/t", "client_id": "c", "client_secret": "demo-vgs-secret"}',
    )
    raises(
        credvault.ConfigError,
        lambda: credvault.Provider.from_preset(
            "vgs", client_id="c", client_secret="demo-vgs-secret", token_url="http://example.com/t"
        ),
    )


def test_invalid_argument_for_text_that_is_not_utf8():
    # A lone surrogate reaches the library as a byte that is not UTF-8.
    raises(credvault.InvalidArgument, credvault.Provider, '{"client_id": "\udcff"')


def test_credentials_rejected_carries_the_oauth_code(idp):
    with credvault.Provider(oauth_config(idp, client_secret="demo-vgs-secret")) as p:
        e = raises(credvault.CredentialsRejected, p.token)
        assert e.oauth_error == "invalid_client"
        # During the cool-down the same error comes back at once, from the non-blocking path too.
        e2 = raises(credvault.CredentialsRejected, p.authorization)
        assert e2.oauth_error == "invalid_client"
        assert idp.token_requests() == 1


def test_scope_rejected(idp):
    with credvault.Provider.from_preset(
        "vitesse-staging",
        client_id="demo-vitesse-client",
        client_secret="demo-vitesse-secret",
        token_url=idp.url("/vitesse/connect/token"),
        scope="Nope",
    ) as p:
        e = raises(credvault.ScopeRejected, p.token)
        assert e.oauth_error == "invalid_scope"


def test_oauth_error(idp):
    idp.fault({"path": "/oauth/token", "status": 400, "body": '{"error":"unsupported_grant_type"}'})
    with credvault.Provider(oauth_config(idp)) as p:
        e = raises(credvault.OAuthError, p.token)
        assert e.oauth_error == "unsupported_grant_type"


def test_rate_limited(idp):
    idp.fault({"path": "/oauth/token", "status": 429, "retry_after": "3600", "count": 0})
    with credvault.Provider(oauth_config(idp, deadline_ms=2000)) as p:
        raises(credvault.RateLimited, p.token)


def test_network_error():
    port = free_port()
    with credvault.Provider(
        token_url=f"http://127.0.0.1:{port}/t", client_id="c", client_secret="demo-vgs-secret", deadline_ms=500
    ) as p:
        e = raises(credvault.NetworkError, p.token)
        assert isinstance(e, ConnectionError)


def test_timeout_is_a_timeout_error(idp):
    idp.fault({"path": "/oauth/token", "kind": "delay", "delay_ms": 3000, "count": 0})
    with credvault.Provider(oauth_config(idp, timeout_ms=300, deadline_ms=600)) as p:
        e = raises(credvault.Timeout, p.token)
        assert isinstance(e, TimeoutError)
    idp.clear_faults()


def test_tls_error(idp):
    # HTTPS to a server that speaks plain HTTP: the handshake fails.
    url = idp.url("/oauth/token").replace("http://", "https://")
    with credvault.Provider(oauth_config(idp, token_url=url, deadline_ms=1000)) as p:
        raises(credvault.TLSError, p.token)


def test_http_status_error_on_a_redirect(idp):
    idp.fault({"path": "/oauth/token", "kind": "redirect", "location": idp.url("/elsewhere")})
    with credvault.Provider(oauth_config(idp)) as p:
        raises(credvault.HTTPStatusError, p.token)


def test_malformed_response_then_recovery(idp):
    # Every attempt of the fetch gets a malformed 200 (a single one would be retried).
    idp.fault({"path": "/oauth/token", "kind": "malformed", "count": 0})
    with credvault.Provider(oauth_config(idp, cooldown_ms=0, deadline_ms=1500)) as p:
        raises(credvault.MalformedResponse, p.token)
        idp.clear_faults()
        remember(p.token())


def test_discovery_failed(idp):
    with credvault.Provider(
        issuer=idp.url("/nowhere"), client_id="demo-oauth-client", client_secret=OAUTH_SECRET, deadline_ms=1000
    ) as p:
        raises(credvault.DiscoveryFailed, p.token)


def test_invalid_handle_after_close(idp):
    p = credvault.Provider(oauth_config(idp))
    remember(p.token())
    p.close()
    for call in (p.token, p.authorization, p.invalidate):
        raises(credvault.InvalidHandle, call)
    raises(credvault.InvalidHandle, p.token_into, bytearray(64))


def test_buffer_too_small_reports_the_size_needed(idp):
    with credvault.Provider(oauth_config(idp)) as p:
        e = raises(credvault.BufferTooSmall, p.token_into, bytearray(4))
        token = remember(p.token())
        assert e.needed == len(token) + 1


def test_every_status_has_its_class():
    for status, name in errors.STATUS_NAMES.items():
        if status in (0, 15):
            continue
        e = errors.error_for_status(status, "m")
        assert e.status == status and e.status_name == name
        assert type(e) is not errors.CredvaultError, name
        assert isinstance(e, credvault.CredvaultError)
    assert type(errors.error_for_status(1234, "m")) is errors.CredvaultError
    assert isinstance(errors.error_for_status(99, "m"), credvault.InternalError)
