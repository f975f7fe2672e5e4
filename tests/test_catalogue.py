"""The catalogue of events is the one place an event is written out: the client, the
command line, the partner API and the console each take it from there."""

from __future__ import annotations

from typing import Any, cast

import pytest
import typer.main
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from reissue.api.app import build_app
from reissue.api.credentials import PARTNER_SCOPES
from reissue.cli.case import case_app
from reissue.client import ReissueClient
from reissue.console.app import build_console
from reissue.schemas import contract as c
from reissue.schemas.case import StaffId
from reissue.schemas.enums import Channel
from reissue.schemas.permissions import PARTNER_CHANNELS, ROLE_ACTIONS, Scope


def _all_paths(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every route the app answers, the included routers' too."""
    paths, routes = set(), list(app.router.routes)
    while routes:
        route = routes.pop()
        included = getattr(route, "original_router", None)
        if included is not None:
            routes.extend(included.routes)
        elif isinstance(route, APIRoute):
            paths |= {(method, route.path) for method in route.methods}
    return paths


def test_every_event_is_in_the_contract_once() -> None:
    names = [e.name for e in c.CATALOGUE]
    assert len(names) == len(set(names))
    assert {(e.kind, e.name) for e in c.CATALOGUE} | {("workflow", c.CASE.name)} == set(c.CONTRACT)


@pytest.mark.parametrize("entry", c.EVENTS, ids=lambda e: e.name)
def test_the_client_has_each_event_under_its_catalogue_name(entry: c.Event) -> None:
    assert entry.client is not None
    method = vars(ReissueClient)[entry.client]
    assert method.entry is entry


def test_the_command_line_has_a_command_per_event() -> None:
    group = typer.main.get_group(case_app)
    commands = {e.cli.name for e in c.EVENTS if e.cli is not None}
    assert commands <= set(group.commands)
    assert {q.cli for q in (c.REGISTRATION, c.STATUS)} <= set(group.commands)
    # Every field of every event is an option (or the argument), except lists of
    # documents, which only `--json` gives; and every command takes `--json`.
    for entry in c.EVENTS:
        if entry.cli is None or entry.cli.name == "submit":
            continue
        params = {p.name for p in group.commands[entry.cli.name].params}
        assert "json_file" in params
        for field in entry.arg.model_fields:
            assert any(p == field or p.startswith(f"{field}__") for p in params), field


def test_the_partner_api_serves_each_event_with_its_scope() -> None:
    app = build_app(cast(ReissueClient, None), cast(Any, None))
    paths = _all_paths(app)
    doc = app.openapi()
    for entry in c.EVENTS:
        if entry.api is None:
            continue
        path = f"/v1/cases/{{case_id}}/{entry.api.path}"
        assert ("POST", path) in paths
        assert doc["paths"][path]["post"]["summary"] == entry.api.summary
        # Some partner kind holds the scope, and the route answers to it alone.
        assert any(entry.api.scope in scopes for scopes in PARTNER_SCOPES.values())
    assert ("POST", "/v1/cases") in paths and ("GET", "/v1/cases/{case_id}") in paths
    assert set(Scope) == set().union(*PARTNER_SCOPES.values())


def test_the_console_has_a_form_per_event_with_a_console_action() -> None:
    app = build_console(cast(ReissueClient, None), cast(Any, None))
    paths = _all_paths(app)
    for entry in c.EVENTS:
        if entry.console is not None:
            assert ("POST", f"/cases/{{case_id}}/{entry.console}") in paths
            assert any(entry.console in actions for actions in ROLE_ACTIONS.values())


class _Staff(BaseModel):
    id: StaffId = Field()


StaffIdField = _Staff.model_fields["id"]


def _names_a_person(model: type[BaseModel], field: str) -> bool:
    """Whether the field holds a staff ID (the clerk, officer or reviewer who acted)."""
    staff_id = {getattr(m, "pattern", None) for m in StaffIdField.metadata}
    return any(getattr(m, "pattern", None) in staff_id for m in model.model_fields[field].metadata)


@pytest.mark.parametrize("entry", [e for e in c.EVENTS if e.api is not None], ids=lambda e: e.name)
def test_who_acted_in_a_partner_event_is_the_credential_s_to_say(entry: c.Event) -> None:
    """A partner route's event that names a person names them in its route's `actor`
    field (which the front door takes from the credential), or the partner sends a
    body of its own that has no such field."""
    assert entry.api is not None
    model = entry.api.body or entry.arg
    people = {f for f in model.model_fields if _names_a_person(model, f)}
    assert people == ({entry.api.actor} if entry.api.actor else set())


def test_only_the_reporting_partners_report_each_on_its_channels() -> None:
    reporting = {p for p, scopes in PARTNER_SCOPES.items() if Scope.REPORT in scopes}
    assert reporting == set(PARTNER_CHANNELS)
    assert [ch for p in ("counter", "online") for ch in PARTNER_CHANNELS[p]] == [
        Channel.COUNTER,
        Channel.ONLINE,
    ]
    assert not any(ch.formal for ch in PARTNER_CHANNELS["hotline"] + PARTNER_CHANNELS["online"])
