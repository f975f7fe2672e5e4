"""`reissue case …`: act on a case as the hotline, counter, staff, bank or bureau would."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from reissue.cli._common import (
    CaseArg,
    JsonOpt,
    _act,
    _client,
    _event,
    _run,
    _settings,
    console,
    err_console,
)
from reissue.cli.events import add_event_commands
from reissue.client._client import ReissueClient
from reissue.devtools.seed import standard_submission
from reissue.schemas.case import CaseStatus
from reissue.schemas.clock import beijing
from reissue.schemas.contract import REGISTRATION, STATUS, SUBMIT_MATERIALS
from reissue.schemas.enums import Channel, InsuredCategory, ProductionMode
from reissue.schemas.events import MaterialsSubmission

case_app = typer.Typer(
    help="Act on a case as the hotline, counter, staff, bank or bureau would.", no_args_is_help=True
)
_SUBMIT = SUBMIT_MATERIALS.cli
assert _SUBMIT is not None
_SUBMITTED = _SUBMIT.done


@case_app.command(REGISTRATION.cli)
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
    from reissue.schemas.case import CaseInput

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
    from reissue.schemas.hashing import case_workflow_id
    from reissue.schemas.identifiers import normalise_card_number

    try:
        number = normalise_card_number(card)
    except ValueError as e:
        err_console.print(f"[red]Invalid input:[/]\n  card: {e}")
        raise typer.Exit(2) from None
    console.print(case_workflow_id(number, secret=_settings().case_secret()))


@case_app.command(_SUBMIT.name, help=_SUBMIT.help)
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
    # Written by hand: its documents come from a file (--json) or the standard set.
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
        console.print(_SUBMITTED.format(**accepted.__dict__))

    _act(case, go)


add_event_commands(case_app, except_for=frozenset({_SUBMIT.name}))


@case_app.command(STATUS.cli)
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
