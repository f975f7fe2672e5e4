"""What every command shares: settings, the client, running a call and reporting its refusal."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from reissue.client._client import ReissueClient
from reissue.workers.settings import Settings

console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

CaseArg = Annotated[
    str, typer.Argument(help="Workflow ID (reissue-…) or the 9-character card number.")
]
JsonOpt = Annotated[
    Path | None,
    typer.Option("--json", help="Read the whole event as JSON from this file ('-' for stdin)."),
]


def _settings() -> Settings:
    """The process's settings; without REISSUE_ENV (or with a bad value) it refuses to
    start, exit 2."""
    try:
        return Settings()
    except ValidationError as e:
        if any(err["loc"] == ("REISSUE_ENV",) for err in e.errors()):
            err_console.print(
                "[red]REISSUE_ENV must be set: dev or production[/] (dev turns on public "
                "default secrets: `reissue dev` says it itself; export it beside a dev stack)"
            )
            raise typer.Exit(2) from None
        _fail_validation(e)


def _run(coro: Awaitable[T]) -> T:
    async def wrapped() -> T:
        return await coro

    try:
        return asyncio.run(wrapped())
    except ValidationError as e:
        _fail_validation(e)
    except WorkflowUpdateFailedError as e:
        err_console.print(f"[red]Refused by the case:[/] {e.cause}")
        raise typer.Exit(3) from None
    except RPCError as e:
        err_console.print(f"[red]Temporal:[/] {e.message}")
        raise typer.Exit(4) from None
    except RuntimeError as e:
        if "connect" not in str(e):
            raise
        err_console.print(
            f"[red]Cannot reach Temporal at {_settings().temporal_address}[/] "
            "(is `reissue dev` or a cluster running? set TEMPORAL_ADDRESS)"
        )
        raise typer.Exit(4) from None


def _fail_validation(e: ValidationError) -> NoReturn:
    err_console.print("[red]Invalid input:[/]")
    for error in e.errors():
        field = ".".join(str(p) for p in error["loc"]) or "(input)"
        err_console.print(f"  {field}: {error['msg']}")
    raise typer.Exit(2)


def _event(model: type[M], json_file: Path | None, fields: dict[str, Any]) -> M:
    """The event from --json, or from the command's options."""
    try:
        if json_file is not None:
            text = sys.stdin.read() if str(json_file) == "-" else json_file.read_text("utf-8")
            return model.model_validate_json(text)
        return model.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as e:
        _fail_validation(e)


@asynccontextmanager
async def _client() -> AsyncIterator[ReissueClient]:
    from reissue.workers.worker import connect_client

    settings = _settings()
    temporal = await connect_client(settings)
    yield ReissueClient(
        temporal, task_queue=settings.task_queue, hash_secret=settings.case_secret()
    )


def _case_id(client: ReissueClient, case: str) -> str:
    return case if case.startswith("reissue-") else client.case_id_for(case)


def _act(case: str, action: Callable[[ReissueClient, str], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        async with _client() as client:
            return await action(client, _case_id(client, case))

    return _run(go())


# ----------------------------------------------------------------------------- running
