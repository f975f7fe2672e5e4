"""Single sign-on for the console in production: OpenID Connect (authorisation code
flow, with PKCE) through authlib. The identity provider says who the person is;
the console decides whether they are staff and what they may do (their account
here, narrowed to the roles the provider grants, if it names any). The console
keeps no password for them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from authlib.integrations.base_client.errors import OAuthError  # type: ignore[import-untyped]
from authlib.integrations.starlette_client import OAuth  # type: ignore[import-untyped]
from fastapi import FastAPI, Request
from joserfc.errors import JoseError
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import Response

from reissue.schemas.permissions import Role
from reissue.workers.oidc import staff_identity

__all__ = ["OidcConfig", "OidcLogin"]


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

    async def identify(self, request: Request) -> tuple[str, str, frozenset[Role] | None] | None:
        """(staff ID, subject, roles granted) from the provider's ID token; None if the
        login failed. The subject is "<issuer> <sub>", the provider's fixed name for the
        person; the roles are None when the token carries no roles claim."""
        try:
            token: dict[str, Any] = await self._oauth.staff.authorize_access_token(request)
        except (OAuthError, JoseError, ValueError, KeyError):  # refused, forged, expired
            return None
        who = staff_identity(
            token.get("userinfo") or {},
            issuer=self._config.issuer,
            user_claim=self._config.user_claim,
            roles_claim=self._config.roles_claim,
        )
        return None if who is None else (who.user_id, who.subject, who.roles)
