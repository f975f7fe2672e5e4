"""Typed client for other services: start a case and send it each event."""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, Protocol, TypeVar, overload

from pydantic import BaseModel
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from reissue.schemas import contract as c
from reissue.schemas.case import CaseInput, CaseResult, CaseStatus
from reissue.schemas.contract import Signal, Update, late_payment_workflow_id
from reissue.schemas.events import LatePayment, PaymentConfirmation
from reissue.schemas.hashing import case_workflow_id, person_key
from reissue.schemas.identifiers import mask_card_number, mask_name
from reissue.schemas.visibility import APPLICANT_MEMO

__all__ = ["WORKFLOW_TYPE", "CaseRef", "ReissueClient"]

WORKFLOW_TYPE = c.CASE.name

# A query waits for a worker to answer it; no caller should wait for ever.
_QUERY_TIMEOUT = timedelta(seconds=30)

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
R = TypeVar("R", bound=BaseModel)
M_contra = TypeVar("M_contra", bound=BaseModel, contravariant=True)
T_co = TypeVar("T_co", covariant=True)


@dataclass(frozen=True)
class CaseRef:
    """A case as a caller knows it: its workflow ID and whether this call opened it."""

    workflow_id: str
    run_id: str | None
    started: bool


def _model(model: type[M], value: M | Mapping[str, Any]) -> M:
    return value if isinstance(value, model) else model.model_validate(value)


def _memo(inp: CaseInput) -> dict[str, str]:
    """What a list of cases shows beside the search attributes (set by the starter, so no
    command of the case's; encrypted like every payload): the applicant's masked name."""
    return {APPLICANT_MEMO: mask_name(inp.applicant.name)}


def _summary(inp: CaseInput) -> str:
    """The Web UI's one-line summary of a case: masked card, district, category, channel."""
    return (
        f"Reissue of card {mask_card_number(inp.card_number)} · district {inp.district} · "
        f"{inp.insured_category.value} · reported via {inp.channel.value}"
    )


class EventMethod(Protocol[M_contra, T_co]):
    """`client.<method>(case, event)`: the case's workflow ID (or case ID), and the
    event as its model or a mapping of its fields."""

    def __call__(self, case: str, event: M_contra | Mapping[str, Any], /) -> Awaitable[T_co]: ...


class _Method(Generic[M, T]):
    """The client's method for an event of the catalogue, under the name the catalogue
    gives it: `ask` for an update, `send` for a signal."""

    @overload
    def __init__(self: _Method[M, R], entry: Update[M, R]) -> None: ...
    @overload
    def __init__(self: _Method[M, None], entry: Signal[M]) -> None: ...
    def __init__(self, entry: Update[M, Any] | Signal[M]) -> None:
        self.entry = entry
        self.__doc__ = entry.arg.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        if name != self.entry.client:
            raise TypeError(f"{name}: the catalogue calls this method {self.entry.client}")

    @overload
    def __get__(self, client: None, owner: type) -> _Method[M, T]: ...
    @overload
    def __get__(self, client: ReissueClient, owner: type) -> EventMethod[M, T]: ...
    def __get__(
        self, client: ReissueClient | None, owner: type
    ) -> _Method[M, T] | EventMethod[M, T]:
        if client is None:
            return self
        return functools.partial(_deliver, client, self.entry)


async def _deliver(
    client: ReissueClient, entry: Update[M, Any] | Signal[M], case: str, event: Any
) -> Any:
    return await client.deliver(case, entry, event)


class ReissueClient:
    """Start and signal reissue cases. Every method validates its input before it sends.

    Any event of the catalogue (`reissue.schemas.contract.EVENTS`) goes with `ask`
    (an update: the case answers) or `send` (a signal); each also has a method of its
    own, named by the catalogue (`submit_materials`, `review`, `confirm_payment`, …)."""

    def __init__(self, client: Client, *, task_queue: str, hash_secret: str) -> None:
        self._client = client
        self._task_queue = task_queue
        self._secret = hash_secret

    @property
    def temporal(self) -> Client:
        return self._client

    @property
    def task_queue(self) -> str:
        return self._task_queue

    def case_id_for(self, card_number: str) -> str:
        """The workflow ID of the case for a card."""
        return case_workflow_id(card_number, secret=self._secret)

    def person_key_for(self, resident_id: str) -> str:
        """How the registry knows a person (never by the resident ID itself)."""
        return person_key(resident_id, secret=self._secret)

    def handle(self, case: str) -> WorkflowHandle[Any, CaseResult]:
        """The case: its workflow ID (the card's current case), or its case ID
        `workflow_id:run_id` (that case only: once it has closed, events sent to it are
        refused instead of reaching a later case for the same card)."""
        workflow_id, _, run_id = case.partition(":")
        return self._client.get_workflow_handle(
            workflow_id, run_id=run_id or None, result_type=c.CASE.result
        )

    async def ask(self, case: str, update: Update[M, R], arg: M | Mapping[str, Any]) -> R:
        """Send any update of the catalogue and wait for the case's answer. One the server
        could not hand to a worker right then is sent again under the same update ID (so
        it is applied once)."""
        update_id = str(uuid.uuid4())
        return await self._busy_retry(
            lambda: self.handle(case).execute_update(
                update.name, _model(update.arg, arg), id=update_id, result_type=update.result
            )
        )

    async def send(self, case: str, signal: Signal[M], arg: M | Mapping[str, Any]) -> None:
        """Send any signal of the catalogue. Money is never lost: a payment for a case that
        has closed goes into the ledger through `LatePaymentWorkflow`, and back to the
        payer."""
        event = _model(signal.arg, arg)
        try:
            await self.handle(case).signal(signal.name, event)
        except RPCError as e:
            if e.status is not RPCStatusCode.NOT_FOUND or not isinstance(
                event, PaymentConfirmation
            ):
                raise
            await self._late_payment(case, event)

    async def deliver(
        self, case: str, event: Update[Any, Any] | Signal[Any], arg: BaseModel | Mapping[str, Any]
    ) -> BaseModel | None:
        """Any event of the catalogue, whichever its kind: an update's answer, or None
        once a signal is delivered."""
        if isinstance(event, Signal):
            await self.send(case, event, arg)
            return None
        answer: BaseModel = await self.ask(case, event, arg)
        return answer

    @staticmethod
    async def _busy_retry(call: Callable[[], Awaitable[T]]) -> T:
        # "No poller seen for task queue recently": every worker poller was busy at that
        # moment (updates and queries need one there and then). Not a refusal: ask again.
        for attempt in range(6):
            try:
                return await call()
            except RPCError as e:
                if e.status is not RPCStatusCode.FAILED_PRECONDITION or attempt == 5:
                    raise
                await asyncio.sleep(0.2 * 2**attempt)
        raise AssertionError("unreachable")

    async def report_loss(self, application: CaseInput | Mapping[str, Any]) -> CaseRef:
        """Open a case for the card, or return the case already open for it."""
        inp = _model(CaseInput, application)
        workflow_id = self.case_id_for(inp.card_number)
        try:
            handle = await self._client.start_workflow(
                WORKFLOW_TYPE,
                inp,
                result_type=CaseResult,
                id=workflow_id,
                task_queue=self._task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                static_summary=_summary(inp),
                memo=_memo(inp),
            )
        except WorkflowAlreadyStartedError as e:
            return CaseRef(workflow_id=workflow_id, run_id=e.run_id, started=False)
        return CaseRef(workflow_id=workflow_id, run_id=handle.result_run_id, started=True)

    async def report_loss_and_wait(self, application: CaseInput | Mapping[str, Any]) -> CaseStatus:
        """One round trip for the hotline: open (or find) the case, answer once the card is frozen."""
        inp = _model(CaseInput, application)
        start: WithStartWorkflowOperation[Any, CaseResult] = WithStartWorkflowOperation(
            WORKFLOW_TYPE,
            inp,
            id=self.case_id_for(inp.card_number),
            task_queue=self._task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            static_summary=_summary(inp),
            memo=_memo(inp),
            result_type=CaseResult,
        )
        status: CaseStatus = await self._client.execute_update_with_start_workflow(
            c.REGISTRATION.name, start_workflow_operation=start, result_type=c.REGISTRATION.result
        )
        return status

    # One method per event of the catalogue (`contract.EVENTS`), by the name it gives.
    make_report_formal = _Method(c.MAKE_REPORT_FORMAL)
    submit_materials = _Method(c.SUBMIT_MATERIALS)
    respond_affiliation = _Method(c.AFFILIATION_RESPONSE)
    override_affiliation = _Method(c.OVERRIDE_AFFILIATION)
    claim_review = _Method(c.CLAIM_REVIEW)
    release_review = _Method(c.RELEASE_REVIEW)
    review = _Method(c.REVIEW)
    confirm_payment = _Method(c.PAYMENT_CONFIRMED)
    card_produced = _Method(c.CARD_PRODUCED)
    production_failed = _Method(c.PRODUCTION_FAILED)
    reorder_card = _Method(c.REORDER_CARD)
    card_collected = _Method(c.CARD_COLLECTED)
    card_found = _Method(c.CARD_FOUND)
    cancel = _Method(c.CANCEL)

    async def _late_payment(self, case: str, payment: PaymentConfirmation) -> None:
        workflow_id, _, run_id = case.partition(":")
        if not run_id:
            try:
                run_id = (await self.handle(case).describe()).run_id
            except RPCError as e:
                if e.status is not RPCStatusCode.NOT_FOUND:
                    raise
                run_id = "none"  # no such case: the payment is still recorded, and refunded
        try:
            await self._client.start_workflow(
                c.LATE_PAYMENT_WORKFLOW.name,
                LatePayment(case_id=f"{workflow_id}:{run_id}", payment=payment),
                id=late_payment_workflow_id(workflow_id, payment.payment_ref),
                task_queue=self._task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=f"late payment of ¥{payment.amount_fen / 100:.2f} to a closed case",
            )
        except WorkflowAlreadyStartedError:
            pass  # the same payment again: already recorded

    async def status(self, case: str) -> CaseStatus:
        return await self._busy_retry(
            lambda: self.handle(case).query(
                c.STATUS.name, result_type=c.STATUS.result, rpc_timeout=_QUERY_TIMEOUT
            )
        )

    async def result(self, case: str) -> CaseResult:
        return await self.handle(case).result()
