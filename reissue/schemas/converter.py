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

__all__ = ["PLAINTEXT_REFUSED", "data_converter"]

PLAINTEXT_REFUSED = (
    "payload refused: it was sent unencrypted; send it through the payload codec "
    "(the typed client, or --codec-endpoint with the Temporal CLI)"
)


class _JSONRefusingPlaintext(PydanticJSONPlainPayloadConverter):
    """Pydantic JSON; inside a workflow, a payload the codec marked as unencrypted is a
    `PlaintextPayload` error (an update is rejected with it, never applied)."""

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        if PLAINTEXT_MARK in payload.metadata and workflow.in_workflow():
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
    out, and unencrypted ones marked on the way in so that workflows refuse them (unless
    `refuse_plaintext` is off, for local experiments)."""
    if keys is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter,
        payload_converter_class=_CasePayloadConverter,
        payload_codec=EncryptionCodec(keys, mark_plaintext=refuse_plaintext),
    )
