"""Replay reads what the history holds: a deploy that changes reference data or
defaults does not change a running case.

The input is checked against today's district list and the policy table once,
when the case opens (`register_loss`, whose result the history records); the
workflow itself decodes its input without them.
"""

from __future__ import annotations

import asyncio
import types
from datetime import timedelta

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment

from reissue.client import ReissueClient
from reissue.ops.audit import replay
from reissue.schemas import identifiers
from reissue.schemas.enums import Stage
from reissue.schemas.policy import CasePolicy
from reissue.workers.settings import DEV_HASH_SECRET, Settings
from reissue.workers.worker import build_worker
from tests.support import TEST_CONVERTER, Stack


async def test_a_running_case_keeps_its_district_and_policy_after_a_deploy(
    env: WorkflowEnvironment,
    pool: asyncpg.Pool,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = ReissueClient(env.client, task_queue=settings.task_queue, hash_secret=DEV_HASH_SECRET)
    stack = Stack(env=env, pool=pool, client=client, settings=settings)
    app = await stack.application(channel="online", district="500103")
    # By name, without a policy: the one in force is resolved and recorded.
    data = app.model_dump(mode="json", exclude_none=True)
    worker = build_worker(env.client, pool, settings)
    running = asyncio.create_task(worker.run())
    try:
        handle = await env.client.start_workflow(
            "CardReissueWorkflow",
            data,
            id=client.case_id_for(app.card_number),
            task_queue=settings.task_queue,
        )
        before = await stack.wait_for(handle.id, Stage.AWAITING_MATERIALS)
    finally:
        await worker.shutdown()
        await running

    # The deploy: the district is retired from the data file, and CQ's default
    # temporary validity is changed in code.
    retired = {k: v for k, v in identifiers.CURRENT_DISTRICTS.items() if k != "500103"}
    monkeypatch.setattr(identifiers, "CURRENT_DISTRICTS", types.MappingProxyType(retired))
    monkeypatch.setattr(
        CasePolicy.model_fields["temporary_report_validity"], "default", timedelta(days=1)
    )
    CasePolicy.model_rebuild(force=True)
    try:
        history = await handle.fetch_history()
        [outcome] = await replay([("after the deploy", history)], TEST_CONVERTER)
        assert outcome.ok, outcome.error

        # A new worker (empty cache) replays the case to answer and carry on.
        fresh = build_worker(env.client, pool, settings)
        running = asyncio.create_task(fresh.run())
        try:
            after = await stack.status(handle.id)
            assert after.deadline == before.deadline
            assert after.policy_version == before.policy_version == "CQ-2026.1"
            await stack.client.card_found(handle.id, {"channel": "online"})
            assert (await stack.client.result(handle.id)).outcome is Stage.WITHDRAWN
        finally:
            await fresh.shutdown()
            await running
        assert CasePolicy().temporary_report_validity == timedelta(days=1)  # it did change
    finally:
        monkeypatch.undo()
        CasePolicy.model_rebuild(force=True)
    assert CasePolicy().temporary_report_validity == timedelta(days=7)
