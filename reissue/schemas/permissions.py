"""Who may do what to a case: the rules the front door, the console and the case itself
all apply, written once here."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["refuse_four_eyes"]


def refuse_four_eyes(action: str, reviewer: str, received_by: Iterable[str]) -> None:
    """Four eyes: nobody reviews materials they received at the counter themselves
    (staff IDs compare case-insensitively). Raises ValueError naming the action."""
    if any(clerk.lower() == reviewer.lower() for clerk in received_by):
        raise ValueError(
            f"{action}: {reviewer} received this case's materials; another reviewer must decide"
        )
