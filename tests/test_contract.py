"""The published contract: committed JSON Schemas match the models, names match the workflow."""

from __future__ import annotations

import json

from temporalio import workflow

from reissue.schemas.contract import CONTRACT, LATE_PAYMENT, SCHEMA_DIR, render_all
from reissue.workflows.case import CardReissueWorkflow
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


def test_every_activity_is_defined_as_the_workflow_calls_it() -> None:
    """The workflows call activities through `ActivityDef`s; the worker registers
    exactly those names, each taking and returning the models of its definition."""
    from temporalio import activity

    from reissue.activities import all_activities
    from reissue.schemas import activities as a
    from reissue.workers.settings import Settings
    from reissue.workers.worker import partners_over_http

    defs = {d.name: d for d in vars(a).values() if isinstance(d, a.ActivityDef)}
    registered = {}
    unused = Settings(
        bank_url="http://unused",
        payment_platform_url="http://unused",
        card_bureau_url="http://unused",
    )
    for fn in all_activities(None, hash_secret="x", partners=partners_over_http(unused)):  # type: ignore[arg-type]
        definition = activity._Definition.must_from_callable(fn)
        registered[definition.name] = definition
    # Each step on our own registry also as the local activity the workflow runs it as.
    local = {d.local_name: d for d in defs.values() if not d.partner}
    assert set(registered) == set(defs) | set(local)
    for name, d in defs.items():
        assert registered[name].arg_types == [d.arg], name
        assert registered[name].ret_type is d.result, name
    for name, d in local.items():
        assert registered[name].arg_types == [d.arg], name
        assert registered[name].ret_type is a.LocalRun, name
