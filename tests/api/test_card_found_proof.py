"""Issue 24, finding 2: whoever holds the lost card could unfreeze it, since card-found
asked only for the resident ID printed on the card. Lifting a temporary report now
takes proof the holder lacks: a counter clerk's ID check (the counter credential), or
by hotline and online a one-time code sent to the mobile number on record in the
registry. Over real HTTP against PostgreSQL, the code read from the SMS gateway's
simulator (as the owner's phone would show it), never from our API."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf.message import Message
from structlog.testing import capture_logs
from temporalio.api.common.v1 import Payload

from reissue.activities.partners import HttpNotificationGateway
from reissue.api.app import build_app
from reissue.api.lifting import OneTimeCodes
from reissue.api.ownership import OwnershipLimits
from reissue.devtools.seed import enrol_person
from reissue.devtools.simulators import partner_simulators
from reissue.schemas.case import CaseInput
from reissue.schemas.enums import Stage
from reissue.workers.settings import DEV_HASH_SECRET
from tests.api.conftest import key_for, serving
from tests.support import TEST_CONVERTER, Stack, random_card_number, random_resident_id

MOBILE = "13912345678"


@pytest.fixture(scope="module")
async def sms_gateway(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """The notification gateway's simulator, a process of its own (its inbox is what
    the owner's phone shows)."""
    folder: Path = tmp_path_factory.mktemp("sms")
    async with partner_simulators(folder, systems=("notifications",)) as urls:
        yield urls["notifications"]


@pytest.fixture
async def door(stack: Stack, sms_gateway: str) -> AsyncIterator[httpx.AsyncClient]:
    """The partner API sending one-time codes through the gateway's simulator."""
    async with httpx.AsyncClient(base_url=sms_gateway) as sim:
        (await sim.post("/_reset")).raise_for_status()
    sms = HttpNotificationGateway(sms_gateway)
    codes = OneTimeCodes(secret=DEV_HASH_SECRET, sms=sms)
    app = build_app(stack.client, stack.pool, codes=codes)
    try:
        async with serving(app) as base, httpx.AsyncClient(base_url=base, timeout=60) as http:
            yield http
    finally:
        await sms.aclose()


async def _reported(
    stack: Stack, api: httpx.AsyncClient, *, mobile: str | None = MOBILE
) -> tuple[CaseInput, str]:
    """A person (with `mobile` on record) whose card the hotline reported lost."""
    resident_id = random_resident_id()
    async with stack.pool.acquire() as conn:
        card = await enrol_person(
            conn,
            secret=DEV_HASH_SECRET,
            resident_id=resident_id,
            insured_category="urban_employee",
            district="500103",
            balance_fen=1000,
            bank_url=stack.settings.bank_url,
            card_number=random_card_number(),
            mobile=mobile,
        )
    app = CaseInput.model_validate(
        {
            "applicant": {"name": "张三", "resident_id": resident_id, "mobile": "13800138000"},
            "card_number": card,
            "insured_category": "urban_employee",
            "affiliation": {"kind": "none"},
            "district": "500103",
            "channel": "hotline_12333",
        }
    )
    hotline = await key_for(stack, "hotline")
    r = await api.post("/v1/cases", json=app.model_dump(mode="json"), headers=hotline)
    assert r.status_code == 200, r.text
    return app, r.json()["case_id"]


async def _ask_code(
    api: httpx.AsyncClient, headers: dict[str, str], case: str, resident_id: str
) -> httpx.Response:
    return await api.post(
        f"/v1/cases/{case}/card-found/code", json={"resident_id": resident_id}, headers=headers
    )


async def _found(
    api: httpx.AsyncClient, headers: dict[str, str], case: str, resident_id: str, **body: Any
) -> httpx.Response:
    found = {"channel": "hotline_12333", "resident_id": resident_id, **body}
    return await api.post(f"/v1/cases/{case}/card-found", json=found, headers=headers)


async def _codes_on_the_phone(sms_gateway: str, mobile: str = MOBILE) -> list[str]:
    """The codes the owner's phone received, oldest first."""
    async with httpx.AsyncClient(base_url=sms_gateway) as sim:
        inbox = (await sim.get("/_inbox", params={"to": f"mobile:{mobile}"})).json()
    return [m for t in inbox for m in re.findall(r"验证码 ([0-9]{6})", t["text"])]


async def _still_reported(stack: Stack, app: CaseInput, case: str) -> None:
    assert await stack.card_status(app.card_number) == "frozen"
    assert (await stack.status(case)).stage is Stage.AWAITING_MATERIALS


async def test_the_finder_with_the_resident_id_alone_is_refused(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    """The resident ID is printed on the card: it lifted the report (200) before."""
    app, case = await _reported(stack, api)
    hotline = await key_for(stack, "hotline")
    r = await _found(api, hotline, case, app.applicant.resident_id)
    assert r.status_code == 422, r.text
    assert r.json()["type"] == "urn:reissue:problem:code-required"
    assert r.json()["errors"][0]["field"] == "code"
    await _still_reported(stack, app, case)
    # The online service is refused alike.
    online = await key_for(stack, "online")
    r = await _found(api, online, case, app.applicant.resident_id, channel="online")
    assert r.status_code == 422 and r.json()["type"].endswith("code-required"), r.text
    await _still_reported(stack, app, case)


async def test_the_code_sent_to_the_mobile_on_record_lifts_the_report(
    stack: Stack, door: httpx.AsyncClient, sms_gateway: str, caplog: pytest.LogCaptureFixture
) -> None:
    app, case = await _reported(stack, door)
    hotline = await key_for(stack, "hotline")
    caplog.set_level(logging.DEBUG)
    with capture_logs() as logs:
        sent = await _ask_code(door, hotline, case, app.applicant.resident_id)
    assert sent.status_code == 200, sent.text
    assert sent.json()["sent"] is True and sent.json()["attempts"] == 5
    ours = caplog.text
    [code] = await _codes_on_the_phone(sms_gateway)  # the owner's phone, not our API
    caplog.clear()
    with capture_logs() as more_logs:
        r = await _found(door, hotline, case, app.applicant.resident_id, code=code)
    assert r.status_code == 200, r.text
    logs += more_logs
    ours += caplog.text
    assert r.json()["stage"] == Stage.WITHDRAWN.value
    assert await stack.card_status(app.card_number) == "active"
    # The code is in no answer, no log, no case history, and only hashed in the database.
    assert code not in sent.text and code not in r.text
    assert code not in repr(logs) and code not in ours
    assert MOBILE not in repr(logs) and MOBILE not in ours
    stored = await stack.rows("SELECT code_hash, used_at, attempts FROM card_found_codes")
    assert len(stored) == 1 and stored[0]["used_at"] is not None
    assert code not in stored[0]["code_hash"]
    sealed = await stack.one(
        "SELECT a.mobile_sealed FROM insured_accounts a JOIN cards c USING (account_id)"
        " WHERE c.card_number = $1",
        app.card_number,
    )
    assert MOBILE not in sealed
    assert not await stack.one("SELECT count(*) FROM case_events WHERE detail::text LIKE '%code%'")
    found_inputs = []
    async for event in stack.client.handle(case).fetch_history_events():
        for payload in _payloads(event):
            [plain] = await TEST_CONVERTER.payload_codec.decode([payload])  # type: ignore[union-attr]
            assert b'"code"' not in plain.data
        if event.HasField("workflow_execution_update_accepted_event_attributes"):
            accepted = event.workflow_execution_update_accepted_event_attributes.accepted_request
            if accepted.input.name == "card_found":
                [found] = await TEST_CONVERTER.decode(accepted.input.args.payloads, [dict])
                found_inputs.append(found)
    assert [sorted(f) for f in found_inputs] == [["channel", "note"]]  # the event as in 1.0


async def test_a_code_is_used_once(stack: Stack, door: httpx.AsyncClient, sms_gateway: str) -> None:
    app, case = await _reported(stack, door)
    hotline = await key_for(stack, "hotline")
    assert (await _ask_code(door, hotline, case, app.applicant.resident_id)).status_code == 200
    [code] = await _codes_on_the_phone(sms_gateway)
    r = await _found(door, hotline, case, app.applicant.resident_id, code=code)
    assert r.status_code == 200, r.text
    # The card is reported lost again (the same case ID): the spent code lifts nothing.
    r = await door.post("/v1/cases", json=app.model_dump(mode="json"), headers=hotline)
    assert r.status_code == 200 and r.json()["case_id"] == case, r.text
    r = await _found(door, hotline, case, app.applicant.resident_id, code=code)
    assert r.status_code == 403 and r.json()["type"].endswith("code-used"), r.text
    assert await stack.card_status(app.card_number) == "frozen"


async def test_wrong_codes_are_counted_and_the_code_dies_at_the_limit(
    stack: Stack, door: httpx.AsyncClient, sms_gateway: str
) -> None:
    app, case = await _reported(stack, door)
    hotline = await key_for(stack, "hotline")
    assert (await _ask_code(door, hotline, case, app.applicant.resident_id)).status_code == 200
    [code] = await _codes_on_the_phone(sms_gateway)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for left in (4, 3, 2, 1, 0):
        r = await _found(door, hotline, case, app.applicant.resident_id, code=wrong)
        assert r.status_code == 403 and r.json()["type"].endswith("wrong-code"), r.text
        assert r.json()["attempts_left"] == left
    r = await _found(door, hotline, case, app.applicant.resident_id, code=code)  # too late
    assert r.status_code == 403 and r.json()["type"].endswith("code-attempts-exhausted"), r.text
    assert await stack.one("SELECT attempts FROM card_found_codes") == 5
    await _still_reported(stack, app, case)
    # A new code must be asked for; it lifts the report.
    assert (await _ask_code(door, hotline, case, app.applicant.resident_id)).status_code == 200
    _, fresh = await _codes_on_the_phone(sms_gateway)
    r = await _found(door, hotline, case, app.applicant.resident_id, code=fresh)
    assert r.status_code == 200 and r.json()["stage"] == Stage.WITHDRAWN.value, r.text


async def test_wrong_codes_sent_at_once_meet_the_same_limit(
    stack: Stack, door: httpx.AsyncClient, sms_gateway: str
) -> None:
    """Each try is counted in the statement that checks it: twelve at once, five count."""
    app, case = await _reported(stack, door)
    hotline = await key_for(stack, "hotline")
    assert (await _ask_code(door, hotline, case, app.applicant.resident_id)).status_code == 200
    [code] = await _codes_on_the_phone(sms_gateway)
    guesses = [f"{(int(code) + n) % 1_000_000:06d}" for n in range(1, 13)]
    # (Limits on ownership checks that twelve checks at once stay within.)
    sms = HttpNotificationGateway(sms_gateway)
    app_ = build_app(
        stack.client,
        stack.pool,
        codes=OneTimeCodes(secret=DEV_HASH_SECRET, sms=sms),
        ownership=OwnershipLimits(per_card=50, per_credential=50),
    )
    try:
        async with serving(app_) as base, httpx.AsyncClient(base_url=base, timeout=60) as http:
            answers = await asyncio.gather(
                *(_found(http, hotline, case, app.applicant.resident_id, code=g) for g in guesses)
            )
    finally:
        await sms.aclose()
    kinds = sorted(a.json()["type"].rsplit(":", 1)[1] for a in answers)
    assert kinds == ["code-attempts-exhausted"] * 7 + ["wrong-code"] * 5, kinds
    assert await stack.one("SELECT attempts FROM card_found_codes") == 5
    await _still_reported(stack, app, case)


async def test_a_new_code_replaces_the_last_and_few_are_sent(
    stack: Stack, door: httpx.AsyncClient, sms_gateway: str
) -> None:
    """Each code is an SMS to the owner: three per case an hour, the last one live."""
    app, case = await _reported(stack, door)
    hotline = await key_for(stack, "hotline")
    for _ in range(3):
        assert (await _ask_code(door, hotline, case, app.applicant.resident_id)).status_code == 200
    r = await _ask_code(door, hotline, case, app.applicant.resident_id)
    assert r.status_code == 429 and r.json()["type"].endswith("too-many-codes"), r.text
    assert int(r.headers["Retry-After"]) > 0
    *old, last = await _codes_on_the_phone(sms_gateway)
    assert len(old) == 2
    if old[-1] != last:  # (the same six digits twice: one in a million)
        r = await _found(door, hotline, case, app.applicant.resident_id, code=old[-1])
        assert r.status_code == 403 and r.json()["type"].endswith("wrong-code"), r.text
    r = await _found(door, hotline, case, app.applicant.resident_id, code=last)
    assert r.status_code == 200 and r.json()["stage"] == Stage.WITHDRAWN.value, r.text


async def test_a_formal_report_spends_no_code(
    stack: Stack, door: httpx.AsyncClient, sms_gateway: str
) -> None:
    app, case = await _reported(stack, door)
    hotline = await key_for(stack, "hotline")
    assert (await _ask_code(door, hotline, case, app.applicant.resident_id)).status_code == 200
    [code] = await _codes_on_the_phone(sms_gateway)
    clerk = await key_for(stack, "counter", acts_for="counter-07")
    formal = {"resident_id": app.applicant.resident_id, "received_by": "counter-07"}
    r = await door.post(f"/v1/cases/{case}/formal", json=formal, headers=clerk)
    assert r.status_code == 200, r.text
    r = await _found(door, hotline, case, app.applicant.resident_id, code=code)
    assert r.status_code == 409 and r.json()["type"].endswith("ReportFormal"), r.text
    assert await stack.one("SELECT attempts FROM card_found_codes") == 0
    r = await _ask_code(door, hotline, case, app.applicant.resident_id)
    assert r.status_code == 409 and r.json()["type"].endswith("ReportFormal"), r.text
    assert await _codes_on_the_phone(sms_gateway) == [code]


async def test_an_expired_code_is_refused(
    stack: Stack, door: httpx.AsyncClient, sms_gateway: str
) -> None:
    app, case = await _reported(stack, door)
    hotline = await key_for(stack, "hotline")
    sent = await _ask_code(door, hotline, case, app.applicant.resident_id)
    assert sent.status_code == 200, sent.text
    [code] = await _codes_on_the_phone(sms_gateway)
    await stack.one(  # ten minutes later
        "UPDATE card_found_codes SET expires_at = now() - interval '1 second' RETURNING 1"
    )
    r = await _found(door, hotline, case, app.applicant.resident_id, code=code)
    assert r.status_code == 403 and r.json()["type"].endswith("code-expired"), r.text
    await _still_reported(stack, app, case)


async def test_a_code_sent_for_one_case_does_not_lift_another(
    stack: Stack, door: httpx.AsyncClient, sms_gateway: str
) -> None:
    """Two people sharing one phone: the code sent for A's card does not lift B's."""
    a, case_a = await _reported(stack, door)
    b, case_b = await _reported(stack, door)
    hotline = await key_for(stack, "hotline")
    assert (await _ask_code(door, hotline, case_a, a.applicant.resident_id)).status_code == 200
    [code_a] = await _codes_on_the_phone(sms_gateway)
    r = await _found(door, hotline, case_b, b.applicant.resident_id, code=code_a)
    assert r.status_code == 403 and r.json()["type"].endswith("no-code"), r.text
    codes_b: list[str] = []
    while not codes_b or codes_b[-1] == code_a:  # (the same six digits: one in a million)
        sent = await _ask_code(door, hotline, case_b, b.applicant.resident_id)
        assert sent.status_code == 200, sent.text
        codes_b = (await _codes_on_the_phone(sms_gateway))[1:]
    r = await _found(door, hotline, case_b, b.applicant.resident_id, code=code_a)
    assert r.status_code == 403 and r.json()["type"].endswith("wrong-code"), r.text
    await _still_reported(stack, b, case_b)
    r = await _found(door, hotline, case_a, a.applicant.resident_id, code=code_a)
    assert r.status_code == 200 and r.json()["stage"] == Stage.WITHDRAWN.value, r.text


async def test_at_a_counter_the_clerk_s_id_check_lifts_the_report_without_a_code(
    stack: Stack, door: httpx.AsyncClient, sms_gateway: str
) -> None:
    app, case = await _reported(stack, door, mobile=None)  # no mobile needed at a counter
    nobody = await key_for(stack, "counter")  # a counter credential naming no clerk
    found = {"channel": "counter", "resident_id": app.applicant.resident_id}
    r = await door.post(f"/v1/cases/{case}/card-found", json=found, headers=nobody)
    assert r.status_code == 403 and r.json()["type"].endswith("no-acting-person"), r.text
    await _still_reported(stack, app, case)
    clerk = await key_for(stack, "counter", acts_for="counter-07")
    r = await _ask_code(door, clerk, case, app.applicant.resident_id)
    assert r.status_code == 403, r.text  # no code at a counter
    r = await door.post(f"/v1/cases/{case}/card-found", json=found, headers=clerk)
    assert r.status_code == 200 and r.json()["stage"] == Stage.WITHDRAWN.value, r.text
    assert await stack.card_status(app.card_number) == "active"
    assert await _codes_on_the_phone(sms_gateway) == []


async def test_the_hotline_cannot_name_the_mobile_number(
    stack: Stack, door: httpx.AsyncClient, sms_gateway: str
) -> None:
    app, case = await _reported(stack, door)
    hotline = await key_for(stack, "hotline")
    mine = "13700001111"  # the finder's own phone
    r = await door.post(
        f"/v1/cases/{case}/card-found/code",
        json={"resident_id": app.applicant.resident_id, "mobile": mine},
        headers=hotline,
    )
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["mobile"] and mine not in r.text
    r = await _found(door, hotline, case, app.applicant.resident_id, mobile=mine)
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["mobile"]
    async with httpx.AsyncClient(base_url=sms_gateway) as sim:
        assert (await sim.get("/_inbox")).json() == []  # nothing sent anywhere
    await _still_reported(stack, app, case)


async def test_without_a_mobile_on_record_the_answer_is_a_counter(
    stack: Stack, door: httpx.AsyncClient, sms_gateway: str
) -> None:
    app, case = await _reported(stack, door, mobile=None)
    hotline = await key_for(stack, "hotline")
    r = await _ask_code(door, hotline, case, app.applicant.resident_id)
    assert r.status_code == 409 and r.json()["type"].endswith("lift-at-a-counter"), r.text
    assert "counter" in r.json()["detail"]
    r = await _found(door, hotline, case, app.applicant.resident_id)
    assert r.status_code == 409 and r.json()["type"].endswith("lift-at-a-counter"), r.text
    # A stranger is told nothing of the owner's mobile: the ID number is checked first.
    r = await _ask_code(door, hotline, case, random_resident_id())
    assert r.status_code == 403 and r.json()["type"].endswith("not-the-owner"), r.text
    await _still_reported(stack, app, case)


def _payloads(message: Message) -> Iterator[Payload]:
    """Every payload a history event holds, however deep."""
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if isinstance(value, Message):
            items = [value]
        elif hasattr(value, "values"):  # a map
            items = list(value.values())
        else:
            items = list(value)
        for item in items:
            if isinstance(item, Payload):
                yield item
            elif isinstance(item, Message):
                yield from _payloads(item)
