"""The public contract as data: every workflow, update, signal and query with its models,
and the catalogue of events — each event once, with every face it has outside the
workflow.

The catalogue (`EVENTS`, and `CATALOGUE` with registration and status) is the one
place an event is written out. From an entry:
- the typed client sends it (`ReissueClient.ask`/`send`, and the method named by
  `client`);
- `reissue case <cli.name>` takes it, one option per field of its model (or the
  whole event with `--json FILE`);
- the partner API serves `POST /v1/cases/{case_id}/<api.path>` for it, under the
  scope `api.scope`, to a case waiting for it (`api.awaited`);
- the staff console's form for it is the action `console`, which the roles in
  `permissions.ROLE_ACTIONS` allow;
- `contract.json` and the JSON Schemas below list it.
A new event is one entry here plus its handler in the workflow.

`reissue schemas export` writes a JSON Schema per model into `schemas/json/`, plus
`contract.json` that maps each name other services call to its schemas. They are
committed; a test fails when they drift from the models.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Final, Generic, Literal, TypeVar

from pydantic import BaseModel

from reissue.schemas.activities import PaymentReceipt
from reissue.schemas.case import CaseInput, CaseResult, CaseStatus
from reissue.schemas.enums import AwaitingParty, Channel, DocumentType, Stage
from reissue.schemas.events import (
    AffiliationOverride,
    AffiliationResponse,
    CancelRequest,
    CardCollected,
    CardFound,
    CardProduced,
    ClaimState,
    EventAck,
    LatePayment,
    MaterialsAccepted,
    MaterialsSubmission,
    PaymentConfirmation,
    ProductionFailed,
    ProductionReorder,
    ReportFormalisation,
    ReviewClaim,
    ReviewDecision,
    ReviewOutcome,
    ReviewRelease,
)
from reissue.schemas.partner import Cancellation, FoundCard, PartnerBody
from reissue.schemas.permissions import Scope, StaffAction
from reissue.schemas.policy import CasePolicy

__all__ = [
    "CASE",
    "CATALOGUE",
    "CONTRACT",
    "EVENTS",
    "LATE_PAYMENT",
    "LATE_PAYMENT_WORKFLOW",
    "NOW",
    "SCHEMA_DIR",
    "Awaited",
    "Command",
    "Event",
    "Query",
    "Route",
    "Signal",
    "Update",
    "WorkflowType",
    "late_payment_workflow_id",
    "render_all",
    "write_all",
]

SCHEMA_DIR = Path(__file__).parent / "json"

A = TypeVar("A", bound=BaseModel)
R = TypeVar("R", bound=BaseModel)

# A command-line default: the time the command runs.
NOW: Final = "now"


@dataclass(frozen=True)
class WorkflowType(Generic[A, R]):
    """A workflow other services start by name, with its input and result models."""

    name: str
    arg: type[A]
    result: type[R]


# ----------------------------------------------------------------------------- faces


@dataclass(frozen=True, eq=False)
class Command:
    """`reissue case <name> CASE [ARGUMENT] [options]`, or `--json FILE` for the whole
    event. Each field of the event's model is an option named after it (`order_id`:
    `--order-id`; a nested model's fields as `--letter-doc-id`), unless `options`
    names it otherwise (a typer declaration: `"--order"`, `"--confirm/--deny"`);
    `argument` is the field given after CASE, which also takes the shorter `words`
    for its values. `defaults` hold the options' defaults (`NOW`: the time the
    command runs). A list of documents is given with `--json` only. `done` is
    printed after (formatted with the answer's fields)."""

    name: str
    help: str
    _: KW_ONLY
    options: Mapping[str, str] = field(default_factory=dict)
    defaults: Mapping[str, object] = field(default_factory=dict)
    argument: str | None = None
    words: Mapping[str, str] = field(default_factory=dict)
    done: str = "Sent."


def _always(_: CaseStatus) -> bool:
    return True


@dataclass(frozen=True, eq=False)
class Awaited:
    """The case a partner's event goes to must be waiting for it: in `stage`, and
    `waiting` says so of its status. Anything else is refused at the front door and
    never reaches the case (nor grows its history, however often sent)."""

    stage: Stage
    waiting: Callable[[CaseStatus], bool] = _always


@dataclass(frozen=True, eq=False)
class Route(Generic[A]):
    """`POST /v1/cases/{case_id}/<path>` of the partner API, for credentials with
    `scope`. The body is the event's model, or `body`, which the front door turns into
    the event (who acts is the credential). `actor` is the event's field naming the
    clerk or officer who acted: the credential's person, whom a body may only repeat.
    `asked_only`: a portal reaches only a case that asked its own unit or school."""

    path: str
    scope: Scope
    summary: str
    _: KW_ONLY
    body: type[PartnerBody[A]] | None = None
    actor: str | None = None
    awaited: Awaited | None = None
    asked_only: bool = False


@dataclass(frozen=True, eq=False)
class Update(Generic[A, R]):
    """An update: the caller waits for the case's answer."""

    kind: ClassVar[Literal["update"]] = "update"
    name: str
    arg: type[A]
    result: type[R]
    _: KW_ONLY
    client: str | None = None  # the `ReissueClient` method
    cli: Command | None = None
    api: Route[A] | None = None
    console: StaffAction | None = None


@dataclass(frozen=True, eq=False)
class Signal(Generic[A]):
    """A signal: delivered, answered by nothing."""

    kind: ClassVar[Literal["signal"]] = "signal"
    name: str
    arg: type[A]
    _: KW_ONLY
    client: str | None = None
    cli: Command | None = None
    api: Route[A] | None = None
    console: StaffAction | None = None


@dataclass(frozen=True, eq=False)
class Query(Generic[R]):
    """A query, or an update that takes no argument (`registration`). Their faces are
    not events' and are written by hand; the catalogue names them."""

    name: str
    result: type[R]
    _: KW_ONLY
    scope: Scope  # the partner API's
    kind: Literal["query", "update"] = "query"
    client: str | None = None
    cli: str | None = None
    api: str | None = None
    console: str | None = None


Event = Update[Any, Any] | Signal[Any]


# ----------------------------------------------------------------------------- the catalogue


def _affiliation_requested(st: CaseStatus) -> bool:
    return st.affiliation_status == "requested"


def _awaiting_the_bureau(st: CaseStatus) -> bool:
    """No new card yet, and no new order being placed: while the case orders again
    after a failure, a report waits (409; the bureau tries again) instead of landing
    before the case knows the new order."""
    placing = st.production_order_id in st.failed_production_orders
    return st.new_card_masked is None and not (placing and st.awaiting is AwaitingParty.BUREAU)


_PRODUCTION = Awaited(Stage.CARD_PRODUCTION, _awaiting_the_bureau)
_COUNTER_STAFF = "counter-01"
_STAGE_NOW = "Accepted; case now {stage}"
_ENDED = "Case ended: {stage}"

CASE = WorkflowType("CardReissueWorkflow", CaseInput, CaseResult)
MAKE_REPORT_FORMAL = Update(
    "make_report_formal",
    ReportFormalisation,
    EventAck,
    client="make_report_formal",
    cli=Command(
        "formal",
        "The person showed their ID at a counter: the temporary report becomes formal (update).",
        options={"received_by": "--staff"},
        defaults={"received_by": _COUNTER_STAFF},
        done="The loss report is formal; case in {stage}",
    ),
    api=Route(
        "formal",
        Scope.FORMALISE,
        "The person showed their ID at a counter: the report becomes formal",
        actor="received_by",
    ),
)
SUBMIT_MATERIALS = Update(
    "submit_materials",
    MaterialsSubmission,
    MaterialsAccepted,
    client="submit_materials",
    cli=Command(
        "submit",
        "Submit the application and materials (update; the pre-check answers at once).",
        done="Accepted (round {round}); report formal: {report_formal}",
    ),
    api=Route(
        "materials",
        Scope.SUBMIT,
        "The application and materials handed in at a counter",
        actor="received_by",
    ),
)
AFFILIATION_RESPONSE = Signal(
    "affiliation_response",
    AffiliationResponse,
    client="respond_affiliation",
    cli=Command(
        "affiliation",
        "The unit or school confirms or denies the applicant (signal).",
        options={"confirmed": "--confirm/--deny"},
        defaults={"confirmed": True, "responder": "portal"},
    ),
    api=Route(
        "affiliation",
        Scope.AFFILIATION,
        "The unit's or school's answer (its own cases only)",
        actor="responder",
        awaited=Awaited(Stage.AWAITING_AFFILIATION, _affiliation_requested),
        asked_only=True,
    ),
)
OVERRIDE_AFFILIATION = Update(
    "override_affiliation",
    AffiliationOverride,
    EventAck,
    client="override_affiliation",
    cli=Command(
        "override",
        "After escalation, accept the unit's paper letter (update).",
        options={
            "staff_id": "--staff",
            "letter.doc_id": "--letter-doc",
            "letter.sha256": "--letter-sha256",
        },
        defaults={"letter.type": DocumentType.AFFILIATION_LETTER},
        done=_STAGE_NOW,
    ),
    console=StaffAction.OVERRIDE,
)
CLAIM_REVIEW = Update(
    "claim_review",
    ReviewClaim,
    ClaimState,
    client="claim_review",
    cli=Command(
        "claim",
        "Take a case from the review queue (update; refused if someone else holds it).",
        done="Claimed by {assigned_to} until {claim_expires_at}",
    ),
    console=StaffAction.CLAIM,
)
RELEASE_REVIEW = Update(
    "release_review",
    ReviewRelease,
    ClaimState,
    client="release_review",
    cli=Command(
        "release",
        "A supervisor puts a claimed case back in the review queue (update).",
        done="Released to the queue.",
    ),
    console=StaffAction.RELEASE,
)
REVIEW = Update(
    "review",
    ReviewDecision,
    ReviewOutcome,
    client="review",
    cli=Command(
        "review",
        "Staff review: approve, ask for a correction, or reject (update).",
        argument="verdict",
        words={"correct": "request_correction"},
        options={"reasons": "--reason"},
        done="{verdict}: case now {stage} (correction round {correction_round})",
    ),
    console=StaffAction.DECIDE,
)
PAYMENT_CONFIRMED = Signal(
    "payment_confirmed",
    PaymentConfirmation,
    client="confirm_payment",
    cli=Command(
        "pay",
        "The payment platform confirms a payment (signal).",
        options={"order_id": "--order", "payment_ref": "--ref"},
        defaults={"paid_at": NOW},
    ),
    # Partners pay through the signed webhook, `POST /v1/payments`.
)
CARD_PRODUCED = Signal(
    "card_produced",
    CardProduced,
    client="card_produced",
    cli=Command(
        "produced",
        "The card bureau reports the new card made (signal).",
        options={"order_id": "--order", "new_card_number": "--card"},
        defaults={"produced_at": NOW},
    ),
    api=Route(
        "card-produced",
        Scope.CARD_PRODUCED,
        "The card bureau made the new card",
        awaited=_PRODUCTION,
    ),
)
PRODUCTION_FAILED = Signal(
    "production_failed",
    ProductionFailed,
    client="production_failed",
    cli=Command(
        "production-failed",
        "The card bureau reports it could not make the card (signal).",
        options={"order_id": "--order"},
        defaults={"failed_at": NOW},
    ),
    api=Route(
        "production-failed",
        Scope.PRODUCTION_FAILED,
        "The card bureau could not make the card (the case orders it again, up to its policy's"
        " limit)",
        awaited=_PRODUCTION,
    ),
)
REORDER_CARD = Update(
    "reorder_card",
    ProductionReorder,
    EventAck,
    client="reorder_card",
    cli=Command(
        "reorder",
        "After the bureau failed past the policy's limit, order the card again (update).",
        done=_STAGE_NOW,
    ),
    console=StaffAction.REORDER,
)
CARD_COLLECTED = Signal(
    "card_collected",
    CardCollected,
    client="card_collected",
    cli=Command(
        "collected",
        "The counter hands the new card over (signal).",
        options={"new_card_number": "--card", "handed_over_by": "--staff"},
        defaults={"handed_over_by": _COUNTER_STAFF},
    ),
    api=Route(
        "collected",
        Scope.COLLECT,
        "The counter handed the new card over",
        actor="handed_over_by",
        awaited=Awaited(Stage.READY_FOR_PICKUP),
    ),
)
CARD_FOUND = Update(
    "card_found",
    CardFound,
    EventAck,
    client="card_found",
    cli=Command(
        "found",
        "The person found the card: withdraw while the report is temporary (update).",
        defaults={"channel": Channel.HOTLINE_12333},
        done=_ENDED,
    ),
    api=Route(
        "card-found",
        Scope.CARD_FOUND,
        "The person found the card: lift the temporary report and end the case",
        body=FoundCard,
    ),
)
CANCEL = Update(
    "cancel",
    CancelRequest,
    EventAck,
    client="cancel",
    cli=Command(
        "cancel", "Operations cancel the case; a paid fee is refunded (update).", done=_ENDED
    ),
    api=Route(
        "cancel", Scope.CANCEL, "Operations end the case; a paid fee is refunded", body=Cancellation
    ),
    console=StaffAction.CANCEL,
)
REGISTRATION = Query(
    "registration",  # an update without argument, sent with the case's start
    CaseStatus,
    kind="update",
    client="report_loss_and_wait",
    cli="report",
    api="POST /v1/cases",
    scope=Scope.REPORT,
)
STATUS = Query(
    "status",
    CaseStatus,
    client="status",
    cli="show",
    api="GET /v1/cases/{case_id}",
    scope=Scope.STATUS,
    console="/cases/{case_id}",
)

# Every event of the case, in the contract's order.
EVENTS: Final[tuple[Event, ...]] = (
    MAKE_REPORT_FORMAL,
    SUBMIT_MATERIALS,
    AFFILIATION_RESPONSE,
    OVERRIDE_AFFILIATION,
    CLAIM_REVIEW,
    RELEASE_REVIEW,
    REVIEW,
    PAYMENT_CONFIRMED,
    CARD_PRODUCED,
    PRODUCTION_FAILED,
    REORDER_CARD,
    CARD_COLLECTED,
    CARD_FOUND,
    CANCEL,
)
CATALOGUE: Final[tuple[Event | Query[Any], ...]] = (*EVENTS, REGISTRATION, STATUS)

# Started by callers when a payment reaches a case that has closed (see README).
LATE_PAYMENT_WORKFLOW = WorkflowType("LatePaymentWorkflow", LatePayment, PaymentReceipt)

Entry = tuple[type[BaseModel] | None, type[BaseModel] | None]


def _entries(
    *calls: WorkflowType[Any, Any] | Update[Any, Any] | Signal[Any] | Query[Any],
) -> dict[tuple[str, str], Entry]:
    table: dict[tuple[str, str], Entry] = {}
    for c in calls:
        if isinstance(c, WorkflowType):
            table[("workflow", c.name)] = (c.arg, c.result)
        elif isinstance(c, Update):
            table[(c.kind, c.name)] = (c.arg, c.result)
        elif isinstance(c, Signal):
            table[(c.kind, c.name)] = (c.arg, None)
        else:
            table[(c.kind, c.name)] = (None, c.result)
    return table


# kind, name -> (input model, result model)
CONTRACT = _entries(CASE, *CATALOGUE)
LATE_PAYMENT = _entries(LATE_PAYMENT_WORKFLOW)


def late_payment_workflow_id(case_workflow_id: str, payment_ref: str) -> str:
    """One payment record per payment reference: a second delivery finds the first."""
    return f"{case_workflow_id}-late-payment-{payment_ref}"


def _dump(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


def render_all() -> dict[str, str]:
    """File name -> content for every schema and the contract index."""
    files: dict[str, str] = {}
    index: dict[str, Any] = {"task_queue_default": "card-reissue", "entries": []}
    models: dict[str, tuple[type[BaseModel], str]] = {"CasePolicy": (CasePolicy, "validation")}
    for (kind, name), (arg, result) in (CONTRACT | LATE_PAYMENT).items():
        entry: dict[str, Any] = {"kind": kind, "name": name}
        if arg is not None:
            models[arg.__name__] = (arg, "validation")
            entry["input"] = f"{arg.__name__}.schema.json"
        if result is not None:
            models[result.__name__] = (result, "serialization")
            entry["result"] = f"{result.__name__}.schema.json"
        index["entries"].append(entry)
    for model_name, (model, mode) in sorted(models.items()):
        schema = model.model_json_schema(mode=mode)  # type: ignore[arg-type]
        files[f"{model_name}.schema.json"] = _dump(schema)
    files["contract.json"] = _dump(index)
    return files


def write_all(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in render_all().items():
        path = directory / name
        path.write_text(content, encoding="utf-8")
        written.append(path)
    return written
