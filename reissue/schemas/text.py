"""Free text in inputs: visible characters only."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

__all__ = ["PlainText"]


def _visible(value: str) -> str:
    # Zero-width and direction-override characters make look-alike text, control
    # characters break records, lone surrogates cannot even be stored as JSON.
    if not value.isprintable():
        raise ValueError(
            "must contain only visible characters (no control, zero-width or "
            "direction-override characters)"
        )
    if value != value.strip():
        raise ValueError("must not start or end with spaces")
    return value


PlainText = Annotated[str, AfterValidator(_visible)]
