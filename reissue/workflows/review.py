"""Review: staff claim the case from the queue and approve it, ask for a correction or
reject it, never one whose materials they received themselves (four eyes); a review
that overruns the policy's SLA is flagged and a supervisor told."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from reissue.schemas.activities import RECORD_REVIEW_DECISION, ReviewRecordInput
    from reissue.schemas.clock import beijing_cn, duration_cn
    from reissue.schemas.enums import AwaitingParty, Recipient, ReviewVerdict, Stage
    from reissue.schemas.errors import ALREADY_DECIDED, WRONG_STAGE
    from reissue.schemas.events import (
        ClaimState,
        ReviewClaim,
        ReviewDecision,
        ReviewOutcome,
        ReviewRelease,
    )
    from reissue.schemas.permissions import refuse_four_eyes
    from reissue.schemas.reasons import Reason
    from reissue.workflows.core import Case
    from reissue.workflows.materials import Materials

__all__ = ["Review"]


class Review:
    """Review rounds, their decisions as applied, the claim and the SLA."""

    def __init__(
        self, case: Case, materials: Materials, heading: Callable[[], Stage | None]
    ) -> None:
        self.case = case
        self.materials = materials
        self._heading = heading  # after a decision: where the case goes, once known
        self.rounds = 0  # reviews begun (a round may have more than one submission)
        self.deciding = False  # a reviewer's decision is being recorded
        self.decisions: list[ReviewDecision] = []  # one per round, as applied
        self.due: datetime | None = None
        self.assignee: str | None = None
        self.claim_until: datetime | None = None
        self.sla_breached = False

    @property
    def decision(self) -> ReviewDecision | None:
        """This round's decision, once recorded."""
        if self.rounds and len(self.decisions) == self.rounds:
            return self.decisions[-1]
        return None

    @property
    def open(self) -> bool:
        return self.case.stage is Stage.UNDER_REVIEW and not self.deciding and self.decision is None

    @property
    def correction_round(self) -> int:
        return sum(d.verdict is ReviewVerdict.REQUEST_CORRECTION for d in self.decisions)

    @property
    def reasons(self) -> list[str]:
        """The reasons of the latest correction request or rejection."""
        refusals = [d for d in self.decisions if d.verdict is not ReviewVerdict.APPROVE]
        return list(refusals[-1].reasons) if refusals else []

    def claim_state(self) -> ClaimState:
        return ClaimState(
            assigned_to=self.assignee, claim_expires_at=self.claim_until, review_due_at=self.due
        )

    # ------------------------------------------------------------------ the main path

    async def review(self) -> ReviewVerdict:
        """One review round: wait for a decision, letting claims run out and flagging a
        breached SLA; tell the applicant of a correction request."""
        case = self.case
        policy = case.policy
        sla_due = case.now() + policy.review_sla
        self.due = sla_due
        case.enter(
            Stage.UNDER_REVIEW, AwaitingParty.STAFF, "staff review of the materials", sla_due
        )
        self.rounds += 1
        while self.decision is None:
            # Wake for a decision, a change of claim, the SLA, or the claim running out.
            claim = (self.assignee, self.claim_until)
            wake = [t for t in (None if self.sla_breached else sla_due, self.claim_until) if t]
            until = min(wake) if wake else None
            what = "review SLA" if until == sla_due else "review claim expires"

            def moved(seen: tuple[str | None, datetime | None] = claim) -> bool:
                return self.decision is not None or (self.assignee, self.claim_until) != seen

            if await case.wait(moved, until, what):
                continue
            now = case.now()
            if self.claim_until is not None and now >= self.claim_until:
                self._claim(None, reason="claim expired")
            if not self.sla_breached and now >= sla_due:
                self.sla_breached = True
                case.metrics.sla_breached(district=case.inp.district)
                case.show()
                await case.notify(
                    Recipient.SUPERVISOR,
                    "review_sla_breached",
                    ref=case.inp.district,
                    step=f"sla_breach:{self.materials.accepted_rounds}",
                    case=case.workflow_id,
                    district=case.inp.district,
                    sla=duration_cn(policy.review_sla),
                )
        self.due = None
        self._claim(None, reason="decided")
        verdict = self.decisions[-1].verdict
        if verdict is ReviewVerdict.REQUEST_CORRECTION:
            await case.notify(
                Recipient.APPLICANT,
                "correction_requested",
                step=f"correction:{self.correction_round}",
                round=str(self.correction_round),
                reasons="; ".join(self.reasons),
                deadline=beijing_cn(case.now() + policy.resubmission_deadline),
            )
        return verdict

    # ------------------------------------------------------------------ events in

    async def decide(self, decision: ReviewDecision) -> ReviewOutcome:
        """A reviewer approves, asks for a correction, or rejects (update `review`)."""
        case = self.case
        if not self.open:  # (decided by another while this waited its turn)
            raise ApplicationError(
                "review: this round has already been decided",
                type=ALREADY_DECIDED,
                non_retryable=True,
            )
        self.deciding = True
        verdict, reasons = decision.verdict, list(decision.reasons)
        limit = case.policy.max_correction_rounds
        if verdict is ReviewVerdict.REQUEST_CORRECTION and self.correction_round >= limit:
            verdict = ReviewVerdict.REJECT
            reasons.append(Reason.CORRECTION_ROUNDS_EXHAUSTED)
        rounds = self.materials.accepted_rounds
        await case.act(
            RECORD_REVIEW_DECISION,
            ReviewRecordInput(
                **case.step_key(f"review:{rounds}"),
                round=rounds,
                reviewer=decision.reviewer,
                verdict=verdict,
                reasons=reasons,
                waive_fee=decision.waive_fee,
                waiver_reason=decision.waiver_reason,
            ),
            summary=f"record review decision: {verdict.value}",
        )
        self.decisions.append(decision.model_copy(update={"verdict": verdict, "reasons": reasons}))
        self.deciding = False
        # Answer once the case has taken the decision in (an approval: its fee assessed),
        # with the stage it goes to; the steps after that (the payment order, the bureau)
        # do not keep the reviewer waiting.
        await case.turns.wait(lambda: self._heading() is not None)
        stage = self._heading()
        assert stage is not None
        return ReviewOutcome(verdict=verdict, correction_round=self.correction_round, stage=stage)

    def check_decision(self, decision: ReviewDecision) -> None:
        self.case.require_stage("review", Stage.UNDER_REVIEW)
        if not self.open:
            raise ValueError("review: this round has already been decided")
        if self.assignee is not None and self.assignee != decision.reviewer:
            raise ValueError(f"review: the case is claimed by {self.assignee}")
        refuse_four_eyes("review", decision.reviewer, self.materials.received_by)

    async def claim(self, claim: ReviewClaim) -> ClaimState:
        """A reviewer takes the case from the queue; the claim runs out after the policy's
        TTL (update `claim_review`)."""
        self._refuse_unless(lambda: self.check_claim(claim))
        self._claim(claim.reviewer, reason=f"claimed by {claim.reviewer}")
        return self.claim_state()

    def check_claim(self, claim: ReviewClaim) -> None:
        self.case.require_stage("claim_review", Stage.UNDER_REVIEW)
        if not self.open:
            raise ValueError("claim_review: this round has already been decided")
        if self.assignee is not None and self.assignee != claim.reviewer:
            raise ValueError(f"claim_review: the case is claimed by {self.assignee}")
        refuse_four_eyes("claim_review", claim.reviewer, self.materials.received_by)

    async def release(self, release: ReviewRelease) -> ClaimState:
        """A supervisor returns a claimed case to the queue (update `release_review`)."""
        self._refuse_unless(lambda: self.check_release(release))
        held_by = self.assignee
        self._claim(None, reason=f"released by {release.supervisor}")
        await self.case.audit(
            "review_released", release.supervisor, {"held_by": held_by, "reason": release.reason}
        )
        return self.claim_state()

    def check_release(self, release: ReviewRelease) -> None:
        self.case.require_stage("release_review", Stage.UNDER_REVIEW)
        if self.assignee is None:
            raise ValueError("release_review: nobody holds this case")
        if release.held_by is not None and release.held_by != self.assignee:
            raise ValueError(f"release_review: the claim has changed hands (now {self.assignee})")

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _refuse_unless(check: Callable[[], None]) -> None:
        """What the validator accepted may have changed while the handler waited its turn:
        checked again, a refusal now is the update's failure."""
        try:
            check()
        except ValueError as e:
            raise ApplicationError(str(e), type=WRONG_STAGE, non_retryable=True) from e

    def _claim(self, reviewer: str | None, *, reason: str) -> None:
        if reviewer is None and self.assignee is None:
            return
        case = self.case
        self.assignee = reviewer
        self.claim_until = case.now() + case.policy.review_claim_ttl if reviewer else None
        case.show()
        workflow.logger.info("review claim changed: %s", reason)
