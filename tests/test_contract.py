"""The published contract: committed JSON Schemas match the models, names match the workflow."""

from __future__ import annotations

import json

from temporalio import workflow

from reissue.schemas.contract import CONTRACT, LATE_PAYMENT, SCHEMA_DIR, render_all
from reissue.workflows.card_reissue import CardReissueWorkflow
from reissue.workflows.late_payment import LatePaymentWorkflow


def test_committed_schemas_are_up_to_date() -> None:
    expected = render_all()
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in SCHEMA_DIR.glob("*.json")}
    stale = sorted(n for n in expected.keys() | on_disk.keys() if expected.get(n) != on_disk.get(n))
    assert not stale, f"out of date: {stale}; run `reissue schemas export`"


def test_contract_names_are_the_workflows_handlers() -> None:
    definition = workflow._Definition.must_from_class(CardReissueWorkflow)
    actual = {("workflow", definition.name)}
    actual |= {("signal", n) for n in definition.signals if n}
    actual |= {("update", n) for n in definition.updates if n}
    actual |= {("query", n) for n in definition.queries if n}
    assert set(CONTRACT) == actual
    late = workflow._Definition.must_from_class(LatePaymentWorkflow)
    assert set(LATE_PAYMENT) == {("workflow", late.name)}


def test_case_input_schema_has_no_policy() -> None:
    schema = json.loads((SCHEMA_DIR / "CaseInput.schema.json").read_text(encoding="utf-8"))
    assert "policy" not in schema["properties"]


def test_case_input_schema_documents_the_identifier_rules() -> None:
    schema = json.loads((SCHEMA_DIR / "CaseInput.schema.json").read_text(encoding="utf-8"))
    applicant = schema["$defs"]["Applicant"]["properties"]
    assert "MOD 11-2" in applicant["resident_id"]["description"]
    assert set(schema["required"]) >= {"applicant", "card_number", "district", "channel"}
