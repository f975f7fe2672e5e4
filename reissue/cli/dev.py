"""Developer commands: the embedded stack, demo, bureau stand-in, soak, benchmark, schema export."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from reissue.cli._common import (
    _client,
    _run,
    _settings,
    console,
    err_console,
)
from reissue.workers.logging import configure_logging

commands = typer.Typer()
schemas_app = typer.Typer(help="The published JSON Schemas.", no_args_is_help=True)


@commands.command()
def dev(
    demo: Annotated[bool, typer.Option(help="Start the demo mix of cases.")] = True,
) -> None:
    """Run the embedded stack: Temporal dev server + Web UI, PostgreSQL, a worker."""
    from reissue.devtools.devstack import run_dev

    # The one command that sets dev (the tests are the others): it runs the embedded
    # stack with the public default secrets, never on a production configuration.
    if os.environ.setdefault("REISSUE_ENV", "dev") != "dev":
        err_console.print(
            "[red]reissue dev runs the dev stack:[/] REISSUE_ENV must be dev or unset"
        )
        raise typer.Exit(2)
    settings = _settings()
    configure_logging(fmt=settings.log_format)
    asyncio.run(run_dev(settings, demo=demo, console=console))


@commands.command()
def demo() -> None:
    """Seed people and start the demo mix of cases on a running stack."""
    from reissue.activities.db import create_pool
    from reissue.devtools.demo import run_demo

    async def go() -> None:
        settings = _settings()
        pool = await create_pool(settings.require_database_url())
        try:
            async with _client() as client:
                cases = await run_demo(
                    client,
                    pool,
                    secret=settings.case_secret(),
                    pace_seconds=settings.demo_pace_seconds,
                    bank_url=settings.require_partner_url("bank"),
                )
        finally:
            await pool.close()
        table = Table("workflow ID", "driven to")
        for case, stage in cases:
            table.add_row(case, stage.value)
        console.print(table)

    _run(go())


@commands.command()
def simulator(
    system: Annotated[str, typer.Argument(help="notifications, payments, bank or bureau.")],
    port: Annotated[int, typer.Option(help="Port to listen on.")],
    state: Annotated[Path, typer.Option(help="SQLite file the simulator keeps its records in.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    latency_ms: Annotated[int, typer.Option(help="Every call waits this long.")] = 0,
    down: Annotated[bool, typer.Option(help="Every call fails with 503.")] = False,
    error_rate: Annotated[float, typer.Option(help="Share of calls failing with 503.")] = 0.0,
    lost_answer_rate: Annotated[
        float, typer.Option(help="Share of calls done but answered 504.")
    ] = 0.0,
    production_delay_ms: Annotated[
        int, typer.Option(help="Bureau: how long making a card takes before it reports.")
    ] = 1000,
    failure_rate: Annotated[
        float, typer.Option(help="Bureau: share of orders whose production fails.")
    ] = 0.0,
    fail_next: Annotated[int, typer.Option(help="Bureau: the next this many orders fail.")] = 0,
    webhook_delay_ms: Annotated[
        int, typer.Option(help="Payment platform: how long after a payment its webhook goes out.")
    ] = 0,
) -> None:
    """Run a partner-system simulator (knobs also at run time: PUT /_knobs)."""
    from reissue.devtools.simulators import SYSTEMS, Knobs, serve_simulator

    if system not in SYSTEMS:
        err_console.print(f"[red]Invalid input:[/] system: one of {', '.join(SYSTEMS)}")
        raise typer.Exit(2)
    knobs = Knobs(
        latency_ms=latency_ms,
        down=down,
        error_rate=error_rate,
        lost_answer_rate=lost_answer_rate,
        production_delay_ms=production_delay_ms,
        failure_rate=failure_rate,
        fail_next=fail_next,
        webhook_delay_ms=webhook_delay_ms,
    )
    asyncio.run(serve_simulator(system, state, host=host, port=port, knobs=knobs))


# ----------------------------------------------------------------------------- case actions


@commands.command()
def soak(
    cases: Annotated[int, typer.Option(help="How many cases (per seed).")] = 1000,
    concurrency: Annotated[int, typer.Option(help="Cases driven at once.")] = 20,
    seed: Annotated[int, typer.Option(help="Random seed for paths and duplicates.")] = 1,
    seeds: Annotated[int, typer.Option(help="How many seeds, from --seed on, one run each.")] = 1,
    chaos: Annotated[
        bool,
        typer.Option(
            help="Random programs of events instead of paths: races, early ends, Temporal "
            "cancellation, wrong, duplicate and late payments, intruders, plaintext."
        ),
    ] = False,
    program: Annotated[
        list[str] | None,
        typer.Option(
            help="With --chaos: run this program (as an error names it, "
            '"CaseProgram(channel=…, steps=…)") instead of random ones; repeatable.'
        ),
    ] = None,
) -> None:
    """Soak on a stack of its own: cases through random paths, duplicate and late events;
    then every invariant, and every history the run produced replayed against this code."""
    import logging

    from reissue.devtools.chaos import parse_program
    from reissue.devtools.soak import SoakResult, run_chaos, run_soak
    from reissue.devtools.stack import own_stack

    configure_logging(fmt="console", level=logging.WARNING)
    # The soak's refused events are expected: no traceback for each one.
    logging.getLogger("temporalio.activity").setLevel(logging.ERROR)
    try:
        programs = [parse_program(p) for p in program or []]
    except ValueError as e:
        err_console.print(f"[red]Invalid input:[/]\n  program: {e}")
        raise typer.Exit(2) from None

    async def go() -> list[tuple[int, SoakResult]]:
        results = []
        async with own_stack() as stack:
            for n in range(seed, seed + seeds):
                options: dict[str, Any] = {"programs": programs} if chaos and programs else {}
                result = await (run_chaos if chaos else run_soak)(
                    stack.client,
                    stack.pool,
                    cases=len(programs) if programs else cases,
                    concurrency=concurrency,
                    seed=n,
                    secret=stack.settings.case_secret(),
                    task_queue=stack.settings.task_queue,
                    bank_url=stack.settings.require_partner_url("bank"),
                    **options,
                )
                results.append((n, result))
        return results

    failed = False
    for n, result in _run(go()):
        table = Table("figure", "value", title=f"Soak, seed {n}")
        table.add_row("cases finished", f"{result.finished} of {result.cases}")
        table.add_row("elapsed", f"{result.elapsed_s:.1f} s ({result.cases_per_s:.2f} cases/s)")
        for outcome, count in sorted(result.outcomes.items()):
            table.add_row(f"outcome {outcome}", str(count))
        if chaos:
            table.add_row("events sent", str(result.events_sent))
            table.add_row("events refused (as expected)", str(result.events_refused))
        else:
            table.add_row("duplicate events sent", str(result.duplicates_sent))
            table.add_row("late events sent", str(result.late_events_sent))
        table.add_row("errors", str(len(result.errors)))
        table.add_row("invariant violations", str(len(result.violations)))
        table.add_row("histories replayed", f"{result.replayed}, {len(result.diverged)} diverged")
        console.print(table)
        for line in result.errors[:20]:
            err_console.print(f"[red]error:[/] {line}")
        for v in result.violations[:20]:
            err_console.print(f"[red]violation:[/] {v.rule} — {v.subject}: {v.detail}")
        for line in result.diverged[:20]:
            err_console.print(f"[red]replay diverged:[/] {line}")
        failed = failed or not result.clean
    if failed:
        raise typer.Exit(1)


@commands.command()
def bench(
    cases: Annotated[int, typer.Option(help="Happy-path cases per phase.")] = 200,
    concurrency: Annotated[int, typer.Option(help="Cases driven at once.")] = 20,
    worker_processes: Annotated[int, typer.Option(help="Worker processes per phase.")] = 1,
    workflow_tasks: Annotated[int, typer.Option(help="Max concurrent workflow tasks.")] = 100,
    activities: Annotated[int, typer.Option(help="Max concurrent activities.")] = 100,
    workflow_pollers: Annotated[int, typer.Option(help="Workflow task pollers.")] = 5,
    activity_pollers: Annotated[int, typer.Option(help="Activity task pollers.")] = 5,
    max_cached: Annotated[int, typer.Option(help="Workflows a worker keeps cached.")] = 400,
    open_cases: Annotated[
        int,
        typer.Option(help="Then open this many cases: memory, and the console's queue page."),
    ] = 0,
    front_door_samples: Annotated[
        int, typer.Option(help="Then time this many updates and reads each way: direct, HTTP.")
    ] = 50,
    half_load_cases: Annotated[
        int, typer.Option(help="Then time the review at half load over this many cases.")
    ] = 60,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write JSON here.")] = None,
) -> None:
    """Cases/s, latencies, history and CPU cost per case, beside a bare-Temporal reference."""
    import logging

    from reissue.devtools.bench import BenchConfig, run_bench, to_json

    configure_logging(fmt="console", level=logging.WARNING)
    cfg = BenchConfig(
        cases=cases,
        concurrency=concurrency,
        worker_processes=worker_processes,
        max_concurrent_workflow_tasks=workflow_tasks,
        max_concurrent_activities=activities,
        workflow_task_pollers=workflow_pollers,
        activity_task_pollers=activity_pollers,
        max_cached_workflows=max_cached,
        open_cases=open_cases,
        front_door_samples=front_door_samples,
        half_load_cases=half_load_cases,
    )
    result = _run(run_bench(cfg))
    ours, bare = result["ours"], result["bare"]
    table = Table(
        "figure",
        "ours",
        "bare Temporal",
        title=f"{cases} cases, concurrency {concurrency}, "
        f"{worker_processes} worker process(es), {result['machine']['cores']} cores",
    )
    table.add_row("cases/s", str(ours["cases_per_s"]), str(bare["cases_per_s"]))
    for key, label in (
        ("case_start", "case start"),
        ("review_update", "review update"),
        ("signal_to_status", "payment → card ordered"),
        ("end_to_end", "end to end"),
    ):
        for q in ("p50_ms", "p95_ms", "p99_ms"):
            table.add_row(f"{label} {q[:3]} (ms)", str(ours[key][q]), str(bare[key][q]))
    for key in (
        "events_per_case",
        "bytes_per_case",
        "activities_per_case",
        "local_activities_per_case",
        "timers_per_case",
    ):
        table.add_row(
            f"history {key.replace('_', ' ')}", str(ours["history"][key]), str(bare["history"][key])
        )
    for part in ("worker", "temporal", "postgres"):
        table.add_row(
            f"CPU s/case {part}",
            str(ours["cpu_s_per_case"][part]),
            str(bare["cpu_s_per_case"][part]),
        )
    table.add_row(
        "CPU s/case total",
        str(round(sum(ours["cpu_s_per_case"].values()), 4)),
        str(round(sum(bare["cpu_s_per_case"].values()), 4)),
    )
    table.add_row(
        "worker peak RSS (MB)", str(ours["worker_peak_rss_mb"]), str(bare["worker_peak_rss_mb"])
    )
    console.print(table)
    console.print(f"throughput ours/bare: [bold]{result['ratio_ours_to_bare_throughput']}[/]")
    if result["half_load"]:
        h = result["half_load"]
        half = Table(
            f"review at half load ({h['arrivals_per_s']} cases/s arriving)", "p50", "p95", "p99"
        )
        for key, label in (("review_direct", "update (direct)"), ("review_http", "console (HTTP)")):
            half.add_row(label, *(f"{h[key][q]} ms" for q in ("p50_ms", "p95_ms", "p99_ms")))
        console.print(half)
    if result["open_cases"]:
        o = result["open_cases"]
        console.print(f"{o['open_cases']} open cases: worker peak RSS {o['worker_peak_rss_mb']} MB")
        q = o["queue_page"]
        console.print(
            f"console queue page with {q['cases_listed']} open cases p50 / p95: "
            f"{q['p50_ms']} / {q['p95_ms']} ms listed afresh, "
            f"{q['held']['p50_ms']} / {q['held']['p95_ms']} ms paged from the listing held"
        )
    if result["front_door"]:
        d = result["front_door"]
        door = Table("front door (one at a time)", "direct", "partner API (HTTP)", "added p50")
        for kind, label in (("update", "make_report_formal update"), ("read", "status read")):
            direct, http = d[f"{kind}_direct"], d[f"{kind}_http"]
            door.add_row(
                f"{label} p50 / p95 (ms)",
                f"{direct['p50_ms']} / {direct['p95_ms']}",
                f"{http['p50_ms']} / {http['p95_ms']}",
                f"{d[f'{kind}_added_p50_ms']} ms",
            )
        console.print(door)
    if json_out:
        json_out.write_text(to_json(result), encoding="utf-8")
        console.print(f"Wrote {json_out}")


@schemas_app.command("export")
def schemas_export(
    out: Annotated[Path | None, typer.Option(help="Folder (default: schemas/json).")] = None,
) -> None:
    """Write the JSON Schema of every input, event and result, and contract.json."""
    from reissue.api.app import OPENAPI_FILE, openapi_document
    from reissue.schemas.contract import SCHEMA_DIR, write_all

    written = write_all(out or SCHEMA_DIR)
    console.print(f"Wrote {len(written)} files to {out or SCHEMA_DIR}")
    OPENAPI_FILE.write_text(openapi_document(), encoding="utf-8")
    console.print(f"Wrote {OPENAPI_FILE}")


# ----------------------------------------------------------------------------- audit
