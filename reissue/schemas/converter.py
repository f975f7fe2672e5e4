"""The one data converter that clients and workers share."""

from __future__ import annotations

import dataclasses
from typing import Any

from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import (
    PydanticJSONPlainPayloadConverter,
    PydanticPayloadConverter,
    pydantic_data_converter,
)
from temporalio.converter import CompositePayloadConverter, DataConverter
from temporalio.exceptions import ApplicationError

from reissue.schemas.codec import PLAINTEXT_MARK, EncryptionCodec, KeyRing
from reissue.schemas.errors import PLAINTEXT_PAYLOAD

__all__ = ["PLAINTEXT_REFUSED", "data_converter", "refuses_plaintext"]

PLAINTEXT_REFUSED = (
    "payload refused: it was sent unencrypted; send it through the payload codec "
    "(the typed client, or --codec-endpoint with the Temporal CLI)"
)


def refuses_plaintext() -> bool:
    """Whether the running workflow refuses payloads that came unencrypted.

    A workflow says so with a `refuses_plaintext` attribute: cases started before
    payloads were encrypted replay their plaintext history, new ones refuse it.
    """
    if not workflow.in_workflow():
        return False
    return bool(getattr(workflow.instance(), "refuses_plaintext", False))


class _JSONRefusingPlaintext(PydanticJSONPlainPayloadConverter):
    """Pydantic JSON; inside a workflow that refuses plaintext, a payload the codec
    marked as unencrypted is a `PlaintextPayload` error (an update is rejected with
    it, a signal dropped, never applied)."""

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        if PLAINTEXT_MARK in payload.metadata and refuses_plaintext():
            raise ApplicationError(PLAINTEXT_REFUSED, type=PLAINTEXT_PAYLOAD, non_retryable=True)
        return super().from_payload(payload, type_hint)


class _CasePayloadConverter(CompositePayloadConverter):
    def __init__(self) -> None:
        strict = _JSONRefusingPlaintext()
        super().__init__(
            *(
                strict if c.encoding == strict.encoding else c
                for c in PydanticPayloadConverter().converters.values()
            )
        )


def data_converter(keys: KeyRing | None = None, *, refuse_plaintext: bool = True) -> DataConverter:
    """Pydantic models as JSON; with `keys`, every payload encrypted (AES-256-GCM) on the way
    out, and unencrypted ones marked on the way in so that cases refuse them (unless
    `refuse_plaintext` is off, for local experiments)."""
    if keys is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_converter_class=_CasePayloadConverter,
        payload_codec=EncryptionCodec(keys, mark_plaintext=refuse_plaintext),
    )
