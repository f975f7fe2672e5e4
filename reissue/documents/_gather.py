"""Filling in the documents from the case: its input (the full personal data, from the
encrypted start of its history), its status, and the registry's loss report."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

import asyncpg
from temporalio.api.enums.v1 import EventType

from reissue.activities.repositories import documents as registry
from reissue.client import ReissueClient
from reissue.documents._render import ApplicationForm, LossReportProof
from reissue.schemas.enums import Stage

__all__ = [
    "DocumentUnavailable",
    "NotAtStage",
    "gather_application_form",
    "gather_loss_report_proof",
]


class DocumentUnavailable(Exception):
    """The case cannot have this document now (the reason names what is missing)."""


async def _case_input(client: ReissueClient, case_id: str) -> dict[str, Any]:
    """The case's input as it started (decoded with the client's codec keys)."""
    async for event in client.handle(case_id).fetch_history_events():
        if event.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            break
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        (inp,) = await client.temporal.data_converter.decode(list(payloads), [dict[str, Any]])
        if isinstance(inp, dict) and "applicant" in inp:
            return inp
        break
    raise DocumentUnavailable("the case's input cannot be read")


class NotAtStage(DocumentUnavailable):
    """The case is not at a stage the document is made in (`stage`: where it is)."""

    def __init__(self, stage: Stage) -> None:
        super().__init__(f"not made at this stage ({stage.value})")
        self.stage = stage


async def gather_application_form(
    client: ReissueClient,
    case_id: str,
    *,
    clerk: str | None,
    printed_by: str,
    stages: Collection[Stage] | None = None,
) -> ApplicationForm:
    """The application form of the case (workflow ID), as it stands now; with `stages`,
    only while the case is at one of them (else `NotAtStage`)."""
    st = await client.status(case_id)
    if stages is not None and st.stage not in stages:
        raise NotAtStage(st.stage)
    inp = await _case_input(client, case_id)
    applicant, affiliation = inp["applicant"], inp.get("affiliation") or {"kind": "none"}
    return ApplicationForm(
        case_id=case_id,
        record_id=st.case_id,
        name=str(applicant["name"]),
        resident_id=str(applicant["resident_id"]),
        mobile=str(applicant["mobile"]),
        card_number=str(inp["card_number"]),
        insured_category=st.insured_category.value,
        district=st.district,
        affiliation_kind=str(affiliation.get("kind", "none")),
        affiliation_name=str(affiliation.get("name", "")),
        affiliation_code=str(affiliation.get("credit_code") or affiliation.get("code") or ""),
        report_number=st.loss_report_number,
        reported_at=st.loss_reported_at,
        channel=st.channel.value,
        report_formal=st.report_formal,
        clerk=clerk,
        printed_by=printed_by,
        printed_at=datetime.now(UTC),
    )


async def gather_loss_report_proof(
    client: ReissueClient, pool: asyncpg.Pool, case_id: str
) -> LossReportProof:
    """The proof of the case's loss report, as the registry holds it now."""
    st = await client.status(case_id)
    if st.loss_report_number is None:
        raise DocumentUnavailable("the case has no loss report yet")
    async with pool.acquire() as conn:
        report = await registry.loss_report(conn, st.loss_report_number)
        validity = await registry.temporary_validity(conn, st.policy_version)
    if report is None or validity is None:
        raise DocumentUnavailable("the registry holds no such loss report")
    formal = report["kind"] == "formal"
    return LossReportProof(
        case_id=case_id,
        record_id=st.case_id,
        report_number=report["report_number"],
        card_number=report["card_number"],
        channel=report["channel"],
        reported_at=report["reported_at"],
        formal=formal,
        valid_until=None if formal else report["reported_at"] + validity,
        state=report["status"],
        closed_at=report["closed_at"],
        issued_at=datetime.now(UTC),
    )
