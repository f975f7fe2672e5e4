"""`reissue bench`: cases/s, latencies and history cost, side by side with bare Temporal.

Starts a stack of its own (dev server on SQLite in WAL mode, PostgreSQL) and
worker processes, drives N happy-path cases with simulated actors that answer
as soon as each stage asks, then runs a bare-Temporal reference of the same
shape (same activities, updates, signals and timers; activities do nothing) on
the same server with the same worker settings. Figures come from the clock,
from histories and from /proc (via psutil).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import psutil
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import History
from temporalio.client import Client
from temporalio.worker import Worker

from reissue.activities import Partners
from reissue.client import ReissueClient
from reissue.devtools.bare import BareCaseWorkflow, noop
from reissue.devtools.seed import enrol_person, standard_submission, synthetic_resident_id
from reissue.devtools.stack import OwnStack, own_stack
from reissue.schemas.case import CaseInput
from reissue.workers.settings import Settings
from reissue.workers.worker import tuned_worker

__all__ = ["BenchConfig", "build_bare_worker", "run_bench"]


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


_POLL = 0.05


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
    history_sample: int = 20
    front_door_samples: int = 50


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(_pct(values, 0.50) * 1000, 1),
        "p95_ms": round(_pct(values, 0.95) * 1000, 1),
        "p99_ms": round(_pct(values, 0.99) * 1000, 1),
    }


@dataclass
class _Timings:
    start: list[float] = field(default_factory=list)
    update: list[float] = field(default_factory=list)
    signal_effect: list[float] = field(default_factory=list)
    end_to_end: list[float] = field(default_factory=list)


class _Actors:
    """Simulated hotline, counter, reviewer, bank and bureau for one kind of workflow."""

    def __init__(
        self,
        *,
        start: Callable[[int], Awaitable[str]],
        client: Client,
        materials: Callable[[str], Awaitable[Any]],
        review_arg: Any,
        payment: Callable[[str], Awaitable[Any]],
        produced: Callable[[str], Awaitable[Any]],
        collected: Callable[[str], Awaitable[Any]],
    ) -> None:
        self.start, self.client = start, client
        self.materials, self.review_arg = materials, review_arg
        self.payment, self.produced, self.collected = payment, produced, collected

    async def stage(self, wid: str) -> str:
        st = await self.client.get_workflow_handle(wid).query("status")
        return str(st["stage"] if isinstance(st, dict) else st.stage)

    async def until(self, wid: str, stage: str) -> None:
        # Actors poll the status query, as an outside system would; both sides alike.
        while True:
            if await self.stage(wid) == stage:
                return
            await asyncio.sleep(_POLL)

    async def case(self, n: int, t: _Timings) -> str:
        began = time.perf_counter()
        wid = await self.start(n)
        t.start.append(time.perf_counter() - began)
        handle = self.client.get_workflow_handle(wid)
        await self.until(wid, "AWAITING_MATERIALS")
        await handle.execute_update("submit_materials", await self.materials(wid))
        await self.until(wid, "UNDER_REVIEW")
        sent = time.perf_counter()
        await handle.execute_update("review", self.review_arg)
        t.update.append(time.perf_counter() - sent)
        await self.until(wid, "AWAITING_PAYMENT")
        sent = time.perf_counter()
        await handle.signal("payment_confirmed", await self.payment(wid))
        await self.until(wid, "CARD_PRODUCTION")
        t.signal_effect.append(time.perf_counter() - sent)
        await handle.signal("card_produced", await self.produced(wid))
        await self.until(wid, "READY_FOR_PICKUP")
        await handle.signal("card_collected", await self.collected(wid))
        await handle.result()
        t.end_to_end.append(time.perf_counter() - began)
        return wid


def _ours(stack: OwnStack, run_id: str, *, channel: str = "counter") -> _Actors:
    client: ReissueClient = stack.client
    pool = stack.pool

    async def start(n: int) -> str:
        resident_id = synthetic_resident_id(random.Random(n))
        async with pool.acquire() as conn:
            card = await enrol_person(
                conn,
                secret=stack.settings.case_secret(),
                resident_id=resident_id,
                insured_category="urban_employee",
                district="500103",
                balance_fen=10_000,
                bank_url=stack.settings.require_partner_url("bank"),
            )
        app = CaseInput.model_validate(
            {
                "applicant": {"name": "压测", "resident_id": resident_id, "mobile": "13800138000"},
                "card_number": card,
                "insured_category": "urban_employee",
                "district": "500103",
                "channel": channel,
            }
        )
        return (await client.report_loss(app)).workflow_id

    async def status(wid: str) -> Any:
        return await client.status(wid)

    async def materials(wid: str) -> Any:
        report = (await status(wid)).loss_report_number
        assert report is not None
        return standard_submission(report, received_by="bench-clerk")

    async def payment(wid: str) -> Any:
        fee = (await status(wid)).fee
        assert fee is not None
        return {
            "order_id": fee.order_id,
            "amount_fen": fee.amount_fen,
            "payment_ref": f"B-{uuid.uuid4().hex[:12]}",
            "paid_at": datetime.now(UTC),
        }

    async def produced(wid: str) -> Any:
        st = await status(wid)
        async with pool.acquire() as conn:
            card = await conn.fetchval("SELECT next_card_number()")
        return {
            "order_id": st.production_order_id,
            "new_card_number": card,
            "produced_at": datetime.now(UTC),
        }

    async def collected(wid: str) -> Any:
        st = await status(wid)
        async with pool.acquire() as conn:
            card = await conn.fetchval(
                "SELECT new_card_number FROM production_orders WHERE case_id = $1", st.case_id
            )
        return {"new_card_number": card, "handed_over_by": "bench"}

    return _Actors(
        start=start,
        client=client.temporal,
        materials=materials,
        review_arg={"reviewer": "bench", "verdict": "approve"},
        payment=payment,
        produced=produced,
        collected=collected,
    )


def _bare(stack: OwnStack, task_queue: str, run_id: str) -> _Actors:
    client: Client = stack.client.temporal

    async def start(n: int) -> str:
        wid = f"bare-{run_id}-{n}"
        await client.start_workflow("BareCaseWorkflow", {}, id=wid, task_queue=task_queue)
        return wid

    async def empty(_: str) -> Any:
        return {}

    return _Actors(
        start=start,
        client=client,
        materials=empty,
        review_arg={},
        payment=empty,
        produced=empty,
        collected=empty,
    )


def _tree_cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for p in [proc, *proc.children(recursive=True)]:
                t = p.cpu_times()
                total += t.user + t.system
        except psutil.NoSuchProcess:
            continue
    return total


def _postgres_pids(folder: Path) -> list[int]:
    found = []
    for p in psutil.process_iter(["name", "cmdline"]):
        cmd = " ".join(p.info.get("cmdline") or [])
        if "postgres" in (p.info.get("name") or "") and str(folder) in cmd:
            found.append(p.pid)
    return found


def _peak_rss_mb(pids: list[int]) -> float:
    peak = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            continue
    return round(peak / 1024, 1)


async def _history_cost(client: Client, ids: list[str]) -> dict[str, float]:
    events, sizes, activities, timers = [], [], [], []
    for wid in ids:
        history = await client.get_workflow_handle(wid).fetch_history()
        events.append(len(history.events))
        sizes.append(History(events=history.events).ByteSize())
        activities.append(
            sum(
                e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED for e in history.events
            )
        )
        timers.append(
            sum(e.event_type == EventType.EVENT_TYPE_TIMER_STARTED for e in history.events)
        )
    n = max(len(ids), 1)
    return {
        "events_per_case": round(sum(events) / n, 1),
        "bytes_per_case": round(sum(sizes) / n),
        "activities_per_case": round(sum(activities) / n, 1),
        "timers_per_case": round(sum(timers) / n, 1),
    }


async def _spawn(
    stack: OwnStack, cfg: BenchConfig, *, bare: bool, task_queue: str
) -> list[asyncio.subprocess.Process]:
    s = stack.settings
    env = os.environ | {
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
    actors: _Actors, cfg: BenchConfig, stack: OwnStack, workers: list[asyncio.subprocess.Process]
) -> dict[str, Any]:
    timings = _Timings()
    gate = asyncio.Semaphore(cfg.concurrency)
    worker_pids = [p.pid for p in workers]
    server_pid = [stack.server.process.pid] if stack.server.process else []
    pg_pids = _postgres_pids(stack.folder)
    cpu_before = (_tree_cpu(worker_pids), _tree_cpu(server_pid), _tree_cpu(pg_pids))
    done: list[str] = []

    async def one(n: int) -> None:
        async with gate:
            done.append(await actors.case(n, timings))

    began = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(cfg.cases)))
    elapsed = time.perf_counter() - began
    cpu_after = (_tree_cpu(worker_pids), _tree_cpu(server_pid), _tree_cpu(pg_pids))
    per_case = [round((a - b) / cfg.cases, 4) for a, b in zip(cpu_after, cpu_before, strict=True)]
    return {
        "cases": cfg.cases,
        "elapsed_s": round(elapsed, 2),
        "cases_per_s": round(cfg.cases / elapsed, 2),
        "case_start": _summary(timings.start),
        "update_round_trip": _summary(timings.update),
        "signal_to_status": _summary(timings.signal_effect),
        "end_to_end": _summary(timings.end_to_end),
        "history": await _history_cost(actors.client, done[: cfg.history_sample]),
        "cpu_s_per_case": {"worker": per_case[0], "temporal": per_case[1], "postgres": per_case[2]},
        "worker_peak_rss_mb": _peak_rss_mb(worker_pids),
    }


async def _open_cases(
    stack: OwnStack, cfg: BenchConfig, workers: list[asyncio.subprocess.Process]
) -> dict[str, Any]:
    actors = _ours(stack, "open")
    gate = asyncio.Semaphore(cfg.concurrency)

    async def one(n: int) -> None:
        async with gate:
            wid = await actors.start(100_000 + n)
            await actors.until(wid, "AWAITING_MATERIALS")

    began = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(cfg.open_cases)))
    return {
        "open_cases": cfg.open_cases,
        "opened_in_s": round(time.perf_counter() - began, 1),
        "worker_peak_rss_mb": _peak_rss_mb([p.pid for p in workers]),
    }


async def _front_door(stack: OwnStack, cfg: BenchConfig) -> dict[str, Any]:
    """What the front door adds to a round trip: the same update (`make_report_formal`)
    and the same read (`status`), sent directly through the client and through the
    partner API over HTTP on this machine, one at a time (so the figures are the path's
    own cost, not queueing), alternating between the two paths."""
    import aiohttp
    import uvicorn

    from reissue.api.app import build_app
    from reissue.api.credentials import create_key
    from reissue.schemas.events import ReportFormalisation

    client: ReissueClient = stack.client
    actors = _ours(stack, "door", channel="hotline_12333")  # a temporary report
    async with stack.pool.acquire() as conn:
        key = await create_key(conn, "counter")
    app = build_app(client, stack.pool, webhook_secret="bench")
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    serving = asyncio.create_task(server.serve())
    for _ in range(1000):
        if server.started:
            break
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    base, auth = f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {key}"}
    times: dict[str, list[float]] = {
        "update_direct": [],
        "update_http": [],
        "read_direct": [],
        "read_http": [],
    }
    try:
        async with aiohttp.ClientSession(base, headers=auth) as http:
            for n in range(cfg.front_door_samples * 2):
                wid = await actors.start(200_000 + n)
                await actors.until(wid, "AWAITING_MATERIALS")
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
    finally:
        server.should_exit = True
        await serving
    figures: dict[str, Any] = {name: _summary(values) for name, values in times.items()}
    for kind in ("update", "read"):
        figures[f"{kind}_added_p50_ms"] = round(
            figures[f"{kind}_http"]["p50_ms"] - figures[f"{kind}_direct"]["p50_ms"], 1
        )
    figures["samples"] = cfg.front_door_samples
    return figures


async def run_bench(cfg: BenchConfig) -> dict[str, Any]:
    """Run both phases on one stack; the figures as a dict (also what --json writes)."""
    run_id = uuid.uuid4().hex[:8]
    async with own_stack(worker=False) as stack:
        ours_q, bare_q = stack.settings.task_queue, f"bare-{run_id}"
        ours_workers = await _spawn(stack, cfg, bare=False, task_queue=ours_q)
        bare_workers = await _spawn(stack, cfg, bare=True, task_queue=bare_q)
        try:
            ours = await _phase(_ours(stack, run_id), cfg, stack, ours_workers)
            bare = await _phase(_bare(stack, bare_q, run_id), cfg, stack, bare_workers)
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
        "open_cases": opened,
        "front_door": door,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def to_json(result: dict[str, Any]) -> str:
    return json.dumps(result, ensure_ascii=False, indent=2)
