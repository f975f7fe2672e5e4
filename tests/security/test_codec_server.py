"""The codec server, over real HTTP: the Web UI's users decode with their own OIDC access
token if they are operations or auditors, and never encode; internal callers' tokens
decode and encode; the namespace is checked; every decode is logged with who asked;
a token in the path is a dev convenience only and is never logged."""

from __future__ import annotations

import base64
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from reissue.schemas.codec import EncryptionCodec
from reissue.workers.codec_server import StaffTokens, app_from_settings, build_app, serve
from reissue.workers.oidc import JwtVerifier
from reissue.workers.settings import Settings
from tests.idp import OTHER, SIGNING, jwks_served, signed
from tests.support import CODEC_TOKEN, TEST_CONVERTER, TEST_KEYS, TEST_KEYS_SPEC

UI = "http://localhost:8233"
NAMESPACE = "cards"
LIMIT = 64 * 1024
ISSUER, AUDIENCE = "https://idp.example.test/realms/staff", "card-reissue-codec"
CASE = "reissue-0123456789abcdef"


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    with jwks_served() as url:
        yield url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def _running(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    port = _free_port()
    runner = await serve(app, host="127.0.0.1", port=port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            yield http
    finally:
        await runner.cleanup()


def _app(jwks_url: str, *, path_tokens: bool) -> Any:
    return build_app(
        EncryptionCodec(TEST_KEYS),
        namespace=NAMESPACE,
        ui_origin=UI,
        tokens=[CODEC_TOKEN],
        staff=StaffTokens(JwtVerifier(jwks_url, issuer=ISSUER, audience=AUDIENCE), issuer=ISSUER),
        path_tokens=path_tokens,
        max_body_bytes=LIMIT,
    )


@pytest.fixture
async def http(jwks_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The codec server as production runs it: no token in the path."""
    async with _running(_app(jwks_url, path_tokens=False)) as client:
        yield client


@pytest.fixture
async def dev_http(jwks_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The codec server as the dev stack runs it: the dev Web UI's token in the path."""
    async with _running(_app(jwks_url, path_tokens=True)) as client:
        yield client


def _staff(key: Any = SIGNING, **claims: Any) -> dict[str, str]:
    """The headers the Web UI sends for a signed-in user (`codec.passAccessToken`)."""
    body = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "5d1c0e7a",
        "preferred_username": "ops-01",
        "roles": ["operations"],
    } | claims
    token = signed(body, key)
    return {"Authorization": f"Bearer {token}", "X-Namespace": NAMESPACE, "Origin": UI}


INTERNAL = {"Authorization": f"Bearer {CODEC_TOKEN}", "X-Namespace": NAMESPACE}


async def _sealed(text: str) -> dict[str, Any]:
    [p] = await TEST_CONVERTER.encode([text])
    return {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                "data": base64.b64encode(p.data).decode(),
            }
        ]
    }


def _opened(r: httpx.Response) -> str:
    return base64.b64decode(r.json()["payloads"][0]["data"]).decode()


PLAIN = {
    "payloads": [
        {
            "metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
            "data": base64.b64encode(b'"x"').decode(),
        }
    ]
}


async def test_operations_and_auditors_decode_with_their_own_token_and_each_decode_is_logged(
    http: httpx.AsyncClient,
) -> None:
    body = await _sealed("李四 11010519491231002X")
    with capture_logs() as logs:
        r = await http.post("/decode", json=body, headers=_staff() | {"X-Workflow-Id": CASE})
        assert r.status_code == 200, r.text
        assert r.headers["Access-Control-Allow-Origin"] == UI
        assert _opened(r) == '"李四 11010519491231002X"'
        r = await http.post(
            "/decode", json=body, headers=_staff(preferred_username="Audit-02", roles="auditor")
        )
        assert r.status_code == 200, r.text
    decoded = [e for e in logs if e["event"] == "payloads decoded"]
    assert [(e["who"], e["namespace"], e["workflow_id"], e["payloads"]) for e in decoded] == [
        ("ops-01", NAMESPACE, CASE, 1),
        ("audit-02", NAMESPACE, None, 1),
    ]
    text = repr(logs)
    assert "李四" not in text and "11010519491231002X" not in text and "Bearer" not in text


async def test_other_staff_and_bad_tokens_decode_nothing(http: httpx.AsyncClient) -> None:
    body = await _sealed("secret")
    forbidden = {
        "a reviewer": _staff(roles=["reviewer"]),
        "a supervisor": _staff(roles=["supervisor", "reviewer"]),
        "no roles claim": _staff(roles=None),
    }
    for why, headers in forbidden.items():
        r = await http.post("/decode", json=body, headers=headers)
        assert r.status_code == 403, why
        assert "secret" not in r.text
    unauthenticated = {
        "expired": _staff(exp=int(time.time()) - 60),
        "signed by another key": _staff(OTHER),
        "for another audience": _staff(aud="temporal-ui-other"),
        "from another issuer": _staff(iss="https://evil.example.test/"),
        "no staff ID": _staff(preferred_username=None),
        "no token": {"X-Namespace": NAMESPACE},
        "a wrong token": {"Authorization": "Bearer wrong", "X-Namespace": NAMESPACE},
        "a token without its scheme": {"Authorization": CODEC_TOKEN, "X-Namespace": NAMESPACE},
    }
    for why, headers in unauthenticated.items():
        r = await http.post("/decode", json=body, headers=headers)
        assert r.status_code == 401, why
        assert "secret" not in r.text


async def test_the_ui_never_encodes_internal_callers_do(http: httpx.AsyncClient) -> None:
    r = await http.post("/encode", json=PLAIN, headers=_staff())
    assert r.status_code == 403
    r = await http.post("/encode", json=PLAIN, headers=_staff(roles=["auditor"]))
    assert r.status_code == 403
    # An internal caller (an operator's temporal CLI): what /encode seals, /decode opens.
    sealed = await http.post("/encode", json=PLAIN, headers=INTERNAL)
    assert sealed.status_code == 200
    assert sealed.json()["payloads"][0]["data"] != PLAIN["payloads"][0]["data"]
    with capture_logs() as logs:
        opened = await http.post("/decode", json=sealed.json(), headers=INTERNAL)
    assert opened.json() == PLAIN
    [entry] = [e for e in logs if e["event"] == "payloads decoded"]
    assert entry["who"].startswith("token-") and CODEC_TOKEN not in repr(logs)


async def test_only_the_configured_namespace(http: httpx.AsyncClient) -> None:
    body = await _sealed("secret")
    for namespace in (None, "default", "other"):
        for headers in (_staff(), INTERNAL):
            sent = {k: v for k, v in headers.items() if k != "X-Namespace"}
            if namespace is not None:
                sent["X-Namespace"] = namespace
            r = await http.post("/decode", json=body, headers=sent)
            assert r.status_code == 403, (namespace, headers)
            assert "secret" not in r.text


async def test_a_token_in_the_path_is_for_dev_only_and_never_logged(
    http: httpx.AsyncClient, dev_http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    body = await _sealed("secret")
    ui = {"Origin": UI, "X-Namespace": NAMESPACE}
    caplog.set_level(logging.DEBUG)
    with capture_logs() as logs:
        # Production: no such path.
        r = await http.post(f"/t/{CODEC_TOKEN}/decode", json=body, headers=ui)
        assert r.status_code == 404
        # Dev: the dev Web UI's token in the path decodes, and only decodes.
        r = await dev_http.post(f"/t/{CODEC_TOKEN}/decode", json=body, headers=ui)
        assert r.status_code == 200 and _opened(r) == '"secret"'
        r = await dev_http.post(f"/t/{CODEC_TOKEN}/encode", json=PLAIN, headers=ui)
        assert r.status_code in (404, 405)
        r = await dev_http.post("/t/a-guessed-token-1234/decode", json=body, headers=ui)
        assert r.status_code == 401
    assert any(e["event"] == "payloads decoded" for e in logs)
    # What the server side logs (the test's own HTTP client logs its URLs).
    server_side = [r.getMessage() for r in caplog.records if not r.name.startswith("http")]
    everything = repr(logs) + repr(server_side)
    assert CODEC_TOKEN not in everything and "a-guessed-token-1234" not in everything
    assert "/t/" not in everything


async def test_preflight_answers_only_the_ui(http: httpx.AsyncClient) -> None:
    r = await http.options(
        "/decode", headers={"Origin": UI, "Access-Control-Request-Method": "POST"}
    )
    assert r.status_code == 204 and r.headers["Access-Control-Allow-Origin"] == UI
    r = await http.options("/decode", headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and "Access-Control-Allow-Origin" not in r.headers


async def test_refuses_a_foreign_origin(http: httpx.AsyncClient) -> None:
    headers = _staff() | {"Origin": "https://evil.example"}
    r = await http.post("/decode", json=await _sealed("secret"), headers=headers)
    assert r.status_code == 403
    assert "Access-Control-Allow-Origin" not in r.headers


async def test_refuses_an_oversized_body(http: httpx.AsyncClient) -> None:
    big = {"payloads": [{"metadata": {}, "data": "A" * (LIMIT + 1)}]}
    r = await http.post("/decode", json=big, headers=_staff())
    assert r.status_code == 413


async def test_bad_requests_say_why_without_echoing(http: httpx.AsyncClient) -> None:
    r = await http.post("/decode", content=b"not json", headers=INTERNAL)
    assert r.status_code == 400
    r = await http.post("/decode", json={"payloads": "nope"}, headers=INTERNAL)
    assert r.status_code == 400


def test_production_takes_the_uis_tokens_and_no_token_in_the_path(jwks_url: str) -> None:
    production = Settings(
        environment="production",
        temporal_namespace=NAMESPACE,
        codec_keys=TEST_KEYS_SPEC,
        codec_tokens=None,
    )
    with pytest.raises(SystemExit, match="REISSUE_OIDC_JWKS_URL"):
        app_from_settings(production)
    app = app_from_settings(
        production.model_copy(update={"oidc_jwks_url": jwks_url, "oidc_issuer": ISSUER})
    )
    paths = {getattr(r, "path", "") for r in app.routes}
    assert paths == {"/decode", "/encode"}
    dev = Settings(environment="dev", codec_keys=TEST_KEYS_SPEC, codec_tokens=CODEC_TOKEN)
    assert "/t/{token}/decode" in {getattr(r, "path", "") for r in app_from_settings(dev).routes}
