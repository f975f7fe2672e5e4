"""A case worker: settings -> pool -> activities -> client -> worker, closed in reverse."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from datetime import timedelta
from typing import Any, Protocol

import asyncpg
import structlog
from aiohttp import web
from temporalio.client import Client
from temporalio.service import TLSConfig
from temporalio.worker import Interceptor, Worker

from reissue.activities import Partners, all_activities
from reissue.activities.db import create_pool
from reissue.activities.partners import (
    HttpBank,
    HttpCardBureau,
    HttpNotificationGateway,
    HttpPaymentPlatform,
)
from reissue.schemas.converter import data_converter
from reissue.workers.dispatcher import dispatch_forever, lapse_forever
from reissue.workers.logging import CaseLogInterceptor
from reissue.workers.settings import Settings
from reissue.workers.telemetry import runtime
from reissue.workers.tracing import configure_tracing, tracing_interceptors
from reissue.workflows import WORKFLOWS

__all__ = [
    "WorkerFactory",
    "build_worker",
    "connect_client",
    "partners_over_http",
    "run_worker",
    "tuned_worker",
]

log = structlog.get_logger(__name__)


async def connect_client(settings: Settings, *, service: str = "worker") -> Client:
    """A client for the configured cluster: plain, mTLS (self-hosted or Cloud) or API key.
    With an OTLP endpoint in the environment, its calls (and a worker's tasks) are
    traced as `service`."""
    tls: TLSConfig | bool = False
    if settings.temporal_tls_cert and settings.temporal_tls_key:
        tls = TLSConfig(
            client_cert=settings.temporal_tls_cert.read_bytes(),
            client_private_key=settings.temporal_tls_key.read_bytes(),
            server_root_ca_cert=(
                settings.temporal_tls_ca.read_bytes() if settings.temporal_tls_ca else None
            ),
        )
    api_key = settings.temporal_api_key.get_secret_value() if settings.temporal_api_key else None
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(
            settings.keyring(), refuse_plaintext=not settings.allow_plaintext_payloads
        ),
        runtime=runtime(settings.metrics_address),
        tls=tls or api_key is not None,
        api_key=api_key,
        interceptors=tracing_interceptors(configure_tracing(service)),
    )


def tuned_worker(
    client: Client,
    settings: Settings,
    *,
    workflows: Sequence[type],
    activities: Sequence[Callable[..., Any]],
    task_queue: str | None = None,
    interceptors: Sequence[Interceptor] = (),
) -> Worker:
    """A worker with the configured concurrency, cache and shutdown grace."""
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=list(workflows),
        activities=list(activities),
        interceptors=list(interceptors),
        max_concurrent_activities=settings.max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.max_concurrent_workflow_tasks,
        max_concurrent_workflow_task_polls=settings.workflow_task_pollers,
        max_concurrent_activity_task_polls=settings.activity_task_pollers,
        max_cached_workflows=settings.max_cached_workflows,
        graceful_shutdown_timeout=timedelta(seconds=settings.graceful_shutdown_seconds),
    )


def partners_over_http(settings: Settings) -> Partners:
    """The partner systems at their configured URLs (a case worker needs every one)."""
    return Partners(
        bank=HttpBank(settings.require_partner_url("bank")),
        payments=HttpPaymentPlatform(settings.require_partner_url("payments")),
        bureau=HttpCardBureau(settings.require_partner_url("bureau")),
    )


def build_worker(
    client: Client,
    pool: asyncpg.Pool | None,
    settings: Settings,
    *,
    task_queue: str | None = None,
    partners: Partners | None = None,
) -> Worker:
    """A worker for the case workflows and every activity they call."""
    if pool is None:
        raise ValueError("a case worker needs the system-of-record database")
    return tuned_worker(
        client,
        settings,
        workflows=WORKFLOWS,
        activities=all_activities(
            pool,
            hash_secret=settings.case_secret(),
            partners=partners or partners_over_http(settings),
        ),
        task_queue=task_queue,
        interceptors=[CaseLogInterceptor()],
    )


class WorkerFactory(Protocol):
    """Makes the worker `run_worker` runs: from the client, the pool (None when it needs
    no database) and the partner adapters (None likewise), which `run_worker` closes."""

    def __call__(
        self,
        client: Client,
        pool: asyncpg.Pool | None,
        settings: Settings,
        *,
        partners: Partners | None = None,
    ) -> Worker: ...


async def _serve_health(
    settings: Settings,
    client: Client,
    pool: asyncpg.Pool | None,
    running: Sequence[asyncio.Task[None]],
) -> web.AppRunner | None:
    """`/healthz` (the worker and the loops beside it run: outbox, standing reports) and `/readyz` (they
    also reach Temporal and PostgreSQL)."""

    def stopped() -> bool:
        return any(task.done() for task in running)

    if settings.health_port is None:
        return None

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(status=503 if stopped() else 200, text="worker")

    async def readyz(_: web.Request) -> web.Response:
        try:
            await client.service_client.check_health()
            if pool is not None:
                async with pool.acquire() as conn:
                    await conn.fetchval("SELECT 1")
        except Exception as e:  # any failure means: do not send traffic here yet
            return web.Response(status=503, text=f"not ready: {type(e).__name__}")
        return web.Response(status=503 if stopped() else 200, text="ready")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", settings.health_port).start()
    return runner


async def run_worker(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    build: WorkerFactory = build_worker,
    database: bool = True,
) -> None:
    """Run until SIGTERM/SIGINT (or `stop`), then shut down gracefully.

    `build` makes the worker (by default the case worker); `database=False` runs
    one that needs no PostgreSQL.
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    if database and settings.environment == "production" and not settings.notification_gateway_url:
        # Refused before anything starts: no worker polling without its dispatcher.
        raise SystemExit("REISSUE_NOTIFICATION_GATEWAY_URL must be set when REISSUE_ENV=production")
    closing: list[Callable[[], Awaitable[None]]] = []
    pool = (
        await create_pool(settings.require_database_url(), max_size=settings.db_pool_size)
        if database
        else None
    )
    try:
        client = await connect_client(settings)
        partners = partners_over_http(settings) if database else None
        if partners is not None:
            closing.append(partners.aclose)
        worker = build(client, pool, settings, partners=partners)
        log.info(
            "worker started", task_queue=settings.task_queue, namespace=settings.temporal_namespace
        )
        run = asyncio.create_task(worker.run())
        beside: list[asyncio.Task[None]] = []
        if pool is not None and settings.notification_gateway_url:
            gateway = HttpNotificationGateway(settings.notification_gateway_url)
            beside.append(asyncio.create_task(dispatch_forever(pool, gateway)))
            closing.append(gateway.aclose)
        if pool is not None and partners is not None:
            beside.append(asyncio.create_task(lapse_forever(pool, partners.bank)))
        health = await _serve_health(settings, client, pool, [run, *beside])
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({run, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not run.done():
            log.info("worker shutting down")
            await worker.shutdown()
        await run
        for task in beside:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
        if health is not None:
            await health.cleanup()
    finally:
        for close in closing:
            await close()
        if pool is not None:
            await pool.close()
