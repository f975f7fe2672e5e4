"""How a process of ours is exposed by its configuration: no environment is assumed
(dev turns on public default secrets), the API's metrics listen on loopback unless
configured otherwise, and production serves no Swagger UI on the console's origin."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import httpx
import psutil
import pytest
from pydantic import SecretStr, ValidationError

from reissue.api.server import front_door, serve_api
from reissue.workers.settings import Settings
from tests.api.conftest import serving
from tests.support import TEST_KEYS_SPEC, Stack

REISSUE = str(Path(sys.prefix) / "bin" / "reissue")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_settings_without_reissue_env_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REISSUE_ENV", raising=False)
    with pytest.raises(ValidationError) as refused:
        Settings()
    assert "REISSUE_ENV" in str(refused.value)
    monkeypatch.setenv("REISSUE_ENV", "staging")
    with pytest.raises(ValidationError):
        Settings()
    monkeypatch.setenv("REISSUE_ENV", "production")
    assert Settings().environment == "production"


@pytest.mark.parametrize("command", [["migrate"], ["api"], ["worker"], ["codec-server"]])
async def test_a_process_without_reissue_env_refuses_to_start(command: list[str]) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("REISSUE_ENV", "DATABASE_URL")}
    # Nothing it could reach: a process that started anyway would fail elsewhere, or hang.
    env |= {"TEMPORAL_ADDRESS": "127.0.0.1:9", "REISSUE_DATA_DIR": "/nonexistent/reissue"}
    proc = await asyncio.create_subprocess_exec(
        REISSUE,
        *command,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    finally:
        if proc.returncode is None:  # it started after all
            proc.kill()
            await proc.wait()
    assert proc.returncode == 2, err.decode()
    assert "REISSUE_ENV must be set: dev or production" in err.decode()


async def test_the_api_s_metrics_listen_on_loopback_unless_configured(stack: Stack) -> None:
    metrics_port = _free_port()
    settings = stack.settings.model_copy(
        update={
            "temporal_address": stack.env.client.service_client.config.target_host,
            "codec_keys": SecretStr(TEST_KEYS_SPEC),
            "api_port": _free_port(),
            "api_metrics_port": metrics_port,
        }
    )
    stop = asyncio.Event()
    serving_api = asyncio.create_task(serve_api(settings, stop=stop))
    try:
        for _ in range(500):
            listening = {
                c.laddr.ip
                for c in psutil.Process().net_connections("tcp")
                if c.status == psutil.CONN_LISTEN and c.laddr.port == metrics_port
            }
            if listening:
                break
            await asyncio.sleep(0.02)
        assert listening == {"127.0.0.1"}
        async with httpx.AsyncClient() as http:
            scrape = await http.get(f"http://127.0.0.1:{metrics_port}/metrics")
            assert scrape.status_code == 200
    finally:
        stop.set()
        await serving_api
    gone = {
        c.laddr.port
        for c in psutil.Process().net_connections("tcp")
        if c.status == psutil.CONN_LISTEN
    }
    assert metrics_port not in gone  # stopped with the API


async def test_production_serves_no_swagger_ui_on_the_console_s_origin(stack: Stack) -> None:
    production = stack.settings.model_copy(
        update={
            "environment": "production",
            "hash_secret": SecretStr("a production case-ID secret"),
            "payment_webhook_secret": SecretStr("a production webhook secret"),
            "oidc_issuer": "https://idp.example.test/",
            "oidc_client_secret": SecretStr("a client secret"),
        }
    )
    for settings, docs in ((production, 404), (stack.settings, 200)):
        app = front_door(stack.client, stack.pool, settings, tokens=None)
        async with serving(app) as base, httpx.AsyncClient(base_url=base) as http:
            assert (await http.get("/docs")).status_code == docs
            assert (await http.get("/redoc")).status_code == docs
            assert (await http.get("/openapi.json")).status_code == 200  # data, no scripts
            assert (await http.get("/console/login")).status_code == 200
