"""The queue's visibility listing asks again when a busy store gives up on a query once
(seen as a 500 on the queue page under load), and still fails on what is not transient."""

from __future__ import annotations

from typing import Any, cast

import pytest
from temporalio.api.workflowservice.v1 import (
    ListWorkflowExecutionsRequest,
    ListWorkflowExecutionsResponse,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from reissue.console.worklist import _list


class _Service:
    def __init__(self, failures: list[RPCStatusCode]) -> None:
        self.failures, self.calls = failures, 0

    async def list_workflow_executions(self, _: Any) -> ListWorkflowExecutionsResponse:
        self.calls += 1
        if self.failures:
            raise RPCError("operation was canceled", self.failures.pop(0), b"")
        return ListWorkflowExecutionsResponse()


class _Client:
    def __init__(self, service: _Service) -> None:
        self.workflow_service = service


async def test_a_transient_refusal_is_asked_again() -> None:
    service = _Service([RPCStatusCode.CANCELLED, RPCStatusCode.UNAVAILABLE])
    answer = await _list(cast(Client, _Client(service)), ListWorkflowExecutionsRequest())
    assert answer == ListWorkflowExecutionsResponse() and service.calls == 3


async def test_a_lasting_or_real_refusal_is_raised() -> None:
    for failures, calls in (
        ([RPCStatusCode.CANCELLED] * 3, 3),
        ([RPCStatusCode.INVALID_ARGUMENT], 1),
    ):
        service = _Service(list(failures))
        with pytest.raises(RPCError):
            await _list(cast(Client, _Client(service)), ListWorkflowExecutionsRequest())
        assert service.calls == calls
