"""Programs a chaos soak once found a case stuck on (issue #23), kept as tests: each
leaves no broken invariant, and every history it produced replays against the worker's
code.

Seed 7's program failed a workflow task in the fee's assessment with another step's
result; seed 11's with "Activity id of scheduled event '12' does not match activity
id of activity command '11'": handlers and the main path resumed in another order on
replay than live (`workflows.turns` says why, and how a case now keeps its order).
"""

from __future__ import annotations

import pytest

from reissue.devtools.chaos import expected_card, parse_program
from reissue.ops.audit import replay
from tests.support import EMPLOYER, TEST_CONVERTER
from tests.workflows.chaos import FakeChaosDriver
from tests.workflows.harness import FakeStack

PROGRAMS = {
    "seed 7": "CaseProgram(channel='counter', affiliated=False, instant=False, steps=("
    "('submit',), ('unit_yes',), ('pay_again',), ('approve', 'pay'), "
    "('correct', 'pay_wrong_order'), ('correct',), ('submit',), ('pay',), ('correct',), "
    "('produced',), ('collected',)))",
    "seed 11": "CaseProgram(channel='online', affiliated=False, instant=True, steps=("
    "('unit_yes',), ('produced',), ('unit_no',), ('correct',), ('approve',), "
    "('correct', 'plaintext'), ('pay_wrong_order',), ('temporal_cancel',), "
    "('temporal_cancel', 'unit_yes'), ('pay_wrong_order',)))",
}


@pytest.mark.parametrize("found_by", sorted(PROGRAMS))
async def test_a_program_that_once_stuck_a_case_replays_and_keeps_every_invariant(
    cases: FakeStack, found_by: str
) -> None:
    program = parse_program(PROGRAMS[found_by])
    driver = FakeChaosDriver.on(cases)
    app = await cases.application(
        channel=program.channel, affiliation=EMPLOYER if program.affiliated else None
    )
    st = await driver.run(app, program)
    if st is not None:
        assert cases.fakes.card(app.card_number) in expected_card(st), st
    assert await cases.violations() == []
    temporal = cases.client.temporal
    histories = [
        (wf.id, await temporal.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history())
        async for wf in temporal.list_workflows(f"TaskQueue = '{cases.task_queue}'")
    ]
    assert histories
    outcomes = await replay(histories, TEST_CONVERTER)
    assert [o for o in outcomes if not o.ok] == []
