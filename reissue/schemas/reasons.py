"""Why a case is sent back, refused, cancelled or ends: one catalogue of reasons.

A reviewer asking for a correction or rejecting, and operations cancelling, choose
reasons from this catalogue; the case itself gives the reasons it lapses or ends for.
What an applicant reads in a notice is the catalogue's Chinese text for the codes
(`notice_text`), never words someone typed: free text goes into an internal note
that stays with the staff (the timeline shows it, masked). The texts are written
here once, Chinese (what the applicant reads, and the console's label) and English
(the console's label beside it), for the console's labels to import.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

__all__ = [
    "CANCELLATION",
    "CORRECTION",
    "FOR_DECISION",
    "REJECTION",
    "SYSTEM",
    "TEXTS",
    "Decision",
    "Reason",
    "ReasonText",
    "known",
    "label",
    "notice_text",
    "refuse_unless_for",
]


class Reason(StrEnum):
    """A reason's code, as events carry it and the notice renderer reads it."""

    # Asking the applicant for a correction (the materials; SPEC 2.2, FACTS).
    PHOTO_UNCLEAR = "photo_unclear"
    PHOTO_NOT_COMPLIANT = "photo_not_compliant"
    ID_COPY_ILLEGIBLE = "id_copy_illegible"
    ID_CARD_INVALID = "id_card_invalid"
    FORM_INCOMPLETE = "form_incomplete"
    FORM_UNSIGNED = "form_unsigned"
    LOSS_PROOF_MISMATCH = "loss_proof_mismatch"
    AFFILIATION_PROOF_MISSING = "affiliation_proof_missing"
    EXEMPTION_PROOF_INVALID = "exemption_proof_invalid"
    WRONG_MATERIAL_TYPE = "wrong_material_type"
    # Rejecting the application.
    NOT_CARD_HOLDER = "not_card_holder"
    NOT_INSURED_HERE = "not_insured_here"
    AFFILIATION_DENIED = "affiliation_denied"
    MATERIALS_NOT_AUTHENTIC = "materials_not_authentic"
    APPLICATION_IN_PROGRESS = "application_in_progress"
    # Operations cancelling a case.
    DUPLICATE_CASE = "duplicate_case"
    APPLICANT_REQUEST = "applicant_request"
    INSURED_ELSEWHERE = "insured_elsewhere"
    FRAUD_SUSPECTED = "fraud_suspected"
    DATA_ERROR = "data_error"
    CARD_CANNOT_BE_MADE = "card_cannot_be_made"
    # Given by the case itself: lapses and other ends nobody chose a reason for.
    CORRECTION_ROUNDS_EXHAUSTED = "correction_rounds_exhausted"
    TEMPORARY_REPORT_EXPIRED = "temporary_report_expired"
    APPLICATION_NOT_SUBMITTED = "application_not_submitted"
    CORRECTION_NOT_RESUBMITTED = "correction_not_resubmitted"
    FEE_NOT_PAID = "fee_not_paid"
    CANCELLED_BY_SERVICE_CENTRE = "cancelled_by_service_centre"
    # Any decision: the details stay in the internal note (and history read from
    # before the catalogue: its free text becomes this code and the note).
    OTHER = "other"


@dataclass(frozen=True)
class ReasonText:
    """A reason in words: `zh` is what the applicant's notice says (and the console's
    label), `en` the console's English label."""

    zh: str
    en: str


TEXTS: Final[Mapping[Reason, ReasonText]] = MappingProxyType(
    {
        Reason.PHOTO_UNCLEAR: ReasonText("照片不清晰", "Photo unclear"),
        Reason.PHOTO_NOT_COMPLIANT: ReasonText(
            "照片不符合要求（须近期一寸免冠照片）",
            "Photo not to the rules (a recent one-inch bareheaded photo)",
        ),
        Reason.ID_COPY_ILLEGIBLE: ReasonText("身份证复印件不清晰", "Copy of the ID card illegible"),
        Reason.ID_CARD_INVALID: ReasonText("身份证已过期或无效", "ID card expired or not valid"),
        Reason.FORM_INCOMPLETE: ReasonText("补卡申请表填写不完整", "Application form incomplete"),
        Reason.FORM_UNSIGNED: ReasonText("补卡申请表未签字", "Application form not signed"),
        Reason.LOSS_PROOF_MISMATCH: ReasonText(
            "挂失证明缺失或与挂失记录不符", "Loss report proof missing or not matching the report"
        ),
        Reason.AFFILIATION_PROOF_MISSING: ReasonText(
            "缺少单位或学校出具的证明", "Confirmation from the employer unit or school missing"
        ),
        Reason.EXEMPTION_PROOF_INVALID: ReasonText(
            "费用减免证明材料缺失或不符", "Fee exemption proof missing or not valid"
        ),
        Reason.WRONG_MATERIAL_TYPE: ReasonText("提交的材料类型不符", "Material of the wrong type"),
        Reason.NOT_CARD_HOLDER: ReasonText(
            "申请人与持卡人信息不符", "The applicant is not the card's holder"
        ),
        Reason.NOT_INSURED_HERE: ReasonText("未在本统筹区参保", "Not insured in Chongqing"),
        Reason.AFFILIATION_DENIED: ReasonText(
            "单位或学校未确认参保关系", "The unit or school did not confirm the affiliation"
        ),
        Reason.MATERIALS_NOT_AUTHENTIC: ReasonText("申请材料不真实", "Materials not authentic"),
        Reason.APPLICATION_IN_PROGRESS: ReasonText(
            "已有在办的补卡申请", "Another reissue application is in progress"
        ),
        Reason.DUPLICATE_CASE: ReasonText("重复申请", "Duplicate case"),
        Reason.APPLICANT_REQUEST: ReasonText("应申请人本人要求", "At the applicant's request"),
        Reason.INSURED_ELSEWHERE: ReasonText(
            "参保关系已转出本市", "Insurance moved to another region"
        ),
        # The applicant reads the Chinese: it asks them in, it does not accuse.
        Reason.FRAUD_SUSPECTED: ReasonText(
            "需核实申请人身份，请本人携带身份证到服务网点办理",
            "Fraud suspected: identity to be checked in person",
        ),
        Reason.DATA_ERROR: ReasonText(
            "案件信息登记有误，请重新申请", "Case data entered wrongly; to be applied for again"
        ),
        Reason.CARD_CANNOT_BE_MADE: ReasonText(
            "制卡未能完成，请到服务网点重新申请", "The card bureau cannot make the card"
        ),
        Reason.CORRECTION_ROUNDS_EXHAUSTED: ReasonText(
            "补正次数已达上限，材料仍不符合要求",
            "Correction rounds exhausted; the materials still fall short",
        ),
        Reason.TEMPORARY_REPORT_EXPIRED: ReasonText(
            "临时挂失期满，未办理正式挂失", "Temporary report expired without a formal application"
        ),
        Reason.APPLICATION_NOT_SUBMITTED: ReasonText(
            "未在期限内提交补卡申请材料", "Application not handed in by the deadline"
        ),
        Reason.CORRECTION_NOT_RESUBMITTED: ReasonText(
            "未在期限内重新提交补正材料", "Corrected materials not resubmitted by the deadline"
        ),
        Reason.FEE_NOT_PAID: ReasonText("未在期限内缴纳补卡费", "Fee not paid by the deadline"),
        Reason.CANCELLED_BY_SERVICE_CENTRE: ReasonText(
            "经办机构撤销", "Cancelled by the service centre (through Temporal)"
        ),
        Reason.OTHER: ReasonText(
            "其他原因，详情请咨询经办服务网点", "Other (see the internal note)"
        ),
    }
)


class Decision(StrEnum):
    """The decisions staff give reasons for."""

    CORRECTION = "correction"
    REJECTION = "rejection"
    CANCELLATION = "cancellation"


CORRECTION: Final = frozenset(
    {
        Reason.PHOTO_UNCLEAR,
        Reason.PHOTO_NOT_COMPLIANT,
        Reason.ID_COPY_ILLEGIBLE,
        Reason.ID_CARD_INVALID,
        Reason.FORM_INCOMPLETE,
        Reason.FORM_UNSIGNED,
        Reason.LOSS_PROOF_MISMATCH,
        Reason.AFFILIATION_PROOF_MISSING,
        Reason.EXEMPTION_PROOF_INVALID,
        Reason.WRONG_MATERIAL_TYPE,
        Reason.OTHER,
    }
)
REJECTION: Final = frozenset(
    {
        Reason.NOT_CARD_HOLDER,
        Reason.NOT_INSURED_HERE,
        Reason.AFFILIATION_DENIED,
        Reason.MATERIALS_NOT_AUTHENTIC,
        Reason.APPLICATION_IN_PROGRESS,
        Reason.OTHER,
    }
)
CANCELLATION: Final = frozenset(
    {
        Reason.DUPLICATE_CASE,
        Reason.APPLICANT_REQUEST,
        Reason.INSURED_ELSEWHERE,
        Reason.FRAUD_SUSPECTED,
        Reason.DATA_ERROR,
        Reason.CARD_CANNOT_BE_MADE,
        Reason.OTHER,
    }
)
# The reasons only the case gives (nobody chooses them).
SYSTEM: Final = frozenset(
    {
        Reason.CORRECTION_ROUNDS_EXHAUSTED,
        Reason.TEMPORARY_REPORT_EXPIRED,
        Reason.APPLICATION_NOT_SUBMITTED,
        Reason.CORRECTION_NOT_RESUBMITTED,
        Reason.FEE_NOT_PAID,
        Reason.CANCELLED_BY_SERVICE_CENTRE,
    }
)
# Which reasons each decision may give, in the catalogue's order (the console's lists).
FOR_DECISION: Final[Mapping[Decision, tuple[Reason, ...]]] = MappingProxyType(
    {
        d: tuple(r for r in Reason if r in allowed)
        for d, allowed in (
            (Decision.CORRECTION, CORRECTION),
            (Decision.REJECTION, REJECTION),
            (Decision.CANCELLATION, CANCELLATION),
        )
    }
)
_WHAT: Final = {
    Decision.CORRECTION: "a correction request",
    Decision.REJECTION: "a rejection",
    Decision.CANCELLATION: "a cancellation by operations",
}


def known(code: object) -> Reason | None:
    """The reason a code names; None for anything else (free text, say)."""
    return Reason(code) if isinstance(code, str) and code in _CODES else None


def label(reason: Reason) -> str:
    """The console's label of a reason: the Chinese, the English beside it."""
    text = TEXTS[reason]
    return f"{text.zh} · {text.en}"


def refuse_unless_for(decision: Decision, field: str, reasons: Iterable[Reason]) -> None:
    """A ValueError naming `field` and the rule if a reason is not one `decision` gives."""
    allowed = FOR_DECISION[decision]
    for reason in reasons:
        if reason not in allowed:
            raise ValueError(
                f"{field}: {reason.value!r} is not a reason for {_WHAT[decision]} "
                f"(one of: {', '.join(r.value for r in allowed)})"
            )


def notice_text(codes: str | Iterable[str]) -> str:
    """The Chinese words a notice gives for these reasons (codes, or codes joined by
    ';'). Anything that is not a code of the catalogue reads as "other": what reaches
    the applicant is only ever the catalogue's text."""
    parts = codes.split(";") if isinstance(codes, str) else list(codes)
    said: list[str] = []
    for part in (p.strip() for p in parts):
        if not part:
            continue
        reason = known(part) or Reason.OTHER
        if TEXTS[reason].zh not in said:
            said.append(TEXTS[reason].zh)
    return "；".join(said) or TEXTS[Reason.OTHER].zh


_CODES: Final = frozenset(r.value for r in Reason)
