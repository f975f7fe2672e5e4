"""deploy/: every file validates offline, and the image's own command runs a worker that works."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml
from compose_spec import ComposeSpecification
from pydantic import ValidationError

from reissue.schemas.enums import Stage
from reissue.workers.settings import DEV_HASH_SECRET
from tests.support import TEST_KEYS_SPEC, Stack

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.prefix) / "bin"


def test_kubernetes_manifests_validate() -> None:
    files = sorted(str(p) for p in (ROOT / "deploy" / "k8s").glob("*.yaml"))
    assert len(files) >= 4
    done = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    kinds = {d["kind"] for f in files for d in yaml.safe_load_all(Path(f).read_text()) if d}
    assert {
        "Deployment",
        "Service",
        "Job",
        "ConfigMap",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    } <= kinds


def test_kubernetes_validation_catches_a_broken_manifest(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: two}\n"
    )
    done = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0


def test_compose_file_validates_and_holds_no_secrets() -> None:
    text = (ROOT / "deploy" / "compose" / "compose.yaml").read_text()
    spec = ComposeSpecification.model_validate(yaml.safe_load(text))
    services = set(spec.services or {})
    assert {"temporal", "temporal-ui", "records-db", "migrate", "worker", "codec"} <= services
    for name in ("worker", "codec", "temporal", "records-db"):
        assert spec.services[name].healthcheck is not None, name
    for word in ("PASSWORD:", "REISSUE_HASH_SECRET:", "REISSUE_CODEC_TOKENS:", "BEGIN "):
        assert word not in text
    with pytest.raises(ValidationError):
        ComposeSpecification.model_validate({"services": {"x": {"ports": {"a": 1}}}})


def test_dockerfile_lints_clean() -> None:
    done = subprocess.run(
        [str(BIN / "hadolint"), str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _image() -> tuple[list[str], dict[str, str]]:
    """ENTRYPOINT + CMD and the ENV of the image's final stage, as Docker would run them."""
    final = (ROOT / "Dockerfile").read_text().split("\nFROM ")[-1]
    command: list[str] = []
    env: dict[str, str] = {}
    lines = final.replace("\\\n", " ").splitlines()
    for line in lines:
        if line.startswith("ENTRYPOINT "):
            command = json.loads(line.removeprefix("ENTRYPOINT ")) + command
        elif line.startswith("CMD "):
            command = command + json.loads(line.removeprefix("CMD "))
        elif line.startswith("ENV "):
            for pair in shlex.split(line.removeprefix("ENV ")):
                key, _, value = pair.partition("=")
                env[key] = value
    return command, env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.read().decode()


async def test_the_images_command_runs_a_worker_with_health_metrics_and_traces(
    env,
    pool,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    from aiohttp import web

    from reissue.client import ReissueClient

    command, image_env = _image()
    assert command == ["reissue", "worker"] and image_env["REISSUE_ENV"] == "production"
    health, metrics, otlp = _free_port(), _free_port(), _free_port()
    exported: list[int] = []  # sizes of the trace batches a collector received
    traces_came = asyncio.Event()

    async def collect(request: web.Request) -> web.Response:
        exported.append(len(await request.read()))
        traces_came.set()
        return web.Response(status=200)

    collector = web.Application()
    collector.router.add_post("/v1/traces", collect)
    collecting = web.AppRunner(collector, access_log=None)
    await collecting.setup()
    await web.TCPSite(collecting, "127.0.0.1", otlp).start()
    deployment_env = {  # what the ConfigMap and Secret add, pointed at the test cluster
        "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
        "DATABASE_URL": settings.require_database_url(),
        "REISSUE_TASK_QUEUE": settings.task_queue,
        "REISSUE_HASH_SECRET": DEV_HASH_SECRET,
        "REISSUE_CODEC_KEYS": TEST_KEYS_SPEC,
        "REISSUE_HEALTH_PORT": str(health),
        "REISSUE_METRICS_ADDRESS": f"127.0.0.1:{metrics}",
        **settings.partner_environment(),
        # Production refuses to run without it (nothing here sends a notice).
        "REISSUE_NOTIFICATION_GATEWAY_URL": "http://127.0.0.1:9",
        # Traces to an OpenTelemetry collector (here: one that counts what it gets).
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{otlp}",
        "OTEL_BSP_SCHEDULE_DELAY": "200",
    }
    proc = await asyncio.create_subprocess_exec(
        str(BIN / command[0]),
        *command[1:],
        env={"PATH": f"{BIN}:{os.environ['PATH']}", **image_env, **deployment_env},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(30):
            while b"worker started" not in await proc.stderr.readline():
                pass
        asyncio.get_running_loop().create_task(proc.stderr.read())
        stack = Stack(
            env=env,
            pool=pool,
            client=ReissueClient(
                env.client, task_queue=settings.task_queue, hash_secret=DEV_HASH_SECRET
            ),
            settings=settings,
        )
        _, case, report = await stack.open_case(channel="counter")
        await stack.submit(case, report, mode="instant")
        await stack.approve(case, waive_fee=True, waiver_reason="deploy test")
        st = await stack.wait_for(case, Stage.READY_FOR_PICKUP)
        card = await stack.one(
            "SELECT new_card_number FROM production_orders WHERE case_id = $1", st.case_id
        )
        await stack.client.card_collected(
            case, {"new_card_number": card, "handed_over_by": "counter-1"}
        )
        assert (await stack.client.result(case)).outcome is Stage.COMPLETED

        assert (await asyncio.to_thread(_get, f"http://127.0.0.1:{health}/healthz"))[0] == 200
        assert (await asyncio.to_thread(_get, f"http://127.0.0.1:{health}/readyz"))[0] == 200
        status, text = await asyncio.to_thread(_get, f"http://127.0.0.1:{metrics}/metrics")
        assert status == 200
        for name in (
            "temporal_workflow_completed",
            "temporal_activity_execution_latency",
            "temporal_worker_task_slots_available",
        ):
            assert name in text, name
        closed = [line for line in text.splitlines() if line.startswith("reissue_cases_closed{")]
        assert len(closed) == 1 and 'outcome="COMPLETED"' in closed[0] and closed[0].endswith(" 1")
        await asyncio.wait_for(traces_came.wait(), timeout=20)
        assert all(size > 0 for size in exported)
    finally:
        proc.terminate()
        assert await asyncio.wait_for(proc.wait(), timeout=30) == 0
        await collecting.cleanup()


def test_lock_pins_every_runtime_dependency_and_examples_hold_no_secrets() -> None:
    import re
    import tomllib

    lock = (ROOT / "deploy" / "requirements.lock").read_text().splitlines()
    pinned = {}
    for line in lock:
        if line.strip() and not line.startswith("#"):
            name, sep, version = line.partition("==")
            assert sep and version, f"not pinned: {line}"
            pinned[re.sub(r"[-_.]+", "-", name).lower()] = version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    def names(requirements: list[str]) -> set[str]:
        return {
            re.sub(r"[-_.]+", "-", re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0]).lower()
            for r in requirements
        }

    # The worker image: the runtime dependencies and the worker extra, and nothing of
    # the dev stack or the tools.
    image = names(project["dependencies"] + project["optional-dependencies"]["worker"])
    assert image <= set(pinned), f"not in the lock: {image - set(pinned)}"
    dev_only = names(project["optional-dependencies"]["dev"]) - image - {"card-reissue"}
    assert dev_only and not dev_only & set(pinned), (
        f"dev tools in the image: {dev_only & set(pinned)}"
    )
    example = (ROOT / "deploy" / "compose" / "reissue.env.example").read_text()
    for line in example.splitlines():
        if "=" in line and not line.startswith("#"):
            assert "CHANGE-ME" in line, line
    deploy_files = {
        p.relative_to(ROOT / "deploy").as_posix()
        for p in (ROOT / "deploy").rglob("*")
        if p.is_file()
    }
    checked = {
        "requirements.lock",
        "compose/compose.yaml",
        "compose/reissue.env.example",
        "compose/.gitignore",
        "README.md",
        # tests/deploy/test_observability.py
        "observability/alerts.yml",
        "observability/alerts.test.yml",
        "observability/dashboard.json",
    } | {f"k8s/{p.name}" for p in (ROOT / "deploy" / "k8s").glob("*.yaml")}
    assert deploy_files <= checked, f"files in deploy/ nothing checks: {deploy_files - checked}"
