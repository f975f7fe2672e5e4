"""The benchmark's reference activity: does nothing, so only Temporal's own cost remains."""

from __future__ import annotations

from typing import Any

from temporalio import activity

__all__ = ["noop"]


@activity.defn(name="noop")
async def noop(arg: dict[str, Any]) -> dict[str, Any]:
    return {}
