"""Audit a case: export its history and timeline, replay it against today's code, verify it.

The history is Temporal's own record, in the JSON format the Temporal CLI and
Web UI use. The timeline turns it into the story of the case: every stage,
actor, decision with its reasons, deadline, reminder, escalation, payment and
card event, with the policy version in force. Personal data is masked unless
the auditor asks for it and can decode the payloads.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import Replayer

from reissue.schemas.clock import BEIJING, beijing
from reissue.schemas.identifiers import mask_card_number, mask_mobile, mask_name, mask_resident_id
from reissue.workflows import WORKFLOWS

__all__ = [
    "LOCAL_ACTIVITY_MARKER",
    "Entry",
    "HistoryReader",
    "ReplayOutcome",
    "Timeline",
    "build_timeline",
    "replay",
    "verify",
]


# ----------------------------------------------------------------------------- timeline


@dataclass(frozen=True)
class Entry:
    """One line of the story: when, who, what."""

    at: datetime
    actor: str
    what: str
    detail: str = ""


@dataclass
class Timeline:
    workflow_id: str
    run_id: str
    entries: list[Entry] = field(default_factory=list)
    policy_version: str = "?"
    outcome: str = "open"

    def to_markdown(self) -> str:
        lines = [
            f"# Case {self.workflow_id}",
            "",
            f"- Run: `{self.run_id}`",
            f"- Policy in force: **{self.policy_version}**",
            f"- Outcome: **{self.outcome}**",
            "",
            "| time (Beijing, UTC+8) | actor | event | detail |",
            "|---|---|---|---|",
        ]
        for e in self.entries:
            cells = [_local(e.at), e.actor, e.what, e.detail]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        rows = "\n".join(
            f"<tr><td>{_local(e.at)}</td><td>{html.escape(e.actor)}</td>"
            f"<td>{html.escape(e.what)}</td><td>{html.escape(e.detail)}</td></tr>"
            for e in self.entries
        )
        title = html.escape(f"Case {self.workflow_id}")
        return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border: 1px solid #ccc; padding: .3rem .5rem; vertical-align: top; text-align: left; }}
th {{ background: #f0f0f0; }}
</style></head><body>
<h1>{title}</h1>
<p>Run <code>{html.escape(self.run_id)}</code> · policy in force
<b>{html.escape(self.policy_version)}</b> · outcome <b>{html.escape(self.outcome)}</b></p>
<table><thead><tr><th>time (Beijing, UTC+8)</th><th>actor</th><th>event</th><th>detail</th></tr></thead>
<tbody>
{rows}
</tbody></table></body></html>
"""


def _local(at: datetime) -> str:
    return at.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def _yuan(fen: Any) -> str:
    return f"¥{int(fen) / 100:.2f}"


def _mask_applicant(applicant: dict[str, Any], *, unmask: bool) -> str:
    if unmask:
        return f"{applicant['name']}, ID {applicant['resident_id']}, mobile {applicant['mobile']}"
    return (
        f"{mask_name(applicant['name'])}, ID {mask_resident_id(applicant['resident_id'])}, "
        f"mobile {mask_mobile(applicant['mobile'])}"
    )


def _card(value: Any) -> str:
    return mask_card_number(str(value)) if value else "-"


# The marker a local activity leaves in the history (recorded by the SDK's core).
LOCAL_ACTIVITY_MARKER = "core_local_activity"


class HistoryReader:
    """Reads a case's history event by event: payloads decoded (when the key is at hand),
    the steps it completed (`step`)."""

    def __init__(self, converter: DataConverter) -> None:
        self._converter = converter
        self._scheduled: dict[int, tuple[str, Any]] = {}

    async def one(self, payloads: Sequence[Payload]) -> Any:
        """The first payload as plain JSON data, or None when it cannot be decoded."""
        if not payloads:
            return None
        try:
            values = await self._converter.decode(list(payloads), [dict[str, Any]])
        except Exception:  # encrypted without the key, or not JSON: the entry says so
            return None
        return values[0] if values else None

    async def step(self, ev: HistoryEvent) -> tuple[str, Any, Any] | None:
        """(activity, input, result) when `ev` completes a step: an activity's completion
        (its input from the scheduled event, seen earlier) or a local activity's marker
        (`LocalRun`: both in its result). None for every other event."""
        if ev.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            a = ev.activity_task_scheduled_event_attributes
            self._scheduled[ev.event_id] = (a.activity_type.name, await self.one(a.input.payloads))
        elif ev.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            done = ev.activity_task_completed_event_attributes
            kind, arg = self._scheduled.get(done.scheduled_event_id, ("?", None))
            return kind, arg, await self.one(done.result.payloads)
        elif (
            ev.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
            and ev.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER
        ):
            details = ev.marker_recorded_event_attributes.details
            if "result" not in details:  # a failed attempt: nothing was done
                return None
            data = await self.one(details["data"].payloads) or {}
            run = await self.one(details["result"].payloads)
            kind = str(data.get("activity_type", "?")).removesuffix(".local")
            if isinstance(run, dict):
                return kind, run.get("arg"), run.get("result")
            return kind, None, None
        return None

    def scheduled(self, event_id: int) -> str:
        """The activity scheduled by event `event_id`."""
        return self._scheduled.get(event_id, ("?", None))[0]

    async def text(self, payload: Payload) -> str | None:
        """A summary string (user metadata), or None when it cannot be decoded."""
        try:
            values = await self._converter.decode([payload], [str])
        except Exception:  # encrypted without the key
            return None
        return str(values[0]) if values else None


def _activity_line(kind: str, arg: dict[str, Any], result: Any) -> tuple[str, str, str] | None:
    """(actor, what, detail) for a completed activity, or None to leave it out."""
    r = result if isinstance(result, dict) else {}
    match kind:
        case "register_loss":
            policy = (r.get("policy") or {}).get("version")
            in_force = f"; policy in force {policy} (sha256 {str(r.get('policy_hash'))[:12]}…)"
            return (
                "registry",
                "Loss registered",
                f"report {r.get('report_number')}; reported at {_when(r.get('reported_at'))} "
                f"(liability cut-off); {'formal' if r.get('formal') else 'temporary'} report"
                + (in_force if policy else ""),
            )
        case "freeze_card":
            return (
                "registry",
                "Card frozen in the registry",
                f"card {_card(arg.get('card_number'))}",
            )
        case "freeze_bank_account" | "unfreeze_bank_account":
            what = "frozen" if kind == "freeze_bank_account" else "unfrozen"
            return "bank", f"Bank account {what}", f"status {r.get('status')}"
        case "formalise_loss_report":
            return "registry", "Loss report made formal", "the old card is void from now on"
        case "lift_loss_report":
            if r.get("changed") is False:
                return "registry", "Loss report not lifted", "it is not a temporary report"
            return "registry", "Loss report lifted, card unfrozen", f"reason: {arg.get('reason')}"
        case "void_old_card":
            return (
                "registry",
                "Loss report closed, old card void",
                f"card {_card(arg.get('card_number'))} stays unusable; reason: {arg.get('reason')}",
            )
        case "receive_payment":
            what = "applied to the fee" if r.get("applied") else f"to refund: {r.get('reason')}"
            return (
                "payment platform",
                f"Payment received: {_yuan(r.get('amount_fen', 0))}",
                f"order {arg.get('order_id')}, reference {arg.get('payment_ref')}; {what}",
            )
        case "request_affiliation_confirmation":
            return (
                "system",
                "Confirmation requested",
                f"{arg.get('kind')} {arg.get('org_name')} ({arg.get('org_code')})",
            )
        case "precheck_materials":
            docs = ", ".join(f"{d.get('type')}:{d.get('doc_id')}" for d in arg.get("documents", []))
            verdict = "passed" if r.get("passed") else "failed: " + "; ".join(r.get("problems", []))
            return "system", f"Materials pre-check {verdict}", docs
        case "record_review_decision":
            reasons = "; ".join(arg.get("reasons") or []) or "-"
            waiver = f"; fee waived ({arg.get('waiver_reason')})" if arg.get("waive_fee") else ""
            return (
                str(arg.get("reviewer")),
                f"Review decision: {arg.get('verdict')} (round {arg.get('round')})",
                f"reasons: {reasons}{waiver}",
            )
        case "assess_fee":
            return (
                "payments",
                f"Fee assessed: {_yuan(r.get('amount_fen', 0))}",
                f"schedule {arg.get('schedule')}, base {_yuan(r.get('base_fen', 0))}, "
                f"exemption {r.get('exemption') or '-'}, waived {r.get('waived')}",
            )
        case "create_payment_order" | "open_payment_order":
            at = (
                f", at the payment platform as {r['platform_ref']}" if r.get("platform_ref") else ""
            )
            return (
                "payments",
                f"Payment order {r.get('order_id')} for {_yuan(r.get('amount_fen', 0))}",
                f"due {_when(arg.get('due_at'))}{at}",
            )
        case "close_payment_order":
            paid = r.get("payment") or {}
            return (
                "payment platform",
                f"Payment order {r.get('order_id')} closed at the payment platform",
                f"paid first: {_yuan(paid.get('amount_fen', 0))}, reference {paid.get('payment_ref')}"
                if paid
                else f"unpaid: {arg.get('reason')}",
            )
        case "record_payment":
            return (
                "payment platform",
                f"Payment received: {_yuan(r.get('amount_fen', 0))}",
                f"order {r.get('order_id')}, reference {r.get('payment_ref')}",
            )
        case "cancel_payment_order":
            return (
                "payments",
                "Payment order cancelled",
                f"order {r.get('order_id')}: {arg.get('reason')}",
            )
        case "refund_payment":
            return (
                "payments",
                f"Refunded: {_yuan(r.get('amount_fen', 0))}",
                f"reference {r.get('payment_ref')}"
                + (f", order {r.get('order_id')}" if r.get("order_id") else "")
                + f": {arg.get('reason')}",
            )
        case "order_card_production":
            new = (
                f", new card {_card(r.get('new_card_number'))}" if r.get("new_card_number") else ""
            )
            return (
                "card bureau",
                f"Card production ordered ({arg.get('mode')})",
                f"order {r.get('order_id')}{new}",
            )
        case "record_card_produced":
            return "card bureau", "Card produced", f"new card {_card(arg.get('new_card_number'))}"
        case "record_production_failed":
            return (
                "card bureau",
                "Card production failed",
                f"order {arg.get('order_id')}: {arg.get('reason')}",
            )
        case "cancel_card_production":
            return "card bureau", "Card production cancelled", f"order {arg.get('order_id')}"
        case "activate_new_card":
            return (
                "registry",
                "New card activated",
                f"new card {_card(arg.get('new_card_number'))} on the same account "
                f"(balance {_yuan(r.get('balance_fen', 0))} untouched); old card "
                f"{_card(arg.get('old_card_number'))} replaced; loss report resolved",
            )
        case "notify":
            return (
                "outbox",
                f"Notice to {arg.get('recipient')}: {arg.get('template')}",
                ", ".join(f"{k}={v}" for k, v in (arg.get("params") or {}).items()),
            )
        case "append_audit_event":
            return (
                str(arg.get("actor")),
                f"Recorded: {arg.get('event_type')}",
                json.dumps(arg.get("detail"), ensure_ascii=False),
            )
    return None


def _when(value: Any) -> str:
    try:
        return beijing(datetime.fromisoformat(str(value)), seconds=True)
    except ValueError:
        return str(value)


# Personal data an event may carry, and how each is masked in a timeline.
_MASKS = {
    "resident_id": mask_resident_id,
    "name": mask_name,
    "mobile": mask_mobile,
    "card_number": mask_card_number,
    "new_card_number": mask_card_number,
}


def _masked(value: Any) -> Any:
    """`value` with every personal field masked, however deep."""
    if isinstance(value, dict):
        return {k: _MASKS[k](str(v)) if k in _MASKS and v else _masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def _event_input(arg: Any, *, unmask: bool = False) -> str:
    """An update's or signal's input as a timeline shows it: personal data masked
    (unless an auditor unmasked it), documents by type."""
    if not isinstance(arg, dict):
        return "(payload not readable without the decryption key)"
    shown = {k: v for k, v in arg.items() if k not in ("documents", "letter")}
    if not unmask:
        shown = _masked(shown)
    if "documents" in arg:
        shown["documents"] = [d.get("type") for d in arg["documents"]]
    return json.dumps(shown, ensure_ascii=False, default=str)


def _actor_of(arg: Any) -> str:
    if not isinstance(arg, dict):
        return "?"
    for key in (
        "reviewer",
        "operator",
        "staff_id",
        "supervisor",
        "received_by",
        "responder",
        "handed_over_by",
        "channel",
    ):
        if arg.get(key):
            return str(arg[key])
    return "external system"


async def build_timeline(
    history: WorkflowHistory, converter: DataConverter, *, unmask: bool = False
) -> Timeline:
    """The story of a case from its history."""
    dec = HistoryReader(converter)
    first = history.events[0]
    timeline = Timeline(
        workflow_id=history.workflow_id,
        run_id=first.workflow_execution_started_event_attributes.original_execution_run_id,
    )
    timers: dict[int, str] = {}
    updates: dict[str, str] = {}
    stage = None

    def add(event: HistoryEvent, actor: str, what: str, detail: str = "") -> None:
        timeline.entries.append(Entry(event.event_time.ToDatetime(tzinfo=UTC), actor, what, detail))

    for ev in history.events:
        t = ev.event_type
        if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            inp = await dec.one(ev.workflow_execution_started_event_attributes.input.payloads)
            if isinstance(inp, dict) and "applicant" in inp:
                # Cases started before the policy table carried it in their input.
                given = (inp.get("policy") or {}).get("version")
                timeline.policy_version = given or timeline.policy_version
                aff = inp.get("affiliation") or {"kind": "none"}
                add(
                    ev,
                    str(inp.get("channel")),
                    f"Loss of card {_card(inp.get('card_number'))} reported",
                    f"applicant {_mask_applicant(inp['applicant'], unmask=unmask)}; "
                    f"{inp.get('insured_category')}; district {inp.get('district')}; "
                    f"affiliation {aff.get('kind')} {aff.get('name', '')}"
                    + (f"; policy {given}" if given else ""),
                )
            else:
                add(ev, "?", "Case started", "input not readable (encrypted or invalid)")
        elif step := await dec.step(ev):
            kind, arg, result = step
            if kind == "register_loss" and isinstance(result, dict) and result.get("policy"):
                timeline.policy_version = str(result["policy"].get("version"))
            line = _activity_line(kind, arg or {}, result)
            if line:
                add(ev, *line)
        elif t in (
            EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
            EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
        ):
            attrs = (
                ev.activity_task_failed_event_attributes
                if t == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
                else ev.activity_task_timed_out_event_attributes
            )
            kind = dec.scheduled(attrs.scheduled_event_id)
            add(ev, "system", f"Activity {kind} failed", attrs.failure.message)
        elif t == EventType.EVENT_TYPE_TIMER_STARTED:
            timer = ev.timer_started_event_attributes
            summary = (
                await dec.text(ev.user_metadata.summary) if ev.HasField("user_metadata") else None
            )
            label = summary or "timer"
            fires = ev.event_time.ToDatetime(tzinfo=UTC) + timer.start_to_fire_timeout.ToTimedelta()
            timers[ev.event_id] = label
            add(ev, "system", f"Deadline set: {label}", f"fires {beijing(fires, seconds=True)}")
        elif t == EventType.EVENT_TYPE_TIMER_FIRED:
            label = timers.get(ev.timer_fired_event_attributes.started_event_id, "timer")
            add(ev, "system", f"Deadline reached: {label}")
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            signal = ev.workflow_execution_signaled_event_attributes
            arg = await dec.one(signal.input.payloads)
            add(
                ev, _actor_of(arg), f"Signal {signal.signal_name}", _event_input(arg, unmask=unmask)
            )
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            req = ev.workflow_execution_update_accepted_event_attributes.accepted_request
            updates[req.meta.update_id] = req.input.name
            arg = await dec.one(req.input.args.payloads)
            add(
                ev,
                _actor_of(arg),
                f"Update {req.input.name} accepted",
                _event_input(arg, unmask=unmask),
            )
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            answered = ev.workflow_execution_update_completed_event_attributes
            name = updates.get(answered.meta.update_id, "update")
            if answered.outcome.HasField("failure"):
                add(ev, "system", f"Update {name} refused", answered.outcome.failure.message)
            else:
                result = await dec.one(answered.outcome.success.payloads)
                add(
                    ev,
                    "system",
                    f"Update {name} answered",
                    json.dumps(
                        result if unmask else _masked(result), ensure_ascii=False, default=str
                    ),
                )
        elif t == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = ev.upsert_workflow_search_attributes_event_attributes.search_attributes
            raw = fields.indexed_fields.get("CaseStage")
            if raw is not None:
                new_stage = json.loads(raw.data)
                if new_stage != stage:
                    stage = new_stage
                    add(ev, "system", f"Stage → {new_stage}")
            sla = fields.indexed_fields.get("SlaBreached")
            if sla is not None and json.loads(sla.data) is True and "sla" not in timers.values():
                timers[-1] = "sla"
                add(ev, "system", "Review SLA breached", "supervisor notified")
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
            res = await dec.one(ev.workflow_execution_completed_event_attributes.result.payloads)
            if isinstance(res, dict):
                timeline.outcome = str(res.get("outcome"))
                add(ev, "system", f"Case closed: {res.get('outcome')}", str(res.get("reason")))
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED:
            failure = ev.workflow_execution_failed_event_attributes.failure
            timeline.outcome = "failed"
            add(ev, "system", "Case failed", failure.message)
    return timeline


async def export(
    client: Client, workflow_id: str, out: Path, *, unmask: bool = False
) -> list[Path]:
    """Write <id>.history.json, <id>.timeline.md and <id>.timeline.html into `out`."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    timeline = await build_timeline(history, client.data_converter, unmask=unmask)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        out / f"{workflow_id}.history.json": history.to_json(),
        out / f"{workflow_id}.timeline.md": timeline.to_markdown(),
        out / f"{workflow_id}.timeline.html": timeline.to_html(),
    }
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    return list(files)


# ----------------------------------------------------------------------------- replay


@dataclass(frozen=True)
class ReplayOutcome:
    """One history replayed: clean, or where and how today's code diverges from it."""

    source: str
    workflow_id: str
    workflow_type: str
    ok: bool
    error: str = ""
    event_id: int | None = None
    event_type: str | None = None


_DIVERGED_AT = re.compile(r"HistoryEvent\(id: (\d+), (\w+)\)")
_CORE_MESSAGE = re.compile(r'message: "([^"]*)"')


def _diverged_at(message: str) -> tuple[int | None, str | None]:
    m = _DIVERGED_AT.search(message)
    return (int(m.group(1)), m.group(2)) if m else (None, None)


async def replay(
    histories: Iterable[tuple[str, WorkflowHistory]],
    converter: DataConverter,
    *,
    workflows: Sequence[type] = WORKFLOWS,
) -> list[ReplayOutcome]:
    """Replay each history against the given (by default the current) workflow code."""
    replayer = Replayer(workflows=list(workflows), data_converter=converter)
    outcomes = []
    for source, history in histories:
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        failure = result.replay_failure
        started = history.events[0].workflow_execution_started_event_attributes
        kind = started.workflow_type.name
        if failure is None:
            outcomes.append(ReplayOutcome(source, history.workflow_id, kind, ok=True))
        else:
            message = str(failure)
            core = _CORE_MESSAGE.search(message)
            event_id, event_type = _diverged_at(message)
            outcomes.append(
                ReplayOutcome(
                    source,
                    history.workflow_id,
                    kind,
                    ok=False,
                    error=core.group(1) if core else message,
                    event_id=event_id,
                    event_type=event_type,
                )
            )
    return outcomes


def load_history_file(path: Path) -> WorkflowHistory:
    data = json.loads(path.read_text(encoding="utf-8"))
    started = data["events"][0]
    attrs = started.get("workflowExecutionStartedEventAttributes", {})
    workflow_id = attrs.get("workflowId") or path.stem.removesuffix(".history")
    return WorkflowHistory.from_json(workflow_id, data)


# ----------------------------------------------------------------------------- verify


@dataclass
class _Facts:
    """What the history says happened to the registry, payments and the outbox."""

    case_id: str = ""
    reported_at: str | None = None
    card: str | None = None
    frozen_as: str | None = None
    lifted: bool = False
    new_card: str | None = None
    done: set[str] = field(default_factory=set)
    order_status: dict[str, str] = field(default_factory=dict)
    production_status: dict[str, str] = field(default_factory=dict)
    notices: dict[str, str] = field(default_factory=dict)


async def _facts(history: WorkflowHistory, converter: DataConverter) -> _Facts:
    dec = HistoryReader(converter)
    facts = _Facts()
    first = history.events[0].workflow_execution_started_event_attributes
    facts.case_id = (
        f"{history.workflow_id}:{first.first_execution_run_id or first.original_execution_run_id}"
    )
    for ev in history.events:
        step = await dec.step(ev)
        if step is not None:
            kind, arg, r = step
            arg, r = arg or {}, r or {}
            facts.done.add(kind)
            if kind == "register_loss":
                facts.reported_at = r.get("reported_at")
                facts.card = arg.get("card_number")
            elif kind == "freeze_card":
                facts.frozen_as = r.get("status")
            elif kind == "lift_loss_report":
                facts.lifted = bool(r.get("changed"))
            elif kind in (
                "create_payment_order",
                "open_payment_order",
                "record_payment",
                "cancel_payment_order",
            ):
                facts.order_status[r["order_id"]] = r["status"]
            elif kind == "receive_payment" and r.get("order"):
                facts.order_status[r["order"]["order_id"]] = r["order"]["status"]
            elif kind == "refund_payment" and r.get("order_id"):
                facts.order_status[r["order_id"]] = "refunded"
            elif kind == "order_card_production":
                facts.production_status[r["order_id"]] = r["status"]
                facts.new_card = r.get("new_card_number") or facts.new_card
            elif kind == "record_card_produced":
                facts.production_status[arg["order_id"]] = "produced"
                facts.new_card = arg.get("new_card_number")
            elif kind == "record_production_failed":
                facts.production_status[arg["order_id"]] = "failed"
            elif kind == "cancel_card_production":
                # (an order the bureau failed stays failed)
                if facts.production_status.get(arg["order_id"]) != "failed":
                    facts.production_status[arg["order_id"]] = "cancelled"
            elif kind == "notify":
                facts.notices[f"{arg['case_id']}:{arg['step']}"] = arg["template"]
    return facts


async def verify(client: Client, pool: asyncpg.Pool, workflow_id: str) -> list[str]:
    """Every disagreement between the case's history and PostgreSQL; empty when they agree."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    f = await _facts(history, client.data_converter)
    problems: list[str] = []
    async with pool.acquire() as conn:
        report = await conn.fetchrow(
            "SELECT reported_at, status FROM loss_reports WHERE case_id = $1", f.case_id
        )
        if f.reported_at is not None:
            if report is None:
                problems.append("loss report: in the history, missing in the registry")
            else:
                history_time = datetime.fromisoformat(f.reported_at)
                if report["reported_at"] != history_time:
                    problems.append(
                        f"loss report time: history {history_time.isoformat()}, "
                        f"registry {report['reported_at'].isoformat()}"
                    )
        # A later report on the card (a re-application keeps the first cut-off: the
        # report number orders those) belongs to a later case, which owns the card now.
        later = (
            "SELECT EXISTS (SELECT 1 FROM loss_reports n WHERE n.card_number = $1"
            " AND (n.reported_at, n.report_number) > (SELECT reported_at, report_number"
            "  FROM loss_reports WHERE case_id = $2))"
        )
        if f.card and not await conn.fetchval(later, f.card, f.case_id):
            expected = (
                "replaced"
                if "activate_new_card" in f.done
                else "void"
                if "void_old_card" in f.done
                else "active"
                if f.lifted
                else f.frozen_as
            )
            actual = await conn.fetchval("SELECT status FROM cards WHERE card_number = $1", f.card)
            if expected and actual != expected:
                problems.append(
                    f"old card {_card(f.card)}: history says {expected}, registry {actual}"
                )
            if report is not None:
                want = (
                    "resolved_by_reissue"
                    if "activate_new_card" in f.done
                    else "closed_without_reissue"
                    if "void_old_card" in f.done
                    else "lifted"
                    if f.lifted
                    else "open"
                )
                if report["status"] != want:
                    problems.append(
                        f"loss report: history says {want}, registry {report['status']}"
                    )
        # A new card later reported lost belongs to that later case.
        if f.new_card and not await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM loss_reports WHERE card_number = $1)", f.new_card
        ):
            expected_new = (
                "active"
                if "activate_new_card" in f.done
                else "void"
                if "cancel_card_production" in f.done
                else "inactive_new"
            )
            actual_new = await conn.fetchval(
                "SELECT status FROM cards WHERE card_number = $1", f.new_card
            )
            if actual_new != expected_new:
                problems.append(
                    f"new card {_card(f.new_card)}: history says {expected_new}, registry {actual_new}"
                )
        for label, table, in_history in (
            ("payment order", "payment_orders", f.order_status),
            ("production order", "production_orders", f.production_status),
        ):
            in_db = {
                r["order_id"]: r["status"]
                for r in await conn.fetch(
                    f"SELECT order_id, status FROM {table} WHERE case_id = $1",
                    f.case_id,
                )
            }
            for order_id in in_history.keys() | in_db.keys():
                if in_history.get(order_id) != in_db.get(order_id):
                    problems.append(
                        f"{label} {order_id}: history says {in_history.get(order_id)}, "
                        f"database {in_db.get(order_id)}"
                    )
        sent = {
            r["dedupe_key"]: r["template"]
            for r in await conn.fetch(
                "SELECT dedupe_key, template FROM notifications WHERE case_id = $1", f.case_id
            )
        }
        for key in f.notices.keys() - sent.keys():
            problems.append(
                f"notification {f.notices[key]} ({key}): in the history, not in the outbox"
            )
        for key in sent.keys() - f.notices.keys():
            problems.append(f"notification {sent[key]} ({key}): in the outbox, not in the history")
    return problems
