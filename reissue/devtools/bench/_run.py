"""Running the benchmark: worker processes, the phases (ours, bare, at half load, open
cases, the front door) and the figures they give."""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import sys
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.client import Client
from temporalio.worker import Worker

from reissue.activities import Partners
from reissue.client import ReissueClient
from reissue.devtools.bare import BareCaseWorkflow, noop
from reissue.devtools.bench._actors import Actors, bare_actors, our_actors
from reissue.devtools.bench._measures import (
    Timings,
    history_cost,
    peak_rss_mb,
    percentiles,
    postgres_pids,
    tree_cpu,
)
from reissue.devtools.seed import synthetic_resident_id
from reissue.devtools.stack import OwnStack, own_stack
from reissue.workers.settings import Settings
from reissue.workers.worker import tuned_worker

__all__ = ["BenchConfig", "build_bare_worker", "run_bench", "to_json"]


def build_bare_worker(
    client: Client,
    pool: asyncpg.Pool | None,
    settings: Settings,
    *,
    partners: Partners | None = None,
) -> Worker:
    """The bare reference worker, tuned exactly like a case worker (it needs no database
    and calls no partner)."""
    return tuned_worker(client, settings, workflows=[BareCaseWorkflow], activities=[noop])


@dataclass(frozen=True)
class BenchConfig:
    cases: int = 200
    concurrency: int = 20
    worker_processes: int = 1
    max_concurrent_workflow_tasks: int = 100
    max_concurrent_activities: int = 100
    workflow_task_pollers: int = 5
    activity_task_pollers: int = 5
    max_cached_workflows: int = 400
    open_cases: int = 0
    queue_samples: int = 20
    history_sample: int = 20
    front_door_samples: int = 50
    half_load_cases: int = 60


async def _spawn(
    stack: OwnStack, cfg: BenchConfig, *, bare: bool, task_queue: str
) -> list[asyncio.subprocess.Process]:
    s = stack.settings
    env = os.environ | {
        "REISSUE_ENV": s.environment,
        "TEMPORAL_ADDRESS": s.temporal_address,
        "DATABASE_URL": s.require_database_url(),
        "REISSUE_CODEC_KEYS": s.codec_keys.get_secret_value() if s.codec_keys else "",
        "REISSUE_TASK_QUEUE": task_queue,
        "REISSUE_DATA_DIR": str(stack.folder),
        "REISSUE_LOG_FORMAT": "json",
        **s.partner_environment(),
        "REISSUE_MAX_CONCURRENT_WORKFLOW_TASKS": str(cfg.max_concurrent_workflow_tasks),
        "REISSUE_MAX_CONCURRENT_ACTIVITIES": str(cfg.max_concurrent_activities),
        "REISSUE_WORKFLOW_TASK_POLLERS": str(cfg.workflow_task_pollers),
        "REISSUE_ACTIVITY_TASK_POLLERS": str(cfg.activity_task_pollers),
        "REISSUE_MAX_CACHED_WORKFLOWS": str(cfg.max_cached_workflows),
    }
    args = [str(Path(sys.prefix) / "bin" / "reissue"), "worker", *(["--bare"] if bare else [])]
    procs = []
    for _ in range(cfg.worker_processes):
        proc = await asyncio.create_subprocess_exec(
            *args, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
        assert proc.stderr is not None
        async with asyncio.timeout(60):
            while b"worker started" not in await proc.stderr.readline():
                pass
        asyncio.get_running_loop().create_task(proc.stderr.read())
        procs.append(proc)
    return procs


async def _phase(
    actors: Actors, cfg: BenchConfig, stack: OwnStack, workers: list[asyncio.subprocess.Process]
) -> dict[str, Any]:
    timings = Timings()
    gate = asyncio.Semaphore(cfg.concurrency)
    worker_pids = [p.pid for p in workers]
    server_pid = [stack.server.process.pid] if stack.server.process else []
    pg_pids = postgres_pids(stack.folder)
    cpu_before = (tree_cpu(worker_pids), tree_cpu(server_pid), tree_cpu(pg_pids))
    done: list[str] = []

    async def one(n: int) -> None:
        async with gate:
            done.append(await actors.case(n, timings))

    began = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(cfg.cases)))
    elapsed = time.perf_counter() - began
    cpu_after = (tree_cpu(worker_pids), tree_cpu(server_pid), tree_cpu(pg_pids))
    per_case = [round((a - b) / cfg.cases, 4) for a, b in zip(cpu_after, cpu_before, strict=True)]
    return {
        "cases": cfg.cases,
        "elapsed_s": round(elapsed, 2),
        "cases_per_s": round(cfg.cases / elapsed, 2),
        "case_start": percentiles(timings.start),
        "review_update": percentiles(timings.update),
        "signal_to_status": percentiles(timings.signal_effect),
        "end_to_end": percentiles(timings.end_to_end),
        "history": await history_cost(actors.client, done[: cfg.history_sample]),
        "cpu_s_per_case": {"worker": per_case[0], "temporal": per_case[1], "postgres": per_case[2]},
        "worker_peak_rss_mb": peak_rss_mb(worker_pids),
    }


async def _open_cases(
    stack: OwnStack, cfg: BenchConfig, workers: list[asyncio.subprocess.Process]
) -> dict[str, Any]:
    actors = our_actors(stack, "open")
    gate = asyncio.Semaphore(cfg.concurrency)

    async def one(n: int) -> None:
        async with gate:
            await actors.opened(100_000 + n)

    began = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(cfg.open_cases)))
    opened_in = round(time.perf_counter() - began, 1)
    return {
        "open_cases": cfg.open_cases,
        "opened_in_s": opened_in,
        "worker_peak_rss_mb": peak_rss_mb([p.pid for p in workers]),
        "queue_page": await _queue_page(stack, cfg),
    }


async def _queue_page(stack: OwnStack, cfg: BenchConfig) -> dict[str, Any]:
    """The staff console's queue page with every open case in it, over HTTP on this
    machine, one request at a time (the tab of all open cases, by time waited and by
    review SLA, pages 1-3): each listed afresh from visibility (the figure), and paged
    or re-sorted from the listing the console holds (`held`)."""
    import re

    import httpx
    from fastapi import FastAPI

    from reissue.console.app import ConsoleConfig, build_console
    from reissue.console.staff import Role, add_user

    password = secrets.token_urlsafe(16)
    async with stack.pool.acquire() as conn:
        await add_user(conn, "bench-queue", roles=[Role.REVIEWER], password=password)
    app = FastAPI()
    app.mount("/console", build_console(stack.client, stack.pool, ConsoleConfig()))
    listing: list[float] = []
    paging: list[float] = []
    async with (
        _serving(app) as base,
        httpx.AsyncClient(base_url=f"{base}/console", timeout=60) as http,
    ):
        await _log_in(http, "bench-queue", password)

        async def count() -> int:
            page = await http.get("/", params={"tab": "open", "fresh": "1"})
            found = re.search(r"共 (\d+) 件", page.text)
            assert page.status_code == 200 and found is not None, page.text
            return int(found[1])

        async with asyncio.timeout(120):  # visibility lists the last cases a little late
            listed = await count()
            for _ in range(600):
                if listed >= cfg.open_cases:
                    break
                await asyncio.sleep(0.2)
                listed = await count()
        for n in range(cfg.queue_samples * 2):
            # Alternately listed afresh, and paged or re-sorted from the listing held.
            fresh = n % 2 == 0
            params = {"tab": "open", "sort": ("waited", "sla")[n // 2 % 2], "page": n % 3 + 1}
            sent = time.perf_counter()
            r = await http.get("/", params=params | ({"fresh": "1"} if fresh else {}))
            assert r.status_code == 200, r.text
            (listing if fresh else paging).append(time.perf_counter() - sent)
    return {"cases_listed": listed, **percentiles(listing), "held": percentiles(paging)}


async def _log_in(http: Any, user: str, password: str) -> None:
    """Log in to the console as a browser would (its CSRF cookie and field)."""
    import re

    page = await http.get("/login")
    login_csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert login_csrf is not None
    http.cookies.set("reissue_login_csrf", page.cookies["reissue_login_csrf"])
    r = await http.post(
        "/login", data={"user_id": user, "password": password, "csrf": login_csrf[1]}
    )
    assert r.status_code == 303, r.text
    http.cookies.set("reissue_session", r.cookies["reissue_session"])


@asynccontextmanager
async def _serving(app: Any) -> AsyncIterator[str]:
    """Serve `app` on a free port of this machine for the block; its base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    try:
        for _ in range(1000):
            if server.started:
                break
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        await serving


async def _front_door(stack: OwnStack, cfg: BenchConfig) -> dict[str, Any]:
    """What the front door adds to a round trip: the same update (`make_report_formal`)
    and the same read (`status`), sent directly through the client and through the
    partner API over HTTP on this machine, one at a time (so the figures are the path's
    own cost, not queueing), alternating between the two paths."""
    import aiohttp

    from reissue.api.app import build_app
    from reissue.api.credentials import create_key
    from reissue.schemas.events import ReportFormalisation

    client: ReissueClient = stack.client
    actors = our_actors(stack, "door", channel="hotline_12333")  # a temporary report
    async with stack.pool.acquire() as conn:
        key = await create_key(conn, "counter", acts_for="bench-clerk")
    auth = {"Authorization": f"Bearer {key}"}
    times: dict[str, list[float]] = {
        "update_direct": [],
        "update_http": [],
        "read_direct": [],
        "read_http": [],
    }
    async with (
        _serving(build_app(client, stack.pool, webhook_secret="bench")) as base,
        aiohttp.ClientSession(base, headers=auth) as http,
    ):
        for n in range(cfg.front_door_samples * 2):
            wid = await actors.opened(200_000 + n)
            resident_id = synthetic_resident_id(random.Random(200_000 + n))
            body = ReportFormalisation(resident_id=resident_id, received_by="bench-clerk")
            sent = time.perf_counter()
            if n % 2 == 0:
                await client.make_report_formal(wid, body)
                times["update_direct"].append(time.perf_counter() - sent)
            else:
                async with http.post(
                    f"/v1/cases/{wid}/formal",
                    data=body.model_dump_json(),
                    headers={"Content-Type": "application/json"},
                ) as r:
                    assert r.status == 200, await r.text()
                times["update_http"].append(time.perf_counter() - sent)
            for path in ("direct", "http"):
                sent = time.perf_counter()
                if path == "direct":
                    await client.status(wid)
                else:
                    async with http.get(f"/v1/cases/{wid}") as r:
                        assert r.status == 200, await r.text()
                times[f"read_{path}"].append(time.perf_counter() - sent)
    figures: dict[str, Any] = {name: percentiles(values) for name, values in times.items()}
    for kind in ("update", "read"):
        figures[f"{kind}_added_p50_ms"] = round(
            figures[f"{kind}_http"]["p50_ms"] - figures[f"{kind}_direct"]["p50_ms"], 1
        )
    figures["samples"] = cfg.front_door_samples
    return figures


async def _half_load(stack: OwnStack, cfg: BenchConfig, rate: float) -> dict[str, Any]:
    """Staff answered: cases arrive at `rate` (half what the phase of ours sustained),
    each driven to the end; every other review goes through the staff console over HTTP
    (a reviewer logged in, the form's POST: its status read, the update, the redirect),
    the rest directly as an update. The figures are each path's latency under that load."""
    import re

    import httpx
    from fastapi import FastAPI

    from reissue.console.app import ConsoleConfig, build_console
    from reissue.console.staff import Role, add_user

    password = secrets.token_urlsafe(16)
    async with stack.pool.acquire() as conn:
        await add_user(conn, "bench-reviewer", roles=[Role.REVIEWER], password=password)
    app = FastAPI()
    app.mount("/console", build_console(stack.client, stack.pool, ConsoleConfig()))
    actors = our_actors(stack, "half")
    actors.review_arg = {"reviewer": "bench-reviewer", "verdict": "approve"}
    timings = Timings()
    async with (
        _serving(app) as base,
        httpx.AsyncClient(base_url=f"{base}/console", timeout=60) as http,
    ):
        page = await http.get("/login")
        login_csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert login_csrf is not None
        http.cookies.set("reissue_login_csrf", page.cookies["reissue_login_csrf"])
        r = await http.post(
            "/login",
            data={"user_id": "bench-reviewer", "password": password, "csrf": login_csrf[1]},
        )
        assert r.status_code == 303, r.text
        http.cookies.set("reissue_session", r.cookies["reissue_session"])
        home = await http.get("/")
        csrf = re.search(r'name="csrf" value="([^"]+)"', home.text)
        assert csrf is not None

        async def via_console(wid: str) -> None:
            r = await http.post(
                f"/cases/{wid}/decide", data={"csrf": csrf[1], "verdict": "approve"}
            )
            assert r.status_code == 303 and "done=1" in r.headers["location"], r.text

        async def one(n: int) -> None:
            await asyncio.sleep(n / rate)
            review = via_console if n % 2 else None
            await actors.case(300_000 + n, timings, review_http=review)

        began = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(cfg.half_load_cases)))
        elapsed = time.perf_counter() - began
    return {
        "cases": cfg.half_load_cases,
        "arrivals_per_s": round(rate, 2),
        "cases_per_s": round(cfg.half_load_cases / elapsed, 2),
        "review_direct": percentiles(timings.update),
        "review_http": percentiles(timings.review_http),
    }


async def run_bench(cfg: BenchConfig) -> dict[str, Any]:
    """Run both phases on one stack; the figures as a dict (also what --json writes)."""
    run_id = uuid.uuid4().hex[:8]
    async with own_stack(worker=False) as stack:
        ours_q, bare_q = stack.settings.task_queue, f"bare-{run_id}"
        ours_workers = await _spawn(stack, cfg, bare=False, task_queue=ours_q)
        bare_workers = await _spawn(stack, cfg, bare=True, task_queue=bare_q)
        try:
            ours = await _phase(our_actors(stack, run_id), cfg, stack, ours_workers)
            bare = await _phase(bare_actors(stack, bare_q, run_id), cfg, stack, bare_workers)
            half = (
                await _half_load(stack, cfg, ours["cases_per_s"] / 2)
                if cfg.half_load_cases
                else None
            )
            opened = await _open_cases(stack, cfg, ours_workers) if cfg.open_cases else None
            door = await _front_door(stack, cfg) if cfg.front_door_samples else None
        finally:
            for proc in ours_workers + bare_workers:
                proc.terminate()
            await asyncio.gather(*(p.wait() for p in ours_workers + bare_workers))
    return {
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]},
        "config": asdict(cfg),
        "ours": ours,
        "bare": bare,
        "ratio_ours_to_bare_throughput": round(ours["cases_per_s"] / bare["cases_per_s"], 2),
        "half_load": half,
        "open_cases": opened,
        "front_door": door,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def to_json(result: dict[str, Any]) -> str:
    return json.dumps(result, ensure_ascii=False, indent=2)
