"""`reissue`: the one command-line entry point (dev stack, worker, migrations, case actions)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console
from rich.table import Table
from temporalio.client import WorkflowUpdateFailedError
from temporalio.service import RPCError

from clients._client import ReissueClient
from schemas.case import CaseStatus
from schemas.clock import beijing
from schemas.enums import (
    AwaitingParty,
    Channel,
    InsuredCategory,
    ProductionMode,
    Stage,
)
from schemas.events import (
    AffiliationOverride,
    AffiliationResponse,
    CancelRequest,
    CardCollected,
    CardFound,
    CardProduced,
    MaterialsSubmission,
    PaymentConfirmation,
    ReviewDecision,
)
from workers.logging import configure_logging
from workers.seed import standard_submission
from workers.settings import Settings

__all__ = ["app", "main"]

app = typer.Typer(help="Lost medical insurance card reissue orchestrator.", no_args_is_help=True)
case_app = typer.Typer(
    help="Act on a case as the hotline, counter, staff, bank or bureau would.", no_args_is_help=True
)
cases_app = typer.Typer(help="Lists of cases from Temporal visibility.", no_args_is_help=True)
schemas_app = typer.Typer(help="The published JSON Schemas.", no_args_is_help=True)
app.add_typer(case_app, name="case")
app.add_typer(cases_app, name="cases")
audit_app = typer.Typer(help="Export, replay and verify case histories.", no_args_is_help=True)
policy_app = typer.Typer(help="The versioned case policies in force.", no_args_is_help=True)
registry_app = typer.Typer(
    help="People and cards in the registry of a dev or test stack.", no_args_is_help=True
)
app.add_typer(schemas_app, name="schemas")
app.add_typer(audit_app, name="audit")
app.add_typer(policy_app, name="policy")
app.add_typer(registry_app, name="registry")

console = Console()
err_console = Console(stderr=True)
T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

CaseArg = Annotated[
    str, typer.Argument(help="Workflow ID (reissue-…) or the 9-character card number.")
]
JsonOpt = Annotated[
    Path | None,
    typer.Option("--json", help="Read the whole event as JSON from this file ('-' for stdin)."),
]


def _settings() -> Settings:
    return Settings()


def _run(coro: Awaitable[T]) -> T:
    async def wrapped() -> T:
        return await coro

    try:
        return asyncio.run(wrapped())
    except ValidationError as e:
        _fail_validation(e)
    except WorkflowUpdateFailedError as e:
        err_console.print(f"[red]Refused by the case:[/] {e.cause}")
        raise typer.Exit(3) from None
    except RPCError as e:
        err_console.print(f"[red]Temporal:[/] {e.message}")
        raise typer.Exit(4) from None
    except RuntimeError as e:
        if "connect" not in str(e):
            raise
        err_console.print(
            f"[red]Cannot reach Temporal at {_settings().temporal_address}[/] "
            "(is `reissue dev` or a cluster running? set TEMPORAL_ADDRESS)"
        )
        raise typer.Exit(4) from None


def _fail_validation(e: ValidationError) -> None:
    err_console.print("[red]Invalid input:[/]")
    for error in e.errors():
        field = ".".join(str(p) for p in error["loc"]) or "(input)"
        err_console.print(f"  {field}: {error['msg']}")
    raise typer.Exit(2)


def _event(model: type[M], json_file: Path | None, fields: dict[str, Any]) -> M:
    """The event from --json, or from the command's options."""
    try:
        if json_file is not None:
            text = sys.stdin.read() if str(json_file) == "-" else json_file.read_text("utf-8")
            return model.model_validate_json(text)
        return model.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as e:
        _fail_validation(e)
        raise  # unreachable: _fail_validation exits


@asynccontextmanager
async def _client() -> AsyncIterator[ReissueClient]:
    from workers.worker import connect_client

    settings = _settings()
    temporal = await connect_client(settings)
    yield ReissueClient(
        temporal, task_queue=settings.task_queue, hash_secret=settings.case_secret()
    )


def _case_id(client: ReissueClient, case: str) -> str:
    return case if case.startswith("reissue-") else client.case_id_for(case)


def _act(case: str, action: Callable[[ReissueClient, str], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        async with _client() as client:
            return await action(client, _case_id(client, case))

    return _run(go())


# ----------------------------------------------------------------------------- running


@app.command()
def dev(
    demo: Annotated[bool, typer.Option(help="Start the demo mix of cases.")] = True,
) -> None:
    """Run the embedded stack: Temporal dev server + Web UI, PostgreSQL, a worker."""
    from workers.devstack import run_dev

    settings = _settings()
    configure_logging(fmt=settings.log_format)
    asyncio.run(run_dev(settings, demo=demo, console=console))


@app.command()
def worker(
    bare: Annotated[
        bool, typer.Option(hidden=True, help="Run the benchmark's bare-Temporal reference.")
    ] = False,
) -> None:
    """Run a case worker from the environment's configuration until SIGTERM."""
    from workers.worker import run_worker

    settings = _settings()
    configure_logging(fmt=settings.log_format)
    asyncio.run(run_worker(settings, bare=bare))


@app.command("codec-server")
def codec_server() -> None:
    """Serve /encode and /decode for the Web UI (token and UI origin from configuration)."""
    from schemas.codec import EncryptionCodec
    from workers.codec_server import build_app, serve

    settings = _settings()
    configure_logging(fmt=settings.log_format)

    async def go() -> None:
        runner = await serve(
            build_app(
                EncryptionCodec(settings.keyring()),
                tokens=settings.codec_token_list(),
                ui_origin=settings.codec_ui_origin,
                max_body_bytes=settings.codec_max_body_bytes,
            ),
            host=settings.codec_host,
            port=settings.codec_port,
        )
        console.print(f"Codec server on port {settings.codec_port} for {settings.codec_ui_origin}")
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    with suppress(KeyboardInterrupt):
        asyncio.run(go())


@app.command()
def migrate() -> None:
    """Apply pending database migrations to DATABASE_URL."""
    from workers.stack import migrate as apply

    applied = asyncio.run(apply(_settings().require_database_url()))
    console.print(f"Applied: {', '.join(applied) or 'nothing pending'}")


@app.command()
def demo() -> None:
    """Seed people and start the demo mix of cases on a running stack."""
    from activities.db import create_pool
    from workers.demo import run_demo

    async def go() -> None:
        settings = _settings()
        pool = await create_pool(settings.require_database_url())
        try:
            async with _client() as client:
                cases = await run_demo(
                    client,
                    pool,
                    secret=settings.case_secret(),
                    pace_seconds=settings.demo_pace_seconds,
                )
        finally:
            await pool.close()
        table = Table("workflow ID", "driven to")
        for case, stage in cases:
            table.add_row(case, stage.value)
        console.print(table)

    _run(go())


@app.command()
def bureau() -> None:
    """Play the card bureau: produce every pending standard order and report it."""
    from activities.db import create_pool
    from workers.demo import bureau_produce_pending

    async def go() -> int:
        pool = await create_pool(_settings().require_database_url())
        try:
            async with _client() as client:
                return await bureau_produce_pending(client, pool)
        finally:
            await pool.close()

    console.print(f"Produced {_run(go())} card(s).")


# ----------------------------------------------------------------------------- case actions


class Verdict(StrEnum):
    approve = "approve"
    correct = "correct"
    reject = "reject"


@case_app.command("report")
def case_report(
    card: Annotated[str, typer.Option(help="Card number (9 characters).")],
    name: Annotated[str, typer.Option(help="Applicant's name.")],
    resident_id: Annotated[str, typer.Option(help="18-digit resident ID number.")],
    mobile: Annotated[str, typer.Option(help="Mobile number.")],
    district: Annotated[str, typer.Option(help="Handling district code (500xxx).")],
    category: Annotated[InsuredCategory, typer.Option()] = InsuredCategory.URBAN_EMPLOYEE,
    channel: Annotated[Channel, typer.Option()] = Channel.HOTLINE_12333,
    employer: Annotated[str | None, typer.Option(help="Employer unit name.")] = None,
    credit_code: Annotated[str | None, typer.Option(help="Unit's credit code.")] = None,
    school: Annotated[str | None, typer.Option(help="School name.")] = None,
    school_code: Annotated[str | None, typer.Option(help="10-digit school code.")] = None,
    reported_at: Annotated[
        datetime | None,
        typer.Option(
            help="When the person reported the loss, if earlier than now (with a zone, "
            "e.g. 2026-11-26T09:30:00+08:00); within the policy's back-dating window."
        ),
    ] = None,
    json_file: JsonOpt = None,
) -> None:
    """Report a loss: opens the case (or shows the one already open for the card)."""
    affiliation: dict[str, Any] = {"kind": "none"}
    if employer or credit_code:
        affiliation = {"kind": "employer", "name": employer, "credit_code": credit_code}
    elif school or school_code:
        affiliation = {"kind": "school", "name": school, "code": school_code}
    from schemas.case import CaseInput

    inp = _event(
        CaseInput,
        json_file,
        {
            "applicant": {"name": name, "resident_id": resident_id, "mobile": mobile},
            "card_number": card,
            "insured_category": category,
            "affiliation": affiliation,
            "district": district,
            "channel": channel,
            "reported_at": reported_at,
        },
    )

    async def go() -> None:
        async with _client() as client:
            ref = await client.report_loss(inp)
        verb = "Opened" if ref.started else "Already open:"
        console.print(f"{verb} case [bold]{ref.workflow_id}[/]")

    _run(go())


@case_app.command("id")
def case_id(card: Annotated[str, typer.Argument(help="The 9-character card number.")]) -> None:
    """The workflow ID of the case for a card (the keyed hash: by-name callers start with it)."""
    from schemas.hashing import case_workflow_id
    from schemas.identifiers import normalise_card_number

    try:
        number = normalise_card_number(card)
    except ValueError as e:
        err_console.print(f"[red]Invalid input:[/]\n  card: {e}")
        raise typer.Exit(2) from None
    console.print(case_workflow_id(number, secret=_settings().case_secret()))


@case_app.command("formal")
def case_formal(
    case: CaseArg,
    resident_id: Annotated[str, typer.Option(help="ID number on the ID card the clerk checked.")],
    staff: Annotated[str, typer.Option(help="Counter staff ID.")] = "counter-01",
    json_file: JsonOpt = None,
) -> None:
    """The person showed their ID at a counter: the temporary report becomes formal (update)."""
    from schemas.events import ReportFormalisation

    event = _event(
        ReportFormalisation, json_file, {"resident_id": resident_id, "received_by": staff}
    )
    ack = _act(case, lambda c, wid: c.make_report_formal(wid, event))
    console.print(f"The loss report is formal; case in {ack.stage.value}")


@case_app.command("submit")
def case_submit(
    case: CaseArg,
    json_file: JsonOpt = None,
    standard_set: Annotated[
        bool,
        typer.Option(
            help="Submit the standard document set for the category (counter scan references)."
        ),
    ] = False,
    staff: Annotated[str, typer.Option(help="Counter staff ID.")] = "counter-01",
    mode: Annotated[ProductionMode, typer.Option()] = ProductionMode.STANDARD,
) -> None:
    """Submit the application and materials (update; the pre-check answers at once)."""

    async def go(client: ReissueClient, wid: str) -> None:
        if json_file is not None:
            sub = _event(MaterialsSubmission, json_file, {})
        elif standard_set:
            st = await client.status(wid)
            if st.loss_report_number is None:
                err_console.print("The loss is not registered yet.")
                raise typer.Exit(3)
            sub = standard_submission(
                st.loss_report_number,
                category=st.insured_category,
                mode=mode,
                received_by=staff,
            )
        else:
            err_console.print("Give --json FILE or --standard-set.")
            raise typer.Exit(2)
        accepted = await client.submit_materials(wid, sub)
        console.print(f"Accepted (round {accepted.round}); report formal: {accepted.report_formal}")

    _act(case, go)


@case_app.command("affiliation")
def case_affiliation(
    case: CaseArg,
    confirm: Annotated[bool, typer.Option("--confirm/--deny")] = True,
    responder: Annotated[str, typer.Option(help="Portal user of the unit/school.")] = "portal",
    reason: Annotated[str | None, typer.Option(help="Why the unit denies.")] = None,
    json_file: JsonOpt = None,
) -> None:
    """The unit or school confirms or denies the applicant (signal)."""
    event = _event(
        AffiliationResponse,
        json_file,
        {"confirmed": confirm, "responder": responder, "reason": reason},
    )
    _act(case, lambda c, wid: c.respond_affiliation(wid, event))
    console.print("Sent.")


@case_app.command("override")
def case_override(
    case: CaseArg,
    staff: Annotated[str, typer.Option(help="Staff ID.")],
    letter_doc: Annotated[str, typer.Option(help="Document ID of the scanned paper letter.")],
    letter_sha256: Annotated[str, typer.Option(help="SHA-256 of the scan.")],
    note: Annotated[str, typer.Option(help="Why the letter is accepted.")],
    json_file: JsonOpt = None,
) -> None:
    """After escalation, accept the unit's paper letter (update)."""
    event = _event(
        AffiliationOverride,
        json_file,
        {
            "staff_id": staff,
            "note": note,
            "letter": {"doc_id": letter_doc, "type": "affiliation_letter", "sha256": letter_sha256},
        },
    )
    ack = _act(case, lambda c, wid: c.override_affiliation(wid, event))
    console.print(f"Accepted; case now {ack.stage.value}")


@case_app.command("review")
def case_review(
    case: CaseArg,
    verdict: Annotated[Verdict, typer.Argument()],
    reviewer: Annotated[str, typer.Option(help="Reviewer's staff ID.")],
    reason: Annotated[list[str] | None, typer.Option(help="A reason (repeatable).")] = None,
    waive_fee: Annotated[bool, typer.Option(help="Waive the fee.")] = False,
    waiver_reason: Annotated[str | None, typer.Option()] = None,
    json_file: JsonOpt = None,
) -> None:
    """Staff review: approve, ask for a correction, or reject (update)."""
    names = {
        Verdict.approve: "approve",
        Verdict.correct: "request_correction",
        Verdict.reject: "reject",
    }
    event = _event(
        ReviewDecision,
        json_file,
        {
            "reviewer": reviewer,
            "verdict": names[verdict],
            "reasons": reason or [],
            "waive_fee": waive_fee,
            "waiver_reason": waiver_reason,
        },
    )
    out = _act(case, lambda c, wid: c.review(wid, event))
    console.print(
        f"{out.verdict.value}: case now {out.stage.value} (correction round {out.correction_round})"
    )


@case_app.command("pay")
def case_pay(
    case: CaseArg,
    order: Annotated[str, typer.Option(help="Payment order ID.")],
    amount_fen: Annotated[int, typer.Option(help="Amount paid, in fen.")],
    ref: Annotated[str, typer.Option(help="The payment platform's reference.")],
    json_file: JsonOpt = None,
) -> None:
    """The payment platform confirms a payment (signal)."""
    event = _event(
        PaymentConfirmation,
        json_file,
        {
            "order_id": order,
            "amount_fen": amount_fen,
            "payment_ref": ref,
            "paid_at": datetime.now(UTC),
        },
    )
    _act(case, lambda c, wid: c.confirm_payment(wid, event))
    console.print("Sent.")


@case_app.command("produced")
def case_produced(
    case: CaseArg,
    order: Annotated[str, typer.Option(help="Production order ID.")],
    card: Annotated[str, typer.Option(help="The new card's number.")],
    json_file: JsonOpt = None,
) -> None:
    """The card bureau reports the new card made (signal)."""
    event = _event(
        CardProduced,
        json_file,
        {
            "order_id": order,
            "new_card_number": card,
            "produced_at": datetime.now(UTC),
        },
    )
    _act(case, lambda c, wid: c.card_produced(wid, event))
    console.print("Sent.")


@case_app.command("collected")
def case_collected(
    case: CaseArg,
    card: Annotated[str, typer.Option(help="The new card's number.")],
    staff: Annotated[str, typer.Option(help="Counter staff ID.")] = "counter-01",
    json_file: JsonOpt = None,
) -> None:
    """The counter hands the new card over (signal)."""
    event = _event(CardCollected, json_file, {"new_card_number": card, "handed_over_by": staff})
    _act(case, lambda c, wid: c.card_collected(wid, event))
    console.print("Sent.")


@case_app.command("found")
def case_found(
    case: CaseArg,
    channel: Annotated[Channel, typer.Option()] = Channel.HOTLINE_12333,
    note: Annotated[str, typer.Option()] = "",
    json_file: JsonOpt = None,
) -> None:
    """The person found the card: withdraw while the report is temporary (update)."""
    event = _event(CardFound, json_file, {"channel": channel, "note": note})
    ack = _act(case, lambda c, wid: c.card_found(wid, event))
    console.print(f"Case ended: {ack.stage.value}")


@case_app.command("cancel")
def case_cancel(
    case: CaseArg,
    operator: Annotated[str, typer.Option(help="Operator's staff ID.")],
    reason: Annotated[str, typer.Option(help="Why the case is cancelled.")],
    json_file: JsonOpt = None,
) -> None:
    """Operations cancel the case; a paid fee is refunded (update)."""
    event = _event(CancelRequest, json_file, {"operator": operator, "reason": reason})
    ack = _act(case, lambda c, wid: c.cancel(wid, event))
    console.print(f"Case ended: {ack.stage.value}")


@case_app.command("claim")
def case_claim(
    case: CaseArg,
    reviewer: Annotated[str, typer.Option(help="Reviewer's staff ID.")],
) -> None:
    """Take a case from the review queue (update; refused if someone else holds it)."""
    state = _act(case, lambda c, wid: c.claim_review(wid, {"reviewer": reviewer}))
    console.print(f"Claimed by {state.assigned_to} until {beijing(state.claim_expires_at)}")


@case_app.command("release")
def case_release(
    case: CaseArg,
    supervisor: Annotated[str, typer.Option(help="Supervisor's staff ID.")],
    reason: Annotated[str, typer.Option(help="Why the claim is released.")],
) -> None:
    """A supervisor puts a claimed case back in the review queue (update)."""
    _act(case, lambda c, wid: c.release_review(wid, {"supervisor": supervisor, "reason": reason}))
    console.print("Released to the queue.")


@case_app.command("show")
def case_show(
    case: CaseArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw status as JSON.")] = False,
) -> None:
    """Show a case: stage, what it waits for and until when, fee, the stage timeline."""
    case_status(case, as_json=as_json)


@case_app.command("status")
def case_status(
    case: CaseArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print the raw status as JSON.")] = False,
) -> None:
    """Show a case: stage, what it waits for and until when, fee, timeline."""
    st: CaseStatus = _act(case, lambda c, wid: c.status(wid))
    if as_json:
        console.print_json(st.model_dump_json())
        return
    console.print(render_status(st))


def render_status(st: CaseStatus) -> Table:
    """A case status as a readable table."""
    table = Table(title=f"Case {st.case_id.split(':')[0]}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    fee = "-"
    if st.fee is not None:
        fee = f"¥{st.fee.amount_fen / 100:.2f}"
        if st.fee.exemption or st.fee.waived:
            fee += f" (exempt: {st.fee.exemption or 'waived'})"
        if st.fee.order_id:
            fee += f" · order {st.fee.order_id} {st.fee.order_status}"
    rows = [
        ("stage", st.stage.value),
        ("waiting for", f"{st.awaiting.value}: {st.pending_action}"),
        ("deadline", beijing(st.deadline)),
        (
            "card",
            f"{st.card_masked} (registry {'frozen' if st.card_frozen else 'not frozen'}, "
            f"bank {'frozen' if st.bank_frozen else 'not frozen'})",
        ),
        (
            "loss reported",
            f"{beijing(st.loss_reported_at, seconds=True)} "
            f"({'formal' if st.report_formal else 'temporary'}, "
            f"{st.loss_report_number or '-'})",
        ),
        ("liability cut-off", beijing(st.liability_cutoff, seconds=True)),
        ("district / category", f"{st.district} / {st.insured_category.value}"),
        (
            "materials",
            ", ".join(f"{m.type.value}{' ✓' if m.received else ' ✗'}" for m in st.materials),
        ),
        ("affiliation", st.affiliation_status),
        ("correction round", str(st.correction_round)),
        ("fee", fee),
        ("new card", st.new_card_masked or "-"),
        ("SLA breached", "yes" if st.sla_breached else "no"),
        ("flags", ", ".join(st.flags) or "-"),
        ("reminders", ", ".join(f"{k}: {v}" for k, v in st.reminders_sent.items()) or "-"),
        ("anomalies", "; ".join(st.anomalies) or "-"),
        ("policy", f"{st.policy_version} (sha256 {(st.policy_hash or '-')[:12]})"),
        (
            "money (fen)",
            f"received {st.money.received_fen}, applied {st.money.applied_fen}, "
            f"refunded {st.money.refunded_fen}, refund pending {st.money.refund_pending_fen}",
        ),
    ]
    if st.closing:
        rows.append(("closing", st.closing.value))
    if st.outcome_reason:
        rows.append(("outcome", st.outcome_reason))
    for k, v in rows:
        table.add_row(k, v)
    timeline = "\n".join(f"{beijing(e.entered_at)}  {e.stage.value}  {e.note}" for e in st.timeline)
    table.add_row("timeline", timeline)
    return table


# ----------------------------------------------------------------------------- operations


def _filter(**kw: Any) -> Any:
    from clients.operations import CaseFilter

    return CaseFilter(task_queue=_settings().task_queue, **kw)


@cases_app.command("list")
def cases_list(
    stage: Annotated[Stage | None, typer.Option(help="Only this stage.")] = None,
    district: Annotated[str | None, typer.Option(help="Only this district code.")] = None,
    awaiting: Annotated[AwaitingParty | None, typer.Option(help="Waiting for this party.")] = None,
    assigned_to: Annotated[str | None, typer.Option(help="Claimed by this reviewer.")] = None,
    unclaimed: Annotated[bool, typer.Option(help="Only cases nobody has claimed.")] = False,
    overdue: Annotated[bool, typer.Option(help="Past their current deadline.")] = False,
    sla_breached: Annotated[bool, typer.Option(help="Review SLA breached.")] = False,
    older_than_days: Annotated[
        int | None, typer.Option(help="Opened more than N days ago.")
    ] = None,
    include_closed: Annotated[bool, typer.Option("--all", help="Closed cases too.")] = False,
    limit: Annotated[int, typer.Option(help="At most this many rows.")] = 200,
) -> None:
    """List cases; prints the Web UI query that shows the same list."""
    from clients.operations import list_cases
    from workers.worker import connect_client

    flt = _filter(
        stage=stage,
        district=district,
        awaiting=awaiting,
        assigned_to=assigned_to,
        unclaimed=unclaimed,
        overdue=overdue,
        sla_breached=True if sla_breached else None,
        older_than_days=older_than_days,
        include_closed=include_closed,
    )
    now = datetime.now(UTC)
    query = flt.query(now=now)

    async def go() -> list[Any]:
        return await list_cases(await connect_client(_settings()), query, limit=limit)

    rows = _run(go())
    table = Table(
        "workflow ID",
        "stage",
        "waiting for",
        "district",
        "category",
        "round",
        "SLA",
        "claimed by",
        "deadline",
        "age (days)",
        title=f"{len(rows)} case(s)",
    )
    for r in rows:
        table.add_row(
            r.workflow_id,
            r.stage,
            r.awaiting,
            r.district,
            r.category,
            str(r.correction_round),
            "breached" if r.sla_breached else "",
            r.assigned_to or "",
            beijing(r.deadline) if r.deadline else "",
            str(r.age_days(now)),
        )
    console.print(table)
    console.print(f"Web UI query: [bold]{query}[/]", soft_wrap=True)


@app.command()
def report(
    out: Annotated[Path, typer.Option(help="Folder for report.csv and report.png.")] = Path("."),
    include_closed: Annotated[bool, typer.Option("--all/--open", help="Closed cases too.")] = True,
) -> None:
    """Counts by stage and district, SLA breaches, ageing: table, CSV and PNG chart."""
    from clients.operations import AGE_BUCKETS, build_report
    from workers.worker import connect_client

    now = datetime.now(UTC)
    query = _filter(include_closed=include_closed).query(now=now)

    async def go() -> Any:
        return await build_report(await connect_client(_settings()), query, now=now)

    rep = _run(go())
    stages = Table("stage", "cases", title=f"{rep.total} case(s) by stage")
    for s, n in sorted(rep.by_stage.items()):
        stages.add_row(s, str(n))
    districts = Table("district", "cases", title="by district")
    for d, n in sorted(rep.by_district.items()):
        districts.add_row(d, str(n))
    ageing = Table("age of open cases", "cases", title="ageing")
    for label, _, _ in AGE_BUCKETS:
        ageing.add_row(label, str(rep.ageing[label]))
    console.print(stages, districts, ageing)
    console.print(f"SLA breaches: {rep.sla_breached_open} open, {rep.sla_breached_total} in all")
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.csv").write_text(rep.to_csv(), encoding="utf-8")
    rep.to_png(out / "report.png")
    console.print(f"Wrote {out / 'report.csv'} and {out / 'report.png'}")
    console.print(f"Web UI query: [bold]{query}[/]", soft_wrap=True)


@app.command("setup-namespace")
def setup_namespace() -> None:
    """Register the custom search attributes on TEMPORAL_NAMESPACE (safe to run again)."""
    from clients.operations import ensure_search_attributes
    from workers.worker import connect_client

    async def go() -> tuple[list[str], list[str]]:
        return await ensure_search_attributes(await connect_client(_settings()))

    added, present = _run(go())
    console.print(
        f"Added: {', '.join(added) or 'none'}; already there: {', '.join(present) or 'none'}"
    )


@schemas_app.command("export")
def schemas_export(
    out: Annotated[Path | None, typer.Option(help="Folder (default: schemas/json).")] = None,
) -> None:
    """Write the JSON Schema of every input, event and result, and contract.json."""
    from schemas.contract import SCHEMA_DIR, write_all

    written = write_all(out or SCHEMA_DIR)
    console.print(f"Wrote {len(written)} files to {out or SCHEMA_DIR}")


# ----------------------------------------------------------------------------- audit


@app.command()
def soak(
    cases: Annotated[int, typer.Option(help="How many cases.")] = 1000,
    concurrency: Annotated[int, typer.Option(help="Cases driven at once.")] = 20,
    seed: Annotated[int, typer.Option(help="Random seed for paths and duplicates.")] = 1,
    chaos: Annotated[
        bool,
        typer.Option(
            help="Random programs of events instead of paths: races, early ends, Temporal "
            "cancellation, wrong, duplicate and late payments, intruders, plaintext."
        ),
    ] = False,
) -> None:
    """Soak on a stack of its own: cases through random paths, duplicate and late events."""
    import logging

    from clients.soak import run_chaos, run_soak
    from workers.stack import own_stack

    configure_logging(fmt="console", level=logging.WARNING)
    # The soak's refused events are expected: no traceback for each one.
    logging.getLogger("temporalio.activity").setLevel(logging.ERROR)

    async def go() -> Any:
        async with own_stack() as stack:
            return await (run_chaos if chaos else run_soak)(
                stack.client,
                stack.pool,
                cases=cases,
                concurrency=concurrency,
                seed=seed,
                secret=stack.settings.case_secret(),
                task_queue=stack.settings.task_queue,
            )

    result = _run(go())
    table = Table("figure", "value", title="Soak")
    table.add_row("cases finished", f"{result.finished} of {result.cases}")
    table.add_row("elapsed", f"{result.elapsed_s:.1f} s ({result.cases_per_s:.2f} cases/s)")
    for outcome, n in sorted(result.outcomes.items()):
        table.add_row(f"outcome {outcome}", str(n))
    if chaos:
        table.add_row("events sent", str(result.events_sent))
        table.add_row("events refused (as expected)", str(result.events_refused))
    else:
        table.add_row("duplicate events sent", str(result.duplicates_sent))
        table.add_row("late events sent", str(result.late_events_sent))
    table.add_row("errors", str(len(result.errors)))
    table.add_row("invariant violations", str(len(result.violations)))
    console.print(table)
    for line in result.errors[:20]:
        err_console.print(f"[red]error:[/] {line}")
    for v in result.violations[:20]:
        err_console.print(f"[red]violation:[/] {v.rule} — {v.subject}: {v.detail}")
    if result.errors or result.violations or result.finished != result.cases:
        raise typer.Exit(1)


@app.command()
def bench(
    cases: Annotated[int, typer.Option(help="Happy-path cases per phase.")] = 200,
    concurrency: Annotated[int, typer.Option(help="Cases driven at once.")] = 20,
    worker_processes: Annotated[int, typer.Option(help="Worker processes per phase.")] = 1,
    workflow_tasks: Annotated[int, typer.Option(help="Max concurrent workflow tasks.")] = 100,
    activities: Annotated[int, typer.Option(help="Max concurrent activities.")] = 100,
    workflow_pollers: Annotated[int, typer.Option(help="Workflow task pollers.")] = 5,
    activity_pollers: Annotated[int, typer.Option(help="Activity task pollers.")] = 5,
    max_cached: Annotated[int, typer.Option(help="Workflows a worker keeps cached.")] = 400,
    open_cases: Annotated[int, typer.Option(help="Then open this many cases, for memory.")] = 0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write JSON here.")] = None,
) -> None:
    """Cases/s, latencies, history and CPU cost per case, beside a bare-Temporal reference."""
    import logging

    from clients.bench import BenchConfig, run_bench, to_json

    configure_logging(fmt="console", level=logging.WARNING)
    cfg = BenchConfig(
        cases=cases,
        concurrency=concurrency,
        worker_processes=worker_processes,
        max_concurrent_workflow_tasks=workflow_tasks,
        max_concurrent_activities=activities,
        workflow_task_pollers=workflow_pollers,
        activity_task_pollers=activity_pollers,
        max_cached_workflows=max_cached,
        open_cases=open_cases,
    )
    result = _run(run_bench(cfg))
    ours, bare = result["ours"], result["bare"]
    table = Table(
        "figure",
        "ours",
        "bare Temporal",
        title=f"{cases} cases, concurrency {concurrency}, "
        f"{worker_processes} worker process(es), {result['machine']['cores']} cores",
    )
    table.add_row("cases/s", str(ours["cases_per_s"]), str(bare["cases_per_s"]))
    for key, label in (
        ("case_start", "case start"),
        ("update_round_trip", "review update"),
        ("signal_to_status", "signal → status"),
        ("end_to_end", "end to end"),
    ):
        for q in ("p50_ms", "p95_ms", "p99_ms"):
            table.add_row(f"{label} {q[:3]} (ms)", str(ours[key][q]), str(bare[key][q]))
    for key in ("events_per_case", "bytes_per_case", "activities_per_case", "timers_per_case"):
        table.add_row(
            f"history {key.replace('_', ' ')}", str(ours["history"][key]), str(bare["history"][key])
        )
    for part in ("worker", "temporal", "postgres"):
        table.add_row(
            f"CPU s/case {part}",
            str(ours["cpu_s_per_case"][part]),
            str(bare["cpu_s_per_case"][part]),
        )
    table.add_row(
        "worker peak RSS (MB)", str(ours["worker_peak_rss_mb"]), str(bare["worker_peak_rss_mb"])
    )
    console.print(table)
    console.print(f"throughput ours/bare: [bold]{result['ratio_ours_to_bare_throughput']}[/]")
    if result["open_cases"]:
        o = result["open_cases"]
        console.print(f"{o['open_cases']} open cases: worker peak RSS {o['worker_peak_rss_mb']} MB")
    if json_out:
        json_out.write_text(to_json(result), encoding="utf-8")
        console.print(f"Wrote {json_out}")


@app.command("check-invariants")
def check_invariants_command(
    verify_days: Annotated[
        float, typer.Option(help="Also cross-check histories of cases closed in the last N days.")
    ] = 1.0,
) -> None:
    """Report every violation of the system's invariants; exit 1 if there is any."""
    from datetime import timedelta

    from activities.db import create_pool
    from clients.invariants import check_invariants

    async def go() -> list[Any]:
        settings = _settings()
        pool = await create_pool(settings.require_database_url())
        try:
            async with _client() as client:
                return await check_invariants(
                    client.temporal,
                    pool,
                    task_queue=settings.task_queue,
                    verify_closed_since=datetime.now(UTC) - timedelta(days=verify_days),
                )
        finally:
            await pool.close()

    violations = _run(go())
    if not violations:
        console.print("[green]No violations.[/]")
        return
    table = Table("rule", "subject", "detail", title=f"{len(violations)} violation(s)")
    for v in violations:
        table.add_row(v.rule, v.subject, v.detail)
    console.print(table)
    raise typer.Exit(1)


@audit_app.command("export")
def audit_export(
    case: CaseArg,
    out: Annotated[Path, typer.Option(help="Folder for the files.")] = Path("audit"),
    unmask: Annotated[
        bool, typer.Option(help="Show personal data (needs payloads you can decode).")
    ] = False,
) -> None:
    """Write the case's history (Temporal JSON) and its timeline (Markdown and HTML)."""
    from clients.audit import export

    async def go() -> list[Path]:
        async with _client() as client:
            return await export(client.temporal, _case_id(client, case), out, unmask=unmask)

    for path in _run(go()):
        console.print(f"Wrote {path}")


def _load_workflow_class(spec: str) -> type:
    import importlib

    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


@audit_app.command("replay")
def audit_replay(
    cases: Annotated[list[str] | None, typer.Argument(help="Workflow IDs or card numbers.")] = None,
    file: Annotated[
        list[Path] | None, typer.Option(help="A history JSON file (repeatable).")
    ] = None,
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Every *.json in a folder and its subfolders.")
    ] = None,
    closed_since: Annotated[
        datetime | None, typer.Option(help="Every case closed at or after this time (UTC).")
    ] = None,
    closed_until: Annotated[datetime | None, typer.Option(help="... and before this time.")] = None,
    workflow: Annotated[
        str | None, typer.Option(help="Replay against module:Class instead of today's code.")
    ] = None,
) -> None:
    """Replay histories against the current workflow code; exit 1 on any divergence."""
    from temporalio.client import WorkflowHistory

    from clients.audit import load_history_file, replay
    from schemas.converter import data_converter
    from workflows import WORKFLOWS

    async def go() -> list[Any]:
        histories: list[tuple[str, WorkflowHistory]] = []
        paths = list(file or []) + (sorted(directory.rglob("*.json")) if directory else [])
        histories += [(str(p), load_history_file(p)) for p in paths]
        if cases or closed_since or closed_until:
            async with _client() as client:
                for case in cases or []:
                    wid = _case_id(client, case)
                    histories.append((wid, await client.handle(wid).fetch_history()))
                if closed_since or closed_until:
                    types = ", ".join(f"'{w.__name__}'" for w in WORKFLOWS)
                    parts = [f"WorkflowType IN ({types})", "ExecutionStatus != 'Running'"]
                    if closed_since:
                        parts.append(f"CloseTime >= '{closed_since:%Y-%m-%dT%H:%M:%SZ}'")
                    if closed_until:
                        parts.append(f"CloseTime < '{closed_until:%Y-%m-%dT%H:%M:%SZ}'")
                    query = " AND ".join(parts)
                    async for h in client.temporal.list_workflows(query).map_histories():
                        histories.append((h.workflow_id, h))
        if not histories:
            err_console.print("Nothing to replay: give cases, --file, --dir or --closed-since.")
            raise typer.Exit(2)
        workflows = [_load_workflow_class(workflow)] if workflow else None
        kwargs = {"workflows": workflows} if workflows else {}
        return await replay(histories, data_converter(_settings().keyring()), **kwargs)

    outcomes = _run(go())
    table = Table("history", "workflow ID", "result", title="Replay against current code")
    for o in outcomes:
        where = f" at event {o.event_id} ({o.event_type})" if o.event_id else ""
        result = "[green]clean[/]" if o.ok else f"[red]diverged{where}[/]: {o.error}"
        table.add_row(o.source, o.workflow_id, result)
    console.print(table)
    bad = [o for o in outcomes if not o.ok]
    console.print(f"{len(outcomes) - len(bad)} clean, {len(bad)} diverged")
    if bad:
        raise typer.Exit(1)


@audit_app.command("verify")
def audit_verify(case: CaseArg) -> None:
    """Cross-check the case's history against the audit log and registry in PostgreSQL."""
    from activities.db import create_pool
    from clients.audit import verify

    async def go() -> list[str]:
        pool = await create_pool(_settings().require_database_url())
        try:
            async with _client() as client:
                return await verify(client.temporal, pool, _case_id(client, case))
        finally:
            await pool.close()

    problems = _run(go())
    if not problems:
        console.print("[green]History and registry agree.[/]")
        return
    for problem in problems:
        console.print(f"[red]✗[/] {problem}")
    raise typer.Exit(1)


# ----------------------------------------------------------------------------- policy


@policy_app.command("list")
def policy_list() -> None:
    """Every policy version: where and when it is in force, and its content hash."""
    from activities.db import create_pool
    from activities.repositories import policies

    async def go() -> list[Any]:
        pool = await create_pool(_settings().require_database_url())
        try:
            async with pool.acquire() as conn:
                return list(await policies.listing(conn))
        finally:
            await pool.close()

    table = Table("version", "district", "in force from", "until", "content sha256")
    for r in _run(go()):
        table.add_row(
            r["version"],
            r["district"] or "all",
            beijing(r["effective_from"]),
            beijing(r["effective_to"]) if r["effective_to"] else "-",
            r["content_hash"][:16] + "…",
        )
    console.print(table)


@policy_app.command("add")
def policy_add(
    file: Annotated[Path, typer.Argument(help="The policy as JSON (schemas/json/CasePolicy).")],
    effective_from: Annotated[
        datetime, typer.Option(help="When it takes effect, with a zone (+08:00).")
    ],
    district: Annotated[
        str | None, typer.Option(help="Only for this district (default: every district).")
    ] = None,
) -> None:
    """Put a new policy version in force from a moment on (a version is never changed).

    Cases opened from then on are judged by it; cases already open keep theirs."""
    from activities.db import create_pool
    from activities.repositories import policies
    from schemas.identifiers import normalise_district
    from schemas.policy import CasePolicy

    policy = _event(CasePolicy, file, {})
    if effective_from.tzinfo is None:
        err_console.print("[red]Invalid input:[/]\n  effective_from: give a time zone (+08:00)")
        raise typer.Exit(2)
    if district is not None:
        try:
            district = normalise_district(district)
        except ValueError as e:
            err_console.print(f"[red]Invalid input:[/]\n  district: {e}")
            raise typer.Exit(2) from None

    async def go() -> Any:
        pool = await create_pool(_settings().require_database_url())
        try:
            async with pool.acquire() as conn:
                return await policies.install(
                    conn, policy, effective_from=effective_from, district=district
                )
        finally:
            await pool.close()

    added = _run(go())
    if added is None:
        err_console.print(f"Version {policy.version} exists already; a version is never changed.")
        raise typer.Exit(3)
    console.print(f"Policy {added['version']} in force from {beijing(effective_from)}")
    console.print(f"content sha256 {added['content_hash']}")


# ----------------------------------------------------------------------------- registry


@registry_app.command("enrol")
def registry_enrol(
    resident_id: Annotated[str, typer.Option(help="18-digit resident ID number.")],
    district: Annotated[str, typer.Option(help="District code (500xxx).")] = "500103",
    category: Annotated[InsuredCategory, typer.Option()] = InsuredCategory.URBAN_EMPLOYEE,
    balance_fen: Annotated[int, typer.Option(help="Account balance, in fen.")] = 100_000,
    card: Annotated[str | None, typer.Option(help="Card number (default: a new one).")] = None,
    bank: Annotated[bool, typer.Option(help="A third-generation card with a bank account.")] = True,
) -> None:
    """Enrol a person with an active card, to report it lost on a dev or test stack.

    Prints the card number. The registry is the social security system's; production
    stacks refuse this command."""
    from activities.db import create_pool
    from schemas.identifiers import (
        normalise_card_number,
        normalise_district,
        normalise_resident_id,
        today_for_validation,
    )
    from workers.seed import enrol_person

    settings = _settings()
    if settings.environment == "production":
        err_console.print("The registry of a production stack is not ours to write to.")
        raise typer.Exit(2)
    try:
        rid = normalise_resident_id(resident_id, today=today_for_validation())
        where = normalise_district(district)
        number = normalise_card_number(card) if card else None
    except ValueError as e:
        err_console.print(f"[red]Invalid input:[/]\n  {e}")
        raise typer.Exit(2) from None

    async def go() -> str:
        pool = await create_pool(settings.require_database_url())
        try:
            async with pool.acquire() as conn:
                return await enrol_person(
                    conn,
                    secret=settings.case_secret(),
                    resident_id=rid,
                    insured_category=category.value,
                    district=where,
                    balance_fen=balance_fen,
                    bank="Chongqing Rural Commercial Bank" if bank else None,
                    card_number=number,
                )
        finally:
            await pool.close()

    console.print(_run(go()))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
