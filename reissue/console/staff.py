"""Staff accounts and sessions of the console.

Local accounts (dev, or a site without single sign-on) keep an argon2id hash of
the password, never the password. Sessions live in the database: the cookie
holds a 256-bit secret, the table its SHA-256, so a stolen table opens nothing,
and a logout or an expiry ends the session on the server. Who acts is the
session's user, never a form field.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from reissue.activities.db import Connection
from reissue.schemas.permissions import Role, canonical

__all__ = [
    "Role",
    "StaffSession",
    "add_user",
    "canonical",
    "check_password",
    "disable_user",
    "end_session",
    "open_session",
    "prune_sessions",
    "session_for",
    "sso_account",
]

_HASHER = PasswordHasher()


# Verifying against this when the user does not exist costs the same as a real check,
# so the answer's timing does not tell which user IDs exist.
@functools.cache
def _dummy_hash() -> str:
    return _HASHER.hash(secrets.token_urlsafe(16))


USER_ID = re.compile(r"^[A-Za-z0-9._-]{2,32}$")


@dataclass(frozen=True)
class StaffSession:
    user_id: str
    display_name: str
    roles: frozenset[Role]
    csrf_token: str
    expires_at: datetime


_ROLE_NAMES = frozenset(r.value for r in Role)


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def add_user(
    conn: Connection,
    user_id: str,
    *,
    roles: list[Role],
    password: str | None,
    display_name: str | None = None,
    oidc_subject: str | None = None,
) -> None:
    """Create or update an account (roles, name, password or single sign-on). Any
    session the person has is ended: a changed password or role starts afresh."""
    user_id = canonical(user_id)
    if not USER_ID.fullmatch(user_id):
        raise ValueError("user_id: 2-32 letters, digits, '.', '_' or '-'")
    if not roles:
        raise ValueError("roles: at least one of " + ", ".join(r.value for r in Role))
    if password is not None and len(password) < 12:
        raise ValueError("password: at least 12 characters")
    if password is not None and oidc_subject is not None:
        raise ValueError("password: an account logs in either locally or through OIDC")
    hashed = await asyncio.to_thread(_HASHER.hash, password) if password is not None else None
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO staff_users (user_id, display_name, roles, password_argon2, oidc_subject)"
            " VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT (user_id) DO UPDATE SET display_name = EXCLUDED.display_name,"
            " roles = EXCLUDED.roles, password_argon2 = EXCLUDED.password_argon2,"
            " oidc_subject = EXCLUDED.oidc_subject,"
            " disabled_at = NULL, failed_logins = 0, locked_until = NULL",
            user_id,
            display_name or user_id,
            sorted({Role(r).value for r in roles}),
            hashed,
            oidc_subject,
        )
        await _end_sessions_of(conn, user_id)


async def disable_user(conn: Connection, user_id: str) -> bool:
    """No more logins, and every session ends now. True if there was such a user."""
    async with conn.transaction():
        done = await conn.execute(
            "UPDATE staff_users SET disabled_at = now() WHERE user_id = $1 AND disabled_at IS NULL",
            canonical(user_id),
        )
        await _end_sessions_of(conn, canonical(user_id))
    return done.endswith(" 1")


async def _end_sessions_of(conn: Connection, user_id: str) -> None:
    await conn.execute(
        "UPDATE staff_sessions SET ended_at = now() WHERE user_id = $1 AND ended_at IS NULL",
        user_id,
    )


# After this many wrong passwords in a row an account takes no login for a while,
# so a password cannot be guessed online (local accounts are for dev; production
# logs in through OIDC, where the identity provider guards its passwords).
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)


async def check_password(
    conn: Connection, user_id: str, password: str
) -> tuple[str, frozenset[Role]] | None:
    """(display name, roles) if this local account exists, is enabled, is not locked
    out and the password is right; None otherwise, in the same time either way.

    Each attempt is counted before the password is checked (in one statement), so
    guesses sent in parallel meet the lockout as guesses sent one by one do."""
    row = await conn.fetchrow(
        "UPDATE staff_users SET failed_logins = CASE WHEN locked_until <= now() THEN 1"
        " ELSE failed_logins + 1 END, locked_until = NULL"
        " WHERE user_id = $1 AND disabled_at IS NULL AND password_argon2 IS NOT NULL"
        " AND (locked_until IS NULL OR locked_until <= now())"
        " RETURNING display_name, roles, password_argon2, failed_logins",
        canonical(user_id),
    )
    counted = row is not None and row["failed_logins"] <= MAX_FAILED_LOGINS
    stored = row["password_argon2"] if counted and row is not None else _dummy_hash()
    try:
        # argon2 is slow on purpose: off the event loop, so logins never stall the service.
        right: bool = await asyncio.to_thread(_HASHER.verify, stored, password)
    except (VerificationError, InvalidHashError):
        right = False
    if row is None:
        return None
    if not counted or not right:
        if row["failed_logins"] >= MAX_FAILED_LOGINS:
            await conn.execute(
                "UPDATE staff_users SET locked_until = now() + $2::interval"
                " WHERE user_id = $1 AND locked_until IS NULL",
                canonical(user_id),
                LOCKOUT,
            )
        return None
    await conn.execute(
        "UPDATE staff_users SET failed_logins = 0 WHERE user_id = $1", canonical(user_id)
    )
    return row["display_name"], frozenset(Role(r) for r in row["roles"])


async def sso_account(
    conn: Connection, user_id: str, subject: str, granted: frozenset[Role] | None
) -> tuple[str, frozenset[Role]] | None:
    """(display name, roles) of the single sign-on account the provider vouches for.

    The person must be on staff here: an enabled account without a local password.
    It is bound to the provider's subject (issuer and `sub`) when it is added, or at
    its first login; after that, a provider account renamed to it is refused. The
    roles are the account's, narrowed to those the provider grants (`granted`) when
    its token names any."""
    user_id = canonical(user_id)
    row = await conn.fetchrow(
        "SELECT display_name, roles, oidc_subject FROM staff_users"
        " WHERE user_id = $1 AND disabled_at IS NULL AND password_argon2 IS NULL",
        user_id,
    )
    if row is None:
        return None
    if row["oidc_subject"] is None:
        bound = await conn.fetchval(
            "UPDATE staff_users SET oidc_subject = $2"
            " WHERE user_id = $1 AND oidc_subject IS NULL"
            " AND NOT EXISTS (SELECT 1 FROM staff_users WHERE oidc_subject = $2)"
            " RETURNING true",
            user_id,
            subject,
        )
        if not bound:
            return None
    elif row["oidc_subject"] != subject:
        return None
    roles = frozenset(Role(r) for r in row["roles"])
    if granted is not None:
        roles &= granted
    return (row["display_name"], roles) if roles else None


async def open_session(
    conn: Connection,
    user_id: str,
    display_name: str,
    roles: frozenset[Role],
    *,
    lifetime: timedelta,
) -> str:
    """A new session; returns the cookie's secret (the only time it is seen)."""
    secret = secrets.token_urlsafe(32)
    await conn.execute(
        "INSERT INTO staff_sessions"
        " (session_sha256, user_id, display_name, roles, csrf_token, expires_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        _sha256(secret),
        user_id,
        display_name,
        sorted(r.value for r in roles),
        secrets.token_urlsafe(32),
        datetime.now(UTC) + lifetime,
    )
    return secret


async def session_for(conn: Connection, secret: str, *, idle: timedelta) -> StaffSession | None:
    """The live session this cookie opens (and it is seen now); None once logged out,
    past its absolute end, idle longer than `idle`, or once the person is disabled.
    Its roles are those granted at login that the person still holds now."""
    row = await conn.fetchrow(
        "UPDATE staff_sessions s SET last_seen_at = now() FROM staff_users u"
        " WHERE s.session_sha256 = $1 AND s.ended_at IS NULL AND s.expires_at > now()"
        " AND s.last_seen_at > now() - $2::interval"
        " AND u.user_id = s.user_id AND u.disabled_at IS NULL"
        " RETURNING s.user_id, u.display_name, s.csrf_token, s.expires_at,"
        " ARRAY(SELECT unnest(s.roles) INTERSECT SELECT unnest(u.roles)) AS roles",
        _sha256(secret),
        idle,
    )
    if row is None or not row["roles"]:
        return None
    return StaffSession(
        user_id=row["user_id"],
        display_name=row["display_name"],
        roles=frozenset(Role(r) for r in row["roles"] if r in _ROLE_NAMES),
        csrf_token=row["csrf_token"],
        expires_at=row["expires_at"],
    )


async def end_session(conn: Connection, secret: str) -> None:
    await conn.execute(
        "UPDATE staff_sessions SET ended_at = now() WHERE session_sha256 = $1 AND ended_at IS NULL",
        _sha256(secret),
    )


async def prune_sessions(conn: Connection, *, kept_for: timedelta) -> int:
    """Delete sessions that ended (or expired) longer ago than `kept_for`; how many."""
    done = await conn.execute(
        "DELETE FROM staff_sessions WHERE least(expires_at, coalesce(ended_at, expires_at))"
        " < now() - $1::interval",
        kept_for,
    )
    return int(done.rsplit(" ", 1)[-1])
