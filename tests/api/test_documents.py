"""The documents the counter prints (reissue/documents), through the partner API over
real HTTP against the real stack: each PDF read back with poppler (`pdftotext` for its
words, `pdftoppm` to show it renders), each download on the case's record, and every
refusal recorded nowhere."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from reissue.documents import FONT_ENV, FontMissing, cjk_font
from reissue.schemas.clock import BEIJING
from reissue.schemas.identifiers import mask_card_number
from tests.api.conftest import key_for
from tests.support import Stack

FORM = "/v1/cases/{}/documents/application-form.pdf"
PROOF = "/v1/cases/{}/documents/loss-report-proof.pdf"


def read_pdf(body: bytes, tmp_path: Path, name: str) -> str:
    """The PDF's text (pdftotext, in reading order); its first page rendered to PNG
    (pdftoppm) beside it, which must be a picture of some size."""
    assert body.startswith(b"%PDF-"), body[:40]
    pdf = tmp_path / f"{name}.pdf"
    pdf.write_bytes(body)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", str(pdf), str(tmp_path / name)],
        check=True,
    )
    (png,) = tmp_path.glob(f"{name}-*.png")
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 10_000
    done = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True
    )
    return done.stdout


async def _records(stack: Stack, case_id: str) -> list[tuple[str, str, dict[str, str]]]:
    rows = await stack.rows(
        "SELECT event_type, actor, detail FROM case_events WHERE case_id = $1"
        " AND event_type IN ('personal_data_unmasked', 'document_issued') ORDER BY id",
        case_id,
    )
    return [(r["event_type"], r["actor"], json.loads(r["detail"])) for r in rows]


async def test_the_counter_prints_the_filled_in_application_form_and_it_is_recorded(
    stack: Stack, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    app, case, report = await stack.open_case(
        affiliation={"kind": "school", "name": "重庆市第一中学", "code": "4150010611"},
        category="student",
    )
    clerk = await key_for(stack, "counter", acts_for="counter-07")
    r = await api.get(FORM.format(case), headers=clerk)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["cache-control"] == "no-store"
    assert f'filename="{case}.application-form.pdf"' in r.headers["content-disposition"]
    text = read_pdf(r.content, tmp_path, "form")
    st = await stack.status(case)
    for shown in (
        "医疗保险卡补办申请表",
        "Application Form for Reissuing Medical Insurance Card",
        "张三",
        app.applicant.resident_id,
        app.applicant.mobile,
        app.card_number,
        report,
        "学生 Student",
        "渝中区（500103）",
        "重庆市第一中学（4150010611）",
        "临时挂失 Temporary",
        "12333 人社服务热线",
        st.loss_reported_at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M"),
        "申请人签名",
        "counter-07",
        "北京时间",
    ):
        assert shown in text, shown
    assert text.count("北京时间") == 1  # the zone named once on the page
    assert await _records(stack, st.case_id) == [
        (
            "personal_data_unmasked",
            "counter-07",
            {
                "document": "application_form",
                "reason": "printed at the counter for the applicant's signature",
                "by_role": "counter",
            },
        )
    ]


async def test_the_proof_of_loss_shows_the_masked_card_validity_and_hotlines(
    stack: Stack, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    app, case, report = await stack.open_case()
    counter = await key_for(stack, "counter")  # no clerk needed: nothing personal on it
    r = await api.get(PROOF.format(case), headers=counter)
    assert r.status_code == 200, r.text
    text = read_pdf(r.content, tmp_path, "temporary")
    st = await stack.status(case)
    until = st.loss_reported_at + stack.policy.temporary_report_validity
    for shown in (
        "挂失证明",
        "Proof of Loss Report",
        report,
        mask_card_number(app.card_number),
        st.loss_reported_at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M"),
        "临时挂失 Temporary",
        f"{until.astimezone(BEIJING).strftime('%Y-%m-%d %H:%M')} 前有效",
        "有效 In force",
        "023-12333",
        "023-12393",
        "医保电子凭证",
    ):
        assert shown in text, shown
    assert app.card_number not in text and app.applicant.resident_id not in text
    assert "张三" not in text

    # Made formal at the counter: no expiry any more.
    await stack.client.make_report_formal(
        case, {"resident_id": app.applicant.resident_id, "received_by": "counter-01"}
    )
    r = await api.get(PROOF.format(case), headers=counter)
    text = read_pdf(r.content, tmp_path, "formal")
    assert "正式挂失 Formal" in text and "长期有效" in text and "前有效" not in text
    recorded = await _records(stack, st.case_id)
    assert [(kind, detail["document"]) for kind, _, detail in recorded] == [
        ("document_issued", "loss_report_proof")
    ] * 2


async def test_only_the_counter_with_its_clerk_gets_the_documents_and_refusals_record_nothing(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    _, case, _ = await stack.open_case()
    for partner in ("hotline", "online", "operations", "card_bureau"):
        key = await key_for(stack, partner)
        for path in (FORM, PROOF):
            r = await api.get(path.format(case), headers=key)
            assert r.status_code == 403, (partner, r.text)
            assert r.json()["detail"] == f"a {partner} key may not documents"
    no_clerk = await key_for(stack, "counter")
    r = await api.get(FORM.format(case), headers=no_clerk)
    assert r.status_code == 403 and r.json()["type"] == "urn:reissue:problem:no-acting-person"
    assert (await api.get(FORM.format(case))).status_code == 401
    clerk = await key_for(stack, "counter", acts_for="counter-01")
    unknown = "reissue-0000000000000000"
    for path in (FORM, PROOF):
        r = await api.get(path.format(unknown), headers=clerk)
        assert r.status_code == 404, r.text
    st = await stack.status(case)
    assert await _records(stack, st.case_id) == []


async def test_a_missing_font_is_a_clear_error(
    stack: Stack, api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cjk_font().is_file()  # Debian's fonts-wqy-zenhei (make system-packages)
    monkeypatch.setenv(FONT_ENV, "/nonexistent/wqy.ttc")
    with pytest.raises(FontMissing, match=f"{FONT_ENV}=/nonexistent/wqy.ttc: no such font"):
        cjk_font()
    _, case, _ = await stack.open_case()
    clerk = await key_for(stack, "counter", acts_for="counter-01")
    r = await api.get(FORM.format(case), headers=clerk)
    assert r.status_code == 503 and FONT_ENV in r.json()["detail"]
    assert await _records(stack, (await stack.status(case)).case_id) == []


async def test_the_form_is_printed_only_while_the_applicant_is_expected_at_the_counter(
    stack: Stack, api: httpx.AsyncClient
) -> None:
    """Hostile review: a clerk's credential cannot pull any case's full personal data at
    any time, a closed case's least of all; a refusal records nothing."""
    app, case, _ = await stack.open_case()
    ops = await key_for(stack, "operations")
    r = await api.post(f"/v1/cases/{case}/cancel", json={"reason": "duplicate_case"}, headers=ops)
    assert r.status_code == 200, r.text
    clerk = await key_for(stack, "counter", acts_for="counter-07")
    r = await api.get(FORM.format(case), headers=clerk)
    assert r.status_code == 409, r.text
    assert r.json()["type"].endswith("not-at-the-counter")
    assert app.applicant.resident_id not in r.text
    st = await stack.status(case)
    assert await _records(stack, st.case_id) == []
