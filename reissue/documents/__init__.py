"""The documents the counter prints for a case, as PDF in Chinese with English beside
it (fpdf2, with Debian's WenQuanYi Zen Hei embedded):

- the *Application Form for Reissuing Medical Insurance Card* (医疗保险卡补办申请表),
  filled in from the case with the full personal data, for the applicant's signature;
  every download is recorded as an unmask is (`personal_data_unmasked`, with who and
  why), before the form is made;
- the *proof of the loss report* (挂失证明): report number, the masked card, the time
  reported, temporary or formal, its validity and the hotlines; every download is
  recorded (`document_issued`).

The partner API serves both to the counter system (`routes/documents.py`), the console
to staff; who may download which is theirs to check (README: "Who may do what").
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum

import asyncpg

from reissue.activities.db import Connection
from reissue.activities.repositories.audit import append
from reissue.client import ReissueClient
from reissue.documents._font import FONT_ENV, FontMissing, cjk_font
from reissue.documents._gather import (
    DocumentUnavailable,
    gather_application_form,
    gather_loss_report_proof,
)
from reissue.documents._render import (
    ApplicationForm,
    LossReportProof,
    application_form_pdf,
    loss_report_proof_pdf,
)

__all__ = [
    "FONT_ENV",
    "PDF",
    "ApplicationForm",
    "Document",
    "DocumentUnavailable",
    "FontMissing",
    "LossReportProof",
    "application_form_pdf",
    "cjk_font",
    "download_headers",
    "gather_application_form",
    "gather_loss_report_proof",
    "issue_application_form",
    "issue_loss_report_proof",
    "loss_report_proof_pdf",
    "record_download",
]

PDF = "application/pdf"


class Document(StrEnum):
    APPLICATION_FORM = "application_form"
    LOSS_REPORT_PROOF = "loss_report_proof"

    @property
    def filename(self) -> str:
        return self.value.replace("_", "-") + ".pdf"

    @property
    def event_type(self) -> str:
        """What its download is on the case's record: the form shows personal data."""
        if self is Document.APPLICATION_FORM:
            return "personal_data_unmasked"
        return "document_issued"


async def record_download(
    conn: Connection,
    document: Document,
    *,
    case_id: str,
    actor: str,
    by_role: str,
    reason: str,
) -> None:
    """On the case's append-only record (`case_id` with its run, as the case's events
    are): who downloaded which document, in which role, and why."""
    await append(
        conn,
        dedupe_key=f"document:{uuid.uuid4()}",
        case_id=case_id,
        event_type=document.event_type,
        actor=actor,
        detail={"document": document.value, "reason": reason, "by_role": by_role},
        at=datetime.now(UTC),
    )


def download_headers(case_id: str, document: Document) -> dict[str, str]:
    """How either door serves a document: a download named for its case, kept in no
    cache (the application form holds the full personal data)."""
    return {
        "Content-Disposition": f'attachment; filename="{case_id}.{document.filename}"',
        "Cache-Control": "no-store",
    }


async def issue_loss_report_proof(
    client: ReissueClient, pool: asyncpg.Pool, case_id: str, *, actor: str, by_role: str
) -> bytes:
    """The proof of the case's loss report as PDF, its download on the case's record
    first. Raises `FontMissing` or `DocumentUnavailable` (nothing recorded)."""
    cjk_font()
    proof = await gather_loss_report_proof(client, pool, case_id)
    async with pool.acquire() as conn:
        await record_download(
            conn,
            Document.LOSS_REPORT_PROOF,
            case_id=proof.record_id,
            actor=actor,
            by_role=by_role,
            reason="proof of the loss report issued",
        )
    return loss_report_proof_pdf(proof)


async def issue_application_form(
    client: ReissueClient,
    pool: asyncpg.Pool,
    case_id: str,
    *,
    clerk: str | None,
    printed_by: str,
    by_role: str,
    reason: str,
) -> bytes:
    """The filled-in application form as PDF, its download (by `printed_by`, why) on the
    case's record before the form is made. Raises `FontMissing` or
    `DocumentUnavailable` (nothing recorded)."""
    cjk_font()
    form = await gather_application_form(client, case_id, clerk=clerk, printed_by=printed_by)
    async with pool.acquire() as conn:
        await record_download(
            conn,
            Document.APPLICATION_FORM,
            case_id=form.record_id,
            actor=printed_by,
            by_role=by_role,
            reason=reason,
        )
    return application_form_pdf(form)
