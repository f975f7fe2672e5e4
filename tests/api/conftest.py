"""Serving the partner API over real HTTP for the tests (uvicorn on a free port), and
the partners' keys."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from reissue.api.app import build_app
from reissue.api.credentials import create_key
from tests.support import Stack

WEBHOOK_SECRET = "test-webhook-secret"


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    """The app on 127.0.0.1 at a free port; yields its base URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    for _ in range(500):
        if server.started:
            break
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """The partner API on the test stack, taking dev API keys."""
    app = build_app(stack.client, stack.pool, webhook_secret=WEBHOOK_SECRET)
    async with serving(app) as base, httpx.AsyncClient(base_url=base, timeout=60) as http:
        yield http


async def key_for(stack: Stack, partner: str, **kw: Any) -> dict[str, str]:
    """The Authorization header of a new dev key for a partner kind."""
    async with stack.pool.acquire() as conn:
        return {"Authorization": f"Bearer {await create_key(conn, partner, **kw)}"}
