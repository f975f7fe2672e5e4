"""Serving the front door: the partner API (`/v1`) and the staff console
(`/console`), the process behind `reissue api`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from datetime import timedelta

import asyncpg
import uvicorn
from fastapi import FastAPI
from prometheus_client import start_http_server

from reissue.activities.db import create_pool
from reissue.activities.partners import HttpNotificationGateway
from reissue.api.app import build_app
from reissue.api.credentials import TokenVerifier
from reissue.api.housekeeping import prune_forever
from reissue.api.lifting import OneTimeCodes
from reissue.api.metrics import RequestMetrics
from reissue.api.ownership import OwnershipLimits
from reissue.client import ReissueClient
from reissue.console.app import ConsoleConfig, build_console
from reissue.workers.settings import Settings
from reissue.workers.worker import connect_client

__all__ = ["front_door", "front_door_server", "serve_api"]


def front_door(
    client: ReissueClient,
    pool: asyncpg.Pool,
    settings: Settings,
    *,
    tokens: TokenVerifier | None,
    metrics: RequestMetrics | None = None,
) -> FastAPI:
    """The partner API with the staff console mounted at `/console`; with `metrics`,
    every request is counted there. One-time codes for lifting a report by hotline or
    online go through the notification gateway, if one is configured (else only a
    counter lifts a report)."""
    sms = None
    if settings.notification_gateway_url:
        sms = HttpNotificationGateway(settings.notification_gateway_url)
    app = build_app(
        client,
        pool,
        webhook_secret=settings.webhook_secret(),
        tokens=tokens,
        # Production takes OAuth2 access tokens only; API keys are for dev.
        api_keys=settings.environment != "production",
        ownership=OwnershipLimits(
            per_card=settings.api_owner_failures_per_card,
            per_credential=settings.api_owner_failures_per_credential,
            window=timedelta(minutes=settings.api_owner_window_minutes),
        ),
        codes=None
        if sms is None
        else OneTimeCodes(
            secret=settings.case_secret(),
            sms=sms,
            ttl=timedelta(minutes=settings.api_found_code_minutes),
            max_attempts=settings.api_found_code_attempts,
            max_sends=settings.api_found_codes_per_hour,
            window=timedelta(hours=1),
        ),
        # Swagger UI's scripts would run on the console's origin: not in production.
        docs=settings.environment != "production",
        max_body_bytes=settings.max_body_bytes,
    )
    app.mount("/console", build_console(client, pool, ConsoleConfig.from_settings(settings)))
    if metrics is not None:
        metrics.install(app)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pruning = asyncio.create_task(prune_forever(pool))
        try:
            yield
        finally:
            pruning.cancel()
            with suppress(asyncio.CancelledError):
                await pruning
            if sms is not None:
                await sms.aclose()

    app.router.lifespan_context = lifespan
    return app


def front_door_server(
    client: ReissueClient,
    pool: asyncpg.Pool,
    settings: Settings,
    *,
    tokens: TokenVerifier | None,
    metrics: RequestMetrics | None = None,
) -> uvicorn.Server:
    """The front door on the configured address, writing no access log (paths carry case
    IDs only; the log stays free of requests)."""
    return uvicorn.Server(
        uvicorn.Config(
            front_door(client, pool, settings, tokens=tokens, metrics=metrics),
            host=settings.api_host,
            port=settings.api_port,
            access_log=False,
            log_level="warning",
        )
    )


async def serve_api(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Serve `/v1` until SIGTERM/SIGINT (or `stop`)."""
    tokens = None
    if settings.api_jwks_url:
        tokens = TokenVerifier(
            settings.api_jwks_url,
            issuer=settings.api_jwt_issuer,
            audience=settings.api_jwt_audience,
        )
    elif settings.environment == "production":
        raise SystemExit("REISSUE_API_JWKS_URL must be set when REISSUE_ENV=production")
    temporal = await connect_client(settings, service="api")
    pool = await create_pool(settings.require_database_url(), max_size=settings.db_pool_size)
    client = ReissueClient(
        temporal, task_queue=settings.task_queue, hash_secret=settings.case_secret()
    )
    metrics = scraped = None
    if settings.api_metrics_port is not None:
        metrics = RequestMetrics()
        scraped, _ = start_http_server(
            settings.api_metrics_port, addr=settings.api_metrics_host, registry=metrics.registry
        )
    server = front_door_server(client, pool, settings, tokens=tokens, metrics=metrics)
    try:
        if stop is None:
            await server.serve()
        else:
            serving = asyncio.create_task(server.serve())
            await stop.wait()
            server.should_exit = True
            await serving
    finally:
        if scraped is not None:
            scraped.shutdown()
            scraped.server_close()
        await pool.close()
