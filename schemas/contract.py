"""The public contract as data: every workflow, update, signal and query with its models.

`reissue schemas export` writes a JSON Schema per model into `schemas/json/`, plus
`contract.json` that maps each name other services call to its schemas. They are
committed; a test fails when they drift from the models.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from schemas.activities import PaymentReceipt
from schemas.case import CaseInput, CaseResult, CaseStatus
from schemas.events import (
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
    ReportFormalisation,
    ReviewClaim,
    ReviewDecision,
    ReviewOutcome,
    ReviewRelease,
)
from schemas.policy import CasePolicy

__all__ = ["CONTRACT", "LATE_PAYMENT", "SCHEMA_DIR", "render_all", "write_all"]

SCHEMA_DIR = Path(__file__).parent / "json"

# kind, name -> (input model, result model)
CONTRACT: dict[tuple[str, str], tuple[type[BaseModel] | None, type[BaseModel] | None]] = {
    ("workflow", "CardReissueWorkflow"): (CaseInput, CaseResult),
    ("update", "make_report_formal"): (ReportFormalisation, EventAck),
    ("update", "submit_materials"): (MaterialsSubmission, MaterialsAccepted),
    ("signal", "affiliation_response"): (AffiliationResponse, None),
    ("update", "override_affiliation"): (AffiliationOverride, EventAck),
    ("update", "claim_review"): (ReviewClaim, ClaimState),
    ("update", "release_review"): (ReviewRelease, ClaimState),
    ("update", "review"): (ReviewDecision, ReviewOutcome),
    ("signal", "payment_confirmed"): (PaymentConfirmation, None),
    ("signal", "card_produced"): (CardProduced, None),
    ("signal", "card_collected"): (CardCollected, None),
    ("update", "card_found"): (CardFound, EventAck),
    ("update", "cancel"): (CancelRequest, EventAck),
    ("update", "registration"): (None, CaseStatus),
    ("query", "status"): (None, CaseStatus),
}

# Started by callers when a payment reaches a case that has closed (see README).
LATE_PAYMENT: dict[tuple[str, str], tuple[type[BaseModel] | None, type[BaseModel] | None]] = {
    ("workflow", "LatePaymentWorkflow"): (LatePayment, PaymentReceipt),
}


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
