"""What staff work from: the queue (Temporal visibility, sorted and paged here, since
visibility on SQL sorts by nothing but start time) and finding a case by what staff
know. Rows carry the applicant's masked name from the case's memo (set when it starts),
or, for a case started without one, from the first event of its history."""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import asyncpg
from temporalio.api.workflow.v1 import WorkflowExecutionInfo
from temporalio.api.workflowservice.v1 import (
    ListWorkflowExecutionsRequest,
    ListWorkflowExecutionsResponse,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from reissue.activities.repositories import lookup
from reissue.client import ReissueClient
from reissue.ops.audit import HistoryReader
from reissue.schemas.identifiers import (
    mask_name,
    normalise_card_number,
    normalise_resident_id,
    today_for_validation,
)
from reissue.schemas.visibility import (
    APPLICANT_MEMO,
    ASSIGNED_TO,
    CASE_STAGE,
    DISTRICT,
    REVIEW_DUE_AT,
    SLA_BREACHED,
)

__all__ = [
    "PAGE_SIZE",
    "QUEUE_LIMIT",
    "SORTS",
    "Listings",
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
    listed_at: datetime


@dataclass(frozen=True)
class _Listed:
    """A case as visibility lists it, read straight from the record: only the search
    attributes the queue shows are decoded (search attributes are plain JSON, never
    encrypted), and the memo only for the page shown."""

    info: WorkflowExecutionInfo
    started: datetime
    review_due: datetime | None

    @classmethod
    def of(cls, info: WorkflowExecutionInfo) -> _Listed:
        due = _attribute(info, REVIEW_DUE_AT.name)
        return cls(
            info=info,
            started=info.start_time.ToDatetime(tzinfo=UTC),
            review_due=datetime.fromisoformat(due) if isinstance(due, str) else None,
        )

    def keyword(self, name: str) -> str:
        value = _attribute(self.info, name)
        return value if isinstance(value, str) else "—"


def _attribute(info: WorkflowExecutionInfo, name: str) -> Any:
    payload = info.search_attributes.indexed_fields.get(name)
    return None if payload is None else json.loads(payload.data)


def _sort_key(sort: str) -> Callable[[_Listed], Any]:
    far = datetime.max.replace(tzinfo=UTC)

    def key(case: _Listed) -> Any:
        if sort == "recent":
            return -case.started.timestamp()
        if sort == "sla":  # breached and soonest first; cases without a review SLA last
            return (case.review_due is None, case.review_due or far, case.started)
        if sort == "district":
            return (case.keyword(DISTRICT.name), case.started)
        return case.started.timestamp()

    return key


async def _applicant(client: Client, info: WorkflowExecutionInfo) -> str:
    memo = info.memo.fields.get(APPLICANT_MEMO)
    if memo is not None:
        with contextlib.suppress(Exception):  # not readable without the key
            (name,) = await client.data_converter.decode([memo], [str])
            return str(name)
    # Started without the memo (before it existed, or by another SDK): the case's input.
    execution = info.execution
    try:
        handle = client.get_workflow_handle(execution.workflow_id, run_id=execution.run_id)
        async for ev in handle.fetch_history_events(page_size=1):
            started = ev.workflow_execution_started_event_attributes
            inp = await HistoryReader(client.data_converter).one(started.input.payloads)
            if isinstance(inp, dict) and isinstance(inp.get("applicant"), dict):
                return mask_name(str(inp["applicant"].get("name", "")))
            break
    except RPCError:
        pass
    return "—"


async def _row(client: Client, case: _Listed) -> QueueRow:
    assigned = _attribute(case.info, ASSIGNED_TO.name)
    return QueueRow(
        workflow_id=case.info.execution.workflow_id,
        applicant=await _applicant(client, case.info),
        stage=case.keyword(CASE_STAGE.name),
        district=case.keyword(DISTRICT.name),
        assigned_to=assigned if isinstance(assigned, str) else None,
        started=case.started,
        review_due=case.review_due,
        sla_breached=_attribute(case.info, SLA_BREACHED.name) is True,
    )


async def _listed(client: Client, query: str) -> list[_Listed]:
    """Every case the visibility `query` matches (at most QUEUE_LIMIT + 1)."""
    found: list[_Listed] = []
    token = b""
    while len(found) <= QUEUE_LIMIT:
        request = ListWorkflowExecutionsRequest(
            namespace=client.namespace, query=query, page_size=1000, next_page_token=token
        )
        answer = await _list(client, request)
        found += (_Listed.of(info) for info in answer.executions)
        token = answer.next_page_token
        if not token:
            break
    return found


# What a busy visibility store answers now and then (a query it gave up on, a frontend
# not ready): a read, so asked again a few times before the page says Temporal is away.
_TRANSIENT: Final = frozenset(
    {RPCStatusCode.CANCELLED, RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED}
)


async def _list(
    client: Client, request: ListWorkflowExecutionsRequest, *, tries: int = 3
) -> ListWorkflowExecutionsResponse:
    for attempt in range(1, tries + 1):
        try:
            return await client.workflow_service.list_workflow_executions(request)
        except RPCError as e:
            if e.status not in _TRANSIENT or attempt == tries:
                raise
            await asyncio.sleep(0.2 * attempt)
    raise AssertionError("unreachable")


class Listings:
    """What visibility listed for each query lately: paging and re-sorting within
    `ttl` read no list again (visibility on SQL lists 2,000 cases in about a second
    and sorts them by nothing but start time). A page says how old its list is."""

    def __init__(self, ttl: timedelta, *, keep: int = 64) -> None:
        self._ttl, self._keep = ttl, keep
        self._lists: dict[str, tuple[float, datetime, list[_Listed]]] = {}

    async def of(
        self, client: Client, query: str, *, fresh: bool = False
    ) -> tuple[datetime, list[_Listed]]:
        now = time.monotonic()
        held = self._lists.get(query)
        if not fresh and held is not None and now - held[0] < self._ttl.total_seconds():
            return held[1], held[2]
        listed = await _listed(client, query)
        if len(self._lists) >= self._keep:
            self._lists.pop(next(iter(self._lists)))
        at = datetime.now(UTC)
        self._lists[query] = (now, at, listed)
        return at, listed


async def queue_page(
    client: Client,
    query: str,
    *,
    sort: str,
    page: int,
    size: int = PAGE_SIZE,
    listings: Listings | None = None,
    fresh: bool = False,
) -> Page:
    """One page of the cases the visibility `query` matches, sorted by `sort` (from the
    listing `listings` holds for it, unless `fresh`)."""
    listings = listings or Listings(timedelta(0))
    listed_at, found = await listings.of(client, query, fresh=fresh)
    found = list(found)
    cut = len(found) > QUEUE_LIMIT
    found = found[:QUEUE_LIMIT]
    found.sort(key=_sort_key(sort if sort in SORTS else SORTS[0]))
    pages = max(1, math.ceil(len(found) / size))
    page = min(max(1, page), pages)
    shown = found[(page - 1) * size : page * size]
    rows = list(await asyncio.gather(*(_row(client, case) for case in shown)))
    return Page(rows=rows, total=len(found), page=page, pages=pages, cut=cut, listed_at=listed_at)


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
            described = await client.get_workflow_handle(wid).describe()
        except RPCError:
            return None
        info = described.raw_description.workflow_execution_info
        return await _row(client, _Listed.of(info))

    rows = await asyncio.gather(*(one(w) for w in workflow_ids[:20]))
    return [r for r in rows if r is not None]
