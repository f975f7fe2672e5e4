"""The one data converter that clients and workers share."""

from __future__ import annotations

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

__all__ = ["data_converter"]


def data_converter() -> DataConverter:
    """Converter for every payload this service sends: pydantic models as JSON."""
    return pydantic_data_converter
