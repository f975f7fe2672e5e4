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


@pytest.fixture(scope="session")
async def _simulator_processes() -> AsyncIterator[dict[str, Simulator]]:
    """One process per partner system for the session's partner tests, started when first
    asked for; each test gets it reset (`simulator`)."""
    running: dict[str, Simulator] = {}
    yield running
    for sim in running.values():
        if sim.proc is not None:
            sim.proc.terminate()
            await sim.proc.wait()


@pytest.fixture
async def simulator(
    _simulator_processes: dict[str, Simulator], tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., Awaitable[Simulator]]:
    """A partner system's simulator, as a process of its own, knowing nothing and set with
    these knobs; a test may kill and restart it (the next test gets it running again)."""

    async def start(system: str, **knobs: Any) -> Simulator:
        sim = _simulator_processes.get(system)
        if sim is None:
            sim = Simulator(system, tmp_path_factory.mktemp(system) / f"{system}.sqlite")
            _simulator_processes[system] = sim
        if sim.proc is None or sim.proc.returncode is not None:
            await sim.start()
        await sim.post("/_reset")  # its records and its knobs
        if knobs:
            await sim.knobs(**knobs)
        sim.report_url = None
        return sim

    return start
