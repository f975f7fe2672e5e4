"""Activities on the card registry: loss reports, freezing, production and activation."""

from __future__ import annotations

import asyncpg
import structlog
from temporalio import activity

from activities.db import Idempotency
from activities.errors import (
    CARD_NOT_ACTIVE,
    CARD_NOT_FOUND,
    CARD_NUMBER_CONFLICT,
    CARD_OWNER_MISMATCH,
    ORDER_STATE,
    business_error,
)
from activities.repositories import audit, cards, production
from schemas.activities import (
    ActivateCardInput,
    ActivateCardResult,
    CardProducedInput,
    Done,
    FormaliseInput,
    FreezeInput,
    FreezeResult,
    LiftLossInput,
    OrderInput,
    ProductionInput,
    ProductionOrder,
    RegisterLossInput,
    RegisterLossResult,
)
from schemas.enums import ProductionMode
from schemas.hashing import person_key
from schemas.identifiers import mask_card_number

__all__ = ["RegistryActivities"]

log = structlog.get_logger(__name__)


class RegistryActivities:
    """The social-security side of the card: one method per activity."""

    def __init__(self, pool: asyncpg.Pool, *, hash_secret: str) -> None:
        self._once = Idempotency(pool)
        self._secret = hash_secret

    @activity.defn(name="register_loss")
    async def register_loss(self, req: RegisterLossInput) -> RegisterLossResult:
        """Record the loss report; its time is the liability cut-off."""

        async def work(conn: asyncpg.Connection) -> RegisterLossResult:
            card = await cards.find_card(conn, req.card_number)
            if card is None:
                raise business_error(CARD_NOT_FOUND, "no card with this number in the registry")
            if card["person_key"] != person_key(req.resident_id, secret=self._secret):
                raise business_error(
                    CARD_OWNER_MISMATCH, "the card does not belong to the applicant's ID number"
                )
            if card["status"] not in ("active", "frozen"):
                raise business_error(CARD_NOT_ACTIVE, f"the card is {card['status']}")
            reported_at, formal = req.reported_at, req.channel.formal
            earlier = await cards.find_open_report(conn, req.card_number)
            if earlier is not None:
                # A new case for a card still under an earlier case's report: the
                # earliest report time stays the liability cut-off.
                reported_at = min(reported_at, earlier["reported_at"])
                formal = formal or earlier["kind"] == "formal"
                await cards.close_report(
                    conn,
                    earlier["report_number"],
                    status="superseded",
                    reason=f"superseded by case {req.case_id}",
                    at=req.at,
                )
            number = await cards.create_report(
                conn,
                case_id=req.case_id,
                card_number=req.card_number,
                channel=req.channel.value,
                formal=formal,
                reported_at=reported_at,
            )
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
            )
            return RegisterLossResult(
                report_number=number,
                account_id=card["account_id"],
                reported_at=reported_at,
                formal=formal,
            )

        return await self._once.run(req.key, "register_loss", RegisterLossResult, work)

    @activity.defn(name="freeze_card")
    async def freeze_card(self, req: FreezeInput) -> FreezeResult:
        """Freeze the card's social-security function in the registry."""

        async def work(conn: asyncpg.Connection) -> FreezeResult:
            card = await cards.find_card(conn, req.card_number)
            if card is None:
                raise business_error(CARD_NOT_FOUND, "no card with this number in the registry")
            changed = await cards.set_status(conn, req.card_number, from_="active", to="frozen")
            if not changed and card["status"] != "frozen":
                raise business_error(CARD_NOT_ACTIVE, f"cannot freeze a {card['status']} card")
            await audit.record(
                conn, req, "card_frozen", actor="registry", report_number=req.report_number
            )
            return FreezeResult(card_number=req.card_number, status="frozen", changed=changed)

        return await self._once.run(req.key, "freeze_card", FreezeResult, work)

    @activity.defn(name="formalise_loss_report")
    async def formalise_loss_report(self, req: FormaliseInput) -> Done:
        """The person came in person with ID: the report can no longer be lifted."""

        async def work(conn: asyncpg.Connection) -> Done:
            changed = await cards.formalise_report(conn, req.report_number, req.at)
            await audit.record(
                conn, req, "loss_report_formal", actor="registry", report_number=req.report_number
            )
            return Done(changed=changed)

        return await self._once.run(req.key, "formalise_loss_report", Done, work)

    @activity.defn(name="lift_loss_report")
    async def lift_loss_report(self, req: LiftLossInput) -> Done:
        """Close a temporary report and unfreeze the card in the registry."""

        async def work(conn: asyncpg.Connection) -> Done:
            closed = await cards.close_report(
                conn, req.report_number, status="lifted", reason=req.reason, at=req.at
            )
            unfrozen = await cards.set_status(conn, req.card_number, from_="frozen", to="active")
            await audit.record(
                conn,
                req,
                "loss_report_lifted",
                actor="registry",
                report_number=req.report_number,
                reason=req.reason,
            )
            return Done(changed=closed or unfrozen)

        return await self._once.run(req.key, "lift_loss_report", Done, work)

    @activity.defn(name="order_card_production")
    async def order_card_production(self, req: ProductionInput) -> ProductionOrder:
        """Order the new card; an instant order prints it at once."""

        async def work(conn: asyncpg.Connection) -> ProductionOrder:
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
                await cards.insert_new_card(conn, new_card, req.account_id)
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

        return await self._once.run(req.key, "order_card_production", ProductionOrder, work)

    @activity.defn(name="record_card_produced")
    async def record_card_produced(self, req: CardProducedInput) -> Done:
        """The bureau produced the card: it enters the registry as not yet active."""

        async def work(conn: asyncpg.Connection) -> Done:
            order = await production.get_order(conn, req.order_id)
            if order is None or order["case_id"] != req.case_id:
                raise business_error(ORDER_STATE, "no such production order for this case")
            if order["status"] == "produced":
                return Done(changed=False)
            if order["status"] != "ordered":
                raise business_error(ORDER_STATE, f"production order is {order['status']}")
            if await cards.find_card(conn, req.new_card_number) is not None:
                raise business_error(CARD_NUMBER_CONFLICT, "the new card number is already in use")
            await cards.insert_new_card(conn, req.new_card_number, req.account_id)
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

        return await self._once.run(req.key, "record_card_produced", Done, work)

    @activity.defn(name="cancel_card_production")
    async def cancel_card_production(self, req: OrderInput) -> Done:
        """Compensation: stop an order, void a produced card nobody collected."""

        async def work(conn: asyncpg.Connection) -> Done:
            order_id = req.order_id
            order = await production.get_order(conn, order_id)
            if order is None:
                return Done(changed=False)
            changed = await production.transition(conn, order_id, from_="ordered", to="cancelled")
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

        return await self._once.run(req.key, "cancel_card_production", Done, work)

    @activity.defn(name="activate_new_card")
    async def activate_new_card(self, req: ActivateCardInput) -> ActivateCardResult:
        """New card active on the same account, old card replaced, loss report resolved."""

        async def work(conn: asyncpg.Connection) -> ActivateCardResult:
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

        return await self._once.run(req.key, "activate_new_card", ActivateCardResult, work)
