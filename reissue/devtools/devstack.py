"""`reissue dev`: the embedded default stack in one process tree, until Ctrl-C."""

from __future__ import annotations

import asyncio
import secrets
import signal
from contextlib import AsyncExitStack, suppress

import httpx
import structlog
from rich.console import Console

from reissue.activities.db import Connection, create_pool
from reissue.activities.partners import HttpNotificationGateway
from reissue.api.credentials import create_key
from reissue.api.server import front_door_server
from reissue.client import ReissueClient
from reissue.console.staff import Role, add_user
from reissue.devtools.demo import run_demo
from reissue.devtools.simulators import PARTNERS, partner_simulators
from reissue.devtools.stack import (
    DEV_DATABASE,
    EmbeddedPostgres,
    TemporalDevServer,
    ensure_database,
    migrate,
)
from reissue.workers.codec_server import app_from_settings, serve
from reissue.workers.dispatcher import dispatch_forever, lapse_forever
from reissue.workers.settings import DATABASE_URL_FILE, Partner, Settings, partner_url_file
from reissue.workers.worker import build_worker, connect_client, partners_over_http

__all__ = ["DEV_STAFF", "run_dev", "seed_staff"]

# The dev users `reissue dev` seeds: two reviewers (for four eyes), a supervisor,
# operations and an auditor.
DEV_STAFF: dict[str, list[Role]] = {
    "reviewer-01": [Role.REVIEWER],
    "reviewer-02": [Role.REVIEWER],
    "supervisor-01": [Role.SUPERVISOR],
    "ops-01": [Role.OPERATIONS],
    "auditor-01": [Role.AUDITOR],
}


async def seed_staff(conn: Connection) -> str:
    """The dev users, with one new random password for all of them (shown once)."""
    password = secrets.token_urlsafe(12)
    for user_id, roles in DEV_STAFF.items():
        await add_user(conn, user_id, roles=roles, password=password)
    return password


log = structlog.get_logger(__name__)


def _bureau_delay_ms(settings: Settings) -> int:
    """How long the dev stack's card bureau takes to make a card: 20 demo paces, at least
    two minutes (15 minutes at the default pace)."""
    return int(max(20 * settings.demo_pace_seconds, 120) * 1000)


async def run_dev(settings: Settings, *, demo: bool, console: Console) -> None:
    """Temporal dev server + Web UI, PostgreSQL, migrations, a worker, and optionally demo cases."""
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    port = settings.temporal_address.rpartition(":")[2]
    keys = settings.keyring()
    token = settings.codec_token_list()[0]
    ui_origin = f"http://localhost:{settings.ui_port}"
    codec_url = f"http://localhost:{settings.codec_port}/t/{token}"
    server = TemporalDevServer(
        db_file=data_dir / "temporal.db",
        port=int(port),
        ui_port=settings.ui_port,
        namespace=settings.temporal_namespace,
        # The Web UI decodes payloads through our codec server, token in the path.
        extra_args=["--ui-codec-endpoint", codec_url],
    )
    postgres: EmbeddedPostgres | None = None
    simulators = AsyncExitStack()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    codec = await serve(
        app_from_settings(settings, ui_origin=ui_origin),
        host="127.0.0.1",
        port=settings.codec_port,
    )
    try:
        console.print(f"[bold]Codec server[/] on port {settings.codec_port} (key {keys.current})")
        console.print(f"[bold]Starting Temporal dev server[/] (data in {server.db_file})")
        server.start(data_dir / "temporal.log")
        if not settings.database_url:
            console.print(f"[bold]Starting embedded PostgreSQL[/] (data in {data_dir / 'pg'})")
            postgres = EmbeddedPostgres(data_dir / "pg")
            dsn = postgres.dsn_for(DEV_DATABASE)
            await ensure_database(postgres.admin_dsn, dsn)
            settings = settings.model_copy(update={"database_url": dsn})
            # Where CLI commands in other terminals find it (see Settings.require_database_url).
            (data_dir / DATABASE_URL_FILE).write_text(dsn + "\n", encoding="utf-8")
        dsn = settings.require_database_url()
        # The partner systems: each simulator a process of its own, its records in the data folder.
        urls = await simulators.enter_async_context(
            partner_simulators(
                data_dir,
                systems=("notifications", *PARTNERS),
                port_base=settings.simulator_port_base,
                # The bureau takes a while to make a card (the demo's standard order waits
                # for it at CARD_PRODUCTION), then reports it through the front door.
                knobs={"bureau": {"production_delay_ms": _bureau_delay_ms(settings)}},
            )
        )
        for system in ("notifications", *PARTNERS):
            # Where the worker and CLI commands in other terminals find it.
            (data_dir / partner_url_file(system)).write_text(urls[system] + "\n", encoding="utf-8")
        settings = settings.model_copy(
            update={
                "notification_gateway_url": settings.notification_gateway_url
                or urls["notifications"],
                "payment_platform_url": settings.payment_platform_url or urls["payments"],
                "bank_url": settings.bank_url or urls["bank"],
                "card_bureau_url": settings.card_bureau_url or urls["bureau"],
            }
        )
        console.print(
            f"Partner simulators: notification gateway {urls['notifications']} "
            f"(what recipients saw: {urls['notifications']}/_inbox), "
            f"payment platform {urls['payments']} (its orders: {urls['payments']}/_orders), "
            f"bank {urls['bank']}, "
            f"card bureau {urls['bureau']} (its orders: {urls['bureau']}/_orders)"
        )
        applied = await migrate(dsn)
        console.print(f"Migrations applied: {', '.join(applied) or 'none pending'}")
        await server.wait_ready()
        client = await connect_client(settings)
        pool = await create_pool(dsn, max_size=settings.db_pool_size)
        try:
            partners = partners_over_http(settings)
            worker = build_worker(client, pool, settings, partners=partners)
            worker_task = asyncio.create_task(worker.run())
            assert settings.notification_gateway_url is not None
            beside = [
                asyncio.create_task(
                    dispatch_forever(
                        pool, HttpNotificationGateway(settings.notification_gateway_url)
                    )
                ),
                asyncio.create_task(lapse_forever(pool, partners.bank)),
            ]
            console.print(f"Worker polling task queue [bold]{settings.task_queue}[/]")
            reissue = ReissueClient(
                client, task_queue=settings.task_queue, hash_secret=settings.case_secret()
            )
            api = front_door_server(reissue, pool, settings, tokens=None)
            api_task = asyncio.create_task(api.serve())
            async with pool.acquire() as conn:
                # The counter system's dev key acts for one clerk (production names the
                # clerk in each token); the hotline's reports on 12333.
                api_keys = {
                    "hotline": await create_key(conn, "hotline"),
                    "counter": await create_key(conn, "counter", acts_for="counter-01"),
                    "operations": await create_key(conn, "operations"),
                }
                password = await seed_staff(conn)
                bureau_key = await create_key(conn, "card_bureau")
                platform_key = await create_key(conn, "payment_platform")
            # The bureau reports the cards it made (and its failures) through the front
            # door; the payment platform reports payments to its signed webhook.
            front_door = f"http://127.0.0.1:{settings.api_port}"
            callers: dict[Partner, dict[str, str]] = {
                "bureau": {"api_key": bureau_key},
                "payments": {"api_key": platform_key, "webhook_secret": settings.webhook_secret()},
            }
            async with httpx.AsyncClient() as http:
                for system, to in callers.items():
                    (
                        await http.put(
                            f"{settings.require_partner_url(system)}/_report_to",
                            json={"report_url": front_door, **to},
                        )
                    ).raise_for_status()
            console.print(
                f"Partner API on http://{settings.api_host}:{settings.api_port}/docs; dev keys "
                "(shown once, stored hashed):\n"
                + "\n".join(f"  {partner:<10} {key}" for partner, key in api_keys.items())
            )
            console.print(
                f"Staff console on http://localhost:{settings.api_port}/console/; dev users "
                "(password shown once, stored argon2-hashed):\n"
                + "\n".join(f"  {user:<13} {', '.join(DEV_STAFF[user])}" for user in DEV_STAFF)
                + f"\n  password      {password}"
            )
            if demo:
                cases = await run_demo(
                    reissue,
                    pool,
                    secret=settings.case_secret(),
                    pace_seconds=settings.demo_pace_seconds,
                    bank_url=settings.require_partner_url("bank"),
                    payments_url=settings.require_partner_url("payments"),
                )
                console.print(f"Demo: started {len(cases)} cases across every stage")
            console.print(
                f"\n[bold green]Temporal Web UI:[/] {server.ui_url}\n"
                f"Temporal address: {server.address}   PostgreSQL: {dsn}\n"
                "Payloads are encrypted; the Web UI decodes them through the codec server.\n"
                "Try: reissue case show <workflow id>   ·   Ctrl-C to stop\n"
            )
            server_down = asyncio.create_task(server.exited())
            done, _ = await asyncio.wait(
                {worker_task, server_down, asyncio.create_task(stop.wait())},
                return_when=asyncio.FIRST_COMPLETED,
            )
            if server_down in done:
                console.print(
                    f"[red]The Temporal dev server exited ({server_down.result()}); "
                    f"see {data_dir / 'temporal.log'}[/]"
                )
            api.should_exit = True
            await api_task
            for task in beside:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
            if worker_task not in done:
                await worker.shutdown()
            await worker_task
            await partners.aclose()
        finally:
            await pool.close()
    finally:
        server.stop()
        await codec.cleanup()
        await simulators.aclose()
        if postgres is not None:
            postgres.stop()
        console.print("Stopped.")
