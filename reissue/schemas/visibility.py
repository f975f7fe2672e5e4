"""Custom search attributes: what operators filter cases by in the Web UI.

Within the dev server's limits per namespace (10 Keyword, 3 of each other type).
None of them carries personal data.
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

__all__ = [
    "ALL_KEYS",
    "APPLICANT_MEMO",
    "ASSIGNED_TO",
    "AWAITING_PARTY",
    "CASE_STAGE",
    "CORRECTION_ROUND",
    "DISTRICT",
    "INSURED_CATEGORY",
    "NEXT_DEADLINE",
    "REPORT_CHANNEL",
    "REVIEW_DUE_AT",
    "SLA_BREACHED",
]

CASE_STAGE = SearchAttributeKey.for_keyword("CaseStage")
DISTRICT = SearchAttributeKey.for_keyword("District")
INSURED_CATEGORY = SearchAttributeKey.for_keyword("InsuredCategory")
AWAITING_PARTY = SearchAttributeKey.for_keyword("AwaitingParty")
REPORT_CHANNEL = SearchAttributeKey.for_keyword("ReportChannel")
ASSIGNED_TO = SearchAttributeKey.for_keyword("AssignedTo")
SLA_BREACHED = SearchAttributeKey.for_bool("SlaBreached")
CORRECTION_ROUND = SearchAttributeKey.for_int("CorrectionRound")
REVIEW_DUE_AT = SearchAttributeKey.for_datetime("ReviewDueAt")
NEXT_DEADLINE = SearchAttributeKey.for_datetime("NextDeadline")

# The memo key of the applicant's masked name (`张*`), set when the case starts: a list of
# cases shows it without reading each history. Not a search attribute: never filtered on.
APPLICANT_MEMO = "applicant_masked"

ALL_KEYS = (
    CASE_STAGE,
    DISTRICT,
    INSURED_CATEGORY,
    AWAITING_PARTY,
    REPORT_CHANNEL,
    ASSIGNED_TO,
    SLA_BREACHED,
    CORRECTION_ROUND,
    REVIEW_DUE_AT,
    NEXT_DEADLINE,
)
