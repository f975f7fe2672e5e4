"""`reissue case <event> CASE …`: one command per event of the catalogue, derived from
its entry (`contract.Command`): an option per field of the event's model, or the whole
event with `--json FILE`."""

from __future__ import annotations

import inspect
import types
from collections.abc import Iterator
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from reissue.cli._common import CaseArg, JsonOpt, _act, _event, console
from reissue.client._client import ReissueClient
from reissue.schemas.clock import beijing
from reissue.schemas.contract import EVENTS, NOW, Command, Event

__all__ = ["add_event_commands"]


def _bare(annotation: Any) -> Any:
    """The type without Annotated and None."""
    if get_origin(annotation) is Annotated:
        return _bare(get_args(annotation)[0])
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _bare(args[0])
    return annotation


def _fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, FieldInfo]]:
    """Each field's dotted path, a nested model's fields in its place."""
    for name, info in model.model_fields.items():
        inner = _bare(info.annotation)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            yield from _fields(inner, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", info


def _option_type(annotation: Any) -> Any:
    """The option's type for a field; None for what only `--json` can give (a list of
    documents, say)."""
    inner = _bare(annotation)
    if get_origin(inner) is list:
        item = _option_type(get_args(inner)[0])
        return None if item is None else list[item]  # type: ignore[valid-type]
    if isinstance(inner, type) and issubclass(inner, BaseModel):
        return None
    if inner is bool or inner is int or (isinstance(inner, type) and issubclass(inner, Enum)):
        return inner
    return str  # text, identifiers, times (pydantic reads ISO 8601 with a zone)


def _parameter(path: str, info: FieldInfo, command: Command) -> inspect.Parameter | None:
    kind = _option_type(info.annotation)
    if kind is None:
        return None
    name = path.replace(".", "__")
    required = info.is_required() and path not in command.defaults
    text = info.description or path.replace(".", " ").replace("_", " ")
    if path == command.argument:
        values = _bare(info.annotation)
        choices = [*(v.value for v in values), *command.words] if issubclass(values, Enum) else []
        help_ = f"{text}: {'|'.join(choices)}" if choices else text
        return inspect.Parameter(
            name,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=Annotated[str, typer.Argument(help=help_, show_default=False)],
        )
    default = command.defaults.get(path)
    if default == NOW:
        text, default = f"{text} (default: now)", None
    elif default is None and kind is bool:
        default = False if info.is_required() else info.default
    flag = path.replace(".", "-").replace("_", "-")
    named = f"--{flag}/--no-{flag}" if kind is bool else f"--{flag}"
    declared = command.options.get(path, named)
    option = typer.Option(declared, help=f"{text}{' (required)' if required else ''}")
    annotation = kind if kind is bool else kind | None
    return inspect.Parameter(
        name,
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=Annotated[annotation, option],
    )


def _fields_given(command: Command, given: dict[str, Any]) -> dict[str, Any]:
    """The event's fields, nested as the model has them, from the options given."""
    fields: dict[str, Any] = {}
    for name, value in given.items():
        path = name.replace("__", ".")
        if value is None and command.defaults.get(path) == NOW:
            value = datetime.now(UTC)
        if path == command.argument:
            value = command.words.get(value, value)
        if value is None:
            continue  # the model's own default, or its "field required"
        *parents, last = path.split(".")
        into = fields
        for parent in parents:
            into = into.setdefault(parent, {})
        into[last] = value
    return fields


def _shown(answer: BaseModel | None) -> dict[str, Any]:
    if answer is None:
        return {}
    return {
        k: beijing(v)
        if v is None or isinstance(v, datetime)
        else v.value
        if isinstance(v, Enum)
        else v
        for k, v in answer.__dict__.items()
    }


def _command(entry: Event, command: Command) -> Any:
    def run(case: str, json_file: Path | None = None, **given: Any) -> None:
        event = _event(entry.arg, json_file, _fields_given(command, given))

        async def deliver(client: ReissueClient, workflow_id: str) -> BaseModel | None:
            return await client.deliver(workflow_id, entry, event)

        console.print(command.done.format(**_shown(_act(case, deliver))))

    params = [
        inspect.Parameter("case", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=CaseArg)
    ]
    options = [p for path, info in _fields(entry.arg) if (p := _parameter(path, info, command))]
    params += sorted(options, key=lambda p: p.kind)  # the argument first, then the options
    params.append(
        inspect.Parameter(
            "json_file", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=JsonOpt
        )
    )
    run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    run.__doc__ = command.help
    run.__name__ = f"case_{command.name.replace('-', '_')}"
    return run


def add_event_commands(app: typer.Typer, *, except_for: frozenset[str] = frozenset()) -> None:
    """A command for every event of the catalogue that has one (those named in
    `except_for` are written by hand)."""
    for entry in EVENTS:
        if entry.cli is not None and entry.cli.name not in except_for:
            app.command(entry.cli.name)(_command(entry, entry.cli))
