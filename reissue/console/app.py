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
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations,
# and `Me` below is local to `build_console`.
import hmac
import re
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from typing import Annotated, Any
from urllib.parse import quote

import asyncpg
import jinja2
from fastapi import Depends, FastAPI, Form, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from pydantic import ValidationError
from temporalio.client import WorkflowQueryFailedError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from reissue.activities.repositories.audit import append
from reissue.client import ReissueClient
from reissue.console.i18n import LANGUAGES, Translator
from reissue.console.oidc import OidcConfig, OidcLogin
from reissue.console.staff import (
    Role,
    StaffSession,
    canonical,
    check_password,
    end_session,
    open_session,
    session_for,
    sso_account,
)
from reissue.ops.audit import build_timeline
from reissue.ops.operations import CaseFilter, CaseRow, list_cases
from reissue.schemas.case import CaseStatus
from reissue.schemas.enums import DocumentType, ReviewVerdict, Stage
from reissue.schemas.events import (
    AffiliationOverride,
    CancelRequest,
    MaterialRef,
    ProductionReorder,
    ReviewClaim,
    ReviewDecision,
    ReviewRelease,
)
from reissue.workers.settings import Settings

__all__ = ["ConsoleConfig", "build_console"]

SESSION_COOKIE = "reissue_session"
LOGIN_CSRF_COOKIE = "reissue_login_csrf"
LANG_COOKIE = "reissue_lang"
CASE_ID = Path(pattern=r"^reissue-[0-9a-f]{16}$")
TABS = ("unclaimed", "mine", "due", "breached", "open")
_DECIDERS = (Role.REVIEWER, Role.SUPERVISOR)
CASE_ID_RE = re.compile(r"^reissue-[0-9a-f]{16}$")


@dataclass(frozen=True)
class ConsoleConfig:
    """How the console runs: session limits, cookies, and how staff log in."""

    session_idle: timedelta = timedelta(minutes=30)
    session_lifetime: timedelta = timedelta(hours=8)
    secure_cookies: bool = True
    due_soon: timedelta = timedelta(hours=24)
    local_logins: bool = True  # dev: local accounts with argon2 passwords
    oidc: OidcConfig | None = None  # production: single sign-on

    @classmethod
    def from_settings(cls, settings: Settings) -> "ConsoleConfig":
        """Production logs in through OIDC only; dev through local accounts (and OIDC
        as well, when an issuer is configured)."""
        oidc = None
        if settings.oidc_issuer:
            if settings.oidc_client_secret is None:
                raise SystemExit("REISSUE_OIDC_CLIENT_SECRET must be set with REISSUE_OIDC_ISSUER")
            oidc = OidcConfig(
                issuer=settings.oidc_issuer,
                client_id=settings.oidc_client_id,
                client_secret=settings.oidc_client_secret.get_secret_value(),
                state_secret=hmac.new(
                    settings.case_secret().encode(), b"console-oidc-state", "sha256"
                ).hexdigest(),
                roles_claim=settings.oidc_roles_claim,
                user_claim=settings.oidc_user_claim,
            )
        elif settings.environment == "production":
            raise SystemExit("REISSUE_OIDC_ISSUER must be set when REISSUE_ENV=production")
        if settings.environment == "production" and not settings.console_secure_cookies:
            raise SystemExit("REISSUE_CONSOLE_SECURE_COOKIES=false is refused in production")
        return cls(
            session_idle=timedelta(minutes=settings.console_session_idle_minutes),
            session_lifetime=timedelta(hours=settings.console_session_hours),
            secure_cookies=settings.console_secure_cookies,
            local_logins=settings.environment != "production",
            oidc=oidc,
        )


class Refused(Exception):
    """An action not done: shown on the page it came from, with its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class _LoginNeeded(Exception):
    pass


@dataclass
class _Page:
    """What every template gets."""

    request: Request
    t: Translator
    me: StaffSession | None
    base: str


def _templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reissue.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    return env


def _refusal_text(e: Exception) -> str:
    cause = e.cause if isinstance(e, WorkflowUpdateFailedError) else e
    if isinstance(cause, ApplicationError):
        return cause.message
    return str(cause)


def _invalid(e: ValidationError) -> Refused:
    rules = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(form)'}: {err['msg']}"
        for err in e.errors(include_input=False)
    )
    return Refused(422, rules)


def build_console(
    client: ReissueClient, pool: asyncpg.Pool, config: ConsoleConfig | None = None
) -> FastAPI:
    """The console as an app to mount at `/console` beside the partner API."""
    config = config or ConsoleConfig()
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    templates = _templates()
    oidc = OidcLogin(config.oidc) if config.oidc else None
    if oidc is not None:
        oidc.install(app, secure=config.secure_cookies)

    def base_of(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    def translator(request: Request) -> Translator:
        return Translator(request.cookies.get(LANG_COOKIE, LANGUAGES[0]))

    def render(page: _Page, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        body = templates.get_template(template).render(
            t=page.t, me=page.me, base=page.base, Role=Role, **values
        )
        return HTMLResponse(body, status_code=status)

    def set_cookie(response: Response, name: str, value: str, base: str, **kw: Any) -> None:
        response.set_cookie(
            name,
            value,
            path=base or "/",
            httponly=True,
            secure=config.secure_cookies,
            samesite="strict",
            **kw,
        )

    @app.middleware("http")
    async def headers(
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

    @app.exception_handler(RequestValidationError)
    async def invalid_form(request: Request, e: RequestValidationError) -> Response:
        # The fields and their rules, never the values sent (a password, say).
        rules = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'][1:]) or '(form)'}: {err['msg']}"
            for err in e.errors()
        )
        return render(
            _Page(request, translator(request), None, base_of(request)),
            "message.html",
            422,
            error=rules,
        )

    @app.exception_handler(_LoginNeeded)
    async def to_login(request: Request, _: _LoginNeeded) -> Response:
        target = request.url.path if request.method == "GET" else f"{base_of(request)}/"
        return RedirectResponse(f"{base_of(request)}/login?next={quote(target)}", status_code=303)

    async def session(request: Request) -> StaffSession:
        secret = request.cookies.get(SESSION_COOKIE)
        if not secret:
            raise _LoginNeeded
        async with pool.acquire() as conn:
            me = await session_for(conn, secret, idle=config.session_idle)
        if me is None:
            raise _LoginNeeded
        return me

    Me = Annotated[StaffSession, Depends(session)]

    def page(request: Request, me: StaffSession | None) -> _Page:
        return _Page(request, translator(request), me, base_of(request))

    def check_csrf(me: StaffSession, token: str) -> None:
        if not hmac.compare_digest(token.encode(), me.csrf_token.encode()):
            raise Refused(403, "csrf")

    # ------------------------------------------------------------------ login, logout

    @app.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request, next: str = "", failed: bool = False) -> Response:
        token = secrets.token_urlsafe(24)
        response = render(
            page(request, None),
            "login.html",
            status=401 if failed else 200,
            csrf=token,
            next=next,
            failed=failed,
            local=config.local_logins,
            sso=oidc is not None,
        )
        set_cookie(response, LOGIN_CSRF_COOKIE, token, base_of(request), max_age=900)
        return response

    def safe_next(request: Request, target: str) -> str:
        base = base_of(request)
        # Only a path of this console: never another site (an open redirect).
        if target.startswith(f"{base}/") and not target.startswith("//") and "\\" not in target:
            return target
        return f"{base}/"

    async def start_session(
        request: Request, user_id: str, name: str, roles: frozenset[Role], target: str
    ) -> Response:
        async with pool.acquire() as conn:
            secret = await open_session(
                conn, user_id, name, roles, lifetime=config.session_lifetime
            )
        response = RedirectResponse(safe_next(request, target), status_code=303)
        set_cookie(
            response,
            SESSION_COOKIE,
            secret,
            base_of(request),
            max_age=int(config.session_lifetime.total_seconds()),
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE, path=base_of(request) or "/")
        return response

    @app.post("/login")
    async def login(
        request: Request,
        user_id: Annotated[str, Form(max_length=64)],
        password: Annotated[str, Form(max_length=256)],
        csrf: Annotated[str, Form(max_length=100)],
        next: Annotated[str, Form(max_length=500)] = "",
    ) -> Response:
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if (
            not config.local_logins
            or not expected
            or not hmac.compare_digest(csrf.encode(), expected.encode())
        ):
            return RedirectResponse(f"{base_of(request)}/login", status_code=303)
        async with pool.acquire() as conn:
            found = await check_password(conn, user_id, password)
        if found is None:
            return RedirectResponse(
                f"{base_of(request)}/login?failed=1&next={quote(next)}", status_code=303
            )
        name, roles = found
        return await start_session(request, canonical(user_id), name, roles, next)

    if oidc is not None:

        @app.get("/oidc/login")
        async def oidc_login(request: Request, next: str = "") -> Response:
            request.session["next"] = safe_next(request, next)
            return await oidc.redirect(request, str(request.url_for("oidc_callback")))

        @app.get("/oidc/callback", name="oidc_callback")
        async def oidc_callback(request: Request) -> Response:
            who = await oidc.identify(request)
            found = None
            if who is not None:
                user_id, subject, granted = who
                async with pool.acquire() as conn:
                    found = await sso_account(conn, user_id, subject, granted)
            if who is None or found is None:
                return RedirectResponse(f"{base_of(request)}/login?failed=1", status_code=303)
            name, roles = found
            return await start_session(
                request, user_id, name, roles, str(request.session.pop("next", ""))
            )

    @app.post("/logout")
    async def logout(request: Request, me: Me, csrf: Annotated[str, Form()] = "") -> Response:
        check_csrf(me, csrf)
        async with pool.acquire() as conn:
            await end_session(conn, request.cookies.get(SESSION_COOKIE, ""))
        response = RedirectResponse(f"{base_of(request)}/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=base_of(request) or "/")
        return response

    @app.get("/lang/{lang}")
    async def language(request: Request, lang: str, next: str = "") -> Response:
        response = RedirectResponse(safe_next(request, next), status_code=303)
        if lang in LANGUAGES:
            set_cookie(response, LANG_COOKIE, lang, base_of(request), max_age=365 * 86400)
        return response

    @app.get("/static/console.css")
    async def stylesheet() -> Response:
        css = resources.files("reissue.console").joinpath("static/console.css").read_text()
        return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})

    # ------------------------------------------------------------------ queue

    def queue_filter(tab: str, me: StaffSession, now: datetime) -> CaseFilter:
        tq, review = client.task_queue, Stage.UNDER_REVIEW
        if tab == "unclaimed":
            return CaseFilter(stage=review, task_queue=tq, unclaimed=True)
        if tab == "mine":
            return CaseFilter(stage=review, task_queue=tq, assigned_to=me.user_id)
        if tab == "due":
            soon = now + config.due_soon
            return CaseFilter(
                stage=review, task_queue=tq, sla_breached=False, review_due_before=soon
            )
        if tab == "breached":
            return CaseFilter(sla_breached=True, task_queue=tq)
        return CaseFilter(task_queue=tq)

    @app.get("/", response_class=HTMLResponse)
    async def queue(request: Request, me: Me, tab: str = "unclaimed") -> Response:
        if tab not in TABS:
            tab = "unclaimed"
        query = queue_filter(tab, me, datetime.now(UTC)).query(now=datetime.now(UTC))
        rows: list[CaseRow] = await list_cases(client.temporal, query, limit=200)
        return render(page(request, me), "queue.html", tab=tab, tabs=TABS, rows=rows)

    @app.get("/find")
    async def find(request: Request, me: Me, case_id: str = "") -> Response:
        case_id = case_id.strip().partition(":")[0]
        if not CASE_ID_RE.fullmatch(case_id):
            return render(
                page(request, me),
                "queue.html",
                404,
                tab="",
                tabs=TABS,
                rows=[],
                error=translator(request)("not_found"),
            )
        return RedirectResponse(f"{base_of(request)}/cases/{case_id}", status_code=303)

    # ------------------------------------------------------------------ case page

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
        t = translator(request)
        try:
            st = await client.status(case_id)
            history = await client.handle(case_id).fetch_history()
        except (RPCError, WorkflowQueryFailedError):
            return render(
                page(request, me),
                "queue.html",
                404,
                tab="",
                tabs=TABS,
                rows=[],
                error=t("not_found"),
            )
        timeline = await build_timeline(history, client.temporal.data_converter, unmask=unmask)
        return render(
            page(request, me),
            "case.html",
            status,
            case_id=case_id,
            st=st,
            timeline=timeline,
            error=error,
            notice=notice,
            unmasked=unmask,
            may=_permissions(me, st),
        )

    @app.get("/cases/{case_id}", response_class=HTMLResponse)
    async def case_page(
        request: Request, me: Me, case_id: Annotated[str, CASE_ID], done: bool = False
    ) -> Response:
        t = translator(request)
        return await show_case(request, me, case_id, notice=t("done") if done else None)

    async def act(
        request: Request,
        me: StaffSession,
        case_id: str,
        csrf: str,
        allowed: tuple[Role, ...],
        action: Callable[[CaseStatus], Awaitable[None]],
    ) -> Response:
        """One action on a case: CSRF, role, then the case's own rules; refused actions
        come back on the case page with the reason and nothing done."""
        t = translator(request)
        try:
            check_csrf(me, csrf)
            if not me.can(*allowed):
                raise Refused(403, t("forbidden_role"))
            st = await client.status(case_id)
            await action(st)
        except Refused as e:
            message = t("csrf") if e.message == "csrf" else e.message
            return await show_case(request, me, case_id, status=e.status, error=message)
        except ValidationError as e:
            bad = _invalid(e)
            return await show_case(request, me, case_id, status=bad.status, error=bad.message)
        except WorkflowUpdateFailedError as e:
            return await show_case(request, me, case_id, status=409, error=_refusal_text(e))
        except (RPCError, WorkflowQueryFailedError) as e:
            if isinstance(e, RPCError) and e.status is not RPCStatusCode.NOT_FOUND:
                raise
            return await show_case(request, me, case_id, status=409, error=str(e))
        return RedirectResponse(f"{base_of(request)}/cases/{case_id}?done=1", status_code=303)

    def may_review(me: StaffSession, st: CaseStatus, t: Translator) -> None:
        if _received(me, st):
            raise Refused(403, t("four_eyes"))
        if st.assigned_to not in (None, me.user_id) and not me.can(Role.SUPERVISOR):
            raise Refused(403, t("claimed_by_other", who=st.assigned_to or ""))

    @app.post("/cases/{case_id}/claim")
    async def claim(
        request: Request, me: Me, case_id: Annotated[str, CASE_ID], csrf: Annotated[str, Form()]
    ) -> Response:
        t = translator(request)

        async def do(st: CaseStatus) -> None:
            if _received(me, st):
                raise Refused(403, t("four_eyes"))
            await client.claim_review(case_id, ReviewClaim(reviewer=me.user_id))

        return await act(request, me, case_id, csrf, _DECIDERS, do)

    @app.post("/cases/{case_id}/release")
    async def release(
        request: Request,
        me: Me,
        case_id: Annotated[str, CASE_ID],
        csrf: Annotated[str, Form()],
        reason: Annotated[str, Form()] = "",
    ) -> Response:
        t = translator(request)

        async def do(st: CaseStatus) -> None:
            # A reviewer returns only their own claim; a supervisor any.
            if st.assigned_to != me.user_id and not me.can(Role.SUPERVISOR):
                raise Refused(403, t("claimed_by_other", who=st.assigned_to or t("none")))
            why = reason.strip() or f"released by {me.user_id}"
            # held_by: the case refuses if the claim changed hands since this page was read.
            await client.release_review(
                case_id,
                ReviewRelease(supervisor=me.user_id, reason=why, held_by=st.assigned_to),
            )

        return await act(request, me, case_id, csrf, _DECIDERS, do)

    @app.post("/cases/{case_id}/decide")
    async def decide(
        request: Request,
        me: Me,
        case_id: Annotated[str, CASE_ID],
        csrf: Annotated[str, Form()],
        verdict: Annotated[ReviewVerdict, Form()],
        reasons: Annotated[str, Form(max_length=5000)] = "",
        waive_fee: Annotated[bool, Form()] = False,
        waiver_reason: Annotated[str, Form(max_length=500)] = "",
    ) -> Response:
        t = translator(request)

        async def do(st: CaseStatus) -> None:
            if waive_fee and not me.can(Role.SUPERVISOR):
                raise Refused(403, t("waiver_needs_supervisor"))
            may_review(me, st, t)
            decision = ReviewDecision(
                reviewer=me.user_id,
                verdict=verdict,
                reasons=[line.strip() for line in reasons.splitlines() if line.strip()],
                waive_fee=waive_fee,
                waiver_reason=waiver_reason.strip() or None,
            )
            if st.assigned_to not in (None, me.user_id):
                # A supervisor takes over a case another reviewer holds (on the record).
                await client.release_review(
                    case_id,
                    ReviewRelease(
                        supervisor=me.user_id,
                        reason="the supervisor decides",
                        held_by=st.assigned_to,
                    ),
                )
            await client.review(case_id, decision)

        return await act(request, me, case_id, csrf, _DECIDERS, do)

    @app.post("/cases/{case_id}/override")
    async def override(
        request: Request,
        me: Me,
        case_id: Annotated[str, CASE_ID],
        csrf: Annotated[str, Form()],
        doc_id: Annotated[str, Form(max_length=64)],
        sha256: Annotated[str, Form(max_length=64)],
        note: Annotated[str, Form(max_length=500)],
        pages: Annotated[int, Form(ge=1, le=50)] = 1,
    ) -> Response:
        async def do(st: CaseStatus) -> None:
            letter = MaterialRef(
                doc_id=doc_id.strip(),
                type=DocumentType.AFFILIATION_LETTER,
                sha256=sha256.strip().lower(),
                pages=pages,
            )
            await client.override_affiliation(
                case_id, AffiliationOverride(staff_id=me.user_id, letter=letter, note=note)
            )

        return await act(request, me, case_id, csrf, (Role.SUPERVISOR,), do)

    @app.post("/cases/{case_id}/reorder")
    async def reorder(
        request: Request,
        me: Me,
        case_id: Annotated[str, CASE_ID],
        csrf: Annotated[str, Form()],
        reason: Annotated[str, Form(max_length=500)],
    ) -> Response:
        async def do(st: CaseStatus) -> None:
            await client.reorder_card(
                case_id, ProductionReorder(supervisor=me.user_id, reason=reason.strip())
            )

        return await act(request, me, case_id, csrf, (Role.SUPERVISOR,), do)

    @app.post("/cases/{case_id}/cancel")
    async def cancel(
        request: Request,
        me: Me,
        case_id: Annotated[str, CASE_ID],
        csrf: Annotated[str, Form()],
        reason: Annotated[str, Form(max_length=500)],
    ) -> Response:
        async def do(st: CaseStatus) -> None:
            await client.cancel(case_id, CancelRequest(operator=me.user_id, reason=reason.strip()))

        return await act(request, me, case_id, csrf, (Role.OPERATIONS,), do)

    @app.post("/cases/{case_id}/unmask", response_class=HTMLResponse)
    async def unmask(
        request: Request,
        me: Me,
        case_id: Annotated[str, CASE_ID],
        csrf: Annotated[str, Form()],
        reason: Annotated[str, Form(max_length=500)] = "",
    ) -> Response:
        t = translator(request)
        if not hmac.compare_digest(csrf.encode(), me.csrf_token.encode()):
            return await show_case(request, me, case_id, status=403, error=t("csrf"))
        if not me.can(Role.AUDITOR):
            return await show_case(request, me, case_id, status=403, error=t("forbidden_role"))
        if len(reason.strip()) < 4:
            return await show_case(
                request, me, case_id, status=422, error="reason: state why (at least 4 characters)"
            )
        try:
            st = await client.status(case_id)
        except (RPCError, WorkflowQueryFailedError):
            return await show_case(request, me, case_id, status=404)
        async with pool.acquire() as conn:
            # On the case's own append-only record, before anything is shown.
            await append(
                conn,
                dedupe_key=f"unmask:{uuid.uuid4()}",
                case_id=st.case_id,
                event_type="personal_data_unmasked",
                actor=me.user_id,
                detail={"reason": reason.strip(), "by_role": "auditor"},
                at=datetime.now(UTC),
            )
        return await show_case(request, me, case_id, notice=t("unmasked"), unmask=True)

    @app.get("/cases/{case_id}/timeline.md")
    async def export(request: Request, me: Me, case_id: Annotated[str, CASE_ID]) -> Response:
        if not me.can(Role.AUDITOR):
            return await show_case(
                request, me, case_id, status=403, error=translator(request)("forbidden_role")
            )
        try:
            history = await client.handle(case_id).fetch_history()
        except RPCError:
            return await show_case(request, me, case_id, status=404)
        timeline = await build_timeline(history, client.temporal.data_converter, unmask=False)
        return PlainTextResponse(
            timeline.to_markdown(),
            media_type="text/markdown; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{case_id}.timeline.md"'},
        )

    return app


def _received(me: StaffSession, st: CaseStatus) -> bool:
    """Four eyes: did this person receive the case's materials at the counter?"""
    return canonical(me.user_id) in {canonical(clerk) for clerk in st.received_by}


def _permissions(me: StaffSession, st: CaseStatus) -> dict[str, bool]:
    """Which actions the page offers this user on this case (the handlers check again)."""
    reviewing = st.stage is Stage.UNDER_REVIEW
    four_eyes = _received(me, st)
    decider = me.can(*_DECIDERS)
    supervisor = me.can(Role.SUPERVISOR)
    return {
        "claim": reviewing and decider and not four_eyes and st.assigned_to is None,
        "release": reviewing
        and st.assigned_to is not None
        and (st.assigned_to == me.user_id or supervisor),
        "decide": reviewing
        and decider
        and not four_eyes
        and (st.assigned_to in (None, me.user_id) or supervisor),
        "waive": supervisor,
        "override": supervisor
        and st.stage is Stage.AWAITING_AFFILIATION
        and "affiliation_escalated" in st.flags,
        "reorder": supervisor
        and st.stage is Stage.CARD_PRODUCTION
        and "production_failed" in st.flags,
        "cancel": me.can(Role.OPERATIONS) and not st.stage.terminal,
        "export": me.can(Role.AUDITOR),
        "unmask": me.can(Role.AUDITOR),
    }
