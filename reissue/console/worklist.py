"""What staff work from: the queue (Temporal visibility, sorted and paged here, since
visibility on SQL sorts by nothing but start time) and finding a case by what staff
know. Rows carry the applicant's masked name from the case's memo (set when it starts),
or, for a case started without one, from the first event of its history."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import asyncpg
from temporalio.client import Client, WorkflowExecution
from temporalio.service import RPCError

from reissue.activities.repositories import lookup
from reissue.client import ReissueClient
from reissue.ops.audit import HistoryReader
from reissue.ops.operations import CaseRow
from reissue.schemas.identifiers import (
    mask_name,
    normalise_card_number,
    normalise_resident_id,
    today_for_validation,
)
from reissue.schemas.visibility import APPLICANT_MEMO, REVIEW_DUE_AT

__all__ = [
    "PAGE_SIZE",
    "QUEUE_LIMIT",
    "SORTS",
    "NotAQuery",
    "Page",
    "QueueRow",
    "find",
    "queue_page",
]

PAGE_SIZE: Final = 25
# A queue longer than this is cut (and says so): no district works through more at once.
QUEUE_LIMIT: Final = 10_000
SORTS: Final = ("waited", "recent", "sla", "district")

_REPORT_NUMBER = re.compile(r"^LR[0-9]{14}$")
_CASE_ID = re.compile(r"^reissue-[0-9a-f]{16}$")


@dataclass(frozen=True)
class QueueRow:
    """One case as the queue shows it."""

    workflow_id: str
    applicant: str  # masked
    stage: str
    district: str
    assigned_to: str | None
    started: datetime
    review_due: datetime | None
    sla_breached: bool

    def waited(self, now: datetime) -> float:
        return (now - self.started).total_seconds()

    def sla_left(self, now: datetime) -> float | None:
        return None if self.review_due is None else (self.review_due - now).total_seconds()


@dataclass(frozen=True)
class Page:
    rows: list[QueueRow]
    total: int
    page: int
    pages: int
    cut: bool  # more cases than QUEUE_LIMIT matched


_Item = tuple[CaseRow, datetime | None, WorkflowExecution]


def _sort_key(sort: str) -> Callable[[_Item], Any]:
    far = datetime.max.replace(tzinfo=None)

    def key(item: _Item) -> Any:
        row, due, _ = item
        if sort == "recent":
            return -row.started.timestamp()
        if sort == "sla":  # breached and soonest first; cases without a review SLA last
            return (due is None, due.replace(tzinfo=None) if due else far, row.started)
        if sort == "district":
            return (row.district, row.started)
        return row.started.timestamp()

    return key


async def _applicant(client: Client, wf: WorkflowExecution) -> str:
    memo = await wf.memo()
    name = memo.get(APPLICANT_MEMO)
    if isinstance(name, str):
        return name
    # Started without the memo (before it existed, or by another SDK): the case's input.
    try:
        async for ev in client.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history_events(
            page_size=1
        ):
            started = ev.workflow_execution_started_event_attributes
            inp = await HistoryReader(client.data_converter).one(started.input.payloads)
            if isinstance(inp, dict) and isinstance(inp.get("applicant"), dict):
                return mask_name(str(inp["applicant"].get("name", "")))
            break
    except RPCError:
        pass
    return "—"


async def queue_page(
    client: Client, query: str, *, sort: str, page: int, size: int = PAGE_SIZE
) -> Page:
    """One page of the cases the visibility `query` matches, sorted by `sort`."""
    found: list[_Item] = []
    async for wf in client.list_workflows(query, limit=QUEUE_LIMIT + 1, page_size=1000):
        found.append((CaseRow.of(wf), wf.typed_search_attributes.get(REVIEW_DUE_AT), wf))
    cut = len(found) > QUEUE_LIMIT
    found = found[:QUEUE_LIMIT]
    found.sort(key=_sort_key(sort if sort in SORTS else SORTS[0]))
    pages = max(1, math.ceil(len(found) / size))
    page = min(max(1, page), pages)
    shown = found[(page - 1) * size : page * size]
    names = await asyncio.gather(*(_applicant(client, wf) for _, _, wf in shown))
    rows = [
        QueueRow(
            workflow_id=row.workflow_id,
            applicant=name,
            stage=row.stage,
            district=row.district,
            assigned_to=row.assigned_to,
            started=row.started,
            review_due=due,
            sla_breached=row.sla_breached,
        )
        for (row, due, _), name in zip(shown, names, strict=True)
    ]
    return Page(rows=rows, total=len(found), page=page, pages=pages, cut=cut)


class NotAQuery(ValueError):
    """The search text is none of the things a case can be found by."""


async def find(client: ReissueClient, pool: asyncpg.Pool, text: str) -> list[QueueRow]:
    """The cases a loss report number, a card number, a resident ID or a case ID names,
    the latest first (at most 20). Raises `NotAQuery` for anything else."""
    q = text.strip()
    async with pool.acquire() as conn:
        if _REPORT_NUMBER.fullmatch(q.upper()):
            ids = await lookup.cases_of_report(conn, q.upper())
        elif _CASE_ID.fullmatch(q.partition(":")[0]):
            ids = [q.partition(":")[0]]
        elif len(q) == 9:
            try:
                card = normalise_card_number(q)
            except ValueError:
                raise NotAQuery from None
            ids = await lookup.cases_of_card(conn, card) or [client.case_id_for(card)]
        elif len(q) == 18:
            try:
                rid = normalise_resident_id(q, today=today_for_validation())
            except ValueError:
                raise NotAQuery from None
            ids = await lookup.cases_of_person(conn, client.person_key_for(rid))
        else:
            raise NotAQuery
    return await _described(client.temporal, _unique(ids))


def _unique(case_ids: Sequence[str]) -> list[str]:
    """Workflow IDs in order, once each (a card's cases share its ID, one run each)."""
    seen: dict[str, None] = {}
    for case_id in case_ids:
        seen.setdefault(case_id.partition(":")[0], None)
    return list(seen)


async def _described(client: Client, workflow_ids: list[str]) -> list[QueueRow]:
    async def one(wid: str) -> QueueRow | None:
        try:
            wf = await client.get_workflow_handle(wid).describe()
        except RPCError:
            return None
        row = CaseRow.of(wf)
        return QueueRow(
            workflow_id=wid,
            applicant=await _applicant(client, wf),
            stage=row.stage,
            district=row.district,
            assigned_to=row.assigned_to,
            started=row.started,
            review_due=wf.typed_search_attributes.get(REVIEW_DUE_AT),
            sla_breached=row.sla_breached,
        )

    rows = await asyncio.gather(*(one(w) for w in workflow_ids[:20]))
    return [r for r in rows if r is not None]
