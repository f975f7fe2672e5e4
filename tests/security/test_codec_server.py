"""The codec server decodes for the configured UI with a token, and refuses everything else."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer

from reissue.schemas.codec import EncryptionCodec
from reissue.workers.codec_server import build_app
from tests.support import CODEC_TOKEN, TEST_CONVERTER, TEST_KEYS

UI = "http://localhost:8233"
LIMIT = 64 * 1024


@pytest.fixture
async def http() -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    app = build_app(
        EncryptionCodec(TEST_KEYS), tokens=[CODEC_TOKEN], ui_origin=UI, max_body_bytes=LIMIT
    )
    async with TestClient(TestServer(app)) as client:
        yield client


async def _sealed(text: str) -> dict[str, object]:
    [p] = await TEST_CONVERTER.encode([text])
    return {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                "data": base64.b64encode(p.data).decode(),
            }
        ]
    }


AUTH = {"Authorization": f"Bearer {CODEC_TOKEN}"}


async def test_decodes_for_the_ui_with_a_token(http: TestClient) -> None:  # type: ignore[type-arg]
    body = await _sealed("李四 11010519491231002X")
    r = await http.post("/decode", json=body, headers=AUTH | {"Origin": UI})
    assert r.status == 200
    assert r.headers["Access-Control-Allow-Origin"] == UI
    data = (await r.json())["payloads"][0]
    assert base64.b64decode(data["data"]).decode() == '"李四 11010519491231002X"'
    # The dev Web UI cannot send headers: the token may lead the path instead.
    r = await http.post(f"/t/{CODEC_TOKEN}/decode", json=body, headers={"Origin": UI})
    assert r.status == 200
    # And what /encode seals, /decode opens.
    plain = {
        "payloads": [
            {
                "metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
                "data": base64.b64encode(b'"x"').decode(),
            }
        ]
    }
    sealed = await (await http.post("/encode", json=plain, headers=AUTH)).json()
    assert sealed["payloads"][0]["data"] != plain["payloads"][0]["data"]
    opened = await (await http.post("/decode", json=sealed, headers=AUTH)).json()
    assert opened == plain


async def test_preflight_answers_only_the_ui(http: TestClient) -> None:  # type: ignore[type-arg]
    r = await http.options(
        "/decode", headers={"Origin": UI, "Access-Control-Request-Method": "POST"}
    )
    assert r.status == 204 and r.headers["Access-Control-Allow-Origin"] == UI
    r = await http.options("/decode", headers={"Origin": "https://evil.example"})
    assert r.status == 403 and "Access-Control-Allow-Origin" not in r.headers


async def test_refuses_missing_and_wrong_tokens(http: TestClient) -> None:  # type: ignore[type-arg]
    body = await _sealed("secret")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": CODEC_TOKEN}):
        r = await http.post("/decode", json=body, headers=headers)
        assert r.status == 401
        assert "secret" not in await r.text()
    r = await http.post("/t/wrong-token/decode", json=body)
    assert r.status == 401


async def test_refuses_a_foreign_origin(http: TestClient) -> None:  # type: ignore[type-arg]
    r = await http.post(
        "/decode", json=await _sealed("secret"), headers=AUTH | {"Origin": "https://evil.example"}
    )
    assert r.status == 403
    assert "Access-Control-Allow-Origin" not in r.headers


async def test_refuses_an_oversized_body(http: TestClient) -> None:  # type: ignore[type-arg]
    big = {"payloads": [{"metadata": {}, "data": "A" * (LIMIT + 1)}]}
    r = await http.post("/decode", json=big, headers=AUTH)
    assert r.status == 413


async def test_bad_requests_say_why_without_echoing(http: TestClient) -> None:  # type: ignore[type-arg]
    r = await http.post("/decode", data=b"not json", headers=AUTH)
    assert r.status == 400
    r = await http.post("/decode", json={"payloads": "nope"}, headers=AUTH)
    assert r.status == 400
