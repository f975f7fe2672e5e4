"""Versioning: the final payment reminder was added behind `workflow.patched`.

Histories recorded before the change (corpus v1) replay unchanged with today's
code, and never send the new reminder; new cases take the new path and record
the patch marker.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from temporalio.api.enums.v1 import EventType

from reissue.ops.audit import load_history_file, replay
from reissue.schemas.enums import Stage
from reissue.workflows.card_reissue import (
    PATCH_FINAL_PAYMENT_REMINDER,
    PATCH_LEAN,
    PATCH_SYSTEM_OF_RECORD,
)
from tests.support import TEST_CONVERTER, Stack, step_summaries

V1_PAYMENT_LAPSE = (
    Path(__file__).resolve().parents[1]
    / "histories"
    / "v1"
    / "payment_never_arrives_lapses_and_cancels_the_order.json"
)


async def _reminder_summaries(history_events: list) -> list[str]:  # type: ignore[type-arg]
    return [
        summary
        for summary in await step_summaries(history_events)
        if "reminder" in summary and "applicant" in summary
    ]


def _markers(history_events: list) -> list[str]:  # type: ignore[type-arg]
    """The text of every marker (a patch marker carries its patch ID)."""
    return [
        str(e.marker_recorded_event_attributes)
        for e in history_events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    ]


async def test_a_case_recorded_before_the_change_replays_on_the_old_path() -> None:
    history = load_history_file(V1_PAYMENT_LAPSE)
    assert not any(PATCH_FINAL_PAYMENT_REMINDER in m for m in _markers(list(history.events)))
    assert await _reminder_summaries(list(history.events)) == ["reminder 1 of 1 sent to applicant"]
    [outcome] = await replay([(V1_PAYMENT_LAPSE.name, history)], TEST_CONVERTER)
    assert outcome.ok, outcome.error


async def test_a_new_case_takes_the_new_path(stack: Stack) -> None:
    _app, case, report = await stack.open_case()
    await stack.submit(case, report)
    await stack.approve(case)
    st = await stack.wait_for(case, Stage.AWAITING_PAYMENT)
    await stack.fast_forward(case, stack.policy.payment_deadline + timedelta(hours=1))
    assert (await stack.client.result(case)).outcome is Stage.LAPSED

    history = await stack.client.handle(case).fetch_history()
    events = list(history.events)
    # A new case records the latest patch, which takes in every earlier one.
    markers = _markers(events)
    assert any(PATCH_LEAN in m for m in markers)
    assert not any(PATCH_FINAL_PAYMENT_REMINDER in m for m in markers)
    assert await _reminder_summaries(events) == [
        "reminder 1 of 2 sent to applicant",
        "reminder 2 of 2 sent to applicant",
    ]
    templates = await stack.templates(st.case_id)
    assert templates.index("payment_reminder") < templates.index("payment_final_reminder")
    final_at = await stack.one(
        "SELECT created_at FROM notifications WHERE case_id = $1"
        " AND template = 'payment_final_reminder'",
        st.case_id,
    )
    assert st.deadline is not None
    expected = st.deadline - stack.policy.payment_final_reminder_before
    assert abs(final_at - expected) < timedelta(minutes=1)  # when the timer fired
    # And the new history replays too.
    [outcome] = await replay([("new", history)], TEST_CONVERTER)
    assert outcome.ok, outcome.error


async def test_cases_before_the_system_of_record_change_keep_their_rules(stack: Stack) -> None:
    """Corpus v1 ran with the policy in its input and no ledger: it replays on that path.
    New cases record the patch marker and run by the rules of today."""
    corpus = Path(__file__).resolve().parents[1] / "histories" / "v1"
    old = [(p.name, load_history_file(p)) for p in sorted(corpus.glob("*.json"))]
    assert old and not any(
        PATCH_SYSTEM_OF_RECORD in m for _, h in old for m in _markers(list(h.events))
    )
    assert all(o.ok for o in await replay(old, TEST_CONVERTER))

    _, case, _ = await stack.open_case()
    history = await stack.client.handle(case).fetch_history()
    assert any(PATCH_LEAN in m for m in _markers(list(history.events)))  # (it takes this in)
    [outcome] = await replay([("new", history)], TEST_CONVERTER)
    assert outcome.ok, outcome.error
