"""The README's first command: `reissue dev` brings up the stack and the demo cases show in visibility."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import urllib.request
from collections import Counter
from pathlib import Path

from temporalio.client import Client

from schemas.converter import data_converter
from schemas.enums import Stage
from workers.demo import DEMO_PLAN

REISSUE = str(Path(sys.prefix) / "bin" / "reissue")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _expected_open_stages() -> Counter[str]:
    # Right after start the fast-policy lapse is still waiting for materials.
    stages = [Stage.AWAITING_MATERIALS if p.target is Stage.LAPSED else p.target for p in DEMO_PLAN]
    return Counter(s.value for s in stages)


async def test_dev_stack_runs_demo_cases_visible_by_stage(tmp_path: Path) -> None:
    port, ui_port = _free_port(), _free_port()
    env = os.environ | {
        "REISSUE_DATA_DIR": str(tmp_path / "data"),
        "TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
        "REISSUE_UI_PORT": str(ui_port),
        "REISSUE_LOG_FORMAT": "json",
    }
    env.pop("DATABASE_URL", None)
    proc = await asyncio.create_subprocess_exec(
        REISSUE, "dev", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        seen = ""
        async with asyncio.timeout(120):
            while "Temporal Web UI" not in seen:
                line = await proc.stdout.readline()
                assert line, f"reissue dev ended early: {seen}"
                seen += line.decode()
        assert f"http://localhost:{ui_port}/namespaces/default/workflows" in seen
        assert "Demo: started 15 cases" in seen

        client = await Client.connect(f"127.0.0.1:{port}", data_converter=data_converter())
        expected = _expected_open_stages()
        counts: dict[str, int] = {}
        for _ in range(50):
            counts = {
                stage: (await client.count_workflows(f"CaseStage = '{stage}'")).count
                for stage in expected
            }
            if counts == dict(expected):
                break
            await asyncio.sleep(0.2)
        assert counts == dict(expected)
        running = await client.count_workflows("ExecutionStatus = 'Running'")
        assert running.count == sum(n for s, n in expected.items() if not Stage(s).terminal)
        page = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/", timeout=10).status
        )
        assert page == 200
    finally:
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(60):
            await proc.wait()
    assert proc.returncode == 0
