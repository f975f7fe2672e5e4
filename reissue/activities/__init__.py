"""Side effects of a case, against the PostgreSQL system of record and the partner systems."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from reissue.activities.bank import BankActivities, BankGateway
from reissue.activities.casework import CaseworkActivities
from reissue.activities.db import local_variants
from reissue.activities.payments import PaymentActivities, PaymentPlatform
from reissue.activities.registry import CardBureau, RegistryActivities

__all__ = [
    "BankActivities",
    "BankGateway",
    "CardBureau",
    "CaseworkActivities",
    "Partners",
    "PaymentActivities",
    "PaymentPlatform",
    "RegistryActivities",
    "all_activities",
]


@dataclass(frozen=True)
class Partners:
    """The partner systems a case worker's activities call."""

    bank: BankGateway
    payments: PaymentPlatform
    bureau: CardBureau

    async def aclose(self) -> None:
        """Close their connection pools (adapters that hold one)."""
        for partner in (self.bank, self.payments, self.bureau):
            close = getattr(partner, "aclose", None)
            if close is not None:
                await close()


def all_activities(
    pool: asyncpg.Pool, *, hash_secret: str, partners: Partners
) -> Sequence[Callable[..., Any]]:
    """Every activity a case worker registers, bound to its dependencies: each step on
    our own system of record also as the local activity the workflow runs it as."""
    registry = RegistryActivities(pool, hash_secret=hash_secret, bureau=partners.bureau)
    banking = BankActivities(pool, partners.bank)
    payments = PaymentActivities(pool, partners.payments)
    casework = CaseworkActivities(pool)
    steps: list[Callable[..., Any]] = [
        registry.register_loss,
        registry.freeze_card,
        registry.formalise_loss_report,
        registry.lift_loss_report,
        registry.void_old_card,
        registry.order_card_production,
        registry.record_card_produced,
        registry.record_production_failed,
        registry.cancel_card_production,
        registry.activate_new_card,
        banking.freeze_bank_account,
        banking.unfreeze_bank_account,
        banking.move_bank_account,
        payments.assess_fee,
        payments.open_payment_order,
        payments.receive_payment,
        payments.cancel_payment_order,
        payments.close_payment_order,
        payments.refund_payment,
        casework.request_affiliation_confirmation,
        casework.precheck_materials,
        casework.record_review_decision,
        casework.notify,
        casework.append_audit_event,
    ]
    return [*steps, *local_variants(steps)]
