"""Errors of the partner API as RFC 9457 `application/problem+json`, naming the field
and the rule (never the value sent), and the case's refusals as problems."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from temporalio.client import WorkflowQueryFailedError, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from reissue.client import ReissueClient
from reissue.schemas import errors

__all__ = ["PROBLEM", "ApiProblem", "install_problems", "refusals"]

PROBLEM = "application/problem+json"

# Refusals by the case or the registry: the state of the case forbids it (409), or
# what was sent cannot be accepted (422).
_CONFLICTS = {
    errors.CARD_ALREADY_REPORTED,
    errors.CASE_ENDING,
    errors.WRONG_STAGE,
    errors.ALREADY_DECIDED,
    errors.REPORT_FORMAL,
    errors.BUSY,
    errors.CARD_NOT_ACTIVE,
}


class ApiProblem(Exception):
    """A refusal, answered as a problem: `kind` becomes `urn:reissue:problem:<kind>`;
    `extra` members go into the body, `headers` onto the answer (`Retry-After`)."""

    def __init__(
        self,
        status: int,
        kind: str,
        title: str,
        detail: str,
        *,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.kind, self.title, self.detail, self.extra = (
            status,
            kind,
            title,
            detail,
            extra,
        )
        self.headers = dict(headers or {})


def _problem(status: int, kind: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": f"urn:reissue:problem:{kind}", "title": title, "status": status}
    body |= {"detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


async def _api_problem(_: Request, e: Exception) -> JSONResponse:
    assert isinstance(e, ApiProblem)
    response = _problem(e.status, e.kind, e.title, e.detail, **e.extra)
    response.headers.update(e.headers)
    return response


async def _invalid(_: Request, e: Exception) -> JSONResponse:
    assert isinstance(e, RequestValidationError)
    fields = [
        {"field": ".".join(str(p) for p in err["loc"][1:]) or "(body)", "rule": err["msg"]}
        for err in e.errors()
    ]
    detail = "; ".join(f"{f['field']}: {f['rule']}" for f in fields)
    return _problem(422, "invalid-request", "The request is not valid", detail, errors=fields)


def install_problems(app: FastAPI) -> None:
    """Answer refusals and invalid requests as problems."""
    app.add_exception_handler(ApiProblem, _api_problem)
    app.add_exception_handler(RequestValidationError, _invalid)


def _refusal(e: Exception) -> ApiProblem:
    """A refusal from a case (a failed update, a failed start) as a problem."""
    cause = e.cause if isinstance(e, WorkflowUpdateFailedError) else e
    if isinstance(cause, ApplicationError) and cause.type:
        status = 409 if cause.type in _CONFLICTS else 422
        return ApiProblem(status, cause.type, "Refused by the case", cause.message)
    raise e


@asynccontextmanager
async def refusals(client: ReissueClient, case_id: str | None = None) -> AsyncIterator[None]:
    """What the case (`case_id`, if any) or Temporal refuses inside, as a problem: its
    rule, a case that never opened, a case that has closed, or no such case."""
    try:
        yield
    except (WorkflowUpdateFailedError, WorkflowAlreadyStartedError) as e:
        raise _refusal(e) from None
    except WorkflowQueryFailedError:  # the case was refused: it never opened
        raise ApiProblem(
            409, "case-not-opened", "The case did not open", "this case was refused"
        ) from None
    except RPCError as e:
        if e.status is not RPCStatusCode.NOT_FOUND:
            raise
        if case_id is not None:
            try:
                await client.handle(case_id).describe()
            except RPCError:
                pass
            else:  # it exists, and has closed: it takes no more events
                raise ApiProblem(
                    409, errors.CASE_ENDING, "Refused by the case", "the case has closed"
                ) from None
        raise ApiProblem(404, "not-found", "No such case", "no case with this ID") from None
