"""What a route of the console depends on: the logged-in person (`Me`), the session's
CSRF token on every form, and the permission to take an action on a case (the roles
and the case's rules of `schemas/permissions.py`). A refused request reaches no
handler: it comes back as the page it came from, with the reason and nothing done."""

# No `from __future__ import annotations`: FastAPI reads the dependencies' annotations,
# and `permit` names an action local to its factory.
import functools
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Form, Path, Request

from reissue.console.pages import console_of, translator
from reissue.console.staff import StaffSession, session_for
from reissue.schemas.case import CaseStatus
from reissue.schemas.permissions import NotPermitted, StaffAction, check_staff, may

__all__ = [
    "SESSION_COOKIE",
    "CaseId",
    "LoginNeeded",
    "Me",
    "Permit",
    "Refused",
    "StatedReason",
    "allowed",
    "permit",
    "with_csrf",
]

SESSION_COOKIE = "reissue_session"
CaseId = Annotated[str, Path(pattern=r"^reissue-[0-9a-f]{16}$")]


class Refused(Exception):
    """An action not done: shown on the page it came from, with its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class LoginNeeded(Exception):
    """No live session: to the login page."""


async def session(request: Request) -> StaffSession:
    """The logged-in person (and the session is seen now)."""
    secret = request.cookies.get(SESSION_COOKIE)
    if not secret:
        raise LoginNeeded
    console = console_of(request)
    async with console.pool.acquire() as conn:
        me = await session_for(conn, secret, idle=console.config.session_idle)
    if me is None:
        raise LoginNeeded
    request.state.me = me  # for the page a refusal is shown on
    return me


Me = Annotated[StaffSession, Depends(session)]


async def with_csrf(request: Request, me: Me, csrf: Annotated[str, Form()]) -> StaffSession:
    """The logged-in person, if the form carries the session's CSRF token."""
    if not hmac.compare_digest(csrf.encode(), me.csrf_token.encode()):
        raise Refused(403, translator(request)("csrf"))
    return me


def _refuse_role(request: Request, me: StaffSession, action: StaffAction) -> None:
    if not may(me.roles, action):
        raise Refused(403, translator(request)("forbidden_role"))


@functools.cache
def allowed(action: StaffAction) -> Callable[..., Awaitable[StaffSession]]:
    """The logged-in person, if one of their roles allows the action (a page or link,
    no form)."""

    async def check(request: Request, me: Me) -> StaffSession:
        _refuse_role(request, me, action)
        return me

    return check


@dataclass(frozen=True)
class Permit:
    """Who may take the action on this case now, and the case as they saw it."""

    me: StaffSession
    case_id: str
    st: CaseStatus


@functools.cache
def permit(action: StaffAction) -> Callable[..., Awaitable[Permit]]:
    """A form's action on a case: the session's CSRF token, a role that allows it,
    then the case's rules for this person (four eyes, who holds the claim, a fee
    waiver only by a supervisor). The case itself checks its rules again."""

    async def check(
        request: Request,
        me: Annotated[StaffSession, Depends(with_csrf)],
        case_id: CaseId,
        waive_fee: Annotated[bool, Form()] = False,
    ) -> Permit:
        _refuse_role(request, me, action)
        st = await console_of(request).client.status(case_id)
        try:
            check_staff(action, user_id=me.user_id, roles=me.roles, st=st, waive=waive_fee)
        except NotPermitted as e:
            t = translator(request)
            raise Refused(403, t(e.rule, who=e.holder or t("none"))) from None
        return Permit(me, case_id, st)

    return check


async def stated_reason(request: Request, reason: Annotated[str, Form(max_length=500)] = "") -> str:
    """Why a person is shown personal data (unmasking, the application form): said in
    at least 4 characters, else refused on the case page."""
    why = reason.strip()
    if len(why) < 4:
        raise Refused(422, "reason: " + translator(request)("reason_needed"))
    return why


StatedReason = Annotated[str, Depends(stated_reason)]
