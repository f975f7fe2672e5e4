"""Laying out the documents as PDF (fpdf2, A4, the CJK font embedded as a subset)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from fpdf import FPDF
from fpdf.enums import XPos, YPos

from reissue.documents._font import cjk_font
from reissue.documents._labels import (
    CATEGORIES,
    CHANNELS,
    HOTLINES,
    REPORT_STATES,
    district_name,
)
from reissue.schemas.clock import BEIJING
from reissue.schemas.identifiers import mask_card_number

__all__ = ["ApplicationForm", "LossReportProof", "application_form_pdf", "loss_report_proof_pdf"]

# fontTools says, for every document, that it drops the bitmap table (BDF) it cannot
# subset: the outlines are what the page uses.
logging.getLogger("fontTools.subset").setLevel(logging.ERROR)

_FONT = "cjk"
_ZONE = "所有时间均为北京时间 All times are Beijing time (UTC+8)"


def _time(at: datetime | None) -> str:
    """Beijing time, the zone named once per page (`_ZONE`)."""
    return "—" if at is None else at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class ApplicationForm:
    """What the application form prints: the case's full personal data, for the
    applicant in front of the clerk to check and sign."""

    case_id: str
    record_id: str  # the case on its append-only record (with its run)
    name: str
    resident_id: str
    mobile: str
    card_number: str
    insured_category: str
    district: str
    affiliation_kind: str  # none, employer, school
    affiliation_name: str
    affiliation_code: str
    report_number: str | None
    reported_at: datetime
    channel: str
    report_formal: bool
    clerk: str | None  # the clerk who takes the application (None: a blank to fill in)
    printed_by: str
    printed_at: datetime


@dataclass(frozen=True)
class LossReportProof:
    """What the proof of the loss report prints: no personal data but the masked card."""

    case_id: str
    record_id: str  # the case on its append-only record (with its run)
    report_number: str
    card_number: str  # printed masked
    channel: str
    reported_at: datetime
    formal: bool
    valid_until: datetime | None  # a temporary report's end; None once formal
    state: str  # loss_reports.status
    closed_at: datetime | None
    issued_at: datetime


class _Sheet:
    """One A4 page: a title in Chinese with English below it, sections of labelled rows."""

    def __init__(self, title_cn: str, title_en: str) -> None:
        pdf = FPDF(orientation="P", unit="mm", format="A4")
        pdf.set_margins(18, 12, 18)
        pdf.set_auto_page_break(auto=True, margin=12)
        pdf.add_font(_FONT, fname=str(cjk_font()))
        pdf.set_lang("zh-CN")
        pdf.set_title(f"{title_cn} {title_en}")
        pdf.set_creator("card-reissue")
        pdf.add_page()
        pdf.set_font(_FONT, size=18)
        pdf.cell(0, 10, title_cn, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font(_FONT, size=11)
        pdf.cell(0, 6, title_en, align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(2)
        self.pdf = pdf

    def note(self, text: str, *, size: float = 9) -> None:
        self.pdf.set_font(_FONT, size=size)
        self.pdf.multi_cell(0, 5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    def section(self, title: str) -> None:
        self.pdf.ln(2.5)
        self.pdf.set_font(_FONT, size=11.5)
        self.pdf.set_fill_color(222, 228, 236)
        self.pdf.cell(0, 7.5, title, fill=True, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        self.pdf.ln(1)

    def rows(self, rows: list[tuple[str, str]], *, tall: bool = False) -> None:
        """Label (Chinese, then English) and value; `tall` rows leave room to write."""
        self.pdf.set_font(_FONT, size=9.5)
        with self.pdf.table(
            col_widths=(64, 110),
            line_height=4.2,
            min_row_height=14 if tall else None,
            text_align=("LEFT", "LEFT"),
            first_row_as_headings=False,
            padding=(0.8, 1.5),
            cell_fill_color=(244, 246, 249),
            cell_fill_mode="COLUMNS",
        ) as table:
            for label, value in rows:
                row = table.row()
                row.cell(label)
                row.cell(value)
        self.pdf.ln(1.5)

    def output(self) -> bytes:
        return bytes(self.pdf.output())


def _affiliation(form: ApplicationForm) -> str:
    if form.affiliation_kind == "employer":
        return f"用人单位 Employer unit：{form.affiliation_name}（{form.affiliation_code}）"
    if form.affiliation_kind == "school":
        return f"学校 School：{form.affiliation_name}（{form.affiliation_code}）"
    return "无 None"


def _kind(formal: bool) -> str:
    return "正式挂失 Formal" if formal else "临时挂失 Temporary"


def application_form_pdf(form: ApplicationForm) -> bytes:
    """医疗保险卡补办申请表: filled in from the case, signed by the applicant."""
    sheet = _Sheet("医疗保险卡补办申请表", "Application Form for Reissuing Medical Insurance Card")
    sheet.note(
        f"案件编号 Case：{form.case_id}　　打印时间 Printed：{_time(form.printed_at)}　"
        f"打印人 Printed by：{form.printed_by}\n{_ZONE}"
    )
    sheet.section("一、申请人信息  Applicant")
    sheet.rows(
        [
            ("姓名\nName", form.name),
            ("公民身份号码\nResident ID number", form.resident_id),
            ("联系电话\nMobile number", form.mobile),
            ("参保类别\nInsured category", CATEGORIES.get(form.insured_category, "—")),
            ("参保地\nDistrict", district_name(form.district)),
            ("用人单位或学校\nEmployer unit or school", _affiliation(form)),
        ]
    )
    sheet.section("二、原卡及挂失  The lost card and its loss report")
    sheet.rows(
        [
            ("原卡卡号\nCard number", form.card_number),
            ("补办原因\nReason", "遗失 Lost"),
            ("挂失编号\nLoss report number", form.report_number or "—"),
            ("挂失时间\nTime reported", _time(form.reported_at)),
            (
                "挂失方式及性质\nReported via, kind of report",
                f"{CHANNELS.get(form.channel, '—')} · {_kind(form.report_formal)}",
            ),
        ]
    )
    sheet.section("三、申请人声明  Declaration")
    sheet.note(
        "本人申请补办医疗保险卡（社会保障卡），承诺以上信息真实、准确。正式挂失或申请补办后，"
        "原卡即永久作废，不能恢复使用；挂失时间之前发生的费用由本人承担。\n"
        "I apply for a new medical insurance card (social security card) and declare the above "
        "true and correct. Once the report is formal or a reissue is applied for, the old card "
        "is void for good; expenses incurred before the time reported are mine to bear.",
        size=10,
    )
    sheet.section("四、签字  Signatures")
    sheet.rows(
        [
            ("申请人签名 / 日期\nApplicant's signature / date", ""),
            ("代办人签名及证件号码（如有）\nAgent's signature and ID number (if any)", ""),
            ("受理人\nClerk", form.clerk or ""),
        ],
        tall=True,
    )
    sheet.note(
        "本表载有个人信息，仅供办理补卡使用，打印已记录。"
        "This form carries personal data, for the reissue only; its printing is recorded.",
        size=8,
    )
    return sheet.output()


def _validity(proof: LossReportProof) -> str:
    if proof.formal:
        return (
            "长期有效：正式挂失不会自动解除，原卡已作废、不能恢复使用。\n"
            "No expiry: a formal report does not lift itself; the old card is void for good."
        )
    until = _time(proof.valid_until)
    return (
        f"{until} 前有效 Valid until {until}\n"
        "逾期未持身份证到柜台办理正式挂失的，挂失自动解除，卡片解冻。\n"
        "Unless made formal in person at a counter with the ID card by then, the report "
        "lifts itself and the card unfreezes."
    )


def loss_report_proof_pdf(proof: LossReportProof) -> bytes:
    """挂失证明: the report, its kind and validity, and whom to call."""
    sheet = _Sheet("挂失证明", "Proof of Loss Report")
    sheet.note(
        f"案件编号 Case：{proof.case_id}　　开具时间 Issued：{_time(proof.issued_at)}\n{_ZONE}"
    )
    state = REPORT_STATES.get(proof.state, proof.state)
    if proof.closed_at is not None:
        state += f"（{_time(proof.closed_at)}）"
    sheet.section("挂失信息  The loss report")
    sheet.rows(
        [
            ("挂失编号\nLoss report number", proof.report_number),
            ("卡号\nCard", mask_card_number(proof.card_number)),
            ("挂失时间\nTime reported", _time(proof.reported_at)),
            ("挂失方式\nReported via", CHANNELS.get(proof.channel, "—")),
            ("挂失性质\nKind of report", _kind(proof.formal)),
            ("有效期\nValidity", _validity(proof)),
            ("当前状态\nStatus", state),
        ]
    )
    sheet.note(
        "挂失时间之前发生的医疗费用由参保人本人承担。挂失期间可使用医保电子凭证就医。\n"
        "Expenses incurred before the time reported are borne by the insured. Meanwhile, use "
        "the medical insurance e-credential to receive care.",
        size=10,
    )
    sheet.section("咨询电话  Hotlines")
    sheet.rows([(label.replace(" ", "\n", 1), number) for number, label in HOTLINES])
    return sheet.output()
