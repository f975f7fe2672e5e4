"""Materials and corrections: the application handed in at a counter (which makes the
report formal), reminders while it is missing, and the deadlines after which the case
lapses — the temporary report's validity, the formal deadline, a resubmission's."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from reissue.schemas.activities import PRECHECK_MATERIALS, PrecheckInput
    from reissue.schemas.clock import beijing, beijing_cn
    from reissue.schemas.enums import AwaitingParty, Recipient, Stage
    from reissue.schemas.errors import CASE_ENDING, MATERIALS_INCOMPLETE
    from reissue.schemas.events import MaterialsAccepted, MaterialsSubmission
    from reissue.schemas.precheck import precheck_problems
    from reissue.schemas.reasons import Reason
    from reissue.workflows.core import Case, Ending, every
    from reissue.workflows.report import Report

__all__ = ["Materials"]


class Materials:
    """The submissions a counter handed in for this case, accepted ones in order."""

    def __init__(self, case: Case, report: Report, corrections: Callable[[], int]) -> None:
        self.case = case
        self.report = report
        self._corrections = corrections  # correction rounds so far (the review's)
        self.attempts = 0  # submissions checked, accepted or not
        self.submissions: list[MaterialsSubmission] = []

    @property
    def accepted_rounds(self) -> int:
        return len(self.submissions)

    @property
    def latest(self) -> MaterialsSubmission | None:
        return self.submissions[-1] if self.submissions else None

    @property
    def received_by(self) -> list[str]:
        """The clerks who received the accepted materials (none of them may review)."""
        return list(dict.fromkeys(sub.received_by for sub in self.submissions))

    # ------------------------------------------------------------------ the main path

    async def collect(self) -> None:
        """Wait for the application (or a corrected one), reminding; lapse at the deadline."""
        case, report = self.case, self.report
        policy = case.policy
        most = policy.max_materials_reminders
        accepted_before = self.accepted_rounds
        while True:
            # A report made formal at a counter (ID only) changes the deadline: start over.
            formal_at_entry = report.formal
            if self._corrections():
                deadline = case.now() + policy.resubmission_deadline
                action = f"resubmit corrected materials (round {self._corrections()})"
                lapse = "corrected materials not resubmitted by the deadline"
                lapse_code = Reason.CORRECTION_NOT_RESUBMITTED
                lapse_what = "resubmission deadline"
            elif not report.formal:
                deadline = report.temporary_expiry()
                action = "hand in the application in person (temporary report)"
                lapse = "temporary loss report expired without a formal application"
                lapse_code = Reason.TEMPORARY_REPORT_EXPIRED
                lapse_what = "temporary report expires"
            else:
                deadline = case.now() + policy.formal_materials_deadline
                action = "hand in the application and materials"
                lapse = "application not handed in by the deadline"
                lapse_code = Reason.APPLICATION_NOT_SUBMITTED
                lapse_what = "application deadline"
            case.enter(Stage.AWAITING_MATERIALS, AwaitingParty.APPLICANT, action, deadline)

            def moved(formal_at_entry: bool = formal_at_entry) -> bool:
                # Made formal by `make_report_formal` (a submission does both at once).
                made_formal = report.formal != formal_at_entry and not case.registry.busy
                return self.accepted_rounds > accepted_before or made_formal

            async def remind(nth: int, deadline: datetime = deadline) -> None:
                await case.remind(
                    "materials",
                    Recipient.APPLICANT,
                    "materials_reminder",
                    nth=nth,
                    of=most,
                    round_=self.accepted_rounds,
                    deadline=beijing_cn(deadline),
                )

            if not await case.wait_reminding(
                moved,
                reminders=every(case.now, policy.materials_reminder_interval, most),
                remind=remind,
                label=lambda nth: f"materials reminder {nth} of {most}",
                deadline=deadline,
                deadline_label=f"{lapse_what} at {beijing(deadline)}",
            ):
                # A submission or formalisation being checked right now still counts.
                await case.turns.wait(lambda: not case.registry.busy)
                if not moved():
                    raise Ending(Stage.LAPSED, lapse, notice=lapse_code)
            if self.accepted_rounds > accepted_before:
                return
            # Made formal: a new deadline.

    # ------------------------------------------------------------------ events in

    async def submit(self, sub: MaterialsSubmission) -> MaterialsAccepted:
        """The application and materials handed in at a counter (update `submit_materials`)."""
        case = self.case
        async with case.registry.through():
            # Waited for a submission, formalisation or early end being decided.
            case.require_stage("submit_materials", Stage.AWAITING_MATERIALS, refuse=True)
            self.attempts += 1
            assert case.report is not None
            policy = case.policy
            check = await case.act(
                PRECHECK_MATERIALS,
                PrecheckInput(
                    **case.step_key(f"precheck:{self.attempts}"),
                    round=self.attempts,
                    category=case.inp.insured_category,
                    resident_id=case.inp.applicant.resident_id,
                    report_number=case.report.report_number,
                    loss_proof_number=sub.loss_proof_number,
                    documents=sub.documents,
                    required=policy.materials_for(case.inp.insured_category),
                    photo_min_width_px=policy.photo_min_width_px,
                    photo_min_height_px=policy.photo_min_height_px,
                    fee_exemption=sub.fee_exemption,
                ),
                summary="automatic pre-check of the materials",
            )
            if not check.passed:
                raise ApplicationError(
                    "; ".join(check.problems), type=MATERIALS_INCOMPLETE, non_retryable=True
                )
            if case.ending is not None:
                raise ApplicationError(
                    f"submit_materials: the case is ending ({case.ending.outcome.value})",
                    type=CASE_ENDING,
                    non_retryable=True,
                )
            if not self.report.formal:
                await self.report.formalise("report_formal")
            self.submissions.append(sub)
            accepted = self.accepted_rounds
        # Answer with where the case went, once the main path has moved it on.
        await case.turns.wait(lambda: case.stage is not Stage.AWAITING_MATERIALS)
        return MaterialsAccepted(round=accepted, stage=case.stage, report_formal=self.report.formal)

    def check(self, sub: MaterialsSubmission) -> None:
        """The same pure check as the activity, so bad submissions are refused before
        anything is written or recorded in history (a validator)."""
        case = self.case
        case.require_stage("submit_materials", Stage.AWAITING_MATERIALS)
        if case.registry.busy:
            raise ValueError("submit_materials: another submission is being checked")
        assert case.report is not None
        policy = case.policy
        problems = precheck_problems(
            documents=sub.documents,
            required=policy.materials_for(case.inp.insured_category),
            loss_proof_number=sub.loss_proof_number,
            report_number=case.report.report_number,
            resident_id=case.inp.applicant.resident_id,
            photo_min_width_px=policy.photo_min_width_px,
            photo_min_height_px=policy.photo_min_height_px,
            fee_exemption=sub.fee_exemption,
        )
        if problems:
            raise ValueError("; ".join(problems))
