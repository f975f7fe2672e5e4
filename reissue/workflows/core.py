"""What every stage of a case shares: who it is, where it stands, and how it acts.

`Case` holds the case's identity (input, case ID, the registry's report and the policy
in force), its stage and what it waits for, how it ends, and what it noted on the way
(flags, reminders, anomalies, ignored events). Its methods are the verbs the stages
use: take a step (an activity), notify, remind, audit, enter a stage, wait. Every one
of them runs while the caller holds the case's turn (`workflows.turns`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel

    from reissue.schemas.activities import (
        APPEND_AUDIT_EVENT,
        NOTIFY,
        ActivityDef,
        AuditInput,
        CaseStep,
        NotifyInput,
        RegisterLossResult,
    )
    from reissue.schemas.case import CaseInput, StageEntry
    from reissue.schemas.enums import AwaitingParty, CaseFlag, Recipient, Stage
    from reissue.schemas.errors import CASE_ENDING, WRONG_STAGE
    from reissue.schemas.identifiers import mask_card_number
    from reissue.schemas.policy import CasePolicy
    from reissue.workflows.calls import call
    from reissue.workflows.metrics import CaseMetrics
    from reissue.workflows.turns import Gate, Turns

from temporalio.exceptions import ApplicationError

__all__ = ["Case", "Ending", "every"]

R = TypeVar("R", bound=BaseModel)
In = TypeVar("In", bound=CaseStep)


class Ending(Exception):
    """How the case ends, once decided: raised to leave the main path early, and kept
    while the case closes (`Case.ending`, `Case.closing`)."""

    def __init__(
        self,
        outcome: Stage,
        reason: str,
        *,
        notice: str | None = None,
        through_temporal: bool = False,
    ) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason
        # The reasons' codes the applicant's notice gives (its renderer turns them into
        # the catalogue's text); `reason` is what the staff read.
        self.notice = reason if notice is None else notice
        # A cancellation requested through Temporal itself (the Web UI's "Request
        # Cancellation"): the workflow ends cancelled once it has closed the case.
        self.through_temporal = through_temporal


def every(
    now: Callable[[], datetime], interval: timedelta, most: int
) -> Callable[[int], datetime | None]:
    """Reminders one `interval` apart, at most `most` of them."""
    return lambda sent: now() + interval if sent < most else None


@dataclass
class Case:
    """The state every stage shares, and the verbs they act with."""

    inp: CaseInput
    case_id: str  # workflow ID : first run ID
    started_at: datetime
    turns: Turns
    metrics: CaseMetrics
    report: RegisterLossResult | None = None
    policy_in_force: CasePolicy | None = None
    opened: bool = False  # registered and frozen: from here an early end is compensated
    stage: Stage = Stage.LOSS_REPORTED
    awaiting: AwaitingParty = AwaitingParty.SYSTEM
    action: str = "registering the loss report and freezing the card"
    deadline: datetime | None = None
    timeline: list[StageEntry] = field(default_factory=list)
    ending: Ending | None = None  # an end accepted (found, cancel, lapse, ...)
    closing: Ending | None = None  # what the case is doing to close, COMPLETED included
    flags: list[CaseFlag] = field(default_factory=list)
    reminders: dict[str, int] = field(default_factory=dict)
    anomalies: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    audit_events: int = 0
    # Registry changes of handlers (submission, formalisation, found, cancel) and of
    # compensation go through one at a time; so do the payments.
    registry: Gate = field(init=False)
    money: Gate = field(init=False)
    # Set by the workflow: the search attributes and Web UI details of the whole case,
    # and the task of its main path.
    shown: Callable[[], tuple[list[Any], str]] = field(default=lambda: ([], ""))
    main: asyncio.Task[Any] | None = None

    def __post_init__(self) -> None:
        self.registry = Gate(self.turns)
        self.money = Gate(self.turns)

    # ------------------------------------------------------------------ derived

    @property
    def policy(self) -> CasePolicy:
        """The policy in force for this case (known once the case has opened)."""
        assert self.policy_in_force is not None
        return self.policy_in_force

    @property
    def card_masked(self) -> str:
        return mask_card_number(self.inp.card_number)

    @property
    def workflow_id(self) -> str:
        return self.case_id.split(":")[0]

    @property
    def account_id(self) -> str:
        assert self.report is not None
        return self.report.account_id

    @property
    def reported_at(self) -> datetime:
        """The liability cut-off: as the registry recorded it, or as claimed until then."""
        if self.report is not None:
            return self.report.reported_at
        claimed = self.inp.reported_at
        return min(claimed, self.started_at) if claimed else self.started_at

    @property
    def activating(self) -> bool:
        """The new card is being activated: the case completes, no early end any more."""
        return self.closing is not None and self.closing.outcome is Stage.COMPLETED

    def now(self) -> datetime:
        """The case's clock: the time of the history event that gave the turn."""
        return self.turns.now

    def flag(self, flag: CaseFlag, on: bool = True) -> None:
        if on and flag not in self.flags:
            self.flags.append(flag)
        elif not on and flag in self.flags:
            self.flags.remove(flag)

    # ------------------------------------------------------------------ refusals

    def require_open(self, name: str, *, refuse: bool = False) -> None:
        """For a validator (ValueError), or after waiting in a handler (`refuse`:
        ApplicationError)."""
        problem = None
        if self.stage.terminal or self.ending is not None:
            problem = f"{name}: the case has ended ({self.stage.value})"
        elif self.activating:
            problem = f"{name}: the new card is being activated; the case is completing"
        if problem is None:
            return
        if refuse:
            raise ApplicationError(problem, type=CASE_ENDING, non_retryable=True)
        raise ValueError(problem)

    def require_stage(self, name: str, stage: Stage, *, refuse: bool = False) -> None:
        self.require_open(name, refuse=refuse)
        if self.stage is not stage:
            problem = f"{name}: not accepted in stage {self.stage.value}"
            if refuse:
                raise ApplicationError(problem, type=WRONG_STAGE, non_retryable=True)
            raise ValueError(problem)

    # ------------------------------------------------------------------ acting

    def step_key(self, name: str) -> dict[str, Any]:
        """The idempotency key of a step (case and step name) and the case's time."""
        return {"case_id": self.case_id, "step": name, "at": self.now()}

    def checkpoint(self) -> None:
        """On the main path, an early end accepted meanwhile takes effect now."""
        if (
            self.ending is not None
            and self.opened
            and self.closing is None
            and asyncio.current_task() is self.main
        ):
            raise self.ending

    async def act(
        self, activity: ActivityDef[In, R], arg: In, *, summary: str, local: bool = True
    ) -> R:
        """One step. A step on our own registry runs as a local activity with the turn
        held; a partner's as an activity, the turn given up until it answers. Before a
        step of the main path, an early end accepted meanwhile takes effect."""
        if asyncio.current_task() is self.main:
            self.checkpoint()
        return await call(activity, arg, summary=summary, turns=self.turns, local=local)

    async def close(self, outcome: Stage, reason: str, *, note: str | None = None) -> None:
        """The case has its outcome: put on the audit log (which tells the system of record
        the case is closed) by an activity of its own — so that the case closes right
        after something its history records, whatever events arrive meanwhile — then
        shown."""
        self.audit_events += 1
        await self.act(
            APPEND_AUDIT_EVENT,
            AuditInput(
                **self.step_key(f"event:{self.audit_events}:case_closed"),
                event_type="case_closed",
                actor="system",
                detail={"outcome": outcome.value, "reason": reason},
            ),
            summary="audit: case_closed",
            local=False,
        )
        self.enter(outcome, AwaitingParty.NONE, note or reason)

    async def notify(
        self,
        recipient: Recipient,
        template: str,
        *,
        ref: str | None = None,
        step: str | None = None,
        summary: str | None = None,
        **params: str,
    ) -> None:
        await self.act(
            NOTIFY,
            NotifyInput(
                **self.step_key(f"notify:{step or template}"),
                recipient=recipient,
                recipient_ref=ref or (self.account_id if self.report else self.workflow_id),
                template=template,
                params=params,
            ),
            summary=summary or f"notify {recipient.value}: {template}",
        )

    async def remind(
        self,
        what: str,
        recipient: Recipient,
        template: str,
        *,
        nth: int,
        of: int,
        round_: int,
        ref: str | None = None,
        **params: str,
    ) -> None:
        total = self.reminders.get(what, 0) + 1
        self.reminders[what] = total
        self.metrics.reminded(what)
        self.show()
        await self.notify(
            recipient,
            template,
            ref=ref,
            step=f"{template}:{round_}:{total}",
            summary=f"reminder {nth} of {of} sent to {recipient.value}",
            n=str(nth),
            **params,
        )

    async def audit(self, event_type: str, actor: str, detail: dict[str, Any]) -> None:
        self.audit_events += 1
        await self.act(
            APPEND_AUDIT_EVENT,
            AuditInput(
                **self.step_key(f"event:{self.audit_events}:{event_type}"),
                event_type=event_type,
                actor=actor,
                detail=detail,
            ),
            summary=f"audit: {event_type}",
        )

    async def ignore(self, event: str, detail: str) -> None:
        """Duplicate or late events change nothing; they are kept on record."""
        self.ignored.append(f"{event} in {self.stage.value}: {detail}")
        await self.audit(
            "event_ignored",
            "system",
            {"event": event, "stage": self.stage.value, "detail": detail},
        )

    def anomaly(self, kind: str, text: str) -> None:
        """A partner's report the case could not accept: on the case, and counted by the
        event it came with (`kind`, a name of ours: never the report's content)."""
        self.anomalies.append(text)
        self.metrics.anomaly(kind)

    # ------------------------------------------------------------------ where it stands

    def enter(
        self,
        stage: Stage,
        awaiting: AwaitingParty,
        action: str,
        deadline: datetime | None = None,
    ) -> None:
        self.checkpoint()  # a stage is not entered once an early end was accepted
        if stage is not self.stage or not self.timeline:
            if self.timeline:
                left = self.timeline[-1]
                self.metrics.left_stage(left.stage.value, self.now() - left.entered_at)
            if stage.terminal:
                self.metrics.closed(outcome=stage.value, district=self.inp.district)
            self.timeline.append(StageEntry(stage=stage, entered_at=self.now(), note=action))
        self.stage, self.awaiting, self.action, self.deadline = stage, awaiting, action, deadline
        self.show()

    def set_deadline(self, deadline: datetime | None) -> None:
        """The deadline of a wait within a stage, shown in visibility (`NextDeadline`)."""
        self.deadline = deadline
        self.show()

    def show(self) -> None:
        """Search attributes and the Web UI's current details, from the whole case."""
        attributes, details = self.shown()
        workflow.upsert_search_attributes(attributes)
        workflow.set_current_details(details)

    # ------------------------------------------------------------------ waiting

    async def wait(self, done: Callable[[], bool], until: datetime | None, what: str = "") -> bool:
        """Wait for `done`, an early end, or `until`. True if done; raises on an early end."""
        await self.turns.wait(
            lambda: done() or self.ending is not None, until=until, summary=what or None
        )
        if self.ending is not None:
            raise self.ending
        return done()

    async def wait_reminding(
        self,
        done: Callable[[], bool],
        *,
        reminders: Callable[[int], datetime | None],
        remind: Callable[[int], Awaitable[None]],
        label: Callable[[int], str],
        deadline: datetime | None = None,
        deadline_label: str = "",
        show_deadline: bool = False,
    ) -> bool:
        """Wait for `done`, sending reminder n at `reminders(n - 1)` (None: no more) until
        `deadline` (None: for ever). True once done; False at the deadline; raises on an
        early end. `show_deadline`: each wait's end is the case's NextDeadline."""
        sent = 0
        while True:
            at = reminders(sent)
            reminder_first = at is not None and (deadline is None or at < deadline)
            until = at if reminder_first else deadline
            if show_deadline and until != self.deadline:
                self.set_deadline(until)
            if await self.wait(done, until, label(sent + 1) if reminder_first else deadline_label):
                return True
            if not reminder_first:
                return False
            sent += 1
            await remind(sent)
