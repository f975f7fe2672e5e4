"""The fast layer: the real case workflows on the time-skipping dev server, with fake
activities (`tests.workflows.fakes`) registered under the real names. Every test gets
its own `FakeSystem` and its own task queue and worker, so tests never share state."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from reissue.client import ReissueClient
from reissue.workers.logging import CaseLogInterceptor
from reissue.workers.settings import DEV_HASH_SECRET
from reissue.workflows import WORKFLOWS
from tests.conftest import end_leftover_cases, record_histories
from tests.workflows.fakes import FakeSystem
from tests.workflows.harness import FakeStack


@pytest.fixture
async def cases(
    env: WorkflowEnvironment, request: pytest.FixtureRequest
) -> AsyncIterator[FakeStack]:
    fakes = FakeSystem()
    queue = "fast-" + uuid.uuid4().hex[:12]
    worker = Worker(
        env.client,
        task_queue=queue,
        workflows=list(WORKFLOWS),
        activities=fakes.activities(),
        interceptors=[CaseLogInterceptor()],
    )
    try:
        async with worker:
            yield FakeStack(
                env=env,
                client=ReissueClient(env.client, task_queue=queue, hash_secret=DEV_HASH_SECRET),
                fakes=fakes,
            )
            record_dir = request.config.getoption("--record-histories")
            if record_dir:
                await record_histories(env, queue, Path(record_dir), request.node.name)
    finally:
        await end_leftover_cases(env, queue)
