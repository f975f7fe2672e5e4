"""Faults in real processes: workers killed and stopped, PostgreSQL and Temporal restarted.

After each, the cases finish, nothing is written twice, and check-invariants is silent.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from temporalio.api.enums.v1 import EventType, PendingActivityState
from temporalio.client import Client

from reissue.activities.db import create_pool
from reissue.client import ReissueClient
from reissue.devtools.stack import EmbeddedPostgres, TemporalDevServer, ensure_database, migrate
from reissue.ops.invariants import check_invariants
from reissue.schemas.enums import Stage
from reissue.workers.settings import DEV_HASH_SECRET, Settings
from reissue.workers.worker import build_worker
from tests.support import TEST_CONVERTER, TEST_KEYS_SPEC, Stack, eventually

REISSUE = str(Path(sys.prefix) / "bin" / "reissue")
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


@pytest.fixture
async def bare(env, pool: asyncpg.Pool, settings: Settings) -> Stack:  # type: ignore[no-untyped-def]
    """Client and database, but no worker: the test runs its own worker processes."""
    client = ReissueClient(env.client, task_queue=settings.task_queue, hash_secret=DEV_HASH_SECRET)
    return Stack(env=env, pool=pool, client=client, settings=settings)


async def _worker_process(stack: Stack, **env: str) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        REISSUE,
        "worker",
        env=os.environ
        | {
            "TEMPORAL_ADDRESS": stack.env.client.service_client.config.target_host,
            "DATABASE_URL": stack.settings.require_database_url(),
            "REISSUE_TASK_QUEUE": stack.settings.task_queue,
            "REISSUE_CODEC_KEYS": TEST_KEYS_SPEC,
            "REISSUE_LOG_FORMAT": "json",
            **stack.settings.partner_environment(),
        }
        | env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    async with asyncio.timeout(30):
        while b"worker started" not in await proc.stderr.readline():
            pass
    asyncio.get_running_loop().create_task(proc.stderr.read())  # keep the pipe drained
    return proc


async def _bank_latency(stack: Stack, ms: int) -> None:
    await stack.bank_knobs(latency_ms=ms)


async def _bank_call_started(stack: Stack, case: str) -> None:
    handle = stack.client.handle(case)

    async def started() -> None:
        pending = (await handle.describe()).raw_description.pending_activities
        assert any(
            p.activity_type.name == "freeze_bank_account"
            and p.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
            for p in pending
        ), f"the bank call of {case} has not started"

    await eventually(started)


async def _bank_call_failed(stack: Stack, case: str) -> None:
    """The case's bank step failed an attempt (and is retried)."""
    handle = stack.client.handle(case)

    async def failed() -> None:
        pending = (await handle.describe()).raw_description.pending_activities
        assert any(
            p.activity_type.name == "freeze_bank_account" and p.attempt >= 2 for p in pending
        ), f"the bank step of {case} has not failed yet"

    await eventually(failed)


async def _events(stack: Stack, case: str, event_type: str) -> int:
    case_id = (await stack.status(case)).case_id
    return int(
        await stack.one(
            "SELECT count(*) FROM case_events WHERE case_id = $1 AND event_type = $2",
            case_id,
            event_type,
        )
    )


async def test_worker_killed_mid_activity_another_finishes(bare: Stack) -> None:
    await _bank_latency(bare, 3000)
    first = await _worker_process(bare)
    cases = [
        (await bare.client.report_loss(await bare.application())).workflow_id for _ in range(4)
    ]
    for case in cases:
        await _bank_call_started(bare, case)
    first.send_signal(signal.SIGKILL)  # mid-call: the bank freezes are in flight
    await first.wait()
    second = await _worker_process(bare)
    try:
        for case in cases:
            st = await bare.wait_for(case, Stage.AWAITING_MATERIALS, timeout=60)
            assert st.bank_frozen
            assert await _events(bare, case, "bank_account_frozen") == 1
            assert await _events(bare, case, "loss_registered") == 1
        assert (
            await check_invariants(
                bare.client.temporal, bare.pool, task_queue=bare.settings.task_queue
            )
            == []
        )
    finally:
        second.send_signal(signal.SIGTERM)
        await second.wait()


async def test_sigterm_lets_the_activity_in_flight_finish(bare: Stack) -> None:
    await _bank_latency(bare, 1500)
    worker = await _worker_process(bare, REISSUE_GRACEFUL_SHUTDOWN_SECONDS="20")
    case = (await bare.client.report_loss(await bare.application())).workflow_id
    await _bank_call_started(bare, case)
    worker.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(worker.wait(), timeout=25) == 0
    history = await bare.client.handle(case).fetch_history()
    started = [
        e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    completed = {
        e.activity_task_completed_event_attributes.scheduled_event_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
    }
    bank = [
        e
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == "freeze_bank_account"
    ]
    assert bank and bank[0].event_id in completed  # finished, not handed to a retry
    assert all(e.activity_task_started_event_attributes.attempt == 1 for e in started)
    successor = await _worker_process(bare)
    try:
        await bare.wait_for(case, Stage.AWAITING_MATERIALS, timeout=30)
    finally:
        successor.send_signal(signal.SIGTERM)
        await successor.wait()


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _finish(stack: Stack, case: str) -> None:
    st = await stack.wait_for(case, Stage.AWAITING_MATERIALS, timeout=60)
    assert st.loss_report_number
    await stack.submit(case, st.loss_report_number, mode="instant")
    await stack.approve(case, waive_fee=True, waiver_reason="restart test")
    st = await stack.wait_for(case, Stage.READY_FOR_PICKUP, timeout=30)
    new_card = await stack.one(
        "SELECT new_card_number FROM production_orders WHERE case_id = $1", st.case_id
    )
    await stack.client.card_collected(
        case, {"new_card_number": new_card, "handed_over_by": "counter-1"}
    )
    assert (await stack.client.result(case)).outcome is Stage.COMPLETED


@pytest.fixture
async def own_postgres(tmp_path: Path) -> AsyncIterator[tuple[EmbeddedPostgres, str, Path]]:
    data = tmp_path / "pg"
    pg = EmbeddedPostgres(data)
    dsn = pg.dsn_for("reissue")
    await ensure_database(pg.admin_dsn, dsn)
    await migrate(dsn)
    yield pg, dsn, data
    EmbeddedPostgres(data).stop()


async def test_postgres_restart_while_activities_run(
    env,
    own_postgres: tuple[EmbeddedPostgres, str, Path],  # type: ignore[no-untyped-def]
    settings: Settings,
) -> None:
    pg, dsn, data = own_postgres
    settings = settings.model_copy(
        update={"database_url": dsn, "task_queue": "tq-pg-restart-" + os.urandom(4).hex()}
    )
    pool = await create_pool(dsn, max_size=5)
    worker = build_worker(env.client, pool, settings)
    running = asyncio.create_task(worker.run())
    client = ReissueClient(env.client, task_queue=settings.task_queue, hash_secret=DEV_HASH_SECRET)
    stack = Stack(env=env, pool=pool, client=client, settings=settings)
    try:
        await _bank_latency(stack, 1500)
        cases = [
            (await client.report_loss(await stack.application(channel="counter"))).workflow_id
            for _ in range(3)
        ]
        for case in cases:
            await _bank_call_started(stack, case)
        pg.stop()  # the database goes away while the bank calls are out ...
        for case in cases:  # ... and each step, its answer in hand, fails to record it
            await _bank_call_failed(stack, case)
        EmbeddedPostgres(data)  # and comes back on the same data
        await _bank_latency(stack, 0)
        for case in cases:  # the next tries, without their backoff
            await stack.fast_forward(case, timedelta(seconds=5))
        for case in cases:
            await _finish(stack, case)
            assert await _events(stack, case, "bank_account_frozen") == 1
            assert await _events(stack, case, "new_card_activated") == 1
        assert (
            await check_invariants(
                client.temporal, pool, task_queue=settings.task_queue, verify_closed_since=EPOCH
            )
            == []
        )
    finally:
        await worker.shutdown()
        await running
        await pool.close()


async def test_temporal_restart_on_its_sqlite_file(
    pool: asyncpg.Pool, settings: Settings, tmp_path: Path
) -> None:
    server = TemporalDevServer(
        db_file=tmp_path / "temporal.db",
        port=_free_port(),
        ui_port=_free_port(),
        extra_args=["--headless"],
    )
    server.start(tmp_path / "temporal.log")
    await server.wait_ready()
    temporal = await Client.connect(server.address, data_converter=TEST_CONVERTER)
    worker = build_worker(temporal, pool, settings)
    running = asyncio.create_task(worker.run())
    client = ReissueClient(temporal, task_queue=settings.task_queue, hash_secret=DEV_HASH_SECRET)
    stack = Stack(env=None, pool=pool, client=client, settings=settings)  # type: ignore[arg-type]
    try:
        cases = [
            (await client.report_loss(await stack.application())).workflow_id for _ in range(3)
        ]
        for case in cases:
            await stack.wait_for(case, Stage.AWAITING_MATERIALS)
        server.stop()  # (waits for the process to end)

        def ports_free() -> bool:
            return not any(_listening(port) for port in (server.port, server.ui_port))

        await eventually(ports_free)
        server.start(tmp_path / "temporal.log")  # same SQLite file, same ports
        await server.wait_ready()
        for case in cases:
            await _finish(stack, case)
        assert (
            await check_invariants(
                temporal, pool, task_queue=settings.task_queue, verify_closed_since=EPOCH
            )
            == []
        )
    finally:
        await worker.shutdown()
        await running
        server.stop()
