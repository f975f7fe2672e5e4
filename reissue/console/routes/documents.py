"""The documents of a case (`reissue/documents`) for staff: the proof of the loss report
(masked) for anyone on staff; the application form, with the full personal data, only
for a role that may unmask, with a stated reason — on the case's record as
`personal_data_unmasked` before the form is made."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from reissue.console.deps import CaseId, Me, Permit, Refused, StatedReason, permit
from reissue.console.pages import console_of
from reissue.console.staff import StaffSession
from reissue.documents import (
    PDF,
    Document,
    DocumentUnavailable,
    FontMissing,
    download_headers,
    issue_application_form,
    issue_loss_report_proof,
)
from reissue.schemas.permissions import StaffAction

__all__ = ["router"]

router = APIRouter()


@contextmanager
def _refusals() -> Iterator[None]:
    """A document that cannot be made now: said on the case page."""
    try:
        yield
    except FontMissing as e:
        raise Refused(503, str(e)) from None
    except DocumentUnavailable as e:
        raise Refused(409, str(e)) from None


def _roles(me: StaffSession) -> str:
    return ",".join(sorted(me.roles))


@router.get("/cases/{case_id}/loss-report-proof.pdf")
async def loss_report_proof(request: Request, me: Me, case_id: CaseId) -> Response:
    console = console_of(request)
    with _refusals():
        body = await issue_loss_report_proof(
            console.client, console.pool, case_id, actor=me.user_id, by_role=_roles(me)
        )
    return Response(
        body, media_type=PDF, headers=download_headers(case_id, Document.LOSS_REPORT_PROOF)
    )


@router.post("/cases/{case_id}/application-form.pdf")
async def application_form(
    request: Request,
    ok: Annotated[Permit, Depends(permit(StaffAction.UNMASK))],
    reason: StatedReason,
) -> Response:
    console = console_of(request)
    with _refusals():
        body = await issue_application_form(
            console.client,
            console.pool,
            ok.case_id,
            clerk=None,
            printed_by=ok.me.user_id,
            by_role=_roles(ok.me),
            reason=reason,
        )
    return Response(
        body, media_type=PDF, headers=download_headers(ok.case_id, Document.APPLICATION_FORM)
    )
