"""`reissue case …`: act on a case as the hotline, counter, staff, bank or bureau would."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
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
from reissue.client._client import ReissueClient
from reissue.devtools.seed import standard_submission
from reissue.schemas.case import CaseStatus
from reissue.schemas.clock import beijing
from reissue.schemas.enums import (
    Channel,
    InsuredCategory,
    ProductionMode,
)
from reissue.schemas.events import (
    AffiliationOverride,
    AffiliationResponse,
    CancelRequest,
    CardCollected,
    CardFound,
    CardProduced,
    MaterialsSubmission,
    PaymentConfirmation,
    ProductionFailed,
    ProductionReorder,
    ReviewDecision,
)

case_app = typer.Typer(
    help="Act on a case as the hotline, counter, staff, bank or bureau would.", no_args_is_help=True
)


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


@case_app.command("formal")
def case_formal(
    case: CaseArg,
    resident_id: Annotated[str, typer.Option(help="ID number on the ID card the clerk checked.")],
    staff: Annotated[str, typer.Option(help="Counter staff ID.")] = "counter-01",
    json_file: JsonOpt = None,
) -> None:
    """The person showed their ID at a counter: the temporary report becomes formal (update)."""
    from reissue.schemas.events import ReportFormalisation

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


@case_app.command("production-failed")
def case_production_failed(
    case: CaseArg,
    order: Annotated[str, typer.Option(help="Production order ID.")],
    reason: Annotated[str, typer.Option(help="What went wrong at the bureau.")],
    json_file: JsonOpt = None,
) -> None:
    """The card bureau reports it could not make the card (signal)."""
    event = _event(
        ProductionFailed,
        json_file,
        {"order_id": order, "reason": reason, "failed_at": datetime.now(UTC)},
    )
    _act(case, lambda c, wid: c.production_failed(wid, event))
    console.print("Sent.")


@case_app.command("reorder")
def case_reorder(
    case: CaseArg,
    supervisor: Annotated[str, typer.Option(help="Supervisor's staff ID.")],
    reason: Annotated[str, typer.Option(help="Why the card is ordered again.")],
    json_file: JsonOpt = None,
) -> None:
    """After the bureau failed past the policy's limit, order the card again (update)."""
    event = _event(ProductionReorder, json_file, {"supervisor": supervisor, "reason": reason})
    ack = _act(case, lambda c, wid: c.reorder_card(wid, event))
    console.print(f"Accepted; case now {ack.stage.value}")


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
