"""The review queue (from Temporal visibility), by tab, district, sort order and page;
and finding a case by its loss report number, card number or resident ID (a POST: no
personal data in a URL)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from reissue.console.deps import Me, with_csrf
from reissue.console.pages import TABS, console_of, render, translator
from reissue.console.staff import StaffSession
from reissue.console.worklist import SORTS, NotAQuery, find, queue_page
from reissue.ops.operations import CaseFilter
from reissue.schemas.enums import Stage
from reissue.schemas.identifiers import CURRENT_DISTRICTS
from reissue.schemas.labels import district as district_label

__all__ = ["router"]

router = APIRouter()


def queue_filter(
    tab: str,
    me: StaffSession,
    now: datetime,
    *,
    task_queue: str,
    due_soon: timedelta,
    district: str | None = None,
) -> CaseFilter:
    review = Stage.UNDER_REVIEW
    every = CaseFilter(task_queue=task_queue, district=district)
    if tab == "unclaimed":
        return replace(every, stage=review, unclaimed=True)
    if tab == "mine":
        return replace(every, stage=review, assigned_to=me.user_id)
    if tab == "due":
        return replace(every, stage=review, sla_breached=False, review_due_before=now + due_soon)
    if tab == "breached":
        return replace(every, sla_breached=True)
    return every


def districts() -> list[tuple[str, str]]:
    """(code, name) of every current district, for the filter."""
    return [(code, str(district_label(code))) for code in CURRENT_DISTRICTS]


@router.get("/", response_class=HTMLResponse)
async def queue(
    request: Request,
    me: Me,
    tab: str = "unclaimed",
    district: Annotated[str, Query(max_length=6)] = "",
    sort: str = "waited",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    fresh: bool = False,
) -> Response:
    tab = tab if tab in TABS else "unclaimed"
    sort = sort if sort in SORTS else "waited"
    district = district if district in CURRENT_DISTRICTS else ""
    console = console_of(request)
    now = datetime.now(UTC)
    query = queue_filter(
        tab,
        me,
        now,
        task_queue=console.client.task_queue,
        due_soon=console.config.due_soon,
        district=district or None,
    ).query(now=now)
    shown = await queue_page(
        console.client.temporal,
        query,
        sort=sort,
        page=page,
        size=console.config.queue_page_size,
        listings=console.listings,
        fresh=fresh,
    )
    return render(
        request,
        me,
        "queue.html",
        tab=tab,
        tabs=TABS,
        sort=sort,
        sorts=SORTS,
        district=district,
        districts=districts(),
        shown=shown,
        now=now,
        due_soon=console.config.due_soon.total_seconds(),
    )


@router.get("/search", response_class=HTMLResponse)
async def search_form(request: Request, me: Me) -> Response:
    return render(request, me, "search.html", q="", results=None)


@router.post("/search", response_class=HTMLResponse)
async def search(
    request: Request,
    me: Annotated[StaffSession, Depends(with_csrf)],
    q: Annotated[str, Form(max_length=64)],
) -> Response:
    console = console_of(request)
    try:
        results = await find(console.client, console.pool, q)
    except NotAQuery:
        # The rule, never the value sent back (it may be an ID number).
        error = "q: " + translator(request)("search_invalid")
        return render(request, me, "search.html", 422, q="", results=None, error=error)
    return render(
        request, me, "search.html", q="", results=results, now=datetime.now(UTC), due_soon=0.0
    )
