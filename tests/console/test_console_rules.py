"""The console's rules over real HTTP against the real stack: who acts is the
session, each role does only its own part, four eyes, CSRF, cookies, expiry,
and a logged unmask. Every refusal leaves the case as it was."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import pytest
from fastapi import FastAPI
from temporalio.client import WorkflowUpdateFailedError

from reissue.console.app import ConsoleConfig, build_console
from reissue.console.staff import MAX_FAILED_LOGINS, disable_user
from reissue.schemas.enums import DocumentType, Stage
from reissue.schemas.reasons import TEXTS, Reason, label
from tests.api.conftest import serving
from tests.console.conftest import PASSWORD, Console, log_in
from tests.support import Stack, doc, eventually, materials

SCHOOL = {"kind": "school", "name": "重庆市第一中学", "code": "4150010611"}


@asynccontextmanager
async def _login(
    console: Console, user: str, password: str = PASSWORD
) -> AsyncIterator[httpx.AsyncClient]:
    """A client logged in as `user` (or not, if the login is refused)."""
    async with httpx.AsyncClient(base_url=console.url, timeout=60) as http:
        await log_in(http, user, password)
        yield http


async def _csrf(http: httpx.AsyncClient) -> str:
    page = await http.get("/")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found is not None, page.text
    return found.group(1)


async def _in_review(stack: Stack, **kw: object) -> tuple[str, str]:
    """A case in review; returns (workflow ID, case ID)."""
    _, case, report = await stack.open_case()
    await stack.submit(case, report, **kw)
    return case, (await stack.status(case)).case_id


async def test_login_sets_a_secure_httponly_strict_cookie_and_wrong_passwords_are_refused(
    console: Console,
) -> None:
    async with httpx.AsyncClient(base_url=console.url) as http:
        first = await http.get("/")
        assert first.status_code == 303
        assert first.headers["location"] == "/console/login?next=/console/"
        form = await http.get("/login")
        assert form.headers["content-security-policy"].startswith("default-src 'self'")
        assert form.headers["x-content-type-options"] == "nosniff"
        assert '<html lang="zh-CN">' in form.text and "工号" in form.text
    for user, password in (("reviewer-01", "not the password"), ("nobody-99", PASSWORD)):
        async with _login(console, user, password) as refused:
            assert "reissue_session" not in refused.cookies
            assert (await refused.get("/")).status_code == 303  # still not logged in

    async with httpx.AsyncClient(base_url=console.url) as http:
        r = await log_in(http, "reviewer-01", PASSWORD, next="https://elsewhere.example/steal")
    assert r.status_code == 303
    assert r.headers["location"] == "/console/"  # never an open redirect
    cookie = r.headers["set-cookie"]
    for flag in ("HttpOnly", "Secure", "SameSite=strict", "Path=/console"):
        assert flag in cookie
    async with console.stack.pool.acquire() as conn:
        stored = await conn.fetchval(
            "SELECT password_argon2 FROM staff_users WHERE user_id = 'reviewer-01'"
        )
        secret = r.cookies["reissue_session"]
        assert stored.startswith("$argon2id$") and PASSWORD not in stored
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM staff_sessions WHERE session_sha256 = $1", secret
            )
            == 0
        )  # only the secret's hash is kept


async def test_wrong_passwords_lock_the_account_for_a_while(console: Console) -> None:
    async def logged_in(user: str, password: str = PASSWORD) -> bool:
        async with _login(console, user, password) as http:
            return (await http.get("/")).status_code == 200

    for _ in range(MAX_FAILED_LOGINS):
        assert not await logged_in("reviewer-02", "a wrong guess!")
    assert not await logged_in("reviewer-02")  # the right password, now locked out
    assert await logged_in("reviewer-01")  # others are not affected
    async with console.stack.pool.acquire() as conn:  # the lockout runs out
        await conn.execute(
            "UPDATE staff_users SET locked_until = now() - interval '1 second'"
            " WHERE user_id = 'reviewer-02'"
        )
    assert await logged_in("reviewer-02")


async def test_a_login_without_its_csrf_cookie_is_refused(console: Console) -> None:
    async with httpx.AsyncClient(base_url=console.url) as http:
        r = await http.post(
            "/login", data={"user_id": "reviewer-01", "password": PASSWORD, "csrf": "forged"}
        )
    assert r.status_code == 303 and "reissue_session" not in r.cookies


async def test_a_post_without_the_sessions_csrf_token_does_nothing(console: Console) -> None:
    case, _ = await _in_review(console.stack)
    async with _login(console, "reviewer-01") as http:
        for token in ("", "forged-token"):
            r = await http.post(f"/cases/{case}/claim", data={"csrf": token})
            assert r.status_code in (403, 422)
        r = await http.post(f"/cases/{case}/claim", data={"csrf": "forged"})
        assert r.status_code == 403 and "表单已过期" in r.text
    assert (await console.stack.status(case)).assigned_to is None


async def test_each_role_does_only_its_part_and_refusals_change_nothing(console: Console) -> None:
    stack = console.stack
    case, case_id = await _in_review(stack)
    async with _login(console, "reviewer-01") as reviewer:
        r = await reviewer.post(
            f"/cases/{case}/cancel",
            data={"csrf": await _csrf(reviewer), "reason": "applicant_request"},
        )
        assert r.status_code == 403 and "您的角色不能执行此操作" in r.text
        r = await reviewer.post(
            f"/cases/{case}/unmask", data={"csrf": await _csrf(reviewer), "reason": "curious"}
        )
        assert r.status_code == 403
        assert (await reviewer.get(f"/cases/{case}/timeline.md")).status_code == 403
    for user in ("ops-01", "auditor-01"):
        async with _login(console, user) as other:
            token = await _csrf(other)
            assert (
                await other.post(f"/cases/{case}/claim", data={"csrf": token})
            ).status_code == 403
            r = await other.post(
                f"/cases/{case}/decide", data={"csrf": token, "verdict": "approve"}
            )
            assert r.status_code == 403
    st = await stack.status(case)
    assert st.stage is Stage.UNDER_REVIEW and st.assigned_to is None
    assert await stack.one("SELECT count(*) FROM review_decisions WHERE case_id = $1", case_id) == 0

    # Operations cancel, as themselves (a form field naming someone else is ignored).
    async with _login(console, "ops-01") as ops:
        r = await ops.post(
            f"/cases/{case}/cancel",
            data={
                "csrf": await _csrf(ops),
                "reason": "applicant_request",
                "operator": "someone-else",
            },
        )
        assert r.status_code == 303, r.text
    st = await stack.wait_for(case, Stage.CANCELLED)
    reason = await stack.one(
        "SELECT detail->>'reason' FROM case_events WHERE case_id = $1 AND event_type = 'case_closed'",
        case_id,
    )
    assert reason == "cancelled by ops-01: applicant_request"


async def test_the_clerk_who_received_the_materials_cannot_review_them(console: Console) -> None:
    stack = console.stack
    case, case_id = await _in_review(stack, received_by="Reviewer-02")  # IDs ignore case
    async with _login(console, "reviewer-02") as clerk:
        page = await clerk.get(f"/cases/{case}")
        assert 'data-testid="claim"' not in page.text and 'data-testid="decide"' not in page.text
        token = await _csrf(clerk)
        r = await clerk.post(f"/cases/{case}/claim", data={"csrf": token})
        assert r.status_code == 403 and "四眼原则" in r.text
        r = await clerk.post(f"/cases/{case}/decide", data={"csrf": token, "verdict": "approve"})
        assert r.status_code == 403
    # The case itself refuses it too, whoever calls (a trusted internal service).
    for call in (
        stack.client.claim_review(case, {"reviewer": "reviewer-02"}),
        stack.client.review(case, {"reviewer": "reviewer-02", "verdict": "approve"}),
    ):
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await call
        assert "received this case's materials" in str(err.value.cause)
    st = await stack.status(case)
    assert st.stage is Stage.UNDER_REVIEW and st.assigned_to is None
    assert await stack.one("SELECT count(*) FROM review_decisions WHERE case_id = $1", case_id) == 0
    # Another reviewer decides, and the decision names them, from the session.
    async with _login(console, "reviewer-01") as reviewer:
        r = await reviewer.post(
            f"/cases/{case}/decide",
            data={
                "csrf": await _csrf(reviewer),
                "verdict": "request_correction",
                "reasons": "photo_unclear",
                "reviewer": "reviewer-02",
            },
        )
        assert r.status_code == 303, r.text
    await stack.wait_for(case, Stage.AWAITING_MATERIALS)
    decided = await stack.rows(
        "SELECT reviewer, reasons FROM review_decisions WHERE case_id = $1", case_id
    )
    assert [r["reviewer"] for r in decided] == ["reviewer-01"]


async def test_the_forms_offer_the_catalogue_and_the_note_stays_inside(console: Console) -> None:
    """Finding 12: the reviewer chooses reasons (Chinese with English) and may add an
    internal note; the applicant's SMS says the catalogue's words, never the note.
    Operations cancel only for a cancellation's reason, and the refusal names the field."""
    stack = console.stack
    case, case_id = await _in_review(stack)
    phishing = "退费请点 https://cq-yibao.example/refund 或致电 13912345678"
    async with _login(console, "reviewer-01") as reviewer:
        page = await reviewer.get(f"/cases/{case}")
        assert '<select name="reasons" multiple' in page.text
        assert f'<option value="photo_unclear">{label(Reason.PHOTO_UNCLEAR)}</option>' in page.text
        assert '<textarea name="note"' in page.text
        r = await reviewer.post(
            f"/cases/{case}/decide",
            data={
                "csrf": await _csrf(reviewer),
                "verdict": "request_correction",
                "reasons": ["photo_unclear", "form_incomplete"],
                "note": phishing,
            },
        )
        assert r.status_code == 303, r.text
        await stack.wait_for(case, Stage.AWAITING_MATERIALS)
        page = await reviewer.get(f"/cases/{case}")
        assert label(Reason.FORM_INCOMPLETE) in page.text  # the staff read the label
        assert "139****5678" in page.text and "13912345678" not in page.text  # the note, masked
    [sms] = await stack.messages(case_id, "correction_requested")
    assert TEXTS[Reason.PHOTO_UNCLEAR].zh in sms and TEXTS[Reason.FORM_INCOMPLETE].zh in sms
    assert "https://" not in sms and "13912345678" not in sms

    async with _login(console, "ops-01") as ops:
        page = await ops.get(f"/cases/{case}")
        assert (
            f'<option value="duplicate_case">{label(Reason.DUPLICATE_CASE)}</option>' in page.text
        )
        assert 'value="photo_unclear"' not in page.text  # not a cancellation's reason
        r = await ops.post(
            f"/cases/{case}/cancel",
            data={"csrf": await _csrf(ops), "reason": "photo_unclear", "note": phishing},
        )
        assert r.status_code == 422 and "reason: " in r.text
        assert "not a reason for a cancellation" in r.text
    assert (await stack.status(case)).stage is Stage.AWAITING_MATERIALS


async def test_a_reason_is_required_and_bad_input_names_the_field(console: Console) -> None:
    case, _ = await _in_review(console.stack)
    async with _login(console, "reviewer-01") as reviewer:
        r = await reviewer.post(
            f"/cases/{case}/decide", data={"csrf": await _csrf(reviewer), "verdict": "reject"}
        )
        assert r.status_code == 422 and "reasons: required" in r.text
    assert (await console.stack.status(case)).stage is Stage.UNDER_REVIEW


async def test_a_supervisor_overrides_the_affiliation_after_escalation(console: Console) -> None:
    stack = console.stack
    app = await stack.application(category="student", affiliation=SCHOOL)
    case = (await stack.client.report_loss(app)).workflow_id
    st = await stack.wait_for(case, Stage.AWAITING_MATERIALS)
    assert st.loss_report_number
    await stack.client.submit_materials(
        case, materials(st.loss_report_number, category=app.insured_category)
    )
    await stack.wait_for(case, Stage.AWAITING_AFFILIATION)
    letter = doc(DocumentType.AFFILIATION_LETTER)
    form = {"doc_id": letter.doc_id, "sha256": letter.sha256, "pages": "1", "note": "学校盖章证明"}
    async with _login(console, "supervisor-01") as supervisor:
        early = await supervisor.post(
            f"/cases/{case}/override", data={"csrf": await _csrf(supervisor), **form}
        )
        assert early.status_code == 409 and "only after escalation" in early.text
        policy = stack.policy
        reminders = policy.affiliation_reminders_before_escalation
        await stack.fast_forward(
            case, policy.affiliation_reminder_interval * (reminders + 1) + timedelta(hours=1)
        )
        page = await supervisor.get(f"/cases/{case}")
        assert f'action="/console/cases/{case}/override"' in page.text
        r = await supervisor.post(
            f"/cases/{case}/override", data={"csrf": await _csrf(supervisor), **form}
        )
        assert r.status_code == 303, r.text
    st = await stack.wait_for(case, Stage.UNDER_REVIEW)
    assert st.affiliation_status == "overridden"
    assert (
        await stack.one(
            "SELECT actor FROM case_events WHERE case_id = $1 AND event_type = 'affiliation_overridden'",
            st.case_id,
        )
        == "supervisor-01"
    )


async def test_an_auditor_exports_masked_and_unmasks_only_with_a_logged_reason(
    console: Console,
) -> None:
    stack = console.stack
    app, case, _ = await stack.open_case()
    resident_id, card = app.applicant.resident_id, app.card_number
    # The counter checks the ID: the update's input carries the full ID number.
    await stack.client.make_report_formal(
        case, {"resident_id": resident_id, "received_by": "counter-01"}
    )
    async with _login(console, "ops-01") as ops:
        page = await ops.get(f"/cases/{case}")
        assert "柜员 counter-01 核验身份证后申请转为正式挂失" in page.text
        assert resident_id not in page.text and card not in page.text
    async with _login(console, "auditor-01") as auditor:
        page = await auditor.get(f"/cases/{case}")
        assert page.status_code == 200
        exported = await auditor.get(f"/cases/{case}/timeline.md")
        assert exported.status_code == 200 and case in exported.text
        for text in (page.text, exported.text):
            assert resident_id not in text and card not in text and "张三" not in text
        no_reason = await auditor.post(
            f"/cases/{case}/unmask", data={"csrf": await _csrf(auditor), "reason": ""}
        )
        assert no_reason.status_code == 422 and resident_id not in no_reason.text
        assert (
            await stack.one(
                "SELECT count(*) FROM case_events WHERE event_type = 'personal_data_unmasked'"
            )
            == 0
        )
        shown = await auditor.post(
            f"/cases/{case}/unmask",
            data={"csrf": await _csrf(auditor), "reason": "投诉调查 2026-117"},
        )
        assert shown.status_code == 200 and resident_id in shown.text
    case_id = (await stack.status(case)).case_id
    logged = await stack.rows(
        "SELECT actor, detail FROM case_events"
        " WHERE case_id = $1 AND event_type = 'personal_data_unmasked'",
        case_id,
    )
    assert [r["actor"] for r in logged] == ["auditor-01"]
    assert "投诉调查 2026-117" in logged[0]["detail"]


async def test_a_reason_too_short_is_refused_in_the_pages_language(console: Console) -> None:
    """Unmasking and the application form ask the same rule of a reason, said in the
    page's language (the field named), and record nothing."""
    case, case_id = await _in_review(console.stack)
    async with _login(console, "auditor-01") as auditor:
        for path in (f"/cases/{case}/unmask", f"/cases/{case}/application-form.pdf"):
            r = await auditor.post(path, data={"csrf": await _csrf(auditor), "reason": " 看看 "})
            assert r.status_code == 422 and "reason: 请说明理由（至少 4 个字）" in r.text, path
        auditor.cookies.set("reissue_lang", "en")
        r = await auditor.post(
            f"/cases/{case}/unmask", data={"csrf": await _csrf(auditor), "reason": "x"}
        )
        assert r.status_code == 422 and "reason: state why (at least 4 characters)" in r.text
    assert (
        await console.stack.one(
            "SELECT count(*) FROM case_events WHERE case_id = $1"
            " AND event_type = 'personal_data_unmasked'",
            case_id,
        )
        == 0
    )


async def test_sessions_end_at_logout_when_idle_and_at_their_limit(stack: Stack) -> None:
    from reissue.console.staff import add_user
    from tests.console.conftest import STAFF

    async with stack.pool.acquire() as conn:
        await add_user(conn, "reviewer-01", roles=STAFF["reviewer-01"], password=PASSWORD)
    for config in (
        ConsoleConfig(session_idle=timedelta(seconds=1)),
        ConsoleConfig(session_lifetime=timedelta(seconds=1)),
    ):
        app = FastAPI()
        app.mount("/console", build_console(stack.client, stack.pool, config))
        async with serving(app) as base:
            console = Console(stack, base + "/console")
            async with _login(console, "reviewer-01") as http:
                assert (await http.get("/")).status_code == 200
                await _until_past_its_end(
                    stack, http.cookies.get("reissue_session", domain=""), config
                )
                r = await http.get("/")
                assert r.status_code == 303 and r.headers["location"].startswith("/console/login")
    async with serving(_mounted(stack)) as base:
        console = Console(stack, base + "/console")
        async with _login(console, "reviewer-01") as http:
            token = await _csrf(http)
            assert (await http.post("/logout", data={"csrf": token})).status_code == 303
            assert (await http.get("/")).status_code == 303  # the old cookie opens nothing


async def _until_past_its_end(stack: Stack, secret: str | None, config: ConsoleConfig) -> None:
    """Wait, without touching the session (a request would keep it alive), until the
    database's clock is past the end the console checks: idle, or its absolute limit."""
    assert secret is not None
    key = hashlib.sha256(secret.encode()).hexdigest()

    async def over() -> None:
        ended = await stack.one(
            "SELECT expires_at <= now() OR last_seen_at <= now() - $2::interval"
            " FROM staff_sessions WHERE session_sha256 = $1",
            key,
            config.session_idle,
        )
        assert ended is True, "the session is still live"

    await eventually(over, timeout=10)


def _mounted(stack: Stack) -> FastAPI:
    app = FastAPI()
    app.mount("/console", build_console(stack.client, stack.pool, ConsoleConfig()))
    return app


async def test_english_on_request_with_times_in_beijing_time(console: Console) -> None:
    case, _ = await _in_review(console.stack)
    async with _login(console, "reviewer-01") as http:
        switched = await http.get("/lang/en", params={"next": "/console/"})
        assert switched.status_code == 303
        http.cookies.set("reissue_lang", switched.cookies["reissue_lang"])
        page = await http.get(f"/cases/{case}")
        assert "Under review" in page.text and "Beijing time" in page.text
        assert '<html lang="en">' in page.text
        bad = await http.get("/lang/en", params={"next": "//elsewhere.example/"})
        assert bad.headers["location"] == "/console/"


async def test_a_malformed_form_is_a_page_naming_the_field_never_echoing_it(
    console: Console,
) -> None:
    case, _ = await _in_review(console.stack)
    async with _login(console, "reviewer-01") as http:
        r = await http.post(
            f"/cases/{case}/decide", data={"csrf": await _csrf(http), "verdict": "bogus-verdict"}
        )
        assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
        assert "verdict" in r.text and "bogus-verdict" not in r.text
        long = "p" * 300 + "-secret"
        r = await http.post("/login", data={"user_id": "x", "password": long, "csrf": "x"})
        assert r.status_code == 422 and long not in r.text and "password" in r.text
        r = await http.get("/cases/not-a-case-id")
        assert r.status_code == 422 and "not-a-case-id" not in r.text
    assert (await console.stack.status(case)).stage is Stage.UNDER_REVIEW


async def test_disabling_someone_or_taking_a_role_away_acts_at_once(console: Console) -> None:
    stack = console.stack
    async with _login(console, "supervisor-01") as sup, _login(console, "reviewer-01") as rev:
        assert (await sup.get("/")).status_code == 200
        assert (await rev.get("/")).status_code == 200
        async with stack.pool.acquire() as conn:
            await disable_user(conn, "supervisor-01")
            await conn.execute(
                "UPDATE staff_users SET roles = '{auditor}' WHERE user_id = 'reviewer-01'"
            )
        assert (await sup.get("/")).status_code == 303  # sent to the login page
        assert (await rev.get("/")).status_code == 303  # no role it logged in with is left
    async with _login(console, "supervisor-01") as again:
        assert (await again.get("/")).status_code == 303  # a disabled account cannot log in


async def test_a_release_is_refused_once_the_claim_changed_hands(console: Console) -> None:
    stack = console.stack
    case, _ = await _in_review(stack)
    await stack.client.claim_review(case, {"reviewer": "reviewer-02"})
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await stack.client.release_review(
            case,
            {"supervisor": "reviewer-01", "reason": "mine, I thought", "held_by": "reviewer-01"},
        )
    assert "changed hands" in str(err.value.cause)
    assert (await stack.status(case)).assigned_to == "reviewer-02"
