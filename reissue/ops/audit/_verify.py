"""Cross-checking a case's history against PostgreSQL: the registry, the payment and
production orders, the notification outbox."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import asyncpg
from pydantic import BaseModel
from temporalio.client import Client, WorkflowHistory
from temporalio.converter import DataConverter

from reissue.ops.audit._history import HistoryReader, typed
from reissue.schemas.activities import (
    ACTIVATE_NEW_CARD,
    CANCEL_CARD_PRODUCTION,
    CANCEL_PAYMENT_ORDER,
    FREEZE_CARD,
    LIFT_LOSS_REPORT,
    NOTIFY,
    OPEN_PAYMENT_ORDER,
    ORDER_CARD_PRODUCTION,
    RECEIVE_PAYMENT,
    RECORD_CARD_PRODUCED,
    RECORD_PRODUCTION_FAILED,
    REFUND_PAYMENT,
    REGISTER_LOSS,
    VOID_OLD_CARD,
    ActivityDef,
    CardProducedInput,
    CaseStep,
    Done,
    FreezeResult,
    LiftResult,
    NotifyInput,
    OrderInput,
    PaymentOrder,
    PaymentReceipt,
    ProductionFailedInput,
    ProductionOrder,
    RefundResult,
    RegisterLossInput,
    RegisterLossResult,
    definitions,
)
from reissue.schemas.identifiers import mask_card_number

__all__ = ["verify"]

In = TypeVar("In", bound=CaseStep)
Out = TypeVar("Out", bound=BaseModel)


@dataclass
class _Facts:
    """What the history says happened to the registry, payments and the outbox."""

    case_id: str = ""
    reported_at: datetime | None = None
    card: str | None = None
    frozen_as: str | None = None
    lifted: bool = False
    standing: bool = False  # the case ended with its temporary report left standing
    new_card: str | None = None
    done: set[str] = field(default_factory=set)  # the activities the case completed
    order_status: dict[str, str] = field(default_factory=dict)
    production_status: dict[str, str] = field(default_factory=dict)
    notices: dict[str, str] = field(default_factory=dict)

    def loss_registered(self, arg: RegisterLossInput, r: RegisterLossResult) -> None:
        self.reported_at, self.card = r.reported_at, arg.card_number

    def card_frozen(self, _: CaseStep, r: FreezeResult) -> None:
        self.frozen_as = r.status

    def report_lifted(self, _: CaseStep, r: LiftResult) -> None:
        self.standing = r.standing_until is not None
        self.lifted = r.changed and not self.standing

    def payment_order(self, _: CaseStep, r: PaymentOrder) -> None:
        self.order_status[r.order_id] = r.status

    def payment_received(self, _: CaseStep, r: PaymentReceipt) -> None:
        if r.order:
            self.order_status[r.order.order_id] = r.order.status

    def refunded(self, _: CaseStep, r: RefundResult) -> None:
        if r.order_id:
            self.order_status[r.order_id] = "refunded"

    def production_ordered(self, _: CaseStep, r: ProductionOrder) -> None:
        self.production_status[r.order_id] = r.status
        self.new_card = r.new_card_number or self.new_card

    def card_produced(self, arg: CardProducedInput, _: Done) -> None:
        self.production_status[arg.order_id] = "produced"
        self.new_card = arg.new_card_number

    def production_failed(self, arg: ProductionFailedInput, _: Done) -> None:
        self.production_status[arg.order_id] = "failed"

    def production_cancelled(self, arg: OrderInput, _: Done) -> None:
        # (an order the bureau failed stays failed)
        if self.production_status.get(arg.order_id) != "failed":
            self.production_status[arg.order_id] = "cancelled"

    def notified(self, arg: NotifyInput, _: Done) -> None:
        self.notices[arg.key] = arg.template


_Note = Callable[[_Facts, Any, Any], None]


def _noting(
    activity: ActivityDef[In, Out], note: Callable[[_Facts, In, Out], None]
) -> tuple[ActivityDef[Any, Any], _Note]:
    return activity, note


# What each step tells of the registry, payments and the outbox (the rest: only that it
# was done).
_NOTES: dict[ActivityDef[Any, Any], _Note] = dict(
    [
        _noting(REGISTER_LOSS, _Facts.loss_registered),
        _noting(FREEZE_CARD, _Facts.card_frozen),
        _noting(LIFT_LOSS_REPORT, _Facts.report_lifted),
        _noting(OPEN_PAYMENT_ORDER, _Facts.payment_order),
        _noting(CANCEL_PAYMENT_ORDER, _Facts.payment_order),
        _noting(RECEIVE_PAYMENT, _Facts.payment_received),
        _noting(REFUND_PAYMENT, _Facts.refunded),
        _noting(ORDER_CARD_PRODUCTION, _Facts.production_ordered),
        _noting(RECORD_CARD_PRODUCED, _Facts.card_produced),
        _noting(RECORD_PRODUCTION_FAILED, _Facts.production_failed),
        _noting(CANCEL_CARD_PRODUCTION, _Facts.production_cancelled),
        _noting(NOTIFY, _Facts.notified),
    ]
)


async def _facts(history: WorkflowHistory, converter: DataConverter) -> _Facts:
    dec = HistoryReader(converter)
    facts = _Facts()
    first = history.events[0].workflow_execution_started_event_attributes
    facts.case_id = (
        f"{history.workflow_id}:{first.first_execution_run_id or first.original_execution_run_id}"
    )
    for ev in history.events:
        step = await dec.step(ev)
        if step is None:
            continue
        name, arg, result = step
        facts.done.add(name)
        activity = definitions().get(name)
        if activity is None or activity not in _NOTES:
            continue
        read = typed(activity, arg, result)
        if read is not None:
            _NOTES[activity](facts, *read)
    return facts


async def verify(client: Client, pool: asyncpg.Pool, workflow_id: str) -> list[str]:
    """Every disagreement between the case's history and PostgreSQL; empty when they agree."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    f = await _facts(history, client.data_converter)
    problems: list[str] = []
    async with pool.acquire() as conn:
        report = await conn.fetchrow(
            "SELECT reported_at, status FROM loss_reports WHERE case_id = $1", f.case_id
        )
        if f.reported_at is not None:
            if report is None:
                problems.append("loss report: in the history, missing in the registry")
            else:
                if report["reported_at"] != f.reported_at:
                    problems.append(
                        f"loss report time: history {f.reported_at.isoformat()}, "
                        f"registry {report['reported_at'].isoformat()}"
                    )
        # A later report on the card (a re-application keeps the first cut-off: the
        # report number orders those) belongs to a later case, which owns the card now.
        later = (
            "SELECT EXISTS (SELECT 1 FROM loss_reports n WHERE n.card_number = $1"
            " AND (n.reported_at, n.report_number) > (SELECT reported_at, report_number"
            "  FROM loss_reports WHERE case_id = $2))"
        )
        if f.card and not await conn.fetchval(later, f.card, f.case_id):
            expected = (
                "replaced"
                if ACTIVATE_NEW_CARD.name in f.done
                else "void"
                if VOID_OLD_CARD.name in f.done
                else "active"
                if f.lifted
                else f.frozen_as
            )
            actual = await conn.fetchval("SELECT status FROM cards WHERE card_number = $1", f.card)
            if f.standing and report is not None and report["status"] == "lifted":
                expected = "active"  # it stood, then ran out and the registry lifted it
            if expected and actual != expected:
                problems.append(
                    f"old card {mask_card_number(f.card)}: history says {expected}, registry {actual}"
                )
            if report is not None:
                want = (
                    "resolved_by_reissue"
                    if ACTIVATE_NEW_CARD.name in f.done
                    else "closed_without_reissue"
                    if VOID_OLD_CARD.name in f.done
                    else "lifted"
                    if f.lifted
                    else "standing"
                    if f.standing
                    else "open"
                )
                if f.standing and report["status"] == "lifted":
                    want = "lifted"  # (ran out since)
                if report["status"] != want:
                    problems.append(
                        f"loss report: history says {want}, registry {report['status']}"
                    )
        # A new card later reported lost belongs to that later case.
        if f.new_card and not await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM loss_reports WHERE card_number = $1)", f.new_card
        ):
            expected_new = (
                "active"
                if ACTIVATE_NEW_CARD.name in f.done
                else "void"
                if CANCEL_CARD_PRODUCTION.name in f.done
                else "inactive_new"
            )
            actual_new = await conn.fetchval(
                "SELECT status FROM cards WHERE card_number = $1", f.new_card
            )
            if actual_new != expected_new:
                problems.append(
                    f"new card {mask_card_number(f.new_card)}: history says {expected_new}, registry {actual_new}"
                )
        for label, table, in_history in (
            ("payment order", "payment_orders", f.order_status),
            ("production order", "production_orders", f.production_status),
        ):
            in_db = {
                r["order_id"]: r["status"]
                for r in await conn.fetch(
                    f"SELECT order_id, status FROM {table} WHERE case_id = $1",
                    f.case_id,
                )
            }
            for order_id in in_history.keys() | in_db.keys():
                if in_history.get(order_id) != in_db.get(order_id):
                    problems.append(
                        f"{label} {order_id}: history says {in_history.get(order_id)}, "
                        f"database {in_db.get(order_id)}"
                    )
        sent = {
            r["dedupe_key"]: r["template"]
            for r in await conn.fetch(
                "SELECT dedupe_key, template FROM notifications WHERE case_id = $1", f.case_id
            )
        }
        for key in f.notices.keys() - sent.keys():
            problems.append(
                f"notification {f.notices[key]} ({key}): in the history, not in the outbox"
            )
        for key in sent.keys() - f.notices.keys():
            problems.append(f"notification {sent[key]} ({key}): in the outbox, not in the history")
    return problems
