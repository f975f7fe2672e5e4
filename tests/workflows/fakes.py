"""The system of record and the partner systems in memory, for the fast layer.

`FakeSystem` keeps what PostgreSQL, the bank, the card bureau and the payment platform
would keep for the cases of one test — cards and loss reports, payment orders at our
side and at the platform, the ledger and its refunds, production orders, the bank's
accounts, the notification outbox and the audit log — and offers one activity for
every `ActivityDef` of `reissue.schemas.activities`, registered under the real name
(`@activity.defn(name=...)`) and typed with the real input and result models. Steps on
our own registry are also registered as the local activities the workflow runs them as
(`<name>.local`, answering a `LocalRun`), as the real worker does.

The fakes keep the real activities' promises that the workflow relies on: every step is
idempotent per key (a retried or duplicated step finds its own earlier result); refusals
are the same typed, non-retryable `ApplicationError`s; a partner that is down fails with
the retryable `PartnerUnavailable`. Pure rules the real activities share with others (the
pre-check, the reported-time window, district codes, notification texts, keyed hashes) are
the real functions. What the real activities do against PostgreSQL and the partners'
HTTP APIs is proven by the real-stack tests (tests/activities, tests/partners, tests/e2e).

A test can look at what a person or operations would see (`card`, `notices`, `events`,
`ledger`, the platform's and the bureau's orders), make a partner misbehave (`bank.down`,
`bureau.refuse`, `platform.lost_answers`, ...), pay at the platform as the payer would,
and hold a step mid-flight (`hold`).
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from reissue.activities.notifications import render
from reissue.activities.registry import _check_reported_at
from reissue.schemas import activities as a
from reissue.schemas.enums import ProductionMode
from reissue.schemas.errors import (
    CARD_ALREADY_REPORTED,
    CARD_NOT_ACTIVE,
    CARD_NOT_FOUND,
    CARD_NUMBER_CONFLICT,
    CARD_OWNER_MISMATCH,
    CASE_ID_MISMATCH,
    FEE_SCHEDULE_UNKNOWN,
    INVALID_CASE_INPUT,
    ORDER_STATE,
    PARTNER_UNAVAILABLE,
    business_error,
)
from reissue.schemas.events import LEDGER_MAX_FEN, PaymentConfirmation
from reissue.schemas.hashing import case_workflow_id, person_key
from reissue.schemas.identifiers import mask_card_number, normalise_district
from reissue.schemas.policy import CasePolicy
from reissue.workers.settings import DEV_HASH_SECRET

__all__ = ["Card", "FakeSystem", "Hold", "Notice"]

R = TypeVar("R", bound=BaseModel)
In = TypeVar("In", bound=a.CaseStep)

_BEIJING = ZoneInfo("Asia/Shanghai")
FEE_SCHEDULES = {"CQ-2006": 2500}
EXEMPTIONS = {("CQ-2006", "minimum_living_allowance"), ("CQ-2006", "special_care")}


def _day(at: datetime) -> str:
    return at.astimezone(_BEIJING).strftime("%Y%m%d")


def _unavailable(partner: str) -> ApplicationError:
    return ApplicationError(f"{partner}: unavailable", type=PARTNER_UNAVAILABLE)


# ----------------------------------------------------------------------------- the records


@dataclass
class Card:
    number: str
    account_id: str
    person_key: str
    status: str  # active, frozen, void, replaced, inactive_new
    balance_fen: int
    bank: bool  # a third-generation card: the bank holds an account for it
    card_id_code: str | None = None
    replaced_by: str | None = None


@dataclass
class LossReport:
    number: str
    case_id: str
    card_number: str
    kind: str  # temporary, formal
    status: str  # open, standing, continued, lifted, closed_without_reissue, resolved_by_reissue
    reported_at: datetime
    close_reason: str | None = None
    valid_until: datetime | None = None  # a temporary report's end


@dataclass
class Order:
    """Our payment order."""

    order_id: str
    case_id: str
    amount_fen: int
    status: str  # open, paid, cancelled, refunded
    due_at: datetime
    payment_ref: str | None = None
    platform_ref: str | None = None

    def model(self) -> a.PaymentOrder:
        return a.PaymentOrder(
            order_id=self.order_id,
            amount_fen=self.amount_fen,
            status=self.status,
            payment_ref=self.payment_ref,
            platform_ref=self.platform_ref,
        )


@dataclass
class Payment:
    """A payment in the ledger."""

    payment_ref: str
    case_id: str
    order_id: str
    amount_fen: int
    disposition: str  # applied, refund
    reason: str | None


@dataclass
class Refund:
    refund_id: str
    payment_ref: str
    case_id: str
    amount_fen: int
    status: str  # pending, refunded
    reason: str
    platform_ref: str | None = None


@dataclass
class Production:
    order_id: str
    case_id: str
    account_id: str
    mode: ProductionMode
    status: str  # ordered, produced, failed, cancelled
    new_card_number: str | None = None
    sent: bool = False
    failure_reason: str | None = None


@dataclass
class Notice:
    key: str
    case_id: str
    recipient: str
    recipient_ref: str
    template: str
    params: dict[str, str]
    message: str
    at: datetime


@dataclass
class Event:
    key: str
    case_id: str
    event_type: str
    actor: str
    detail: dict[str, Any]
    at: datetime


# ----------------------------------------------------------------------------- the partners


@dataclass
class Bank:
    """The cooperating bank: an account per third-generation card."""

    accounts: dict[str, str] = field(default_factory=dict)  # card number -> active/frozen/closed
    down: bool = False


@dataclass
class PlatformOrder:
    order_id: str
    case: str  # the workflow ID, as the platform is told
    amount_fen: int
    platform_ref: str
    status: str = "open"  # open, closed, paid
    payment: PaymentConfirmation | None = None


@dataclass
class Platform:
    """The payment platform: orders opened there, paid by the payer, closed, refunded."""

    orders: dict[str, PlatformOrder] = field(default_factory=dict)
    refunds: dict[str, tuple[str, int, str]] = field(default_factory=dict)  # id -> ref, fen, pref
    down: bool = False
    lost_answers: bool = False  # it does what it was asked; the answer never comes back
    asked: Counter[str] = field(default_factory=Counter)  # order openings per order ID


@dataclass
class Bureau:
    """The card bureau: standard orders sent to it, cancelled there."""

    orders: dict[str, str] = field(default_factory=dict)  # order ID -> ordered/cancelled
    down: bool = False
    refuse: bool = False  # refuses orders as such (the case takes it as a failed production)


@dataclass
class Hold:
    """A step held mid-flight (`FakeSystem.hold`): before it does anything, or `after` it
    did its work, its answer not yet back."""

    step: str
    after: bool = False
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait(self, *, heartbeat: bool) -> None:
        self.reached.set()
        while not self.released.is_set():
            if heartbeat:
                activity.heartbeat()
            with suppress(TimeoutError):
                await asyncio.wait_for(self.released.wait(), timeout=1)


# ----------------------------------------------------------------------------- the system


class FakeSystem:
    """The registry, the ledger, the outbox, the audit log and the partners, in memory."""

    def __init__(self, *, secret: str = DEV_HASH_SECRET) -> None:
        self.secret = secret
        self.cards: dict[str, Card] = {}
        self.reports: dict[str, LossReport] = {}
        self.policies: dict[str | None, tuple[CasePolicy, str]] = {}
        self.use_policy(CasePolicy())
        self.orders: dict[str, Order] = {}
        self.payments: dict[str, Payment] = {}
        self.refunds: dict[str, Refund] = {}  # by payment reference
        self.productions: dict[str, Production] = {}
        self.notices: list[Notice] = []
        self.events: list[Event] = []
        self.affiliation_requests: list[tuple[str, str]] = []  # case ID, org code
        self.submissions: dict[tuple[str, int], tuple[bool, list[str]]] = {}
        self.reviews: list[tuple[str, int, str, str]] = []  # case, round, reviewer, verdict
        self.bank = Bank()
        self.platform = Platform()
        self.bureau = Bureau()
        self.runs: dict[str, tuple[str, str]] = {}  # idempotency key -> (activity, result JSON)
        self.attempts: Counter[str] = Counter()  # activity attempts, by registered name
        self.in_flight = 0  # steps running right now
        self._holds: dict[str, Hold] = {}
        self._seq = itertools.count(1)
        self._cards = itertools.count(1)

    # ------------------------------------------------------------------ setting up

    def use_policy(self, policy: CasePolicy, *, district: str | None = None) -> CasePolicy:
        """Put a policy in force (for a district, or everywhere)."""
        content = policy.model_dump_json()
        self.policies[district] = (policy, hashlib.sha256(content.encode()).hexdigest())
        return policy

    def enrol(
        self,
        *,
        card_number: str,
        resident_id: str,
        balance_fen: int,
        bank: bool = True,
    ) -> Card:
        """A person with one active card (with a bank account when `bank`)."""
        card = Card(
            number=card_number,
            account_id="AC" + card_number,
            person_key=person_key(resident_id, secret=self.secret),
            status="active",
            balance_fen=balance_fen,
            bank=bank,
        )
        self.cards[card_number] = card
        if bank:
            self.bank.accounts[card_number] = "active"
        return card

    def next_card_number(self) -> str:
        return f"R{next(self._cards):08d}"

    # ------------------------------------------------------------------ what one sees

    def snapshot(self) -> dict[str, Any]:
        """Every record (not the attempts made): what "nothing was written" compares."""
        kept = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        return copy.deepcopy({k: v for k, v in kept.items() if k not in ("attempts", "in_flight")})

    def card(self, number: str) -> str:
        """The card's status in the registry."""
        return self.cards[number].status

    def authorised(self, number: str) -> bool:
        """Would a payment with this card go through now?"""
        card = self.cards.get(number)
        return card is not None and card.status == "active"

    def report_of(self, case_id: str) -> LossReport:
        [report] = [r for r in self.reports.values() if r.case_id == case_id]
        return report

    def templates(self, case_id: str) -> list[str]:
        return [n.template for n in self.notices if n.case_id == case_id]

    def messages(self, case_id: str, template: str) -> list[str]:
        return [n.message for n in self.notices if n.case_id == case_id and n.template == template]

    def event_types(self, case_id: str) -> list[str]:
        return [e.event_type for e in self.events if e.case_id == case_id]

    def events_of(self, case_id: str, event_type: str) -> list[Event]:
        return [e for e in self.events if e.case_id == case_id and e.event_type == event_type]

    def orders_of(self, case_id: str) -> list[Order]:
        return [o for o in self.orders.values() if o.case_id == case_id]

    def productions_of(self, case_id: str) -> list[Production]:
        return [p for p in self.productions.values() if p.case_id == case_id]

    def ledger(self, case_id: str) -> list[tuple[str, str, str | None]]:
        """Every payment of the case: its reference, disposition and refund's status."""
        return [
            (p.payment_ref, p.disposition, r.status if (r := self.refunds.get(ref)) else None)
            for ref, p in self.payments.items()
            if p.case_id == case_id
        ]

    # ------------------------------------------------------------------ the payer

    def pay_at_platform(self, order_id: str, *, ref: str | None = None) -> PaymentConfirmation:
        """The payer pays an open order at the platform; what its webhook would carry."""
        order = self.platform.orders[order_id]
        assert order.status == "open", f"the platform refuses to take payment: {order.status}"
        order.status = "paid"
        order.payment = PaymentConfirmation(
            order_id=order_id,
            amount_fen=order.amount_fen,
            payment_ref=ref or f"PP-PAY-{next(self._seq):06d}",
            paid_at=datetime.now(UTC),
        )
        return order.payment

    # ------------------------------------------------------------------ holding a step

    @asynccontextmanager
    async def hold(self, step: str, *, after: bool = False) -> AsyncIterator[Hold]:
        """Hold the step `step` (its name in the idempotency key) mid-flight until the block
        ends: before it writes anything, as a transaction holding its key would in
        PostgreSQL, or `after` it did its work (a slow or lost answer). As a local activity
        it fails at once (retryably), so the case runs it as an activity, which waits;
        `Hold.reached` is set once it waits."""
        held = self._holds[step] = Hold(step, after=after)
        try:
            yield held
        finally:
            held.released.set()
            del self._holds[step]

    # ------------------------------------------------------------------ the activities

    def activities(self) -> list[Callable[..., Any]]:
        """Every activity, as the worker registers it: under the real name, typed as the
        real one, doing the work `_work` names for it; each step on our own registry also
        as its local activity."""
        defs = a.definitions()
        assert defs.keys() == self._work.keys(), "a fake for every activity, and no other"
        return [
            self._activity(defn, local=local)
            for defn in defs.values()
            for local in (False, True)
            if not (local and defn.partner)
        ]

    def _activity(self, defn: a.ActivityDef[Any, Any], *, local: bool) -> Callable[..., Any]:
        async def run(req: Any) -> BaseModel:
            result = await self._step(defn, req, local=local)
            if not local:
                return result
            return a.LocalRun(
                arg=req.model_dump(mode="json"), result=result.model_dump(mode="json")
            )

        name = defn.local_name if local else defn.name
        run.__name__ = run.__qualname__ = name.replace(".", "_")
        run.__annotations__ = {"req": defn.arg, "return": a.LocalRun if local else defn.result}
        return activity.defn(name=name)(run)

    async def _step(self, defn: a.ActivityDef[In, R], req: In, *, local: bool = False) -> R:
        """One attempt of a step: held, or done once per key (the partner's part on every
        attempt until it answers)."""
        self.attempts[defn.local_name if local else defn.name] += 1
        self.in_flight += 1
        try:
            held = self._holds.get(req.step)
            if held is None or held.released.is_set():
                return self._work[defn.name](self, req)  # type: ignore[no-any-return]
            if local:
                raise ApplicationError(f"{req.step} is held", type="Held")
            if not held.after:
                await held.wait(heartbeat=defn.partner)
                return self._work[defn.name](self, req)  # type: ignore[no-any-return]
            result = self._work[defn.name](self, req)
            await held.wait(heartbeat=defn.partner)
            return result  # type: ignore[no-any-return]
        finally:
            self.in_flight -= 1

    def _once(self, req: a.CaseStep, name: str, result: type[R], work: Callable[[], R]) -> R:
        """Write once per key: a retried or duplicated step answers with its first result."""
        done = self.runs.get(req.key)
        if done is not None:
            return result.model_validate_json(done[1])
        value = work()
        self.runs[req.key] = (name, value.model_dump_json())
        return value

    def _audit(
        self, req: a.CaseStep, event_type: str, actor: str, *, key: str | None = None, **detail: Any
    ) -> bool:
        key = key or req.key
        if any(e.key == key for e in self.events):
            return False
        self.events.append(Event(key, req.case_id, event_type, actor, detail, req.at))
        return True

    # --- the registry

    def _register_loss(self, req: a.RegisterLossInput) -> a.RegisterLossResult:
        return self._once(req, "register_loss", a.RegisterLossResult, lambda: self._open(req))

    def _open(self, req: a.RegisterLossInput) -> a.RegisterLossResult:
        if req.case_id.split(":", 1)[0] != case_workflow_id(req.card_number, secret=self.secret):
            raise business_error(
                CASE_ID_MISMATCH, "the case does not run under its card's case ID (the keyed hash)"
            )
        try:
            district = normalise_district(req.district)
        except ValueError as e:
            raise business_error(INVALID_CASE_INPUT, f"invalid case input: district: {e}") from None
        policy, policy_hash = self.policies.get(district) or self.policies[None]
        claimed = req.reported_at or req.opened_at
        _check_reported_at(claimed, req.opened_at, policy)
        reported_at = min(claimed, req.opened_at)
        card = self.cards.get(req.card_number)
        if card is None:
            raise business_error(CARD_NOT_FOUND, "no card with this number in the registry")
        if card.person_key != person_key(req.resident_id, secret=self.secret):
            raise business_error(
                CARD_OWNER_MISMATCH, "the card does not belong to the applicant's ID number"
            )
        held = [
            r for r in self.reports.values() if r.card_number == card.number and r.status == "open"
        ]
        if held:
            raise business_error(
                CARD_ALREADY_REPORTED,
                "the card already has an open loss report, held by case "
                + held[0].case_id.split(":", 1)[0],
            )
        formal = req.channel.formal
        standing = [
            r
            for r in self.reports.values()
            if r.card_number == card.number and r.status == "standing"
        ]
        if standing:  # the card's last case left its report standing: this case takes it over
            if standing[0].valid_until is not None and standing[0].valid_until > req.opened_at:
                reported_at = min(reported_at, standing[0].reported_at)
            standing[0].status = "continued"
        elif card.status == "void":
            earlier = [r.reported_at for r in self.reports.values() if r.card_number == card.number]
            reported_at = min([reported_at, *earlier])
            formal = True
        elif card.status != "active":
            raise business_error(CARD_NOT_ACTIVE, f"the card is {card.status}")
        number = f"LR{_day(reported_at)}{next(self._seq):06d}"
        self.reports[number] = LossReport(
            number,
            req.case_id,
            card.number,
            "formal" if formal else "temporary",
            "open",
            reported_at,
            valid_until=None if formal else reported_at + policy.temporary_report_validity,
        )
        if card.status == "active":  # (a void card stays void)
            card.status = "frozen"
        self._audit(
            req,
            "loss_registered",
            "registry",
            report_number=number,
            card=mask_card_number(card.number),
            formal=formal,
            reported_at=reported_at.isoformat(),
            balance_fen=card.balance_fen,
            policy=policy.version,
            policy_hash=policy_hash,
        )
        return a.RegisterLossResult(
            report_number=number,
            account_id=card.account_id,
            reported_at=reported_at,
            formal=formal,
            policy=policy,
            policy_hash=policy_hash,
        )

    def _freeze_card(self, req: a.FreezeInput) -> a.FreezeResult:
        def work() -> a.FreezeResult:
            card = self.cards.get(req.card_number)
            if card is None:
                raise business_error(CARD_NOT_FOUND, "no card with this number in the registry")
            changed = card.status == "active"
            if changed:
                card.status = "frozen"
            elif card.status not in ("frozen", "void"):
                raise business_error(CARD_NOT_ACTIVE, f"cannot freeze a {card.status} card")
            self._audit(req, "card_frozen", "registry", status=card.status)
            return a.FreezeResult(card_number=card.number, status=card.status, changed=changed)

        return self._once(req, "freeze_card", a.FreezeResult, work)

    def _formalise(self, req: a.FormaliseInput) -> a.Done:
        def work() -> a.Done:
            report = self.reports[req.report_number]
            changed = report.status == "open" and report.kind == "temporary"
            if changed:
                report.kind = "formal"
            self._audit(req, "loss_report_formal", "registry", report_number=report.number)
            return a.Done(changed=changed)

        return self._once(req, "formalise_loss_report", a.Done, work)

    def _lift(self, req: a.LiftLossInput) -> a.LiftResult:
        def work() -> a.LiftResult:
            report = self.reports.get(req.report_number)
            lifted = (
                report is not None
                and report.card_number == req.card_number
                and report.status == "open"
                and report.kind == "temporary"
            )
            if (
                lifted
                and req.reason not in a.OWNER_LIFTS
                and report is not None
                and report.valid_until is not None
                and report.valid_until > req.at  # (the fakes' registry clock: the step's time)
            ):
                report.status, report.close_reason = "standing", req.reason
                self._audit(
                    req,
                    "loss_report_standing",
                    "registry",
                    report_number=req.report_number,
                    reason=req.reason,
                    valid_until=report.valid_until.isoformat(),
                )
                return a.LiftResult(changed=True, standing_until=report.valid_until)
            if lifted:
                assert report is not None
                report.status, report.close_reason = "lifted", req.reason
                card = self.cards[req.card_number]
                if card.status == "frozen":
                    card.status = "active"
            self._audit(
                req,
                "loss_report_lifted" if lifted else "loss_report_not_lifted",
                "registry",
                report_number=req.report_number,
                reason=req.reason,
            )
            return a.LiftResult(changed=lifted)

        return self._once(req, "lift_loss_report", a.LiftResult, work)

    def _void(self, req: a.VoidCardInput) -> a.Done:
        def work() -> a.Done:
            report = self.reports[req.report_number]
            closed = report.status == "open"
            if closed:
                report.status, report.close_reason = "closed_without_reissue", req.reason
            card = self.cards[req.card_number]
            voided = card.status == "frozen"
            if voided:
                card.status = "void"
            self._audit(
                req, "old_card_voided", "registry", report_number=report.number, reason=req.reason
            )
            return a.Done(changed=closed or voided)

        return self._once(req, "void_old_card", a.Done, work)

    def _order_production(self, req: a.ProductionInput) -> a.ProductionOrder:
        def write_down() -> a.ProductionOrder:
            order = Production(
                order_id=f"PD{_day(req.at)}{next(self._seq):06d}",
                case_id=req.case_id,
                account_id=req.account_id,
                mode=req.mode,
                status="ordered",
            )
            self.productions[order.order_id] = order
            if req.mode is ProductionMode.INSTANT:
                new = self.next_card_number()
                self.cards[new] = Card(
                    new,
                    req.account_id,
                    self._owner(req.account_id),
                    "inactive_new",
                    self._balance(req.account_id),
                    bank=False,
                    card_id_code=_chip_code(new),
                )
                order.status, order.new_card_number = "produced", new
            self._audit(
                req, "production_ordered", "registry", order_id=order.order_id, mode=req.mode.value
            )
            return a.ProductionOrder(
                order_id=order.order_id,
                mode=req.mode,
                status=order.status,
                new_card_number=order.new_card_number,
            )

        written = self._once(req, "order_card_production", a.ProductionOrder, write_down)
        order = self.productions[written.order_id]
        if order.mode is ProductionMode.STANDARD and order.status == "ordered" and not order.sent:
            if self.bureau.down:
                raise _unavailable("card bureau")
            if self.bureau.refuse:
                order.status, order.failure_reason = "failed", "refused: card bureau: refused"
            else:
                self.bureau.orders[order.order_id] = "ordered"
                order.sent = True
        return written.model_copy(update={"status": order.status})

    def _owner(self, account_id: str) -> str:
        return next(c.person_key for c in self.cards.values() if c.account_id == account_id)

    def _balance(self, account_id: str) -> int:
        return next(c.balance_fen for c in self.cards.values() if c.account_id == account_id)

    def _produced(self, req: a.CardProducedInput) -> a.Done:
        def work() -> a.Done:
            order = self.productions.get(req.order_id)
            if order is None or order.case_id != req.case_id:
                raise business_error(ORDER_STATE, "no such production order for this case")
            if order.status == "produced":
                return a.Done(changed=False)
            if order.status != "ordered":
                raise business_error(ORDER_STATE, f"production order is {order.status}")
            if req.new_card_number in self.cards:
                raise business_error(CARD_NUMBER_CONFLICT, "the new card number is already in use")
            code = req.card_id_code or _chip_code(req.new_card_number)
            if any(c.card_id_code == code for c in self.cards.values()):
                raise business_error(CARD_NUMBER_CONFLICT, "card_id_code: already on another card")
            self.cards[req.new_card_number] = Card(
                req.new_card_number,
                req.account_id,
                self._owner(req.account_id),
                "inactive_new",
                self._balance(req.account_id),
                bank=False,
                card_id_code=code,
            )
            order.status, order.new_card_number = "produced", req.new_card_number
            self._audit(
                req,
                "card_produced",
                "registry",
                order_id=order.order_id,
                new_card=mask_card_number(req.new_card_number),
            )
            return a.Done(changed=True)

        return self._once(req, "record_card_produced", a.Done, work)

    def _failed(self, req: a.ProductionFailedInput) -> a.Done:
        def work() -> a.Done:
            order = self.productions.get(req.order_id)
            if order is None or order.case_id != req.case_id:
                raise business_error(ORDER_STATE, "no such production order for this case")
            changed = order.status == "ordered"
            if changed:
                order.status, order.failure_reason = "failed", req.reason
            elif order.status != "failed":
                raise business_error(ORDER_STATE, f"production order is {order.status}")
            self._audit(
                req, "production_failed", "card-bureau", order_id=order.order_id, reason=req.reason
            )
            return a.Done(changed=changed)

        return self._once(req, "record_production_failed", a.Done, work)

    def _cancel_production(self, req: a.OrderInput) -> a.Done:
        def work() -> a.Done:
            order = self.productions.get(req.order_id)
            if order is None:
                return a.Done(changed=False)
            changed = order.status in ("ordered", "produced")
            if changed:
                order.status = "cancelled"
            new = self.cards.get(order.new_card_number or "")
            if new is not None and new.status == "inactive_new":
                new.status, changed = "void", True
            self._audit(
                req, "production_cancelled", "registry", order_id=order.order_id, reason=req.reason
            )
            return a.Done(changed=changed)

        done = self._once(req, "cancel_card_production", a.Done, work)
        order = self.productions.get(req.order_id)
        if order is not None and order.sent:
            if self.bureau.down:
                raise _unavailable("card bureau")
            if self.bureau.orders.get(order.order_id) == "ordered":
                self.bureau.orders[order.order_id] = "cancelled"
            self._audit(
                req,
                "production_cancelled_at_bureau",
                "card-bureau",
                key=f"{req.key}:bureau",
                order_id=order.order_id,
                bureau_status=self.bureau.orders.get(order.order_id, "none"),
            )
        return done

    def _activate(self, req: a.ActivateCardInput) -> a.ActivateCardResult:
        def work() -> a.ActivateCardResult:
            old, new = self.cards.get(req.old_card_number), self.cards.get(req.new_card_number)
            if old is None or new is None or old.account_id != new.account_id:
                raise business_error(CARD_NOT_FOUND, "old and new card must share one account")
            if old.status not in ("frozen", "void") or new.status != "inactive_new":
                raise business_error(
                    CARD_NOT_ACTIVE,
                    f"cannot activate: old card {old.status}, new card {new.status}",
                )
            old.status, old.replaced_by, new.status = "replaced", new.number, "active"
            report = self.reports[req.report_number]
            if report.status == "open":
                report.status, report.close_reason = "resolved_by_reissue", "new card collected"
            self._audit(
                req,
                "new_card_activated",
                "registry",
                new_card=mask_card_number(new.number),
                balance_fen=new.balance_fen,
            )
            return a.ActivateCardResult(
                account_id=new.account_id,
                new_card_number=new.number,
                balance_fen=new.balance_fen,
                changed=True,
            )

        return self._once(req, "activate_new_card", a.ActivateCardResult, work)

    # --- the bank

    def _bank_freeze(self, req: a.FreezeInput, *, frozen: bool) -> a.FreezeResult:
        name = "freeze_bank_account" if frozen else "unfreeze_bank_account"
        if req.key in self.runs:
            return a.FreezeResult.model_validate_json(self.runs[req.key][1])
        card = self.cards[req.card_number]
        report = self.reports.get(req.report_number)
        kept = not frozen and report is not None and report.status == "standing"
        if kept:  # the owner's report stands: the account stays frozen with the card
            status, changed = "frozen", False
        elif not card.bank:
            status, changed = "none", False
        else:
            if self.bank.down:
                raise _unavailable("bank")
            before = self.bank.accounts.get(card.number)
            if before is None:
                raise ApplicationError("bank: no account found", type=PARTNER_UNAVAILABLE)
            status = "frozen" if frozen else "active"
            changed = before != status
            self.bank.accounts[card.number] = status

        def record() -> a.FreezeResult:
            self._audit(
                req,
                "bank_account_frozen" if frozen or kept else "bank_account_unfrozen",
                "bank",
                status=status,
                report_number=req.report_number,
            )
            return a.FreezeResult(card_number=card.number, status=status, changed=changed)

        return self._once(req, name, a.FreezeResult, record)

    def _move(self, req: a.MoveBankAccountInput) -> a.BankAccountMove:
        if req.key in self.runs:
            return a.BankAccountMove.model_validate_json(self.runs[req.key][1])
        old = self.cards[req.old_card_number]
        if not old.bank:
            mode, closed = "none", "none"
        else:
            if self.bank.down:
                raise _unavailable("bank")
            mode = "exists" if req.new_card_number in self.bank.accounts else "migrated"
            self.bank.accounts[req.new_card_number] = "active"
            self.bank.accounts[old.number] = closed = "closed"
            self.cards[req.new_card_number].bank = True

        def record() -> a.BankAccountMove:
            if old.bank:
                self._audit(req, "bank_account_moved", "bank", mode=mode, old_account=closed)
            return a.BankAccountMove(mode=mode, old_account=closed)

        return self._once(req, "move_bank_account", a.BankAccountMove, record)

    # --- money

    def _assess(self, req: a.AssessFeeInput) -> a.FeeAssessment:
        def work() -> a.FeeAssessment:
            base = FEE_SCHEDULES.get(req.schedule)
            if base is None:
                raise business_error(FEE_SCHEDULE_UNKNOWN, f"no fee schedule {req.schedule!r}")
            exemption = req.exemption
            if exemption is not None and (req.schedule, exemption.value) not in EXEMPTIONS:
                exemption = None
            amount = 0 if exemption is not None or req.waived else base
            self._audit(
                req,
                "fee_assessed",
                "payments",
                base_fen=base,
                amount_fen=amount,
                exemption=exemption.value if exemption else None,
                waived=req.waived,
            )
            return a.FeeAssessment(
                amount_fen=amount, base_fen=base, exemption=exemption, waived=req.waived
            )

        return self._once(req, "assess_fee", a.FeeAssessment, work)

    def _open_order(self, req: a.CreatePaymentInput) -> a.PaymentOrder:
        def write_down() -> a.PaymentOrder:
            order = Order(
                f"PY{_day(req.at)}{next(self._seq):06d}",
                req.case_id,
                req.amount_fen,
                "open",
                req.due_at,
            )
            self.orders[order.order_id] = order
            self._audit(
                req,
                "payment_order_created",
                "payments",
                order_id=order.order_id,
                amount_fen=req.amount_fen,
            )
            return order.model()

        written = self._once(req, "open_payment_order", a.PaymentOrder, write_down)
        order = self.orders[written.order_id]
        if order.platform_ref is None:
            if self.platform.down:
                raise _unavailable("payment platform")
            there = self.platform.orders.get(order.order_id)
            if there is None:  # opened there once per order ID
                there = self.platform.orders[order.order_id] = PlatformOrder(
                    order.order_id,
                    req.case_id.split(":", 1)[0],
                    order.amount_fen,
                    f"PP-{next(self._seq):08d}",
                )
            self.platform.asked[order.order_id] += 1
            if self.platform.lost_answers:
                raise ApplicationError("payment platform: no answer", type=PARTNER_UNAVAILABLE)
            order.platform_ref = there.platform_ref
        return written.model_copy(update={"platform_ref": order.platform_ref})

    def _close_order(self, req: a.OrderInput) -> a.PaymentAtPlatform:
        if self.platform.down:
            raise _unavailable("payment platform")
        there = self.platform.orders.get(req.order_id)
        if there is None:  # never taken as unpaid: asked again
            raise ApplicationError(
                "payment platform: has the order not at all", type=PARTNER_UNAVAILABLE
            )
        if there.status == "open":
            there.status = "closed"
        return a.PaymentAtPlatform(
            order_id=there.order_id, status=there.status, payment=there.payment
        )

    def _receive(self, req: a.ReceivePaymentInput) -> a.PaymentReceipt:
        def work() -> a.PaymentReceipt:
            seen = self.payments.get(req.payment_ref)
            if seen is not None:  # the same reference is the same money: once only
                return a.PaymentReceipt(
                    payment_ref=req.payment_ref,
                    amount_fen=seen.amount_fen,
                    order_id=seen.order_id,
                    applied=False,
                    reason="the reference was received before"
                    + ("" if seen.case_id == req.case_id else " by another case"),
                    new=False,
                )
            if not 0 < req.amount_fen <= LEDGER_MAX_FEN:  # no ledger row can hold it
                receipt = a.PaymentReceipt.not_recorded(req.payment_ref)
                self._audit(
                    req,
                    "payment_unrecordable",
                    "payments",
                    order_id=req.order_id,
                    amount_fen=str(req.amount_fen),
                    payment_ref=req.payment_ref,
                    reason=receipt.reason,
                )
                params = {
                    "case": req.case_id.partition(":")[0],
                    "ref": req.payment_ref,
                    "order": req.order_id,
                    "amount": str(req.amount_fen),
                }
                self.notices.append(
                    Notice(
                        f"{req.key}:operations",
                        req.case_id,
                        "operations",
                        "operations",
                        "payment_unrecordable",
                        params,
                        render("payment_unrecordable", params),
                        req.at,
                    )
                )
                return receipt
            reason, applied = req.reason, None
            if req.apply:
                order = self.orders.get(req.order_id)
                if order is None or order.case_id != req.case_id:
                    reason = "the order is not this case's"
                elif order.amount_fen != req.amount_fen:
                    reason = f"paid {req.amount_fen} fen against an order of {order.amount_fen} fen"
                elif order.status != "open":
                    reason = f"the order is {order.status}"
                else:
                    order.status, order.payment_ref = "paid", req.payment_ref
                    applied = order.model()
            reason = None if applied else reason or "not applied"
            self.payments[req.payment_ref] = Payment(
                req.payment_ref,
                req.case_id,
                req.order_id,
                req.amount_fen,
                "applied" if applied else "refund",
                reason,
            )
            if not applied:
                self.refunds[req.payment_ref] = Refund(
                    "RF-" + req.payment_ref,
                    req.payment_ref,
                    req.case_id,
                    req.amount_fen,
                    "pending",
                    reason or "not applied",
                )
            self._audit(
                req,
                "payment_recorded" if applied else "payment_to_refund",
                "payments",
                order_id=req.order_id,
                amount_fen=req.amount_fen,
                payment_ref=req.payment_ref,
                reason=reason,
            )
            return a.PaymentReceipt(
                payment_ref=req.payment_ref,
                amount_fen=req.amount_fen,
                order_id=req.order_id,
                applied=applied is not None,
                reason=reason,
                order=applied,
            )

        return self._once(req, "receive_payment", a.PaymentReceipt, work)

    def _refund(self, req: a.RefundInput) -> a.RefundResult:
        def write_down() -> a.RefundResult:
            payment = self.payments.get(req.payment_ref)
            if payment is None or payment.case_id != req.case_id:
                raise business_error(ORDER_STATE, "no such payment received by this case")
            refund = self.refunds.setdefault(
                req.payment_ref,
                Refund(
                    "RF-" + req.payment_ref,
                    req.payment_ref,
                    req.case_id,
                    payment.amount_fen,
                    "pending",
                    req.reason,
                ),
            )
            order_id = None
            if payment.disposition == "applied":
                order_id = payment.order_id
                order = self.orders[order_id]
                if order.status == "paid":
                    order.status = "refunded"
            return a.RefundResult(
                refund_id=refund.refund_id,
                payment_ref=refund.payment_ref,
                amount_fen=refund.amount_fen,
                status=refund.status,
                order_id=order_id,
            )

        asked = self._once(req, "refund_payment", a.RefundResult, write_down)
        refund = self.refunds[req.payment_ref]
        if refund.status == "pending":
            if self.platform.down:
                raise _unavailable("payment platform")
            done = self.platform.refunds.setdefault(
                refund.refund_id,
                (refund.payment_ref, refund.amount_fen, f"PR-{next(self._seq):08d}"),
            )
            if self.platform.lost_answers:
                raise ApplicationError("payment platform: no answer", type=PARTNER_UNAVAILABLE)
            refund.status, refund.platform_ref = "refunded", done[2]
            self._audit(
                req,
                "payment_refunded",
                "payments",
                key=f"{req.key}:refunded",
                order_id=asked.order_id,
                payment_ref=refund.payment_ref,
                amount_fen=refund.amount_fen,
                reason=refund.reason,
            )
        return asked.model_copy(update={"status": "refunded"})

    def _cancel_order(self, req: a.OrderInput) -> a.PaymentOrder:
        def work() -> a.PaymentOrder:
            order = self.orders.get(req.order_id)
            if order is None or order.case_id != req.case_id:
                raise business_error(ORDER_STATE, "no such payment order for this case")
            if order.status == "cancelled":
                return order.model()
            if order.status != "open":
                raise business_error(ORDER_STATE, f"cannot cancel: order is {order.status}")
            order.status = "cancelled"
            self._audit(
                req, "payment_cancelled", "payments", order_id=order.order_id, reason=req.reason
            )
            return order.model()

        return self._once(req, "cancel_payment_order", a.PaymentOrder, work)

    # --- casework

    def _affiliation(self, req: a.AffiliationRequestInput) -> a.Done:
        def work() -> a.Done:
            self.affiliation_requests.append((req.case_id, req.org_code))
            self._audit(
                req, "affiliation_requested", "system", kind=req.kind, org_code=req.org_code
            )
            return a.Done(changed=True)

        return self._once(req, "request_affiliation_confirmation", a.Done, work)

    def _precheck(self, req: a.PrecheckInput) -> a.PrecheckResult:
        def work() -> a.PrecheckResult:
            problems = req.problems()
            self.submissions[(req.case_id, req.round)] = (not problems, problems)
            self._audit(
                req,
                "materials_prechecked",
                "system",
                round=req.round,
                passed=not problems,
                problems=problems,
            )
            return a.PrecheckResult(passed=not problems, problems=problems)

        return self._once(req, "precheck_materials", a.PrecheckResult, work)

    def _review(self, req: a.ReviewRecordInput) -> a.Done:
        def work() -> a.Done:
            self.reviews.append((req.case_id, req.round, req.reviewer, req.verdict.value))
            self._audit(
                req,
                "review_decided",
                req.reviewer,
                round=req.round,
                verdict=req.verdict.value,
                reasons=req.reasons,
                waive_fee=req.waive_fee,
            )
            return a.Done(changed=True)

        return self._once(req, "record_review_decision", a.Done, work)

    def _notify(self, req: a.NotifyInput) -> a.Done:
        def work() -> a.Done:
            if any(n.key == req.key for n in self.notices):
                return a.Done(changed=False)
            self.notices.append(
                Notice(
                    req.key,
                    req.case_id,
                    req.recipient.value,
                    req.recipient_ref,
                    req.template,
                    dict(req.params),
                    render(req.template, req.params),
                    req.at,
                )
            )
            return a.Done(changed=True)

        return self._once(req, "notify", a.Done, work)

    def _append(self, req: a.AuditInput) -> a.Done:
        return self._once(
            req,
            "append_audit_event",
            a.Done,
            lambda: a.Done(changed=self._audit(req, req.event_type, req.actor, **req.detail)),
        )

    # The work of each step, by activity name (what `_step` runs once it is not held).
    _work: ClassVar[dict[str, Callable[..., BaseModel]]] = {
        a.REGISTER_LOSS.name: _register_loss,
        a.FREEZE_CARD.name: _freeze_card,
        a.FORMALISE_LOSS_REPORT.name: _formalise,
        a.LIFT_LOSS_REPORT.name: _lift,
        a.VOID_OLD_CARD.name: _void,
        a.ORDER_CARD_PRODUCTION.name: _order_production,
        a.RECORD_CARD_PRODUCED.name: _produced,
        a.RECORD_PRODUCTION_FAILED.name: _failed,
        a.CANCEL_CARD_PRODUCTION.name: _cancel_production,
        a.ACTIVATE_NEW_CARD.name: _activate,
        a.FREEZE_BANK_ACCOUNT.name: lambda self, req: self._bank_freeze(req, frozen=True),
        a.UNFREEZE_BANK_ACCOUNT.name: lambda self, req: self._bank_freeze(req, frozen=False),
        a.MOVE_BANK_ACCOUNT.name: _move,
        a.ASSESS_FEE.name: _assess,
        a.OPEN_PAYMENT_ORDER.name: _open_order,
        a.CLOSE_PAYMENT_ORDER.name: _close_order,
        a.RECEIVE_PAYMENT.name: _receive,
        a.REFUND_PAYMENT.name: _refund,
        a.CANCEL_PAYMENT_ORDER.name: _cancel_order,
        a.REQUEST_AFFILIATION_CONFIRMATION.name: _affiliation,
        a.PRECHECK_MATERIALS.name: _precheck,
        a.RECORD_REVIEW_DECISION.name: _review,
        a.NOTIFY.name: _notify,
        a.APPEND_AUDIT_EVENT.name: _append,
    }


def _chip_code(card_number: str) -> str:
    """The 32-character identification code a printer writes on the chip."""
    return hashlib.sha256(card_number.encode()).hexdigest()[:32].upper()
