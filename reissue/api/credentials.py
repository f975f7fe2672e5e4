"""Partner credentials: API keys (dev) stored as SHA-256 of a 256-bit secret, and
OAuth2 access tokens (production), with the scopes of the partner kind
(`permissions.PARTNER_SCOPES`: least privilege) and, for portals, their own org code."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

import jwt

from reissue.activities.db import Connection
from reissue.activities.repositories import api_credentials
from reissue.schemas.permissions import PARTNER_SCOPES

__all__ = [
    "PARTNER_SCOPES",
    "Credential",
    "TokenVerifier",
    "authenticate",
    "create_key",
    "revoke_key",
]


@dataclass(frozen=True)
class Credential:
    key_id: str
    partner: str
    scopes: frozenset[str]
    org_code: str | None

    @property
    def actor(self) -> str:
        """Who the audit log records for calls made with this credential (a staff-ID
        shaped name: the partner kind and the key's ID, or a digest of the token's
        subject)."""
        ident = self.key_id
        if not re.fullmatch(r"[0-9a-f]{16}", ident):
            ident = hashlib.sha256(ident.encode()).hexdigest()[:16]
        return f"{self.partner.replace('_', '')[:15]}-{ident}"


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_key(conn: Connection, partner: str, *, org_code: str | None = None) -> str:
    """A new key for a partner; the only time the whole key is seen is now."""
    if partner not in PARTNER_SCOPES:
        raise ValueError(f"partner: one of {', '.join(sorted(PARTNER_SCOPES))}")
    if partner.endswith("_portal") and not org_code:
        raise ValueError("org_code: a portal acts only for its own credit code or school code")
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    await api_credentials.insert(
        conn,
        key_id=key_id,
        key_sha256=_sha256(secret),
        partner=partner,
        scopes=PARTNER_SCOPES[partner],
        org_code=org_code,
    )
    return f"rk_{key_id}_{secret}"


async def revoke_key(conn: Connection, key_id: str) -> bool:
    return await api_credentials.revoke(conn, key_id)


async def authenticate(conn: Connection, key: str) -> Credential | None:
    """The credential a presented key belongs to; None for anything else."""
    prefix, _, rest = key.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != "rk" or not key_id or not secret:
        return None
    row = await api_credentials.live_key(conn, key_id)
    if row is None or not hmac.compare_digest(row["key_sha256"], _sha256(secret)):
        return None
    return Credential(key_id, row["partner"], frozenset(row["scopes"]), row["org_code"])


class TokenVerifier:
    """OAuth2 client-credentials access tokens (JWTs), verified against the identity
    provider's JWKS: signature, expiry, issuer and audience. The partner kind comes
    from the `partner` claim; scopes are those granted (`scope`) that the kind may
    have at all (least privilege whatever the provider grants); portals carry
    `org_code`."""

    def __init__(self, jwks_url: str, *, issuer: str, audience: str) -> None:
        # The key set is fetched again after `lifespan` (a withdrawn key stops working),
        # never for long (`timeout`), and not per token (`cache_jwk_set`).
        self._jwks = jwt.PyJWKClient(
            jwks_url, cache_keys=False, cache_jwk_set=True, lifespan=300, timeout=5
        )
        self._issuer, self._audience = issuer, audience

    async def verify(self, token: str) -> Credential | None:
        try:
            if not jwt.get_unverified_header(token).get("kid"):
                return None
            key = await asyncio.to_thread(self._jwks.get_signing_key_from_jwt, token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256", "ES256"],
                issuer=self._issuer,
                audience=self._audience,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError:
            return None
        partner = claims.get("partner")
        if not isinstance(partner, str) or partner not in PARTNER_SCOPES:
            return None
        granted = frozenset(str(claims.get("scope", "")).split())
        org_code = claims.get("org_code")
        return Credential(
            key_id=str(claims["sub"]),
            partner=partner,
            scopes=granted & PARTNER_SCOPES[partner],
            org_code=str(org_code) if org_code else None,
        )
