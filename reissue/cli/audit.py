"""`reissue audit …`: export, replay and verify case histories."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from reissue.cli._common import (
    CaseArg,
    _case_id,
    _client,
    _run,
    _settings,
    console,
    err_console,
)

audit_app = typer.Typer(help="Export, replay and verify case histories.", no_args_is_help=True)


@audit_app.command("export")
def audit_export(
    case: CaseArg,
    out: Annotated[Path, typer.Option(help="Folder for the files.")] = Path("audit"),
    unmask: Annotated[
        bool, typer.Option(help="Show personal data (needs payloads you can decode).")
    ] = False,
) -> None:
    """Write the case's history (Temporal JSON) and its timeline (Markdown and HTML)."""
    from reissue.ops.audit import export

    async def go() -> list[Path]:
        async with _client() as client:
            return await export(client.temporal, _case_id(client, case), out, unmask=unmask)

    for path in _run(go()):
        console.print(f"Wrote {path}")


def _load_workflow_class(spec: str) -> type:
    import importlib

    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


@audit_app.command("replay")
def audit_replay(
    cases: Annotated[list[str] | None, typer.Argument(help="Workflow IDs or card numbers.")] = None,
    file: Annotated[
        list[Path] | None, typer.Option(help="A history JSON file (repeatable).")
    ] = None,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Every *.json in a folder and its subfolders.")
    ] = None,
    closed_since: Annotated[
        datetime | None, typer.Option(help="Every case closed at or after this time (UTC).")
    ] = None,
    closed_until: Annotated[datetime | None, typer.Option(help="... and before this time.")] = None,
    workflow: Annotated[
        str | None, typer.Option(help="Replay against module:Class instead of today's code.")
    ] = None,
) -> None:
    """Replay histories against the current workflow code; exit 1 on any divergence."""
    from temporalio.client import WorkflowHistory

    from reissue.ops.audit import load_history_file, replay
    from reissue.schemas.converter import data_converter
    from reissue.workflows import WORKFLOWS

    async def go() -> list[Any]:
        histories: list[tuple[str, WorkflowHistory]] = []
        paths = list(file or []) + (sorted(directory.rglob("*.json")) if directory else [])
        histories += [(str(p), load_history_file(p)) for p in paths]
        if cases or closed_since or closed_until:
            async with _client() as client:
                for case in cases or []:
                    wid = _case_id(client, case)
                    histories.append((wid, await client.handle(wid).fetch_history()))
                if closed_since or closed_until:
                    types = ", ".join(f"'{w.__name__}'" for w in WORKFLOWS)
                    parts = [f"WorkflowType IN ({types})", "ExecutionStatus != 'Running'"]
                    if closed_since:
                        parts.append(f"CloseTime >= '{closed_since:%Y-%m-%dT%H:%M:%SZ}'")
                    if closed_until:
                        parts.append(f"CloseTime < '{closed_until:%Y-%m-%dT%H:%M:%SZ}'")
                    query = " AND ".join(parts)
                    async for h in client.temporal.list_workflows(query).map_histories():
                        histories.append((h.workflow_id, h))
        if not histories:
            err_console.print("Nothing to replay: give cases, --file, --dir or --closed-since.")
            raise typer.Exit(2)
        workflows = [_load_workflow_class(workflow)] if workflow else None
        kwargs = {"workflows": workflows} if workflows else {}
        return await replay(histories, data_converter(_settings().keyring()), **kwargs)

    outcomes = _run(go())
    table = Table("history", "workflow ID", "result", title="Replay against current code")
    for o in outcomes:
        where = f" at event {o.event_id} ({o.event_type})" if o.event_id else ""
        result = "[green]clean[/]" if o.ok else f"[red]diverged{where}[/]: {o.error}"
        table.add_row(o.source, o.workflow_id, result)
    console.print(table)
    bad = [o for o in outcomes if not o.ok]
    console.print(f"{len(outcomes) - len(bad)} clean, {len(bad)} diverged")
    if bad:
        raise typer.Exit(1)


@audit_app.command("verify")
def audit_verify(case: CaseArg) -> None:
    """Cross-check the case's history against the audit log and registry in PostgreSQL."""
    from reissue.activities.db import create_pool
    from reissue.ops.audit import verify

    async def go() -> list[str]:
        pool = await create_pool(_settings().require_database_url())
        try:
            async with _client() as client:
                return await verify(client.temporal, pool, _case_id(client, case))
        finally:
            await pool.close()

    problems = _run(go())
    if not problems:
        console.print("[green]History and registry agree.[/]")
        return
    for problem in problems:
        console.print(f"[red]✗[/] {problem}")
    raise typer.Exit(1)


# ----------------------------------------------------------------------------- policy
