"""The operations console and other services: review queue, visibility, by-name calls."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from reissue.devtools.stack import temporal_binary
from reissue.schemas.enums import Stage
from reissue.schemas.visibility import ASSIGNED_TO, REPORT_CHANNEL, REVIEW_DUE_AT
from tests.support import CODEC_TOKEN, eventually, materials, random_card_number, summary_text
from tests.workflows.harness import FakeStack


async def _matched(cases: FakeStack, query: str, case: str) -> None:
    """Wait until a Web UI query (visibility) finds this test's case."""

    async def found() -> None:
        ids = [
            w.id
            async for w in cases.client.temporal.list_workflows(
                f"({query}) AND WorkflowId = '{case}'"
            )
        ]
        assert ids == [case], f"{query!r} never matched {case}"

    await eventually(found)


async def test_review_queue_claim_release_and_expiry(cases: FakeStack) -> None:
    _app, case, report = await cases.open_case(channel="counter")
    await cases.submit(case, report)
    unclaimed = "CaseStage = 'UNDER_REVIEW' AND AssignedTo IS NULL"
    await _matched(cases, unclaimed, case)
    due = await cases.client.handle(case).describe()
    assert due.typed_search_attributes.get(REVIEW_DUE_AT) is not None
    assert due.typed_search_attributes.get(REPORT_CHANNEL) == "counter"

    held = await cases.client.claim_review(case, {"reviewer": "rev-a"})
    assert held.assigned_to == "rev-a" and held.claim_expires_at and held.review_due_at
    await _matched(cases, "AssignedTo = 'rev-a'", case)
    with pytest.raises(WorkflowUpdateFailedError, match="update"):
        await cases.client.claim_review(case, {"reviewer": "rev-b"})
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await cases.client.review(case, {"reviewer": "rev-b", "verdict": "approve"})
    assert "claimed by rev-a" in str(err.value.cause)

    released = await cases.client.release_review(
        case, {"supervisor": "sup-1", "reason": "rev-a is on leave"}
    )
    assert released.assigned_to is None
    await _matched(cases, unclaimed, case)
    case_id = await cases.case_id(case)
    assert [e.actor for e in cases.fakes.events_of(case_id, "review_released")] == ["sup-1"]

    await cases.client.claim_review(case, {"reviewer": "rev-b"})
    await cases.fast_forward(case, cases.policy.review_claim_ttl + timedelta(minutes=1))
    # (the expiry timer has fired; the case takes its turn to let the claim go)
    st = await cases.until(case, lambda st: st.assigned_to is None)
    assert not st.sla_breached  # the claim ran out, the SLA did not

    async def unassigned() -> bool:
        desc = await cases.client.handle(case).describe()
        return desc.typed_search_attributes.get(ASSIGNED_TO) is None

    await eventually(unassigned)

    outcome = await cases.client.review(case, {"reviewer": "rev-a", "verdict": "approve"})
    assert outcome.stage is Stage.AWAITING_PAYMENT
    await _matched(cases, "CaseStage = 'AWAITING_PAYMENT' AND ReviewDueAt IS NULL", case)


async def test_hotline_reports_and_gets_status_in_one_round_trip(cases: FakeStack) -> None:
    app = await cases.application(channel="hotline_12333")
    status = await cases.client.report_loss_and_wait(app)
    assert status.stage is Stage.AWAITING_MATERIALS and status.card_frozen
    assert status.loss_report_number and not status.report_formal
    again = await cases.client.report_loss_and_wait(app)
    assert again.case_id == status.case_id
    assert again.loss_report_number == status.loss_report_number
    assert [r.card_number for r in cases.fakes.reports.values()] == [app.card_number]


async def _temporal(cases: FakeStack, codec_url: str, *args: str) -> tuple[int, str, str]:
    """The `temporal` CLI, encoding and decoding payloads through our codec server."""
    proc = await asyncio.create_subprocess_exec(
        str(temporal_binary()),
        *args,
        "--address",
        cases.env.client.service_client.config.target_host,
        "--codec-endpoint",
        codec_url,
        "--codec-auth",
        f"Bearer {CODEC_TOKEN}",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_start_update_signal_and_query_by_name_with_the_temporal_cli(
    cases: FakeStack, codec_url: str
) -> None:
    resident_id, card = await cases.enrol()
    case = cases.client.case_id_for(card)
    application: dict[str, Any] = {
        "applicant": {"name": "孙七", "resident_id": resident_id, "mobile": "13600001234"},
        "card_number": card,
        "insured_category": "urban_employee",
        "district": "500105",
        "channel": "counter",
    }
    code, _, err = await _temporal(
        cases,
        codec_url,
        "workflow",
        "start",
        "--type",
        "CardReissueWorkflow",
        "--task-queue",
        cases.task_queue,
        "--workflow-id",
        case,
        "--input",
        json.dumps(application, ensure_ascii=False),
    )
    assert code == 0, err
    st = await cases.wait_for(case, Stage.AWAITING_MATERIALS)
    assert st.loss_report_number

    submission = materials(st.loss_report_number).model_dump_json()
    code, out, err = await _temporal(
        cases,
        codec_url,
        "workflow",
        "update",
        "execute",
        "--workflow-id",
        case,
        "--name",
        "submit_materials",
        "--input",
        submission,
        "--output",
        "json",
    )
    assert code == 0, err
    assert json.loads(out)["result"]["report_formal"] is True
    code, out, err = await _temporal(
        cases,
        codec_url,
        "workflow",
        "update",
        "execute",
        "--workflow-id",
        case,
        "--name",
        "review",
        "--input",
        json.dumps({"reviewer": "rev-9", "verdict": "approve"}),
    )
    assert code == 0, err
    code, out, err = await _temporal(
        cases,
        codec_url,
        "workflow",
        "query",
        "--workflow-id",
        case,
        "--type",
        "status",
        "--output",
        "json",
    )
    assert code == 0, err
    assert '"AWAITING_PAYMENT"' in out
    st = await cases.status(case)
    assert st.fee and st.fee.order_id
    code, _, err = await _temporal(
        cases,
        codec_url,
        "workflow",
        "signal",
        "--workflow-id",
        case,
        "--name",
        "payment_confirmed",
        "--input",
        json.dumps(
            {
                "order_id": st.fee.order_id,
                "amount_fen": 2500,
                "payment_ref": "CLI-PAY-1",
                "paid_at": datetime.now(UTC).isoformat(),
            }
        ),
    )
    assert code == 0, err
    await cases.wait_for(case, Stage.CARD_PRODUCTION)

    # A refused update by name gets the validator's reason.
    code, out, err = await _temporal(
        cases,
        codec_url,
        "workflow",
        "update",
        "execute",
        "--workflow-id",
        case,
        "--name",
        "card_found",
        "--input",
        json.dumps({"channel": "counter"}),
    )
    assert code != 0 and "formal" in (out + err)


async def test_bad_input_by_name_fails_the_case_at_once_naming_the_field(cases: FakeStack) -> None:
    card = random_card_number()
    bad_id = "110105194912310021"  # wrong check character
    handle = await cases.client.temporal.start_workflow(
        "CardReissueWorkflow",
        {
            "applicant": {"name": "周八", "resident_id": bad_id, "mobile": "13800138000"},
            "card_number": card,
            "insured_category": "retiree",
            "district": "600999",
            "channel": "counter",
        },
        id=cases.client.case_id_for(card),
        task_queue=cases.task_queue,
    )
    with pytest.raises(WorkflowFailureError) as failed:
        await asyncio.wait_for(handle.result(), timeout=20)
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidCaseInput"
    assert cause.non_retryable
    assert "applicant.resident_id" in cause.message and "district" in cause.message
    assert bad_id not in cause.message
    # One workflow task, not a loop of failing ones.
    events = [e async for e in handle.fetch_history_events()]
    assert not any(e.HasField("workflow_task_failed_event_attributes") for e in events)
    assert sum(cases.fakes.attempts.values()) == 0


async def test_historic_district_by_name_is_refused_by_the_registry(cases: FakeStack) -> None:
    """The workflow decodes without today's district list (replay must not depend on it);
    the registry checks it when the case opens, and writes nothing."""
    resident_id, card = await cases.enrol()
    handle = await cases.client.temporal.start_workflow(
        "CardReissueWorkflow",
        {
            "applicant": {"name": "周八", "resident_id": resident_id, "mobile": "13800138000"},
            "card_number": card,
            "insured_category": "retiree",
            "district": "500222",  # Qijiang County before 2011: historic, not current
            "channel": "counter",
        },
        id=cases.client.case_id_for(card),
        task_queue=cases.task_queue,
    )
    with pytest.raises(WorkflowFailureError) as failed:
        await asyncio.wait_for(handle.result(), timeout=20)
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidCaseInput"
    assert "district: district code 500222 is a historic code" in cause.message
    assert cases.fakes.runs == {} and cases.fakes.card(card) == "active"


async def test_ui_reads_the_case_in_plain_words_without_personal_data(cases: FakeStack) -> None:
    app, case, report = await cases.open_case()
    await cases.submit(case, report)
    await cases.approve(case)
    await cases.wait_for(case, Stage.AWAITING_PAYMENT)
    handle = cases.client.handle(case)

    desc = await handle.describe()
    summary = await desc.static_summary()
    assert summary is not None and app.card_number[-4:] in summary
    assert "district 500103" in summary
    metadata = await handle.query("__temporal_workflow_metadata")
    details = metadata.current_details
    assert "AWAITING_PAYMENT" in details and "¥25.00" in details and "until" in details

    timers, activities = [], []
    async for event in handle.fetch_history_events():
        text = (
            await summary_text(event.user_metadata.summary)
            if event.HasField("user_metadata")
            else ""
        )
        if event.HasField("timer_started_event_attributes"):
            timers.append(text)
        if event.HasField("activity_task_scheduled_event_attributes"):
            activities.append(text)
    assert "payment reminder" in timers
    assert "materials reminder 1 of 3" in timers
    assert "freeze the card's bank account" in activities
    shown = " ".join([summary, details, *timers, *activities])
    for personal in (
        app.applicant.resident_id,
        app.applicant.mobile,
        app.applicant.name,
        app.card_number,
    ):
        assert personal not in shown
