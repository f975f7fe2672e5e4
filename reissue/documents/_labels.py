"""The words the documents print, in Chinese with English beside them: from the one
catalogue of labels (`reissue.schemas.labels`), as the documents lay them out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from reissue.schemas import labels
from reissue.schemas.identifiers import CURRENT_DISTRICTS, HISTORIC_DISTRICTS

__all__ = ["CATEGORIES", "CHANNELS", "HOTLINES", "REPORT_STATES", "district_name"]

CATEGORIES: Final[Mapping[str, str]] = {k: f"{v.zh} {v.en}" for k, v in labels.CATEGORIES.items()}
CHANNELS: Final[Mapping[str, str]] = {k: f"{v.zh} {v.en}" for k, v in labels.CHANNELS.items()}
REPORT_STATES: Final[Mapping[str, str]] = {
    k: f"{v.zh} {v.en}" for k, v in labels.REPORT_STATES.items()
}
HOTLINES: Final = tuple((number, f"{v.zh} {v.en}") for number, v in labels.HOTLINES)


def district_name(code: str) -> str:
    """`渝中区 (500103)`; the code alone if it is not a Chongqing code."""
    name = CURRENT_DISTRICTS.get(code) or HISTORIC_DISTRICTS.get(code)
    return f"{name}（{code}）" if name else code
