"""The console over real HTTP against the real stack, with staff accounts, and a
real browser (Debian's Chromium driven by Playwright)."""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from playwright.async_api import Browser, async_playwright

from reissue.console.app import ConsoleConfig, build_console
from reissue.console.staff import Role, add_user
from tests.api.conftest import serving
from tests.support import Stack

PASSWORD = "correct horse battery"
STAFF = {
    "reviewer-01": [Role.REVIEWER],
    "reviewer-02": [Role.REVIEWER],
    "supervisor-01": [Role.SUPERVISOR],
    "ops-01": [Role.OPERATIONS],
    "auditor-01": [Role.AUDITOR],
}
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Console:
    stack: Stack
    url: str  # the console's root, e.g. http://localhost:1234/console


async def log_in(http: httpx.AsyncClient, user: str, password: str, **form: str) -> httpx.Response:
    """Fill in the console's login form as a browser would (its CSRF cookie and field);
    the session cookie, if any, is kept by hand: httpx keeps Secure cookies for https
    only, and the console sets them Secure."""
    page = await http.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    http.cookies.set("reissue_login_csrf", page.cookies["reissue_login_csrf"])
    r = await http.post(
        "/login", data={"user_id": user, "password": password, "csrf": csrf.group(1), **form}
    )
    assert r.status_code == 303, r.text
    if "reissue_session" in r.cookies:
        http.cookies.set("reissue_session", r.cookies["reissue_session"])
    return r


@pytest.fixture
async def console(stack: Stack) -> AsyncIterator[Console]:
    async with stack.pool.acquire() as conn:
        for user_id, roles in STAFF.items():
            await add_user(conn, user_id, roles=roles, password=PASSWORD)
    from fastapi import FastAPI

    app = FastAPI()
    app.mount("/console", build_console(stack.client, stack.pool, ConsoleConfig()))
    async with serving(app) as base:
        # localhost: a browser keeps Secure cookies there even over plain HTTP.
        yield Console(stack, base.replace("127.0.0.1", "localhost") + "/console")


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make install` installs Debian's chromium")
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield b
        await b.close()
