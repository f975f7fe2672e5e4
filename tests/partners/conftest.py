"""Partner-system simulators as real processes (`reissue simulator …`), which a test
can slow down, break, kill and restart."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from reissue.devtools.simulators import spawn

REISSUE = str(Path(sys.prefix) / "bin" / "reissue")


class Simulator:
    """One simulator process on a fixed port and state file (so a restart resumes it)."""

    def __init__(self, system: str, state: Path) -> None:
        self.system, self.state = system, state
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: asyncio.subprocess.Process | None = None
        self.report_url: str | None = None  # (the bureau: the front door it reports to)

    async def start(self, **knobs: Any) -> None:
        self.proc = await spawn(self.system, port=self.port, state=self.state, **knobs)

    async def kill(self) -> None:
        """SIGKILL: the process dies wherever it is, mid-call or not."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()
        self.proc = None

    async def knobs(self, **knobs: Any) -> None:
        async with httpx.AsyncClient(base_url=self.url) as http:
            r = await http.put("/_knobs", json=knobs)
            assert r.status_code == 200, r.text

    async def put(self, path: str, **body: Any) -> Any:
        async with httpx.AsyncClient(base_url=self.url) as http:
            r = await http.put(path, json=body)
            assert r.status_code == 200, r.text
            return r.json()

    async def post(self, path: str, *, expect: int = 200, **body: Any) -> Any:
        async with httpx.AsyncClient(base_url=self.url) as http:
            r = await http.post(path, json=body)
            assert r.status_code == expect, r.text
            return r.json()

    async def get(self, path: str, **params: Any) -> Any:
        async with httpx.AsyncClient(base_url=self.url) as http:
            r = await http.get(path, params=params)
            assert r.status_code == 200, r.text
            return r.json()


@pytest.fixture
async def simulator(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Simulator]]]:
    started: list[Simulator] = []

    async def start(system: str, **knobs: Any) -> Simulator:
        sim = Simulator(system, tmp_path / f"{system}.sqlite")
        await sim.start(**knobs)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        if sim.proc is not None:
            sim.proc.terminate()
            await sim.proc.wait()
