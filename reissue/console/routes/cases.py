"""The case page, its masked timeline export, and unmasking its personal data with a
stated reason (on the case's append-only record before anything is shown)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from temporalio.service import RPCError

from reissue.activities.repositories.audit import append
from reissue.console.deps import CaseId, Me, Permit, StatedReason, allowed, permit
from reissue.console.pages import console_of, show_case, translator
from reissue.console.staff import StaffSession
from reissue.ops.audit import build_timeline
from reissue.schemas.permissions import StaffAction

__all__ = ["router"]

router = APIRouter()


@router.get("/cases/{case_id}", response_class=HTMLResponse)
async def case_page(request: Request, me: Me, case_id: CaseId, done: bool = False) -> Response:
    notice = translator(request)("done") if done else None
    return await show_case(request, me, case_id, notice=notice)


@router.post("/cases/{case_id}/unmask", response_class=HTMLResponse)
async def unmask(
    request: Request,
    ok: Annotated[Permit, Depends(permit(StaffAction.UNMASK))],
    reason: StatedReason,
) -> Response:
    async with console_of(request).pool.acquire() as conn:
        # On the case's own append-only record, before anything is shown.
        await append(
            conn,
            dedupe_key=f"unmask:{uuid.uuid4()}",
            case_id=ok.st.case_id,
            event_type="personal_data_unmasked",
            actor=ok.me.user_id,
            detail={"reason": reason, "by_role": "auditor"},
            at=datetime.now(UTC),
        )
    notice = translator(request)("unmasked")
    return await show_case(request, ok.me, ok.case_id, notice=notice, unmask=True)


@router.get("/cases/{case_id}/timeline.md")
async def export(
    request: Request,
    me: Annotated[StaffSession, Depends(allowed(StaffAction.EXPORT))],
    case_id: CaseId,
) -> Response:
    client = console_of(request).client
    try:
        history = await client.handle(case_id).fetch_history()
    except RPCError:
        return await show_case(request, me, case_id, status=404)
    timeline = await build_timeline(history, client.temporal.data_converter, unmask=False)
    return PlainTextResponse(
        timeline.to_markdown(),
        media_type="text/markdown; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{case_id}.timeline.md"'},
    )
