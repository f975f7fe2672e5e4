"""Affiliation: an employed applicant's unit or a student's school confirms them through
its portal; reminders, then escalation to a supervisor, who may accept the unit's
paper letter instead."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from reissue.schemas.activities import (
        REQUEST_AFFILIATION_CONFIRMATION,
        AffiliationRequestInput,
    )
    from reissue.schemas.case import EmployerUnit, School
    from reissue.schemas.enums import AwaitingParty, CaseFlag, Recipient, Stage
    from reissue.schemas.errors import ALREADY_DECIDED
    from reissue.schemas.events import AffiliationOverride, AffiliationResponse, EventAck
    from reissue.workflows.core import Case, every
    from reissue.workflows.materials import Materials

__all__ = ["Affiliation", "Asked"]


@dataclass(frozen=True)
class Asked:
    """The unit or school was asked to confirm the applicant; no answer yet."""

    escalated: bool = False


class Affiliation:
    """Not required (None), asked, answered by the portal, or settled by staff after
    escalation."""

    def __init__(self, case: Case, materials: Materials) -> None:
        self.case = case
        self.materials = materials
        self.answer: Asked | AffiliationResponse | AffiliationOverride | None = None

    @property
    def status(self) -> str:
        a = self.answer
        if a is None:
            return "not required"
        if isinstance(a, Asked):
            return "requested"
        if isinstance(a, AffiliationOverride):
            return "overridden"
        return "confirmed" if a.confirmed else "denied"

    # ------------------------------------------------------------------ the main path

    async def confirm(self) -> None:
        """Ask the unit or school (once: a correction round does not ask again) and wait
        for its answer, reminding, then escalating to a supervisor."""
        case = self.case
        aff = case.inp.affiliation
        if isinstance(aff, EmployerUnit):
            org_code = aff.credit_code
        elif isinstance(aff, School):
            org_code = aff.code
        else:
            return
        policy = case.policy
        if not policy.require_affiliation_confirmation:
            return
        if self.status in ("confirmed", "overridden"):
            return
        self.answer = Asked()
        ask_round = self.materials.accepted_rounds
        case.enter(
            Stage.AWAITING_AFFILIATION,
            AwaitingParty.UNIT,
            f"confirmation from the {aff.kind} (unit/school portal)",
        )
        await case.act(
            REQUEST_AFFILIATION_CONFIRMATION,
            AffiliationRequestInput(
                **case.step_key(f"affiliation_request:{ask_round}"),
                kind=aff.kind,
                org_code=org_code,
                org_name=aff.name,
                district=case.inp.district,
            ),
            summary=f"ask the {aff.kind} to confirm the applicant",
        )
        await case.notify(
            Recipient.UNIT,
            "affiliation_request",
            ref=org_code,
            step=f"affiliation:{ask_round}",
            card=case.card_masked,
            case=case.workflow_id,
        )
        most = policy.affiliation_reminders_before_escalation

        async def remind_or_escalate(nth: int) -> None:
            if nth <= most:
                await case.remind(
                    "unit",
                    Recipient.UNIT,
                    "affiliation_reminder",
                    nth=nth,
                    of=most,
                    round_=self.materials.accepted_rounds,
                    ref=org_code,
                    card=case.card_masked,
                    case=case.workflow_id,
                )
                return
            # One interval after the last reminder: a supervisor takes over.
            self.answer = Asked(escalated=True)
            case.flag(CaseFlag.AFFILIATION_ESCALATED)
            case.enter(
                Stage.AWAITING_AFFILIATION,
                AwaitingParty.STAFF,
                "escalated: staff may accept the unit's paper letter (override_affiliation)",
            )
            await case.notify(
                Recipient.SUPERVISOR,
                "affiliation_escalation",
                ref=case.inp.district,
                step=f"affiliation_escalation:{ask_round}",
                case=case.workflow_id,
                district=case.inp.district,
            )

        await case.wait_reminding(
            lambda: not isinstance(self.answer, Asked),
            reminders=every(case.now, policy.affiliation_reminder_interval, most + 1),
            remind=remind_or_escalate,
            label=lambda nth: (
                f"unit reminder {nth} of {most}" if nth <= most else "unit escalation"
            ),
            show_deadline=True,
        )
        if self.status == "denied":
            case.flag(CaseFlag.AFFILIATION_DENIED)

    # ------------------------------------------------------------------ events in

    async def respond(self, answer: AffiliationResponse) -> None:
        """The portal's confirmation or denial (signal `affiliation_response`)."""
        case = self.case
        if case.stage is not Stage.AWAITING_AFFILIATION:
            await case.ignore("affiliation_response", f"confirmed={answer.confirmed}")
        elif not isinstance(self.answer, Asked):
            await case.ignore("affiliation_response", "already answered")
        else:
            self.answer = answer

    async def override(self, override: AffiliationOverride) -> EventAck:
        """After escalation, staff accept the unit's paper letter (update
        `override_affiliation`)."""
        case = self.case
        case.require_stage("override_affiliation", Stage.AWAITING_AFFILIATION, refuse=True)
        if not isinstance(self.answer, Asked):  # (answered while this waited its turn)
            raise ApplicationError(
                "override_affiliation: the affiliation is already settled",
                type=ALREADY_DECIDED,
                non_retryable=True,
            )
        self.answer = override
        await case.audit(
            "affiliation_overridden",
            override.staff_id,
            {"letter_doc_id": override.letter.doc_id, "note": override.note},
        )
        await case.turns.wait(lambda: case.stage is not Stage.AWAITING_AFFILIATION)
        return EventAck(stage=case.stage, at=case.now())

    def check_override(self, override: AffiliationOverride) -> None:
        self.case.require_stage("override_affiliation", Stage.AWAITING_AFFILIATION)
        if not isinstance(self.answer, Asked):
            raise ValueError("override_affiliation: the affiliation is already settled")
        if not self.answer.escalated:
            raise ValueError("override_affiliation: allowed only after escalation to a supervisor")
