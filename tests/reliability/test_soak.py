"""The small soak: about 100 cases through every path, with duplicates and late events."""

from __future__ import annotations

from reissue.devtools.soak import PATHS, run_soak
from reissue.schemas.enums import Stage
from reissue.workers.settings import DEV_HASH_SECRET
from tests.support import Stack


async def test_soak_100_cases_no_violations(stack: Stack) -> None:
    result = await run_soak(
        stack.client,
        stack.pool,
        cases=100,
        secret=DEV_HASH_SECRET,
        concurrency=25,
        seed=7,
        task_queue=stack.settings.task_queue,
        bank_url=stack.settings.bank_url,  # third-generation cards, with bank accounts
    )
    print(
        f"\nsoak: {result.finished}/{result.cases} finished in {result.elapsed_s:.1f}s "
        f"({result.cases_per_s:.1f} cases/s); outcomes {dict(result.outcomes)}; "
        f"duplicates {result.duplicates_sent}, late {result.late_events_sent}; "
        f"violations {len(result.violations)}"
    )
    assert result.errors == []
    assert result.finished == 100
    assert set(result.paths) == set(PATHS)
    assert result.outcomes[Stage.COMPLETED.value] >= 40
    assert {
        Stage.WITHDRAWN.value,
        Stage.REJECTED.value,
        Stage.LAPSED.value,
        Stage.CANCELLED.value,
    } <= set(result.outcomes)
    assert result.duplicates_sent > 0 and result.late_events_sent > 0
    assert result.violations == []
    # Every new card in use carries its bank account (moved at completion, once).
    moved = await stack.rows(
        "SELECT c.bank FROM cards c JOIN production_orders p ON p.new_card_number = c.card_number"
        " WHERE c.status = 'active'"
    )
    assert len(moved) >= 40 and all(r["bank"] for r in moved)
