"""Logging in (a local account's password, or single sign-on), out, and the page's
language. The login form carries a double-submit CSRF token; a login's `next` only
ever leads inside the console."""

from __future__ import annotations

import secrets
from importlib import resources
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from reissue.console.deps import SESSION_COOKIE, with_csrf
from reissue.console.i18n import LANGUAGES
from reissue.console.pages import (
    LANG_COOKIE,
    base_of,
    console_of,
    render,
    safe_next,
    set_cookie,
)
from reissue.console.staff import (
    StaffSession,
    canonical,
    check_password,
    end_session,
    open_session,
    sso_account,
)
from reissue.schemas.permissions import Role

__all__ = ["router"]

LOGIN_CSRF_COOKIE = "reissue_login_csrf"

router = APIRouter()


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "", failed: bool = False) -> Response:
    token = secrets.token_urlsafe(24)
    console = console_of(request)
    response = render(
        request,
        None,
        "login.html",
        status=401 if failed else 200,
        csrf=token,
        next=next,
        failed=failed,
        local=console.config.local_logins,
        sso=console.oidc is not None,
    )
    set_cookie(request, response, LOGIN_CSRF_COOKIE, token, max_age=900)
    return response


async def start_session(
    request: Request, user_id: str, name: str, roles: frozenset[Role], target: str
) -> Response:
    console = console_of(request)
    lifetime = console.config.session_lifetime
    async with console.pool.acquire() as conn:
        secret = await open_session(conn, user_id, name, roles, lifetime=lifetime)
    response = RedirectResponse(safe_next(request, target), status_code=303)
    set_cookie(request, response, SESSION_COOKIE, secret, max_age=int(lifetime.total_seconds()))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=base_of(request) or "/")
    return response


@router.post("/login")
async def login(
    request: Request,
    user_id: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    csrf: Annotated[str, Form(max_length=100)],
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    console = console_of(request)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if (
        not console.config.local_logins
        or not expected
        or not secrets.compare_digest(csrf.encode(), expected.encode())
    ):
        return RedirectResponse(f"{base_of(request)}/login", status_code=303)
    async with console.pool.acquire() as conn:
        found = await check_password(conn, user_id, password)
    if found is None:
        return RedirectResponse(
            f"{base_of(request)}/login?failed=1&next={quote(next)}", status_code=303
        )
    name, roles = found
    return await start_session(request, canonical(user_id), name, roles, next)


# Single sign-on (mounted only when an OIDC provider is configured).
sso_router = APIRouter()


@sso_router.get("/oidc/login")
async def oidc_login(request: Request, next: str = "") -> Response:
    oidc = console_of(request).oidc
    assert oidc is not None
    request.session["next"] = safe_next(request, next)
    return await oidc.redirect(request, str(request.url_for("oidc_callback")))


@sso_router.get("/oidc/callback", name="oidc_callback")
async def oidc_callback(request: Request) -> Response:
    console = console_of(request)
    assert console.oidc is not None
    who = await console.oidc.identify(request)
    found = None
    if who is not None:
        user_id, subject, granted = who
        async with console.pool.acquire() as conn:
            found = await sso_account(conn, user_id, subject, granted)
    if who is None or found is None:
        return RedirectResponse(f"{base_of(request)}/login?failed=1", status_code=303)
    name, roles = found
    return await start_session(request, user_id, name, roles, str(request.session.pop("next", "")))


@router.post("/logout")
async def logout(request: Request, me: Annotated[StaffSession, Depends(with_csrf)]) -> Response:
    async with console_of(request).pool.acquire() as conn:
        await end_session(conn, request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse(f"{base_of(request)}/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=base_of(request) or "/")
    return response


@router.get("/lang/{lang}")
async def language(request: Request, lang: str, next: str = "") -> Response:
    response = RedirectResponse(safe_next(request, next), status_code=303)
    if lang in LANGUAGES:
        set_cookie(request, response, LANG_COOKIE, lang, max_age=365 * 86400)
    return response


@router.get("/static/console.css")
async def stylesheet() -> Response:
    css = resources.files("reissue.console").joinpath("static/console.css").read_text()
    return Response(css, media_type="text/css", headers={"Cache-Control": "max-age=3600"})
