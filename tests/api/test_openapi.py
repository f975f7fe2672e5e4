"""The committed OpenAPI document is the one the API serves."""

from __future__ import annotations

import json

from reissue.api.app import OPENAPI_FILE, openapi_document


def test_committed_openapi_is_up_to_date() -> None:
    assert OPENAPI_FILE.read_text(encoding="utf-8") == openapi_document(), (
        "out of date: run `reissue schemas export`"
    )


def test_openapi_is_3_1_with_the_v1_calls() -> None:
    doc = json.loads(openapi_document())
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) == {
        "/v1/cases",
        "/v1/cases/{case_id}",
        "/v1/cases/{case_id}/materials",
        "/v1/cases/{case_id}/formal",
        "/v1/cases/{case_id}/affiliation",
        "/v1/cases/{case_id}/card-produced",
        "/v1/cases/{case_id}/production-failed",
        "/v1/cases/{case_id}/collected",
        "/v1/cases/{case_id}/card-found",
        "/v1/cases/{case_id}/card-found/code",
        "/v1/cases/{case_id}/cancel",
        "/v1/payments",
        "/v1/cases/{case_id}/documents/application-form.pdf",
        "/v1/cases/{case_id}/documents/loss-report-proof.pdf",
    }
