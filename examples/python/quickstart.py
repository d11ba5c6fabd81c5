"""credvault from Python: a token, the requests and httpx adapters, asyncio.

    python examples/python/quickstart.py TOKEN_URL CLIENT_ID [API_URL]

The client secret is read from the CREDVAULT_CLIENT_SECRET environment variable (never from
the command line, where other users can read it). Against the local identity provider:

    target/release/credvault idp --demo &      # prints its URL
    CREDVAULT_CLIENT_SECRET=demo-vgs-secret python examples/python/quickstart.py \\
        http://127.0.0.1:PORT/vgs/auth/realms/vgs/protocol/openid-connect/token demo-vgs-client

Tokens are never printed: only their length.
"""

from __future__ import annotations

import asyncio
import os
import sys

import credvault


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    token_url, client_id = sys.argv[1], sys.argv[2]
    api_url = sys.argv[3] if len(sys.argv) > 3 else None
    secret = os.environ.get("CREDVAULT_CLIENT_SECRET")
    if not secret:
        print("set CREDVAULT_CLIENT_SECRET", file=sys.stderr)
        return 2

    with credvault.Provider(token_url=token_url, client_id=client_id, client_secret=secret) as vault:
        del secret
        print(repr(vault))  # the endpoint and the client id, never the secret
        try:
            token = vault.token()
        except credvault.CredentialsRejected as e:
            print(f"rejected: {e} (oauth error {e.oauth_error})", file=sys.stderr)
            return 1
        except credvault.CredvaultError as e:
            print(f"{e.status_name}: {e.message}", file=sys.stderr)
            return 1
        print(f"token: {len(token)} characters; cached: {vault.token() == token}")

        buf = bytearray(4096)
        n = vault.token_into(buf)  # no str made: wipe the buffer when done
        print(f"token_into: {n} bytes")
        buf[:] = bytes(len(buf))

        async def concurrently() -> int:
            aio = credvault.AsyncProvider.wrap(vault)
            values = await asyncio.gather(*(aio.authorization() for _ in range(100)))
            return len(set(values))

        print(f"asyncio: 100 tasks, {asyncio.run(concurrently())} distinct value(s)")

        if api_url:
            import requests

            from credvault.requests import VaultAuth

            with requests.Session() as session:
                session.auth = VaultAuth(vault)  # Authorization set; 401 -> new token, one retry
                print(f"GET {api_url}: {session.get(api_url).status_code}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
