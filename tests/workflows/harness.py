"""The fast layer's stack: the real workflows on the time-skipping dev server, a worker
whose activities are the fakes (`tests.workflows.fakes`), and the probes a test asserts
with — what a person or operations would see, and every promise the system makes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from reissue.client import ReissueClient
from reissue.ops.audit._verify import _facts
from reissue.ops.invariants import Violation
from reissue.schemas.activities import ACTIVATE_NEW_CARD, CANCEL_CARD_PRODUCTION, VOID_OLD_CARD
from reissue.schemas.case import CaseStatus
from reissue.schemas.enums import InsuredCategory, Stage
from reissue.schemas.policy import CasePolicy
from reissue.schemas.visibility import CASE_STAGE
from tests.support import (
    DEFAULT_BALANCE_FEN,
    Cases,
    eventually,
    random_card_number,
    random_resident_id,
)
from tests.workflows.fakes import FakeSystem, Hold

__all__ = ["FakeStack"]

_EARLY_ENDS = ("WITHDRAWN", "REJECTED", "LAPSED", "CANCELLED")


@dataclass
class FakeStack(Cases):
    """Cases of one test on their own task queue, against one `FakeSystem`."""

    env: WorkflowEnvironment
    client: ReissueClient
    fakes: FakeSystem
    policy: CasePolicy = field(default_factory=CasePolicy)

    @property
    def task_queue(self) -> str:
        return self.client.task_queue

    # ------------------------------------------------------------------ setting up

    async def enrol(
        self,
        *,
        category: InsuredCategory = InsuredCategory.URBAN_EMPLOYEE,
        district: str = "500103",
        balance_fen: int = DEFAULT_BALANCE_FEN,
        bank: bool = True,
    ) -> tuple[str, str]:
        resident_id, card = random_resident_id(), random_card_number()
        self.fakes.enrol(
            card_number=card, resident_id=resident_id, balance_fen=balance_fen, bank=bank
        )
        return resident_id, card

    async def use_policy(self, *, district: str | None = None, **changes: Any) -> CasePolicy:
        version = f"T-{uuid.uuid4().hex[:10]}"
        policy = CasePolicy().model_copy(update={**changes, "version": version})
        self.fakes.use_policy(policy, district=district)
        if district is None:
            self.policy = policy
        return policy

    # ------------------------------------------------------------------ what one sees

    async def templates(self, case_id: str) -> list[str]:
        return self.fakes.templates(case_id)

    def card_status(self, card: str) -> str:
        return self.fakes.card(card)

    def bank_status(self, card: str) -> str | None:
        return self.fakes.bank.accounts.get(card)

    def assert_old_card_void(self, card: str, case_id: str) -> None:
        """A formal case ended without a new card: the loss stands, the card is void for good."""
        assert self.fakes.card(card) == "void"
        assert self.bank_status(card) == "frozen"
        assert self.fakes.report_of(case_id).status == "closed_without_reissue"
        assert not self.fakes.authorised(card)

    async def awaiting_payment(self, **application: Any) -> tuple[str, str]:
        """A case approved and waiting for its fee: (workflow ID, payment order ID)."""
        _, case, report = await self.open_case(**application)
        await self.submit(case, report)
        await self.approve(case)
        st = await self.wait_for(case, Stage.AWAITING_PAYMENT)
        assert st.fee is not None and st.fee.order_id is not None
        return case, st.fee.order_id

    async def case_id(self, case: str) -> str:
        return (await self.status(case)).case_id

    @asynccontextmanager
    async def holding(self, step: str, *, after: bool = False) -> AsyncIterator[Hold]:
        """Hold the step `step` mid-flight (`FakeSystem.hold`)."""
        async with self.fakes.hold(step, after=after) as held:
            yield held

    async def reached(self, held: Hold, *, timeout: float = 30) -> None:
        """Wait until the held step is running (as an activity) and waits."""

        def waiting() -> bool:
            return held.reached.is_set()

        await eventually(waiting, timeout, every=0.01)

    async def settle(self, case: str, *, timeout: float = 30) -> CaseStatus | None:
        """Wait until the case has closed, or waits with nothing in flight: no workflow task
        to run, no activity pending or running (local ones included), twice in a row. A case
        the registry has closed must close in Temporal too (it lets the events being handled
        finish first, on a short timer). The last status (None: the case never opened)."""
        handle = self.client.handle(case)
        quiet = 0

        async def still() -> bool:
            nonlocal quiet
            desc = await handle.describe()
            if desc.status is not WorkflowExecutionStatus.RUNNING:
                return True
            raw = desc.raw_description
            closed = f"{desc.id}:{desc.run_id}" in {
                e.case_id for e in self.fakes.events if e.event_type == "case_closed"
            }
            busy = (
                closed
                or raw.HasField("pending_workflow_task")
                or len(raw.pending_activities) > 0
                or self.fakes.in_flight > 0
            )
            quiet = 0 if busy else quiet + 1
            return quiet >= 2

        await eventually(still, timeout, every=0.02)
        try:
            return await self.status(case)
        except Exception:  # a refused case has no status
            return None

    # ------------------------------------------------------------------ the promises

    async def violations(self) -> list[Violation]:
        """Every broken promise across this test's cases: the invariants
        `reissue check-invariants` checks in production, against the fakes' records, and
        each closed case's history against them (`reissue audit verify`)."""
        f = self.fakes
        out: list[Violation] = []

        def broken(rule: str, subject: str, detail: str) -> None:
            out.append(Violation(rule, subject, detail))

        temporal = self.client.temporal
        running: dict[str, bool] = {}
        stages: dict[str, str | None] = {}
        query = f"WorkflowType = 'CardReissueWorkflow' AND TaskQueue = '{self.task_queue}'"
        listed = {f"{w.id}:{w.run_id}" async for w in temporal.list_workflows(query)}
        for case_id in listed | {r.case_id for r in f.reports.values()}:
            workflow_id, _, run_id = case_id.partition(":")
            try:
                d = await temporal.get_workflow_handle(workflow_id, run_id=run_id).describe()
            except RPCError as e:
                if e.status is not RPCStatusCode.NOT_FOUND:
                    raise
                continue
            running[case_id] = d.status is WorkflowExecutionStatus.RUNNING
            stages[case_id] = d.typed_search_attributes.get(CASE_STAGE)

        active: dict[str, int] = {}
        for card in f.cards.values():
            active[card.account_id] = active.get(card.account_id, 0) + (card.status == "active")
        for account, n in active.items():
            if n > 1:
                broken("one active card per account", account, f"{n} active cards")
        for r in f.reports.values():
            card = f.cards[r.card_number]
            if r.status == "open" and card.status not in ("frozen", "void"):
                broken(
                    "a card under an open loss report is unusable",
                    card.number,
                    f"card {card.status} under the report of {r.case_id}",
                )
        for card in f.cards.values():
            if card.status != "frozen":
                continue
            holders = [
                r.case_id
                for r in f.reports.values()
                if r.card_number == card.number and r.status == "open"
            ]
            standing = any(
                r.card_number == card.number and r.status == "standing" for r in f.reports.values()
            )
            if not standing and (not holders or not running.get(holders[0])):
                broken("a frozen card is held by an open case", card.number, f"{holders}")

        by_case: dict[str, list[str]] = {}
        for p in f.payments.values():
            by_case.setdefault(p.case_id, []).append(p.payment_ref)
        for case_id, refs in by_case.items():
            received = applied = refunded = pending = 0
            for ref in refs:
                p = f.payments[ref]
                received += p.amount_fen
                order = f.orders.get(p.order_id)
                paid = (
                    p.disposition == "applied"
                    and order is not None
                    and order.payment_ref == ref
                    and order.status == "paid"
                )
                applied += p.amount_fen if paid else 0
                refund = f.refunds.get(ref)
                if refund is not None:
                    refunded += refund.amount_fen if refund.status == "refunded" else 0
                    pending += refund.amount_fen if refund.status == "pending" else 0
                if refund is None and not paid:
                    broken(
                        "every payment is applied or refunded",
                        ref,
                        f"case {case_id}: neither applied to a paid order nor refunded",
                    )
            if received != applied + refunded + pending:
                broken(
                    "money received = applied + refunded + refund pending",
                    case_id,
                    f"received {received}, applied {applied}, refunded {refunded}, "
                    f"pending {pending}",
                )
        for o in f.orders.values():
            if o.status in ("paid", "refunded") and (
                o.payment_ref not in f.payments
                or f.payments[o.payment_ref].disposition != "applied"
            ):
                broken("an order is paid only with money received", o.order_id, o.case_id)

        closed = {
            e.case_id: e.detail.get("outcome") for e in f.events if e.event_type == "case_closed"
        }
        for case_id, outcome in closed.items():
            if running.get(case_id):
                broken("closed in the registry, running in Temporal", case_id, str(outcome))
        for r in f.reports.values():
            if r.case_id in closed:
                continue
            if r.case_id not in running:
                broken("every open case has a running workflow", r.case_id, "no workflow")
            elif not running[r.case_id] and stages[r.case_id] not in (*_EARLY_ENDS, "COMPLETED"):
                broken("every case reaches an end", r.case_id, f"closed in {stages[r.case_id]}")

        for case_id, is_running in running.items():
            if is_running:
                continue
            stage = stages[case_id] or ""
            for o in f.orders_of(case_id):
                if o.status == "open":
                    broken("no payment order left open", o.order_id, f"{case_id} closed {stage}")
                if stage in _EARLY_ENDS and o.status == "paid":
                    broken("every paid fee of an early end is refunded", o.order_id, stage)
            for p in f.productions_of(case_id):
                if p.status == "ordered":
                    broken("no production order left running", p.order_id, stage)
                new = f.cards.get(p.new_card_number or "")
                if stage in _EARLY_ENDS and new is not None and new.status != "void":
                    broken("an early end voids the new card", p.order_id, new.status)
            report = next((r for r in f.reports.values() if r.case_id == case_id), None)
            if report is None or self._later_report(report.card_number, case_id):
                continue
            card = f.cards[report.card_number]
            void = ("closed_without_reissue", "void")
            expected = {
                "COMPLETED": {("resolved_by_reissue", "replaced")},
                "WITHDRAWN": {("lifted", "active")},
                "LAPSED": {("lifted", "active"), void},
                "REJECTED": {void},
                "CANCELLED": {("lifted", "active"), ("standing", "frozen"), void},
            }.get(stage)
            bank = {"active": "active", "void": "frozen", "frozen": "frozen"}.get(card.status)
            at_bank = f.bank.accounts.get(card.number)
            if expected is not None and (
                (report.status, card.status) not in expected
                or (bank is not None and at_bank not in (None, bank))
            ):
                broken(
                    "the registry matches the outcome",
                    case_id,
                    f"{stage}: loss report {report.status}, card {card.status}, bank {at_bank}",
                )
            for problem in await self._verify(case_id):
                broken("history and registry agree", case_id, problem)
        return out

    def _later_report(self, card_number: str, case_id: str) -> bool:
        """A later case for the same card owns the card's state now."""
        mine = next(r for r in self.fakes.reports.values() if r.case_id == case_id)
        return any(
            (r.reported_at, r.number) > (mine.reported_at, mine.number)
            for r in self.fakes.reports.values()
            if r.card_number == card_number
        )

    async def _verify(self, case_id: str) -> list[str]:
        """The case's history against the fakes' records (as `reissue audit verify` reads a
        history against PostgreSQL)."""
        f = self.fakes
        workflow_id, _, run_id = case_id.partition(":")
        handle = self.client.temporal.get_workflow_handle(workflow_id, run_id=run_id)
        facts = await _facts(await handle.fetch_history(), self.client.temporal.data_converter)
        problems: list[str] = []
        report = next((r for r in f.reports.values() if r.case_id == case_id), None)
        if facts.reported_at is not None and (
            report is None or report.reported_at != facts.reported_at
        ):
            problems.append(f"loss report: history {facts.reported_at}, registry {report}")
        if facts.card and report is not None and not self._later_report(facts.card, case_id):
            done = facts.done
            expected = (
                "replaced"
                if ACTIVATE_NEW_CARD.name in done
                else "void"
                if VOID_OLD_CARD.name in done
                else "active"
                if facts.lifted
                else facts.frozen_as
            )
            if expected and f.card(facts.card) != expected:
                problems.append(f"old card: history says {expected}, registry {f.card(facts.card)}")
        if facts.new_card and not any(r.card_number == facts.new_card for r in f.reports.values()):
            expected_new = (
                "active"
                if ACTIVATE_NEW_CARD.name in facts.done
                else "void"
                if CANCEL_CARD_PRODUCTION.name in facts.done
                else "inactive_new"
            )
            if f.card(facts.new_card) != expected_new:
                problems.append(
                    f"new card: history says {expected_new}, registry {f.card(facts.new_card)}"
                )
        for label, in_history, kept in (
            (
                "payment order",
                facts.order_status,
                {o.order_id: o.status for o in f.orders_of(case_id)},
            ),
            (
                "production order",
                facts.production_status,
                {p.order_id: p.status for p in f.productions_of(case_id)},
            ),
        ):
            for order_id in in_history.keys() | kept.keys():
                if in_history.get(order_id) != kept.get(order_id):
                    problems.append(
                        f"{label} {order_id}: history says {in_history.get(order_id)}, "
                        f"records {kept.get(order_id)}"
                    )
        sent = {n.key: n.template for n in f.notices if n.case_id == case_id}
        if sent != facts.notices:
            problems.append(f"notifications: history {facts.notices}, outbox {sent}")
        return problems
