"""Rendering the console's pages: every template gets the translator, the session's
person and the console's base path; the case page is shown by the case's routes and
again, with the reason, by every refused action."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from temporalio.client import WorkflowQueryFailedError
from temporalio.service import RPCError

from reissue.console.config import Console
from reissue.console.i18n import LANGUAGES, Translator
from reissue.console.staff import StaffSession
from reissue.ops.audit import build_timeline
from reissue.schemas.permissions import Role, offers
from reissue.schemas.reasons import FOR_DECISION, known, label

__all__ = [
    "LANG_COOKIE",
    "TABS",
    "base_of",
    "console_of",
    "done",
    "not_found",
    "render",
    "safe_next",
    "set_cookie",
    "show_case",
    "translator",
]

LANG_COOKIE = "reissue_lang"
TABS = ("unclaimed", "mine", "due", "breached", "open")


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def base_of(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def translator(request: Request) -> Translator:
    return Translator(request.cookies.get(LANG_COOKIE, LANGUAGES[0]))


def render(
    request: Request, me: StaffSession | None, template: str, status: int = 200, **values: Any
) -> HTMLResponse:
    body = (
        console_of(request)
        .templates.get_template(template)
        .render(t=translator(request), me=me, base=base_of(request), Role=Role, **values)
    )
    return HTMLResponse(body, status_code=status)


def set_cookie(request: Request, response: Response, name: str, value: str, **kw: Any) -> None:
    """A cookie for this console's path only: HttpOnly, SameSite=Strict, Secure."""
    response.set_cookie(
        name,
        value,
        path=base_of(request) or "/",
        httponly=True,
        secure=console_of(request).config.secure_cookies,
        samesite="strict",
        **kw,
    )


def safe_next(request: Request, target: str) -> str:
    base = base_of(request)
    # Only a path of this console: never another site (an open redirect).
    if target.startswith(f"{base}/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{base}/"


def not_found(request: Request, me: StaffSession) -> Response:
    """The queue page, saying there is no such case."""
    return render(
        request,
        me,
        "queue.html",
        404,
        tab="",
        tabs=TABS,
        rows=[],
        error=translator(request)("not_found"),
    )


def done(request: Request, case_id: str) -> Response:
    """After an action: the case page again, saying it is done."""
    return RedirectResponse(f"{base_of(request)}/cases/{case_id}?done=1", status_code=303)


async def show_case(
    request: Request,
    me: StaffSession,
    case_id: str,
    *,
    status: int = 200,
    error: str | None = None,
    notice: str | None = None,
    unmask: bool = False,
) -> Response:
    """The case page: its status, the actions this person may take, and its timeline
    from the case's history (personal data masked unless `unmask`)."""
    client = console_of(request).client
    try:
        st = await client.status(case_id)
        history = await client.handle(case_id).fetch_history()
    except (RPCError, WorkflowQueryFailedError):
        return not_found(request, me)
    timeline = await build_timeline(history, client.temporal.data_converter, unmask=unmask)
    return render(
        request,
        me,
        "case.html",
        status,
        case_id=case_id,
        st=st,
        timeline=timeline,
        error=error,
        notice=notice,
        unmasked=unmask,
        may=offers(user_id=me.user_id, roles=me.roles, st=st),
        reasons={d.value: [(r.value, label(r)) for r in rs] for d, rs in FOR_DECISION.items()},
        reason_label=_reason_label,
    )


def _reason_label(code: str) -> str:
    reason = known(code)
    return label(reason) if reason else code
