"""The README's first command: `reissue dev` brings up the stack, and operators find the demo cases.

Filters by CaseStage, District and SlaBreached return exactly the expected demo
cases through the same visibility API the Web UI uses; the CLI's list, report
and namespace setup work against it as an operator would run them.
"""

from __future__ import annotations

import asyncio
import base64
import csv
import json
import os
import re
import signal
import socket
import sys
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from reissue.devtools.demo import DEMO_PLAN
from reissue.schemas.codec import KeyRing
from reissue.schemas.converter import data_converter
from tests.console.conftest import log_in
from tests.support import eventually

REISSUE = str(Path(sys.prefix) / "bin" / "reissue")
PACE_SECONDS = 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(url: str, body: bytes, headers: dict[str, str]) -> bytes:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return bytes(response.read())


async def _ids(client: Client, query: str) -> set[str]:
    return {w.id async for w in client.list_workflows(query)}


async def _run(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        REISSUE, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_dev_stack_demo_cases_by_stage_district_and_sla(tmp_path: Path) -> None:
    port, ui_port, codec_port, api_port = _free_port(), _free_port(), _free_port(), _free_port()
    sim_port = _free_port()  # and the next one: the notification gateway, the payment platform
    env = os.environ | {
        "REISSUE_DATA_DIR": str(tmp_path / "data"),
        "TEMPORAL_ADDRESS": f"127.0.0.1:{port}",
        "REISSUE_UI_PORT": str(ui_port),
        "REISSUE_CODEC_PORT": str(codec_port),
        "REISSUE_API_PORT": str(api_port),
        "REISSUE_SIMULATOR_PORT_BASE": str(sim_port),
        "REISSUE_LOG_FORMAT": "json",
        "REISSUE_DEMO_PACE_SECONDS": str(PACE_SECONDS),
        "COLUMNS": "200",
    }
    env.pop("DATABASE_URL", None)
    # `reissue dev` says dev itself; commands beside it say so in their environment.
    dev_env = {k: v for k, v in env.items() if k != "REISSUE_ENV"}
    env["REISSUE_ENV"] = "dev"
    proc = await asyncio.create_subprocess_exec(
        REISSUE, "dev", env=dev_env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
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
        assert f"Demo: started {len(DEMO_PLAN)} cases" in seen

        keys = KeyRing.load(tmp_path / "data" / "codec-keys.json")  # made by `reissue dev`
        client = await Client.connect(f"127.0.0.1:{port}", data_converter=data_converter(keys))
        # Every demo case reaches its stage (the fast-policy ones breach their SLA and lapse
        # within a few seconds; one still on its way is not yet where it is headed).
        by_stage = Counter(p.target.value for p in DEMO_PLAN)

        async def every_case_in_its_stage() -> None:
            assert await _ids(client, "SlaBreached = true"), "no SLA breached yet"
            for stage, n in by_stage.items():
                assert len(await _ids(client, f"CaseStage = '{stage}'")) == n, stage

        await eventually(every_case_in_its_stage, timeout=40, every=0.2)
        for district, n in Counter(p.district for p in DEMO_PLAN).items():
            assert len(await _ids(client, f"District = '{district}'")) == n, district
        breached = await _ids(client, "SlaBreached = true")
        fast_review = [p for p in DEMO_PLAN if p.fast and p.target.value == "UNDER_REVIEW"]
        assert len(breached) == len(fast_review) == 1
        assert breached == await _ids(
            client, f"CaseStage = 'UNDER_REVIEW' AND District = '{fast_review[0].district}'"
        )
        lapsed = [p for p in DEMO_PLAN if p.target.value == "LAPSED"]
        assert await _ids(client, "CaseStage = 'LAPSED'") == await _ids(
            client, f"District = '{lapsed[0].district}'"
        )
        page = await asyncio.to_thread(
            lambda: urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/", timeout=10).status
        )
        assert page == 200

        # The partner API runs beside it, with dev keys printed once.
        hotline = next(
            line.split()[1] for line in seen.splitlines() if line.strip().startswith("hotline ")
        )
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}") as api:
            case = next(iter(breached))
            r = await api.get(f"/v1/cases/{case}", headers={"Authorization": f"Bearer {hotline}"})
            assert r.status_code == 200, r.text
            assert r.json()["stage"] == "UNDER_REVIEW"
            assert (await api.get(f"/v1/cases/{case}")).status_code == 401

        # The outbox is delivered through the notification gateway's simulator.
        found = re.search(r"notification gateway (http://\S+)", seen)
        assert found is not None, seen
        gateway = found.group(1)
        async with httpx.AsyncClient(base_url=gateway) as sim:

            async def delivered() -> list[dict[str, str]]:
                inbox: list[dict[str, str]] = (await sim.get("/_inbox")).json()
                assert len(inbox) >= 5, f"{len(inbox)} messages delivered"
                return inbox

            inbox = await eventually(delivered, timeout=20, every=0.2)
            assert all(m["receipt"].startswith("RCPT-") for m in inbox)
            assert len({m["message_id"] for m in inbox}) == len(inbox)

        # The staff console runs beside it, with dev users: a supervisor logs in and
        # finds the breached case on the SLA-breached tab.
        password = next(
            line.split()[1] for line in seen.splitlines() if line.strip().startswith("password ")
        )
        async with httpx.AsyncClient(base_url=f"http://localhost:{api_port}/console") as web:
            r = await log_in(web, "supervisor-01", password)
            assert "reissue_session" in r.cookies
            tab = await web.get("/", params={"tab": "breached"})
            assert tab.status_code == 200 and next(iter(breached)) in tab.text

        # The Web UI's view: payloads are ciphertext; the codec server decodes them for it.
        plain = await Client.connect(f"127.0.0.1:{port}")
        case = next(iter(breached))
        history = await plain.get_workflow_handle(case).fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        sealed = started.input.payloads[0]
        assert sealed.metadata["encoding"] == b"binary/encrypted"
        token = (tmp_path / "data" / "codec-token").read_text().strip()
        body = json.dumps(
            {
                "payloads": [
                    {
                        "metadata": {
                            k: base64.b64encode(v).decode() for k, v in sealed.metadata.items()
                        },
                        "data": base64.b64encode(sealed.data).decode(),
                    }
                ]
            }
        ).encode()
        # As the Web UI sends it: its origin and the namespace shown.
        origin = {
            "Origin": f"http://localhost:{ui_port}",
            "Content-Type": "application/json",
            "X-Namespace": "default",
        }
        decoded = await asyncio.to_thread(
            _post, f"http://127.0.0.1:{codec_port}/t/{token}/decode", body, origin
        )
        assert b"applicant" in base64.b64decode(json.loads(decoded)["payloads"][0]["data"])
        with pytest.raises(urllib.error.HTTPError) as refused:
            await asyncio.to_thread(_post, f"http://127.0.0.1:{codec_port}/decode", body, origin)
        assert refused.value.code == 401

        # The operator's command line against the same stack.
        code, out, err = await _run(env, "cases", "list", "--stage", "UNDER_REVIEW")
        assert code == 0, err
        assert "CaseStage = 'UNDER_REVIEW'" in out and next(iter(breached)) in out
        code, out, err = await _run(env, "cases", "list", "--sla-breached")
        assert code == 0, err
        assert "1 case(s)" in out and "SlaBreached = true" in out
        code, out, err = await _run(env, "report", "--out", str(tmp_path / "report"))
        assert code == 0, err
        rows = list(csv.DictReader((tmp_path / "report" / "report.csv").open(encoding="utf-8")))
        totals = {r["key"]: int(r["count"]) for r in rows if r["section"] == "stage"}
        assert totals == dict(by_stage)
        png = (tmp_path / "report" / "report.png").read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
        code, out, err = await _run(env, "setup-namespace")
        assert code == 0, err
        assert "Added: none" in out and "CaseStage" in out  # the dev stack registered them
    finally:
        proc.send_signal(signal.SIGINT)
        async with asyncio.timeout(60):
            await proc.wait()
    assert proc.returncode == 0
