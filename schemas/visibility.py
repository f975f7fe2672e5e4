"""Custom search attributes: what operators filter cases by in the Web UI."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

__all__ = [
    "ALL_KEYS",
    "AWAITING_PARTY",
    "CASE_STAGE",
    "CORRECTION_ROUND",
    "DISTRICT",
    "INSURED_CATEGORY",
    "SLA_BREACHED",
]

CASE_STAGE = SearchAttributeKey.for_keyword("CaseStage")
DISTRICT = SearchAttributeKey.for_keyword("District")
INSURED_CATEGORY = SearchAttributeKey.for_keyword("InsuredCategory")
AWAITING_PARTY = SearchAttributeKey.for_keyword("AwaitingParty")
SLA_BREACHED = SearchAttributeKey.for_bool("SlaBreached")
CORRECTION_ROUND = SearchAttributeKey.for_int("CorrectionRound")

ALL_KEYS = (CASE_STAGE, DISTRICT, INSURED_CATEGORY, AWAITING_PARTY, SLA_BREACHED, CORRECTION_ROUND)
