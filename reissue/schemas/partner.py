"""What a partner sends where it is not the event itself: the partner API takes these
bodies, checks them, and turns them into the case's events. Who acts is the calling
credential, never a field of the body."""

from __future__ import annotations

from typing import Annotated, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from reissue.schemas.enums import Channel
from reissue.schemas.events import CancelRequest, CardFound, Reason
from reissue.schemas.identifiers import ResidentId
from reissue.schemas.text import PlainText

__all__ = ["Cancellation", "FoundCard", "OwnerProof", "PartnerBody"]

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
