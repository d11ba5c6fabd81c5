"""private_key_jwt from Python: ``Provider(...)`` and ``Provider.from_preset`` take
``private_key`` (a PEM from tests/keys), ``key_id``, ``signing_alg`` and ``audience`` and get tokens
from the local identity provider, which verifies each signed assertion against the public JWK
registered for the client (tests/keys/*.public.jwk.json)."""

import json
import pathlib

import pytest

import credvault

KEYS = pathlib.Path(__file__).resolve().parents[2] / "tests" / "keys"


def _jwks(name: str, kid: str) -> dict:
    jwk = json.loads((KEYS / f"{name}.public.jwk.json").read_text())
    jwk["kid"] = kid
    return {"keys": [jwk]}


@pytest.mark.parametrize(
    "key_file,public,alg",
    [("rsa2048.pkcs8.pem", "rsa2048", "RS256"), ("rsa2048.pkcs1.pem", "rsa2048", "PS256"),
     ("p256.pkcs8.pem", "p256", "ES256")],
)
def test_provider_signs_with_a_private_key(idp, key_file, public, alg):
    client_id = f"py-jwt-{alg.lower()}"
    idp.add_client({"dialect": "oauth", "client_id": client_id, "jwks": _jwks(public, "k1")})
    before = idp.tokens_issued()
    with credvault.Provider(
        token_url=idp.url("/oauth/token"),
        client_id=client_id,
        auth_method="private_key_jwt",
        private_key=(KEYS / key_file).read_text(),
        key_id="k1",
        signing_alg=alg,
    ) as p:
        assert p.token()
        assert p.stats()["auth_method"] == "private_key_jwt"
    assert idp.tokens_issued() == before + 1


def test_from_preset_without_a_client_secret(idp):
    idp.add_client({"dialect": "vgs", "client_id": "py-vgs-jwt", "jwks": _jwks("p256", "ec-1")})
    with credvault.Provider.from_preset(
        "vgs",
        "py-vgs-jwt",
        token_url=idp.url("/vgs/auth/realms/vgs/protocol/openid-connect/token"),
        auth_method="private_key_jwt",
        private_key=(KEYS / "p256.pkcs8.pem").read_text(),
        key_id="ec-1",
    ) as p:
        assert p.token()


def test_a_key_the_server_does_not_know_is_rejected(idp):
    idp.add_client({"dialect": "oauth", "client_id": "py-jwt-other", "jwks": _jwks("rsa2048", "k1")})
    p = credvault.Provider(
        token_url=idp.url("/oauth/token"),
        client_id="py-jwt-other",
        auth_method="private_key_jwt",
        private_key=(KEYS / "other-rsa2048.pkcs8.pem").read_text(),
        key_id="k1",
    )
    with pytest.raises(credvault.CredentialsRejected):
        p.token()
    p.close()
