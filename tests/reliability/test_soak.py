"""The small soak: every path three times at once on the real stack, with duplicates and
late events, then every invariant and every history replayed. (`reissue soak` runs a
thousand; what more cases would add here is time, not proof.)"""

from __future__ import annotations

from reissue.devtools.soak import PATHS, run_soak
from reissue.schemas.enums import Stage
from reissue.workers.settings import DEV_HASH_SECRET
from tests.support import Stack

OUTCOME = {
    "complete_standard": Stage.COMPLETED,
    "complete_instant_exempt": Stage.COMPLETED,
    "unit_confirms_then_complete": Stage.COMPLETED,
    "correction_then_complete": Stage.COMPLETED,
    "reject": Stage.REJECTED,
    "withdraw": Stage.WITHDRAWN,
    "cancel_after_payment": Stage.CANCELLED,
    "lapse_temporary": Stage.LAPSED,
    "lapse_unpaid": Stage.LAPSED,
}


async def test_soak_every_path_three_times_at_once_no_violations(stack: Stack) -> None:
    cases = 3 * len(PATHS)
    result = await run_soak(
        stack.client,
        stack.pool,
        cases=cases,
        secret=DEV_HASH_SECRET,
        concurrency=cases,  # all at once
        seed=7,
        task_queue=stack.settings.task_queue,
        bank_url=stack.settings.bank_url,  # third-generation cards, with bank accounts
    )
    print(
        f"\nsoak: {result.finished}/{result.cases} finished in {result.elapsed_s:.1f}s "
        f"({result.cases_per_s:.1f} cases/s); outcomes {dict(result.outcomes)}; "
        f"duplicates {result.duplicates_sent}, late {result.late_events_sent}; "
        f"violations {len(result.violations)}, replayed {result.replayed}"
    )
    assert result.errors == []
    assert result.finished == cases
    assert result.paths == dict.fromkeys(PATHS, 3)
    expected: dict[str, int] = {}
    for path in PATHS:
        expected[OUTCOME[path].value] = expected.get(OUTCOME[path].value, 0) + 3
    assert dict(result.outcomes) == expected
    assert result.duplicates_sent > 0 and result.late_events_sent > 0
    assert result.violations == []
    assert result.replayed >= cases and result.diverged == []
    # Every new card in use carries its bank account (moved at completion, once).
    moved = await stack.rows(
        "SELECT c.bank FROM cards c JOIN production_orders p ON p.new_card_number = c.card_number"
        " WHERE c.status = 'active'"
    )
    assert len(moved) == expected[Stage.COMPLETED.value] and all(r["bank"] for r in moved)
