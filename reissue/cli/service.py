"""Commands that run the service's processes: worker, codec server, migrations, namespace setup."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from reissue.cli._common import (
    _run,
    _settings,
    console,
    err_console,
)
from reissue.workers.logging import configure_logging

if TYPE_CHECKING:
    from reissue.activities.db import Connection

T = TypeVar("T")

commands = typer.Typer()


@commands.command()
def worker(
    bare: Annotated[
        bool, typer.Option(hidden=True, help="Run the benchmark's bare-Temporal reference.")
    ] = False,
) -> None:
    """Run a case worker from the environment's configuration until SIGTERM."""
    from reissue.workers.worker import run_worker

    settings = _settings()
    configure_logging(fmt=settings.log_format)
    if bare:
        from reissue.devtools.bench import build_bare_worker

        asyncio.run(run_worker(settings, build=build_bare_worker, database=False))
    else:
        asyncio.run(run_worker(settings))


@commands.command("codec-server")
def codec_server() -> None:
    """Serve /decode (and /encode for internal callers) for the Web UI, from configuration."""
    import signal

    from reissue.workers.codec_server import app_from_settings, serve

    settings = _settings()
    configure_logging(fmt=settings.log_format)

    async def go() -> None:
        runner = await serve(
            app_from_settings(settings), host=settings.codec_host, port=settings.codec_port
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        console.print(f"Codec server on port {settings.codec_port} for {settings.codec_ui_origin}")
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    with suppress(KeyboardInterrupt):
        asyncio.run(go())


@commands.command()
def migrate() -> None:
    """Apply pending database migrations to DATABASE_URL."""
    from reissue.devtools.stack import migrate as apply

    applied = asyncio.run(apply(_settings().require_database_url()))
    console.print(f"Applied: {', '.join(applied) or 'nothing pending'}")


@commands.command("setup-namespace")
def setup_namespace() -> None:
    """Register the custom search attributes on TEMPORAL_NAMESPACE (safe to run again)."""
    from reissue.ops.operations import ensure_search_attributes
    from reissue.workers.worker import connect_client

    async def go() -> tuple[list[str], list[str]]:
        return await ensure_search_attributes(await connect_client(_settings()))

    added, present = _run(go())
    console.print(
        f"Added: {', '.join(added) or 'none'}; already there: {', '.join(present) or 'none'}"
    )


@commands.command()
def api() -> None:
    """Serve the front door until SIGTERM: the partner HTTP API (/v1, OpenAPI at /docs)
    and the staff console (/console)."""
    from reissue.api.server import serve_api

    settings = _settings()
    configure_logging(fmt=settings.log_format)
    console.print(
        f"Partner API on http://{settings.api_host}:{settings.api_port}/docs, "
        f"staff console on http://{settings.api_host}:{settings.api_port}/console/"
    )
    asyncio.run(serve_api(settings))


api_key_app = typer.Typer(help="Partner API keys (stored hashed).", no_args_is_help=True)


@api_key_app.command("create")
def api_key_create(
    partner: Annotated[
        str,
        typer.Argument(
            help="hotline, counter, online, unit_portal, school_portal, payment_platform, "
            "card_bureau or operations."
        ),
    ],
    org_code: Annotated[
        str | None, typer.Option(help="For a portal: its unit's credit code or school code.")
    ] = None,
    channel: Annotated[
        str | None,
        typer.Option(
            help="For a hotline: which one it reports on (hotline_12333, the default, or "
            "hotline_12393). The counter's key reports on counter, the online service's "
            "on online."
        ),
    ] = None,
    acts_for: Annotated[
        str | None,
        typer.Option(
            help="The one clerk or officer (staff ID) the key acts for: events naming who "
            "acted (received_by, handed_over_by, responder) must name this person."
        ),
    ] = None,
) -> None:
    """Create a key; it is shown once, only its hash is kept."""
    from reissue.api.credentials import create_key

    async def go(conn: Connection) -> str:
        return await create_key(
            conn, partner, org_code=org_code, channel=channel, acts_for=acts_for
        )

    console.print(_with_database(go))


staff_app = typer.Typer(
    help="Local staff accounts of the console (dev; production logs in through OIDC).",
    no_args_is_help=True,
)


@staff_app.command("add")
def staff_add(
    user_id: Annotated[str, typer.Argument(help="The staff ID (what the audit log records).")],
    role: Annotated[
        list[str],
        typer.Option("--role", help="reviewer, supervisor, operations or auditor (repeatable)."),
    ],
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    sso: Annotated[
        bool, typer.Option(help="Logs in through OIDC only (no local password).")
    ] = False,
    oidc_subject: Annotated[
        str | None,
        typer.Option(help='With --sso: bind now to "<issuer> <sub>" (else at first login).'),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option(help="Read the password from standard input (else prompted).")
    ] = False,
) -> None:
    """Add a member of staff, or change their roles, name and login (their sessions end)."""
    from reissue.console.staff import Role, add_user

    try:
        roles = [Role(r) for r in role]
    except ValueError:
        err_console.print("[red]Invalid input:[/] role: one of " + ", ".join(r.value for r in Role))
        raise typer.Exit(2) from None
    if oidc_subject is not None and not sso:
        err_console.print("[red]Invalid input:[/] oidc_subject: only with --sso")
        raise typer.Exit(2)
    password = None
    if sso:
        pass
    elif password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)

    async def go(conn: Connection) -> None:
        await add_user(
            conn,
            user_id,
            roles=roles,
            password=password,
            display_name=name,
            oidc_subject=oidc_subject,
        )

    _with_database(go)
    console.print(f"{user_id.lower()}: {', '.join(r.value for r in roles)}")


@staff_app.command("disable")
def staff_disable(user_id: Annotated[str, typer.Argument(help="The staff ID.")]) -> None:
    """No more logins for this person; their sessions end at once."""
    from reissue.console.staff import disable_user

    async def go(conn: Connection) -> bool:
        return await disable_user(conn, user_id)

    if not _with_database(go):
        err_console.print(f"[red]No enabled member of staff {user_id}[/]")
        raise typer.Exit(1)
    console.print(f"{user_id.lower()}: disabled")


def _with_database(work: Callable[[Connection], Awaitable[T]]) -> T:
    """Run `work` on a connection to the configured database; bad input exits 2."""
    from reissue.activities.db import create_pool

    async def go() -> T:
        pool = await create_pool(_settings().require_database_url())
        try:
            async with pool.acquire() as conn:
                return await work(conn)
        finally:
            await pool.close()

    try:
        return _run(go())
    except ValueError as e:
        err_console.print(f"[red]Invalid input:[/] {e}")
        raise typer.Exit(2) from None
