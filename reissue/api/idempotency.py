"""`Idempotency-Key` on a POST: the first answer is kept and replayed after that."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Awaitable, Callable

import asyncpg
from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from reissue.activities.repositories import api_idempotency
from reissue.api.credentials import Credential
from reissue.api.problems import ApiProblem

__all__ = ["once"]


async def once(
    pool: asyncpg.Pool,
    request: Request,
    who: Credential,
    key: str | None,
    answer: Callable[[], Awaitable[BaseModel]],
) -> JSONResponse:
    """Answer a POST; with an Idempotency-Key, the first answer is kept and replayed.

    The key is reserved before anything is sent, so two requests with one key never
    both run: reserving it and reading what it holds are one statement, so a key freed
    meanwhile is reserved, never skipped. A refusal or a failure frees the request's
    own reservation again (nothing was done)."""
    if key is None:
        return JSONResponse((await answer()).model_dump(mode="json"))
    digest = hashlib.sha256(
        f"{request.method} {request.url.path}\n".encode() + await request.body()
    ).hexdigest()
    mine = {"key_id": who.key_id, "key": key, "reservation": secrets.token_hex(16)}
    async with pool.acquire() as conn:
        held = await api_idempotency.reserve(conn, request_sha256=digest, **mine)
    if not held["mine"]:
        if held["request_sha256"] != digest:
            raise ApiProblem(
                422,
                "idempotency-key-reused",
                "Idempotency-Key reused",
                "Idempotency-Key: already used for a different request",
            )
        if held["status"] == 0:
            raise ApiProblem(
                409,
                "idempotency-key-in-flight",
                "Request in progress",
                "Idempotency-Key: the first request with this key is still being answered",
            )
        return JSONResponse(json.loads(held["body"]), status_code=held["status"])
    try:
        body = (await answer()).model_dump(mode="json")
    except BaseException:
        async with pool.acquire() as conn:
            await api_idempotency.forget(conn, **mine)
        raise
    async with pool.acquire() as conn:
        await api_idempotency.keep(conn, status=200, body=body, **mine)
    return JSONResponse(body)
