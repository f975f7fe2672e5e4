"""What a partner sends where it is not the event itself, and what it reads of a case.

The partner API takes these bodies, checks them, and turns them into the case's
events; who acts is the calling credential, never a field of the body. A partner
reads the view of a case its job needs (`permissions.PARTNER_VIEWS`), never more."""

from __future__ import annotations

import copy
from typing import Annotated, Any, Final, Literal, Protocol, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, create_model

from reissue.schemas.case import CaseStatus
from reissue.schemas.enums import Channel
from reissue.schemas.events import CancelReason, CancelRequest, CardFound, Note
from reissue.schemas.identifiers import ResidentId
from reissue.schemas.text import PlainText

__all__ = [
    "COUNTER_FIELDS",
    "REPORTER_FIELDS",
    "Cancellation",
    "CaseView",
    "CounterView",
    "FoundCard",
    "FoundCodeRequest",
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
    """Why operations end the case: a reason of the catalogue (its Chinese text is what
    the applicant's notice says) and an internal note; who does it is the calling
    credential."""

    model_config = ConfigDict(extra="forbid")
    reason: CancelReason
    note: Note = ""

    def event(self, *, actor: str) -> CancelRequest:
        return CancelRequest(operator=actor, reason=self.reason, note=self.note)


class FoundCard(OwnerProof):
    """The person found the card. Their ID number is the owner's, and besides (it is
    printed on the card) the report is lifted only on proof the card's holder lacks: at
    a counter, the clerk the credential names checked the ID card; by hotline or online,
    `code`, the one-time code sent to the mobile number on record. Neither reaches the
    case."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    channel: Channel
    note: Annotated[PlainText, Field(max_length=500)] = ""
    code: Annotated[str, Field(pattern=r"^[0-9]{6}$")] | None = Field(
        default=None,
        description="By hotline or online: the one-time code sent to the mobile number "
        "on record for the card's owner (`…/card-found/code`). Not used at a counter.",
    )

    def event(self, *, actor: str) -> CardFound:
        return CardFound(channel=self.channel, note=self.note)


class FoundCodeRequest(OwnerProof):
    """By hotline or online: send the one-time code for lifting the report to the mobile
    number on record for the card's owner, whose ID number this is. The request names
    no number."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


# ----------------------------------------------------------------------------- views

# What the hotline and the online service read of a case: where it is, whom it waits
# for and until when, the card (masked), the channel, its loss report (the person needs
# its number and time) and the freezes. No staff IDs, no free text, no anomalies.
REPORTER_FIELDS: Final = (
    "stage",
    "awaiting",
    "deadline",
    "card_masked",
    "channel",
    "loss_reported_at",
    "liability_cutoff",
    "loss_report_number",
    "report_formal",
    "card_frozen",
    "bank_frozen",
    "report_stands_until",
    "new_card_masked",
)
# What the counter system reads besides: what it takes in and hands over (the
# materials checklist, the corrections the review asked for, which the counter tells
# the person, the unit's answer, the fee). No staff IDs, no anomalies, no notes.
COUNTER_FIELDS: Final = (
    *REPORTER_FIELDS,
    "materials",
    "correction_round",
    "correction_reasons",
    "affiliation_status",
    "fee",
)


class _View(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _projection(name: str, kind: str, fields: tuple[str, ...], doc: str) -> type[_View]:
    """A view of `CaseStatus`: these of its fields as it declares them, the case ID
    the URLs take, and `view` naming the view."""
    declared = CaseStatus.model_fields
    projected: dict[str, Any] = {
        f: (declared[f].annotation, copy.copy(declared[f])) for f in fields
    }
    return create_model(
        name,
        __base__=_View,
        __doc__=doc,
        __module__=__name__,
        view=(cast(Any, Literal)[kind], kind),
        case_id=(
            str,
            Field(
                description="The case ID (a keyed hash of the card number): the one the URLs take."
            ),
        ),
        **projected,
    )


ReporterView = _projection(
    "ReporterView",
    "reporter",
    REPORTER_FIELDS,
    "What the hotline and the online service read of a case: where it is, whom it "
    "waits for and until when, the card (masked) and its loss report. No staff IDs, "
    "no free text, no anomalies.",
)
CounterView = _projection(
    "CounterView",
    "counter",
    COUNTER_FIELDS,
    "What the counter system reads of a case: the reporter's view, and what the "
    "counter takes in and hands over (the materials checklist, the corrections asked "
    "for, the unit's answer, the fee). No staff IDs, no anomalies, no notes.",
)


class OperationsView(CaseStatus):
    """What operations read: the whole status, to decide whether to end a case."""

    view: Literal["operations"] = "operations"


# The answer of `GET /v1/cases/{case_id}` and `POST /v1/cases`, by its `view`.
CaseView: Any = Annotated[
    ReporterView | CounterView | OperationsView,
    Field(discriminator="view"),
]

V = TypeVar("V", bound=BaseModel)


def view_of(view: type[V], st: CaseStatus, *, case_id: str) -> V:
    """This view of a case's status; `case_id` is the one the partner API's URLs take
    (the status names the run as well)."""
    fields: dict[str, Any] = {
        name: getattr(st, name) for name in view.model_fields if name not in ("view", "case_id")
    }
    return view.model_validate(fields | {"case_id": case_id})
