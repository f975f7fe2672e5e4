"""What a case shows: the `status` query, its search attributes, the Web UI's details.

Everything here is derived from the stages' state; nothing is stored for showing.
"""

from __future__ import annotations

from typing import Any, Protocol

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from reissue.schemas.case import CaseStatus, MaterialCheck
    from reissue.schemas.clock import beijing
    from reissue.schemas.identifiers import mask_card_number
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
    from reissue.workflows.affiliation import Affiliation
    from reissue.workflows.core import Case
    from reissue.workflows.materials import Materials
    from reissue.workflows.money import Money
    from reissue.workflows.production import Production
    from reissue.workflows.report import Report
    from reissue.workflows.review import Review

__all__ = ["CaseStages", "details", "search_attributes", "status"]


class CaseStages(Protocol):
    """The case and its stages, as the workflow holds them."""

    @property
    def case(self) -> Case: ...

    reporting: Report
    collecting: Materials
    confirming: Affiliation
    reviewing: Review
    paying: Money
    producing: Production


def status(wf: CaseStages) -> CaseStatus:
    """The full state of the case (the `status` query)."""
    case, review, money, production = wf.case, wf.reviewing, wf.paying, wf.producing
    policy = case.policy_in_force
    required = policy.materials_for(case.inp.insured_category) if policy else []
    latest = wf.collecting.latest
    docs = latest.documents if latest else []
    new_card = production.new_card
    return CaseStatus(
        case_id=case.case_id,
        stage=case.stage,
        awaiting=case.awaiting,
        pending_action=case.action,
        deadline=case.deadline,
        card_masked=case.card_masked,
        district=case.inp.district,
        insured_category=case.inp.insured_category,
        channel=case.inp.channel,
        loss_reported_at=case.reported_at,
        liability_cutoff=case.reported_at,
        loss_report_number=case.report.report_number if case.report else None,
        report_formal=wf.reporting.formal,
        card_frozen=wf.reporting.card_frozen,
        bank_frozen=wf.reporting.bank_frozen,
        report_stands_until=wf.reporting.standing_until,
        materials=[
            MaterialCheck(
                type=t,
                received=any(d.type is t for d in docs),
                doc_ids=[d.doc_id for d in docs if d.type is t],
            )
            for t in required
        ],
        correction_round=review.correction_round,
        correction_reasons=review.reasons,
        affiliation_status=wf.confirming.status,
        fee=money.status(),
        production_order_id=production.order.order_id if production.order else None,
        failed_production_orders=production.failed_orders,
        new_card_masked=mask_card_number(new_card) if new_card else None,
        sla_breached=review.sla_breached,
        assigned_to=review.assignee,
        received_by=wf.collecting.received_by,
        claim_expires_at=review.claim_until,
        review_due_at=review.due,
        flags=[f.value for f in case.flags],
        reminders_sent=case.reminders,
        anomalies=case.anomalies,
        ignored_events=case.ignored,
        timeline=case.timeline,
        policy_version=policy.version if policy else "",
        policy_hash=case.report.policy_hash if case.report else None,
        money=money.figures(),
        closing=None if case.stage.terminal or not case.closing else case.closing.outcome,
        outcome_reason=case.closing.reason if case.closing else None,
    )


def search_attributes(wf: CaseStages) -> list[Any]:
    """What operations filter cases by in the Web UI and `reissue cases list`."""
    case, review = wf.case, wf.reviewing

    def maybe(key: Any, value: Any) -> Any:
        return key.value_unset() if value is None else key.value_set(value)

    return [
        CASE_STAGE.value_set(case.stage.value),
        DISTRICT.value_set(case.inp.district),
        INSURED_CATEGORY.value_set(case.inp.insured_category.value),
        AWAITING_PARTY.value_set(case.awaiting.value),
        REPORT_CHANNEL.value_set(case.inp.channel.value),
        SLA_BREACHED.value_set(review.sla_breached),
        CORRECTION_ROUND.value_set(review.correction_round),
        maybe(ASSIGNED_TO, review.assignee),
        maybe(REVIEW_DUE_AT, review.due),
        maybe(NEXT_DEADLINE, None if case.stage.terminal else case.deadline),
    ]


def details(wf: CaseStages) -> str:
    """The Web UI's "current details": what the case waits for, in plain words."""
    case, review = wf.case, wf.reviewing
    if case.stage.terminal:
        return f"**{case.stage.value}** — {case.action}"
    lines = [f"**{case.stage.value}** — waiting for {case.awaiting.value}: {case.action}"]
    if case.deadline:
        lines.append(f"until {beijing(case.deadline)}")
    if review.assignee:
        lines.append(f"claimed by {review.assignee} until {beijing(review.claim_until)}")
    sent = ", ".join(f"{n} {what} reminder(s) sent" for what, n in case.reminders.items())
    if sent:
        lines.append(sent)
    if review.sla_breached:
        lines.append("review SLA breached")
    return "\n\n".join(lines)
