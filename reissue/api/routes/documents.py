"""`/v1/cases/{case_id}/documents/…`: the documents the counter prints for a case, as
PDF (`reissue/documents`). The application form carries the full personal data, for
the applicant in front of the clerk the credential names; each download is on the
case's record (the form's as `personal_data_unmasked`) before the document is made."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from reissue.api.credentials import Credential
from reissue.api.deps import CaseId, Door, require
from reissue.api.problems import ApiProblem, refusals
from reissue.documents import (
    PDF,
    Document,
    DocumentUnavailable,
    FontMissing,
    cjk_font,
    download_headers,
    issue_application_form,
    issue_loss_report_proof,
)
from reissue.schemas.enums import Stage
from reissue.schemas.permissions import Scope

__all__ = ["router"]

router = APIRouter()

_AS_PDF: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {PDF: {"schema": {"type": "string", "format": "binary"}}},
        "description": "The document (A4, Chinese with English beside it).",
    }
}
# Why the counter prints the form: the reason on the case's record.
COUNTER_REASON = "printed at the counter for the applicant's signature"


def _font() -> None:
    try:
        cjk_font()
    except FontMissing as e:
        raise ApiProblem(503, "documents-unavailable", "Documents unavailable", str(e)) from None


@asynccontextmanager
async def _unavailable() -> AsyncIterator[None]:
    try:
        yield
    except DocumentUnavailable as e:
        raise ApiProblem(409, "document-unavailable", "No such document yet", str(e)) from None


# When the counter prints the form: while the case waits for the applicant to hand in
# the application (or a correction) in person. Never for a closed case.
FORM_STAGES: Final = frozenset({Stage.AWAITING_MATERIALS})


def _pdf(body: bytes, case_id: str, document: Document) -> Response:
    return Response(body, media_type=PDF, headers=download_headers(case_id, document))


@router.get(
    "/v1/cases/{case_id}/documents/application-form.pdf",
    response_class=Response,
    responses=_AS_PDF,
    summary="The application form, filled in from the case (full personal data), for the "
    "applicant's signature; the download is recorded with the clerk",
)
async def application_form(
    case_id: CaseId,
    door: Door,
    who: Annotated[Credential, Depends(require(Scope.DOCUMENTS))],
) -> Response:
    if who.person is None:
        raise ApiProblem(
            403,
            "no-acting-person",
            "Not allowed",
            "the application form is printed for a clerk: this credential names none "
            "(a per-person token, or a token with an act claim)",
        )
    _font()
    async with refusals(door.client, case_id), _unavailable():
        stage = (await door.client.status(case_id)).stage
        if stage not in FORM_STAGES:
            raise ApiProblem(
                409,
                "not-at-the-counter",
                "Not at this stage",
                f"the application form is printed while the case waits for the applicant at "
                f"a counter ({', '.join(s.value for s in sorted(FORM_STAGES))}); it is "
                f"{stage.value}",
            )
        body = await issue_application_form(
            door.client,
            door.pool,
            case_id,
            clerk=who.person,
            printed_by=who.person,
            by_role=who.partner,
            reason=COUNTER_REASON,
        )
    return _pdf(body, case_id, Document.APPLICATION_FORM)


@router.get(
    "/v1/cases/{case_id}/documents/loss-report-proof.pdf",
    response_class=Response,
    responses=_AS_PDF,
    summary="The proof of the case's loss report (masked card, time reported, temporary or "
    "formal, validity, hotlines); the download is recorded",
)
async def loss_report_proof(
    case_id: CaseId,
    door: Door,
    who: Annotated[Credential, Depends(require(Scope.DOCUMENTS))],
) -> Response:
    _font()
    async with refusals(door.client, case_id), _unavailable():
        body = await issue_loss_report_proof(
            door.client, door.pool, case_id, actor=who.acting, by_role=who.partner
        )
    return _pdf(body, case_id, Document.LOSS_REPORT_PROOF)
