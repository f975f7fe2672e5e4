"""Ownership answers are not an oracle: failed ownership checks (`CardOwnerMismatch`
on a report, `not-the-owner` on card-found, the `/formal` mismatch) are limited per
card and per credential; past the limit, every wrong answer is refused alike (429)
for a while, lifting by hotline or online is refused even with the right answer, and
operations are told once. A lock never stands in the safe direction: the owner's loss
report (which freezes the card) goes through, so whoever found a card cannot keep it
usable by failing checks on purpose (hostile review of issue 24)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from structlog.testing import capture_logs

from reissue.api.ownership import OwnershipLimits
from tests.api.conftest import key_for
from tests.support import Stack, random_resident_id

LIMITS = OwnershipLimits()


async def _report(
    api: httpx.AsyncClient, body: dict[str, Any], key: dict[str, str], resident_id: str
) -> httpx.Response:
    applicant = body["applicant"] | {"resident_id": resident_id}
    return await api.post("/v1/cases", json=body | {"applicant": applicant}, headers=key)


async def _told(stack: Stack) -> list[dict[str, Any]]:
    rows = await stack.rows(
        "SELECT case_id, recipient, message FROM notifications"
        " WHERE template = 'ownership_checks_locked' ORDER BY id"
    )
    return [dict(r) for r in rows]


async def test_guessing_a_card_s_owner_is_stopped_and_operations_are_told(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    app = await stack.application()
    body = app.model_dump(mode="json")
    case = stack.client.case_id_for(app.card_number)
    guesser = await key_for(stack, "hotline")
    guesses = [random_resident_id() for _ in range(LIMITS.per_card)]
    with capture_logs() as logs:
        for guess in guesses:
            r = await _report(api, body, guesser, guess)
            assert r.status_code == 422 and r.json()["type"].endswith("CardOwnerMismatch")
        # The limit is reached: a wrong answer is refused as locked, and tells nothing.
        r = await _report(api, body, guesser, random_resident_id())
    assert r.status_code == 429, r.text
    assert r.json()["type"] == "urn:reissue:problem:too-many-failed-ownership-checks"
    assert int(r.headers["Retry-After"]) > 0
    # Per card: another credential meets the same lock.
    online = await key_for(stack, "online")
    r = await _report(api, body | {"channel": "online"}, online, random_resident_id())
    assert r.status_code == 429, r.text
    assert await stack.card_status(app.card_number) == "active"  # nothing reported
    # The owner's own report is never kept out by the lock: the card freezes.
    r = await _report(api, body | {"channel": "online"}, online, app.applicant.resident_id)
    assert r.status_code == 200, r.text
    assert await stack.card_status(app.card_number) == "frozen"
    told = await _told(stack)
    assert [(t["case_id"], t["recipient"]) for t in told] == [(case, "operations")]
    locked = [e for e in logs if e["event"] == "ownership checks locked"]
    assert [e["subject"] for e in locked] == [f"card:{case}"]
    for text in (str(told), str(logs)):
        for resident_id in [*guesses, app.applicant.resident_id]:
            assert resident_id not in text
        assert app.card_number not in text


async def test_a_credential_guessing_across_cards_is_stopped(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    guesser = await key_for(stack, "hotline")
    per_card = LIMITS.per_card - 1  # below each card's limit: only the key's is reached
    cards = -(-LIMITS.per_credential // per_card)
    for n in range(cards):
        body = (await stack.application()).model_dump(mode="json")
        for _ in range(min(per_card, LIMITS.per_credential - n * per_card)):
            r = await _report(api, body, guesser, random_resident_id())
            assert r.status_code == 422, r.text
    app = await stack.application()
    r = await _report(api, app.model_dump(mode="json"), guesser, random_resident_id())
    assert r.status_code == 429, r.text
    assert await stack.card_status(app.card_number) == "active"
    # Another key reports the same card: the lock was the guesser's.
    r = await _report(
        api, app.model_dump(mode="json"), await key_for(stack, "hotline"), app.applicant.resident_id
    )
    assert r.status_code == 200, r.text
    told = await _told(stack)
    assert len(told) == 1 and told[0]["recipient"] == "operations"
    key_id = guesser["Authorization"].split("_")[1]
    assert key_id in told[0]["message"]
    # Once the window has passed, the key checks again.
    async with stack.pool.acquire() as conn:
        await conn.execute(
            "UPDATE ownership_failures SET locked_until = now() - interval '1 second',"
            " window_started_at = now() - $1::interval",
            LIMITS.window,
        )
    other = await stack.application()
    r = await _report(api, other.model_dump(mode="json"), guesser, other.applicant.resident_id)
    assert r.status_code == 200, r.text


async def test_card_found_and_formal_mismatches_count_against_the_card(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    app, case, _ = await stack.open_case()
    hotline = await key_for(stack, "hotline")
    counter = await key_for(stack, "counter", acts_for="counter-07")
    for n in range(LIMITS.per_card):
        wrong = random_resident_id()
        if n % 2:
            found = {"channel": "hotline_12333", "resident_id": wrong}
            r = await api.post(f"/v1/cases/{case}/card-found", json=found, headers=hotline)
            assert r.status_code == 403 and r.json()["type"].endswith("not-the-owner"), r.text
        else:
            formal = {"resident_id": wrong, "received_by": "counter-07"}
            r = await api.post(f"/v1/cases/{case}/formal", json=formal, headers=counter)
            assert r.status_code == 422 and r.json()["type"].endswith("not-the-owner"), r.text
    found = {"channel": "hotline_12333", "resident_id": app.applicant.resident_id}
    r = await api.post(f"/v1/cases/{case}/card-found", json=found, headers=hotline)
    assert r.status_code == 429, r.text
    assert await stack.card_status(app.card_number) == "frozen"  # still reported
    st = await stack.status(case)
    assert not st.report_formal and st.stage.value == "AWAITING_MATERIALS"
    assert len(await _told(stack)) == 1
    # At a counter the clerk saw the ID card: a wrong answer is refused as locked, the
    # owner's goes through (the lock never keeps the owner from a counter).
    formal = {"resident_id": random_resident_id(), "received_by": "counter-07"}
    r = await api.post(f"/v1/cases/{case}/formal", json=formal, headers=counter)
    assert r.status_code == 429, r.text
    formal = {"resident_id": app.applicant.resident_id, "received_by": "counter-07"}
    r = await api.post(f"/v1/cases/{case}/formal", json=formal, headers=counter)
    assert r.status_code == 200, r.text
    assert (await stack.status(case)).report_formal


async def test_guesses_sent_at_once_meet_the_same_limit(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    app = await stack.application()
    body = app.model_dump(mode="json")
    keys = [await key_for(stack, "hotline") for _ in range(4)]
    answers = await asyncio.gather(
        *(_report(api, body, keys[n % 4], random_resident_id()) for n in range(4 * LIMITS.per_card))
    )
    statuses = sorted(r.status_code for r in answers)
    assert statuses.count(422) == LIMITS.per_card, statuses  # no more checks than the limit
    assert set(statuses) == {422, 429}
    assert len(await _told(stack)) == 1
