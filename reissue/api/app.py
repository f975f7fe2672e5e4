"""The partner API, `/v1`: FastAPI over the typed client.

Every call is authenticated (`Authorization: Bearer rk_…`) and authorised by
scope before anything is sent to a case, so a refused call writes nothing.
Errors are RFC 9457 `application/problem+json` naming the field and the rule.
A POST with an `Idempotency-Key` is answered once and replayed after that.
URLs carry only case IDs (keyed hashes), never personal data.

The app is put together here; its parts: `routes/` (one router per resource),
`deps.py` (credentials, scopes, the case in the path, the signed webhook),
`problems.py`, `idempotency.py`, and the SQL in `activities/repositories/`.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any, cast

import asyncpg
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from reissue.api.credentials import TokenVerifier
from reissue.api.deps import FrontDoor
from reissue.api.lifting import OneTimeCodes
from reissue.api.ownership import OwnershipLimits
from reissue.api.problems import PROBLEM, install_problems
from reissue.api.routes import api_router
from reissue.client import ReissueClient
from reissue.workers.body_limit import DEFAULT_MAX_BODY_BYTES, BodyLimit

__all__ = ["DOCS_ASSETS", "OPENAPI_FILE", "PROBLEM", "build_app", "openapi_document"]

# Where the docs' bundled assets are served (dev only, with the docs).
DOCS_ASSETS = "/docs-assets"

# The committed OpenAPI document (`reissue schemas export` writes it; a test checks it).
OPENAPI_FILE = pathlib.Path(__file__).parent / "openapi.json"


def build_app(
    client: ReissueClient,
    pool: asyncpg.Pool,
    *,
    webhook_secret: str = "",
    tokens: TokenVerifier | None = None,
    api_keys: bool = True,
    ownership: OwnershipLimits | None = None,
    codes: OneTimeCodes | None = None,
    docs: bool = True,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> FastAPI:
    """The app. Production verifies OAuth2 access tokens (`tokens`) and takes no API
    keys; dev and tests take the hashed API keys. `ownership`: the limits on failed
    ownership checks (the defaults if not given). `codes`: the one-time codes a
    card-found by hotline or online takes (without them, only a counter lifts a
    report). `docs`: serve Swagger UI and ReDoc
    (`/docs`, `/redoc`); production does not, since their scripts would run on the
    console's origin (the OpenAPI document itself is always served). A body over
    `max_body_bytes` is refused (413) before anything reads it."""
    meta: dict[str, Any] = {
        "title": "Card reissue orchestrator — partner API",
        "version": "1",
        "description": (
            "For partner systems (hotline, counter, unit and school portals, payment "
            "platform, card bureau, operations). Authenticate with `Authorization: Bearer "
            "<key>`; each key carries the scopes of its partner kind."
        ),
    }
    # Swagger UI's and ReDoc's scripts and styles come from the package (fastapi-offline),
    # never from a CDN: the docs work in a data centre without internet.
    app = (
        FastAPIOffline(docs_url="/docs", redoc_url="/redoc", static_url=DOCS_ASSETS, **meta)
        if docs
        else FastAPI(docs_url=None, redoc_url=None, **meta)
    )
    app.state.front_door = FrontDoor(
        client,
        pool,
        webhook_secret=webhook_secret,
        tokens=tokens,
        api_keys=api_keys,
        ownership=ownership or OwnershipLimits(),
        codes=codes,
    )
    install_problems(app)
    app.include_router(api_router)
    app.add_middleware(BodyLimit, max_bytes=max_body_bytes)
    return app


def openapi_document() -> str:
    """The OpenAPI 3.1 document of `/v1`, as committed."""
    app = build_app(cast(ReissueClient, None), cast(asyncpg.Pool, None))
    return json.dumps(app.openapi(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"
