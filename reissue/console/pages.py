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
from reissue.ops.audit import HistoryReader, build_timeline
from reissue.schemas import labels
from reissue.schemas.enums import CaseFlag, Stage
from reissue.schemas.identifiers import mask_name
from reissue.schemas.labels import Label
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
    "stage_label",
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
    base = base_of(request)
    body = (
        console_of(request)
        .templates.get_template(template)
        .render(
            t=translator(request),
            me=me,
            base=base,
            # (a refused page's path may hold what was refused: never echoed back)
            path=_path(request) if status < 400 and request.method == "GET" else base + "/",
            Role=Role,
            L=labels,
            stage_label=stage_label,
            district_label=labels.district,
            **values,
        )
    )
    return HTMLResponse(body, status_code=status)


def _path(request: Request) -> str:
    """This page's path, the console's base included (whichever way the server gives it)."""
    base = base_of(request)
    return base + request.url.path.removeprefix(base)


def stage_label(value: str) -> Label:
    """A stage as visibility holds it (a string), in words."""
    try:
        return labels.STAGES[Stage(value)]
    except ValueError:
        return Label("—", "—")


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
    """The search page, saying there is no such case."""
    return render(
        request, me, "search.html", 404, q="", results=None, error=translator(request)("not_found")
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
    converter = client.temporal.data_converter
    timeline = await build_timeline(history, converter, unmask=unmask)
    started = history.events[0].workflow_execution_started_event_attributes
    inp = await HistoryReader(converter).one(started.input.payloads)
    name = str(inp["applicant"]["name"]) if isinstance(inp, dict) and "applicant" in inp else "—"
    flags = [labels.FLAGS[CaseFlag(f)] for f in st.flags if f in CaseFlag._value2member_map_]
    affiliation = labels.AFFILIATION_STATUS.get(
        st.affiliation_status, Label(st.affiliation_status, st.affiliation_status)
    )
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
        applicant=name if unmask or name == "—" else mask_name(name),
        flags=flags,
        affiliation=affiliation,
        reasons={d.value: [(r.value, label(r)) for r in rs] for d, rs in FOR_DECISION.items()},
        reason_label=_reason_label,
    )


def _reason_label(code: str) -> str:
    reason = known(code)
    return label(reason) if reason else code
