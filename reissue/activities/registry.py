"""Activities on the card registry: loss reports, freezing, production and activation."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from typing import Protocol

import asyncpg
import structlog
from temporalio.exceptions import ApplicationError

from reissue.activities.db import Connection, Idempotency, idempotent, partner_step
from reissue.activities.repositories import audit, cards, policies, production
from reissue.schemas.activities import (
    ACTIVATE_NEW_CARD,
    CANCEL_CARD_PRODUCTION,
    FORMALISE_LOSS_REPORT,
    FREEZE_CARD,
    LIFT_LOSS_REPORT,
    ORDER_CARD_PRODUCTION,
    OWNER_LIFTS,
    RECORD_CARD_PRODUCED,
    RECORD_PRODUCTION_FAILED,
    REGISTER_LOSS,
    VOID_OLD_CARD,
    ActivateCardInput,
    ActivateCardResult,
    CardProducedInput,
    Done,
    FormaliseInput,
    FreezeInput,
    FreezeResult,
    LiftLossInput,
    LiftResult,
    OrderInput,
    ProductionFailedInput,
    ProductionInput,
    ProductionOrder,
    RegisterLossInput,
    RegisterLossResult,
    VoidCardInput,
)
from reissue.schemas.case import CLOCK_SKEW
from reissue.schemas.clock import beijing, duration_text
from reissue.schemas.enums import ProductionMode
from reissue.schemas.errors import (
    CARD_ALREADY_REPORTED,
    CARD_NOT_ACTIVE,
    CARD_NOT_FOUND,
    CARD_NUMBER_CONFLICT,
    CARD_OWNER_MISMATCH,
    CASE_ID_MISMATCH,
    INVALID_CASE_INPUT,
    NO_POLICY_IN_FORCE,
    ORDER_STATE,
    PARTNER_REFUSED,
    PARTNER_UNAVAILABLE,
    business_error,
)
from reissue.schemas.hashing import case_workflow_id, person_key
from reissue.schemas.identifiers import mask_card_number, normalise_district
from reissue.schemas.policy import CasePolicy

__all__ = ["CardBureau", "RegistryActivities"]


def _check_reported_at(claimed: datetime, opened_at: datetime, policy: CasePolicy) -> None:
    """The liability cut-off may be given, within the policy's bounds (Art. 28)."""
    if claimed > opened_at + CLOCK_SKEW:
        raise business_error(
            INVALID_CASE_INPUT, "invalid case input: reported_at: must not be in the future"
        )
    if claimed < opened_at - policy.backdating_window:
        raise business_error(
            INVALID_CASE_INPUT,
            f"invalid case input: reported_at: must not be earlier than "
            f"{duration_text(policy.backdating_window)} before the case opened "
            f"(policy {policy.version})",
        )


log = structlog.get_logger(__name__)


class CardBureau(Protocol):
    """What the case needs from the card bureau that makes standard cards. The bureau
    reports back through the front door (`card_produced`, `production_failed`)."""

    async def order(self, *, order_id: str, case_id: str, account_id: str, district: str) -> None:
        """Send a production order; idempotent per `order_id`."""
        ...

    async def cancel(self, order_id: str, *, key: str) -> str:
        """Stop an order; the order's status at the bureau after (`none`: it has none)."""
        ...


class RegistryActivities:
    """The social-security side of the card: one method per activity."""

    def __init__(
        self, pool: asyncpg.Pool, *, hash_secret: str, bureau: CardBureau | None = None
    ) -> None:
        self._once = Idempotency(pool)
        self._secret = hash_secret
        self._bureau = bureau

    def _the_bureau(self) -> CardBureau:
        if self._bureau is None:  # a worker set up without it: retried once it is
            raise ApplicationError("no card bureau configured", type=PARTNER_UNAVAILABLE)
        return self._bureau

    @idempotent(REGISTER_LOSS)
    async def register_loss(self, conn: Connection, req: RegisterLossInput) -> RegisterLossResult:
        """Open the case in the system of record, which decides what the caller may not.

        The case must run under its card's ID (the keyed hash), the card must be the
        applicant's and have no open loss report (one open case per card), the policy
        in force comes from the policy table, and the reported time must lie within
        it. Then the loss report is recorded (its time is the liability cut-off) and
        the card frozen in the registry, in one transaction. Any refusal writes nothing.
        """
        if req.case_id.split(":", 1)[0] != case_workflow_id(req.card_number, secret=self._secret):
            raise business_error(
                CASE_ID_MISMATCH,
                "the case does not run under its card's case ID (the keyed hash of the card "
                "number): start it with the ID the typed client or `reissue case id` gives",
            )
        try:
            district = normalise_district(req.district)
        except ValueError as e:
            raise business_error(INVALID_CASE_INPUT, f"invalid case input: district: {e}") from None
        opened_at = req.opened_at
        policy, policy_hash = await self._policy_in_force(conn, district, opened_at)
        claimed = req.reported_at or opened_at
        _check_reported_at(claimed, opened_at, policy)
        reported_at = min(claimed, opened_at)
        card = await cards.find_card(conn, req.card_number)
        if card is None:
            raise business_error(CARD_NOT_FOUND, "no card with this number in the registry")
        if card["person_key"] != person_key(req.resident_id, secret=self._secret):
            raise business_error(
                CARD_OWNER_MISMATCH, "the card does not belong to the applicant's ID number"
            )
        held = await cards.find_open_report(conn, req.card_number)
        if held is not None:
            raise business_error(
                CARD_ALREADY_REPORTED,
                "the card already has an open loss report, held by case "
                + held["case_id"].split(":", 1)[0],
            )
        formal = req.channel.formal
        standing = await cards.standing_report(conn, req.card_number)
        if standing is not None:
            # The card's last case ended while its temporary report was still valid: the
            # report stood, the card frozen. This case takes it over, from its original
            # time while it is valid (the cut-off the owner had), else from now.
            if standing["valid_until"] > opened_at:
                reported_at = min(reported_at, standing["reported_at"])
            await cards.end_standing(
                conn, standing["report_number"], status="continued", reason="a new case"
            )
        elif card["status"] == "void":
            # Applying again after a case that ended without a new card: the loss
            # stands as it was reported, formal, with its original cut-off.
            earlier = await cards.last_report(conn, req.card_number)
            if earlier is not None:
                reported_at = min(reported_at, earlier["reported_at"])
            formal = True
        elif card["status"] != "active":
            raise business_error(CARD_NOT_ACTIVE, f"the card is {card['status']}")
        number = await cards.create_report(
            conn,
            case_id=req.case_id,
            card_number=req.card_number,
            channel=req.channel.value,
            formal=formal,
            reported_at=reported_at,
            valid_until=None if formal else reported_at + policy.temporary_report_validity,
        )
        # Frozen in the same transaction: there is no moment at which the report
        # exists and the card still pays (`freeze_card` then confirms it).
        await cards.set_status(conn, req.card_number, from_="active", to="frozen")
        await audit.record(
            conn,
            req,
            "loss_registered",
            actor="registry",
            report_number=number,
            card=mask_card_number(req.card_number),
            channel=req.channel.value,
            formal=formal,
            reported_at=reported_at.isoformat(),
            balance_fen=card["balance_fen"],
            policy=policy.version,
            policy_hash=policy_hash,
        )
        return RegisterLossResult(
            report_number=number,
            account_id=card["account_id"],
            reported_at=reported_at,
            formal=formal,
            policy=policy,
            policy_hash=policy_hash,
        )

    @staticmethod
    async def _policy_in_force(
        conn: Connection, district: str, at: datetime
    ) -> tuple[CasePolicy, str]:
        row = await policies.in_force(conn, district=district, at=at)
        # Retryable, both: a loss report is never refused for want of configuration;
        # the step waits (visibly failing) until operations put a policy in force.
        if row is None:
            raise ApplicationError(
                f"no case policy in force for district {district} at {beijing(at)}",
                type=NO_POLICY_IN_FORCE,
            )
        if hashlib.sha256(row["content"].encode()).hexdigest() != row["content_hash"]:
            raise ApplicationError(
                f"case policy {row['version']} does not match its content hash",
                type=NO_POLICY_IN_FORCE,
            )
        return CasePolicy.model_validate_json(row["content"]), row["content_hash"]

    @idempotent(FREEZE_CARD)
    async def freeze_card(self, conn: Connection, req: FreezeInput) -> FreezeResult:
        """Freeze the card's social-security function in the registry."""
        card = await cards.find_card(conn, req.card_number)
        if card is None:
            raise business_error(CARD_NOT_FOUND, "no card with this number in the registry")
        changed = await cards.set_status(conn, req.card_number, from_="active", to="frozen")
        if not changed and card["status"] not in ("frozen", "void"):
            raise business_error(CARD_NOT_ACTIVE, f"cannot freeze a {card['status']} card")
        status = "frozen" if changed else card["status"]  # a void card stays void
        await audit.record(
            conn,
            req,
            "card_frozen",
            actor="registry",
            report_number=req.report_number,
            status=status,
        )
        return FreezeResult(card_number=req.card_number, status=status, changed=changed)

    @idempotent(FORMALISE_LOSS_REPORT)
    async def formalise_loss_report(self, conn: Connection, req: FormaliseInput) -> Done:
        """The person came in person with ID: the report can no longer be lifted."""
        changed = await cards.formalise_report(conn, req.report_number, req.at)
        await audit.record(
            conn, req, "loss_report_formal", actor="registry", report_number=req.report_number
        )
        return Done(changed=changed)

    @idempotent(LIFT_LOSS_REPORT)
    async def lift_loss_report(self, conn: Connection, req: LiftLossInput) -> LiftResult:
        """Lift a temporary report and unfreeze the card in the registry, when its owner
        proved they found the card or its validity ran out.

        Any other end of the case (a cancellation) leaves a temporary report that is still
        valid by the registry's clock **standing**: the card stays frozen until the owner
        lifts it or it runs out (`lapse_standing_reports`); `standing_until` says until
        when. Only a temporary report is lifted, and only what was lifted is unfrozen: a
        formal report, or a card under another report, is left as it is (changed=False).
        """
        await cards.find_card(conn, req.card_number)  # row lock: one change at a time
        until = None
        if req.reason not in OWNER_LIFTS:
            until = await cards.leave_standing(
                conn, req.report_number, card_number=req.card_number, reason=req.reason, at=req.at
            )
        if until is not None:
            await audit.record(
                conn,
                req,
                "loss_report_standing",
                actor="registry",
                report_number=req.report_number,
                reason=req.reason,
                valid_until=until.isoformat(),
            )
            return LiftResult(changed=True, standing_until=until)
        lifted = await cards.lift_temporary_report(
            conn, req.report_number, card_number=req.card_number, reason=req.reason, at=req.at
        )
        if lifted:
            await cards.set_status(conn, req.card_number, from_="frozen", to="active")
        await audit.record(
            conn,
            req,
            "loss_report_lifted" if lifted else "loss_report_not_lifted",
            actor="registry",
            report_number=req.report_number,
            reason=req.reason if lifted else "the report is not an open temporary report",
        )
        return LiftResult(changed=lifted)

    @idempotent(VOID_OLD_CARD)
    async def void_old_card(self, conn: Connection, req: VoidCardInput) -> Done:
        """The case ended without a new card after the report became formal: the
        report closes and the old card is void for good (it stays unusable)."""
        await cards.find_card(conn, req.card_number)  # row lock
        closed = await cards.close_report(
            conn,
            req.report_number,
            status="closed_without_reissue",
            reason=req.reason,
            at=req.at,
        )
        voided = await cards.set_status(conn, req.card_number, from_="frozen", to="void")
        await audit.record(
            conn,
            req,
            "old_card_voided",
            actor="registry",
            report_number=req.report_number,
            reason=req.reason,
        )
        return Done(changed=closed or voided)

    @partner_step(ORDER_CARD_PRODUCTION)
    async def order_card_production(self, req: ProductionInput) -> ProductionOrder:
        """Order the new card: an instant order prints it at once; a standard order is
        written down, then sent to the card bureau (keyed by the order ID)."""
        order = await self._once.run(
            req.key,
            ORDER_CARD_PRODUCTION.name,
            ProductionOrder,
            lambda conn: self._write_order_down(conn, req),
        )
        if order.mode is not ProductionMode.STANDARD:
            return order
        row = await self._once.pool.fetchrow(
            "SELECT status, sent_at FROM production_orders WHERE order_id = $1", order.order_id
        )
        assert row is not None  # (written down above)
        status = row["status"]
        if status == "ordered" and row["sent_at"] is None:
            try:
                await self._the_bureau().order(
                    order_id=order.order_id,
                    case_id=req.case_id.split(":", 1)[0],
                    account_id=req.account_id,
                    district=req.district,
                )
            except ApplicationError as e:
                if e.type != PARTNER_REFUSED:
                    raise  # down, slow, unanswered: asked again with the same key
                # Refused as such: the order failed; the case handles it as the bureau's
                # failure report (a reorder, then a supervisor).
                async with self._once.pool.acquire() as conn:
                    await production.mark_failed(
                        conn, order.order_id, reason=f"refused: {e.message}", at=req.at
                    )
                status = "failed"
            else:
                await production.mark_sent(self._once.pool, order.order_id)
        return order.model_copy(update={"status": status})

    async def _write_order_down(self, conn: Connection, req: ProductionInput) -> ProductionOrder:
        order = await production.create_order(
            conn,
            case_id=req.case_id,
            account_id=req.account_id,
            old_card_number=req.old_card_number,
            mode=req.mode.value,
            district=req.district,
            at=req.at,
        )
        new_card = None
        if req.mode is ProductionMode.INSTANT:
            new_card = await production.next_card_number(conn)
            # The counter's printer writes the card's identification code on the chip.
            await cards.insert_new_card(
                conn, new_card, req.account_id, card_id_code=secrets.token_hex(16).upper()
            )
            await production.transition(
                conn,
                order["order_id"],
                from_="ordered",
                to="produced",
                new_card_number=new_card,
                at=req.at,
            )
        await audit.record(
            conn,
            req,
            "production_ordered",
            actor="registry",
            order_id=order["order_id"],
            mode=req.mode.value,
            new_card=mask_card_number(new_card) if new_card else None,
        )
        return ProductionOrder(
            order_id=order["order_id"],
            mode=req.mode,
            status="produced" if new_card else "ordered",
            new_card_number=new_card,
        )

    @idempotent(RECORD_CARD_PRODUCED)
    async def record_card_produced(self, conn: Connection, req: CardProducedInput) -> Done:
        """The bureau produced the card: it enters the registry as not yet active."""
        order = await production.get_order(conn, req.order_id)
        if order is None or order["case_id"] != req.case_id:
            raise business_error(ORDER_STATE, "no such production order for this case")
        if order["status"] == "produced":
            return Done(changed=False)
        if order["status"] != "ordered":
            raise business_error(ORDER_STATE, f"production order is {order['status']}")
        if await cards.find_card(conn, req.new_card_number) is not None:
            raise business_error(CARD_NUMBER_CONFLICT, "the new card number is already in use")
        code = req.card_id_code or secrets.token_hex(16).upper()
        if await conn.fetchval("SELECT true FROM cards WHERE card_id_code = $1", code):
            raise business_error(
                CARD_NUMBER_CONFLICT, "card_id_code: already on another card in the registry"
            )
        await cards.insert_new_card(
            conn,
            req.new_card_number,
            req.account_id,
            # The bureau reports the code it wrote; cases recorded before it did get one here.
            card_id_code=code,
        )
        await production.transition(
            conn,
            req.order_id,
            from_="ordered",
            to="produced",
            new_card_number=req.new_card_number,
            at=req.produced_at,
        )
        await audit.record(
            conn,
            req,
            "card_produced",
            actor="registry",
            order_id=req.order_id,
            new_card=mask_card_number(req.new_card_number),
        )
        return Done(changed=True)

    @idempotent(RECORD_PRODUCTION_FAILED)
    async def record_production_failed(self, conn: Connection, req: ProductionFailedInput) -> Done:
        """The bureau could not make the card: the order ends as failed."""
        order = await production.get_order(conn, req.order_id)
        if order is None or order["case_id"] != req.case_id:
            raise business_error(ORDER_STATE, "no such production order for this case")
        changed = await production.mark_failed(
            conn, req.order_id, reason=req.reason, at=req.failed_at
        )
        if not changed and order["status"] != "failed":
            raise business_error(ORDER_STATE, f"production order is {order['status']}")
        await audit.record(
            conn,
            req,
            "production_failed",
            actor="card-bureau",
            order_id=req.order_id,
            reason=req.reason,
        )
        return Done(changed=changed)

    @partner_step(CANCEL_CARD_PRODUCTION)
    async def cancel_card_production(self, req: OrderInput) -> Done:
        """Compensation: stop an order (at the bureau too, once it was sent there), void a
        produced card nobody collected."""
        done = await self._once.run(
            req.key,
            CANCEL_CARD_PRODUCTION.name,
            Done,
            lambda conn: self._cancel_order(conn, req),
        )
        sent = await self._once.pool.fetchval(
            "SELECT sent_at IS NOT NULL FROM production_orders WHERE order_id = $1", req.order_id
        )
        if sent:
            # Asked on every attempt until it answers (same key: the bureau answers a
            # repeat as it did the first time). It may have made the card already: the
            # card is void here either way, and its answer is on the case's record.
            try:
                at_bureau = await self._the_bureau().cancel(req.order_id, key=req.key)
            except ApplicationError as e:
                if e.type != PARTNER_REFUSED:
                    raise
                at_bureau = f"refused: {e.message}"
            async with self._once.pool.acquire() as conn:
                await audit.append(
                    conn,
                    dedupe_key=f"{req.key}:bureau",
                    case_id=req.case_id,
                    event_type="production_cancelled_at_bureau",
                    actor="card-bureau",
                    detail={"order_id": req.order_id, "bureau_status": at_bureau},
                    at=req.at,
                )
        return done

    async def _cancel_order(self, conn: Connection, req: OrderInput) -> Done:
        order_id = req.order_id
        order = await production.get_order(conn, order_id)
        if order is None:
            return Done(changed=False)
        # A card already made (instant, or reported by the bureau) is cancelled too:
        # nobody collected it, so it is void.
        changed = (
            await production.transition(conn, order_id, from_=order["status"], to="cancelled")
            if order["status"] in ("ordered", "produced")
            else False
        )
        if order["new_card_number"]:
            changed = (
                await cards.set_status(
                    conn, order["new_card_number"], from_="inactive_new", to="void"
                )
                or changed
            )
        await audit.record(
            conn,
            req,
            "production_cancelled",
            actor="registry",
            order_id=order_id,
            reason=req.reason,
        )
        return Done(changed=changed)

    @idempotent(ACTIVATE_NEW_CARD)
    async def activate_new_card(
        self, conn: Connection, req: ActivateCardInput
    ) -> ActivateCardResult:
        """New card active on the same account, old card replaced, loss report resolved."""
        old = await cards.find_card(conn, req.old_card_number)
        new = await cards.find_card(conn, req.new_card_number)
        if old is None or new is None or old["account_id"] != new["account_id"]:
            raise business_error(CARD_NOT_FOUND, "old and new card must share one account")
        changed = await cards.activate_replacement(
            conn, old_card=req.old_card_number, new_card=req.new_card_number
        )
        if not changed:
            raise business_error(
                CARD_NOT_ACTIVE,
                f"cannot activate: old card {old['status']}, new card {new['status']}",
            )
        await cards.close_report(
            conn,
            req.report_number,
            status="resolved_by_reissue",
            reason="new card collected",
            at=req.at,
        )
        await audit.record(
            conn,
            req,
            "new_card_activated",
            actor="registry",
            new_card=mask_card_number(req.new_card_number),
            old_card=mask_card_number(req.old_card_number),
            balance_fen=new["balance_fen"],
        )
        return ActivateCardResult(
            account_id=new["account_id"],
            new_card_number=req.new_card_number,
            balance_fen=new["balance_fen"],
            changed=True,
        )
