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
from tests.support import CODEC_TOKEN, Stack, materials, random_card_number, summary_text


async def _ids(stack: Stack, query: str, case: str) -> list[str]:
    """Workflow IDs matching a Web UI query, within this test's case."""
    return [
        w.id
        async for w in stack.client.temporal.list_workflows(f"({query}) AND WorkflowId = '{case}'")
    ]


async def _eventually(stack: Stack, query: str, case: str, *, present: bool) -> None:
    for _ in range(100):
        if bool(await _ids(stack, query, case)) is present:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{query!r} {'never' if present else 'still'} matched {case}")


async def test_review_queue_claim_release_and_expiry(stack: Stack) -> None:
    _app, case, report = await stack.open_case(channel="counter")
    await stack.submit(case, report)
    unclaimed = "CaseStage = 'UNDER_REVIEW' AND AssignedTo IS NULL"
    await _eventually(stack, unclaimed, case, present=True)
    due = await stack.client.handle(case).describe()
    assert due.typed_search_attributes.get(REVIEW_DUE_AT) is not None
    assert due.typed_search_attributes.get(REPORT_CHANNEL) == "counter"

    held = await stack.client.claim_review(case, {"reviewer": "rev-a"})
    assert held.assigned_to == "rev-a" and held.claim_expires_at and held.review_due_at
    await _eventually(stack, "AssignedTo = 'rev-a'", case, present=True)
    with pytest.raises(WorkflowUpdateFailedError, match="update"):
        await stack.client.claim_review(case, {"reviewer": "rev-b"})
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await stack.client.review(case, {"reviewer": "rev-b", "verdict": "approve"})
    assert "claimed by rev-a" in str(err.value.cause)

    released = await stack.client.release_review(
        case, {"supervisor": "sup-1", "reason": "rev-a is on leave"}
    )
    assert released.assigned_to is None
    await _eventually(stack, unclaimed, case, present=True)
    assert (
        await stack.one(
            "SELECT actor FROM case_events WHERE case_id = $1 AND event_type = 'review_released'",
            (await stack.status(case)).case_id,
        )
        == "sup-1"
    )

    await stack.client.claim_review(case, {"reviewer": "rev-b"})
    await stack.fast_forward(case, stack.policy.review_claim_ttl + timedelta(minutes=1))
    st = await stack.status(case)
    assert st.assigned_to is None and not st.sla_breached  # the claim ran out, the SLA did not
    assert (await stack.client.handle(case).describe()).typed_search_attributes.get(
        ASSIGNED_TO
    ) is None

    outcome = await stack.client.review(case, {"reviewer": "rev-a", "verdict": "approve"})
    assert outcome.stage is Stage.AWAITING_PAYMENT
    await _eventually(
        stack, "CaseStage = 'AWAITING_PAYMENT' AND ReviewDueAt IS NULL", case, present=True
    )


async def test_hotline_reports_and_gets_status_in_one_round_trip(stack: Stack) -> None:
    app = await stack.application(channel="hotline_12333")
    status = await stack.client.report_loss_and_wait(app)
    assert status.stage is Stage.AWAITING_MATERIALS and status.card_frozen
    assert status.loss_report_number and not status.report_formal
    again = await stack.client.report_loss_and_wait(app)
    assert again.case_id == status.case_id
    assert again.loss_report_number == status.loss_report_number
    assert (
        await stack.one("SELECT count(*) FROM loss_reports WHERE card_number = $1", app.card_number)
        == 1
    )


async def _temporal(stack: Stack, codec_url: str, *args: str) -> tuple[int, str, str]:
    """The `temporal` CLI, encoding and decoding payloads through our codec server."""
    proc = await asyncio.create_subprocess_exec(
        str(temporal_binary()),
        *args,
        "--address",
        stack.env.client.service_client.config.target_host,
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
    stack: Stack, codec_url: str
) -> None:
    resident_id, card = await stack.enrol()
    case = stack.client.case_id_for(card)
    application: dict[str, Any] = {
        "applicant": {"name": "孙七", "resident_id": resident_id, "mobile": "13600001234"},
        "card_number": card,
        "insured_category": "urban_employee",
        "district": "500105",
        "channel": "counter",
    }
    code, _, err = await _temporal(
        stack,
        codec_url,
        "workflow",
        "start",
        "--type",
        "CardReissueWorkflow",
        "--task-queue",
        stack.settings.task_queue,
        "--workflow-id",
        case,
        "--input",
        json.dumps(application, ensure_ascii=False),
    )
    assert code == 0, err
    st = await stack.wait_for(case, Stage.AWAITING_MATERIALS)
    assert st.loss_report_number

    submission = materials(st.loss_report_number).model_dump_json()
    code, out, err = await _temporal(
        stack,
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
        stack,
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
        stack,
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
    st = await stack.status(case)
    assert st.fee and st.fee.order_id
    code, _, err = await _temporal(
        stack,
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
    await stack.wait_for(case, Stage.CARD_PRODUCTION)

    # A refused update by name gets the validator's reason.
    code, out, err = await _temporal(
        stack,
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


async def test_bad_input_by_name_fails_the_case_at_once_naming_the_field(stack: Stack) -> None:
    card = random_card_number()
    bad_id = "110105194912310021"  # wrong check character
    handle = await stack.client.temporal.start_workflow(
        "CardReissueWorkflow",
        {
            "applicant": {"name": "周八", "resident_id": bad_id, "mobile": "13800138000"},
            "card_number": card,
            "insured_category": "retiree",
            "district": "600999",
            "channel": "counter",
        },
        id=stack.client.case_id_for(card),
        task_queue=stack.settings.task_queue,
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
    assert await stack.one("SELECT count(*) FROM activity_runs") == 0


async def test_historic_district_by_name_is_refused_by_the_registry(stack: Stack) -> None:
    """The workflow decodes without today's district list (replay must not depend on it);
    the registry checks it when the case opens, and writes nothing."""
    resident_id, card = await stack.enrol()
    handle = await stack.client.temporal.start_workflow(
        "CardReissueWorkflow",
        {
            "applicant": {"name": "周八", "resident_id": resident_id, "mobile": "13800138000"},
            "card_number": card,
            "insured_category": "retiree",
            "district": "500222",  # Qijiang County before 2011: historic, not current
            "channel": "counter",
        },
        id=stack.client.case_id_for(card),
        task_queue=stack.settings.task_queue,
    )
    with pytest.raises(WorkflowFailureError) as failed:
        await asyncio.wait_for(handle.result(), timeout=20)
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidCaseInput"
    assert "district: district code 500222 is a historic code" in cause.message
    assert await stack.one("SELECT count(*) FROM activity_runs") == 0
    assert await stack.card_status(card) == "active"


async def test_ui_reads_the_case_in_plain_words_without_personal_data(stack: Stack) -> None:
    app, case, report = await stack.open_case()
    await stack.submit(case, report)
    await stack.approve(case)
    await stack.wait_for(case, Stage.AWAITING_PAYMENT)
    handle = stack.client.handle(case)

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
