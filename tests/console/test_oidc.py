"""Single sign-on: the console logs staff in through an OpenID Connect provider
(here a small one over real HTTP, signing RS256 ID tokens); roles come from the
token, a person with no console role gets no session, and a forged callback
opens nothing."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse

from reissue.console.app import ConsoleConfig, build_console
from reissue.console.oidc import OidcConfig
from reissue.console.staff import Role, add_user
from tests.api.conftest import serving
from tests.support import Stack

CLIENT_ID, CLIENT_SECRET = "card-reissue-console", "client-secret-for-tests"


class Provider:
    """An identity provider: discovery, authorise (logs in whoever `next_user` is),
    token (an RS256 ID token with the nonce) and JWKS."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.url = ""
        self.next_user: dict[str, Any] = {}
        self.signing_key: rsa.RSAPrivateKey | None = None  # another key: a forged token
        self.codes: dict[str, dict[str, Any]] = {}
        self.app = FastAPI()
        app = self.app

        @app.get("/.well-known/openid-configuration")
        async def discovery() -> dict[str, Any]:
            return {
                "issuer": self.url,
                "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token",
                "jwks_uri": f"{self.url}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }

        @app.get("/jwks")
        async def jwks() -> dict[str, Any]:
            jwk = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
            return {"keys": [jwk | {"kid": "k1", "use": "sig", "alg": "RS256"}]}

        @app.get("/authorize")
        async def authorize(request: Request) -> RedirectResponse:
            q = request.query_params
            assert q["client_id"] == CLIENT_ID and q["code_challenge_method"] == "S256"
            code = secrets.token_urlsafe(16)
            self.codes[code] = {"nonce": q.get("nonce"), **self.next_user}
            target = q["redirect_uri"] + "?" + urlencode({"code": code, "state": q["state"]})
            return RedirectResponse(target, status_code=302)

        @app.post("/token")
        async def token(code: str = Form(), code_verifier: str = Form()) -> JSONResponse:
            claims = self.codes.pop(code)
            now = int(time.time())
            id_token = jwt.encode(
                {"iss": self.url, "aud": CLIENT_ID, "iat": now, "exp": now + 300, **claims},
                self.signing_key or self.key,
                algorithm="RS256",
                headers={"kid": "k1"},
            )
            return JSONResponse(
                {
                    "access_token": "at",
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "id_token": id_token,
                }
            )


@pytest.fixture
async def provider() -> AsyncIterator[Provider]:
    idp = Provider()
    async with serving(idp.app) as base:
        idp.url = base
        yield idp


async def test_staff_log_in_through_oidc_with_the_roles_the_provider_gives(
    stack: Stack, provider: Provider
) -> None:
    config = ConsoleConfig(
        secure_cookies=False,  # httpx sends no Secure cookie over plain HTTP
        local_logins=False,
        oidc=OidcConfig(
            issuer=provider.url,
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            state_secret="state-secret-for-tests",
        ),
    )
    app = FastAPI()
    app.mount("/console", build_console(stack.client, stack.pool, config))
    async with serving(app) as base:

        @asynccontextmanager
        async def sign_in(user: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
            provider.next_user = user
            async with httpx.AsyncClient(base_url=f"{base}/console", follow_redirects=True) as http:
                await http.get("/oidc/login", params={"next": "/console/?tab=mine"})
                yield http

        async def session_of(user: dict[str, Any]) -> str | None:
            """Who the console shows as logged in after this provider login, if anyone."""
            async with sign_in(user) as http:
                page = await http.get("/", params={"tab": "mine"}, follow_redirects=False)
                if page.status_code != 200:
                    return None
                found = re.search(r'data-testid="who">([^<]+)<', page.text)
                assert found is not None
                return " ".join(found.group(1).split())

        async with stack.pool.acquire() as conn:  # on staff, logging in through OIDC only
            await add_user(
                conn,
                "li.reviewer",
                roles=[Role.REVIEWER, Role.SUPERVISOR],
                password=None,
                display_name="李审核",
            )
            await add_user(conn, "reviewer-01", roles=[Role.REVIEWER], password="a local password")
        li = {"sub": "u-1", "preferred_username": "li.reviewer", "roles": ["reviewer"]}
        # Roles: the account's, narrowed to what the provider grants (bound to sub u-1).
        assert await session_of(li) == "李审核 (li.reviewer) · 审核员"
        assert await session_of(li | {"roles": ["reviewer", "supervisor"]}) == (
            "李审核 (li.reviewer) · 审核员, 主管"
        )
        # Another provider account renamed to li.reviewer is not li.reviewer.
        assert await session_of(li | {"sub": "u-666"}) is None
        # Not on staff here; a local account; no console role granted: no session.
        assert await session_of({"sub": "u-2", "preferred_username": "visitor"}) is None
        assert await session_of({"sub": "u-3", "preferred_username": "reviewer-01"}) is None
        assert await session_of(li | {"roles": ["library"]}) is None
        # A token signed with a key that is not the provider's: refused, not a 500.
        provider.signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        assert await session_of(li) is None
        provider.signing_key = None
        async with sign_in(li) as http:
            login = await http.get("/login")  # no local password form in production
            assert 'name="password"' not in login.text and "/oidc/login" in login.text
        async with httpx.AsyncClient(base_url=f"{base}/console") as forged:
            r = await forged.get("/oidc/callback", params={"code": "x", "state": "y"})
            assert r.status_code == 303 and "reissue_session" not in r.cookies
        async with stack.pool.acquire() as conn:
            sessions = await conn.fetch("SELECT user_id, roles FROM staff_sessions")
        assert sorted((s["user_id"], tuple(s["roles"])) for s in sessions) == [
            ("li.reviewer", ("reviewer",)),
            ("li.reviewer", ("reviewer",)),
            ("li.reviewer", ("reviewer", "supervisor")),
        ]
