"""Partner credentials: API keys (dev) stored as SHA-256 of a 256-bit secret, and
OAuth2 access tokens (production), with the scopes of the partner kind
(`permissions.PARTNER_SCOPES`: least privilege), for portals their own org code, for
reporting partners the channel they report on (`permissions.PARTNER_CHANNELS`), and
the clerk or officer who acts (a token's `act` claim or its person; a dev key's one
clerk). What a credential says, a request's body cannot choose."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from pydantic import TypeAdapter, ValidationError

from reissue.activities.db import Connection
from reissue.activities.repositories import api_credentials
from reissue.schemas.case import StaffId
from reissue.schemas.enums import Channel
from reissue.schemas.permissions import PARTNER_CHANNELS, PARTNER_SCOPES, canonical
from reissue.workers.oidc import JwtVerifier

__all__ = [
    "PARTNER_SCOPES",
    "Credential",
    "TokenVerifier",
    "authenticate",
    "create_key",
    "reporting_channel",
    "revoke_key",
]

_STAFF_ID: TypeAdapter[str] = TypeAdapter(StaffId)


@dataclass(frozen=True)
class Credential:
    """Who calls: the partner kind and its scopes; a portal's org code; the channel a
    reporting partner reports on; and the person (a clerk or an officer, by staff ID)
    the credential acts for, if it names one."""

    key_id: str
    partner: str
    scopes: frozenset[str]
    org_code: str | None
    channel: Channel | None = None
    person: str | None = None

    @property
    def actor(self) -> str:
        """Who the audit log records for calls made with this credential (a staff-ID
        shaped name: the partner kind and the key's ID, or a digest of the token's
        subject)."""
        ident = self.key_id
        if not re.fullmatch(r"[0-9a-f]{16}", ident):
            ident = hashlib.sha256(ident.encode()).hexdigest()[:16]
        return f"{self.partner.replace('_', '')[:15]}-{ident}"

    @property
    def acting(self) -> str:
        """Who acted, for the case and its audit trail: the person the credential
        names, or else the credential itself."""
        return self.person or self.actor


def reporting_channel(partner: str, named: str | None, *, default: bool = True) -> Channel | None:
    """The channel a credential of this partner kind reports on: the one it names, if
    the kind may report on it; without one, the kind's first (`default`) or, for a
    kind with a choice, none. None for a kind that does not report. A channel the
    kind may not report on is a ValueError."""
    allowed = PARTNER_CHANNELS.get(partner, ())
    if named is None:
        if not allowed or (not default and len(allowed) > 1):
            return None
        return allowed[0]
    if named not in allowed:
        may = " or ".join(allowed) if allowed else "no channel"
        raise ValueError(f"channel: a {partner} credential reports on {may}")
    return Channel(named)


def _person(value: Any) -> str:
    """A staff ID, compared case-insensitively (so kept in lower case); ValueError else."""
    try:
        return canonical(_STAFF_ID.validate_python(value))
    except ValidationError:
        raise ValueError("acts_for: a staff ID (2 to 32 letters, digits, '.', '_', '-')") from None


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_key(
    conn: Connection,
    partner: str,
    *,
    org_code: str | None = None,
    channel: str | None = None,
    acts_for: str | None = None,
) -> str:
    """A new key for a partner; the only time the whole key is seen is now. A
    reporting partner's key reports on one channel (a hotline's: `hotline_12333`
    unless told otherwise); `acts_for` names the one clerk or officer the key acts for
    (dev keys only: production names the person in each token)."""
    if partner not in PARTNER_SCOPES:
        raise ValueError(f"partner: one of {', '.join(sorted(PARTNER_SCOPES))}")
    if partner.endswith("_portal") and not org_code:
        raise ValueError("org_code: a portal acts only for its own credit code or school code")
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    reports_on = reporting_channel(partner, channel)
    await api_credentials.insert(
        conn,
        key_id=key_id,
        key_sha256=_sha256(secret),
        partner=partner,
        scopes=PARTNER_SCOPES[partner],
        org_code=org_code,
        channel=reports_on.value if reports_on else None,
        acts_for=_person(acts_for) if acts_for is not None else None,
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
    return Credential(
        key_id,
        row["partner"],
        frozenset(row["scopes"]),
        row["org_code"],
        channel=Channel(row["channel"]) if row["channel"] else None,
        person=row["acts_for"],
    )


class TokenVerifier:
    """OAuth2 client-credentials access tokens (JWTs), verified against the identity
    provider's JWKS: signature, expiry, issuer and audience. The partner kind comes
    from the `partner` claim; scopes are those granted (`scope`) that the kind may
    have at all (least privilege whatever the provider grants); portals carry
    `org_code`; a reporting partner's token names its `channel` (a hotline's must:
    which hotline; the others' is their one channel). The person who acts is the
    `act` claim's subject (RFC 8693: a system acting for a clerk) or, in a person's
    own token, its `preferred_username`; a token naming something that is not a
    staff ID there is refused."""

    def __init__(self, jwks_url: str, *, issuer: str, audience: str) -> None:
        self._jwt = JwtVerifier(jwks_url, issuer=issuer, audience=audience)

    async def verify(self, token: str) -> Credential | None:
        claims = await self._jwt.claims(token)
        if claims is None:
            return None
        partner = claims.get("partner")
        if not isinstance(partner, str) or partner not in PARTNER_SCOPES:
            return None
        granted = frozenset(str(claims.get("scope", "")).split())
        org_code = claims.get("org_code")
        act = claims.get("act")
        named = act.get("sub") if isinstance(act, dict) else claims.get("preferred_username")
        if isinstance(named, str) and named.startswith("service-account-"):
            named = None  # a client's own account (client credentials) is nobody who acts
        try:
            channel = reporting_channel(partner, claims.get("channel"), default=False)
            person = _person(named) if named is not None or act is not None else None
        except ValueError:
            return None
        if partner in PARTNER_CHANNELS and channel is None:
            return None  # a hotline's token must say which hotline
        return Credential(
            key_id=str(claims["sub"]),
            partner=partner,
            scopes=granted & PARTNER_SCOPES[partner],
            org_code=str(org_code) if org_code else None,
            channel=channel,
            person=person,
        )
