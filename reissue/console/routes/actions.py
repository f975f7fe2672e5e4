"""The actions on a case, one form per event of the catalogue that staff send from the
console (`contract.EVENTS`, entries with `console`): `POST /cases/{case_id}/<action>`,
allowed by `deps.permit(action)`. Who acts is always the session's person, never a
form field. A refusal comes back on the case page (`app.py` turns the case's answer
into the page)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from pydantic import BaseModel

from reissue.console.deps import Permit, permit
from reissue.console.pages import console_of, done
from reissue.schemas import contract as c
from reissue.schemas.enums import DocumentType, ReviewVerdict
from reissue.schemas.events import (
    AffiliationOverride,
    CancelRequest,
    MaterialRef,
    ProductionReorder,
    ReviewClaim,
    ReviewDecision,
    ReviewRelease,
)

__all__ = ["router"]

router = APIRouter()
H = TypeVar("H", bound=Callable[..., Any])
M = TypeVar("M", bound=BaseModel)


def _permit(entry: c.Event) -> Any:
    """The permission to take this event's console action."""
    assert entry.console is not None, entry.name
    return Depends(permit(entry.console))


def _form(entry: c.Event) -> Callable[[H], H]:
    """The route of this event's form: `POST /cases/{case_id}/<its console action>`."""
    assert entry.console is not None, entry.name
    return router.post(f"/cases/{{case_id}}/{entry.console}")


async def _sent(
    request: Request, ok: Permit, entry: c.Update[M, Any] | c.Signal[M], event: M
) -> Response:
    """Send the event to the case, then show the case page saying it is done."""
    await console_of(request).client.deliver(ok.case_id, entry, event)
    return done(request, ok.case_id)


@_form(c.CLAIM_REVIEW)
async def claim(request: Request, ok: Annotated[Permit, _permit(c.CLAIM_REVIEW)]) -> Response:
    return await _sent(request, ok, c.CLAIM_REVIEW, ReviewClaim(reviewer=ok.me.user_id))


@_form(c.RELEASE_REVIEW)
async def release(
    request: Request,
    ok: Annotated[Permit, _permit(c.RELEASE_REVIEW)],
    reason: Annotated[str, Form()] = "",
) -> Response:
    why = reason.strip() or f"{ok.me.user_id} 退回队列"
    # held_by: the case refuses if the claim changed hands since this page was read.
    release = ReviewRelease(supervisor=ok.me.user_id, reason=why, held_by=ok.st.assigned_to)
    return await _sent(request, ok, c.RELEASE_REVIEW, release)


@_form(c.REVIEW)
async def decide(
    request: Request,
    ok: Annotated[Permit, _permit(c.REVIEW)],
    verdict: Annotated[ReviewVerdict, Form()],
    reasons: Annotated[list[str] | None, Form(max_length=20)] = None,
    note: Annotated[str, Form(max_length=500)] = "",
    waive_fee: Annotated[bool, Form()] = False,
    waiver_reason: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    client = console_of(request).client
    decision = ReviewDecision(
        reviewer=ok.me.user_id,
        verdict=verdict,
        reasons=reasons or [],  # codes of the catalogue; the case's model checks them
        note=note.strip(),
        waive_fee=waive_fee,
        waiver_reason=waiver_reason.strip() or None,
    )
    if ok.st.assigned_to not in (None, ok.me.user_id):
        # A supervisor takes over a case another reviewer holds (on the record).
        await client.release_review(
            ok.case_id,
            ReviewRelease(
                supervisor=ok.me.user_id, reason="主管接手审核", held_by=ok.st.assigned_to
            ),
        )
    return await _sent(request, ok, c.REVIEW, decision)


@_form(c.OVERRIDE_AFFILIATION)
async def override(
    request: Request,
    ok: Annotated[Permit, _permit(c.OVERRIDE_AFFILIATION)],
    doc_id: Annotated[str, Form(max_length=64)],
    sha256: Annotated[str, Form(max_length=64)],
    note: Annotated[str, Form(max_length=500)],
    pages: Annotated[int, Form(ge=1, le=50)] = 1,
) -> Response:
    letter = MaterialRef(
        doc_id=doc_id.strip(),
        type=DocumentType.AFFILIATION_LETTER,
        sha256=sha256.strip().lower(),
        pages=pages,
    )
    override = AffiliationOverride(staff_id=ok.me.user_id, letter=letter, note=note)
    return await _sent(request, ok, c.OVERRIDE_AFFILIATION, override)


@_form(c.REORDER_CARD)
async def reorder(
    request: Request,
    ok: Annotated[Permit, _permit(c.REORDER_CARD)],
    reason: Annotated[str, Form(max_length=500)],
) -> Response:
    reorder = ProductionReorder(supervisor=ok.me.user_id, reason=reason.strip())
    return await _sent(request, ok, c.REORDER_CARD, reorder)


@_form(c.CANCEL)
async def cancel(
    request: Request,
    ok: Annotated[Permit, _permit(c.CANCEL)],
    reason: Annotated[str, Form(max_length=64)],
    note: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    # A code of the catalogue: the applicant's notice says its words, never the note.
    cancel = CancelRequest(operator=ok.me.user_id, reason=reason, note=note.strip())
    return await _sent(request, ok, c.CANCEL, cancel)
