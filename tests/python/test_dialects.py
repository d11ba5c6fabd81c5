"""Every provider dialect of the local identity provider, through the Python package."""

from __future__ import annotations

import pytest

import credvault
from conftest import OAUTH_SECRET, remember


def fetch_and_cache(idp, p: credvault.Provider) -> str:
    before = idp.tokens_issued()
    t1 = remember(p.token())
    t2 = p.token()
    assert t1 == t2, "the second call is served from the cache"
    assert t1 and isinstance(t1, str)
    assert remember(p.authorization()) == f"Bearer {t1}"
    assert idp.tokens_issued() == before + 1, "one token request for three calls"
    return t1


def test_vitesse_client_secret_post(idp):
    with credvault.Provider.from_preset(
        "vitesse-staging",
        client_id="demo-vitesse-client",
        client_secret="demo-vitesse-secret",
        token_url=idp.url("/vitesse/connect/token"),
    ) as p:
        fetch_and_cache(idp, p)
    assert idp.admin("GET", "/_idp/last_request")["auth_scheme"] == "none"


def test_apiture_discovery_and_basic(idp):
    with credvault.Provider(
        preset="apiture",
        issuer=idp.url("/apiture/oidc/"),
        client_id="demo-apiture-client",
        client_secret="demo-apiture-secret",
    ) as p:
        fetch_and_cache(idp, p)
    assert idp.stats()["discovery_requests"] >= 1


def test_vipps_headers_with_subscription_key(idp):
    with credvault.Provider.from_preset(
        "vipps-test",
        client_id="demo-vipps-client",
        client_secret="demo-vipps-secret",
        headers={
            "Ocp-Apim-Subscription-Key": "demo-vipps-subscription-key",
            "Merchant-Serial-Number": "123456",
        },
        token_url=idp.url("/vipps/accesstoken/get"),
    ) as p:
        fetch_and_cache(idp, p)


def test_vipps_partner(idp):
    with credvault.Provider.from_preset(
        "vipps-partner-test",
        client_id="demo-partner-client",
        client_secret="demo-partner-secret",
        token_url=idp.url("/vipps/miami/v1/token"),
    ) as p:
        fetch_and_cache(idp, p)


def test_vgs(idp):
    with credvault.Provider.from_preset(
        "vgs",
        client_id="demo-vgs-client",
        client_secret="demo-vgs-secret",
        token_url=idp.url("/vgs/auth/realms/vgs/protocol/openid-connect/token"),
    ) as p:
        fetch_and_cache(idp, p)


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_rfc6749_basic_and_post(idp, method):
    cfg = {
        "token_url": idp.url("/oauth/token"),
        "client_id": "demo-oauth-client",
        "client_secret": OAUTH_SECRET,
        "auth_method": method,
    }
    with credvault.Provider(cfg) as p:
        fetch_and_cache(idp, p)


def test_rfc8414_issuer_from_json_text(idp):
    text = (
        '{"issuer": "%s", "client_id": "demo-oauth-client", "client_secret": "%s"}'
        % (idp.url("/rfc8414"), OAUTH_SECRET)
    )
    with credvault.Provider(text) as p:
        fetch_and_cache(idp, p)


@pytest.mark.parametrize("path", ["/oauth/token-expires-on", "/oauth/token-no-expiry", "/oauth/token-no-type"])
def test_token_response_variants(idp, path):
    with credvault.Provider(
        {"token_url": idp.url(path), "client_id": "demo-oauth-client"}, client_secret=OAUTH_SECRET
    ) as p:
        fetch_and_cache(idp, p)
