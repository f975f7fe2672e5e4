"""Staff accounts and sessions of the console.

Local accounts (dev, or a site without single sign-on) keep an argon2id hash of
the password, never the password. Sessions live in the database: the cookie
holds a 256-bit secret, the table its SHA-256, so a stolen table opens nothing,
and a logout or an expiry ends the session on the server. Who acts is the
session's user, never a form field.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from reissue.activities.db import Connection

__all__ = [
    "Role",
    "StaffSession",
    "add_user",
    "check_password",
    "end_session",
    "open_session",
    "session_for",
]

_HASHER = PasswordHasher()
# Verifying against this when the user does not exist costs the same as a real check,
# so the answer's timing does not tell which user IDs exist.
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))
USER_ID = re.compile(r"^[A-Za-z0-9._-]{2,32}$")


class Role(StrEnum):
    """What a member of staff may do in the console (SPEC 5)."""

    REVIEWER = "reviewer"  # claim, release own claim, approve / correct / reject
    SUPERVISOR = "supervisor"  # also: release any claim, override affiliation, waive the fee
    OPERATIONS = "operations"  # cancel a case, with a reason
    AUDITOR = "auditor"  # read, export (masked), unmask with a stated reason


@dataclass(frozen=True)
class StaffSession:
    user_id: str
    display_name: str
    roles: frozenset[Role]
    csrf_token: str
    expires_at: datetime

    def can(self, *roles: Role) -> bool:
        return any(r in self.roles for r in roles)


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
) -> None:
    """Create or update a local account (roles, name, password)."""
    if not USER_ID.fullmatch(user_id):
        raise ValueError("user_id: 2-32 letters, digits, '.', '_' or '-'")
    if not roles:
        raise ValueError("roles: at least one of " + ", ".join(r.value for r in Role))
    if password is not None and len(password) < 12:
        raise ValueError("password: at least 12 characters")
    await conn.execute(
        "INSERT INTO staff_users (user_id, display_name, roles, password_argon2)"
        " VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (user_id) DO UPDATE SET display_name = EXCLUDED.display_name,"
        " roles = EXCLUDED.roles, password_argon2 = EXCLUDED.password_argon2,"
        " disabled_at = NULL, failed_logins = 0, locked_until = NULL",
        user_id,
        display_name or user_id,
        sorted({Role(r).value for r in roles}),
        _HASHER.hash(password) if password is not None else None,
    )


# After this many wrong passwords in a row an account takes no login for a while,
# so a password cannot be guessed online.
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)


async def check_password(
    conn: Connection, user_id: str, password: str
) -> tuple[str, frozenset[Role]] | None:
    """(display name, roles) if this local account exists, is enabled, is not locked
    out and the password is right; None otherwise, in the same time either way."""
    row = await conn.fetchrow(
        "SELECT display_name, roles, password_argon2, locked_until > now() AS locked"
        " FROM staff_users WHERE user_id = $1 AND disabled_at IS NULL",
        user_id,
    )
    stored = row["password_argon2"] if row is not None else None
    try:
        _HASHER.verify(stored or _DUMMY_HASH, password)
        right = True
    except (VerificationError, InvalidHashError):
        right = False
    if row is None or stored is None:
        return None
    if not right or row["locked"]:
        if not row["locked"]:
            await conn.execute(
                "UPDATE staff_users SET failed_logins = failed_logins + 1,"
                " locked_until = CASE WHEN failed_logins + 1 >= $2 THEN now() + $3::interval"
                " END WHERE user_id = $1",
                user_id,
                MAX_FAILED_LOGINS,
                LOCKOUT,
            )
        return None
    await conn.execute(
        "UPDATE staff_users SET failed_logins = 0, locked_until = NULL WHERE user_id = $1",
        user_id,
    )
    return row["display_name"], frozenset(Role(r) for r in row["roles"])


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
    past its absolute end, or idle longer than `idle`."""
    row = await conn.fetchrow(
        "UPDATE staff_sessions SET last_seen_at = now()"
        " WHERE session_sha256 = $1 AND ended_at IS NULL AND expires_at > now()"
        " AND last_seen_at > now() - $2::interval"
        " RETURNING user_id, display_name, roles, csrf_token, expires_at",
        _sha256(secret),
        idle,
    )
    if row is None:
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
