"""Operator commands: case lists, the operations report, the invariant check."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from reissue.cli._common import (
    _client,
    _run,
    _settings,
    console,
)
from reissue.schemas.clock import beijing
from reissue.schemas.enums import (
    AwaitingParty,
    Stage,
)

commands = typer.Typer()
cases_app = typer.Typer(help="Lists of cases from Temporal visibility.", no_args_is_help=True)


def _filter(**kw: Any) -> Any:
    from reissue.ops.operations import CaseFilter

    return CaseFilter(task_queue=_settings().task_queue, **kw)


@cases_app.command("list")
def cases_list(
    stage: Annotated[Stage | None, typer.Option(help="Only this stage.")] = None,
    district: Annotated[str | None, typer.Option(help="Only this district code.")] = None,
    awaiting: Annotated[AwaitingParty | None, typer.Option(help="Waiting for this party.")] = None,
    assigned_to: Annotated[str | None, typer.Option(help="Claimed by this reviewer.")] = None,
    unclaimed: Annotated[bool, typer.Option(help="Only cases nobody has claimed.")] = False,
    overdue: Annotated[bool, typer.Option(help="Past their current deadline.")] = False,
    sla_breached: Annotated[bool, typer.Option(help="Review SLA breached.")] = False,
    older_than_days: Annotated[
        int | None, typer.Option(help="Opened more than N days ago.")
    ] = None,
    include_closed: Annotated[bool, typer.Option("--all", help="Closed cases too.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 200,
) -> None:
    """List cases; prints the Web UI query that shows the same list."""
    from reissue.ops.operations import list_cases
    from reissue.workers.worker import connect_client

    flt = _filter(
        stage=stage,
        district=district,
        awaiting=awaiting,
        assigned_to=assigned_to,
        unclaimed=unclaimed,
        overdue=overdue,
        sla_breached=True if sla_breached else None,
        older_than_days=older_than_days,
        include_closed=include_closed,
    )
    now = datetime.now(UTC)
    query = flt.query(now=now)

    async def go() -> list[Any]:
        return await list_cases(await connect_client(_settings()), query, limit=limit)

    rows = _run(go())
    table = Table(
        "workflow ID",
        "stage",
        "waiting for",
        "district",
        "category",
        "round",
        "SLA",
        "claimed by",
        "deadline",
        "age (days)",
        title=f"{len(rows)} case(s)",
    )
    for r in rows:
        table.add_row(
            r.workflow_id,
            r.stage,
            r.awaiting,
            r.district,
            r.category,
            str(r.correction_round),
            "breached" if r.sla_breached else "",
            r.assigned_to or "",
            beijing(r.deadline) if r.deadline else "",
            str(r.age_days(now)),
        )
    console.print(table)
    console.print(f"Web UI query: [bold]{query}[/]", soft_wrap=True)


@commands.command()
def report(
    out: Annotated[Path, typer.Option(help="Folder for report.csv and report.png.")] = Path("."),
    include_closed: Annotated[bool, typer.Option("--all/--open", help="Closed cases too.")] = True,
) -> None:
    """Counts by stage and district, SLA breaches, ageing: table, CSV and PNG chart."""
    from reissue.ops.operations import AGE_BUCKETS, build_report
    from reissue.workers.worker import connect_client

    now = datetime.now(UTC)
    query = _filter(include_closed=include_closed).query(now=now)

    async def go() -> Any:
        return await build_report(await connect_client(_settings()), query, now=now)

    rep = _run(go())
    stages = Table("stage", "cases", title=f"{rep.total} case(s) by stage")
    for s, n in sorted(rep.by_stage.items()):
        stages.add_row(s, str(n))
    districts = Table("district", "cases", title="by district")
    for d, n in sorted(rep.by_district.items()):
        districts.add_row(d, str(n))
    ageing = Table("age of open cases", "cases", title="ageing")
    for label, _, _ in AGE_BUCKETS:
        ageing.add_row(label, str(rep.ageing[label]))
    console.print(stages, districts, ageing)
    console.print(f"SLA breaches: {rep.sla_breached_open} open, {rep.sla_breached_total} in all")
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.csv").write_text(rep.to_csv(), encoding="utf-8")
    rep.to_png(out / "report.png")
    console.print(f"Wrote {out / 'report.csv'} and {out / 'report.png'}")
    console.print(f"Web UI query: [bold]{query}[/]", soft_wrap=True)


@commands.command("check-invariants")
def check_invariants_command(
    verify_days: Annotated[
        float, typer.Option(help="Also cross-check histories of cases closed in the last N days.")
    ] = 1.0,
) -> None:
    """Report every violation of the system's invariants; exit 1 if there is any."""
    from datetime import timedelta

    from reissue.activities.db import create_pool
    from reissue.ops.invariants import check_invariants

    async def go() -> list[Any]:
        settings = _settings()
        pool = await create_pool(settings.require_database_url())
        try:
            async with _client() as client:
                return await check_invariants(
                    client.temporal,
                    pool,
                    task_queue=settings.task_queue,
                    verify_closed_since=datetime.now(UTC) - timedelta(days=verify_days),
                )
        finally:
            await pool.close()

    violations = _run(go())
    if not violations:
        console.print("[green]No violations.[/]")
        return
    table = Table("rule", "subject", "detail", title=f"{len(violations)} violation(s)")
    for v in violations:
        table.add_row(v.rule, v.subject, v.detail)
    console.print(table)
    raise typer.Exit(1)
