"""The codec server: lets authorised staff see decoded payloads in the Temporal Web UI.

Implements the remote codec protocol the Web UI and `temporal --codec-endpoint` use:
POST `/decode` and `/encode` with `{"payloads": [...]}` (metadata and data
base64-encoded), the namespace in `X-Namespace`.

Who may do what:
- The Web UI's users (production): the UI passes each user's own OIDC access token
  (`Authorization: Bearer`, the UI's `codec.passAccessToken`); the token is verified
  against the provider (`StaffTokens`) and only operations and auditors may decode.
  They never encode.
- Trusted internal callers (an operator's `temporal` CLI, a service): one of the
  configured tokens (`tokens`) as `Authorization: Bearer`; they decode and encode.
- Dev only (`path_tokens`): the dev Web UI cannot send headers, so its endpoint carries
  a configured token in the path (`/t/<token>/decode`); decode only.

Every request names the configured namespace; every decode is logged (who asked, the
namespace, the workflow if the caller says which in `X-Workflow-Id`, how many
payloads; never a payload, a token or the path). CORS answers only the configured UI
origin; bodies over the limit are refused before anything reads them (`BodyLimit`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from reissue.schemas.codec import EncryptionCodec
from reissue.schemas.permissions import Role
from reissue.workers.body_limit import BodyLimit
from reissue.workers.oidc import JwtVerifier, staff_identity
from reissue.workers.settings import Settings

__all__ = ["DECODING_ROLES", "Serving", "StaffTokens", "app_from_settings", "build_app", "serve"]

log = structlog.get_logger(__name__)

DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024
DECODING_ROLES = frozenset({Role.OPERATIONS, Role.AUDITOR})
# Workflow IDs are keyed hashes (no personal data): only those shapes are logged.
_WORKFLOW_ID = re.compile(r"reissue-[0-9a-f]{16}(-late-payment-[A-Za-z0-9_-]{4,64})?")


@dataclass(frozen=True)
class StaffTokens:
    """How the codec server knows the Web UI's users: their OIDC access tokens, verified
    by `verifier`; the staff ID and the roles are the claims the console reads."""

    verifier: JwtVerifier
    issuer: str
    user_claim: str = "preferred_username"
    roles_claim: str = "roles"


@dataclass(frozen=True)
class _Caller:
    who: str  # a staff ID, or "token-<digest>" for a configured token (never the token)
    kind: str  # "staff", "internal" or "dev-ui"
    may_encode: bool


class _Refused(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status, self.text = status, text


def _to_payloads(body: Any) -> list[Payload]:
    # Proto JSON leaves out an empty list: `{}` means no payloads.
    items = body.get("payloads", []) if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise _Refused(400, 'expected {"payloads": [...]}')
    out = []
    for item in items:
        try:
            out.append(
                Payload(
                    metadata={k: base64.b64decode(v) for k, v in item.get("metadata", {}).items()},
                    data=base64.b64decode(item.get("data", "")),
                )
            )
        except (ValueError, TypeError, AttributeError, binascii.Error) as e:
            raise _Refused(400, "payloads must be base64-encoded") from e
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


def _digest(token: str) -> str:
    return "token-" + hashlib.sha256(token.encode()).hexdigest()[:8]


def build_app(
    codec: PayloadCodec,
    *,
    namespace: str,
    ui_origin: str,
    tokens: Sequence[str] = (),
    staff: StaffTokens | None = None,
    path_tokens: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
) -> Starlette:
    """The codec server as an ASGI app. `tokens`: trusted internal callers' bearer
    tokens; `staff`: the Web UI's users' OIDC access tokens; `path_tokens` (dev only):
    a configured token may lead the path of `/decode`."""
    if not tokens and staff is None:
        raise ValueError("the codec server needs internal tokens or staff tokens")
    if path_tokens and not tokens:
        raise ValueError("path_tokens needs a configured token")
    accepted = [(t.encode(), _digest(t)) for t in tokens]

    def configured(token: str) -> str | None:
        found = None
        for secret, name in accepted:  # compare with every one: no early exit
            if hmac.compare_digest(token.encode(), secret):
                found = name
        return found

    async def authenticate(request: Request) -> _Caller:
        in_path = request.path_params.get("token")
        if in_path is not None:
            name = configured(in_path)
            if name is None:
                raise _Refused(401, "a valid token is required")
            return _Caller(name, "dev-ui", may_encode=False)
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise _Refused(401, "a valid token is required")
        name = configured(token)
        if name is not None:
            return _Caller(name, "internal", may_encode=True)
        claims = await staff.verifier.claims(token) if staff is not None else None
        who = (
            staff_identity(
                claims,
                issuer=staff.issuer,
                user_claim=staff.user_claim,
                roles_claim=staff.roles_claim,
            )
            if claims is not None and staff is not None
            else None
        )
        if who is None:
            raise _Refused(401, "a valid token is required")
        if not (who.roles or frozenset()) & DECODING_ROLES:
            log.warning("codec request refused: role", who=who.user_id, kind="staff")
            raise _Refused(403, "only operations and auditors may decode")
        return _Caller(who.user_id, "staff", may_encode=False)

    def cors(request: Request, response: Response) -> Response:
        if request.headers.get("Origin") == ui_origin:
            response.headers["Access-Control-Allow-Origin"] = ui_origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = (
                "Content-Type, Authorization, X-Namespace"
            )
            response.headers["Vary"] = "Origin"
        return response

    async def handle(request: Request) -> Response:
        action = request.url.path.rsplit("/", 1)[-1]
        origin = request.headers.get("Origin")
        if origin is not None and origin != ui_origin:
            log.warning("codec request refused: foreign origin", action=action, origin=origin)
            return PlainTextResponse("origin not allowed", status_code=403)
        if request.method == "OPTIONS":
            return cors(request, Response(status_code=204))
        try:
            caller = await authenticate(request)
            if action == "encode" and not caller.may_encode:
                log.warning("codec request refused: encode", who=caller.who, kind=caller.kind)
                raise _Refused(403, "encoding is for trusted internal callers only")
            asked = request.headers.get("X-Namespace")
            if asked != namespace:
                # (What the caller sent is not logged: it may be anything.)
                log.warning("codec request refused: namespace", who=caller.who, kind=caller.kind)
                raise _Refused(403, f"X-Namespace must name the namespace {namespace}")
            try:
                body = json.loads(await request.body())
            except ValueError as e:
                raise _Refused(400, "body must be JSON") from e
            payloads = _to_payloads(body)
            try:
                done = await (
                    codec.encode(payloads) if action == "encode" else codec.decode(payloads)
                )
            except ValueError as e:  # e.g. a key not in the ring: say so, without the data
                raise _Refused(400, str(e)) from e
        except _Refused as e:
            if e.status == 401:
                log.warning("codec request refused: no valid token", action=action)
            return cors(request, PlainTextResponse(e.text, status_code=e.status))
        workflow = request.headers.get("X-Workflow-Id")
        log.info(
            "payloads decoded" if action == "decode" else "payloads encoded",
            who=caller.who,
            kind=caller.kind,
            namespace=namespace,
            workflow_id=(workflow if workflow and _WORKFLOW_ID.fullmatch(workflow) else None),
            payloads=len(payloads),
        )
        return cors(request, JSONResponse(_from_payloads(done)))

    routes = [
        Route(f"/{action}", handle, methods=["POST", "OPTIONS"]) for action in ("decode", "encode")
    ]
    if path_tokens:
        routes.append(Route("/t/{token}/decode", handle, methods=["POST", "OPTIONS"]))
    return Starlette(routes=routes, middleware=[Middleware(BodyLimit, max_bytes=max_body_bytes)])


def app_from_settings(settings: Settings, *, ui_origin: str | None = None) -> Starlette:
    """The codec server as configured: the Web UI's users by the OIDC provider's tokens
    (required in production), internal callers by `REISSUE_CODEC_TOKENS`, a token in the
    path only in dev."""
    staff = None
    if settings.oidc_jwks_url:
        if not settings.oidc_issuer:
            raise SystemExit("REISSUE_OIDC_ISSUER must be set with REISSUE_OIDC_JWKS_URL")
        staff = StaffTokens(
            JwtVerifier(
                settings.oidc_jwks_url,
                issuer=settings.oidc_issuer,
                audience=settings.codec_oidc_audience,
            ),
            issuer=settings.oidc_issuer,
            user_claim=settings.oidc_user_claim,
            roles_claim=settings.oidc_roles_claim,
        )
    elif settings.environment == "production":
        raise SystemExit(
            "REISSUE_OIDC_JWKS_URL must be set when REISSUE_ENV=production: the Web UI "
            "passes each user's OIDC access token to the codec server"
        )
    return build_app(
        EncryptionCodec(settings.keyring()),
        namespace=settings.temporal_namespace,
        ui_origin=ui_origin or settings.codec_ui_origin,
        tokens=settings.codec_token_list(),
        staff=staff,
        path_tokens=settings.environment == "dev",
        max_body_bytes=settings.codec_max_body_bytes,
    )


class _Server(uvicorn.Server):
    # The process that runs the codec server decides what a signal does (the dev stack
    # runs it beside other servers): uvicorn does not take SIGINT/SIGTERM over.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@dataclass
class Serving:
    """A running codec server; `await cleanup()` stops it."""

    server: uvicorn.Server
    task: asyncio.Task[None]

    async def cleanup(self) -> None:
        self.server.should_exit = True
        await self.task


async def serve(app: Starlette, *, host: str, port: int) -> Serving:
    """Start serving (no access log: a dev path carries a token); returns once listening."""
    server = _Server(
        uvicorn.Config(app, host=host, port=port, access_log=False, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task  # it could not start: say why
            raise RuntimeError(f"the codec server did not start on {host}:{port}")
        await asyncio.sleep(0.01)
    return Serving(server, task)
