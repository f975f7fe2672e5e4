"""Shared fixtures: a real Temporal dev server (with per-workflow virtual clocks) and a real PostgreSQL.

One server and one PostgreSQL per session; every test gets its own database
(cloned from a migrated template), its own task queue and its own worker, so
tests never share state.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
from temporalio.service import RPCError
from temporalio.testing import TimeSkippingConfig, WorkflowEnvironment

from reissue.activities.db import create_pool
from reissue.client import ReissueClient
from reissue.devtools.simulators import partner_simulators
from reissue.devtools.stack import EmbeddedPostgres, ensure_database, migrate, temporal_binary
from reissue.schemas.codec import EncryptionCodec
from reissue.schemas.visibility import ALL_KEYS
from reissue.workers.codec_server import build_app, serve
from reissue.workers.settings import DEV_HASH_SECRET, Settings
from reissue.workers.worker import build_worker
from tests.support import CODEC_TOKEN, TEST_CONVERTER, TEST_KEYS, Stack

TEMPLATE_DB = "reissue_template"
# 100,000 new card numbers per test database (R01000000, R01100000, ...).
_CARD_BLOCKS = itertools.count(1_000_000, 100_000)


def pytest_configure(config: pytest.Config) -> None:
    # The tests run as dev (API keys, the dev secrets): they and `reissue dev` are the
    # only ones that say so; every process a test starts inherits it.
    os.environ["REISSUE_ENV"] = "dev"


# The slowest files run first: under `make test`'s two workers (pytest-xdist) they then
# overlap with the many quick tests instead of trailing at the end. (Each file stays whole.)
SLOWEST_FIRST = (
    "tests/test_devstack.py",
    "tests/test_bench.py",
    "tests/workflows/test_interleavings.py",
    "tests/reliability/test_processes.py",
    "tests/reliability/test_soak.py",
    "tests/partners/test_bank_outage.py",
    "tests/test_client_alone.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::")[0]
        return SLOWEST_FIRST.index(path) if path in SLOWEST_FIRST else len(SLOWEST_FIRST)

    items.sort(key=rank)  # (stable: the rest keep their order)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--record-histories",
        metavar="DIR",
        default=None,
        help="Save the history of every case a test ran into DIR (the replay corpus).",
    )


@pytest.fixture(scope="session")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg") / "data")
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def template_dsn(pg: EmbeddedPostgres) -> str:
    dsn = pg.dsn_for(TEMPLATE_DB)
    await ensure_database(pg.admin_dsn, dsn)
    await migrate(dsn)
    return dsn


@pytest.fixture
async def db_dsn(pg: EmbeddedPostgres, template_dsn: str) -> str:
    dsn = pg.dsn_for("t_" + uuid.uuid4().hex[:12])
    await ensure_database(pg.admin_dsn, dsn, template=TEMPLATE_DB)
    # New card numbers come from a block of their own in every test database: the bank
    # simulator is shared by the session and must never meet one card number twice.
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT setval('card_number_seq', $1)", next(_CARD_BLOCKS))
    finally:
        await conn.close()
    return dsn


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(db_dsn, max_size=5)
    yield p
    await p.close()


@pytest.fixture(scope="session")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await WorkflowEnvironment.start_time_skipping_v2(
        ts_config=TimeSkippingConfig(enabled=False),
        dev_server_existing_path=str(temporal_binary()),
        data_converter=TEST_CONVERTER,
        search_attributes=list(ALL_KEYS),
        dev_server_extra_args=[
            "--dynamic-config-value",
            "frontend.WorkflowTimeSkippingEnabled=true",
            # The timer queue looks ahead up to this far (1 s by default): each timer a
            # fast-forward skips to (a reminder, a deadline, an activity's retry) would
            # otherwise fire up to a real second late.
            "--dynamic-config-value",
            'history.timerProcessorMaxTimeShift="10ms"',
            "--log-level",
            "error",
        ],
    )
    yield environment
    await environment.shutdown()


@pytest.fixture(scope="session")
async def codec_url() -> AsyncIterator[str]:
    """A codec server for the test keys, as other services' tools would use it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = build_app(
        EncryptionCodec(TEST_KEYS),
        namespace="default",
        tokens=[CODEC_TOKEN],
        ui_origin="http://localhost:8233",
    )
    runner = await serve(app, host="127.0.0.1", port=port)
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture(scope="session")
async def partner_processes(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[dict[str, str]]:
    """The partner systems a case worker calls (bank, payment platform, card bureau): a
    simulator of each as a process of its own, one set for the session. The bureau
    reports to no front door here: tests report for it, or run a bureau of their own."""
    async with partner_simulators(tmp_path_factory.mktemp("partners")) as urls:
        yield urls


@pytest.fixture
async def partner_urls(partner_processes: dict[str, str]) -> dict[str, str]:
    """The session's partner simulators, up, quick and knowing nothing: each test's
    database starts its order and refund numbers afresh, and so do they."""
    for url in partner_processes.values():
        async with httpx.AsyncClient(base_url=url) as partner:
            (await partner.post("/_reset")).raise_for_status()
    return partner_processes


@pytest.fixture
def bank_url(partner_urls: dict[str, str]) -> str:
    return partner_urls["bank"]


@pytest.fixture
async def settings(db_dsn: str, partner_urls: dict[str, str]) -> Settings:
    return Settings(
        database_url=db_dsn,
        task_queue="tq-" + uuid.uuid4().hex[:12],
        bank_url=partner_urls["bank"],
        payment_platform_url=partner_urls["payments"],
        card_bureau_url=partner_urls["bureau"],
    )


@pytest.fixture
async def stack(
    env: WorkflowEnvironment,
    pool: asyncpg.Pool,
    settings: Settings,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Stack]:
    worker = build_worker(env.client, pool, settings)
    task = asyncio.create_task(worker.run())
    client = ReissueClient(env.client, task_queue=settings.task_queue, hash_secret=DEV_HASH_SECRET)
    try:
        yield Stack(env=env, pool=pool, client=client, settings=settings)
        record_dir = request.config.getoption("--record-histories")
        if record_dir:
            await record_histories(env, settings.task_queue, Path(record_dir), request.node.name)
    finally:
        await worker.shutdown()
        await task
        await end_leftover_cases(env, settings.task_queue)


async def end_leftover_cases(env: WorkflowEnvironment, task_queue: str) -> None:
    """Cases a test left open would hold their workflow IDs (a card's keyed hash) on a task
    queue nobody polls any more; a later test's card with the same number would find them."""
    query = f"TaskQueue = '{task_queue}' AND ExecutionStatus = 'Running'"
    async for wf in env.client.list_workflows(query):
        with contextlib.suppress(RPCError):
            await env.client.get_workflow_handle(wf.id, run_id=wf.run_id).terminate(
                "the test that started it has ended"
            )


async def record_histories(
    env: WorkflowEnvironment, task_queue: str, directory: Path, test_name: str
) -> None:
    """Save the history of every case a test ran (closed or not), named after the test."""
    directory.mkdir(parents=True, exist_ok=True)
    query = f"TaskQueue = '{task_queue}'"
    cases = [wf async for wf in env.client.list_workflows(query)]
    for n, wf in enumerate(sorted(cases, key=lambda w: w.start_time)):
        history = await env.client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        suffix = f"-{n}" if len(cases) > 1 else ""
        name = test_name.replace("[", "-").replace("]", "").replace("test_", "", 1)
        (directory / f"{name}{suffix}.json").write_text(history.to_json(), encoding="utf-8")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
