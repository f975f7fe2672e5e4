"""Audit: the replay corpus, deliberate non-determinism, timeline export, history-vs-registry checks."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

from temporalio.client import WorkflowHistory

from reissue.ops.audit import build_timeline, export, load_history_file, replay, verify
from reissue.schemas.enums import Stage
from reissue.workflows.late_payment import LatePaymentWorkflow
from tests.audit.altered_workflow import AlteredCardReissueWorkflow
from tests.support import TEST_CONVERTER, TEST_KEYS_SPEC, Stack, materials

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "histories"
REISSUE = str(Path(sys.prefix) / "bin" / "reissue")
EMPLOYER = {"kind": "employer", "name": "重庆某某科技有限公司", "credit_code": "91310110666007217T"}

# Every path of the workflow has at least one recorded history.
PATHS = {
    "happy": "employee_with_unit_standard_production_completes",
    "fee exempt, instant": "resident_fee_exempt_instant_production",
    "correction": "one_correction_round_then_approval",
    "rejection": "exceeding_max_correction_rounds_rejects",
    "temporary report lapse": "temporary_report_lifts_itself_when_never_made_formal",
    "resubmission lapse": "no_resubmission_after_correction_lapses_with_old_card_void",
    "payment lapse": "payment_never_arrives_lapses_and_cancels_the_order",
    "withdrawal": "card_found_while_temporary_withdraws_and_unfreezes",
    "unit escalation": "unit_never_answers_then_staff_override",
    "review SLA escalation": "review_sla_breach_flags_and_notifies_but_completes",
    "production escalation": "overdue_production_escalates_then_pickup_reminders",
    "cancellation": "cancel_after_payment_refunds_and_voids_the_old_card",
    "invalid input": "bad_input_by_name_fails_the_case_at_once_naming_the_field",
}


def _corpus() -> list[tuple[str, WorkflowHistory]]:
    return [
        (f"{p.parent.name}/{p.name}", load_history_file(p)) for p in sorted(CORPUS.rglob("*.json"))
    ]


async def _cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        REISSUE,
        *args,
        cwd=ROOT,
        env=os.environ
        | {"PYTHONPATH": str(ROOT), "COLUMNS": "250", "REISSUE_CODEC_KEYS": TEST_KEYS_SPEC},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def test_corpus_covers_every_path() -> None:
    names = {p.stem for p in CORPUS.rglob("*.json")}
    missing = [
        path
        for path, stem in PATHS.items()
        if not any(n == stem or n.startswith(stem + "-") for n in names)
    ]
    assert not missing, f"no recorded history for: {missing}; run scripts/record-histories"


async def test_corpus_replays_clean_against_current_code() -> None:
    outcomes = await replay(_corpus(), TEST_CONVERTER)
    assert len(outcomes) >= len(PATHS)
    assert [o for o in outcomes if not o.ok] == []


async def test_cli_replay_gates_a_deploy(tmp_path: Path) -> None:
    """The command's verdict and exit code, on three cases of the corpus (the whole corpus
    replays in `test_corpus_replays_clean_against_current_code`)."""
    for path in ("happy", "cancellation", "temporary report lapse"):
        [history] = CORPUS.rglob(PATHS[path] + ".json")
        shutil.copy(history, tmp_path / history.name)
    code, out, err = await _cli("audit", "replay", "--dir", str(tmp_path))
    assert code == 0, out + err
    assert "3 clean, 0 diverged" in out

    code, out, err = await _cli(
        "audit",
        "replay",
        "--dir",
        str(tmp_path),
        "--workflow",
        "tests.audit.altered_workflow:AlteredCardReissueWorkflow",
    )
    assert code == 1, out + err
    assert "diverged at event 5 (" in out and "Nondeterminism" in out
    assert "0 clean" in out


async def test_altered_workflow_names_the_diverging_event() -> None:
    outcomes = await replay(
        _corpus(), TEST_CONVERTER, workflows=[AlteredCardReissueWorkflow, LatePaymentWorkflow]
    )
    late = [o for o in outcomes if o.workflow_type == "LatePaymentWorkflow"]
    assert late and all(o.ok for o in late)  # the payment record is unchanged and replays clean
    outcomes = [o for o in outcomes if o not in late]
    assert outcomes and not any(o.ok for o in outcomes)
    assert all("Nondeterminism" in o.error and o.event_id for o in outcomes)
    # The change adds a timer before the case's first command: in every case that opened,
    # that is showing its stage in the Web UI, event 5, which no longer matches.
    happy = next(o for o in outcomes if o.source.endswith(PATHS["happy"] + ".json"))
    assert (happy.event_id, happy.event_type) == (5, "UpsertWorkflowSearchAttributes")


async def _complete_case(stack: Stack) -> tuple[str, str, str]:
    app, case, report = await stack.open_case(affiliation=EMPLOYER)
    await stack.client.submit_materials(case, materials(report))
    st = await stack.wait_for(case, Stage.AWAITING_AFFILIATION)
    # The portal answers once it has the request (before, its answer could land first).
    await stack.notice_sent(st.case_id, "affiliation_request")
    await stack.client.respond_affiliation(case, {"confirmed": True, "responder": "hr-portal"})
    await stack.wait_for(case, Stage.UNDER_REVIEW)
    await stack.client.review(case, {"reviewer": "rev-07", "verdict": "approve"})
    await stack.pay(case, ref="BANK-4711")
    st = await stack.wait_for(case, Stage.CARD_PRODUCTION)
    new_card = await stack.one("SELECT next_card_number()")
    await stack.client.card_produced(
        case,
        {
            "order_id": st.production_order_id,
            "new_card_number": new_card,
            "produced_at": datetime.now(UTC),
        },
    )
    await stack.wait_for(case, Stage.READY_FOR_PICKUP)
    await stack.client.card_collected(
        case, {"new_card_number": new_card, "handed_over_by": "counter-01"}
    )
    await stack.client.result(case)
    return case, app.applicant.resident_id, app.card_number


async def test_exported_timeline_reads_as_the_story_of_the_case(
    stack: Stack, tmp_path: Path
) -> None:
    case, resident_id, card = await _complete_case(stack)
    files = await export(stack.client.temporal, case, tmp_path)
    assert {f.suffix for f in files} == {".json", ".md", ".html"}
    md = (tmp_path / f"{case}.timeline.md").read_text(encoding="utf-8")
    story = [
        "Loss of card",
        "Loss registered",
        "Card frozen in the registry",
        "Bank account frozen",
        "Stage → AWAITING_MATERIALS",
        "Deadline set: materials reminder 1 of 3",
        "Update submit_materials accepted",
        "Materials pre-check passed",
        "Loss report made formal",
        "Confirmation requested",
        "Signal affiliation_response",
        "Deadline set: review SLA",
        "Update review accepted",
        "Review decision: approve",
        "Fee assessed: ¥25.00",
        "Payment order",
        "Signal payment_confirmed",
        "Payment received: ¥25.00",
        "Card production ordered (standard)",
        "Signal card_produced",
        "Card produced",
        "Signal card_collected",
        "New card activated",
        "Case closed: COMPLETED",
    ]
    positions = [md.find(line) for line in story]
    assert -1 not in positions, [s for s, p in zip(story, positions, strict=True) if p == -1]
    assert positions == sorted(positions), md
    assert "Policy in force: **CQ-2026.1**" in md and "rev-07" in md
    assert resident_id not in md and card not in md and "张三" not in md
    assert "applicant 张*, ID 500103***********" in md
    html = (tmp_path / f"{case}.timeline.html").read_text(encoding="utf-8")
    assert "<table>" in html and "New card activated" in html and resident_id not in html
    history = json.loads((tmp_path / f"{case}.history.json").read_text(encoding="utf-8"))
    assert history["events"][0]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"

    unmasked = await build_timeline(
        await stack.client.handle(case).fetch_history(), TEST_CONVERTER, unmask=True
    )
    assert resident_id in unmasked.to_markdown()


async def test_verify_agrees_then_lists_tampering(stack: Stack) -> None:
    case, _, card = await _complete_case(stack)
    assert await verify(stack.client.temporal, stack.pool, case) == []

    case_id = (await stack.status(case)).case_id
    async with stack.pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL session_replication_role = replica")  # a broken registry
        await conn.execute("UPDATE cards SET status = 'frozen' WHERE card_number = $1", card)
        await conn.execute(
            "DELETE FROM notifications WHERE case_id = $1 AND template = 'payment_requested'",
            case_id,
        )
        await conn.execute(
            "UPDATE payment_orders SET status = 'refunded' WHERE case_id = $1", case_id
        )
    problems = await verify(stack.client.temporal, stack.pool, case)
    assert any("old card" in p and "history says replaced, registry frozen" in p for p in problems)
    assert any("payment_requested" in p and "not in the outbox" in p for p in problems)
    assert any(
        "payment order" in p and "history says paid, database refunded" in p for p in problems
    )
    assert len(problems) == 3
