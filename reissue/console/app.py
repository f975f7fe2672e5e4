"""The staff console: server-rendered pages under `/console`, in Chinese (default)
or English, with times in Beijing time.

Reviewers claim cases from the queue (read from Temporal visibility) and decide
them; supervisors also release any claim, override the affiliation after
escalation and approve fee waivers; operations cancel; auditors read, export
masked timelines, and unmask with a stated reason that goes on the case's
record. Who acts is always the session's user. Every form carries the session's
CSRF token; cookies are HttpOnly, SameSite=Strict and (unless configured off
for plain-HTTP development) Secure; sessions end when idle, at an absolute
limit, and at logout.

The app is put together here; its parts: `routes/` (login, queue, case page,
actions), `deps.py` (the session, CSRF, the permission to act), `pages.py`,
`config.py`; who may do what is `schemas/permissions.py`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from temporalio.client import WorkflowQueryFailedError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from reissue.client import ReissueClient
from reissue.console.config import Console, ConsoleConfig
from reissue.console.deps import LoginNeeded, Refused
from reissue.console.pages import base_of, render, show_case
from reissue.console.routes import console_router
from reissue.console.routes.login import sso_router
from reissue.console.staff import StaffSession
from reissue.workers.body_limit import BodyLimit

__all__ = ["ConsoleConfig", "build_console"]


def build_console(
    client: ReissueClient, pool: asyncpg.Pool, config: ConsoleConfig | None = None
) -> FastAPI:
    """The console as an app to mount at `/console` beside the partner API."""
    console = Console.create(client, pool, config or ConsoleConfig())
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.console = console
    if console.oidc is not None:
        console.oidc.install(app, secure=console.config.secure_cookies)
        app.include_router(sso_router)
    app.include_router(console_router)
    app.middleware("http")(_headers)
    app.add_exception_handler(RequestValidationError, _invalid_form)
    app.add_exception_handler(LoginNeeded, _to_login)
    for refusal in (Refused, ValidationError, WorkflowUpdateFailedError, RPCError):
        app.add_exception_handler(refusal, _on_the_case_page)
    app.add_exception_handler(WorkflowQueryFailedError, _on_the_case_page)
    # Outermost: a body over the limit is refused before the session or a form is read.
    app.add_middleware(BodyLimit, max_bytes=console.config.max_body_bytes)
    return app


async def _headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cache-Control", "no-store")
    return response


async def _invalid_form(request: Request, e: Exception) -> Response:
    assert isinstance(e, RequestValidationError)
    # The fields and their rules, never the values sent (a password, say).
    rules = "; ".join(
        f"{'.'.join(str(p) for p in err['loc'][1:]) or '(form)'}: {err['msg']}"
        for err in e.errors()
    )
    return render(request, None, "message.html", 422, error=rules)


async def _to_login(request: Request, _: Exception) -> Response:
    target = request.url.path if request.method == "GET" else f"{base_of(request)}/"
    return RedirectResponse(f"{base_of(request)}/login?next={quote(target)}", status_code=303)


def _refusal(e: Exception) -> tuple[int, str]:
    """What an action refused says, and its status: the console's own refusals, a form
    the event's model refuses (the fields and rules), the case's answer."""
    if isinstance(e, Refused):
        return e.status, e.message
    if isinstance(e, ValidationError):
        rules = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(form)'}: {err['msg']}"
            for err in e.errors(include_input=False)
        )
        return 422, rules
    if isinstance(e, WorkflowUpdateFailedError):
        cause = e.cause
        return 409, cause.message if isinstance(cause, ApplicationError) else str(cause)
    if isinstance(e, RPCError) and e.status is not RPCStatusCode.NOT_FOUND:
        raise e  # Temporal is not answering: a server error, not a refusal
    return 409, str(e)  # the case has closed, or never opened


async def _on_the_case_page(request: Request, e: Exception) -> Response:
    """A refused request: the page it came from again, with the reason, nothing done."""
    status, message = _refusal(e)
    me: StaffSession | None = getattr(request.state, "me", None)
    case_id = request.path_params.get("case_id")
    if me is None or case_id is None:
        if isinstance(e, Refused):
            return render(request, me, "message.html", status, error=message)
        raise e
    return await show_case(request, me, case_id, status=status, error=message)
