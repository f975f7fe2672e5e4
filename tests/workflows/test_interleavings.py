"""Model-based interleavings: hypothesis writes programs of events, early ends and
time jumps (races included) against one case at a time; after each program the case is
checked against the model and every invariant is checked across all the cases so far.

The invariants: a card under an open loss report is unusable, and a frozen card is
held by an open case; per case, money received = applied + refunded + refund
pending, and an early end keeps none of it; the registry matches each outcome;
history and registry agree. `reissue soak --chaos` runs the same programs by the
thousand on the real stack.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from reissue.devtools.chaos import ACTIONS, CaseProgram, expected_card
from reissue.schemas.enums import Stage
from tests.support import EMPLOYER
from tests.workflows.chaos import FakeChaosDriver
from tests.workflows.harness import FakeStack

HAPPY = ("submit", "unit_yes", "approve", "pay", "produced", "collected")

any_event = st.sampled_from(ACTIONS)
event = st.one_of(st.sampled_from(HAPPY), any_event)
race = st.one_of(st.tuples(event), st.tuples(event, any_event))
programs = st.builds(
    CaseProgram,
    channel=st.sampled_from(["hotline_12333", "online", "counter"]),
    affiliated=st.booleans(),
    instant=st.booleans(),
    steps=st.lists(race, min_size=1, max_size=10).map(tuple),
)


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,  # the same programs in every CI run; `reissue soak --chaos` explores
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(program=programs)
async def test_no_program_of_events_breaks_an_invariant(
    cases: FakeStack, program: CaseProgram
) -> None:
    driver = FakeChaosDriver.on(cases)
    app = await cases.application(
        channel=program.channel, affiliation=EMPLOYER if program.affiliated else None
    )
    note(repr(program))  # printed whole with a failing example
    st = await driver.run(app, program)
    if st is not None:
        assert cases.fakes.card(app.card_number) in expected_card(st), st
        money = st.money
        assert money.received_fen == (
            money.applied_fen + money.refunded_fen + money.refund_pending_fen
        )
        if st.stage.terminal and st.stage is not Stage.COMPLETED:
            assert money.applied_fen == 0, st
    assert await cases.violations() == []
