"""Bad input is refused with an error naming the field and the rule; nothing starts, nothing is written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from reissue.schemas.enums import DocumentType, Stage
from tests.support import materials
from tests.workflows.harness import FakeStack


def _valid(card: str, resident_id: str) -> dict[str, Any]:
    return {
        "applicant": {"name": "李四", "resident_id": resident_id, "mobile": "13912345678"},
        "card_number": card,
        "insured_category": "urban_employee",
        "affiliation": {
            "kind": "employer",
            "name": "重庆某某有限公司",
            "credit_code": "91310115591693856A",
        },
        "district": "500112",
        "channel": "hotline_12333",
    }


def _flip_check_char(resident_id: str) -> str:
    return resident_id[:-1] + ("1" if resident_id[-1] != "1" else "2")


BAD_INPUTS = [
    (
        "wrong check digit",
        lambda d: d["applicant"].update(
            resident_id=_flip_check_char(d["applicant"]["resident_id"])
        ),
        ("applicant", "resident_id"),
        "check character",
    ),
    (
        "impossible birth date",
        lambda d: d["applicant"].update(resident_id="500103199902301234"),
        ("applicant", "resident_id"),
        "not a real date",
    ),
    (
        "bad credit code",
        lambda d: d["affiliation"].update(credit_code="91310110666007217A"),
        ("affiliation", "employer", "credit_code"),
        "check character",
    ),
    (
        "unknown district",
        lambda d: d.update(district="500999"),
        ("district",),
        "not a Chongqing district",
    ),
    ("historic district", lambda d: d.update(district="500222"), ("district",), "historic"),
    (
        "bad mobile",
        lambda d: d["applicant"].update(mobile="12345"),
        ("applicant", "mobile"),
        "mobile",
    ),
    (
        "a policy the caller chose",
        lambda d: d.update(policy={"version": "EVIL-1", "temporary_report_validity": "P3650D"}),
        ("policy",),
        "not chosen by the caller",
    ),
    (
        "reported in the future",
        lambda d: d.update(reported_at=(datetime.now(UTC) + timedelta(days=1)).isoformat()),
        ("reported_at",),
        "must not be in the future",
    ),
]


async def test_bad_applications_are_refused_before_anything_starts(cases: FakeStack) -> None:
    """Each bad application is refused by the client, naming one field and its rule and
    echoing no personal data; no case starts and the registry is untouched."""
    resident_id, card = await cases.enrol()
    before = cases.fakes.snapshot()
    for label, spoil, loc, rule in BAD_INPUTS:
        data = _valid(card, resident_id)
        spoil(data)
        with pytest.raises(ValidationError) as err:
            await cases.client.report_loss(data)
        errors = err.value.errors()
        assert len(errors) == 1, (label, errors)
        assert errors[0]["loc"] == loc, label
        assert rule in errors[0]["msg"], label
        assert resident_id not in str(err.value), label  # no personal data echoed
    with pytest.raises(RPCError) as missing:
        await cases.client.handle(cases.client.case_id_for(card)).describe()
    assert missing.value.status is RPCStatusCode.NOT_FOUND
    assert cases.fakes.snapshot() == before


async def test_missing_material_is_refused_and_nothing_recorded(cases: FakeStack) -> None:
    f = cases.fakes
    app = await cases.application()
    case = (await cases.client.report_loss(app)).workflow_id
    st = await cases.wait_for(case, Stage.AWAITING_MATERIALS)
    assert st.loss_report_number
    await cases.notice_sent(st.case_id, "card_frozen")
    runs = dict(f.runs)

    with pytest.raises(WorkflowUpdateFailedError) as err:
        await cases.client.submit_materials(
            case, materials(st.loss_report_number, omit=(DocumentType.PHOTO,))
        )
    assert "documents: missing required material photo" in str(err.value.cause)
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await cases.client.submit_materials(case, materials("LR20990101000001"))
    assert "loss_proof_number: does not match" in str(err.value.cause)

    assert f.runs == runs and f.submissions == {}  # no step ran
    st = await cases.status(case)
    assert st.stage is Stage.AWAITING_MATERIALS and st.report_formal is False
    # Refused updates leave no trace in the history either.
    events = [e async for e in cases.client.handle(case).fetch_history_events()]
    assert not any(
        e.HasField("workflow_execution_update_accepted_event_attributes") for e in events
    )


async def test_policy_durations_must_be_positive() -> None:
    from reissue.schemas.policy import CasePolicy

    with pytest.raises(ValidationError) as err:
        CasePolicy(review_sla=timedelta(0))
    assert err.value.errors()[0]["loc"] == ("review_sla",)
