"""What a partner reads of a case: the case ID its URLs take, and only the view its
job needs (a hotline never reads staff IDs, free text or anomalies)."""

from __future__ import annotations

import httpx

from reissue.schemas.enums import Stage
from tests.api.conftest import key_for
from tests.support import Stack

# What the hotline and the online service read: where the case is, whom it waits for,
# until when, and the report the person needs for their card.
REPORTER = {
    "view",
    "case_id",
    "stage",
    "awaiting",
    "deadline",
    "card_masked",
    "channel",
    "loss_reported_at",
    "liability_cutoff",
    "loss_report_number",
    "report_formal",
    "card_frozen",
    "bank_frozen",
    "report_stands_until",
    "new_card_masked",
}
# The counter also reads what it takes in and hands over: the materials checklist,
# the corrections asked for, the unit's answer, the fee.
COUNTER = REPORTER | {
    "materials",
    "correction_round",
    "correction_reasons",
    "affiliation_status",
    "fee",
}
STAFF_AND_FREE_TEXT = {
    "received_by",
    "assigned_to",
    "anomalies",
    "ignored_events",
    "timeline",
    "pending_action",
    "outcome_reason",
    "flags",
    "money",
}


async def test_the_case_id_the_api_answers_is_the_one_its_urls_take(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    """Finding 8: `POST /v1/cases` answered `reissue-…:<run id>`, which every URL refused."""
    app = await stack.application()
    hotline = await key_for(stack, "hotline")
    r = await api.post("/v1/cases", json=app.model_dump(mode="json"), headers=hotline)
    assert r.status_code == 200, r.text
    case_id = r.json()["case_id"]
    assert case_id == stack.client.case_id_for(app.card_number)
    assert r.headers["Location"] == f"/v1/cases/{case_id}"
    read = await api.get(r.headers["Location"], headers=hotline)
    assert read.status_code == 200, read.text
    assert read.json()["case_id"] == case_id and read.json()["stage"] == "AWAITING_MATERIALS"
    found = {"channel": "counter", "resident_id": app.applicant.resident_id}
    clerk = await key_for(stack, "counter", acts_for="counter-07")  # the clerk saw the ID
    r = await api.post(f"/v1/cases/{case_id}/card-found", json=found, headers=clerk)
    assert r.status_code == 200, r.text
    # Asked again with the same Idempotency-Key, the kept answer has its Location too.
    other = await stack.application()
    keyed = hotline | {"Idempotency-Key": "report-1"}
    first = await api.post("/v1/cases", json=other.model_dump(mode="json"), headers=keyed)
    again = await api.post("/v1/cases", json=other.model_dump(mode="json"), headers=keyed)
    assert first.headers["Location"] == again.headers["Location"]
    assert again.headers["Location"] == f"/v1/cases/{stack.client.case_id_for(other.card_number)}"


async def test_each_partner_kind_reads_only_its_view_of_a_case(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    """Finding 13: any hotline key read a case's free text, staff IDs and anomalies."""
    app, case, report = await stack.open_case()
    await stack.submit(case, report, received_by="counter-07")
    await stack.client.review(
        case,
        {"reviewer": "rev-01", "verdict": "request_correction", "reasons": ["photo_unclear"]},
    )
    await stack.wait_for(case, Stage.AWAITING_MATERIALS)
    views = {}
    for partner in ("hotline", "online", "counter", "operations"):
        r = await api.get(f"/v1/cases/{case}", headers=await key_for(stack, partner))
        assert r.status_code == 200, (partner, r.text)
        views[partner] = r.json()
    for partner in ("hotline", "online"):
        assert set(views[partner]) == REPORTER, partner
        assert views[partner]["view"] == "reporter"
        for secret in ("counter-07", "rev-01", "photo_unclear", app.card_number):
            assert secret not in str(views[partner]), (partner, secret)
    assert set(views["counter"]) == COUNTER and views["counter"]["view"] == "counter"
    assert views["counter"]["correction_reasons"] == ["photo_unclear"]
    assert not STAFF_AND_FREE_TEXT & set(views["counter"])
    assert "counter-07" not in str(views["counter"])
    full = views["operations"]
    assert full["view"] == "operations" and full["received_by"] == ["counter-07"]
    assert STAFF_AND_FREE_TEXT <= set(full)
    assert {v["case_id"] for v in views.values()} == {case}


async def test_a_report_is_answered_with_the_reporter_s_view(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    app = await stack.application(channel="online")
    r = await api.post(
        "/v1/cases", json=app.model_dump(mode="json"), headers=await key_for(stack, "online")
    )
    assert r.status_code == 200, r.text
    assert set(r.json()) == REPORTER
    counter_app = await stack.application(channel="counter")
    r = await api.post(
        "/v1/cases",
        json=counter_app.model_dump(mode="json"),
        headers=await key_for(stack, "counter"),
    )
    assert r.status_code == 200, r.text
    assert set(r.json()) == COUNTER
