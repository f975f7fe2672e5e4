"""`reissue policy …`: the versioned case policies in force."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from reissue.cli._common import (
    _event,
    _run,
    _settings,
    console,
    err_console,
)
from reissue.schemas.clock import beijing

policy_app = typer.Typer(help="The versioned case policies in force.", no_args_is_help=True)


@policy_app.command("list")
def policy_list() -> None:
    """Every policy version: where and when it is in force, and its content hash."""
    from reissue.activities.db import create_pool
    from reissue.activities.repositories import policies

    async def go() -> list[Any]:
        pool = await create_pool(_settings().require_database_url())
        try:
            async with pool.acquire() as conn:
                return list(await policies.listing(conn))
        finally:
            await pool.close()

    table = Table("version", "district", "in force from", "until", "content sha256")
    for r in _run(go()):
        table.add_row(
            r["version"],
            r["district"] or "all",
            beijing(r["effective_from"]),
            beijing(r["effective_to"]) if r["effective_to"] else "-",
            r["content_hash"][:16] + "…",
        )
    console.print(table)


@policy_app.command("add")
def policy_add(
    file: Annotated[Path, typer.Argument(help="The policy as JSON (schemas/json/CasePolicy).")],
    effective_from: Annotated[
        datetime, typer.Option(help="When it takes effect, with a zone (+08:00).")
    ],
    district: Annotated[
        str | None, typer.Option(help="Only for this district (default: every district).")
    ] = None,
) -> None:
    """Put a new policy version in force from a moment on (a version is never changed).

    Cases opened from then on are judged by it; cases already open keep theirs."""
    from reissue.activities.db import create_pool
    from reissue.activities.repositories import policies
    from reissue.schemas.identifiers import normalise_district
    from reissue.schemas.policy import CasePolicy

    policy = _event(CasePolicy, file, {})
    if effective_from.tzinfo is None:
        err_console.print("[red]Invalid input:[/]\n  effective_from: give a time zone (+08:00)")
        raise typer.Exit(2)
    if district is not None:
        try:
            district = normalise_district(district)
        except ValueError as e:
            err_console.print(f"[red]Invalid input:[/]\n  district: {e}")
            raise typer.Exit(2) from None

    async def go() -> Any:
        pool = await create_pool(_settings().require_database_url())
        try:
            async with pool.acquire() as conn:
                return await policies.install(
                    conn, policy, effective_from=effective_from, district=district
                )
        finally:
            await pool.close()

    added = _run(go())
    if added is None:
        err_console.print(f"Version {policy.version} exists already; a version is never changed.")
        raise typer.Exit(3)
    console.print(f"Policy {added['version']} in force from {beijing(effective_from)}")
    console.print(f"content sha256 {added['content_hash']}")


# ----------------------------------------------------------------------------- registry
