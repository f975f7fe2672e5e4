"""The console's routes, one router per part: logging in and out (`login`), the review
queue (`queue`), the case page with its export and unmasking (`cases`), its documents as PDF (`documents`), and the actions
on a case, one per event of the catalogue with a console action (`actions`)."""

from __future__ import annotations

from fastapi import APIRouter

from reissue.console.routes import actions, cases, documents, login, queue

__all__ = ["console_router"]

console_router = APIRouter()
for _part in (login, queue, cases, documents, actions):
    console_router.include_router(_part.router)
