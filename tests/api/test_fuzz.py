"""Property-based fuzzing of the partner API from its own OpenAPI document
(schemathesis), over real HTTP against the real stack: whatever is sent, no 5xx
and no answer that breaks the documented schema."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from reissue.api.app import build_app
from reissue.api.credentials import PARTNER_SCOPES
from tests.api.conftest import serving
from tests.support import Stack

ST = str(Path(sys.prefix) / "bin" / "st")


async def test_the_api_never_answers_5xx_or_outside_its_schema(stack: Stack) -> None:
    # One credential with every scope, so that every operation is reached.
    scopes = sorted(set().union(*PARTNER_SCOPES.values()))
    async with stack.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO api_credentials (key_id, key_sha256, partner, scopes, org_code)"
            " VALUES ('fuzz', encode(sha256('fuzz-secret'::bytea), 'hex'), 'operations', $1,"
            " '91310110666007217T')",
            scopes,
        )
    app = build_app(stack.client, stack.pool, webhook_secret="fuzz-webhook")
    async with serving(app) as base:
        proc = await asyncio.create_subprocess_exec(
            ST,
            "run",
            f"{base}/openapi.json",
            "--header",
            "Authorization: Bearer rk_fuzz_fuzz-secret",
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--max-examples",
            "12",
            "--seed",
            "20261126",
            "--generation-deterministic",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=150)
    report = out.decode()
    assert proc.returncode == 0, report[-4000:]
