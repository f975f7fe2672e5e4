"""Who may do what (schemas/permissions.py): the rules the partner API, the console and
the case's validators share, checked here without a server."""

from __future__ import annotations

import pytest

from reissue.schemas.case import CaseStatus
from reissue.schemas.enums import Stage
from reissue.schemas.partner import COUNTER_FIELDS
from reissue.schemas.permissions import (
    PARTNER_SCOPES,
    PARTNER_VIEWS,
    NotPermitted,
    Role,
    Scope,
    StaffAction,
    check_staff,
    offers,
    refuse_four_eyes,
)

REVIEWER, SUPERVISOR = frozenset({Role.REVIEWER}), frozenset({Role.SUPERVISOR})


def _case(**kw: object) -> CaseStatus:
    values: dict[str, object] = {
        "stage": Stage.UNDER_REVIEW,
        "assigned_to": None,
        "received_by": [],
        "flags": [],
    }
    return CaseStatus.model_construct(**(values | kw))


def test_four_eyes_names_the_action_and_ignores_the_case_of_staff_ids() -> None:
    refuse_four_eyes("review", "rev-01", ["counter-01"])  # someone else received them
    with pytest.raises(ValueError) as refused:
        refuse_four_eyes("claim_review", "Reviewer-02", ["counter-01", "reviewer-02"])
    assert str(refused.value) == (
        "claim_review: Reviewer-02 received this case's materials; another reviewer must decide"
    )


@pytest.mark.parametrize(
    ("action", "roles", "case", "waive", "rule"),
    [
        (StaffAction.CANCEL, REVIEWER, {}, False, "forbidden_role"),
        (StaffAction.CLAIM, REVIEWER, {"received_by": ["REV-1"]}, False, "four_eyes"),
        (StaffAction.DECIDE, SUPERVISOR, {"received_by": ["rev-1"]}, False, "four_eyes"),
        (StaffAction.DECIDE, REVIEWER, {}, True, "waiver_needs_supervisor"),
        (StaffAction.DECIDE, REVIEWER, {"assigned_to": "rev-2"}, False, "claimed_by_other"),
        (StaffAction.RELEASE, REVIEWER, {"assigned_to": "rev-2"}, False, "claimed_by_other"),
    ],
)
def test_the_console_s_refusals_name_their_rule(
    action: StaffAction, roles: frozenset[Role], case: dict[str, object], waive: bool, rule: str
) -> None:
    with pytest.raises(NotPermitted) as refused:
        check_staff(action, user_id="rev-1", roles=roles, st=_case(**case), waive=waive)
    assert refused.value.rule == rule


def test_a_supervisor_takes_over_a_claim_and_waives() -> None:
    held = _case(assigned_to="rev-2")
    for action in (StaffAction.RELEASE, StaffAction.DECIDE):
        check_staff(action, user_id="sup-1", roles=SUPERVISOR, st=held, waive=True)


def test_the_case_page_offers_only_what_its_reader_may_do() -> None:
    mine = offers(user_id="rev-1", roles=REVIEWER, st=_case(assigned_to="rev-1"))
    assert {a for a, ok in mine.items() if ok} == {"release", "decide"}
    received = offers(user_id="rev-1", roles=REVIEWER, st=_case(received_by=["Rev-1"]))
    assert not any(received.values())
    auditor = offers(user_id="aud-1", roles=frozenset({Role.AUDITOR}), st=_case())
    assert {a for a, ok in auditor.items() if ok} == {"export", "unmask"}
    ops = offers(user_id="ops-1", roles=frozenset({Role.OPERATIONS}), st=_case())
    assert {a for a, ok in ops.items() if ok} == {"cancel"}


def test_every_partner_kind_that_reads_or_reports_a_case_has_a_view_of_it() -> None:
    readers = {p for p, scopes in PARTNER_SCOPES.items() if scopes & {Scope.STATUS, Scope.REPORT}}
    assert readers == set(PARTNER_VIEWS)
    for partner, view in PARTNER_VIEWS.items():
        shown = set(view.model_fields) - {"view"}
        if partner == "operations":  # the whole status, to decide whether to end a case
            assert shown == set(CaseStatus.model_fields)
        else:  # a projection (what each shows: tests/api/test_case_views.py)
            assert {"case_id", "stage", "awaiting", "deadline"} <= shown
            assert shown <= {"case_id", *COUNTER_FIELDS}
