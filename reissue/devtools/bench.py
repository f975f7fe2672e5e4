"""`reissue bench`: cases/s, latencies and history cost, side by side with bare Temporal.

Starts a stack of its own (dev server on SQLite in WAL mode, PostgreSQL) and
worker processes, drives N happy-path cases with simulated actors that react to
each case as partners would (to the notices it sends and the answers to their
updates), then runs a bare-Temporal reference of the same shape (same activities,
updates, signals and timers; activities do nothing; the same actors) on the same
server with the same worker settings; then times the staff's review at half that
load, directly and through the console over HTTP. Figures come from the clock,
from histories and from /proc (via psutil).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import secrets
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
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
from reissue.ops.audit import LOCAL_ACTIVITY_MARKER, HistoryReader
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
    half_load_cases: int = 60


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
    review_http: list[float] = field(default_factory=list)
    signal_effect: list[float] = field(default_factory=list)
    end_to_end: list[float] = field(default_factory=list)


class _Watch:
    """One case's history as it is written (a long poll: no busy polling, no query to the
    worker), read step by step: what the actors react to, the same way for ours and for
    the bare reference. A step is known by the side effect it is: `notify:<template>`
    for a notice, else the activity's name (bare: the name its no-op is given)."""

    def __init__(self, client: Client, wid: str) -> None:
        self._reader = HistoryReader(client.data_converter)
        self._steps: dict[str, tuple[int, Any, Any]] = {}
        self._last_timer = 0  # the event ID of the latest timer started: the case waits
        self._wake = asyncio.Event()
        self._following = asyncio.create_task(self._follow(client, wid))

    async def _follow(self, client: Client, wid: str) -> None:
        async for event in client.get_workflow_handle(wid).fetch_history_events(
            wait_new_event=True
        ):
            if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
                self._last_timer = event.event_id
                self._wake.set()
            step = await self._reader.step(event)
            if step is None:
                continue
            kind, arg, result = step
            arg = arg if isinstance(arg, dict) else {}
            if kind == "notify":
                kind = f"notify:{arg.get('template')}"
            elif kind == "noop":
                kind = str(arg.get("step"))
            self._steps.setdefault(kind, (event.event_id, arg, result))
            self._wake.set()

    async def _until(self, seen: Callable[[], bool], what: str) -> None:
        while not seen():
            if self._following.done():
                self._following.result()  # (raises what stopped it)
                raise AssertionError(f"the case ended without {what}")
            self._wake.clear()
            await self._wake.wait()

    async def step(self, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The step's input and result, once the case has done it."""
        await self._until(lambda: name in self._steps, name)
        _, arg, result = self._steps[name]
        return arg, result if isinstance(result, dict) else {}

    async def waiting_after(self, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The step, once the case has done it and then started waiting (a timer)."""
        found = await self.step(name)
        after = self._steps[name][0]
        await self._until(lambda: self._last_timer > after, f"a wait after {name}")
        return found

    def close(self) -> None:
        self._following.cancel()


Review = Callable[[str], Awaitable[Any]]


class _Actors:
    """Simulated counter, reviewer, payer, bureau and collector for one kind of workflow.

    Each reacts to what it would see: the clerk to the notice that the card is frozen,
    the reviewer to the submission's answer, the payer to the payment notice, the
    bureau to the order, the collector to the pickup notice (`_Watch`)."""

    def __init__(
        self,
        *,
        start: Callable[[int], Awaitable[str]],
        client: Client,
        materials: Callable[[dict[str, Any]], Awaitable[Any]],
        review_arg: Any,
        payment: Callable[[dict[str, Any]], Awaitable[Any]],
        produced: Callable[[dict[str, Any]], Awaitable[tuple[Any, Any]]],
    ) -> None:
        self.start, self.client = start, client
        self.materials, self.review_arg = materials, review_arg
        self.payment, self.produced = payment, produced

    async def direct_review(self, wid: str) -> Any:
        return await self.client.get_workflow_handle(wid).execute_update("review", self.review_arg)

    async def opened(self, n: int) -> str:
        """Start case `n`; its ID once it has frozen the card and waits for the applicant."""
        wid = await self.start(n)
        watch = _Watch(self.client, wid)
        try:
            await watch.waiting_after("notify:card_frozen")
        finally:
            watch.close()
        return wid

    async def case(self, n: int, t: _Timings, *, review_http: Review | None = None) -> str:
        began = time.perf_counter()
        wid = await self.start(n)
        t.start.append(time.perf_counter() - began)
        handle = self.client.get_workflow_handle(wid)
        watch = _Watch(self.client, wid)
        try:
            await watch.waiting_after("notify:card_frozen")  # for the applicant
            _, registered = await watch.step("register_loss")
            await handle.execute_update("submit_materials", await self.materials(registered))
            sent = time.perf_counter()
            if review_http is None:
                await self.direct_review(wid)
                t.update.append(time.perf_counter() - sent)
            else:
                await review_http(wid)
                t.review_http.append(time.perf_counter() - sent)
            notice, _ = await watch.step("notify:payment_requested")
            sent = time.perf_counter()
            await handle.signal("payment_confirmed", await self.payment(notice))
            _, ordered = await watch.step("order_card_production")
            t.signal_effect.append(time.perf_counter() - sent)
            produced, collected = await self.produced(ordered)
            await handle.signal("card_produced", produced)
            await watch.step("notify:ready_for_pickup")
            await handle.signal("card_collected", collected)
            await handle.result()
        finally:
            watch.close()
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

    async def materials(registered: dict[str, Any]) -> Any:
        return standard_submission(registered["report_number"], received_by="bench-clerk")

    async def payment(notice: dict[str, Any]) -> Any:
        params = notice["params"]
        return {
            "order_id": params["order"],
            "amount_fen": round(float(params["amount"]) * 100),
            "payment_ref": f"B-{uuid.uuid4().hex[:12]}",
            "paid_at": datetime.now(UTC),
        }

    async def produced(ordered: dict[str, Any]) -> tuple[Any, Any]:
        async with pool.acquire() as conn:  # the bureau's next card number
            card = await conn.fetchval("SELECT next_card_number()")
        return (
            {
                "order_id": ordered["order_id"],
                "new_card_number": card,
                "produced_at": datetime.now(UTC),
            },
            {"new_card_number": card, "handed_over_by": "bench"},
        )

    return _Actors(
        start=start,
        client=client.temporal,
        materials=materials,
        review_arg={"reviewer": "bench", "verdict": "approve"},
        payment=payment,
        produced=produced,
    )


def _bare(stack: OwnStack, task_queue: str, run_id: str) -> _Actors:
    client: Client = stack.client.temporal

    async def start(n: int) -> str:
        wid = f"bare-{run_id}-{n}"
        await client.start_workflow("BareCaseWorkflow", {}, id=wid, task_queue=task_queue)
        return wid

    async def empty(_: dict[str, Any]) -> Any:
        return {}

    async def produced(_: dict[str, Any]) -> tuple[Any, Any]:
        return {}, {}

    return _Actors(
        start=start,
        client=client,
        materials=empty,
        review_arg={},
        payment=empty,
        produced=produced,
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


async def _history_cost(client: Client, ids: list[str]) -> dict[str, Any]:
    events, sizes, activities, local, timers = [], [], [], [], []
    kinds: Counter[str] = Counter()
    for wid in ids:
        history = await client.get_workflow_handle(wid).fetch_history()
        events.append(len(history.events))
        kinds.update(
            EventType.Name(e.event_type).removeprefix("EVENT_TYPE_") for e in history.events
        )
        sizes.append(History(events=history.events).ByteSize())
        activities.append(
            sum(
                e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED for e in history.events
            )
        )
        local.append(
            sum(
                e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
                and e.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER
                for e in history.events
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
        "local_activities_per_case": round(sum(local) / n, 1),
        "timers_per_case": round(sum(timers) / n, 1),
        "events_by_type": {k: round(v / n, 1) for k, v in kinds.most_common()},
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
        "review_update": _summary(timings.update),
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
            await actors.opened(100_000 + n)

    began = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(cfg.open_cases)))
    return {
        "open_cases": cfg.open_cases,
        "opened_in_s": round(time.perf_counter() - began, 1),
        "worker_peak_rss_mb": _peak_rss_mb([p.pid for p in workers]),
    }


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
    actors = _ours(stack, "door", channel="hotline_12333")  # a temporary report
    async with stack.pool.acquire() as conn:
        key = await create_key(conn, "counter")
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
    figures: dict[str, Any] = {name: _summary(values) for name, values in times.items()}
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
    actors = _ours(stack, "half")
    actors.review_arg = {"reviewer": "bench-reviewer", "verdict": "approve"}
    timings = _Timings()
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
        "review_direct": _summary(timings.update),
        "review_http": _summary(timings.review_http),
    }


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
