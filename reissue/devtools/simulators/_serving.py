"""Running simulators: one system's app with its fault knobs, served in this process or
spawned as a process of its own."""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import sys
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path

from aiohttp import web

from reissue.devtools.simulators._bank import bank
from reissue.devtools.simulators._bureau import bureau
from reissue.devtools.simulators._notifications import notifications
from reissue.devtools.simulators._payments import payments
from reissue.devtools.simulators._plumbing import Handler, Knobs, Store

__all__ = [
    "PARTNERS",
    "SYSTEMS",
    "build_simulator",
    "free_port",
    "partner_simulators",
    "serve_simulator",
    "spawn",
]


def _without_knobs(
    system: Callable[[web.Application, Store], None],
) -> Callable[[web.Application, Store, Knobs], None]:
    return lambda app, store, _: system(app, store)


SYSTEMS: dict[str, Callable[[web.Application, Store, Knobs], None]] = {
    "notifications": _without_knobs(notifications),
    "payments": payments,
    "bank": _without_knobs(bank),
    "bureau": bureau,
}


def build_simulator(system: str, state: Path, knobs: Knobs | None = None) -> web.Application:
    """The simulator of `system`, keeping its records in `state`."""
    if system not in SYSTEMS:
        raise ValueError(f"system: one of {', '.join(SYSTEMS)}")
    knobs = knobs or Knobs()
    store = Store(state)
    chance = random.Random()

    @web.middleware
    async def faults(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_"):
            return await handler(request)
        if knobs.latency_ms:
            await asyncio.sleep(knobs.latency_ms / 1000)
        if knobs.down or chance.random() < knobs.error_rate:
            return web.json_response({"error": "unavailable"}, status=503)
        response = await handler(request)
        if response.status < 300 and chance.random() < knobs.lost_answer_rate:
            return web.json_response({"error": "gateway timeout"}, status=504)  # done, unanswered
        return response

    async def get_knobs(_: web.Request) -> web.Response:
        return web.json_response(asdict(knobs))

    async def put_knobs(request: web.Request) -> web.Response:
        changes = await request.json()
        for name, value in changes.items():
            if name not in asdict(knobs):
                return web.json_response({"error": f"{name}: no such knob"}, status=400)
            setattr(knobs, name, type(getattr(knobs, name))(value))
        if "seed" in changes and knobs.seed >= 0:
            chance.seed(knobs.seed)
        return web.json_response(asdict(knobs))

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"system": system})

    async def reset(_: web.Request) -> web.Response:
        store.forget_everything()
        for name, value in asdict(Knobs()).items():
            setattr(knobs, name, value)
        return web.json_response(asdict(knobs))

    app = web.Application(middlewares=[faults])
    app.router.add_get("/_health", health)
    app.router.add_get("/_knobs", get_knobs)
    app.router.add_put("/_knobs", put_knobs)
    app.router.add_post("/_reset", reset)
    SYSTEMS[system](app, store, knobs)
    return app


async def serve_simulator(
    system: str, state: Path, *, host: str, port: int, knobs: Knobs | None = None
) -> None:
    """Serve until cancelled (or the process is stopped)."""
    runner = web.AppRunner(build_simulator(system, state, knobs), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    print(json.dumps({"system": system, "port": port}), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


async def spawn(
    system: str, *, port: int, state: Path, **knobs: float | int | bool
) -> asyncio.subprocess.Process:
    """Start `reissue simulator <system>` as a process of its own; returns once it listens."""
    flags = [
        f"--{k.replace('_', '-')}" if v is True else f"--{k.replace('_', '-')}={v}"
        for k, v in knobs.items()
        if v is not False
    ]
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "reissue"),
        "simulator",
        system,
        "--port",
        str(port),
        "--state",
        str(state),
        *flags,
        stdout=asyncio.subprocess.PIPE,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout=30)
    if not line:
        raise RuntimeError(f"the {system} simulator did not start (exit {await proc.wait()})")
    return proc


# The partner systems a case worker calls (the notification gateway is the dispatcher's).
PARTNERS = ("bank", "payments", "bureau")


@asynccontextmanager
async def partner_simulators(
    folder: Path,
    *,
    systems: Sequence[str] = PARTNERS,
    port_base: int | None = None,
    knobs: Mapping[str, Mapping[str, float | int | bool]] | None = None,
) -> AsyncIterator[dict[str, str]]:
    """Run a simulator of each system (ports from `port_base` up, or free ones), their
    records under `folder`; yields each system's URL, stops them all on exit."""
    procs: list[asyncio.subprocess.Process] = []
    urls: dict[str, str] = {}
    try:
        for offset, system in enumerate(systems):
            port = port_base + offset if port_base is not None else free_port()
            procs.append(
                await spawn(
                    system,
                    port=port,
                    state=folder / f"simulator-{system}.sqlite",
                    **(knobs or {}).get(system, {}),
                )
            )
            urls[system] = f"http://127.0.0.1:{port}"
        yield urls
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.terminate()
            await proc.wait()


def free_port() -> int:
    """A port nothing listens on now (on 127.0.0.1)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
