"""The review queue (from Temporal visibility), by tab, and finding a case by its ID."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from reissue.console.deps import Me
from reissue.console.pages import TABS, base_of, console_of, not_found, render
from reissue.console.staff import StaffSession
from reissue.ops.operations import CaseFilter, CaseRow, list_cases
from reissue.schemas.enums import Stage

__all__ = ["router"]

CASE_ID_RE = re.compile(r"^reissue-[0-9a-f]{16}$")

router = APIRouter()


def queue_filter(
    tab: str, me: StaffSession, now: datetime, *, task_queue: str, due_soon: timedelta
) -> CaseFilter:
    review = Stage.UNDER_REVIEW
    if tab == "unclaimed":
        return CaseFilter(stage=review, task_queue=task_queue, unclaimed=True)
    if tab == "mine":
        return CaseFilter(stage=review, task_queue=task_queue, assigned_to=me.user_id)
    if tab == "due":
        return CaseFilter(
            stage=review,
            task_queue=task_queue,
            sla_breached=False,
            review_due_before=now + due_soon,
        )
    if tab == "breached":
        return CaseFilter(sla_breached=True, task_queue=task_queue)
    return CaseFilter(task_queue=task_queue)


@router.get("/", response_class=HTMLResponse)
async def queue(request: Request, me: Me, tab: str = "unclaimed") -> Response:
    if tab not in TABS:
        tab = "unclaimed"
    console = console_of(request)
    tq, due_soon = console.client.task_queue, console.config.due_soon
    query = queue_filter(tab, me, datetime.now(UTC), task_queue=tq, due_soon=due_soon).query(
        now=datetime.now(UTC)
    )
    rows: list[CaseRow] = await list_cases(console.client.temporal, query, limit=200)
    return render(request, me, "queue.html", tab=tab, tabs=TABS, rows=rows)


@router.get("/find")
async def find(request: Request, me: Me, case_id: str = "") -> Response:
    case_id = case_id.strip().partition(":")[0]
    if not CASE_ID_RE.fullmatch(case_id):
        return not_found(request, me)
    return RedirectResponse(f"{base_of(request)}/cases/{case_id}", status_code=303)
