"""What staff work from, in a real browser: finding a case by what they know, a queue
they can page, sort and filter, a case page in words (no raw code anywhere), and the
pages axe-core finds no serious accessibility problem on."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from axe_playwright_python.async_playwright import Axe
from fastapi import FastAPI
from playwright.async_api import Browser, Page, expect

from reissue.console.app import ConsoleConfig, build_console
from reissue.schemas.case import CaseInput
from reissue.schemas.enums import Stage
from reissue.schemas.identifiers import mask_card_number
from tests.api.conftest import serving
from tests.console.conftest import PASSWORD, Console, log_in
from tests.support import EMPLOYER, Stack, eventually, materials

SHOTS = Path(os.environ.get("REISSUE_SCREENSHOTS", "/tmp/reissue-console-shots"))

# A raw code in visible text: a snake_case or UPPER_CASE name (an enum value, a field, a
# template), or a stage's value on its own.
SNAKE = re.compile(r"(?<![\w-])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![\w-])")
UPPER = re.compile(r"(?<![\w-])[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+(?![\w-])")
STAGE_WORDS = re.compile(r"\b(?:" + "|".join(s.value for s in Stage) + r")\b")


def raw_codes(text: str) -> list[str]:
    """The raw codes (and JSON) a person would see in `text`."""
    found = SNAKE.findall(text) + UPPER.findall(text) + STAGE_WORDS.findall(text)
    return found + [m for m in ("{", "}", '":') if m in text]


def test_the_raw_code_check_finds_what_the_old_page_showed() -> None:
    """The check itself: it finds each kind of code the issue saw, and passes words."""
    old = (
        "staff — staff review of the materials · retiree · urban_employee · id_card_copy · "
        'Stage → LOSS_REPORTED · {"loss_proof_number": "LR20261206000001"} · COMPLETED'
    )
    assert raw_codes(old) == [
        "urban_employee",
        "id_card_copy",
        "loss_proof_number",
        "LOSS_REPORTED",
        "LOSS_REPORTED",
        "COMPLETED",
        "{",
        "}",
        '":',
    ]
    fine = "城镇职工 Urban employee · reissue-5735bc4dafe176de · counter-01 · LR20261206000001 · ¥25.00"
    assert raw_codes(fine) == []


async def _open(
    stack: Stack, *, name: str = "王芳", district: str = "500103", **application: object
) -> tuple[CaseInput, str, str]:
    """A loss reported by `name` in `district`; (application, workflow ID, report number)."""
    app = await stack.application(district=district, **application)  # type: ignore[arg-type]
    app = app.model_copy(update={"applicant": app.applicant.model_copy(update={"name": name})})
    case = (await stack.client.report_loss(app)).workflow_id
    st = await stack.wait_for(case, Stage.AWAITING_MATERIALS)
    assert st.loss_report_number is not None
    return app, case, st.loss_report_number


async def _login(page: Page, url: str, user: str = "reviewer-01") -> None:
    await page.goto(url + "/login")
    await page.get_by_label("工号").fill(user)
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_label("密码").press("Enter")  # the keyboard alone logs in
    await expect(page.get_by_test_id("who")).to_contain_text(user)


async def _shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


async def _shown_in_queue(url: str, cases: list[str], tab: str = "open") -> None:
    """Wait until visibility lists the cases in the tab (it lags the cases a little)."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        await log_in(http, "reviewer-02", PASSWORD)

        async def listed() -> None:
            page = (await http.get("/", params={"tab": tab, "fresh": "1"})).text
            assert f"共 {len(cases)} 件" in page

        await eventually(listed, 30)


async def test_a_reviewer_finds_a_case_by_its_loss_report_number(
    console: Console, browser: Browser
) -> None:
    stack = console.stack
    app, case, report = await _open(stack, name="王芳", district="500108")
    await _open(stack, name="李明华", district="500103")  # another case, not found
    page = await (await browser.new_context(locale="zh-CN")).new_page()
    await _login(page, console.url)

    await page.get_by_role("link", name="查找案件").click()
    await page.get_by_label("挂失单号、卡号或身份证号").fill(report)
    await page.get_by_role("button", name="查找").click()
    await expect(page).to_have_url(f"{console.url}/search")  # a POST: nothing in the URL
    found = page.locator("tr[data-case]")
    await expect(found).to_have_count(1)
    await expect(found).to_have_attribute("data-case", case)
    await expect(found).to_contain_text("王*")
    await expect(found).to_contain_text("等待材料")
    await expect(found).to_contain_text("南岸区")
    await found.get_by_role("link").click()
    await expect(page).to_have_url(f"{console.url}/cases/{case}")
    await expect(page.get_by_test_id("report")).to_contain_text(report)

    # By card number and by resident ID (its keyed hash): the same case, and neither
    # number is shown back, nor sent in a URL.
    for known in (app.card_number.lower(), app.applicant.resident_id):
        await page.goto(f"{console.url}/search")
        await page.get_by_label("挂失单号、卡号或身份证号").fill(known)
        await page.get_by_label("挂失单号、卡号或身份证号").press("Enter")
        await expect(page.locator("tr[data-case]")).to_have_attribute("data-case", case)
        html = await page.content()
        assert app.applicant.resident_id not in html and app.card_number not in html
        assert mask_card_number(app.card_number) not in page.url

    # Anything else is refused naming the field and the rule, never echoed.
    await page.goto(f"{console.url}/search")
    await page.get_by_label("挂失单号、卡号或身份证号").fill("13800138000")
    await page.get_by_role("button", name="查找").click()
    await expect(page.get_by_test_id("error")).to_contain_text("q: 须为挂失单号")
    assert "13800138000" not in await page.content()
    # A report number nobody has: nothing found.
    await page.get_by_label("挂失单号、卡号或身份证号").fill("LR19990101000001")
    await page.get_by_role("button", name="查找").click()
    await expect(page.get_by_test_id("empty")).to_have_text("没有找到案件。")


async def test_the_masked_name_comes_from_the_memo_or_else_the_history(console: Console) -> None:
    """The typed client leaves the masked name in the case's memo; a case started
    another way (another SDK, or before the memo) shows it from its first event."""
    stack = console.stack
    _, with_memo, _ = await _open(stack, name="王芳")
    memo = await stack.client.handle(with_memo).describe()
    assert await memo.memo() == {"applicant_masked": "王*"}
    app = await stack.application(district="500108")
    app = app.model_copy(
        update={"applicant": app.applicant.model_copy(update={"name": "欧阳娜娜"})}
    )
    bare = stack.client.case_id_for(app.card_number)
    await stack.env.client.start_workflow(
        "CardReissueWorkflow", app, id=bare, task_queue=stack.settings.task_queue
    )
    await stack.wait_for(bare, Stage.AWAITING_MATERIALS)
    await _shown_in_queue(console.url, [with_memo, bare])
    async with httpx.AsyncClient(base_url=console.url, timeout=30) as http:
        await log_in(http, "reviewer-01", PASSWORD)
        page = (await http.get("/", params={"tab": "open"})).text
    assert re.search(
        rf'data-case="{bare}">.*?<td data-testid="applicant">欧\*\*\*</td>', page, re.S
    )
    assert re.search(
        rf'data-case="{with_memo}">.*?<td data-testid="applicant">王\*</td>', page, re.S
    )
    assert "欧阳娜娜" not in page


@pytest.fixture
async def small_pages(console: Console) -> AsyncIterator[str]:
    """The console again, two cases to a page."""
    app = FastAPI()
    config = ConsoleConfig(queue_page_size=2)
    app.mount("/console", build_console(console.stack.client, console.stack.pool, config))
    async with serving(app) as base:
        yield base.replace("127.0.0.1", "localhost") + "/console"


async def test_paging_sorting_and_filtering_the_queue(
    console: Console, small_pages: str, browser: Browser
) -> None:
    stack = console.stack
    # Opened in this order: A waited longest. A and C go to review (A first).
    _, a, a_report = await _open(stack, name="陈建国", district="500108")
    _, b, _ = await _open(stack, name="刘洋", district="500103")
    _, c, c_report = await _open(stack, name="赵静", district="500112")
    await stack.submit(a, a_report)
    await stack.submit(c, c_report)
    await _shown_in_queue(small_pages, [a, b, c])

    page = await (await browser.new_context(locale="zh-CN")).new_page()
    await _login(page, small_pages)
    rows = page.locator("tr[data-case]")

    async def shows(*cases: str) -> None:
        await expect(rows).to_have_count(len(cases))
        for n, case in enumerate(cases):
            await expect(rows.nth(n)).to_have_attribute("data-case", case)

    await page.get_by_role("link", name="全部在办").click()
    await expect(page.get_by_test_id("count")).to_have_text("共 3 件")
    await expect(page.get_by_test_id("page")).to_have_text("第 1 / 2 页")
    await shows(a, b)  # the longest waiting first
    await expect(rows.nth(0)).to_contain_text("陈*")
    await expect(rows.nth(0)).to_contain_text("南岸区")
    await expect(rows.nth(0).get_by_test_id("sla")).to_contain_text("剩余 4 天")
    await page.get_by_test_id("next").click()
    await expect(page.get_by_test_id("page")).to_have_text("第 2 / 2 页")
    await shows(c)
    await page.get_by_test_id("prev").click()
    await shows(a, b)

    # The column header sorts the other way; the review SLA sorts the cases in review
    # first, the soonest due first.
    await page.get_by_test_id("sort-waited").click()
    await shows(c, b)
    await page.get_by_test_id("sort-sla").click()
    await shows(a, c)
    await expect(page.locator("th[aria-sort]")).to_contain_text("审核时限剩余")

    # The district filter, with the keyboard: the list holds the districts by name.
    await page.get_by_label("区县").focus()
    await page.get_by_label("区县").select_option(label="渝北区 · Yubei District")
    await page.get_by_test_id("filter").focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_test_id("count")).to_have_text("共 1 件")
    await shows(c)
    assert "district=500112" in page.url
    await _shot(page, "queue-filtered")


async def test_the_queue_shows_how_long_each_case_waited_and_has_left(
    console: Console, browser: Browser
) -> None:
    """A district's queue: masked names, districts by name, time waited, the review SLA
    left — marked when due within a day, and when breached (not by colour alone)."""
    stack = console.stack
    in_review = []
    for name, district in (("王芳", "500108"), ("陈建国", "500112")):
        _, case, report = await _open(stack, name=name, district=district)
        await stack.submit(case, report)
        in_review.append(case)
    await stack.client.claim_review(in_review[1], {"reviewer": "reviewer-02"})
    _, waiting, _ = await _open(stack, name="李明华", district="500103")
    await stack.use_policy(review_sla=timedelta(hours=10))
    _, soon, soon_report = await _open(stack, name="刘洋", district="500106")
    await stack.submit(soon, soon_report)
    await stack.use_policy(review_sla=timedelta(hours=2))
    _, late, late_report = await _open(stack, name="赵静", district="500105")
    await stack.submit(late, late_report)
    await stack.fast_forward(late, timedelta(hours=3))
    await stack.until(late, lambda st: st.sla_breached)
    await _shown_in_queue(console.url, [*in_review, waiting, soon, late])

    page = await (await browser.new_context(locale="zh-CN")).new_page()
    await _login(page, console.url, "supervisor-01")
    await page.goto(f"{console.url}/?tab=open&sort=sla")
    rows = page.locator("tr[data-case]")
    await expect(rows).to_have_count(5)
    # The breached case first, then the one due soon, then by the time left.
    await expect(rows.nth(0)).to_have_attribute("data-case", late)
    await expect(rows.nth(0).get_by_test_id("sla")).to_have_text("审核超时")
    await expect(rows.nth(0).locator(".sla-breached")).to_have_count(1)
    await expect(rows.nth(1)).to_have_attribute("data-case", soon)
    await expect(rows.nth(1).get_by_test_id("sla")).to_contain_text("即将到期 · 剩余 9 小时")
    await expect(rows.nth(1).locator(".sla-soon")).to_have_count(1)
    await expect(rows.nth(2).get_by_test_id("sla")).to_contain_text("剩余 4 天")
    await expect(rows.nth(3)).to_contain_text("reviewer-02")
    await expect(rows.nth(4)).to_have_attribute("data-case", waiting)
    await expect(rows.nth(4).get_by_test_id("sla")).to_have_text("—")
    await expect(rows.nth(4)).to_contain_text("李**")
    await expect(rows.nth(4)).to_contain_text("渝中区")
    await expect(rows.nth(4)).to_contain_text("等待材料")
    assert raw_codes(await page.inner_text("body")) == []
    await _shot(page, "queue")


async def _a_case_with_a_story(stack: Stack) -> tuple[CaseInput, str]:
    """A case through review, payment and production to pickup: a long timeline."""
    app, case, report = await _open(stack, name="李明华", affiliation=EMPLOYER)
    await stack.client.submit_materials(case, materials(report))
    await stack.wait_for(case, Stage.AWAITING_AFFILIATION)
    await stack.notice_sent((await stack.status(case)).case_id, "affiliation_request")
    await stack.client.respond_affiliation(case, {"confirmed": True, "responder": "hr-portal"})
    await stack.wait_for(case, Stage.UNDER_REVIEW)
    await stack.client.claim_review(case, {"reviewer": "reviewer-01"})
    await stack.client.review(
        case,
        {"reviewer": "reviewer-01", "verdict": "approve", "note": "材料齐全，照片清晰"},
    )
    await stack.pay(case, ref="BANK-4711")
    st = await stack.wait_for(case, Stage.CARD_PRODUCTION)
    new_card = await stack.one("SELECT next_card_number()")
    await stack.client.card_produced(
        case,
        {
            "order_id": st.production_order_id,
            "new_card_number": new_card,
            "produced_at": datetime.now(UTC),
        },
    )
    await stack.wait_for(case, Stage.READY_FOR_PICKUP)
    return app, case


async def test_the_case_page_says_everything_in_words(console: Console, browser: Browser) -> None:
    stack = console.stack
    app, case = await _a_case_with_a_story(stack)
    page = await (await browser.new_context(locale="zh-CN")).new_page()
    await _login(page, console.url, "supervisor-01")
    await page.goto(f"{console.url}/cases/{case}")
    text = await page.inner_text("body")
    assert raw_codes(text) == [], text
    for words in (
        "待领卡",
        "城镇职工",
        "渝中区",
        "12333 人社服务热线",
        "身份证复印件",
        "补卡申请表",
    ):
        assert words in text, words
    timeline = await page.get_by_test_id("timeline").inner_text()
    for sentence in (
        "材料已提交：身份证复印件、照片、挂失证明、补卡申请表（柜员 counter-01 接收）",
        "hr-portal 确认了参保关系",
        "审核决定：通过",
        "reviewer-01 的内部备注：材料齐全，照片清晰",
        "收到缴费 ¥25.00，已用于工本费",
        "进入阶段：待领卡",
    ):
        assert sentence in timeline, sentence
    # Personal data masked as before; the zone named once on the page, not on each row.
    assert app.applicant.resident_id not in text and "李明华" not in text and "李**" in text
    assert app.card_number not in text
    assert text.count("北京时间") == 1 and "（北京时间）" not in timeline
    await _shot(page, "case")

    # The English page: words too.
    await page.get_by_role("link", name="English").click()
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    text = await page.inner_text("body")
    assert raw_codes(text) == [], text
    assert "Ready for pickup" in text and "Yuzhong District" in text


async def test_axe_finds_no_serious_problem_on_the_console_pages(
    console: Console, browser: Browser
) -> None:
    stack = console.stack
    _, case, report = await _open(stack, name="王芳", district="500108")
    await stack.submit(case, report)
    await _shown_in_queue(console.url, [case], tab="unclaimed")
    axe = Axe()
    page = await (await browser.new_context(locale="zh-CN")).new_page()

    async def serious(name: str) -> list[str]:
        results = await axe.run(page)
        return [
            f"{name}: {v['id']} ({v['impact']}): {v['help']} — "
            + "; ".join(n["target"][0] for n in v["nodes"])
            for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")
        ]

    await page.goto(console.url + "/login")
    found = await serious("login")
    await _login(page, console.url)
    await expect(page.locator(f"tr[data-case='{case}']")).to_be_visible()
    found += await serious("queue")
    await page.goto(f"{console.url}/cases/{case}")
    found += await serious("case")
    await page.goto(f"{console.url}/search")
    await page.get_by_label("挂失单号、卡号或身份证号").fill(report)
    await page.get_by_role("button", name="查找").click()
    await expect(page.locator("tr[data-case]")).to_have_count(1)
    found += await serious("search")
    assert found == []

    # The keyboard reaches the content first: the skip link, then the page.
    await page.goto(console.url + "/")
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="跳到正文")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("main")).to_be_focused()
