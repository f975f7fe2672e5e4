"""Activities of the service centre's casework: confirmations, materials, reviews, messages, audit."""

from __future__ import annotations

import asyncpg

from reissue.activities.db import Connection, Idempotency, idempotent
from reissue.activities.notifications import render
from reissue.activities.repositories import audit, casework
from reissue.schemas.activities import (
    APPEND_AUDIT_EVENT,
    NOTIFY,
    PRECHECK_MATERIALS,
    RECORD_REVIEW_DECISION,
    REQUEST_AFFILIATION_CONFIRMATION,
    AffiliationRequestInput,
    AuditInput,
    Done,
    NotifyInput,
    PrecheckInput,
    PrecheckResult,
    ReviewRecordInput,
)

__all__ = ["CaseworkActivities"]


class CaseworkActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._once = Idempotency(pool)

    @idempotent(REQUEST_AFFILIATION_CONFIRMATION)
    async def request_affiliation_confirmation(
        self, conn: Connection, req: AffiliationRequestInput
    ) -> Done:
        """Ask the employer unit or school to confirm the applicant through its portal."""
        await casework.insert_affiliation_request(
            conn,
            case_id=req.case_id,
            step=req.step,
            kind=req.kind,
            org_code=req.org_code,
            at=req.at,
        )
        await audit.record(
            conn,
            req,
            "affiliation_requested",
            actor="system",
            kind=req.kind,
            org_code=req.org_code,
        )
        return Done(changed=True)

    @idempotent(PRECHECK_MATERIALS)
    async def precheck_materials(self, conn: Connection, req: PrecheckInput) -> PrecheckResult:
        """Automatic completeness and format check before staff review."""
        problems = req.problems()
        await casework.insert_submission(
            conn,
            case_id=req.case_id,
            round=req.round,
            documents=[d.model_dump(mode="json") for d in req.documents],
            passed=not problems,
            problems=problems,
            at=req.at,
        )
        await audit.record(
            conn,
            req,
            "materials_prechecked",
            actor="system",
            round=req.round,
            passed=not problems,
            problems=problems,
            documents=[d.doc_id for d in req.documents],
        )
        return PrecheckResult(passed=not problems, problems=problems)

    @idempotent(RECORD_REVIEW_DECISION)
    async def record_review_decision(self, conn: Connection, req: ReviewRecordInput) -> Done:
        await casework.insert_review(
            conn,
            case_id=req.case_id,
            round=req.round,
            reviewer=req.reviewer,
            verdict=req.verdict.value,
            reasons=req.reasons,
            waive_fee=req.waive_fee,
            waiver_reason=req.waiver_reason,
            at=req.at,
        )
        await audit.record(
            conn,
            req,
            "review_decided",
            actor=req.reviewer,
            round=req.round,
            verdict=req.verdict.value,
            reasons=req.reasons,
            waive_fee=req.waive_fee,
            waiver_reason=req.waiver_reason,
        )
        return Done(changed=True)

    @idempotent(NOTIFY)
    async def notify(self, conn: Connection, req: NotifyInput) -> Done:
        """Put a message in the outbox for the sender service to deliver."""
        changed = await casework.insert_notification(
            conn,
            dedupe_key=req.key,
            case_id=req.case_id,
            recipient=req.recipient.value,
            recipient_ref=req.recipient_ref,
            template=req.template,
            message=render(req.template, req.params),
            at=req.at,
        )
        return Done(changed=changed)

    @idempotent(APPEND_AUDIT_EVENT)
    async def append_audit_event(self, conn: Connection, req: AuditInput) -> Done:
        changed = await audit.append(
            conn,
            dedupe_key=req.key,
            case_id=req.case_id,
            event_type=req.event_type,
            actor=req.actor,
            detail=req.detail,
            at=req.at,
        )
        return Done(changed=changed)
