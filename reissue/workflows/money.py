"""Fee and money: the fee assessed, the payment order opened at the payment platform,
reminders, the deadline (the order closed at the platform first: a payment it took is
taken in), every payment into the ledger — applied to the fee or refunded — and the
refund or closing of the order when a case ends early."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from reissue.schemas.activities import (
        ASSESS_FEE,
        CANCEL_PAYMENT_ORDER,
        CLOSE_PAYMENT_ORDER,
        OPEN_PAYMENT_ORDER,
        RECEIVE_PAYMENT,
        REFUND_PAYMENT,
        AssessFeeInput,
        CreatePaymentInput,
        FeeAssessment,
        OrderInput,
        PaymentOrder,
        PaymentReceipt,
        ReceivePaymentInput,
        RefundInput,
        RefundResult,
    )
    from reissue.schemas.case import FeeStatus, MoneyStatus
    from reissue.schemas.clock import beijing_cn
    from reissue.schemas.enums import AwaitingParty, CaseFlag, Recipient, Stage
    from reissue.schemas.events import PaymentConfirmation
    from reissue.schemas.reasons import Reason
    from reissue.workflows.core import Case, Ending
    from reissue.workflows.materials import Materials
    from reissue.workflows.review import Review

__all__ = ["Money"]


def yuan(fen: int) -> str:
    return f"{fen / 100:.2f}"


class Money:
    """The fee, the payment order, and every payment that reached the case."""

    def __init__(self, case: Case, materials: Materials, review: Review) -> None:
        self.case = case
        self.materials = materials
        self.review = review
        self.fee: FeeAssessment | None = None
        self.order: PaymentOrder | None = None
        self.payment: PaymentConfirmation | None = None  # the one that paid the fee
        self.receipts: list[PaymentReceipt] = []
        self.refunds: list[RefundResult] = []

    def paid(self) -> bool:
        return self.payment is not None

    def status(self) -> FeeStatus | None:
        if self.fee is None:
            return None
        return FeeStatus(
            amount_fen=self.fee.amount_fen,
            base_fen=self.fee.base_fen,
            exemption=self.fee.exemption.value if self.fee.exemption else None,
            waived=self.fee.waived,
            order_id=self.order.order_id if self.order else None,
            order_status=self.order.status if self.order else None,
            payment_ref=self.payment.payment_ref if self.payment else None,
        )

    def figures(self) -> MoneyStatus:
        """Per case: received = applied + refunded + refund pending, always."""
        received = sum(r.amount_fen for r in self.receipts)
        refunded = sum(f.amount_fen for f in self.refunds if f.status == "refunded")
        settled = {f.payment_ref for f in self.refunds if f.status == "refunded"}
        pending = sum(
            r.amount_fen for r in self.receipts if not r.applied and r.payment_ref not in settled
        )
        return MoneyStatus(
            received_fen=received,
            applied_fen=received - refunded - pending,
            refunded_fen=refunded,
            refund_pending_fen=pending,
        )

    # ------------------------------------------------------------------ the main path

    async def collect_fee(self) -> None:
        """Assess the fee; when one is due, open the order at the payment platform and wait
        for the payment, reminding; at the deadline close the order there, and lapse
        unless a payment it took is taken in."""
        case = self.case
        approval, submission = self.review.decision, self.materials.latest
        assert approval is not None and submission is not None
        policy = case.policy
        self.fee = await case.act(
            ASSESS_FEE,
            AssessFeeInput(
                **case.step_key("assess_fee"),
                schedule=policy.fee_schedule,
                account_id=case.account_id,
                exemption=submission.fee_exemption,
                waived=approval.waive_fee,
                waiver_reason=approval.waiver_reason,
            ),
            summary=f"assess the fee (schedule {policy.fee_schedule})",
        )
        if self.fee.amount_fen == 0:
            if self.fee.exemption or self.fee.waived:
                ground = self.fee.exemption.value if self.fee.exemption else "staff waiver"
                await case.notify(Recipient.APPLICANT, "fee_waived", ground=ground)
            return
        due = case.now() + policy.payment_deadline
        amount = yuan(self.fee.amount_fen)
        # The platform may be slow or down: the decision is made, the case shows it waits.
        case.enter(
            Stage.AWAITING_PAYMENT,
            AwaitingParty.SYSTEM,
            f"opening a payment order of ¥{amount} at the payment platform",
        )
        self.order = await case.act(
            OPEN_PAYMENT_ORDER,
            CreatePaymentInput(
                **case.step_key("create_payment_order"), amount_fen=self.fee.amount_fen, due_at=due
            ),
            summary=f"create a payment order of ¥{amount} at the payment platform",
        )
        case.enter(Stage.AWAITING_PAYMENT, AwaitingParty.PAYMENT, f"payment of ¥{amount}", due)
        order_id = self.order.order_id
        await case.notify(
            Recipient.APPLICANT,
            "payment_requested",
            amount=amount,
            deadline=beijing_cn(due),
            order=order_id,
        )

        async def remind(nth: int, template: str) -> None:
            await case.remind(
                "payment",
                Recipient.APPLICANT,
                template,
                nth=nth,
                of=2,
                round_=self.materials.accepted_rounds,
                amount=amount,
                deadline=beijing_cn(due),
                order=order_id,
            )

        # A reminder, a last one shortly before the deadline, then the deadline.
        if await case.wait(
            self.paid, case.now() + policy.payment_reminder_after, "payment reminder"
        ):
            return
        await remind(1, "payment_reminder")
        final_at = due - policy.payment_final_reminder_before
        if final_at > case.now() and not await case.wait(
            self.paid, final_at, "final payment reminder"
        ):
            await remind(2, "payment_final_reminder")
        if await case.wait(self.paid, due, "payment deadline"):
            return
        # Nobody can pay it from now on; a payment made before is taken in.
        async with case.money.through():  # (a payment being taken in is settled first)
            if not self.paid() and self.order.status == "open":
                case.enter(
                    Stage.AWAITING_PAYMENT,
                    AwaitingParty.SYSTEM,
                    "deadline passed: closing the order at the payment platform",
                )
                await self._close_order("fee not paid by the deadline")
        if not self.paid():
            raise Ending(Stage.LAPSED, "fee not paid by the deadline", notice=Reason.FEE_NOT_PAID)

    async def undo(self, outcome: Stage) -> None:
        """The case ends early: a paid fee is refunded, an open order closed."""
        case = self.case
        assert self.order is not None
        async with case.money.through():  # a payment being taken in is settled first
            if self.order.status == "paid":
                assert self.payment is not None
                refund = await self._refund(self.payment.payment_ref, outcome.value.lower())
                self.order = self.order.model_copy(update={"status": "refunded"})
                await case.notify(
                    Recipient.APPLICANT,
                    "refund_issued",
                    amount=yuan(refund.amount_fen),
                    order=self.order.order_id,
                )
            elif self.order.status == "open":
                await self._close_order(outcome.value.lower())

    # ------------------------------------------------------------------ events in

    def opening_order(self) -> bool:
        """The case's payment order is being opened at the payment platform."""
        case = self.case
        return (
            case.stage is Stage.AWAITING_PAYMENT
            and self.order is None
            and case.ending is None
            and case.closing is None
        )

    async def confirmed(self, payment: PaymentConfirmation) -> None:
        """The payment platform reports a payment (signal `payment_confirmed`): into the
        ledger, applied to the fee or refunded."""
        case = self.case
        # The platform may tell us of a payment before its answer to our opening of the
        # order reaches us: the payment waits for the order.
        await case.turns.wait(lambda: not self.opening_order())
        async with case.money.through():
            await self._receive(payment)

    # ------------------------------------------------------------------ helpers

    async def _receive(self, payment: PaymentConfirmation) -> None:
        """A payment into the ledger (through the money gate): applied to the fee, or
        refunded; one already received is not received again."""
        case = self.case
        detail = (
            f"order={payment.order_id} amount_fen={payment.amount_fen} ref={payment.payment_ref}"
        )
        earlier = next((r for r in self.receipts if r.payment_ref == payment.payment_ref), None)
        if earlier is not None:
            if (earlier.amount_fen, earlier.order_id) == (payment.amount_fen, payment.order_id):
                await case.ignore("payment_confirmed", "duplicate: " + detail)
            else:
                await self._conflict(detail, earlier)
            return
        if payment.amount_fen == 0:
            await case.ignore("payment_confirmed", "refused: a payment of 0 fen")
            return
        why_not = self._why_not_applied(payment)
        receipt = await case.act(
            RECEIVE_PAYMENT,
            ReceivePaymentInput(
                **case.step_key(f"payment:{payment.payment_ref}"),
                order_id=payment.order_id,
                amount_fen=payment.amount_fen,
                payment_ref=payment.payment_ref,
                paid_at=payment.paid_at,
                apply=why_not is None,
                reason=why_not,
            ),
            summary=f"receive ¥{yuan(payment.amount_fen)} into the ledger",
        )
        if not receipt.new:  # another case received this reference: its money, not ours
            if (receipt.amount_fen, receipt.order_id) == (payment.amount_fen, payment.order_id):
                await case.ignore("payment_confirmed", f"{receipt.reason}: {detail}")
            else:
                await self._conflict(detail, receipt)
            return
        self.receipts.append(receipt)
        if receipt.applied and receipt.order is not None:
            self.order, self.payment = receipt.order, payment
            return
        case.anomaly(
            "payment_confirmed", f"payment_confirmed not applied ({receipt.reason}): {detail}"
        )
        refund = await self._refund(payment.payment_ref, receipt.reason or "not applied")
        await case.notify(
            Recipient.APPLICANT,
            "payment_returned",
            step=f"payment_returned:{payment.payment_ref}",
            amount=yuan(refund.amount_fen),
        )

    async def _conflict(self, detail: str, earlier: PaymentReceipt) -> None:
        """Two confirmations under one reference disagree: one of them is wrong. The
        ledger keeps the first; operations check with the platform."""
        case = self.case
        # (The ledger could not hold it at all — `reason` says why — rather than holding
        # another payment under its reference: told as it is.)
        await case.audit(
            "payment_conflict",
            "payment-platform",
            {
                "received": detail,
                "earlier": f"not recorded: {earlier.reason}"
                if earlier.unrecorded
                else f"order={earlier.order_id} amount_fen={earlier.amount_fen}",
            },
        )
        case.anomaly(
            "payment_confirmed",
            f"payment_confirmed not recorded ({earlier.reason}): {detail}"
            if earlier.unrecorded
            else f"payment_confirmed conflicts with an earlier one: {detail}",
        )
        case.flag(CaseFlag.PAYMENT_CONFLICT)

    def _why_not_applied(self, payment: PaymentConfirmation) -> str | None:
        """Why a payment cannot pay this case's fee; None when it can."""
        case = self.case
        if case.stage.terminal:
            return "the case has closed"
        if case.ending is not None:
            return f"the case is ending ({case.ending.outcome.value})"
        if self.payment is not None:
            return "the fee is already paid (a second payment)"
        if case.stage is not Stage.AWAITING_PAYMENT or self.order is None:
            return f"no payment is due in stage {case.stage.value}"
        if payment.order_id != self.order.order_id:
            return f"the order is not this case's open order {self.order.order_id}"
        if payment.amount_fen != self.order.amount_fen:
            return f"paid {payment.amount_fen} fen against an order of {self.order.amount_fen} fen"
        return None

    async def _refund(self, payment_ref: str, reason: str) -> RefundResult:
        refund = await self.case.act(
            REFUND_PAYMENT,
            RefundInput(
                **self.case.step_key(f"refund:{payment_ref}"),
                payment_ref=payment_ref,
                reason=reason,
            ),
            summary="refund through the payment platform",
        )
        self.refunds.append(refund)
        return refund

    async def _close_order(self, reason: str) -> None:
        """Close the open payment order (through the money gate): first at the payment
        platform, which answers whether somebody paid it before it closed — that payment is
        taken in as its webhook would have been (applied while the fee is still due, else
        refunded); then ours, unless it was paid."""
        case = self.case
        order = self.order
        assert order is not None and order.status == "open"
        at = await case.act(
            CLOSE_PAYMENT_ORDER,
            OrderInput(
                **case.step_key("close_payment_order"), order_id=order.order_id, reason=reason
            ),
            summary="close the payment order at the payment platform",
        )
        if at.payment is not None:
            await self._receive(at.payment)
        if self.order is not None and self.order.status == "open":
            self.order = await case.act(
                CANCEL_PAYMENT_ORDER,
                OrderInput(
                    **case.step_key("cancel_payment_order"), order_id=order.order_id, reason=reason
                ),
                summary="cancel the unpaid payment order",
            )
