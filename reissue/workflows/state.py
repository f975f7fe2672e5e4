"""The state of one case: what the workflow holds, and everything derived from it.

`CardReissueWorkflow` keeps a single `CaseState`; nothing here is stored that can
be derived (the round counters come from the submissions and decisions, the new
card from the production order or the bureau's report, the outcome's reason from
the end under way). `status()` renders it for the `status` query, and
`search_attributes()` and `details()` for the Web UI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from reissue.schemas.activities import (
        FeeAssessment,
        PaymentOrder,
        PaymentReceipt,
        ProductionOrder,
        RefundResult,
        RegisterLossResult,
    )
    from reissue.schemas.case import (
        CaseInput,
        CaseStatus,
        FeeStatus,
        MaterialCheck,
        MoneyStatus,
        StageEntry,
    )
    from reissue.schemas.clock import beijing
    from reissue.schemas.enums import AwaitingParty, ReviewVerdict, Stage
    from reissue.schemas.events import (
        AffiliationOverride,
        AffiliationResponse,
        CardCollected,
        CardProduced,
        MaterialsSubmission,
        PaymentConfirmation,
        ProductionFailed,
        ProductionReorder,
        ReviewDecision,
    )
    from reissue.schemas.identifiers import mask_card_number
    from reissue.schemas.policy import CasePolicy
    from reissue.schemas.visibility import (
        ASSIGNED_TO,
        AWAITING_PARTY,
        CASE_STAGE,
        CORRECTION_ROUND,
        DISTRICT,
        INSURED_CATEGORY,
        NEXT_DEADLINE,
        REPORT_CHANNEL,
        REVIEW_DUE_AT,
        SLA_BREACHED,
    )

__all__ = ["Asked", "CaseState", "Ending"]


class Ending(Exception):
    """How the case ends, once decided: raised to leave the main path early, and kept
    while the case closes (`CaseState.ending`, `CaseState.closing`)."""

    def __init__(self, outcome: Stage, reason: str, *, through_temporal: bool = False) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason
        # A cancellation requested through Temporal itself (the Web UI's "Request
        # Cancellation"): the workflow ends cancelled once it has closed the case.
        self.through_temporal = through_temporal


@dataclass(frozen=True)
class Asked:
    """The unit or school was asked to confirm the applicant; no answer yet."""

    escalated: bool = False


# Not required (None), asked, answered by the portal, or settled by staff after escalation.
Affiliation = Asked | AffiliationResponse | AffiliationOverride | None


@dataclass
class CaseState:
    inp: CaseInput
    case_id: str  # workflow ID : first run ID
    started_at: datetime
    stage: Stage = Stage.LOSS_REPORTED
    awaiting: AwaitingParty = AwaitingParty.SYSTEM
    action: str = "registering the loss report and freezing the card"
    deadline: datetime | None = None
    timeline: list[StageEntry] = field(default_factory=list)
    policy: CasePolicy | None = None
    report: RegisterLossResult | None = None
    formal: bool = False
    opened: bool = False  # registered and frozen: from here an early end is compensated
    card_frozen: bool = False
    bank_frozen: bool = False
    submit_attempts: int = 0
    submissions: list[MaterialsSubmission] = field(default_factory=list)  # accepted ones
    affiliation: Affiliation = None
    review_due: datetime | None = None
    assignee: str | None = None
    claim_until: datetime | None = None
    review_rounds: int = 0  # reviews begun (a round may have more than one submission)
    deciding: bool = False  # a reviewer's decision is being recorded
    decisions: list[ReviewDecision] = field(default_factory=list)  # one per round, as applied
    fee: FeeAssessment | None = None
    order: PaymentOrder | None = None
    payment: PaymentConfirmation | None = None  # the one that paid the fee
    receipts: list[PaymentReceipt] = field(default_factory=list)
    refunds: list[RefundResult] = field(default_factory=list)
    production: ProductionOrder | None = None
    produced: CardProduced | None = None
    production_failed: ProductionFailed | None = None  # a failure report to act on
    failed_orders: list[str] = field(default_factory=list)
    reorders_allowed: int = 0  # by a supervisor, past the policy's limit
    reorder: ProductionReorder | None = None  # a supervisor's reorder to act on
    collected: CardCollected | None = None
    ending: Ending | None = None  # an end accepted (found, cancel, lapse, ...)
    closing: Ending | None = None  # what the case is doing to close, COMPLETED included
    sla_breached: bool = False
    flags: list[str] = field(default_factory=list)
    reminders: dict[str, int] = field(default_factory=dict)
    anomalies: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    audit_events: int = 0

    # ------------------------------------------------------------------ derived

    @property
    def card_masked(self) -> str:
        return mask_card_number(self.inp.card_number)

    @property
    def reported_at(self) -> datetime:
        """The liability cut-off: as the registry recorded it, or as claimed until then."""
        if self.report is not None:
            return self.report.reported_at
        claimed = self.inp.reported_at
        return min(claimed, self.started_at) if claimed else self.started_at

    @property
    def accepted_rounds(self) -> int:
        return len(self.submissions)

    @property
    def submission(self) -> MaterialsSubmission | None:
        return self.submissions[-1] if self.submissions else None

    @property
    def decision(self) -> ReviewDecision | None:
        """This review round's decision, once recorded."""
        if self.review_rounds and len(self.decisions) == self.review_rounds:
            return self.decisions[-1]
        return None

    @property
    def review_open(self) -> bool:
        return self.stage is Stage.UNDER_REVIEW and not self.deciding and self.decision is None

    @property
    def correction_round(self) -> int:
        return sum(d.verdict is ReviewVerdict.REQUEST_CORRECTION for d in self.decisions)

    @property
    def correction_reasons(self) -> list[str]:
        """The reasons of the latest correction request or rejection."""
        refusals = [d for d in self.decisions if d.verdict is not ReviewVerdict.APPROVE]
        return list(refusals[-1].reasons) if refusals else []

    @property
    def affiliation_status(self) -> str:
        a = self.affiliation
        if a is None:
            return "not required"
        if isinstance(a, Asked):
            return "requested"
        if isinstance(a, AffiliationOverride):
            return "overridden"
        return "confirmed" if a.confirmed else "denied"

    @property
    def new_card(self) -> str | None:
        """Printed at once (instant), or as the bureau reported it (standard)."""
        if self.production is not None and self.production.new_card_number:
            return self.production.new_card_number
        return self.produced.new_card_number if self.produced else None

    @property
    def activating(self) -> bool:
        """The new card is being activated: the case completes, no early end any more."""
        return self.closing is not None and self.closing.outcome is Stage.COMPLETED

    # ------------------------------------------------------------------ shown

    def money(self) -> MoneyStatus:
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

    def status(self) -> CaseStatus:
        policy = self.policy
        required = policy.materials_for(self.inp.insured_category) if policy else []
        docs = self.submission.documents if self.submission else []
        fee = None
        if self.fee is not None:
            fee = FeeStatus(
                amount_fen=self.fee.amount_fen,
                base_fen=self.fee.base_fen,
                exemption=self.fee.exemption.value if self.fee.exemption else None,
                waived=self.fee.waived,
                order_id=self.order.order_id if self.order else None,
                order_status=self.order.status if self.order else None,
                payment_ref=self.payment.payment_ref if self.payment else None,
            )
        return CaseStatus(
            case_id=self.case_id,
            stage=self.stage,
            awaiting=self.awaiting,
            pending_action=self.action,
            deadline=self.deadline,
            card_masked=self.card_masked,
            district=self.inp.district,
            insured_category=self.inp.insured_category,
            channel=self.inp.channel,
            loss_reported_at=self.reported_at,
            liability_cutoff=self.reported_at,
            loss_report_number=self.report.report_number if self.report else None,
            report_formal=self.formal,
            card_frozen=self.card_frozen,
            bank_frozen=self.bank_frozen,
            materials=[
                MaterialCheck(
                    type=t,
                    received=any(d.type is t for d in docs),
                    doc_ids=[d.doc_id for d in docs if d.type is t],
                )
                for t in required
            ],
            correction_round=self.correction_round,
            correction_reasons=self.correction_reasons,
            affiliation_status=self.affiliation_status,
            fee=fee,
            production_order_id=self.production.order_id if self.production else None,
            failed_production_orders=self.failed_orders,
            new_card_masked=mask_card_number(self.new_card) if self.new_card else None,
            sla_breached=self.sla_breached,
            assigned_to=self.assignee,
            received_by=list(dict.fromkeys(sub.received_by for sub in self.submissions)),
            claim_expires_at=self.claim_until,
            review_due_at=self.review_due,
            flags=self.flags,
            reminders_sent=self.reminders,
            anomalies=self.anomalies,
            ignored_events=self.ignored,
            timeline=self.timeline,
            policy_version=policy.version if policy else "",
            policy_hash=self.report.policy_hash if self.report else None,
            money=self.money(),
            closing=None if self.stage.terminal or not self.closing else self.closing.outcome,
            outcome_reason=self.closing.reason if self.closing else None,
        )

    def search_attributes(self) -> list[Any]:
        """What operations filter cases by in the Web UI and `reissue cases list`."""

        def maybe(key: Any, value: Any) -> Any:
            return key.value_unset() if value is None else key.value_set(value)

        return [
            CASE_STAGE.value_set(self.stage.value),
            DISTRICT.value_set(self.inp.district),
            INSURED_CATEGORY.value_set(self.inp.insured_category.value),
            AWAITING_PARTY.value_set(self.awaiting.value),
            REPORT_CHANNEL.value_set(self.inp.channel.value),
            SLA_BREACHED.value_set(self.sla_breached),
            CORRECTION_ROUND.value_set(self.correction_round),
            maybe(ASSIGNED_TO, self.assignee),
            maybe(REVIEW_DUE_AT, self.review_due),
            maybe(NEXT_DEADLINE, None if self.stage.terminal else self.deadline),
        ]

    def details(self) -> str:
        """The Web UI's "current details": what the case waits for, in plain words."""
        if self.stage.terminal:
            return f"**{self.stage.value}** — {self.action}"
        lines = [f"**{self.stage.value}** — waiting for {self.awaiting.value}: {self.action}"]
        if self.deadline:
            lines.append(f"until {beijing(self.deadline)}")
        if self.assignee:
            lines.append(f"claimed by {self.assignee} until {beijing(self.claim_until)}")
        sent = ", ".join(f"{n} {what} reminder(s) sent" for what, n in self.reminders.items())
        if sent:
            lines.append(sent)
        if self.sla_breached:
            lines.append("review SLA breached")
        return "\n\n".join(lines)
