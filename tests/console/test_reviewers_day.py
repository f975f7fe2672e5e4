"""A reviewer's day in a real browser: log in, see the queue, claim; a waiver is
refused to a reviewer; a supervisor approves it and the case moves on; a second
reviewer cannot act on the claimed case; a logged-out user is sent to login."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.async_api import Browser, Page, expect

from reissue.schemas.enums import Stage
from tests.console.conftest import PASSWORD, Console

SHOTS = Path(os.environ.get("REISSUE_SCREENSHOTS", "/tmp/reissue-console-shots"))


async def _login(page: Page, console: Console, user: str) -> None:
    await page.goto(console.url + "/")
    await expect(page).to_have_url(f"{console.url}/login?next=/console/")
    await page.fill("input[name=user_id]", user)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await expect(page.get_by_test_id("who")).to_contain_text(user)


async def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def test_a_reviewers_day(console: Console, browser: Browser) -> None:
    stack = console.stack
    _, case, report = await stack.open_case()
    await stack.submit(case, report)  # received by counter-01

    # 1. A reviewer logs in, sees the case in the unclaimed queue (in Chinese), claims it.
    reviewer = await (await browser.new_context(locale="zh-CN")).new_page()
    await _login(reviewer, console, "reviewer-01")
    await expect(reviewer.locator("h1")).to_contain_text("审核队列")
    row = reviewer.locator(f"tr[data-case='{case}']")
    await expect(row).to_be_visible()
    await expect(row).to_contain_text("审核中")
    await _shot(reviewer, "1-queue")
    await row.get_by_role("link").click()
    await expect(reviewer.get_by_test_id("stage")).to_contain_text("审核中")
    await reviewer.get_by_test_id("claim").click()
    await expect(reviewer.get_by_test_id("notice")).to_be_visible()
    await expect(reviewer.get_by_test_id("assigned")).to_contain_text("reviewer-01")
    assert (await stack.status(case)).assigned_to == "reviewer-01"

    # 2. The reviewer tries to approve with a fee waiver: refused, nothing decided.
    await reviewer.get_by_test_id("waive").check()
    await reviewer.fill("input[name=waiver_reason]", "低保对象")
    await reviewer.get_by_test_id("decide").click()
    await expect(reviewer.get_by_test_id("error")).to_contain_text("减免工本费须由主管审批")
    await _shot(reviewer, "2-waiver-refused")
    st = await stack.status(case)
    assert st.stage is Stage.UNDER_REVIEW and st.assigned_to == "reviewer-01"
    assert (
        await stack.one("SELECT count(*) FROM review_decisions WHERE case_id = $1", st.case_id) == 0
    )

    # 4. A second reviewer cannot act on the claimed case: no buttons, and a forged
    #    post is refused (the page's own form, sent anyway).
    other = await (await browser.new_context(locale="zh-CN")).new_page()
    await _login(other, console, "reviewer-02")
    await other.goto(f"{console.url}/cases/{case}")
    await expect(other.get_by_test_id("assigned")).to_contain_text("reviewer-01")
    await expect(other.get_by_test_id("claim")).to_have_count(0)
    await expect(other.get_by_test_id("decide")).to_have_count(0)
    csrf = await other.locator("header input[name=csrf]").get_attribute("value")
    forged = await other.request.post(
        f"{console.url}/cases/{case}/decide",
        form={"csrf": csrf or "", "verdict": "approve"},
        max_redirects=0,
    )
    assert forged.status == 403
    assert "reviewer-01" in await forged.text()
    assert (await stack.status(case)).stage is Stage.UNDER_REVIEW

    # 3. A supervisor approves with the waiver; the case moves on, with no fee to pay.
    supervisor = await (await browser.new_context(locale="zh-CN")).new_page()
    await _login(supervisor, console, "supervisor-01")
    await supervisor.goto(f"{console.url}/cases/{case}")
    await supervisor.get_by_test_id("waive").check()
    await supervisor.fill("input[name=waiver_reason]", "低保对象，经主管批准")
    await supervisor.get_by_test_id("decide").click()
    await expect(supervisor.get_by_test_id("notice")).to_be_visible()
    await expect(supervisor.get_by_test_id("fee")).to_contain_text("¥0.00")
    await _shot(supervisor, "3-supervisor-waived")
    st = await stack.status(case)
    assert st.stage is Stage.CARD_PRODUCTION and st.fee is not None and st.fee.waived
    decided = await stack.rows(
        "SELECT reviewer, waive_fee FROM review_decisions WHERE case_id = $1", st.case_id
    )
    assert [(r["reviewer"], r["waive_fee"]) for r in decided] == [("supervisor-01", True)]

    # 5. Logged out, the reviewer is sent to the login page, and the old session is dead.
    await reviewer.get_by_role("button", name="退出").click()
    await expect(reviewer).to_have_url(f"{console.url}/login")
    await reviewer.goto(f"{console.url}/cases/{case}")
    await expect(reviewer).to_have_url(f"{console.url}/login?next=/console/cases/{case}")
    await _shot(reviewer, "5-logged-out")
