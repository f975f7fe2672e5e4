"""The case's documents in the console, in a real browser: anyone on staff downloads
the proof of the loss report; only an auditor, with a stated reason, the application
form with the full personal data — recorded before it is made. And the partner API's
docs (`/docs`, `/redoc`) load with every request off this machine blocked."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from playwright.async_api import Browser, Page, Route, expect

from reissue.api.app import build_app
from tests.api.conftest import serving
from tests.api.test_documents import read_pdf
from tests.console.conftest import PASSWORD, Console, log_in
from tests.console.test_reviewers_day import SHOTS
from tests.support import Stack


async def _login(page: Page, console: Console, user: str) -> None:
    await page.goto(console.url + "/login")
    await page.fill("input[name=user_id]", user)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page.get_by_test_id("who")).to_contain_text(user)


async def test_staff_download_the_documents_as_their_roles_allow(
    console: Console, browser: Browser, tmp_path: Path
) -> None:
    stack = console.stack
    app, case, report = await stack.open_case()
    case_id = (await stack.status(case)).case_id

    # A reviewer: the proof (masked) yes, the application form not even offered.
    reviewer = await (await browser.new_context(locale="zh-CN", accept_downloads=True)).new_page()
    await _login(reviewer, console, "reviewer-01")
    await reviewer.goto(f"{console.url}/cases/{case}")
    await expect(reviewer.get_by_test_id("documents")).to_be_visible()
    await expect(reviewer.get_by_test_id("application-form")).to_have_count(0)
    async with reviewer.expect_download() as got:
        await reviewer.get_by_test_id("loss-report-proof").click()
    download = await got.value
    assert download.suggested_filename == f"{case}.loss-report-proof.pdf"
    proof = read_pdf(Path(await download.path()).read_bytes(), tmp_path, "proof")
    assert report in proof and "临时挂失 Temporary" in proof and "023-12333" in proof
    assert app.card_number not in proof

    # An auditor states why, then gets the filled-in form.
    auditor = await (await browser.new_context(locale="zh-CN", accept_downloads=True)).new_page()
    await _login(auditor, console, "auditor-01")
    await auditor.goto(f"{console.url}/cases/{case}")
    await auditor.get_by_test_id("application-form-reason").fill("申请人在柜台补签 2026-118")
    SHOTS.mkdir(parents=True, exist_ok=True)
    await auditor.get_by_test_id("documents").screenshot(path=str(SHOTS / "documents.png"))
    async with auditor.expect_download() as got:
        await auditor.get_by_test_id("application-form").click()
    download = await got.value
    assert download.suggested_filename == f"{case}.application-form.pdf"
    form = read_pdf(Path(await download.path()).read_bytes(), tmp_path, "form")
    assert "医疗保险卡补办申请表" in form and app.applicant.resident_id in form
    assert "auditor-01" in form

    rows = await stack.rows(
        "SELECT event_type, actor, detail FROM case_events WHERE case_id = $1"
        " AND event_type IN ('personal_data_unmasked', 'document_issued') ORDER BY id",
        case_id,
    )
    assert [(r["event_type"], r["actor"]) for r in rows] == [
        ("document_issued", "reviewer-01"),
        ("personal_data_unmasked", "auditor-01"),
    ]
    assert json.loads(rows[1]["detail"]) == {
        "document": "application_form",
        "reason": "申请人在柜台补签 2026-118",
        "by_role": "auditor",
    }


async def test_the_form_is_refused_without_the_role_or_a_reason(console: Console) -> None:
    stack = console.stack
    app, case, _ = await stack.open_case()
    for user, reason, status in (
        ("reviewer-01", "我想看看", 403),
        ("supervisor-01", "柜台补签", 403),
        ("auditor-01", "", 422),
    ):
        async with httpx.AsyncClient(base_url=console.url, timeout=60) as http:
            await log_in(http, user, PASSWORD)
            page = await http.get(f"/cases/{case}")
            csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
            assert csrf is not None
            r = await http.post(
                f"/cases/{case}/application-form.pdf",
                data={"csrf": csrf.group(1), "reason": reason},
            )
            assert r.status_code == status, (user, r.text)
            assert app.applicant.resident_id not in r.text
    case_id = (await stack.status(case)).case_id
    assert (
        await stack.one(
            "SELECT count(*) FROM case_events WHERE case_id = $1"
            " AND event_type = 'personal_data_unmasked'",
            case_id,
        )
        == 0
    )


async def test_the_api_docs_load_with_no_internet(stack: Stack, browser: Browser) -> None:
    app = build_app(stack.client, stack.pool)
    async with serving(app) as base:
        ours = urlsplit(base).netloc
        blocked: list[str] = []

        async def only_ours(route: Route) -> None:
            if urlsplit(route.request.url).netloc == ours:
                await route.continue_()
            else:
                blocked.append(route.request.url)
                await route.abort()

        context = await browser.new_context()
        await context.route("**/*", only_ours)
        page = await context.new_page()
        await page.goto(f"{base}/docs")
        # Swagger UI lists the operations, from the bundled script.
        operation = page.locator(".opblock-summary-path").filter(
            has_text="/v1/cases/{case_id}/documents/application-form.pdf"
        )
        await expect(operation).to_be_visible()
        operations = sum(
            method in ("get", "post", "put", "patch", "delete")
            for path in app.openapi()["paths"].values()
            for method in path
        )
        await expect(page.locator(".opblock")).to_have_count(operations)
        assert blocked == []  # Swagger UI asked for nothing outside, not even a font
        await page.goto(f"{base}/redoc")
        await expect(
            page.get_by_text("Report a loss: open the case for the card").first
        ).to_be_visible()
        await context.close()
        # ReDoc's only outside request is its footer's logo (no font, no script).
        assert {urlsplit(url).path for url in blocked} <= {"/redoc/logo-mini.svg"}
