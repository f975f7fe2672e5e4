"""The promises the system makes, checked against PostgreSQL and Temporal visibility.

Once a loss is reported the card is unusable, and it stays so while a case holds
it; every case reaches an end; every payment is applied or refunded; no fee is
charged twice and no refund is missed; the registry never contradicts the case.
`reissue check-invariants` runs these checks in production; the fault-injection
tests, the soak and the interleaving tests run them after every fault.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from reissue.client._client import WORKFLOW_TYPE
from reissue.ops.audit import verify
from reissue.schemas.visibility import CASE_STAGE

__all__ = ["Violation", "check_invariants"]

_EARLY_ENDS = ("WITHDRAWN", "REJECTED", "LAPSED", "CANCELLED")


@dataclass(frozen=True)
class Violation:
    rule: str
    subject: str
    detail: str


@dataclass(frozen=True)
class _Case:
    workflow_id: str
    run_id: str
    running: bool
    stage: str | None
    closed_at: datetime | None

    @property
    def case_id(self) -> str:
        return f"{self.workflow_id}:{self.run_id}"


# How long a case that recorded its close may take to finish.
_CLOSING_CHECKS, _CLOSING_PAUSE = 25, 0.2


async def _cases(client: Client, task_queue: str | None) -> dict[str, _Case]:
    query = f"WorkflowType = '{WORKFLOW_TYPE}'"
    if task_queue:
        query += f" AND TaskQueue = '{task_queue}'"
    found: dict[str, _Case] = {}
    async for wf in client.list_workflows(query):
        case = _Case(
            workflow_id=wf.id,
            run_id=wf.run_id,
            running=wf.status is WorkflowExecutionStatus.RUNNING,
            stage=wf.typed_search_attributes.get(CASE_STAGE),
            closed_at=wf.close_time,
        )
        found[case.case_id] = case
    return found


async def check_invariants(
    client: Client,
    pool: asyncpg.Pool,
    *,
    task_queue: str | None = None,
    verify_closed_since: datetime | None = None,
) -> list[Violation]:
    """Every violation found; an empty list when the system keeps its promises."""
    out: list[Violation] = []
    cases = await _cases(client, task_queue)
    described: dict[str, _Case | None] = {}

    async def confirmed(case_id: str) -> _Case | None:
        """The case as Temporal holds it now: visibility may lag a close or a start by a
        moment, so before a violation is named the execution itself is asked."""
        if case_id not in described:
            workflow_id, _, run_id = case_id.partition(":")
            try:
                d = await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
            except RPCError as e:
                if e.status is not RPCStatusCode.NOT_FOUND:
                    raise
                described[case_id] = None
            else:
                described[case_id] = _Case(
                    workflow_id=workflow_id,
                    run_id=run_id,
                    running=d.status is WorkflowExecutionStatus.RUNNING,
                    stage=d.typed_search_attributes.get(CASE_STAGE),
                    closed_at=d.close_time,
                )
        return described[case_id]

    async def _closing(case_id: str) -> _Case | None:
        """The case once it has closed (or as it stands after a few seconds: a case that
        stays open that long is named)."""
        for _ in range(_CLOSING_CHECKS):
            described.pop(case_id, None)
            case = await confirmed(case_id)
            if case is None or not case.running:
                return case
            await asyncio.sleep(_CLOSING_PAUSE)
        return case

    async with pool.acquire() as conn:
        for r in await conn.fetch(
            "SELECT account_id, count(*) AS n FROM cards WHERE status = 'active'"
            " GROUP BY account_id HAVING count(*) > 1"
        ):
            out.append(
                Violation("one active card per account", r["account_id"], f"{r['n']} active cards")
            )
        # The registry refuses every payment with the card (the bank's own freeze
        # follows as soon as the bank answers; the outcome check below covers it).
        for r in await conn.fetch(
            "SELECT l.card_number, l.case_id, c.status AS card"
            " FROM loss_reports l JOIN cards c USING (card_number)"
            " WHERE l.status = 'open' AND c.status NOT IN ('frozen', 'void')"
        ):
            out.append(
                Violation(
                    "a card under an open loss report is unusable",
                    r["card_number"],
                    f"card {r['card']} under the report of {r['case_id']}",
                )
            )
        # (A report left standing holds its card frozen after its case: until it runs
        # out, when the registry's sweep lifts it.)
        frozen = await conn.fetch(
            "SELECT c.card_number, l.case_id FROM cards c LEFT JOIN loss_reports l"
            " ON l.card_number = c.card_number AND l.status = 'open' WHERE c.status = 'frozen'"
            " AND NOT EXISTS (SELECT 1 FROM loss_reports s WHERE s.card_number = c.card_number"
            "   AND s.status = 'standing')"
        )
        money = await conn.fetch(
            "SELECT p.case_id, sum(p.amount_fen) AS received,"
            " coalesce(sum(o.amount_fen) FILTER (WHERE o.status = 'paid'), 0) AS applied,"
            " coalesce(sum(r.amount_fen) FILTER (WHERE r.status = 'refunded'), 0) AS refunded,"
            " coalesce(sum(r.amount_fen) FILTER (WHERE r.status = 'pending'), 0) AS pending,"
            " array_agg(p.payment_ref) FILTER (WHERE r.refund_id IS NULL"
            "   AND o.order_id IS NULL) AS unaccounted"
            " FROM payments p"
            " LEFT JOIN payment_orders o ON o.payment_ref = p.payment_ref"
            "   AND o.case_id = p.case_id AND p.disposition = 'applied'"
            " LEFT JOIN refunds r ON r.payment_ref = p.payment_ref"
            " GROUP BY p.case_id"
        )
        for r in await conn.fetch(
            "SELECT o.order_id, o.case_id FROM payment_orders o WHERE o.status IN ('paid',"
            " 'refunded') AND NOT EXISTS (SELECT 1 FROM payments p"
            "   WHERE p.payment_ref = o.payment_ref AND p.disposition = 'applied')"
        ):
            out.append(
                Violation(
                    "an order is paid only with money received",
                    r["order_id"],
                    f"case {r['case_id']}: no payment in the ledger",
                )
            )
        for r in await conn.fetch(
            "SELECT a.case_id, (a.detail->>'balance_fen')::bigint AS before,"
            "       (b.detail->>'balance_fen')::bigint AS after"
            " FROM case_events a JOIN case_events b USING (case_id)"
            " WHERE a.event_type = 'loss_registered' AND b.event_type = 'new_card_activated'"
            "   AND a.detail ? 'balance_fen'"
            "   AND (a.detail->>'balance_fen') IS DISTINCT FROM (b.detail->>'balance_fen')"
        ):
            out.append(
                Violation(
                    "a reissue never changes a balance",
                    r["case_id"],
                    f"{r['before']} fen before, {r['after']} fen after",
                )
            )
        reports = {
            r["case_id"]: r
            for r in await conn.fetch(
                "SELECT l.case_id, l.status AS report, c.status AS card,"
                # What the bank last answered this case (its accounts are its own).
                " (SELECT e.detail->>'status' FROM case_events e WHERE e.case_id = l.case_id"
                "  AND e.event_type IN ('bank_account_frozen', 'bank_account_unfrozen')"
                "  ORDER BY e.id DESC LIMIT 1) AS bank,"
                " EXISTS (SELECT 1 FROM loss_reports n WHERE n.card_number = l.card_number"
                "         AND (n.reported_at, n.report_number) > (l.reported_at, l.report_number))"
                "  AS later"
                " FROM loss_reports l JOIN cards c USING (card_number)"
            )
        }
        closed_events = {
            r["case_id"]: r["outcome"]
            for r in await conn.fetch(
                "SELECT case_id, detail->>'outcome' AS outcome FROM case_events"
                " WHERE event_type = 'case_closed'"
            )
        }
        payments = await conn.fetch("SELECT case_id, order_id, status FROM payment_orders")
        productions = await conn.fetch(
            "SELECT p.case_id, p.order_id, p.status, c.status AS new_card"
            " FROM production_orders p LEFT JOIN cards c ON c.card_number = p.new_card_number"
        )

    # A frozen card is held by a case that is still open.
    for r in frozen:
        case = cases.get(r["case_id"]) if r["case_id"] else None
        if r["case_id"] and (case is None or not case.running):
            case = await confirmed(r["case_id"])
        if case is None or not case.running:
            out.append(
                Violation(
                    "a frozen card is held by an open case",
                    r["card_number"],
                    "no open loss report"
                    if r["case_id"] is None
                    else f"its report's case {r['case_id']} is not running",
                )
            )

    # Money: every payment received is applied to its fee or refunded (or being refunded).
    for r in money:
        received, applied, refunded, pending = (
            r["received"],
            r["applied"],
            r["refunded"],
            r["pending"],
        )
        if received != applied + refunded + pending:
            out.append(
                Violation(
                    "money received = applied + refunded + refund pending",
                    r["case_id"],
                    f"received {received} fen, applied {applied}, refunded {refunded}, "
                    f"pending {pending}",
                )
            )
        for ref in r["unaccounted"] or []:
            out.append(
                Violation(
                    "every payment is applied or refunded",
                    ref,
                    f"case {r['case_id']}: neither applied to a paid order nor refunded",
                )
            )

    # Every open case has a running workflow, and every running workflow an open case. A
    # case records its close, then shows its outcome and finishes the events still being
    # handled: for a moment it runs, closed in the registry (waited out here).
    for case_id, outcome in closed_events.items():
        case = cases.get(case_id)
        if case is not None and case.running:
            case = await _closing(case_id)
        if case is not None and case.running:
            out.append(Violation("closed in the registry, running in Temporal", case_id, outcome))
    for case_id in reports.keys() - closed_events.keys():
        case = cases.get(case_id)
        if case is None or not case.running:
            case = await confirmed(case_id)
        if case is None:
            out.append(
                Violation(
                    "every open case has a running workflow",
                    case_id,
                    "open in the registry, no workflow in Temporal",
                )
            )
        elif not case.running and case.stage not in (*_EARLY_ENDS, "COMPLETED"):
            out.append(
                Violation(
                    "every case reaches an end", case_id, f"workflow closed in stage {case.stage}"
                )
            )

    # Terminal cases: money and registry match the outcome.
    for r in payments:
        case = cases.get(r["case_id"])
        if case is None or case.running:
            continue
        if r["status"] == "open":
            out.append(
                Violation(
                    "no payment order left open",
                    r["order_id"],
                    f"case {case.workflow_id} closed {case.stage}",
                )
            )
        if case.stage in _EARLY_ENDS and r["status"] == "paid":
            out.append(
                Violation(
                    "every paid fee of an early end is refunded",
                    r["order_id"],
                    f"case {case.workflow_id} {case.stage}, order still paid",
                )
            )
    for r in productions:
        case = cases.get(r["case_id"])
        if case is None or case.running:
            continue
        if r["status"] == "ordered":
            out.append(
                Violation(
                    "no production order left running",
                    r["order_id"],
                    f"case {case.workflow_id} closed {case.stage}",
                )
            )
        if case.stage in _EARLY_ENDS and r["new_card"] not in (None, "void"):
            out.append(
                Violation(
                    "an early end voids the new card", r["order_id"], f"new card is {r['new_card']}"
                )
            )
    for case_id, case in cases.items():
        row = reports.get(case_id)
        if case.running or row is None or row["later"]:
            continue  # a later case for the same card owns the card's state now
        void = ("closed_without_reissue", "void")
        expected = {
            "COMPLETED": {("resolved_by_reissue", "replaced")},
            "WITHDRAWN": {("lifted", "active")},
            "LAPSED": {("lifted", "active"), void},
            "REJECTED": {void},
            # A cancellation leaves a valid temporary report standing, the card frozen.
            "CANCELLED": {("lifted", "active"), ("standing", "frozen"), void},
        }.get(case.stage or "")
        # The bank follows the registry (as it last answered the case): unfrozen with a
        # lifted report, frozen with a void card or a standing report.
        bank = {"active": "active", "void": "frozen", "frozen": "frozen"}.get(row["card"])
        if expected is not None and (
            (row["report"], row["card"]) not in expected
            or (bank is not None and row["bank"] not in (None, "none", bank))
        ):
            out.append(
                Violation(
                    "the registry matches the outcome",
                    case_id,
                    f"{case.stage}: loss report {row['report']}, card {row['card']}, "
                    f"bank account {row['bank'] or '-'}",
                )
            )

    # History against registry and outbox, case by case, for recently closed cases.
    if verify_closed_since is not None:
        for case in cases.values():
            if case.running or case.closed_at is None or case.closed_at < verify_closed_since:
                continue
            for problem in await verify(client, pool, case.workflow_id):
                out.append(Violation("history and registry agree", case.case_id, problem))
    return out
