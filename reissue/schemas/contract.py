"""The public contract as data: every workflow, update, signal and query with its models.

`reissue schemas export` writes a JSON Schema per model into `schemas/json/`, plus
`contract.json` that maps each name other services call to its schemas. They are
committed; a test fails when they drift from the models.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from reissue.schemas.activities import PaymentReceipt
from reissue.schemas.case import CaseInput, CaseResult, CaseStatus
from reissue.schemas.events import (
    AffiliationOverride,
    AffiliationResponse,
    CancelRequest,
    CardCollected,
    CardFound,
    CardProduced,
    ClaimState,
    EventAck,
    LatePayment,
    MaterialsAccepted,
    MaterialsSubmission,
    PaymentConfirmation,
    ProductionFailed,
    ProductionReorder,
    ReportFormalisation,
    ReviewClaim,
    ReviewDecision,
    ReviewOutcome,
    ReviewRelease,
)
from reissue.schemas.policy import CasePolicy

__all__ = [
    "CASE",
    "CONTRACT",
    "LATE_PAYMENT",
    "LATE_PAYMENT_WORKFLOW",
    "SCHEMA_DIR",
    "Query",
    "Signal",
    "Update",
    "WorkflowType",
    "late_payment_workflow_id",
    "render_all",
    "write_all",
]

SCHEMA_DIR = Path(__file__).parent / "json"

A = TypeVar("A", bound=BaseModel)
R = TypeVar("R", bound=BaseModel)


@dataclass(frozen=True)
class WorkflowType(Generic[A, R]):
    """A workflow other services start by name, with its input and result models."""

    name: str
    arg: type[A]
    result: type[R]


@dataclass(frozen=True)
class Update(Generic[A, R]):
    """An update: the caller waits for the case's answer."""

    name: str
    arg: type[A]
    result: type[R]


@dataclass(frozen=True)
class Signal(Generic[A]):
    """A signal: delivered, answered by nothing."""

    name: str
    arg: type[A]


@dataclass(frozen=True)
class Query(Generic[R]):
    """A query, or an update that takes no argument (`registration`)."""

    name: str
    result: type[R]


CASE = WorkflowType("CardReissueWorkflow", CaseInput, CaseResult)
MAKE_REPORT_FORMAL = Update("make_report_formal", ReportFormalisation, EventAck)
SUBMIT_MATERIALS = Update("submit_materials", MaterialsSubmission, MaterialsAccepted)
AFFILIATION_RESPONSE = Signal("affiliation_response", AffiliationResponse)
OVERRIDE_AFFILIATION = Update("override_affiliation", AffiliationOverride, EventAck)
CLAIM_REVIEW = Update("claim_review", ReviewClaim, ClaimState)
RELEASE_REVIEW = Update("release_review", ReviewRelease, ClaimState)
REVIEW = Update("review", ReviewDecision, ReviewOutcome)
PAYMENT_CONFIRMED = Signal("payment_confirmed", PaymentConfirmation)
CARD_PRODUCED = Signal("card_produced", CardProduced)
PRODUCTION_FAILED = Signal("production_failed", ProductionFailed)
REORDER_CARD = Update("reorder_card", ProductionReorder, EventAck)
CARD_COLLECTED = Signal("card_collected", CardCollected)
CARD_FOUND = Update("card_found", CardFound, EventAck)
CANCEL = Update("cancel", CancelRequest, EventAck)
REGISTRATION = Query("registration", CaseStatus)  # an update without argument
STATUS = Query("status", CaseStatus)

# Started by callers when a payment reaches a case that has closed (see README).
LATE_PAYMENT_WORKFLOW = WorkflowType("LatePaymentWorkflow", LatePayment, PaymentReceipt)

Entry = tuple[type[BaseModel] | None, type[BaseModel] | None]


def _entries(
    *calls: WorkflowType[Any, Any] | Update[Any, Any] | Signal[Any] | Query[Any],
) -> dict[tuple[str, str], Entry]:
    table: dict[tuple[str, str], Entry] = {}
    for c in calls:
        if isinstance(c, WorkflowType):
            table[("workflow", c.name)] = (c.arg, c.result)
        elif isinstance(c, Update):
            table[("update", c.name)] = (c.arg, c.result)
        elif isinstance(c, Signal):
            table[("signal", c.name)] = (c.arg, None)
        else:
            kind = "update" if c is REGISTRATION else "query"
            table[(kind, c.name)] = (None, c.result)
    return table


# kind, name -> (input model, result model)
CONTRACT = _entries(
    CASE,
    MAKE_REPORT_FORMAL,
    SUBMIT_MATERIALS,
    AFFILIATION_RESPONSE,
    OVERRIDE_AFFILIATION,
    CLAIM_REVIEW,
    RELEASE_REVIEW,
    REVIEW,
    PAYMENT_CONFIRMED,
    CARD_PRODUCED,
    PRODUCTION_FAILED,
    REORDER_CARD,
    CARD_COLLECTED,
    CARD_FOUND,
    CANCEL,
    REGISTRATION,
    STATUS,
)
LATE_PAYMENT = _entries(LATE_PAYMENT_WORKFLOW)


def late_payment_workflow_id(case_workflow_id: str, payment_ref: str) -> str:
    """One payment record per payment reference: a second delivery finds the first."""
    return f"{case_workflow_id}-late-payment-{payment_ref}"


def _dump(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def render_all() -> dict[str, str]:
    """File name -> content for every schema and the contract index."""
    files: dict[str, str] = {}
    index: dict[str, Any] = {"task_queue_default": "card-reissue", "entries": []}
    models: dict[str, tuple[type[BaseModel], str]] = {"CasePolicy": (CasePolicy, "validation")}
    for (kind, name), (arg, result) in (CONTRACT | LATE_PAYMENT).items():
        entry: dict[str, Any] = {"kind": kind, "name": name}
        if arg is not None:
            models[arg.__name__] = (arg, "validation")
            entry["input"] = f"{arg.__name__}.schema.json"
        if result is not None:
            models[result.__name__] = (result, "serialization")
            entry["result"] = f"{result.__name__}.schema.json"
        index["entries"].append(entry)
    for model_name, (model, mode) in sorted(models.items()):
        schema = model.model_json_schema(mode=mode)  # type: ignore[arg-type]
        files[f"{model_name}.schema.json"] = _dump(schema)
    files["contract.json"] = _dump(index)
    return files


def write_all(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in render_all().items():
        path = directory / name
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written
