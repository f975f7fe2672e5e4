"""The credential decides, never the body: the channel a report is made on (a hotline
key cannot make a report formal) and who acted (the clerk or officer the credential
names, which four eyes and the audit trail rely on)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from reissue.schemas.enums import Stage
from tests.api.conftest import key_for
from tests.support import EMPLOYER, Stack, materials


async def _nothing_reported(stack: Stack, card: str) -> None:
    assert await stack.one("SELECT count(*) FROM loss_reports WHERE card_number = $1", card) == 0
    assert await stack.card_status(card) == "active"


def _refused_field(r: httpx.Response, field: str, status: int = 422) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in r.json()["errors"]] == [field]


@pytest.mark.parametrize(
    ("partner", "own", "foreign"),
    [
        ("hotline", "hotline_12333", ["counter", "online", "hotline_12393"]),
        ("online", "online", ["counter", "hotline_12333"]),
        ("counter", "counter", ["online", "hotline_12393"]),
    ],
)
async def test_a_report_is_made_on_the_credential_s_channel_only(
    stack: Stack, api: httpx.AsyncClient, partner: str, own: str, foreign: list[str]
) -> None:
    key = await key_for(stack, partner)
    for channel in foreign:
        app = await stack.application(channel=channel)
        r = await api.post("/v1/cases", json=app.model_dump(mode="json"), headers=key)
        _refused_field(r, "channel")
        assert r.json()["type"] == "urn:reissue:problem:foreign-channel"
        await _nothing_reported(stack, app.card_number)
    app = await stack.application(channel=own)
    r = await api.post("/v1/cases", json=app.model_dump(mode="json"), headers=key)
    assert r.status_code == 200, r.text
    assert r.json()["report_formal"] is (own == "counter")
    assert r.json()["channel"] == own


async def test_a_hotline_key_cannot_make_a_report_formal(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    """Finding 1: a hotline key naming the counter channel voided the card for good."""
    app = await stack.application(channel="counter")
    r = await api.post(
        "/v1/cases", json=app.model_dump(mode="json"), headers=await key_for(stack, "hotline")
    )
    _refused_field(r, "channel")
    await _nothing_reported(stack, app.card_number)


async def test_which_hotline_is_the_key_s(stack: Stack, api: httpx.AsyncClient) -> None:
    line = await key_for(stack, "hotline", channel="hotline_12393")
    app = await stack.application(channel="hotline_12333")
    r = await api.post("/v1/cases", json=app.model_dump(mode="json"), headers=line)
    _refused_field(r, "channel")
    app = await stack.application(channel="hotline_12393")
    r = await api.post("/v1/cases", json=app.model_dump(mode="json"), headers=line)
    assert r.status_code == 200, r.text
    assert r.json()["channel"] == "hotline_12393" and not r.json()["report_formal"]


async def test_card_found_is_told_on_the_credential_s_channel(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    app, case, _ = await stack.open_case()
    hotline = await key_for(stack, "hotline")
    found = {"channel": "counter", "resident_id": app.applicant.resident_id}
    r = await api.post(f"/v1/cases/{case}/card-found", json=found, headers=hotline)
    _refused_field(r, "channel")
    assert await stack.card_status(app.card_number) == "frozen"
    assert (await stack.status(case)).stage is Stage.AWAITING_MATERIALS


async def test_who_received_the_materials_is_the_credential_s_clerk(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    """Finding 10: `received_by` was whatever the partner wrote; four eyes relies on it."""
    app, case, report = await stack.open_case()
    body = materials(report).model_dump(mode="json")
    clerk = await key_for(stack, "counter", acts_for="counter-07")
    r = await api.post(
        f"/v1/cases/{case}/materials", json=body | {"received_by": "rev-01"}, headers=clerk
    )
    _refused_field(r, "received_by")
    assert r.json()["type"] == "urn:reissue:problem:foreign-actor"
    nobody = await key_for(stack, "counter")  # a key that names no clerk
    r = await api.post(
        f"/v1/cases/{case}/materials", json=body | {"received_by": "counter-07"}, headers=nobody
    )
    assert r.status_code == 403, r.text
    assert r.json()["type"] == "urn:reissue:problem:no-acting-person"
    st = await stack.status(case)
    assert st.stage is Stage.AWAITING_MATERIALS and st.received_by == []
    formal = {"resident_id": app.applicant.resident_id, "received_by": "counter-07"}
    r = await api.post(f"/v1/cases/{case}/formal", json=formal, headers=clerk)
    assert r.status_code == 200, r.text
    r = await api.post(
        f"/v1/cases/{case}/materials", json=body | {"received_by": "Counter-07"}, headers=clerk
    )
    assert r.status_code == 200, r.text
    st = await stack.wait_for(case, Stage.UNDER_REVIEW)
    assert st.received_by == ["counter-07"]  # as the credential names the clerk
    rows = await stack.rows(
        "SELECT actor FROM case_events WHERE case_id = $1 AND event_type = 'report_made_formal'",
        st.case_id,
    )
    assert [r["actor"] for r in rows] == ["counter-07"]


@pytest.mark.parametrize("route", ["formal", "collected", "affiliation"])
async def test_every_event_naming_who_acted_takes_the_credential_s_person(
    stack: Stack, api: httpx.AsyncClient, route: str
) -> None:
    """`/formal` (received_by), `/collected` (handed_over_by), `/affiliation`
    (responder): a body naming someone else is refused before it reaches the case."""
    affiliation = EMPLOYER if route == "affiliation" else None
    app, case, report = await stack.open_case(affiliation=affiliation)
    field: str
    body: dict[str, Any]
    if route == "formal":
        key = await key_for(stack, "counter", acts_for="counter-07")
        field, body = "received_by", {"resident_id": app.applicant.resident_id}
    elif route == "collected":
        key = await key_for(stack, "counter", acts_for="counter-07")
        field, body = "handed_over_by", {"new_card_number": "A00000001"}
    else:
        await stack.client.submit_materials(case, materials(report))
        await stack.wait_for(case, Stage.AWAITING_AFFILIATION)
        await stack.notice_sent((await stack.status(case)).case_id, "affiliation_request")
        key = await key_for(
            stack, "unit_portal", org_code=EMPLOYER["credit_code"], acts_for="hr-07"
        )
        field, body = "responder", {"confirmed": True}
    before = await stack.status(case)
    r = await api.post(
        f"/v1/cases/{case}/{route}", json=body | {field: "someone-else"}, headers=key
    )
    _refused_field(r, field)
    after = await stack.status(case)
    assert (after.stage, after.report_formal, after.affiliation_status) == (
        before.stage,
        before.report_formal,
        before.affiliation_status,
    )
