"""What a partner sends where it is not the event itself, and what it reads of a case.

The partner API takes these bodies, checks them, and turns them into the case's
events; who acts is the calling credential, never a field of the body. A partner
reads the view of a case its job needs (`permissions.PARTNER_VIEWS`), never more."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from reissue.schemas.case import CaseStatus, FeeStatus, MaterialCheck
from reissue.schemas.enums import AwaitingParty, Channel, Stage
from reissue.schemas.events import CancelRequest, CardFound, Reason
from reissue.schemas.identifiers import ResidentId
from reissue.schemas.text import PlainText

__all__ = [
    "Cancellation",
    "CaseView",
    "CounterView",
    "FoundCard",
    "OperationsView",
    "OwnerProof",
    "PartnerBody",
    "ReporterView",
    "view_of",
]

E_co = TypeVar("E_co", bound=BaseModel, covariant=True)


class PartnerBody(Protocol[E_co]):
    """A partner's body for an event: the event it becomes, sent by `actor` (the
    calling credential's name for the audit log)."""

    def event(self, *, actor: str) -> E_co: ...


class OwnerProof(BaseModel):
    """A body that proves its sender is the card's owner: the front door compares the
    resident ID with the registry's owner of the case's open loss report before the
    event is sent (the ID itself never reaches the case)."""

    resident_id: ResidentId


class Cancellation(BaseModel):
    """Why operations end the case; who does it is the calling credential."""

    model_config = ConfigDict(extra="forbid")
    reason: Reason

    def event(self, *, actor: str) -> CancelRequest:
        return CancelRequest(operator=actor, reason=self.reason)


class FoundCard(OwnerProof):
    """The person found the card; they show their ID (the report is lifted only for them)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    channel: Channel
    note: Annotated[PlainText, Field(max_length=500)] = ""

    def event(self, *, actor: str) -> CardFound:
        return CardFound(channel=self.channel, note=self.note)


# ----------------------------------------------------------------------------- views

_CASE_ID = Field(
    description="The case ID (a keyed hash of the card number): the one the URLs take."
)


class _View(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Reporting(_View):
    case_id: str = _CASE_ID
    stage: Stage
    awaiting: AwaitingParty = Field(description="Whom the case waits for.")
    deadline: datetime | None = Field(description="Until when it waits.")
    card_masked: str
    channel: Channel
    loss_reported_at: datetime
    liability_cutoff: datetime = Field(
        description="Expenses incurred before this moment are borne by the insured "
        "(Chongqing Interim Measures, Art. 28)."
    )
    loss_report_number: str | None
    report_formal: bool
    card_frozen: bool
    bank_frozen: bool
    new_card_masked: str | None


class ReporterView(_Reporting):
    """What the hotline and the online service read of a case: where it is, whom it
    waits for and until when, the card (masked) and its loss report. No staff IDs, no
    free text, no anomalies."""

    view: Literal["reporter"] = "reporter"


class _Counter(_Reporting):
    materials: list[MaterialCheck]
    correction_round: int
    correction_reasons: list[str] = Field(
        description="What the review asked the person to correct (the counter tells them)."
    )
    affiliation_status: str
    fee: FeeStatus | None


class CounterView(_Counter):
    """What the counter system reads: the reporter's view, and what the counter takes
    in and hands over (the materials checklist, the corrections asked for, the unit's
    answer, the fee). No staff IDs, no anomalies, no notes."""

    view: Literal["counter"] = "counter"


class OperationsView(CaseStatus):
    """What operations read: the whole status, to decide whether to end a case."""

    view: Literal["operations"] = "operations"


CaseView = Annotated[ReporterView | CounterView | OperationsView, Field(discriminator="view")]

V = TypeVar("V", bound=BaseModel)


def view_of(view: type[V], st: CaseStatus, *, case_id: str) -> V:
    """This view of a case's status; `case_id` is the one the partner API's URLs take
    (the status names the run as well)."""
    fields: dict[str, Any] = {
        name: getattr(st, name) for name in view.model_fields if name not in ("view", "case_id")
    }
    return view.model_validate(fields | {"case_id": case_id})
