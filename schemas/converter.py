"""The one data converter that clients and workers share."""

from __future__ import annotations

import dataclasses

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

from schemas.codec import EncryptionCodec, KeyRing

__all__ = ["data_converter"]


def data_converter(keys: KeyRing | None = None) -> DataConverter:
    """Pydantic models as JSON; with `keys`, every payload encrypted (AES-256-GCM) on the way out."""
    if keys is None:
        return pydantic_data_converter
    return dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec(keys))
