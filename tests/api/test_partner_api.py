"""The partner API over real HTTP (uvicorn on a port) against the real stack: every
refusal is a problem+json naming the rule, and writes nothing anywhere."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowFailureError
from temporalio.service import RPCError

from reissue.api.app import PROBLEM
from reissue.api.credentials import revoke_key
from reissue.schemas.enums import Stage
from reissue.schemas.hashing import webhook_signature
from tests.api.conftest import WEBHOOK_SECRET, key_for
from tests.support import EMPLOYER, Stack, materials, random_resident_id

_key = key_for


async def _nothing_written(stack: Stack, card: str) -> None:
    assert await stack.one("SELECT count(*) FROM loss_reports WHERE card_number = $1", card) == 0
    assert await stack.card_status(card) == "active"
    with pytest.raises(RPCError):
        await stack.client.handle(stack.client.case_id_for(card)).describe()


async def test_the_hotline_reports_a_loss_and_reads_the_masked_status(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    app = await stack.application()
    hotline = await _key(stack, "hotline")
    r = await api.post("/v1/cases", json=app.model_dump(mode="json"), headers=hotline)
    assert r.status_code == 200, r.text
    st = r.json()
    case = stack.client.case_id_for(app.card_number)
    assert st["case_id"] == case  # the server computed it from the card
    assert st["card_frozen"] and st["stage"] == Stage.AWAITING_MATERIALS.value
    assert await stack.card_status(app.card_number) == "frozen"
    again = await api.post("/v1/cases", json=app.model_dump(mode="json"), headers=hotline)
    assert again.json()["case_id"] == st["case_id"]  # create-or-get: the open case
    read = await api.get(f"/v1/cases/{case}", headers=hotline)
    assert read.status_code == 200
    for secret in (app.applicant.resident_id, app.applicant.name, app.card_number):
        assert secret not in read.text


async def test_no_key_a_bad_key_or_a_revoked_key_is_401_and_writes_nothing(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    app = await stack.application()
    body = app.model_dump(mode="json")
    hotline = await _key(stack, "hotline")
    key_id = hotline["Authorization"].split("_")[1]
    async with stack.pool.acquire() as conn:
        assert await revoke_key(conn, key_id)
    for headers in ({}, {"Authorization": "Bearer rk_0000_nope"}, hotline):
        r = await api.post("/v1/cases", json=body, headers=headers)
        assert r.status_code == 401, r.text
        assert r.headers["content-type"] == PROBLEM
        assert r.json()["type"] == "urn:reissue:problem:unauthenticated"
    await _nothing_written(stack, app.card_number)


async def test_a_key_without_the_scope_is_403_and_writes_nothing(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    app = await stack.application()
    for partner in ("card_bureau", "payment_platform", "operations"):
        r = await api.post(
            "/v1/cases", json=app.model_dump(mode="json"), headers=await _key(stack, partner)
        )
        assert r.status_code == 403, r.text
        assert f"a {partner} key may not report" in r.json()["detail"]
    await _nothing_written(stack, app.card_number)


async def test_a_bad_field_is_422_naming_the_field_and_writes_nothing(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    app = await stack.application()
    body = app.model_dump(mode="json")
    body["applicant"]["resident_id"] = body["applicant"]["resident_id"][:-1] + (
        "0" if body["applicant"]["resident_id"][-1] != "0" else "1"
    )
    r = await api.post("/v1/cases", json=body, headers=await _key(stack, "hotline"))
    assert r.status_code == 422, r.text
    problem = r.json()
    assert [e["field"] for e in problem["errors"]] == ["applicant.resident_id"]
    assert body["applicant"]["resident_id"] not in r.text  # the value is not echoed
    await _nothing_written(stack, app.card_number)


async def test_an_idempotency_key_answers_once_and_refuses_another_request(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    app = await stack.application()
    hotline = await _key(stack, "hotline")
    headers = hotline | {"Idempotency-Key": "k-1"}
    first = await api.post("/v1/cases", json=app.model_dump(mode="json"), headers=headers)
    replay = await api.post("/v1/cases", json=app.model_dump(mode="json"), headers=headers)
    assert first.status_code == replay.status_code == 200
    assert replay.json() == first.json()
    other = await stack.application()
    reused = await api.post("/v1/cases", json=other.model_dump(mode="json"), headers=headers)
    assert reused.status_code == 422
    assert reused.json()["type"] == "urn:reissue:problem:idempotency-key-reused"
    await _nothing_written(stack, other.card_number)


async def test_operations_cancel_as_themselves_and_refusals_are_problems(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    app, case, _ = await stack.open_case()
    ops = await _key(stack, "operations")
    actor = "operations-" + ops["Authorization"].split("_")[1]
    hotline = await _key(stack, "hotline")
    assert (
        await api.post(
            f"/v1/cases/{case}/cancel", json={"reason": "duplicate_case"}, headers=hotline
        )
    ).status_code == 403
    chosen = await api.post(
        f"/v1/cases/{case}/cancel",
        json={"reason": "duplicate_case", "operator": "someone-else"},  # not theirs to say
        headers=ops,
    )
    assert chosen.status_code == 422
    assert [e["field"] for e in chosen.json()["errors"]] == ["operator"]
    # Finding 12: a reason of the catalogue, and one a cancellation gives; never free text.
    refused = {}
    for reason in ("photo_unclear", "请点击 https://x.example 领取退款"):
        r = await api.post(f"/v1/cases/{case}/cancel", json={"reason": reason}, headers=ops)
        assert r.status_code == 422, r.text
        assert [e["field"] for e in r.json()["errors"]] == ["reason"]
        refused[reason] = r.text
    assert "not a reason for a cancellation" in refused["photo_unclear"]
    assert "https://x.example" not in refused["请点击 https://x.example 领取退款"]  # not echoed
    r = await api.post(f"/v1/cases/{case}/cancel", json={"reason": "duplicate_case"}, headers=ops)
    assert r.status_code == 200, r.text
    assert r.json()["stage"] == Stage.CANCELLED.value
    st = await stack.status(case)
    reason = await stack.one(
        "SELECT detail->>'reason' FROM case_events WHERE case_id = $1 AND event_type = 'case_closed'",
        st.case_id,
    )
    assert reason == f"cancelled by {actor}: duplicate_case"
    # Nobody asked to lift the temporary report: it stands, the card frozen (issue 24, 3).
    assert not st.report_formal and st.report_stands_until is not None
    assert await stack.card_status(app.card_number) == "frozen"
    assert not await stack.authorised(app.card_number)
    assert await stack.bank_status(app.card_number) == "frozen"
    assert await stack.violations() == []
    again = await api.post(
        f"/v1/cases/{case}/cancel", json={"reason": "duplicate_case"}, headers=ops
    )
    assert again.status_code == 409
    assert again.json()["type"] == "urn:reissue:problem:CaseEnding"
    found = await api.post(
        f"/v1/cases/{case}/card-found",
        json={"channel": "hotline_12333", "resident_id": app.applicant.resident_id},
        headers=hotline,
    )
    assert found.status_code == 403  # no open report any more
    missing = await api.get("/v1/cases/reissue-0000000000000000", headers=hotline)
    assert missing.status_code == 404
    assert (await api.get("/v1/cases/not-a-case-id", headers=hotline)).status_code == 422
    assert app.card_number  # (the case was opened with a real card)


async def test_the_registry_refusing_a_report_is_a_problem_naming_its_rule(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    app = await stack.application()
    body = app.model_dump(mode="json")
    body["applicant"]["resident_id"] = random_resident_id()  # not the card's owner
    r = await api.post("/v1/cases", json=body, headers=await _key(stack, "hotline"))
    assert r.status_code == 422, r.text
    assert r.json()["type"] == "urn:reissue:problem:CardOwnerMismatch"
    assert body["applicant"]["resident_id"] not in r.text
    assert await stack.card_status(app.card_number) == "active"
    assert (
        await stack.one("SELECT count(*) FROM loss_reports WHERE card_number = $1", app.card_number)
        == 0
    )


def _signed(
    body: dict[str, Any], *, at: float | None = None, secret: str = WEBHOOK_SECRET
) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    ts = str(int(time.time() if at is None else at))
    return raw, {
        "X-Reissue-Timestamp": ts,
        "X-Reissue-Signature": webhook_signature(secret, ts, raw),
        "Content-Type": "application/json",
    }


async def test_a_case_end_to_end_through_the_front_door(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    app = await stack.application(affiliation=EMPLOYER, channel="counter")
    counter = await _key(stack, "counter", acts_for="counter-01")
    st = (await api.post("/v1/cases", json=app.model_dump(mode="json"), headers=counter)).json()
    case = st["case_id"]
    r = await api.post(
        f"/v1/cases/{case}/materials",
        json=materials(st["loss_report_number"]).model_dump(mode="json"),
        headers=counter,
    )
    assert r.status_code == 200, r.text
    assert r.json()["stage"] == Stage.AWAITING_AFFILIATION.value
    await stack.notice_sent((await stack.status(case)).case_id, "affiliation_request")
    answer = {"confirmed": True, "responder": "hr-01"}
    other_unit = await _key(stack, "unit_portal", org_code="91350100M000100Y43")
    refused = await api.post(f"/v1/cases/{case}/affiliation", json=answer, headers=other_unit)
    assert refused.status_code == 403, refused.text
    school = await _key(stack, "school_portal", org_code=EMPLOYER["credit_code"])
    refused = await api.post(f"/v1/cases/{case}/affiliation", json=answer, headers=school)
    assert refused.status_code == 403, refused.text  # the same code, but asked as an employer
    assert (await stack.status(case)).affiliation_status == "requested"  # nothing delivered
    unit = await _key(stack, "unit_portal", org_code=EMPLOYER["credit_code"], acts_for="hr-01")
    r = await api.post(f"/v1/cases/{case}/affiliation", json=answer, headers=unit)
    assert r.status_code == 200, r.text
    await stack.wait_for(case, Stage.UNDER_REVIEW)
    st2 = await stack.approve(case)
    st2 = await stack.wait_for(case, Stage.AWAITING_PAYMENT)
    assert st2.fee is not None
    notice = {
        "case_id": case,
        "payment": {
            "order_id": st2.fee.order_id,
            "amount_fen": st2.fee.amount_fen,
            "payment_ref": "PAY-API-1",
            "paid_at": datetime.now(UTC).isoformat(),
        },
    }
    platform = await _key(stack, "payment_platform")
    raw, signed = _signed(notice)
    r = await api.post("/v1/payments", content=raw, headers=platform | signed)
    assert r.status_code == 200, r.text
    st3 = await stack.wait_for(case, Stage.CARD_PRODUCTION)
    new_card = await stack.one("SELECT next_card_number()")
    bureau = await _key(stack, "card_bureau")
    produced = {
        "order_id": st3.production_order_id,
        "new_card_number": new_card,
        "produced_at": datetime.now(UTC).isoformat(),
    }
    r = await api.post(f"/v1/cases/{case}/card-produced", json=produced, headers=bureau)
    assert r.status_code == 200, r.text
    await stack.wait_for(case, Stage.READY_FOR_PICKUP)
    handed = {"new_card_number": new_card, "handed_over_by": "counter-01"}
    r = await api.post(f"/v1/cases/{case}/collected", json=handed, headers=counter)
    assert r.status_code == 200, r.text
    assert (await stack.client.result(case)).outcome is Stage.COMPLETED
    assert await stack.card_status(new_card) == "active"


async def test_a_payment_webhook_unsigned_stale_replayed_or_foreign_writes_nothing(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    _, case, _ = await stack.open_case()
    notice = {
        "case_id": case,
        "payment": {
            "order_id": "PO00000000000001",
            "amount_fen": 2500,
            "payment_ref": "PAY-API-2",
            "paid_at": datetime.now(UTC).isoformat(),
        },
    }
    platform = await _key(stack, "payment_platform")
    raw, good = _signed(notice)

    async def payments() -> int:
        return int(await stack.one("SELECT count(*) FROM payments WHERE payment_ref = 'PAY-API-2'"))

    _, forged = _signed(notice, secret="not-the-secret")
    r = await api.post("/v1/payments", content=raw, headers=platform | forged)
    assert r.status_code == 401 and r.json()["type"] == "urn:reissue:problem:bad-signature"
    stale_raw, stale = _signed(notice, at=time.time() - 3600)
    r = await api.post("/v1/payments", content=stale_raw, headers=platform | stale)
    assert r.status_code == 401 and r.json()["type"] == "urn:reissue:problem:stale-webhook"
    r = await api.post("/v1/payments", content=raw, headers=await _key(stack, "hotline") | good)
    assert r.status_code == 403
    assert await payments() == 0
    r = await api.post("/v1/payments", content=raw, headers=platform | good)
    assert r.status_code == 200, r.text
    for _ in range(100):  # recorded in the ledger (and refunded: nothing was owed)
        if await payments():
            break
        await asyncio.sleep(0.1)
    assert await payments() == 1
    again = await api.post("/v1/payments", content=raw, headers=platform | good)
    assert again.status_code == 409
    assert again.json()["type"] == "urn:reissue:problem:replayed-webhook"


async def test_knowing_a_card_number_does_not_reach_its_open_case(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    """A stranger with the lost card's number can neither find the case nor withdraw
    the report (which would unfreeze the card)."""
    app, case, _ = await stack.open_case()
    hotline = await _key(stack, "hotline")
    stranger = app.model_dump(mode="json")
    stranger["applicant"]["resident_id"] = random_resident_id()
    r = await api.post("/v1/cases", json=stranger, headers=hotline)
    assert r.status_code == 422, r.text
    assert r.json()["type"] == "urn:reissue:problem:CardOwnerMismatch"
    assert case not in r.text
    found = {"channel": "hotline_12333", "resident_id": stranger["applicant"]["resident_id"]}
    r = await api.post(f"/v1/cases/{case}/card-found", json=found, headers=hotline)
    assert r.status_code == 403, r.text
    assert await stack.card_status(app.card_number) == "frozen"
    assert (await stack.status(case)).stage is Stage.AWAITING_MATERIALS
    found["resident_id"] = app.applicant.resident_id  # the owner, who did find it
    r = await api.post(f"/v1/cases/{case}/card-found", json=found, headers=hotline)
    assert r.status_code == 409, r.text  # no mobile on record: lifted at a counter
    assert r.json()["type"] == "urn:reissue:problem:lift-at-a-counter"
    clerk = await _key(stack, "counter", acts_for="counter-07")  # who checks the ID card
    found["channel"] = "counter"
    r = await api.post(f"/v1/cases/{case}/card-found", json=found, headers=clerk)
    assert r.status_code == 200, r.text
    assert r.json()["stage"] == Stage.WITHDRAWN.value
    assert await stack.card_status(app.card_number) == "active"


async def test_the_status_of_a_refused_case_is_a_problem_not_an_error(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    app = await stack.application()
    unknown = app.model_copy(update={"card_number": "Z" + app.card_number[1:]})
    hotline = await _key(stack, "hotline")
    r = await api.post("/v1/cases", json=unknown.model_dump(mode="json"), headers=hotline)
    assert r.status_code == 422 and r.json()["type"] == "urn:reissue:problem:CardNotFound"
    case = stack.client.case_id_for(unknown.card_number)
    with pytest.raises(RPCError):  # refused by the API: not even a refused case exists
        await stack.client.handle(case).describe()
    # A trusted service starting it directly gets a case the registry refuses.
    await stack.client.report_loss(unknown)
    with pytest.raises(WorkflowFailureError):
        await stack.client.result(case)
    r = await api.get(f"/v1/cases/{case}", headers=hotline)
    assert r.status_code == 409, r.text
    assert r.json()["type"] == "urn:reissue:problem:case-not-opened"


async def test_signals_a_case_is_not_waiting_for_are_refused_and_reach_nothing(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    """A partner repeating an event cannot grow a case's history: only a case waiting
    for it gets it."""
    app, case, _ = await stack.open_case()
    before = len([e async for e in stack.client.handle(case).fetch_history_events()])
    bureau = await _key(stack, "card_bureau")
    produced = {
        "order_id": "CP00000000000001",
        "new_card_number": "A00000001",
        "produced_at": datetime.now(UTC).isoformat(),
    }
    counter = await _key(stack, "counter", acts_for="counter-01")
    handed = {"new_card_number": "A00000001", "handed_over_by": "counter-01"}
    for _ in range(5):
        r = await api.post(f"/v1/cases/{case}/card-produced", json=produced, headers=bureau)
        assert r.status_code == 409 and r.json()["type"] == "urn:reissue:problem:WrongStage"
        r = await api.post(f"/v1/cases/{case}/collected", json=handed, headers=counter)
        assert r.status_code == 409
    st = await stack.status(case)
    assert st.ignored_events == [] and st.stage is Stage.AWAITING_MATERIALS
    after = len([e async for e in stack.client.handle(case).fetch_history_events()])
    assert after == before
    assert app.card_number
