"""Who may do what: the partners' scopes, the staff's roles and the four-eyes rule.

The one place the partner API (`reissue/api/deps.py`), the staff console
(`reissue/console/deps.py`) and the case's own update validators look these up.
A partner kind holds scopes, as a member of staff holds roles; the catalogue of
events (`contract.py`) names the scope each partner route needs and the action
each console form takes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Final

from pydantic import BaseModel

from reissue.schemas.case import CaseStatus
from reissue.schemas.enums import Channel, Stage
from reissue.schemas.partner import CounterView, OperationsView, ReporterView

__all__ = [
    "PARTNER_CHANNELS",
    "PARTNER_SCOPES",
    "PARTNER_VIEWS",
    "ROLE_ACTIONS",
    "NotPermitted",
    "Role",
    "Scope",
    "StaffAction",
    "canonical",
    "check_staff",
    "may",
    "offers",
    "received_materials",
    "refuse_four_eyes",
]


# ----------------------------------------------------------------------------- partners


class Scope(StrEnum):
    """What a partner's credential may do at the partner API (stored with each key)."""

    REPORT = "report"
    STATUS = "status"  # reading a case
    FORMALISE = "formalise"
    SUBMIT = "submit"
    AFFILIATION = "affiliation"
    PAYMENT = "payment"
    CARD_PRODUCED = "card_produced"
    PRODUCTION_FAILED = "production_failed"
    COLLECT = "collect"
    CARD_FOUND = "card_found"
    CANCEL = "cancel"
    DOCUMENTS = "documents"  # print a case's application form and proof of loss report


# What each kind of partner may do (least privilege). A portal acts, besides, only for
# the cases that asked its own unit or school (its credential's org code).
PARTNER_SCOPES: Final[Mapping[str, frozenset[Scope]]] = {
    "hotline": frozenset({Scope.REPORT, Scope.CARD_FOUND, Scope.STATUS}),
    "counter": frozenset(
        {
            Scope.REPORT,
            Scope.FORMALISE,
            Scope.SUBMIT,
            Scope.COLLECT,
            Scope.CARD_FOUND,
            Scope.STATUS,
            Scope.DOCUMENTS,
        }
    ),
    # The online service, where a person reports a loss themselves.
    "online": frozenset({Scope.REPORT, Scope.CARD_FOUND, Scope.STATUS}),
    "unit_portal": frozenset({Scope.AFFILIATION}),
    "school_portal": frozenset({Scope.AFFILIATION}),
    "payment_platform": frozenset({Scope.PAYMENT}),
    "card_bureau": frozenset({Scope.CARD_PRODUCED, Scope.PRODUCTION_FAILED}),
    "operations": frozenset({Scope.CANCEL, Scope.STATUS}),
}

# The channels a reporting partner's credential may report on; each credential holds
# one (a hotline's: which hotline, the first unless it says otherwise). The channel of
# a report is its caller's credential's, never a field the caller chooses: only the
# counter, where a clerk checked the ID card, makes a report formal.
PARTNER_CHANNELS: Final[Mapping[str, tuple[Channel, ...]]] = {
    "hotline": (Channel.HOTLINE_12333, Channel.HOTLINE_12393),
    "counter": (Channel.COUNTER,),
    "online": (Channel.ONLINE,),
}

# What each partner kind that reads cases (or reports them) reads of one: the view its
# job needs. The hotline and the online service tell a person where their case is;
# the counter takes in and hands over; operations decide whether to end a case.
PARTNER_VIEWS: Final[Mapping[str, type[BaseModel]]] = {
    "hotline": ReporterView,
    "online": ReporterView,
    "counter": CounterView,
    "operations": OperationsView,
}


# ----------------------------------------------------------------------------- staff


class Role(StrEnum):
    """What a member of staff may do in the console (SPEC 5)."""

    REVIEWER = "reviewer"  # claim, release own claim, approve / correct / reject
    SUPERVISOR = "supervisor"  # also: release any claim, override affiliation, waive the fee
    OPERATIONS = "operations"  # cancel a case, with a reason
    AUDITOR = "auditor"  # read, export (masked), unmask with a stated reason


class StaffAction(StrEnum):
    """What a member of staff does on a case page (a form, or the export link)."""

    CLAIM = "claim"
    RELEASE = "release"
    DECIDE = "decide"
    WAIVE = "waive"  # a fee waiver with an approval
    TAKE_OVER = "take_over"  # release anyone's claim; decide a case another reviewer holds
    OVERRIDE = "override"
    REORDER = "reorder"
    CANCEL = "cancel"
    EXPORT = "export"
    UNMASK = "unmask"


_DECIDING = frozenset({StaffAction.CLAIM, StaffAction.RELEASE, StaffAction.DECIDE})
ROLE_ACTIONS: Final[Mapping[Role, frozenset[StaffAction]]] = {
    Role.REVIEWER: _DECIDING,
    Role.SUPERVISOR: _DECIDING
    | {StaffAction.WAIVE, StaffAction.TAKE_OVER, StaffAction.OVERRIDE, StaffAction.REORDER},
    Role.OPERATIONS: frozenset({StaffAction.CANCEL}),
    Role.AUDITOR: frozenset({StaffAction.EXPORT, StaffAction.UNMASK}),
}


def may(roles: Iterable[Role], action: StaffAction) -> bool:
    """Whether any of these roles allows the action."""
    return any(action in ROLE_ACTIONS[role] for role in roles)


def canonical(user_id: str) -> str:
    """Staff IDs compare case-insensitively: `Reviewer-01` is `reviewer-01`."""
    return user_id.strip().lower()


# ----------------------------------------------------------------------------- four eyes


def received_materials(reviewer: str, received_by: Iterable[str]) -> bool:
    """Four eyes: did this person receive the case's materials at the counter?"""
    return canonical(reviewer) in {canonical(clerk) for clerk in received_by}


def refuse_four_eyes(action: str, reviewer: str, received_by: Iterable[str]) -> None:
    """Four eyes: nobody reviews materials they received at the counter themselves
    (staff IDs compare case-insensitively). Raises ValueError naming the action."""
    if received_materials(reviewer, received_by):
        raise ValueError(
            f"{action}: {reviewer} received this case's materials; another reviewer must decide"
        )


# ----------------------------------------------------------------------------- a case page


class NotPermitted(Exception):
    """A member of staff may not do this on this case. `rule` is the label of the
    refusal in the console's catalogue; `holder` who holds the case's claim, if that
    is the reason."""

    def __init__(self, rule: str, *, holder: str | None = None) -> None:
        super().__init__(rule)
        self.rule, self.holder = rule, holder


def check_staff(
    action: StaffAction,
    *,
    user_id: str,
    roles: frozenset[Role],
    st: CaseStatus,
    waive: bool = False,
) -> None:
    """Raise NotPermitted unless this person may take this action on this case now
    (the case's own validators check the same again, whoever calls)."""
    if not may(roles, action):
        raise NotPermitted("forbidden_role")
    takes_over = may(roles, StaffAction.TAKE_OVER)
    held_by_other = st.assigned_to is not None and st.assigned_to != user_id
    if action is StaffAction.DECIDE and waive and not may(roles, StaffAction.WAIVE):
        raise NotPermitted("waiver_needs_supervisor")
    if action in (StaffAction.CLAIM, StaffAction.DECIDE) and received_materials(
        user_id, st.received_by
    ):
        raise NotPermitted("four_eyes")
    # A reviewer returns only their own claim (and decides only an unclaimed case or
    # their own); a supervisor any.
    if action is StaffAction.RELEASE and st.assigned_to != user_id and not takes_over:
        raise NotPermitted("claimed_by_other", holder=st.assigned_to)
    if action is StaffAction.DECIDE and held_by_other and not takes_over:
        raise NotPermitted("claimed_by_other", holder=st.assigned_to)


def offers(*, user_id: str, roles: frozenset[Role], st: CaseStatus) -> dict[str, bool]:
    """Which actions the case page offers this person on this case, by action name
    (the actions check again when taken)."""

    def allowed(action: StaffAction) -> bool:
        try:
            check_staff(action, user_id=user_id, roles=roles, st=st)
        except NotPermitted:
            return False
        return True

    reviewing = st.stage is Stage.UNDER_REVIEW
    return {
        StaffAction.CLAIM: reviewing and st.assigned_to is None and allowed(StaffAction.CLAIM),
        StaffAction.RELEASE: reviewing
        and st.assigned_to is not None
        and allowed(StaffAction.RELEASE),
        StaffAction.DECIDE: reviewing and allowed(StaffAction.DECIDE),
        StaffAction.WAIVE: may(roles, StaffAction.WAIVE),
        StaffAction.OVERRIDE: may(roles, StaffAction.OVERRIDE)
        and st.stage is Stage.AWAITING_AFFILIATION
        and "affiliation_escalated" in st.flags,
        StaffAction.REORDER: may(roles, StaffAction.REORDER)
        and st.stage is Stage.CARD_PRODUCTION
        and "production_failed" in st.flags,
        StaffAction.CANCEL: may(roles, StaffAction.CANCEL) and not st.stage.terminal,
        StaffAction.EXPORT: may(roles, StaffAction.EXPORT),
        StaffAction.UNMASK: may(roles, StaffAction.UNMASK),
    }
