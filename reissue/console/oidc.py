"""Single sign-on for the console in production: OpenID Connect (authorisation code
flow, with PKCE) through authlib. The identity provider says who the person is
and which console roles they hold (a claim, `roles` by default); the console
keeps no password."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from authlib.integrations.base_client.errors import OAuthError  # type: ignore[import-untyped]
from authlib.integrations.starlette_client import OAuth  # type: ignore[import-untyped]
from fastapi import FastAPI, Request
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import Response

from reissue.console.staff import Role

__all__ = ["OidcConfig", "OidcLogin"]

_USER_ID = re.compile(r"^[A-Za-z0-9._-]{2,32}$")


@dataclass(frozen=True)
class OidcConfig:
    issuer: str
    client_id: str
    client_secret: str
    # Signs the short-lived cookie that carries the login's state and nonce.
    state_secret: str
    roles_claim: str = "roles"
    user_claim: str = "preferred_username"


class OidcLogin:
    def __init__(self, config: OidcConfig) -> None:
        self._config = config
        self._oauth = OAuth()
        self._oauth.register(
            "staff",
            client_id=config.client_id,
            client_secret=config.client_secret,
            server_metadata_url=config.issuer.rstrip("/") + "/.well-known/openid-configuration",
            client_kwargs={"scope": "openid profile", "code_challenge_method": "S256"},
        )

    def install(self, app: FastAPI, *, secure: bool) -> None:
        app.add_middleware(
            SessionMiddleware,
            secret_key=self._config.state_secret,
            session_cookie="reissue_oidc_state",
            max_age=600,
            same_site="lax",  # the provider redirects back with a top-level GET
            https_only=secure,
        )

    async def redirect(self, request: Request, callback_url: str) -> Response:
        response: Response = await self._oauth.staff.authorize_redirect(request, callback_url)
        return response

    async def identify(self, request: Request) -> tuple[str, str, frozenset[Role]] | None:
        """(user ID, display name, console roles) from the provider's ID token; None if
        the login failed or the person holds no console role."""
        try:
            token: dict[str, Any] = await self._oauth.staff.authorize_access_token(request)
        except OAuthError:
            return None
        claims = token.get("userinfo") or {}
        user_id = str(claims.get(self._config.user_claim) or "")
        if not _USER_ID.fullmatch(user_id):
            return None
        granted = claims.get(self._config.roles_claim) or []
        if isinstance(granted, str):
            granted = granted.split()
        roles = frozenset(Role(r) for r in granted if r in {x.value for x in Role})
        if not roles:
            return None
        return user_id, str(claims.get("name") or user_id), roles
