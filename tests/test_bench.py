"""The benchmark works: a small run completes and prints its figures (no speed is asserted:
so the smallest run that yields every figure, the same on both sides)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

REISSUE = str(Path(sys.prefix) / "bin" / "reissue")


async def test_small_benchmark_prints_figures(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = await asyncio.create_subprocess_exec(
        REISSUE,
        "bench",
        "--cases",
        "6",
        "--concurrency",
        "6",
        "--open-cases",
        "4",
        "--front-door-samples",
        "3",
        "--half-load-cases",
        "2",
        "--json",
        str(out),
        env=os.environ | {"COLUMNS": "160"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=300)
    text = stdout.decode()
    assert proc.returncode == 0, text + stderr.decode()
    for figure in (
        "cases/s",
        "review update p95",
        "payment → card ordered p99",
        "end to end p50",
        "history events per case",
        "CPU s/case temporal",
        "worker peak RSS",
        "throughput ours/bare",
        "make_report_formal update p50 / p95",
        "status read p50 / p95",
        "review at half load",
        "console (HTTP)",
        "console queue page with",
        "CPU s/case total",
    ):
        assert figure in text, figure
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["machine"]["cores"] == os.cpu_count()
    for side in ("ours", "bare"):
        assert result[side]["cases"] == 6 and result[side]["cases_per_s"] > 0
        assert result[side]["history"]["events_per_case"] > 0
        assert result[side]["cpu_s_per_case"]["temporal"] > 0
    # The same steps on both sides: ours runs those on its own registry as local activities.
    ours, bare = result["ours"]["history"], result["bare"]["history"]
    assert (
        ours["activities_per_case"] + ours["local_activities_per_case"]
        == (bare["activities_per_case"])
    )
    assert result["open_cases"]["worker_peak_rss_mb"] > 0
    assert result["open_cases"]["queue_page"]["cases_listed"] >= 4
    assert result["open_cases"]["queue_page"]["p95_ms"] > 0
    assert result["open_cases"]["queue_page"]["held"]["p95_ms"] > 0
    door = result["front_door"]
    assert door["samples"] == 3
    for figure in ("update_direct", "update_http", "read_direct", "read_http"):
        assert door[figure]["p50_ms"] > 0, figure
    half = result["half_load"]
    assert half["cases"] == 2 and half["arrivals_per_s"] > 0
    for path in ("review_direct", "review_http"):  # a case reviewed each way
        assert half[path]["p50_ms"] > 0, path
    # The history is read by event type; ours has no activity task for a registry step.
    assert result["ours"]["history"]["events_by_type"]["MARKER_RECORDED"] > 0
