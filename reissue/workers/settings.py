"""Configuration from the environment (and an optional `.env` file), read once at start."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from reissue.schemas.codec import KeyRing
from reissue.workers.body_limit import DEFAULT_MAX_BODY_BYTES

__all__ = [
    "DATABASE_URL_FILE",
    "DEV_HASH_SECRET",
    "DEV_WEBHOOK_SECRET",
    "Partner",
    "Settings",
    "partner_url_file",
]

# Only for the embedded dev stack and tests; production must configure its own.
DEV_HASH_SECRET = "dev-only-case-id-secret"
DEV_WEBHOOK_SECRET = "dev-only-webhook-secret"
# A running `reissue dev` writes its embedded database's URL here, under data_dir.
DATABASE_URL_FILE = "database-url"

Partner = Literal["bank", "payments", "bureau", "notifications"]
# Each partner system: its Settings field and environment variable.
_PARTNER_URLS: dict[str, tuple[str, str]] = {
    "bank": ("bank_url", "REISSUE_BANK_URL"),
    "payments": ("payment_platform_url", "REISSUE_PAYMENT_PLATFORM_URL"),
    "bureau": ("card_bureau_url", "REISSUE_CARD_BUREAU_URL"),
    "notifications": ("notification_gateway_url", "REISSUE_NOTIFICATION_GATEWAY_URL"),
}


def partner_url_file(system: str) -> str:
    """Where `reissue dev` writes a simulator's URL for commands in other terminals."""
    return f"{system}-url"


class Settings(BaseSettings):
    """Everything a worker, the CLI or the dev stack needs to know about its surroundings."""

    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", populate_by_name=True, case_sensitive=False
    )

    # No default: dev turns on public default secrets and API keys, so a process that
    # is not told which it is refuses to start (`reissue dev` and the tests say dev).
    environment: Literal["dev", "production"] = Field(validation_alias="REISSUE_ENV")
    temporal_address: str = Field(default="localhost:7233", validation_alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = Field(default="default", validation_alias="TEMPORAL_NAMESPACE")
    temporal_tls_cert: Path | None = Field(default=None, validation_alias="TEMPORAL_TLS_CERT")
    temporal_tls_key: Path | None = Field(default=None, validation_alias="TEMPORAL_TLS_KEY")
    temporal_tls_ca: Path | None = Field(default=None, validation_alias="TEMPORAL_TLS_CA")
    temporal_api_key: SecretStr | None = Field(default=None, validation_alias="TEMPORAL_API_KEY")
    metrics_address: str | None = Field(
        default=None,
        validation_alias="REISSUE_METRICS_ADDRESS",
        description="host:port where the worker serves the SDK's Prometheus metrics.",
    )
    api_metrics_port: int | None = Field(
        default=None,
        validation_alias="REISSUE_API_METRICS_PORT",
        description="`reissue api`: the port its request metrics are served on (Prometheus).",
    )
    api_metrics_host: str = Field(
        default="127.0.0.1",
        validation_alias="REISSUE_API_METRICS_HOST",
        description="`reissue api`: the address its request metrics listen on (loopback "
        "unless configured: a scraper on another host needs 0.0.0.0 or the pod's address).",
    )
    health_port: int | None = Field(default=None, validation_alias="REISSUE_HEALTH_PORT")
    task_queue: str = Field(default="card-reissue", validation_alias="REISSUE_TASK_QUEUE")
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    hash_secret: SecretStr | None = Field(default=None, validation_alias="REISSUE_HASH_SECRET")
    data_dir: Path = Field(default=Path(".reissue"), validation_alias="REISSUE_DATA_DIR")
    ui_port: int = Field(default=8233, validation_alias="REISSUE_UI_PORT")
    log_format: Literal["auto", "json", "console"] = Field(
        default="auto", validation_alias="REISSUE_LOG_FORMAT"
    )
    max_concurrent_activities: int = Field(
        default=100, ge=1, validation_alias="REISSUE_MAX_CONCURRENT_ACTIVITIES"
    )
    max_concurrent_workflow_tasks: int = Field(
        default=100, ge=1, validation_alias="REISSUE_MAX_CONCURRENT_WORKFLOW_TASKS"
    )
    workflow_task_pollers: int = Field(
        default=5, ge=1, validation_alias="REISSUE_WORKFLOW_TASK_POLLERS"
    )
    activity_task_pollers: int = Field(
        default=5, ge=1, validation_alias="REISSUE_ACTIVITY_TASK_POLLERS"
    )
    max_cached_workflows: int = Field(
        # 400 kept a worker at 233 MB with 1,000 open cases on 2 cores (README, Performance).
        default=400,
        ge=0,
        validation_alias="REISSUE_MAX_CACHED_WORKFLOWS",
        description="Workflows kept in memory between tasks; others replay from history.",
    )
    db_pool_size: int = Field(default=10, ge=1, validation_alias="REISSUE_DB_POOL_SIZE")
    codec_keys: SecretStr | None = Field(
        default=None,
        validation_alias="REISSUE_CODEC_KEYS",
        description="'k2:<base64>,k1:<base64>': AES-256 keys, the first one current.",
    )
    codec_key_file: Path | None = Field(default=None, validation_alias="REISSUE_CODEC_KEY_FILE")
    allow_plaintext_payloads: bool = Field(
        default=False,
        validation_alias="REISSUE_ALLOW_PLAINTEXT_PAYLOADS",
        description="Local experiments only: cases accept unencrypted starts, signals and "
        "updates. Refused when REISSUE_ENV=production.",
    )
    codec_host: str = Field(default="127.0.0.1", validation_alias="REISSUE_CODEC_HOST")
    codec_port: int = Field(default=8234, validation_alias="REISSUE_CODEC_PORT")
    api_host: str = Field(default="127.0.0.1", validation_alias="REISSUE_API_HOST")
    api_port: int = Field(default=8300, validation_alias="REISSUE_API_PORT")
    max_body_bytes: int = Field(
        default=DEFAULT_MAX_BODY_BYTES,
        ge=64 * 1024,
        validation_alias="REISSUE_MAX_BODY_BYTES",
        description="`reissue api` (partner API and console): larger request bodies are "
        "refused (413) before authentication and before they are read.",
    )
    api_jwks_url: str | None = Field(
        default=None,
        validation_alias="REISSUE_API_JWKS_URL",
        description="The identity provider's JWKS: partners call with OAuth2 access tokens.",
    )
    api_jwt_issuer: str = Field(default="", validation_alias="REISSUE_API_JWT_ISSUER")
    api_jwt_audience: str = Field(
        default="card-reissue", validation_alias="REISSUE_API_JWT_AUDIENCE"
    )
    api_owner_failures_per_card: int = Field(
        default=5,
        ge=1,
        validation_alias="REISSUE_API_OWNER_FAILURES_PER_CARD",
        description="Failed ownership checks on one card, within the window, before the "
        "card's checks are locked for the window.",
    )
    api_owner_failures_per_credential: int = Field(
        default=20,
        ge=1,
        validation_alias="REISSUE_API_OWNER_FAILURES_PER_CREDENTIAL",
        description="Failed ownership checks by one partner credential, within the "
        "window, before its checks are locked for the window.",
    )
    api_owner_window_minutes: int = Field(
        default=15, ge=1, validation_alias="REISSUE_API_OWNER_WINDOW_MINUTES"
    )
    api_found_code_minutes: int = Field(
        default=10,
        ge=1,
        le=60,
        validation_alias="REISSUE_API_FOUND_CODE_MINUTES",
        description="How long a one-time code for lifting a report by hotline or online lives.",
    )
    api_found_code_attempts: int = Field(
        default=5,
        ge=1,
        le=10,
        validation_alias="REISSUE_API_FOUND_CODE_ATTEMPTS",
        description="Tries a one-time code takes; then it is dead and a new one is needed.",
    )
    api_found_codes_per_hour: int = Field(
        default=3,
        ge=1,
        le=10,
        validation_alias="REISSUE_API_FOUND_CODES_PER_HOUR",
        description="One-time codes sent for one case within an hour (each an SMS to the owner).",
    )
    console_session_idle_minutes: int = Field(
        default=30, ge=1, validation_alias="REISSUE_CONSOLE_SESSION_IDLE_MINUTES"
    )
    console_session_hours: int = Field(
        default=8, ge=1, le=24, validation_alias="REISSUE_CONSOLE_SESSION_HOURS"
    )
    console_secure_cookies: bool = Field(
        default=True,
        validation_alias="REISSUE_CONSOLE_SECURE_COOKIES",
        description="Secure cookies (browsers accept them over http only on localhost).",
    )
    oidc_issuer: str | None = Field(default=None, validation_alias="REISSUE_OIDC_ISSUER")
    oidc_client_id: str = Field(
        default="card-reissue-console", validation_alias="REISSUE_OIDC_CLIENT_ID"
    )
    oidc_client_secret: SecretStr | None = Field(
        default=None, validation_alias="REISSUE_OIDC_CLIENT_SECRET"
    )
    oidc_roles_claim: str = Field(default="roles", validation_alias="REISSUE_OIDC_ROLES_CLAIM")
    oidc_user_claim: str = Field(
        default="preferred_username", validation_alias="REISSUE_OIDC_USER_CLAIM"
    )
    bank_url: str | None = Field(
        default=None,
        validation_alias="REISSUE_BANK_URL",
        description="The cooperating bank's API (card accounts); a case worker needs it.",
    )
    payment_platform_url: str | None = Field(
        default=None,
        validation_alias="REISSUE_PAYMENT_PLATFORM_URL",
        description="The payment platform's API (refunds); a case worker needs it.",
    )
    card_bureau_url: str | None = Field(
        default=None,
        validation_alias="REISSUE_CARD_BUREAU_URL",
        description="The card bureau's API (production orders); a case worker needs it.",
    )
    notification_gateway_url: str | None = Field(
        default=None,
        validation_alias="REISSUE_NOTIFICATION_GATEWAY_URL",
        description="The SMS/app-message gateway; unset (dev only): the outbox is not delivered.",
    )
    simulator_port_base: int = Field(
        default=8310,
        validation_alias="REISSUE_SIMULATOR_PORT_BASE",
        description="`reissue dev`: the partner simulators listen from this port up.",
    )
    payment_webhook_secret: SecretStr | None = Field(
        default=None,
        validation_alias="REISSUE_PAYMENT_WEBHOOK_SECRET",
        description="The secret the payment platform signs its webhooks with.",
    )
    codec_tokens: SecretStr | None = Field(
        default=None,
        validation_alias="REISSUE_CODEC_TOKENS",
        description="Comma-separated bearer tokens of the codec server's trusted internal "
        "callers (an operator's temporal CLI): they decode and encode.",
    )
    oidc_jwks_url: str | None = Field(
        default=None,
        validation_alias="REISSUE_OIDC_JWKS_URL",
        description="The OIDC provider's JWKS: the codec server verifies the Web UI users' "
        "access tokens with it (required for the codec server in production).",
    )
    codec_oidc_audience: str = Field(
        default="card-reissue-codec",
        validation_alias="REISSUE_CODEC_OIDC_AUDIENCE",
        description="The audience the Web UI users' access tokens must carry.",
    )
    codec_ui_origin: str = Field(
        default="http://localhost:8233", validation_alias="REISSUE_CODEC_UI_ORIGIN"
    )
    codec_max_body_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, validation_alias="REISSUE_CODEC_MAX_BODY_BYTES"
    )
    demo_pace_seconds: float = Field(
        default=45.0, gt=0, validation_alias="REISSUE_DEMO_PACE_SECONDS"
    )
    graceful_shutdown_seconds: float = Field(
        default=20.0, ge=0, validation_alias="REISSUE_GRACEFUL_SHUTDOWN_SECONDS"
    )

    @model_validator(mode="after")
    def _no_plaintext_in_production(self) -> Self:
        if self.environment == "production" and self.allow_plaintext_payloads:
            raise ValueError(
                "REISSUE_ALLOW_PLAINTEXT_PAYLOADS is for local experiments; production "
                "always refuses unencrypted payloads"
            )
        return self

    def require_database_url(self) -> str:
        """DATABASE_URL, or in dev mode the database a `reissue dev` stack wrote down under data_dir."""
        if self.database_url:
            return self.database_url
        if self.environment == "dev":
            written = self.data_dir / DATABASE_URL_FILE
            if written.is_file():
                return written.read_text(encoding="utf-8").strip()
        raise SystemExit("DATABASE_URL is not set (or start `reissue dev` for the embedded one)")

    def require_partner_url(self, system: Partner) -> str:
        """The partner system's URL, or in dev mode its simulator's a `reissue dev` stack runs."""
        field, variable = _PARTNER_URLS[system]
        url: str | None = getattr(self, field)
        if url:
            return url
        if self.environment == "dev":
            written = self.data_dir / partner_url_file(system)
            if written.is_file():
                return written.read_text(encoding="utf-8").strip()
        raise SystemExit(f"{variable} is not set (or start `reissue dev` for its simulator)")

    def partner_environment(self) -> dict[str, str]:
        """The partner URLs configured here, as the environment of another process."""
        return {
            variable: url
            for field, variable in _PARTNER_URLS.values()
            if (url := getattr(self, field))
        }

    def keyring(self) -> KeyRing:
        """The payload encryption keys: from the environment, a key file, or (dev) the data folder."""
        if self.codec_keys is not None:
            return KeyRing.parse(self.codec_keys.get_secret_value())
        if self.codec_key_file is not None:
            return KeyRing.load(self.codec_key_file)
        if self.environment == "dev":
            path = self.data_dir / "codec-keys.json"
            if not path.exists():
                KeyRing.generate().save(path)
            return KeyRing.load(path)
        raise SystemExit(
            "no payload encryption key: set REISSUE_CODEC_KEYS or REISSUE_CODEC_KEY_FILE "
            "(REISSUE_ENV=production)"
        )

    def codec_token_list(self) -> list[str]:
        """The codec server's internal callers' tokens; in dev mode one is made and kept in
        the data folder (the dev Web UI's path token). Production may have none: the Web
        UI passes its users' OIDC access tokens."""
        if self.codec_tokens is not None:
            return [t.strip() for t in self.codec_tokens.get_secret_value().split(",") if t.strip()]
        if self.environment == "dev":
            path = self.data_dir / "codec-token"
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(secrets.token_urlsafe(24))
            return [path.read_text().strip()]
        return []

    def webhook_secret(self) -> str:
        """The payment platform's webhook signing secret."""
        if self.payment_webhook_secret is not None:
            return self.payment_webhook_secret.get_secret_value()
        if self.environment == "dev":
            return DEV_WEBHOOK_SECRET
        raise SystemExit("REISSUE_PAYMENT_WEBHOOK_SECRET must be set when REISSUE_ENV=production")

    def case_secret(self) -> str:
        """The HMAC secret behind workflow IDs and person keys."""
        if self.hash_secret is not None:
            return self.hash_secret.get_secret_value()
        if self.environment == "dev":
            return DEV_HASH_SECRET
        raise SystemExit("REISSUE_HASH_SECRET must be set when REISSUE_ENV=production")
