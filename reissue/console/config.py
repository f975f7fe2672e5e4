"""How the console runs (`ConsoleConfig`), and what its routes share (`Console`, kept
on the app's state)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
import jinja2

from reissue.client import ReissueClient
from reissue.console.oidc import OidcConfig, OidcLogin
from reissue.console.worklist import Listings
from reissue.workers.body_limit import DEFAULT_MAX_BODY_BYTES
from reissue.workers.settings import Settings

__all__ = ["Console", "ConsoleConfig"]


@dataclass(frozen=True)
class ConsoleConfig:
    """How the console runs: session limits, cookies, and how staff log in."""

    session_idle: timedelta = timedelta(minutes=30)
    session_lifetime: timedelta = timedelta(hours=8)
    secure_cookies: bool = True
    due_soon: timedelta = timedelta(hours=24)  # the queue marks a review due within this
    queue_page_size: int = 25
    queue_fresh_for: timedelta = timedelta(seconds=15)  # a listing serves paging this long
    local_logins: bool = True  # dev: local accounts with argon2 passwords
    oidc: OidcConfig | None = None  # production: single sign-on
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES  # larger bodies: 413 before anything reads them

    @classmethod
    def from_settings(cls, settings: Settings) -> ConsoleConfig:
        """Production logs in through OIDC only; dev through local accounts (and OIDC
        as well, when an issuer is configured)."""
        oidc = None
        if settings.oidc_issuer:
            if settings.oidc_client_secret is None:
                raise SystemExit("REISSUE_OIDC_CLIENT_SECRET must be set with REISSUE_OIDC_ISSUER")
            oidc = OidcConfig(
                issuer=settings.oidc_issuer,
                client_id=settings.oidc_client_id,
                client_secret=settings.oidc_client_secret.get_secret_value(),
                state_secret=hmac.new(
                    settings.case_secret().encode(), b"console-oidc-state", "sha256"
                ).hexdigest(),
                roles_claim=settings.oidc_roles_claim,
                user_claim=settings.oidc_user_claim,
            )
        elif settings.environment == "production":
            raise SystemExit("REISSUE_OIDC_ISSUER must be set when REISSUE_ENV=production")
        if settings.environment == "production" and not settings.console_secure_cookies:
            raise SystemExit("REISSUE_CONSOLE_SECURE_COOKIES=false is refused in production")
        return cls(
            session_idle=timedelta(minutes=settings.console_session_idle_minutes),
            session_lifetime=timedelta(hours=settings.console_session_hours),
            secure_cookies=settings.console_secure_cookies,
            local_logins=settings.environment != "production",
            oidc=oidc,
            max_body_bytes=settings.max_body_bytes,
        )


@dataclass(frozen=True)
class Console:
    """What the console's routes share."""

    client: ReissueClient
    pool: asyncpg.Pool
    config: ConsoleConfig
    oidc: OidcLogin | None
    templates: jinja2.Environment
    listings: Listings

    @classmethod
    def create(cls, client: ReissueClient, pool: asyncpg.Pool, config: ConsoleConfig) -> Console:
        templates = jinja2.Environment(
            loader=jinja2.PackageLoader("reissue.console", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
        )
        oidc = OidcLogin(config.oidc) if config.oidc else None
        return cls(client, pool, config, oidc, templates, Listings(config.queue_fresh_for))
