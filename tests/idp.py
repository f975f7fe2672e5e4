"""A stand-in identity provider for the tests that verify its tokens over real HTTP:
its signing key, its JWKS served by a local HTTP server, and the tokens it signs."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["OTHER", "SIGNING", "jwks_served", "signed"]

SIGNING = rsa.generate_private_key(public_exponent=65537, key_size=2048)
# A key the provider does not publish: what it signs is forged.
OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
_KID = "k1"


@contextmanager
def jwks_served() -> Iterator[str]:
    """The URL of the provider's JWKS (the public half of `SIGNING`), served while inside."""
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(SIGNING.public_key()))
    body = json.dumps({"keys": [jwk | {"kid": _KID, "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    finally:
        server.shutdown()


def signed(claims: dict[str, Any], key: Any = SIGNING) -> str:
    """A JWT with these claims (a claim set to None is left out), issued now for five
    minutes unless the claims say otherwise, signed by `key` under the JWKS's key ID."""
    now = int(time.time())
    body = {"iat": now, "exp": now + 300} | claims
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": _KID})
