"""A case worker: settings -> pool -> activities -> client -> worker, closed in reverse."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Sequence
from contextlib import suppress
from datetime import timedelta

import asyncpg
import structlog
from aiohttp import web
from temporalio.client import Client
from temporalio.service import TLSConfig
from temporalio.worker import Worker

from activities import all_activities
from activities.db import create_pool
from schemas.converter import data_converter
from workers.logging import CaseLogInterceptor
from workers.settings import Settings
from workers.telemetry import runtime
from workflows import WORKFLOWS

__all__ = ["build_bare_worker", "build_worker", "connect_client", "run_worker"]

log = structlog.get_logger(__name__)


async def connect_client(settings: Settings) -> Client:
    """A client for the configured cluster: plain, mTLS (self-hosted or Cloud) or API key."""
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
    )


def build_worker(
    client: Client, pool: asyncpg.Pool, settings: Settings, *, task_queue: str | None = None
) -> Worker:
    """A worker for the case workflow and every activity it calls."""
    acts: Sequence[object] = all_activities(pool, hash_secret=settings.case_secret())
    return Worker(
        client,
        task_queue=task_queue or settings.task_queue,
        workflows=list(WORKFLOWS),
        activities=list(acts),  # type: ignore[arg-type]
        interceptors=[CaseLogInterceptor()],
        max_concurrent_activities=settings.max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.max_concurrent_workflow_tasks,
        max_concurrent_workflow_task_polls=settings.workflow_task_pollers,
        max_concurrent_activity_task_polls=settings.activity_task_pollers,
        max_cached_workflows=settings.max_cached_workflows,
        graceful_shutdown_timeout=timedelta(seconds=settings.graceful_shutdown_seconds),
    )


def build_bare_worker(client: Client, settings: Settings) -> Worker:
    """The benchmark's bare-Temporal reference worker, tuned exactly like a case worker."""
    from activities.noop import noop
    from workflows.bare import BareCaseWorkflow

    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[BareCaseWorkflow],
        activities=[noop],
        max_concurrent_activities=settings.max_concurrent_activities,
        max_concurrent_workflow_tasks=settings.max_concurrent_workflow_tasks,
        max_concurrent_workflow_task_polls=settings.workflow_task_pollers,
        max_concurrent_activity_task_polls=settings.activity_task_pollers,
        max_cached_workflows=settings.max_cached_workflows,
        graceful_shutdown_timeout=timedelta(seconds=settings.graceful_shutdown_seconds),
    )


async def _serve_health(
    settings: Settings, client: Client, pool: asyncpg.Pool | None, run: asyncio.Task[None]
) -> web.AppRunner | None:
    """`/healthz` (the worker runs) and `/readyz` (it also reaches Temporal and PostgreSQL)."""
    if settings.health_port is None:
        return None

    async def healthz(_: web.Request) -> web.Response:
        return web.Response(status=503 if run.done() else 200, text="worker")

    async def readyz(_: web.Request) -> web.Response:
        try:
            await client.service_client.check_health()
            if pool is not None:
                async with pool.acquire() as conn:
                    await conn.fetchval("SELECT 1")
        except Exception as e:  # any failure means: do not send traffic here yet
            return web.Response(status=503, text=f"not ready: {type(e).__name__}")
        return web.Response(status=503 if run.done() else 200, text="ready")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", settings.health_port).start()
    return runner


async def run_worker(
    settings: Settings, *, stop: asyncio.Event | None = None, bare: bool = False
) -> None:
    """Run until SIGTERM/SIGINT (or `stop`), then shut down gracefully."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    pool = (
        None
        if bare
        else await create_pool(settings.require_database_url(), max_size=settings.db_pool_size)
    )
    try:
        client = await connect_client(settings)
        worker = (
            build_bare_worker(client, settings)
            if pool is None
            else build_worker(client, pool, settings)
        )
        log.info(
            "worker started", task_queue=settings.task_queue, namespace=settings.temporal_namespace
        )
        run = asyncio.create_task(worker.run())
        health = await _serve_health(settings, client, pool, run)
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({run, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not run.done():
            log.info("worker shutting down")
            await worker.shutdown()
        await run
        if health is not None:
            await health.cleanup()
    finally:
        if pool is not None:
            await pool.close()
