"""Request bodies are limited before authentication, on the partner API, the staff
console and the codec server: a body announced over the limit is refused at once
(413) without waiting for it, a streamed one as soon as it passes the limit; normal
requests are unaffected. Over real HTTP, raw sockets where the client must not send
what it announces."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from reissue.api.server import front_door
from reissue.schemas.codec import EncryptionCodec
from reissue.workers.codec_server import build_app as codec_app
from reissue.workers.codec_server import serve as serve_codec
from tests.api.conftest import key_for, serving
from tests.support import CODEC_TOKEN, TEST_KEYS, Stack

LIMIT = 64 * 1024
HUGE = 500 * 1024 * 1024
# Where each front refuses before it authenticates (no credential is sent), with the
# body each reads: the API's JSON, the console's form.
FRONT_DOOR_POSTS = {
    "/v1/cases": "application/json",
    "/console/login": "application/x-www-form-urlencoded",
}


@asynccontextmanager
async def _front_door(stack: Stack) -> AsyncIterator[str]:
    """The partner API with the console mounted, as `reissue api` serves them."""
    settings = stack.settings.model_copy(update={"max_body_bytes": LIMIT})
    async with serving(front_door(stack.client, stack.pool, settings, tokens=None)) as base:
        yield base


@asynccontextmanager
async def _codec() -> AsyncIterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = codec_app(
        EncryptionCodec(TEST_KEYS),
        namespace="default",
        ui_origin="http://localhost:8233",
        tokens=[CODEC_TOKEN],
        max_body_bytes=LIMIT,
    )
    runner = await serve_codec(app, host="127.0.0.1", port=port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _exchange(
    base: str, head: str, chunks: Sequence[bytes] = ()
) -> tuple[int, dict[str, str], bytes]:
    """Send a request's head (and these body bytes), then read the answer; a server
    that waits for more than was sent makes the read time out."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode("latin-1"))
        for chunk in chunks:
            sock.sendall(chunk)
        answer = b""
        while b"\r\n\r\n" not in answer or len(answer.split(b"\r\n\r\n", 1)[1]) < _length(answer):
            data = sock.recv(65536)  # socket.timeout: no answer while the body is awaited
            if not data:
                break
            answer += data
    status_line, _, rest = answer.partition(b"\r\n")
    head_part, _, body = rest.partition(b"\r\n\r\n")
    headers = {}
    for line in head_part.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


def _length(answer: bytes) -> int:
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
    for line in head.split("\r\n"):
        if line.startswith("content-length:"):
            return int(line.split(":", 1)[1])
    return 0


def _head(path: str, **headers: str) -> str:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    return "\r\n".join(lines) + "\r\n\r\n"


async def _announced(
    base: str, path: str, media_type: str = "application/json"
) -> tuple[int, dict[str, str], bytes]:
    head = _head(path, Content_Type=media_type, Content_Length=str(HUGE))
    return await asyncio.to_thread(_exchange, base, head)


async def _streamed(
    base: str, path: str, media_type: str = "application/json", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    # Chunks up to just past the limit, the last one crossing it; no terminating chunk,
    # so a server that reads on waits for more and the read times out.
    piece = b"x" * (16 * 1024)
    chunks = [b"%x\r\n%s\r\n" % (len(piece), piece)] * (LIMIT // len(piece) + 1)
    head = _head(path, Content_Type=media_type, Transfer_Encoding="chunked", **headers)
    return await asyncio.to_thread(_exchange, base, head, chunks)


def _refused(answer: tuple[int, dict[str, str], bytes]) -> dict[str, Any]:
    status, headers, body = answer
    assert status == 413, answer
    assert headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = json.loads(body)
    assert problem["status"] == 413 and str(LIMIT) in problem["detail"]
    return problem


@pytest.mark.parametrize("path", sorted(FRONT_DOOR_POSTS))
async def test_the_front_door_refuses_an_announced_body_over_the_limit_at_once(
    stack: Stack, path: str
) -> None:
    async with _front_door(stack) as base:
        _refused(await _announced(base, path, FRONT_DOOR_POSTS[path]))


@pytest.mark.parametrize("path", sorted(FRONT_DOOR_POSTS))
async def test_the_front_door_stops_reading_a_streamed_body_at_the_limit(
    stack: Stack, path: str
) -> None:
    async with _front_door(stack) as base:
        _refused(await _streamed(base, path, FRONT_DOOR_POSTS[path]))


async def test_the_codec_server_refuses_an_announced_body_before_the_token_is_checked() -> None:
    async with _codec() as base:
        _refused(await _announced(base, "/decode"))
        # It checks the token before it reads a body: a streamed one is read, and cut
        # off at the limit, for a caller with a token only.
        token = {"Authorization": f"Bearer {CODEC_TOKEN}", "X-Namespace": "default"}
        _refused(await _streamed(base, "/decode", **token))


async def test_normal_requests_are_unaffected(stack: Stack) -> None:
    async with _front_door(stack) as base, httpx.AsyncClient(base_url=base, timeout=60) as http:
        app = await stack.application()
        hotline = await key_for(stack, "hotline")
        r = await http.post("/v1/cases", json=app.model_dump(mode="json"), headers=hotline)
        assert r.status_code == 200, r.text

        # Streamed (chunked) below the limit: read whole, then refused for what it is.
        async def chunked() -> AsyncIterator[bytes]:
            yield json.dumps({"x": "y" * 1000}).encode()

        r = await http.post("/v1/cases", content=chunked(), headers=hotline)
        assert r.status_code == 422, r.text
        assert (await http.get("/console/login")).status_code == 200
        # Unauthenticated and small: the usual refusal, not the limit's.
        r = await http.post("/v1/cases", json=app.model_dump(mode="json"))
        assert r.status_code == 401
    async with _codec() as base, httpx.AsyncClient(base_url=base) as http:
        r = await http.post(
            "/decode",
            json={"payloads": []},
            headers={"Authorization": f"Bearer {CODEC_TOKEN}", "X-Namespace": "default"},
        )
        assert r.status_code == 200 and r.json() == {"payloads": []}
