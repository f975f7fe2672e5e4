"""Configuration from the environment (and an optional `.env` file), read once at start."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEV_HASH_SECRET", "Settings"]

# Only for the embedded dev stack and tests; production must configure its own.
DEV_HASH_SECRET = "dev-only-case-id-secret"


class Settings(BaseSettings):
    """Everything a worker, the CLI or the dev stack needs to know about its surroundings."""

    model_config = SettingsConfigDict(
        env_file=None, extra="ignore", populate_by_name=True, case_sensitive=False
    )

    environment: Literal["dev", "production"] = Field(default="dev", validation_alias="REISSUE_ENV")
    temporal_address: str = Field(default="localhost:7233", validation_alias="TEMPORAL_ADDRESS")
    temporal_namespace: str = Field(default="default", validation_alias="TEMPORAL_NAMESPACE")
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
    db_pool_size: int = Field(default=10, ge=1, validation_alias="REISSUE_DB_POOL_SIZE")
    demo_pace_seconds: float = Field(
        default=45.0, gt=0, validation_alias="REISSUE_DEMO_PACE_SECONDS"
    )
    graceful_shutdown_seconds: float = Field(
        default=20.0, ge=0, validation_alias="REISSUE_GRACEFUL_SHUTDOWN_SECONDS"
    )

    def require_database_url(self) -> str:
        """DATABASE_URL, or in dev mode the database of a `reissue dev` stack under data_dir."""
        if self.database_url:
            return self.database_url
        if self.environment == "dev":
            from workers.stack import dev_database_url

            found = dev_database_url(self.data_dir)
            if found:
                return found
        raise SystemExit("DATABASE_URL is not set (or start `reissue dev` for the embedded one)")

    def case_secret(self) -> str:
        """The HMAC secret behind workflow IDs and person keys."""
        if self.hash_secret is not None:
            return self.hash_secret.get_secret_value()
        if self.environment == "dev":
            return DEV_HASH_SECRET
        raise SystemExit("REISSUE_HASH_SECRET must be set when REISSUE_ENV=production")
