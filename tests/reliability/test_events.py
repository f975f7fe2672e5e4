"""A poisoned registry row: the step shows as a failing activity, then recovers.

(Events delivered twice, late and out of order: tests/workflows/test_events.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from reissue.client import ReissueClient
from reissue.ops.invariants import check_invariants
from reissue.schemas.enums import Stage
from reissue.workers.settings import DEV_HASH_SECRET, Settings
from reissue.workers.worker import build_worker
from tests.support import Stack, eventually


@pytest.fixture
async def impatient(
    env: WorkflowEnvironment, pool: asyncpg.Pool, db_dsn: str, settings: Settings
) -> AsyncIterator[Stack]:
    """A worker whose pool gives up on a held row after 200 ms instead of 5 s: the same
    failure, sooner (the test waits for two attempts of it)."""
    short = await asyncpg.create_pool(
        db_dsn,
        min_size=1,
        max_size=5,
        server_settings={"lock_timeout": "200ms", "statement_timeout": "20s"},
    )
    assert short is not None
    worker = build_worker(env.client, short, settings)
    running = asyncio.create_task(worker.run())
    try:
        client = ReissueClient(
            env.client, task_queue=settings.task_queue, hash_secret=DEV_HASH_SECRET
        )
        yield Stack(env=env, pool=pool, client=client, settings=settings)
    finally:
        await worker.shutdown()
        await running
        await short.close()


async def test_poisoned_row_shows_as_failing_activity_then_recovers(impatient: Stack) -> None:
    stack = impatient
    app = await stack.application()
    blocker = await stack.pool.acquire()
    tx = blocker.transaction()
    await tx.start()
    await blocker.execute(
        "SELECT 1 FROM cards WHERE card_number = $1 FOR UPDATE", app.card_number
    )  # a stuck transaction holds the card's row
    try:
        case = (await stack.client.report_loss(app)).workflow_id
        handle = stack.client.handle(case)

        # The step runs as a local activity first (two attempts in the workflow task),
        # then as an activity that operations see pending, with its attempts.
        async def failing_visibly() -> None:
            pending = (await handle.describe()).raw_description.pending_activities
            [failing] = [p for p in pending if p.attempt >= 2] or [None]
            assert failing is not None, "no activity has failed yet"
            assert failing.activity_type.name == "register_loss"
            assert "lock timeout" in failing.last_failure.message

        await eventually(failing_visibly)
        st = await stack.status(case)
        assert st.stage is Stage.LOSS_REPORTED
        assert (
            await check_invariants(
                stack.client.temporal, stack.pool, task_queue=stack.settings.task_queue
            )
            == []
        )
    finally:
        await tx.rollback()  # the row is fixed
        await stack.pool.release(blocker)
    st = await stack.wait_for(case, Stage.AWAITING_MATERIALS)
    assert st.card_frozen
    assert (
        await stack.one("SELECT count(*) FROM loss_reports WHERE card_number = $1", app.card_number)
        == 1
    )
