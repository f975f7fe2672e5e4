"""Verifying the identity provider's tokens, in one place: a JWT's signature (the
provider's JWKS), expiry, issuer and audience (`JwtVerifier`, which the partner API's
access tokens and the codec server's staff tokens go through), and who a member of
staff is by the provider's claims (`staff_identity`, which the console's single
sign-on and the codec server read)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from reissue.schemas.permissions import Role

__all__ = ["JwtVerifier", "StaffIdentity", "staff_identity"]

_USER_ID = re.compile(r"^[a-z0-9._-]{2,32}$")


class JwtVerifier:
    """JWTs signed by the identity provider: signature by its JWKS (a key named by
    `kid`), expiry, issuer and audience, all required."""

    def __init__(self, jwks_url: str, *, issuer: str, audience: str) -> None:
        # The key set is fetched again after `lifespan` (a withdrawn key stops working),
        # never for long (`timeout`), and not per token (`cache_jwk_set`).
        self._jwks = jwt.PyJWKClient(
            jwks_url, cache_keys=False, cache_jwk_set=True, lifespan=300, timeout=5
        )
        self._issuer, self._audience = issuer, audience

    async def claims(self, token: str) -> dict[str, Any] | None:
        """The token's claims if it is valid; None for anything else."""
        try:
            if not jwt.get_unverified_header(token).get("kid"):
                return None
            key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=["RS256", "ES256"],
                issuer=self._issuer,
                audience=self._audience,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError:
            return None
        return claims


@dataclass(frozen=True)
class StaffIdentity:
    """A member of staff as the provider names them: the staff ID (`user_claim`), the
    subject ("<issuer> <sub>", the provider's fixed name for the person), and the roles
    granted (None when the token carries no roles claim)."""

    user_id: str
    subject: str
    roles: frozenset[Role] | None


def staff_identity(
    claims: Mapping[str, Any], *, issuer: str, user_claim: str, roles_claim: str
) -> StaffIdentity | None:
    """Who the claims name; None when they name no staff ID or no subject."""
    user_id = str(claims.get(user_claim) or "").lower()
    if not _USER_ID.fullmatch(user_id) or not claims.get("sub"):
        return None
    subject = f"{claims.get('iss', issuer)} {claims['sub']}"
    if roles_claim not in claims:
        return StaffIdentity(user_id, subject, None)
    granted = claims.get(roles_claim) or []
    if isinstance(granted, str):
        granted = granted.split()
    names = {r.value for r in Role}
    roles = frozenset(Role(r) for r in granted if isinstance(r, str) and r in names)
    return StaffIdentity(user_id, subject, roles)
