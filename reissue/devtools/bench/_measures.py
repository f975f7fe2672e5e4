"""What the benchmark measures: latency percentiles, CPU time and peak memory of the
processes, and what a case costs in history."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import History
from temporalio.client import Client

from reissue.ops.audit import LOCAL_ACTIVITY_MARKER

__all__ = ["Timings", "history_cost", "peak_rss_mb", "percentiles", "postgres_pids", "tree_cpu"]


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def percentiles(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(_pct(values, 0.50) * 1000, 1),
        "p95_ms": round(_pct(values, 0.95) * 1000, 1),
        "p99_ms": round(_pct(values, 0.99) * 1000, 1),
    }


@dataclass
class Timings:
    start: list[float] = field(default_factory=list)
    update: list[float] = field(default_factory=list)
    review_http: list[float] = field(default_factory=list)
    signal_effect: list[float] = field(default_factory=list)
    end_to_end: list[float] = field(default_factory=list)


def tree_cpu(pids: list[int]) -> float:
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


def postgres_pids(folder: Path) -> list[int]:
    found = []
    for p in psutil.process_iter(["name", "cmdline"]):
        cmd = " ".join(p.info.get("cmdline") or [])
        if "postgres" in (p.info.get("name") or "") and str(folder) in cmd:
            found.append(p.pid)
    return found


def peak_rss_mb(pids: list[int]) -> float:
    peak = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except OSError:
            continue
    return round(peak / 1024, 1)


async def history_cost(client: Client, ids: list[str]) -> dict[str, Any]:
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
