"""The codec server: lets authorised operators see decoded payloads in the Temporal Web UI.

Implements the remote codec protocol the Web UI and `temporal --codec-endpoint`
use: POST `/encode` and `/decode` with `{"payloads": [...]}` (metadata and data
base64-encoded). Every request needs a token, either as `Authorization: Bearer
<token>` or as a path prefix `/t/<token>/decode` (the dev Web UI cannot send
headers, so its endpoint carries the token). CORS answers only the configured
UI origin; bodies over the size limit are refused.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog
from aiohttp import web
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

__all__ = ["build_app", "serve"]

log = structlog.get_logger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _to_payloads(body: Any) -> list[Payload]:
    # Proto JSON leaves out an empty list: `{}` means no payloads.
    items = body.get("payloads", []) if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise web.HTTPBadRequest(text='expected {"payloads": [...]}')
    out = []
    for item in items:
        try:
            out.append(
                Payload(
                    metadata={k: base64.b64decode(v) for k, v in item.get("metadata", {}).items()},
                    data=base64.b64decode(item.get("data", "")),
                )
            )
        except (ValueError, TypeError, AttributeError) as e:
            raise web.HTTPBadRequest(text="payloads must be base64-encoded") from e
    return out


def _from_payloads(payloads: Sequence[Payload]) -> dict[str, Any]:
    return {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                "data": base64.b64encode(p.data).decode(),
            }
            for p in payloads
        ]
    }


def build_app(
    codec: PayloadCodec,
    *,
    tokens: Sequence[str],
    ui_origin: str,
    max_body_bytes: int = 4 * 1024 * 1024,
) -> web.Application:
    """The codec server as an aiohttp application (tests run it in-process)."""
    if not tokens:
        raise ValueError("the codec server needs at least one token")
    accepted = [t.encode() for t in tokens]

    def authorised(request: web.Request) -> bool:
        token = request.match_info.get("token")
        if token is None:
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer":
                return False
        return any(hmac.compare_digest(token.encode(), t) for t in accepted)

    def cors(request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
        if request.headers.get("Origin") == ui_origin:
            response.headers["Access-Control-Allow-Origin"] = ui_origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = (
                "Content-Type, Authorization, X-Namespace"
            )
            response.headers["Vary"] = "Origin"
        return response

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and origin != ui_origin:
            log.warning("codec request from a foreign origin refused", origin=origin)
            raise web.HTTPForbidden(text="origin not allowed")
        if request.method == "OPTIONS":
            return cors(request, web.Response(status=204))
        if not authorised(request):
            log.warning("codec request without a valid token refused", path=request.path)
            return cors(request, web.Response(status=401, text="a valid token is required"))
        try:
            return cors(request, await handler(request))
        except web.HTTPRequestEntityTooLarge:
            return cors(request, web.Response(status=413, text="request too large"))

    def endpoint(action: str) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            try:
                body = await request.json()
            except ValueError as e:
                raise web.HTTPBadRequest(text="body must be JSON") from e
            payloads = _to_payloads(body)
            try:
                done = await (
                    codec.encode(payloads) if action == "encode" else codec.decode(payloads)
                )
            except ValueError as e:  # e.g. a key not in the ring: say so, without the data
                raise web.HTTPBadRequest(text=str(e)) from e
            return web.json_response(_from_payloads(done))

        return handle

    app = web.Application(middlewares=[guard], client_max_size=max_body_bytes)
    for action in ("encode", "decode"):
        handler = endpoint(action)
        app.router.add_route("POST", f"/{action}", handler)
        app.router.add_route("POST", f"/t/{{token}}/{action}", handler)
        app.router.add_route("OPTIONS", f"/{action}", handler)
        app.router.add_route("OPTIONS", f"/t/{{token}}/{action}", handler)
    return app


async def serve(app: web.Application, *, host: str, port: int) -> web.AppRunner:
    """Start serving; call `await runner.cleanup()` to stop."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
