"""The partner API's routes (`/v1`), one router per resource: cases (report, status), the
events sent to a case (one route per event of the catalogue that partners send), and
payments (the payment platform's signed webhook), and the documents the counter prints."""

from __future__ import annotations

from fastapi import APIRouter

from reissue.api.routes import cases, documents, events, payments

__all__ = ["api_router"]

api_router = APIRouter()
api_router.include_router(cases.router)
api_router.include_router(events.router)
api_router.include_router(payments.router)
api_router.include_router(documents.router)
